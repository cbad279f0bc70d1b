//! Round trips, ordering rules, and bad input: truncations, corrupt references, loops, cycles,
//! non-ASCII. Nothing may panic or hang; corrupt files give a typed error.
#![forbid(unsafe_code)]

mod common;

use common::*;
use modkit_index::{Error, Index, IndexBuilder, Layout, Value, WildMemo};

fn small() -> IndexBuilder {
    let mut b = IndexBuilder::new();
    for (k, v, p) in [
        ("ask", "a1", 5),
        ("ate", "a2", 1),
        ("on", "o1", 3),
        ("once", "o2", 2),
        ("one", "o3", 9),
        ("one", "o3-low", 4),
        ("o*e", "wild", 7),
        ("o[a-n]?", "range", 6),
        ("", "empty-key", 8),
    ] {
        b.insert(k, v, p).unwrap();
    }
    b
}

/// Every check that reads the whole index: dump and a few lookups. Returns errors instead of
/// panicking so truncation tests can call it on garbage.
///
/// Wildcard lookups through a [`WildMemo`] must give exactly what the walk gives, values or
/// error, the first time a key reaches a subtree and again from what the memo kept.
fn exercise(bytes: &[u8]) -> Result<String, Error> {
    let index = Index::from_bytes(bytes)?;
    let mut memo = WildMemo::new();
    let mut out = Vec::new();
    let keys = ["ask", "one", "once", "oxe", "", "zzz", "on", "oaz"];
    for key in keys.iter().chain(&keys) {
        let walk = index.search_wild(key);
        let kept = index
            .search_wild_memo(key, &mut memo, &mut out)
            .map(|()| &out);
        match (&walk, kept) {
            (Ok(walk), Ok(kept)) => assert_eq!(kept, walk, "key {key:?}"),
            (Err(walk), Err(kept)) => assert_eq!(kept.to_string(), walk.to_string()),
            (walk, kept) => panic!("key {key:?}: the walk gave {walk:?}, the memo {kept:?}"),
        }
    }
    let dump = index.dump()?;
    for key in keys {
        index.get(key)?;
        index.get_all(key)?.map(|v| v.count());
        index.search_wild(key)?;
    }
    Ok(dump)
}

/// Every alias of the Debian test tree, made concrete, and some near misses: the memo gives
/// what the walk gives, in the same order, whatever it kept from the keys before.
#[test]
fn memo_answers_as_the_walk_on_debians_aliases() {
    let index = Index::open(testdata("modules.alias.bin")).unwrap();
    let text = read_string(&testdata("modules.alias"));
    let mut keys = Vec::new();
    for pattern in text.lines().filter_map(|l| l.split(' ').nth(1)) {
        let concrete: String = pattern
            .replace('*', "00")
            .replace('?', "0")
            .chars()
            .filter(|c| !matches!(c, '[' | ']'))
            .collect();
        keys.push(concrete.clone());
        keys.push(format!("{concrete}x"));
        keys.push(concrete[..concrete.len() / 2].to_string());
    }
    let mut memo = WildMemo::new();
    let mut out = Vec::new();
    let mut found = 0;
    for key in keys.iter().chain(&keys) {
        let walk = index.search_wild(key).unwrap();
        index.search_wild_memo(key, &mut memo, &mut out).unwrap();
        assert_eq!(out, walk, "key {key:?}");
        found += usize::from(!walk.is_empty());
    }
    assert!(
        found > keys.len(),
        "only {found} of {} keys found anything",
        2 * keys.len()
    );
    assert!(memo.patterns() > 1000, "{} patterns kept", memo.patterns());
}

#[test]
fn round_trips_in_both_layouts() {
    for layout in [Layout::PreOrder, Layout::PostOrder] {
        let bytes = small().write(layout).unwrap();
        let index = Index::from_bytes(&bytes).unwrap();
        assert_eq!(index.get("one").unwrap(), Some("o3-low"));
        let all: Vec<_> = index.get_all("one").unwrap().unwrap().collect();
        assert_eq!(
            all,
            [
                Value {
                    priority: 4,
                    value: "o3-low"
                },
                Value {
                    priority: 9,
                    value: "o3"
                }
            ]
        );
        assert_eq!(index.get("on").unwrap(), Some("o1"));
        assert_eq!(index.get("o").unwrap(), None);
        assert_eq!(index.get("onex").unwrap(), None);
        assert_eq!(index.get("").unwrap(), Some("empty-key"));
        let rebuilt = IndexBuilder::from_index(&index)
            .unwrap()
            .write(layout)
            .unwrap();
        assert_eq!(rebuilt, bytes, "{layout:?}");
        // Identical input, identical bytes.
        assert_eq!(small().write(layout).unwrap(), bytes);
    }
    let pre = small().write(Layout::PreOrder).unwrap();
    let post = small().write(Layout::PostOrder).unwrap();
    assert_ne!(pre, post);
    assert_eq!(exercise(&pre).unwrap(), exercise(&post).unwrap());
    // Pre-order puts the root right after the header.
    assert_eq!(
        u32::from_be_bytes(pre[8..12].try_into().unwrap()) & 0x0FFF_FFFF,
        12
    );
}

#[test]
fn dump_snapshot() {
    let bytes = small().write(Layout::PreOrder).unwrap();
    insta::assert_snapshot!(Index::from_bytes(&bytes).unwrap().dump().unwrap());
}

#[test]
fn wildcard_order_follows_kmod() {
    let bytes = small().write(Layout::PostOrder).unwrap();
    let index = Index::from_bytes(&bytes).unwrap();
    let hits: Vec<_> = index.search_wild("one").unwrap();
    // "one" exactly (4, 9), "o*e" (7), "o[a-n]?" (6): ascending priority.
    let values: Vec<_> = hits.iter().map(|v| (v.priority, v.value)).collect();
    assert_eq!(
        values,
        [(4, "o3-low"), (6, "range"), (7, "wild"), (9, "o3")]
    );
    assert!(
        index
            .search_wild("ask")
            .unwrap()
            .iter()
            .any(|v| v.value == "a1")
    );
    assert!(
        index
            .search_wild("oze")
            .unwrap()
            .iter()
            .map(|v| v.value)
            .eq(["wild"])
    );
    assert!(index.search_wild("zzz").unwrap().is_empty());
}

#[test]
fn equal_priorities_keep_kmods_order() {
    // depmod: a new value goes before the first value of priority >= its own.
    let mut b = IndexBuilder::new();
    for v in ["a", "b"] {
        assert!(!b.insert("k", v, 0).unwrap());
    }
    assert!(!b.insert("k", "low", 1).unwrap());
    assert!(!b.insert("k", "c", 0).unwrap());
    assert!(
        b.insert("k", "a", 2).unwrap(),
        "duplicates are reported, and kept"
    );
    let bytes = b.write(Layout::PostOrder).unwrap();
    let index = Index::from_bytes(&bytes).unwrap();
    let stored: Vec<_> = index
        .get_all("k")
        .unwrap()
        .unwrap()
        .map(|v| v.value)
        .collect();
    assert_eq!(stored, ["c", "b", "a", "low", "a"]);
    // The wildcard search re-inserts with the same rule: equal priorities come out reversed.
    let found: Vec<_> = index
        .search_wild("k")
        .unwrap()
        .iter()
        .map(|v| v.value)
        .collect();
    assert_eq!(found, ["a", "b", "c", "low", "a"]);
}

#[test]
fn empty_index_is_12_bytes() {
    let expected = [0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1, 0, 0, 0, 12];
    for layout in [Layout::PreOrder, Layout::PostOrder] {
        let bytes = IndexBuilder::new().write(layout).unwrap();
        assert_eq!(bytes, expected);
        let index = Index::from_bytes(&bytes).unwrap();
        assert_eq!(index.get("").unwrap(), None);
        assert_eq!(index.iter().count(), 0);
        assert!(index.search_wild("x").unwrap().is_empty());
    }
    assert!(IndexBuilder::new().is_empty());
}

#[test]
fn writer_refuses_non_ascii() {
    let mut b = IndexBuilder::new();
    let err = b.insert("caf\u{e9}", "v", 0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotAscii {
                what: "key",
                byte: 0xC3,
                position: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = b.insert("k", "a\0b", 0).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NotAscii {
                what: "value",
                byte: 0,
                position: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(b.is_empty());
}

#[test]
fn every_truncation_fails_cleanly() {
    for name in ["modules.dep.bin", "modules.builtin.alias.bin"] {
        let full = read(&testdata(name));
        let whole = exercise(&full).unwrap();
        for len in 0..full.len() {
            // A clean error or, where the cut misses what was read, a partial answer.
            if let Ok(dump) = exercise(&full[..len]) {
                assert!(dump.len() <= whole.len(), "{name} cut at {len}");
            }
        }
    }
    for layout in [Layout::PreOrder, Layout::PostOrder] {
        let full = small().write(layout).unwrap();
        for len in 0..full.len() {
            let _ = exercise(&full[..len]);
        }
        assert!(matches!(
            exercise(&full[..11]),
            Err(Error::TooShort { len: 11 })
        ));
    }
}

/// Header plus one node; `root` is the root reference.
fn file(root: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0xB0, 0x07, 0xF4, 0x57, 0, 2, 0, 1];
    v.extend_from_slice(&root.to_be_bytes());
    v.extend_from_slice(body);
    v
}

const PREFIX: u32 = 0x8000_0000;
const VALUES: u32 = 0x4000_0000;
const CHILDS: u32 = 0x2000_0000;

#[test]
fn bad_headers() {
    let mut bytes = small().write(Layout::PreOrder).unwrap();
    bytes[0] = 0;
    assert!(matches!(
        Index::from_bytes(&bytes),
        Err(Error::BadMagic { found: 0x0007_F457 })
    ));
    let mut bytes = small().write(Layout::PreOrder).unwrap();
    bytes[5] = 3;
    assert!(matches!(
        Index::from_bytes(&bytes),
        Err(Error::UnsupportedVersion { .. })
    ));
    // The minor version is not checked, as in kmod.
    let mut bytes = small().write(Layout::PreOrder).unwrap();
    bytes[7] = 9;
    assert!(Index::from_bytes(&bytes).is_ok());
}

#[test]
fn corrupt_references() {
    // Root points past the end.
    let f = file(CHILDS | 100, &[]);
    assert!(matches!(
        exercise(&f),
        Err(Error::OffsetOutOfRange { at: 8, .. })
    ));
    // Root points into the header.
    let f = file(CHILDS | 4, &[]);
    assert!(matches!(
        exercise(&f),
        Err(Error::OffsetOutOfRange { at: 8, .. })
    ));
    // A child reference out of range.
    let f = file(CHILDS | 12, &[b'a', b'a', 0, 0, 0x10, 0]);
    assert!(matches!(
        exercise(&f),
        Err(Error::OffsetOutOfRange { at: 14, .. })
    ));
    // Child range with first > last, and with bytes >= 128.
    let f = file(CHILDS | 12, &[b'b', b'a', 0, 0, 0, 0]);
    assert!(matches!(
        exercise(&f),
        Err(Error::BadChildRange { offset: 12, .. })
    ));
    let f = file(CHILDS | 12, &[b'a', 0x80, 0, 0, 0, 0]);
    assert!(matches!(
        exercise(&f),
        Err(Error::BadChildRange {
            first: b'a',
            last: 0x80,
            ..
        })
    ));
    // Prefix without NUL.
    let f = file(PREFIX | 12, b"abc");
    assert!(matches!(
        exercise(&f),
        Err(Error::Truncated { offset: 12, .. })
    ));
    // A value count far beyond the file.
    let f = file(VALUES | 12, &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0]);
    assert!(matches!(
        exercise(&f),
        Err(Error::AbsurdCount {
            count: u32::MAX,
            ..
        })
    ));
    // A value that is not UTF-8.
    let f = file(VALUES | 12, &[0, 0, 0, 1, 0, 0, 0, 0, 0xFF, 0]);
    assert!(matches!(exercise(&f), Err(Error::NotUtf8 { offset: 20 })));
}

#[test]
fn loops_and_cycles_end_with_an_error() {
    // A node whose only child is itself.
    let self_loop = file(CHILDS | 12, &[b'*', b'*', 0x20, 0, 0, 12]);
    let index = Index::from_bytes(&self_loop).unwrap();
    assert!(matches!(index.dump(), Err(Error::NotATree { .. })));
    assert!(matches!(
        index.search_wild("abc"),
        Err(Error::NotATree { .. })
    ));
    // Exact lookups terminate anyway: each step eats a key byte.
    assert_eq!(index.get("****").unwrap(), None);

    // Two nodes pointing at each other.
    let mut cycle = file(CHILDS | 12, &[b'a', b'a', 0x20, 0, 0, 18]);
    cycle.extend_from_slice(&[b'b', b'b', 0x20, 0, 0, 12]);
    let index = Index::from_bytes(&cycle).unwrap();
    assert!(matches!(
        index.iter().last(),
        Some(Err(Error::NotATree { .. }))
    ));

    // A node shared by two slots of its parent, many levels deep: without the budget this
    // would take 2^depth steps.
    let depth = 40u32;
    let leaf = 12 + 10 * depth;
    let mut body = Vec::new();
    for level in 0..depth {
        let next = if level + 1 == depth {
            VALUES | leaf
        } else {
            CHILDS | (12 + 10 * (level + 1))
        };
        body.extend_from_slice(b"ab");
        body.extend_from_slice(&next.to_be_bytes());
        body.extend_from_slice(&next.to_be_bytes());
    }
    body.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, b'v', 0]);
    let f = file(CHILDS | 12, &body);
    let index = Index::from_bytes(&f).unwrap();
    assert!(matches!(index.dump(), Err(Error::NotATree { .. })));
    assert!(matches!(
        index.search_wild("*"),
        Ok(_) | Err(Error::NotATree { .. })
    ));
}

#[test]
fn reader_tolerates_unknown_child_bytes_in_keys() {
    let bytes = small().write(Layout::PreOrder).unwrap();
    let index = Index::from_bytes(&bytes).unwrap();
    assert_eq!(index.get([b'o', 0xFF]).unwrap(), None);
    assert!(index.search_wild([0xC3, 0xA9]).unwrap().is_empty());
}

#[test]
fn open_reads_files_and_reports_paths() {
    let index = Index::open(testdata("modules.dep.bin")).unwrap();
    let dep = read_string(&testdata("modules.dep"));
    let line = dep
        .lines()
        .find(|l| l.starts_with("kernel/drivers/usb/storage/uas.ko:"));
    assert_eq!(index.get("uas").unwrap(), line);
    let err = Index::open(testdata("no-such-file")).unwrap_err();
    assert!(err.to_string().contains("no-such-file"), "{err}");
    let err = Index::open(testdata("README.md")).unwrap_err();
    assert!(matches!(err, Error::BadMagic { .. }), "{err}");
}

#[test]
fn write_atomic_replaces_the_file() {
    let dir = std::env::temp_dir().join(format!("modkit-index-atomic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("modules.dep.bin");
    std::fs::write(&path, b"old").unwrap();
    let bytes = small().write(Layout::PreOrder).unwrap();
    modkit_index::write_atomic(&path, &bytes).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "no temporary file left"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
