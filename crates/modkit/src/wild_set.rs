//! Many wildcard lookups in one index: its patterns compiled once into a [`GlobSet`], giving
//! exactly what kmod's trie walk (`index_mm_searchwild`) gives, in the same order.
//!
//! The walk follows the key down the trie and, at each depth, searches the subtrees of the
//! `*`, `?` and `[` children (post-order, children by ascending byte), then takes the values of
//! the node the key ends at; each value found is inserted before the first one of equal or
//! higher priority. For a key without `*`, `?`, `[` or bytes >= 128 that means: a pattern
//! whose first wildcard is at `w` is found when the key starts with its first `w` bytes,
//! byte for byte, and `fnmatch` accepts the rest; and patterns are found in the order of
//! `(w, pattern)`, where a pattern comes after every pattern it is a prefix of. That order
//! does not depend on the key, so it is computed once ([`WildSet::new`]); a lookup sorts its
//! few matches by it and inserts their values as the walk would. Keys this reasoning does not
//! cover are left to the walk ([`WildSet::search`] returns `None`).

use std::cmp::Ordering;

use modkit_glob::Glob;
use modkit_glob::fnmatch::fnmatch;
use modkit_index::Index;

/// The patterns of one index, ready for many lookups.
#[derive(Debug)]
pub(crate) struct WildSet {
    /// Every key and value, one after another: one allocation instead of one a string.
    text: String,
    /// The patterns in walk order: index = rank.
    patterns: Vec<Pattern>,
    /// Every value, by pattern, in file order: (priority, its range of `text`).
    values: Vec<(u32, Span)>,
    /// The patterns fnmatch reads as the walk does (no `\` before the first wildcard).
    set: modkit_glob::GlobSet,
    /// Set id -> rank.
    set_ranks: Vec<u32>,
    /// Ranks of the other patterns, tested one by one.
    escaped: Vec<u32>,
}

/// A range of [`WildSet::text`].
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug)]
struct Pattern {
    key: Span,
    /// Position of the first `*`, `?` or `[` (the key's length when none).
    wild_at: usize,
    /// Its values: `values[start..end]`.
    start: u32,
    end: u32,
}

/// Scratch buffers of one lookup.
#[derive(Debug, Default)]
pub(crate) struct WildSetScratch {
    ids: Vec<usize>,
    ranks: Vec<u32>,
    found: Vec<(u32, u32)>,
}

fn is_wild(b: u8) -> bool {
    matches!(b, b'*' | b'?' | b'[')
}

/// The walk's order of two patterns with the same first wildcard position: bytewise, except
/// that a pattern comes after the longer patterns it is a prefix of (post-order).
fn walk_order(a: &[u8], b: &[u8]) -> Ordering {
    match a.iter().zip(b).find(|(x, y)| x != y) {
        Some((x, y)) => x.cmp(y),
        None => b.len().cmp(&a.len()),
    }
}

/// A length or offset as stored: the index file's own offsets are 28-bit, so its strings fit.
fn id(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The indexes `0..items.len()` in the walk's order: by first wildcard position (`wild_at`),
/// then [`walk_order`] of their keys (`key`).
///
/// The index's iterator gives its keys in pre-order, sorted bytewise; the walk's order is then
/// the post-order of the same keys (a key after those it is a prefix of), made in one pass
/// with a stack of the keys the next ones may still extend, then stably grouped by wildcard
/// position. Keys in any other order are sorted by comparison.
fn walk_ranks<'k, T>(
    items: &[T],
    key: impl Fn(usize) -> &'k [u8],
    wild_at: impl Fn(usize) -> usize,
) -> Vec<u32> {
    let n = items.len();
    let mut order: Vec<u32> = Vec::with_capacity(n);
    if (1..n).all(|i| key(i - 1) < key(i)) {
        let mut stack: Vec<usize> = Vec::new();
        for i in 0..n {
            let k = key(i);
            while let Some(&top) = stack.last() {
                if k.starts_with(key(top)) {
                    break;
                }
                order.push(id(top));
                stack.pop();
            }
            stack.push(i);
        }
        order.extend(stack.into_iter().rev().map(id));
        order.sort_by_key(|&i| wild_at(i as usize));
    } else {
        order.extend((0..n).map(id));
        // Keys are distinct, so no two compare equal and the unstable sort is deterministic.
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            wild_at(a)
                .cmp(&wild_at(b))
                .then_with(|| walk_order(key(a), key(b)))
        });
    }
    order
}

impl WildSet {
    /// Compile every key of `index`; an error if the index cannot be read whole.
    ///
    /// This runs once per process that looks up many aliases (`modprobe -a -R`), so it keeps
    /// to a few allocations: strings go to one arena, the walk order is a sort of indexes.
    pub(crate) fn new(index: &Index<'_>) -> Result<WildSet, modkit_index::Error> {
        // Keys and values take about as many bytes as the file (shared prefixes are
        // written out, node headers are not).
        let mut text = String::with_capacity(index.as_bytes().len() * 2);
        // In file order: (key, first wildcard, range of `file_values`).
        let mut raw: Vec<(Span, usize, u32, u32)> = Vec::new();
        let mut file_values: Vec<(u32, Span)> = Vec::new();
        let push = |text: &mut String, s: &str| {
            let start = id(text.len());
            text.push_str(s);
            Span {
                start,
                end: id(text.len()),
            }
        };
        for entry in index.iter() {
            let entry = entry?;
            let key = push(&mut text, &entry.key);
            let wild_at = entry
                .key
                .bytes()
                .position(is_wild)
                .unwrap_or(entry.key.len());
            let start = id(file_values.len());
            for v in entry.values {
                let span = push(&mut text, v.value);
                file_values.push((v.priority, span));
            }
            raw.push((key, wild_at, start, id(file_values.len())));
        }
        let bytes = |span: Span| &text.as_bytes()[span.start as usize..span.end as usize];
        let order = walk_ranks(&raw, |i| bytes(raw[i].0), |i| raw[i].1);

        let mut patterns = Vec::with_capacity(raw.len());
        let mut values = Vec::with_capacity(file_values.len());
        let mut globs = Vec::with_capacity(raw.len());
        let mut set_ranks = Vec::with_capacity(raw.len());
        let mut escaped = Vec::new();
        for (rank, &i) in order.iter().enumerate() {
            let (key, w, vstart, vend) = raw[i as usize];
            let start = id(values.len());
            values.extend_from_slice(&file_values[vstart as usize..vend as usize]);
            let key_bytes = bytes(key);
            if key_bytes[..w].contains(&b'\\') || key_bytes.contains(&0) {
                escaped.push(id(rank));
            } else {
                globs.push(Glob::new(&text[key.start as usize..key.end as usize]));
                set_ranks.push(id(rank));
            }
            patterns.push(Pattern {
                key,
                wild_at: w,
                start,
                end: id(values.len()),
            });
        }
        Ok(WildSet {
            patterns,
            values,
            set: globs.into_iter().collect(),
            set_ranks,
            escaped,
            text,
        })
    }

    /// The text of `span`.
    fn str(&self, span: Span) -> &str {
        &self.text[span.start as usize..span.end as usize]
    }

    /// The values of every pattern matching `key` into `out` (cleared first), as kmod's walk
    /// orders them (by priority; of equal priority, the last found first). False, with `out`
    /// untouched, for a key only the walk answers exactly (one with a wildcard or a byte
    /// >= 128 of its own).
    pub(crate) fn search_into<'s>(
        &'s self,
        key: &str,
        scratch: &mut WildSetScratch,
        out: &mut Vec<&'s str>,
    ) -> bool {
        let key = key.as_bytes();
        if key.iter().any(|&b| is_wild(b) || b >= 0x80 || b == 0) {
            return false;
        }
        let WildSetScratch { ids, ranks, found } = scratch;
        self.set.matches_into(key, ids);
        ranks.clear();
        ranks.extend(ids.iter().map(|&id| self.set_ranks[id]));
        for &rank in &self.escaped {
            let p = &self.patterns[rank as usize];
            let pattern = self.str(p.key).as_bytes();
            let (head, tail) = pattern.split_at(p.wild_at);
            let matched = if p.wild_at == pattern.len() {
                key == head
            } else {
                key.len() >= head.len()
                    && key.starts_with(head)
                    && fnmatch(tail, &key[head.len()..])
            };
            if matched {
                ranks.push(rank);
            }
        }
        ranks.sort_unstable();
        // kmod's add_value: each value goes before the first of priority >= its own.
        found.clear();
        for &rank in ranks.iter() {
            let p = &self.patterns[rank as usize];
            for i in p.start..p.end {
                let priority = self.values[i as usize].0;
                let pos = found.partition_point(|&(q, _)| q < priority);
                found.insert(pos, (priority, i));
            }
        }
        out.clear();
        out.extend(
            found
                .iter()
                .map(|&(_, i)| self.str(self.values[i as usize].1)),
        );
        true
    }

    /// [`WildSet::search_into`] into a new vector.
    #[cfg(test)]
    fn search(&self, key: &str, scratch: &mut WildSetScratch) -> Option<Vec<&str>> {
        let mut out = Vec::new();
        self.search_into(key, scratch, &mut out).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modkit_index::{IndexBuilder, Layout};

    fn index(entries: &[(&str, &str, u32)]) -> Index<'static> {
        let mut b = IndexBuilder::new();
        for (key, value, priority) in entries {
            b.insert(key, value, *priority).unwrap();
        }
        Index::from_vec(b.write(Layout::PostOrder).unwrap()).unwrap()
    }

    /// The set and the walk agree, value for value, on `keys`.
    fn check(entries: &[(&str, &str, u32)], keys: &[&str]) {
        let index = index(entries);
        let set = WildSet::new(&index).unwrap();
        let mut scratch = WildSetScratch::default();
        for key in keys {
            let walk: Vec<&str> = index
                .search_wild(key)
                .unwrap()
                .iter()
                .map(|v| v.value)
                .collect();
            let ours: Vec<&str> = set.search(key, &mut scratch).unwrap();
            assert_eq!(ours, walk, "key {key:?}");
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
            &["pci:v0001d0002", "pci:v0001d0003", "pci:", "x", ""],
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
        check(&entries, &["usb:v12", "usb:v13", "usb:v1", "usb:v"]);
    }

    #[test]
    fn escapes_before_the_first_wildcard_are_literal_to_the_walk() {
        // fnmatch reads `\b` as `b`, the walk as the two bytes `\` and `b`.
        let entries = [
            ("a\\b*", "escaped", 1),
            ("a*\\b", "late_escape", 1),
            ("a\\b", "literal", 1),
        ];
        check(&entries, &["ab", "abc", "a\\bc", "a\\b", "axb"]);
    }

    /// Random patterns and keys over a small alphabet, so that they collide often: the set
    /// answers as the walk does, order included.
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
        const KEY: &[u8] = b"abc:\\";
        for round in 0..200 {
            let mut owned: Vec<(String, String, u32)> = Vec::new();
            for i in 0..next(12) + 1 {
                let len = next(6);
                let pattern: String = (0..len).map(|_| PATTERN[next(PATTERN.len())]).collect();
                owned.push((pattern, format!("m{i}"), next(3) as u32));
            }
            let entries: Vec<(&str, &str, u32)> = owned
                .iter()
                .map(|(p, m, prio)| (p.as_str(), m.as_str(), *prio))
                .collect();
            let keys: Vec<String> = (0..40)
                .map(|_| {
                    let len = next(7);
                    (0..len).map(|_| KEY[next(KEY.len())] as char).collect()
                })
                .collect();
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let index = index(&entries);
            let set = WildSet::new(&index).unwrap();
            let mut scratch = WildSetScratch::default();
            for key in &keys {
                let walk: Vec<&str> = index
                    .search_wild(key)
                    .unwrap()
                    .iter()
                    .map(|v| v.value)
                    .collect();
                let ours = set.search(key, &mut scratch).unwrap();
                assert_eq!(ours, walk, "round {round}, key {key:?}, patterns {owned:?}");
            }
        }
    }

    /// The one-pass order of sorted keys is the comparison sort's, and so is that of keys in
    /// any other order.
    #[test]
    fn walk_ranks_from_sorted_keys_are_the_sorts() {
        let mut keys: Vec<&[u8]> = vec![
            b"a", b"a*", b"ab", b"ab*", b"abc", b"b", b"b?", b"b[x]", b"ba", b"c*d", b"c", b"",
        ];
        keys.sort();
        let wild_at = |k: &[u8]| k.iter().position(|&b| is_wild(b)).unwrap_or(k.len());
        let ranked = |keys: &[&[u8]]| -> Vec<Vec<u8>> {
            walk_ranks(keys, |i| keys[i], |i| wild_at(keys[i]))
                .into_iter()
                .map(|i| keys[i as usize].to_vec())
                .collect()
        };
        let mut expected: Vec<&[u8]> = keys.clone();
        expected.sort_by(|a, b| wild_at(a).cmp(&wild_at(b)).then_with(|| walk_order(a, b)));
        let expected: Vec<Vec<u8>> = expected.into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(ranked(&keys), expected);
        let mut shuffled = keys.clone();
        shuffled.reverse();
        shuffled.swap(0, 5);
        assert_eq!(ranked(&shuffled), expected);
    }

    #[test]
    fn keys_with_wildcards_go_to_the_walk() {
        let index = index(&[("a*", "m", 1)]);
        let set = WildSet::new(&index).unwrap();
        let mut scratch = WildSetScratch::default();
        assert!(set.search("a*", &mut scratch).is_none());
        assert!(set.search("a[", &mut scratch).is_none());
        assert!(set.search("a\u{e9}", &mut scratch).is_none());
        assert_eq!(set.search("ab", &mut scratch).unwrap(), ["m"]);
    }
}
