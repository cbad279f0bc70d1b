//! Inputs the fuzzers (`cargo xtask fuzz`, crates/modkit-fuzz) found to break the index reader
//! or writer, kept so that they stay fixed.
#![forbid(unsafe_code)]

use modkit_index::{Index, IndexBuilder, Layout};

/// Found by `index_roundtrip`: a wildcard lookup walks the subtree of a `*` child once for the
/// node above it and again for every `*` of the key that follows the same path, so an index of
/// nested `*` keys takes more node visits than the file has bytes. The walk's budget (its
/// guard against reference loops) was shared by all those walks, and ran out on a perfectly
/// good index: "node references do not form a tree".
#[test]
fn wildcard_lookup_through_nested_stars() {
    for layout in [Layout::PreOrder, Layout::PostOrder] {
        let mut b = IndexBuilder::new();
        for depth in 1..=24 {
            b.insert(&"*".repeat(depth), &format!("m{depth}"), depth as u32)
                .unwrap();
        }
        let bytes = b.write(layout).unwrap();
        let index = Index::from_bytes(&bytes).unwrap();
        let hits = index.search_wild("*".repeat(24)).unwrap();
        // Each pattern of n stars matches the key; the walk reaches most of them more than
        // once (kmod's walk does the same), so count the distinct ones.
        let mut values: Vec<_> = hits.iter().map(|v| v.value).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), 24, "{layout:?}");
    }
}

/// The crashing input itself, replayed through the same steps as the fuzz target. libFuzzer's
/// file (`testdata/regressions/index_roundtrip-crash-e41ac8e9.bin`, an `arbitrary` encoding,
/// replayed with `cargo fuzz run index_roundtrip FILE`) decodes to the entries and queries of
/// the `.keys` file next to it.
#[test]
fn fuzz_input_index_roundtrip_nested_wildcards() {
    let data = include_bytes!("../testdata/regressions/index_roundtrip-nested-wildcards.keys");
    // The committed file is the decoded form: one `key\tvalue\tpriority` line per entry, then
    // `?query` lines.
    let text = std::str::from_utf8(data).unwrap();
    let mut b = IndexBuilder::new();
    let mut queries = Vec::new();
    for line in text.lines() {
        if let Some(q) = line.strip_prefix('?') {
            queries.push(q);
            continue;
        }
        let mut f = line.split('\t');
        let (k, v, p) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        b.insert(k, v, p.parse().unwrap()).unwrap();
    }
    for layout in [Layout::PreOrder, Layout::PostOrder] {
        let bytes = b.write(layout).unwrap();
        let index = Index::from_bytes(&bytes).unwrap();
        for q in &queries {
            index
                .search_wild(q)
                .unwrap_or_else(|e| panic!("{layout:?} search_wild({q:?}): {e}"));
        }
    }
}

/// Found by the bad-input suite: `Index::open` on a FIFO (or any special file) in place of an
/// index blocked forever in open(2), waiting for a writer; kmod's modprobe and modinfo hang
/// the same way. Only regular files are opened now.
#[test]
fn opening_a_fifo_does_not_block() {
    let dir = std::env::temp_dir().join(format!("modkit-index-fifo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("modules.dep.bin");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(Index::open(&path).map(|_| ()).map_err(|e| e.to_string()));
    });
    // A deadline that only guards against the hang.
    let result = rx.recv_timeout(std::time::Duration::from_secs(20));
    if result.is_err() {
        // Unblock the reader before failing, so the thread does not outlive the test.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let err = result
        .expect("Index::open on a FIFO blocked")
        .expect_err("a FIFO is not an index");
    assert!(err.contains("not a regular file"), "{err}");
    assert!(err.contains("modules.dep.bin"), "{err}");
}

/// A directory in place of an index is refused by name, not with mmap's ENODEV.
#[test]
fn opening_a_directory_says_so() {
    let dir = std::env::temp_dir().join(format!("modkit-index-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("modules.alias.bin")).unwrap();
    let err = Index::open(dir.join("modules.alias.bin"))
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(err.contains("not a regular file"), "{err}");
}
