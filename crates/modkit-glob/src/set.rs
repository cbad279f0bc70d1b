//! Many patterns matched at once: patterns are grouped by their literal prefix, and a key only
//! tests the groups whose prefix it starts with.
//!
//! The distinct prefixes are kept sorted, each with a link to its longest proper prefix in
//! the set (its parent). For a key, the greatest prefix `p <= key` is found by binary search;
//! every set prefix that is a prefix of the key is an ancestor of `p` or `p` itself (anything
//! between such an `r` and the key in sorted order starts with `r`), and the first ancestor
//! that is a prefix of the key is the longest one, so all its ancestors are too. Patterns
//! that start with a wildcard have the empty prefix, the root, and are tested for every key.
//!
//! A big group (`of:N` holds 1,756 of Debian 6.1's patterns, `acpi` 708) gets a second level:
//! each pattern whose rest is only literals, `*` and `?` must find one of its literal runs in
//! the key after the prefix, so it is filed under the rarest 4-byte window of those runs
//! (a "gram"), and a key only tests the patterns filed under the grams it contains. The
//! others stay on a list tested for every key that reaches the group.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::glob::{Glob, until_nul};

/// Groups with at least this many patterns get a gram index.
const GRAM_MIN_GROUP: usize = 8;

/// Collects patterns; [`GlobSetBuilder::build`] compiles them into a [`GlobSet`]. Pattern ids
/// are the order of `add` calls, from 0.
#[derive(Clone, Debug, Default)]
pub struct GlobSetBuilder {
    globs: Vec<Glob>,
}

impl GlobSetBuilder {
    /// An empty builder.
    pub fn new() -> GlobSetBuilder {
        GlobSetBuilder::default()
    }

    /// Add a pattern; its id is the number of patterns added before it.
    pub fn add(&mut self, glob: Glob) -> &mut GlobSetBuilder {
        self.globs.push(glob);
        self
    }

    /// Number of patterns added so far.
    pub fn len(&self) -> usize {
        self.globs.len()
    }

    /// Whether no pattern was added.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// Compile the set. Never fails: every string is a pattern.
    pub fn build(&self) -> GlobSet {
        GlobSet::from_globs(self.globs.clone())
    }
}

impl Extend<Glob> for GlobSetBuilder {
    fn extend<I: IntoIterator<Item = Glob>>(&mut self, iter: I) {
        self.globs.extend(iter);
    }
}

/// One distinct literal prefix and the patterns that have it.
#[derive(Clone, Debug)]
struct Group {
    /// Index in `GlobSet::groups` of the longest other prefix that is a prefix of this one;
    /// `usize::MAX` for the root (the empty prefix).
    parent: usize,
    /// Range of `GlobSet::ids` holding this group's pattern ids, ascending.
    start: u32,
    end: u32,
    /// For a big group: its patterns filed by gram.
    grams: Option<Box<GramIndex>>,
}

/// A 4-byte window of a literal run, as a number.
type Gram = u32;

fn gram(window: &[u8]) -> Gram {
    u32::from_le_bytes([window[0], window[1], window[2], window[3]])
}

/// Fibonacci hashing for grams: they are already well spread, and the default hasher costs
/// more than the lookup.
#[derive(Default)]
struct GramHasher(u64);

impl Hasher for GramHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// One group's patterns by gram, and those without one.
#[derive(Clone, Debug)]
struct GramIndex {
    /// Gram -> range of `ids`.
    by_gram: HashMap<Gram, (u32, u32), BuildHasherDefault<GramHasher>>,
    /// Pattern ids filed by gram, grouped by gram.
    ids: Vec<u32>,
    /// Ids of the patterns tested for every key.
    rest: Vec<u32>,
}

impl GramIndex {
    fn new(globs: &[Glob], members: &[u32]) -> GramIndex {
        // Every (gram, member) once, in one flat list (no list per pattern; a gram in the
        // high half, so that sorting numbers groups them): a set is compiled per process, so
        // this is on `modprobe -a`'s path.
        let mut pairs: Vec<u64> = Vec::with_capacity(members.len() * 8);
        let mut rest = Vec::new();
        for (pos, &id) in members.iter().enumerate() {
            let before = pairs.len();
            if let Some(pattern) = globs[id as usize].simple_rest() {
                for run in pattern.split(|&b| b == b'*' || b == b'?') {
                    pairs.extend(
                        run.windows(4)
                            .map(|w| u64::from(gram(w)) << 32 | pos as u64),
                    );
                }
            }
            if pairs.len() == before {
                rest.push(id);
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        // Each member's rarest gram (the smaller gram of equal counts): the pairs come grouped
        // by gram, so a gram's count is the length of its run.
        let mut best: Vec<(u32, Gram)> = vec![(u32::MAX, 0); members.len()];
        for run in pairs.chunk_by(|a, b| a >> 32 == b >> 32) {
            let count = run.len() as u32;
            let g = (run[0] >> 32) as Gram;
            for &pair in run {
                let b = &mut best[pair as u32 as usize];
                if (count, g) < *b {
                    *b = (count, g);
                }
            }
        }
        let mut filed: Vec<(Gram, u32)> = members
            .iter()
            .zip(&best)
            .filter(|(_, b)| b.0 != u32::MAX)
            .map(|(&id, &(_, g))| (g, id))
            .collect();
        filed.sort_unstable();
        let mut by_gram = HashMap::default();
        let mut start = 0;
        for (i, &(g, _)) in filed.iter().enumerate() {
            if filed.get(i + 1).map(|&(next, _)| next) != Some(g) {
                by_gram.insert(g, (start as u32, i as u32 + 1));
                start = i + 1;
            }
        }
        GramIndex {
            by_gram,
            ids: filed.into_iter().map(|(_, id)| id).collect(),
            rest,
        }
    }

    /// Push onto `out` the ids of the patterns a key with this rest (after the group's
    /// prefix) may match, possibly twice.
    fn candidates(&self, rest: &[u8], out: &mut Vec<usize>) {
        out.extend(self.rest.iter().map(|&id| id as usize));
        for window in rest.windows(4) {
            if let Some(&(start, end)) = self.by_gram.get(&gram(window)) {
                out.extend(
                    self.ids[start as usize..end as usize]
                        .iter()
                        .map(|&id| id as usize),
                );
            }
        }
    }
}

/// An immutable set of compiled patterns that answers "which patterns match this key" much
/// faster than testing each pattern, with exactly the same answers.
///
/// ```
/// use modkit_glob::{Glob, GlobSetBuilder};
///
/// let mut b = GlobSetBuilder::new();
/// b.add(Glob::new("pci:v00001AF4d00001001sv*sd*bc*sc*i*"))
///     .add(Glob::new("pci:v*d*sv*sd*bc01sc*i*"))
///     .add(Glob::new("usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*"));
/// let set = b.build();
/// assert_eq!(
///     set.matches("pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00"),
///     [0, 1]
/// );
/// assert!(set.matches("platform:serial8250").is_empty());
/// ```
#[derive(Clone, Debug)]
pub struct GlobSet {
    globs: Vec<Glob>,
    /// The distinct prefixes, sorted bytewise; `prefixes[0]` is the empty prefix.
    prefixes: Vec<Box<[u8]>>,
    groups: Vec<Group>,
    ids: Vec<u32>,
}

impl GlobSet {
    /// An empty set.
    pub fn empty() -> GlobSet {
        GlobSet::from_globs(Vec::new())
    }

    fn from_globs(globs: Vec<Glob>) -> GlobSet {
        let id = |i: usize| u32::try_from(i).expect("more than 4 billion patterns");
        let mut order: Vec<u32> = (0..globs.len()).map(id).collect();
        // Stable, so ids stay ascending within a group.
        order.sort_by(|&a, &b| {
            globs[a as usize]
                .prefix_bytes()
                .cmp(globs[b as usize].prefix_bytes())
        });

        let mut prefixes: Vec<Box<[u8]>> = vec![Box::default()];
        let mut groups = vec![Group {
            parent: usize::MAX,
            start: 0,
            end: 0,
            grams: None,
        }];
        for (pos, &g) in order.iter().enumerate() {
            let prefix = globs[g as usize].prefix_bytes();
            let last = prefixes.len() - 1;
            if *prefixes[last] == *prefix {
                groups[last].end = id(pos + 1);
                continue;
            }
            // The parent is the last group on the chain from the previous prefix that is a
            // prefix of this one (the previous prefix is this one's sorted predecessor).
            let mut parent = last;
            while !prefix.starts_with(&prefixes[parent]) {
                parent = groups[parent].parent;
            }
            prefixes.push(prefix.into());
            groups.push(Group {
                parent,
                start: id(pos),
                end: id(pos + 1),
                grams: None,
            });
        }
        for group in &mut groups {
            let members = &order[group.start as usize..group.end as usize];
            if members.len() >= GRAM_MIN_GROUP {
                group.grams = Some(Box::new(GramIndex::new(&globs, members)));
            }
        }
        GlobSet {
            globs,
            prefixes,
            groups,
            ids: order,
        }
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.globs.len()
    }

    /// Whether the set has no pattern.
    pub fn is_empty(&self) -> bool {
        self.globs.is_empty()
    }

    /// The pattern with id `id`.
    pub fn get(&self, id: usize) -> Option<&Glob> {
        self.globs.get(id)
    }

    /// All patterns, by id.
    pub fn globs(&self) -> &[Glob] {
        &self.globs
    }

    /// Ids of the patterns that match `key`, ascending.
    pub fn matches(&self, key: impl AsRef<[u8]>) -> Vec<usize> {
        let mut out = Vec::new();
        self.matches_into(key, &mut out);
        out
    }

    /// Like [`GlobSet::matches`], into `out` (cleared first) to reuse its allocation.
    pub fn matches_into(&self, key: impl AsRef<[u8]>, out: &mut Vec<usize>) {
        out.clear();
        let key = until_nul(key.as_ref());
        self.for_each_candidate_group(key, |prefix_len, group| {
            match &group.grams {
                None => {
                    for &id in &self.ids[group.start as usize..group.end as usize] {
                        if self.globs[id as usize].matches_after_prefix(key) {
                            out.push(id as usize);
                        }
                    }
                }
                Some(grams) => {
                    // Candidates go after the matches so far, then are tested in place.
                    let from = out.len();
                    grams.candidates(&key[prefix_len..], out);
                    out[from..].sort_unstable();
                    let mut kept = from;
                    for i in from..out.len() {
                        let id = out[i];
                        if (i == from || out[i - 1] != id)
                            && self.globs[id].matches_after_prefix(key)
                        {
                            out[kept] = id;
                            kept += 1;
                        }
                    }
                    out.truncate(kept);
                }
            }
            true
        });
        out.sort_unstable();
    }

    /// Whether any pattern matches `key`.
    pub fn is_match(&self, key: impl AsRef<[u8]>) -> bool {
        let key = until_nul(key.as_ref());
        let mut found = false;
        let mut candidates = Vec::new();
        self.for_each_candidate_group(key, |prefix_len, group| {
            found = match &group.grams {
                None => self.ids[group.start as usize..group.end as usize]
                    .iter()
                    .any(|&id| self.globs[id as usize].matches_after_prefix(key)),
                Some(grams) => {
                    candidates.clear();
                    grams.candidates(&key[prefix_len..], &mut candidates);
                    candidates
                        .iter()
                        .any(|&id| self.globs[id].matches_after_prefix(key))
                }
            };
            !found
        });
        found
    }

    /// Call `f` with the prefix length and the group for every group whose prefix `key`
    /// starts with, longest first, until it returns false.
    fn for_each_candidate_group(&self, key: &[u8], mut f: impl FnMut(usize, &Group) -> bool) {
        // Greatest prefix <= key; the root (empty) is <= everything.
        let mut at = self.prefixes.partition_point(|p| **p <= *key) - 1;
        while !key.starts_with(&self.prefixes[at]) {
            at = self.groups[at].parent;
        }
        loop {
            let group = &self.groups[at];
            if !f(self.prefixes[at].len(), group) || group.parent == usize::MAX {
                return;
            }
            at = group.parent;
        }
    }
}

impl Default for GlobSet {
    fn default() -> GlobSet {
        GlobSet::empty()
    }
}

impl FromIterator<Glob> for GlobSet {
    fn from_iter<I: IntoIterator<Item = Glob>>(iter: I) -> GlobSet {
        GlobSet::from_globs(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> GlobSet {
        patterns.iter().map(|p| Glob::new(p)).collect()
    }

    #[test]
    fn empty_set_matches_nothing() {
        let s = GlobSet::empty();
        assert!(s.is_empty());
        assert!(s.matches("").is_empty());
        assert!(!s.is_match("anything"));
    }

    #[test]
    fn nested_prefixes_and_root() {
        let s = set(&["*", "a*", "ab*", "abz*", "abc", "b?", "", "ab"]);
        assert_eq!(s.matches("abc"), [0, 1, 2, 4]);
        assert_eq!(s.matches("abd"), [0, 1, 2]);
        assert_eq!(s.matches("ab"), [0, 1, 2, 7]);
        assert_eq!(s.matches("abzz"), [0, 1, 2, 3]);
        assert_eq!(s.matches("bx"), [0, 5]);
        assert_eq!(s.matches(""), [0, 6]);
        assert!(s.is_match("zzz"));
        let s = set(&["ab*", "abz*"]);
        assert!(!s.is_match("zzz"));
        assert!(!s.is_match("a"));
        assert_eq!(s.matches("abzq"), [0, 1]);
    }

    #[test]
    fn duplicate_patterns_keep_their_ids() {
        let s = set(&["x*", "y", "x*", "x*"]);
        assert_eq!(s.matches("xx"), [0, 2, 3]);
        assert_eq!(s.get(2).map(Glob::pattern), Some("x*"));
    }

    #[test]
    fn big_groups_file_patterns_by_gram() {
        let patterns = [
            "of:N*T*Cvirtio,mmio",
            "of:N*T*Cvirtio,mmioC*",
            "of:N*T*Cfsl,imx6q-uart",
            "of:N*T*Cfsl,imx6q-uartC*",
            "of:N*T*Cfsl,imx21-uart",
            "of:N*T*Cfsl,imx21-uartC*",
            "of:N*T*Cmmio",
            "of:N*T*C[a-z]*",
            "of:N*Tserial",
            "of:N*",
            "of:Nuart*",
            "of:N?",
        ];
        let s = set(&patterns);
        assert!(s.groups.iter().any(|g| g.grams.is_some()));
        let check = |key: &str| {
            let expected: Vec<usize> = (0..patterns.len())
                .filter(|&i| crate::fnmatch(patterns[i].as_bytes(), key.as_bytes()))
                .collect();
            assert_eq!(s.matches(key), expected, "{key:?}");
            assert_eq!(s.is_match(key), !expected.is_empty(), "{key:?}");
        };
        check("of:NuartT(null)Cvirtio,mmio");
        // The same gram several times in the key.
        check("of:NmmioTmmioCvirtio,mmioCvirtio,mmio");
        check("of:NxT(null)Cfsl,imx6q-uartCfsl,imx21-uart");
        check("of:NxT(null)Cmmio");
        check("of:NxTserial");
        check("of:Nu");
        check("of:N");
        check("of:");
    }

    #[test]
    fn key_ends_at_nul() {
        let s = set(&["ab", "ab*"]);
        assert_eq!(s.matches("ab\0cd"), [0, 1]);
    }
}
