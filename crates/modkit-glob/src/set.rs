//! Many patterns matched at once: patterns are grouped by their literal prefix, and a key only
//! tests the groups whose prefix it starts with.
//!
//! The distinct prefixes are kept sorted, each with a link to its longest proper prefix in
//! the set (its parent). For a key, the greatest prefix `p <= key` is found by binary search;
//! every set prefix that is a prefix of the key is an ancestor of `p` or `p` itself (anything
//! between such an `r` and the key in sorted order starts with `r`), and the first ancestor
//! that is a prefix of the key is the longest one, so all its ancestors are too. Patterns
//! that start with a wildcard have the empty prefix, the root, and are tested for every key.

use crate::glob::{Glob, until_nul};

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
            });
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
        self.for_each_candidate_group(key, |group| {
            for &id in &self.ids[group.start as usize..group.end as usize] {
                if self.globs[id as usize].matches_after_prefix(key) {
                    out.push(id as usize);
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
        self.for_each_candidate_group(key, |group| {
            found = self.ids[group.start as usize..group.end as usize]
                .iter()
                .any(|&id| self.globs[id as usize].matches_after_prefix(key));
            !found
        });
        found
    }

    /// Call `f` on every group whose prefix `key` starts with, longest first, until it
    /// returns false.
    fn for_each_candidate_group(&self, key: &[u8], mut f: impl FnMut(&Group) -> bool) {
        // Greatest prefix <= key; the root (empty) is <= everything.
        let mut at = self.prefixes.partition_point(|p| **p <= *key) - 1;
        while !key.starts_with(&self.prefixes[at]) {
            at = self.groups[at].parent;
        }
        loop {
            let group = &self.groups[at];
            if !f(group) || group.parent == usize::MAX {
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
    fn key_ends_at_nul() {
        let s = set(&["ab", "ab*"]);
        assert_eq!(s.matches("ab\0cd"), [0, 1]);
    }
}
