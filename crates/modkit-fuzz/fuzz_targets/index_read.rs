//! Fuzz target: a `.bin` index file through the reader: iteration, exact lookups (`get`,
//! `get_all`) and wildcard lookups (`search_wild`). Besides "no panic, no hang", it checks
//! that every key iteration reports is found again by an exact lookup with the same values.
#![no_main]
#![forbid(unsafe_code)]

use modkit_index::{Index, WildScratch};

/// Fixed keys worth trying on any index (and on the seeds, which are kmod's own indexes).
const KEYS: &[&str] = &[
    "",
    "ext4",
    "usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00",
    "pci:v00008086d00001234sv00001AF4sd00001100bc02sc00i00",
    "symbol:crc32c",
    "a*",
    "[",
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(index) = Index::from_bytes(data) else {
        return;
    };
    let mut scratch = WildScratch::new();
    let mut out = Vec::new();
    for key in KEYS {
        let _ = index.get(key);
        let _ = index.get_all(key).map(|v| v.map(Iterator::count));
        let _ = index.search_wild_into(key, &mut scratch, &mut out);
    }
    let _ = index.dump();
    for entry in index.iter().take(64) {
        let Ok(entry) = entry else { break };
        let values: Vec<_> = entry.values.collect();
        let found: Vec<_> = match index.get_all(&entry.key) {
            Ok(Some(v)) => v.collect(),
            Ok(None) => Vec::new(),
            Err(e) => panic!("iter gave {:?} but get_all fails: {e}", entry.key),
        };
        assert_eq!(values, found, "key {:?}", entry.key);
        let first = index.get(&entry.key).expect("get after get_all");
        assert_eq!(
            first,
            values.first().map(|v| v.value),
            "key {:?}",
            entry.key
        );
        let _ = index.search_wild_into(&entry.key, &mut scratch, &mut out);
    }
});
