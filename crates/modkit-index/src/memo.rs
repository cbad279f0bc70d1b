//! Many wildcard lookups in one index: kmod's walk, with each wildcard subtree read once.
//!
//! [`Index::search_wild`] follows the key down the trie and, at every node on that path, walks
//! the whole subtree of its `*`, `?` and `[` children, testing the pattern of every node there
//! against the rest of the key with fnmatch (kmod's `index_mm_searchwild`). The path is a few
//! nodes; the subtrees are the work, and the same ones come back key after key (every `pci:`
//! modalias walks `pci:v*`, every `of:` one the 1,572 patterns under `of:N*`). A [`WildMemo`]
//! keeps each subtree the first time a key reaches it: its patterns (from the wildcard on) in
//! the walk's order, each with where its values are, and for a big subtree a [`GlobSet`] over
//! them. A later key that reaches the subtree tests that list, or asks the set, instead of
//! reading the nodes again. Only the subtrees the keys reach are read: `modprobe -a` with
//! 4,000 of Debian 6.1's modaliases reads a third of its 22,000 wildcard patterns.
//!
//! The answer is the walk's, in the walk's order: the path is compared byte for byte as the
//! walk compares it, a subtree's patterns are tested with the same fnmatch (a `GlobSet` gives
//! exactly the patterns fnmatch accepts) and their values added in the same order, and a
//! subtree whose first walk meets damage is not kept, so each key that reaches it reports the
//! error the walk reports. Keys with a `*`, `?` or `[` of their own take the walk itself:
//! through such a byte the path enters a wildcard child, so a pattern could be kept once per
//! subtree that holds it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use modkit_glob::{Glob, GlobSet};

use crate::error::Result;
use crate::fnmatch::fnmatch;
use crate::format::NODE_MASK;
use crate::read::{
    Budget, Frame, Index, Node, Value, Values, WildScratch, add_value, add_values, walk_subtree,
};

/// Subtrees with at least this many patterns are matched through a [`GlobSet`] (which files
/// big groups by a 4-byte window of their literal runs); smaller ones test each pattern.
const SET_MIN: usize = 16;

/// What one index's wildcard subtrees hold, kept across lookups; see the module docs.
///
/// A memo belongs to the index it was first used with: given another one (each [`Index`] value
/// made in the process is another, even over the same bytes), it forgets what it kept and
/// starts again.
#[derive(Debug, Default)]
pub struct WildMemo {
    /// The id of the index the memo was filled from.
    owner: Option<u64>,
    /// (node offset, where in its prefix the subtree starts, or [`CHILD`]) -> `subtrees` index.
    by_start: HashMap<(usize, usize), usize, BuildHasherDefault<OffsetHasher>>,
    subtrees: Vec<Subtree>,
    /// Every kept pattern's bytes, one after another.
    text: Vec<u8>,
    patterns: Vec<Pattern>,
    /// Buffers of a subtree's first walk, of a set lookup, and of keys left to the walk.
    pattern: Vec<u8>,
    stack: Vec<Frame>,
    ids: Vec<usize>,
    walk: WildScratch,
}

/// The `by_start` position of a wildcard child's subtree (its pattern starts with the child's
/// byte), as against a subtree that starts inside a node's prefix.
const CHILD: usize = usize::MAX;

/// One subtree's patterns: `patterns[start..end]`, in the walk's order.
#[derive(Debug)]
struct Subtree {
    start: usize,
    end: usize,
    /// Over the same patterns (ids from 0), for a big subtree whose patterns are text.
    set: Option<GlobSet>,
}

/// One pattern of a subtree: its bytes in `text` and its value records in the index file.
#[derive(Debug, Clone, Copy)]
struct Pattern {
    text: (usize, usize),
    values: (usize, usize),
    count: u32,
}

/// Multiplicative hashing for node offsets: they are distinct small numbers, and the default
/// hasher costs more than the lookup.
#[derive(Default)]
struct OffsetHasher(u64);

impl Hasher for OffsetHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

fn is_wild(b: u8) -> bool {
    matches!(b, b'*' | b'?' | b'[')
}

impl WildMemo {
    /// An empty memo.
    pub fn new() -> WildMemo {
        WildMemo::default()
    }

    /// Number of subtrees kept.
    pub fn subtrees(&self) -> usize {
        self.subtrees.len()
    }

    /// Number of patterns kept, over all subtrees.
    pub fn patterns(&self) -> usize {
        self.patterns.len()
    }

    /// Forget everything unless the memo was filled from the index with this id.
    fn adopt(&mut self, index: u64) {
        let owner = Some(index);
        if self.owner != owner {
            self.by_start.clear();
            self.subtrees.clear();
            self.text.clear();
            self.patterns.clear();
            self.owner = owner;
        }
    }

    /// The subtree of `node` from byte `j` of its prefix on, with `lead` (a wildcard child's
    /// byte) before it, kept on its first walk. `budget` is the walk's for this subtree.
    fn subtree(
        &mut self,
        data: &[u8],
        node: Node,
        j: usize,
        lead: Option<u8>,
        budget: &mut Budget,
    ) -> Result<usize> {
        let start = (node.offset, if lead.is_some() { CHILD } else { j });
        if let Some(&at) = self.by_start.get(&start) {
            return Ok(at);
        }
        let first = self.patterns.len();
        let text_len = self.text.len();
        if let Err(err) = self.keep(data, node, j, lead, budget) {
            self.patterns.truncate(first);
            self.text.truncate(text_len);
            return Err(err);
        }
        let patterns = &self.patterns[first..];
        let set = if patterns.len() >= SET_MIN {
            patterns
                .iter()
                .map(|p| std::str::from_utf8(&self.text[p.text.0..p.text.1]).map(Glob::new))
                .collect::<std::result::Result<GlobSet, _>>()
                .ok()
        } else {
            None
        };
        let at = self.subtrees.len();
        self.subtrees.push(Subtree {
            start: first,
            end: self.patterns.len(),
            set,
        });
        self.by_start.insert(start, at);
        Ok(at)
    }

    /// Walk the subtree as [`Index::search_wild`] does (post-order, children by ascending
    /// byte, the same budget and the same checks) and keep the pattern of every node with
    /// values.
    fn keep(
        &mut self,
        data: &[u8],
        start: Node,
        j: usize,
        lead: Option<u8>,
        budget: &mut Budget,
    ) -> Result<()> {
        let WildMemo {
            pattern,
            stack,
            text,
            patterns,
            ..
        } = self;
        pattern.clear();
        pattern.extend(lead);
        walk_subtree(data, start, j, pattern, stack, budget, |node, pattern| {
            if let Some((values_start, values_end, count)) = node.values_range(data)? {
                let at = text.len();
                text.extend_from_slice(pattern);
                patterns.push(Pattern {
                    text: (at, text.len()),
                    values: (values_start, values_end),
                    count,
                });
            }
            Ok(())
        })
    }

    /// Add the values of the patterns of subtree `at` that match `subkey`, in the walk's
    /// order.
    fn add_matches<'a>(
        &mut self,
        data: &'a [u8],
        at: usize,
        subkey: &[u8],
        out: &mut Vec<Value<'a>>,
    ) {
        let subtree = &self.subtrees[at];
        let patterns = &self.patterns[subtree.start..subtree.end];
        let add = |out: &mut Vec<Value<'a>>, p: &Pattern| {
            for v in Values::validated(&data[p.values.0..p.values.1], p.count) {
                add_value(out, v);
            }
        };
        match &subtree.set {
            Some(set) => {
                set.matches_into(subkey, &mut self.ids);
                for &id in &self.ids {
                    add(out, &patterns[id]);
                }
            }
            None => {
                for p in patterns {
                    if fnmatch(&self.text[p.text.0..p.text.1], subkey) {
                        add(out, p);
                    }
                }
            }
        }
    }
}

impl<'a> Index<'a> {
    /// [`Index::search_wild_into`] with each wildcard subtree the keys reach read once and
    /// kept in `memo` (see [`WildMemo`]): the same values in the same order, or the same
    /// error, much faster over many keys. `out` is cleared first.
    pub fn search_wild_memo<'s>(
        &'s self,
        key: impl AsRef<[u8]>,
        memo: &mut WildMemo,
        out: &mut Vec<Value<'s>>,
    ) -> Result<()> {
        let key = key.as_ref();
        if key.iter().copied().any(is_wild) {
            return self.search_wild_into(key, &mut memo.walk, out);
        }
        out.clear();
        let data = self.as_bytes();
        memo.adopt(self.id());
        // As search_wild_into: each subtree walk has its own budget.
        let budget = || Budget(data.len());
        let mut node = self.root()?;
        let mut i = 0;
        while let Some(n) = node {
            let prefix = n.prefix(data);
            for (j, &ch) in prefix.iter().enumerate() {
                if is_wild(ch) {
                    let subkey = key.get(i + j..).unwrap_or_default();
                    let at = memo.subtree(data, n, j, None, &mut budget())?;
                    memo.add_matches(data, at, subkey, out);
                    return Ok(());
                }
                if key.get(i + j) != Some(&ch) {
                    return Ok(());
                }
            }
            i += prefix.len();
            let subkey = key.get(i..).unwrap_or_default();
            for wc in [b'*', b'?', b'['] {
                let Some((reference, slot_at)) = n.child_ref(data, wc) else {
                    continue;
                };
                let offset = (reference & NODE_MASK) as usize;
                let at = match memo.by_start.get(&(offset, CHILD)) {
                    Some(&at) if offset != 0 => at,
                    _ => {
                        let Some(child) = Node::read(data, reference, slot_at)? else {
                            continue;
                        };
                        let mut budget = budget();
                        budget.spend(&child)?;
                        memo.subtree(data, child, 0, Some(wc), &mut budget)?
                    }
                };
                memo.add_matches(data, at, subkey, out);
            }
            let Some(&ch) = key.get(i) else {
                return add_values(out, &n, data);
            };
            node = n.child(data, ch)?;
            i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IndexBuilder, Layout};

    fn index(entries: &[(&str, &str, u32)], layout: Layout) -> Index<'static> {
        let mut b = IndexBuilder::new();
        for (key, value, priority) in entries {
            b.insert(key, value, *priority).unwrap();
        }
        Index::from_vec(b.write(layout).unwrap()).unwrap()
    }

    /// The memo and the walk agree, value for value, on `keys`, asked twice (the second time
    /// from what the memo kept).
    fn check(entries: &[(&str, &str, u32)], keys: &[&[u8]]) {
        for layout in [Layout::PostOrder, Layout::PreOrder] {
            let index = index(entries, layout);
            let mut memo = WildMemo::new();
            let mut out = Vec::new();
            for round in 0..2 {
                for key in keys {
                    let walk = index.search_wild(key).unwrap();
                    index.search_wild_memo(key, &mut memo, &mut out).unwrap();
                    assert_eq!(out, walk, "round {round}, key {:?}", key.escape_ascii());
                }
            }
        }
    }

    #[test]
    fn order_is_the_walks() {
        // Equal priorities everywhere: the order is the reverse of the walk's.
        let entries = [
            ("pci:v*", "a", 5),
            ("pci:v*d*", "b", 5),
            ("pci:v0001*", "c", 5),
            ("pci:v0001d*", "d", 5),
            ("pci:v?001*", "e", 5),
            ("pci:v[0]001*", "f", 5),
            ("pci:v0001d0002", "g", 5),
            ("pci*", "h", 5),
            ("*", "i", 5),
            ("pci:v0001d000[2]", "j", 5),
            ("pci:v0001d000[2]", "k", 5),
        ];
        check(
            &entries,
            &[
                b"pci:v0001d0002",
                b"pci:v0001d0003",
                b"pci:",
                b"x",
                b"",
                b"pci:v*",
                b"pci:v0001\0d0002",
            ],
        );
    }

    #[test]
    fn priorities_then_reverse_walk_order() {
        let entries = [
            ("usb:v*", "late", 9),
            ("usb:v1*", "early", 1),
            ("usb:v12*", "mid", 4),
            ("usb:v12*", "mid2", 4),
            ("usb:v12", "exact", 4),
            ("usb:v1?", "q", 1),
        ];
        check(&entries, &[b"usb:v12", b"usb:v13", b"usb:v1", b"usb:v"]);
    }

    #[test]
    fn big_subtrees_go_through_a_set() {
        let owned: Vec<(String, String, u32)> = (0..200)
            .map(|i| {
                (
                    format!("of:N*T*Cvendor,dev{i}"),
                    format!("m{}", i % 7),
                    i % 5,
                )
            })
            .chain((0..40).map(|i| (format!("of:N*T*Cvendor,dev{i}C*"), format!("c{i}"), 3)))
            .chain([("of:N*".to_string(), "any".to_string(), 2)])
            .collect();
        let entries: Vec<(&str, &str, u32)> = owned
            .iter()
            .map(|(p, m, prio)| (p.as_str(), m.as_str(), *prio))
            .collect();
        let index = index(&entries, Layout::PostOrder);
        let mut memo = WildMemo::new();
        let mut out = Vec::new();
        index
            .search_wild_memo("of:NxTyCvendor,dev7", &mut memo, &mut out)
            .unwrap();
        assert!(memo.subtrees.iter().any(|s| s.set.is_some()));
        check(
            &entries,
            &[
                b"of:NxTyCvendor,dev7",
                b"of:NxTyCvendor,dev17Cvendor,dev1",
                b"of:NxTyCvendor,dev199",
                b"of:N",
                b"of:NTCvendor,dev3C",
            ],
        );
    }

    #[test]
    fn escapes_are_the_walks() {
        // fnmatch reads `\b` as `b`, the walk's path as the two bytes `\` and `b`.
        let entries = [
            ("a\\b*", "escaped", 1),
            ("a*\\b", "late_escape", 1),
            ("a\\b", "literal", 1),
        ];
        check(&entries, &[b"ab", b"abc", b"a\\bc", b"a\\b", b"axb"]);
    }

    /// Random patterns and keys over a small alphabet, so that they collide often: the memo
    /// answers as the walk does, order included, whatever it kept from the keys before.
    #[test]
    fn random_sets_agree_with_the_walk() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        const PATTERN: &[&str] = &[
            "a", "b", "c", ":", "*", "?", "[ab]", "[!a]", "\\", "\\a", "[",
        ];
        const KEY: &[u8] = b"abc:\\*?[\0";
        let mut sets = 0;
        for round in 0..300 {
            let mut owned: Vec<(String, String, u32)> = Vec::new();
            // Up to 60 patterns, half of them under `a*`, so that some subtrees are big
            // enough for a set.
            for i in 0..next(60) + 1 {
                let len = next(6);
                let mut pattern: String = if next(2) == 0 {
                    "a*".into()
                } else {
                    String::new()
                };
                pattern.extend((0..len).map(|_| PATTERN[next(PATTERN.len())]));
                owned.push((pattern, format!("m{i}"), next(3) as u32));
            }
            let entries: Vec<(&str, &str, u32)> = owned
                .iter()
                .map(|(p, m, prio)| (p.as_str(), m.as_str(), *prio))
                .collect();
            // Mostly keys without wildcards or NUL (the memo's), some with (the walk's).
            let keys: Vec<Vec<u8>> = (0..45)
                .map(|k| {
                    let len = next(7);
                    let alphabet = if k < 40 { KEY.len() - 4 } else { KEY.len() };
                    (0..len).map(|_| KEY[next(alphabet)]).collect()
                })
                .collect();
            let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let layout = if round % 2 == 0 {
                Layout::PostOrder
            } else {
                Layout::PreOrder
            };
            let index = index(&entries, layout);
            let mut memo = WildMemo::new();
            let mut out = Vec::new();
            for key in keys.iter().chain(&keys) {
                let walk = index.search_wild(key).unwrap();
                index.search_wild_memo(key, &mut memo, &mut out).unwrap();
                assert_eq!(
                    out,
                    walk,
                    "round {round}, key {:?}, patterns {owned:?}",
                    key.escape_ascii()
                );
            }
            sets += memo.subtrees.iter().filter(|s| s.set.is_some()).count();
        }
        assert!(sets > 50, "only {sets} subtrees went through a set");
    }

    #[test]
    fn a_memo_given_another_index_starts_again() {
        let a = index(&[("x*", "a", 1)], Layout::PostOrder);
        let b = index(&[("x*", "b", 1)], Layout::PostOrder);
        let mut memo = WildMemo::new();
        let mut out = Vec::new();
        a.search_wild_memo("xy", &mut memo, &mut out).unwrap();
        assert_eq!(out[0].value, "a");
        b.search_wild_memo("xy", &mut memo, &mut out).unwrap();
        assert_eq!(out[0].value, "b");
        assert_eq!((memo.subtrees(), memo.patterns()), (1, 1));
    }
}
