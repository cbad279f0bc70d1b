//! Fuzz target, differential: the index writer against the reader. Fuzzed (key, value,
//! priority) lists go into `IndexBuilder` (which must refuse exactly the non-ASCII and NUL
//! strings), are written in both layouts and read back; both must give the model's content,
//! the same dump, exact lookups must find every key, wildcard lookups must agree with a
//! model of kmod's walk and between layouts (order included), and rebuilding from the read index must give the same bytes.
#![no_main]
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::Arbitrary;
use modkit_index::{Index, IndexBuilder, Layout, fnmatch::fnmatch};

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<(String, String, u32)>,
    queries: Vec<String>,
}

fn acceptable(s: &str) -> bool {
    s.bytes().all(|b| b != 0 && b < 0x80)
}

fn is_wild(b: &u8) -> bool {
    matches!(b, b'*' | b'?' | b'[')
}

/// Must kmod's wildcard walk find `key` for `query`? A key without `*`, `?` or `[` only when
/// equal; otherwise when the part before the first of them equals the query's start and the
/// rest fnmatches the rest of the query.
fn wild_must(key: &str, query: &str) -> bool {
    let (k, q) = (key.as_bytes(), query.as_bytes());
    match k.iter().position(is_wild) {
        None => k == q,
        Some(w) => q.len() >= w && k[..w] == q[..w] && fnmatch(&k[w..], &q[w..]),
    }
}

/// May the walk find `key`? Also when equal, or when the query spells the key literally up to
/// a later wildcard from which the rest matches: the walk follows the query's own `*`, `?`
/// and `[` down the trie, and whether it gets there depends on how the trie is split.
fn wild_may(key: &str, query: &str) -> bool {
    let (k, q) = (key.as_bytes(), query.as_bytes());
    k == q
        || (0..k.len()).any(|p| {
            is_wild(&k[p]) && q.len() >= p && k[..p] == q[..p] && fnmatch(&k[p..], &q[p..])
        })
}

libfuzzer_sys::fuzz_target!(|input: Input| {
    let mut builder = IndexBuilder::new();
    let mut model: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
    for (key, value, priority) in input.entries.iter().take(200) {
        let ok = acceptable(key) && acceptable(value);
        match builder.insert(key, value, *priority) {
            Ok(duplicate) => {
                assert!(ok, "insert accepted {key:?} / {value:?}");
                let values = model.entry(key.clone()).or_default();
                assert_eq!(duplicate, values.iter().any(|(_, v)| v == value));
                let pos = values.partition_point(|&(p, _)| p < *priority);
                values.insert(pos, (*priority, value.clone()));
            }
            Err(_) => assert!(!ok, "insert refused {key:?} / {value:?}"),
        }
    }
    let mut dumps = Vec::new();
    let mut wild = Vec::new();
    for layout in [Layout::PreOrder, Layout::PostOrder] {
        let bytes = builder.write(layout).expect("small index");
        let index = Index::from_bytes(&bytes).expect("own output reads back");
        let mut read = BTreeMap::new();
        for entry in index.iter() {
            let entry = entry.expect("own output iterates");
            let values: Vec<_> = entry
                .values
                .map(|v| (v.priority, v.value.to_owned()))
                .collect();
            assert!(read.insert(entry.key, values).is_none(), "key twice");
        }
        assert_eq!(read, model, "{layout:?}");
        for (key, values) in &model {
            assert_eq!(
                index.get(key).unwrap(),
                values.first().map(|v| v.1.as_str())
            );
        }
        for query in input.queries.iter().take(8) {
            let hits: Vec<_> = index
                .search_wild(query)
                .expect("own output searches")
                .into_iter()
                .map(|v| (v.priority, v.value.to_owned()))
                .collect();
            assert!(
                hits.is_sorted_by_key(|h| h.0),
                "search_wild({query:?}) not by priority"
            );
            let values = |f: fn(&str, &str) -> bool| -> BTreeSet<(u32, String)> {
                model
                    .iter()
                    .filter(|(k, _)| f(k, query))
                    .flat_map(|(_, v)| v.iter().cloned())
                    .collect()
            };
            let got: BTreeSet<_> = hits.iter().cloned().collect();
            let (must, may) = (values(wild_must), values(wild_may));
            assert!(
                must.is_subset(&got),
                "search_wild({query:?}) {layout:?}: {got:?} lacks {must:?}"
            );
            assert!(
                got.is_subset(&may),
                "search_wild({query:?}) {layout:?}: {got:?} beyond {may:?}"
            );
            wild.push(hits);
        }
        let again = IndexBuilder::from_index(&index)
            .unwrap()
            .write(layout)
            .unwrap();
        assert_eq!(again, bytes, "rebuild {layout:?}");
        dumps.push(index.dump().unwrap());
    }
    assert_eq!(dumps[0], dumps[1], "layouts differ in content");
    let (pre, post) = wild.split_at(wild.len() / 2);
    assert_eq!(pre, post, "layouts differ in wildcard results");
});
