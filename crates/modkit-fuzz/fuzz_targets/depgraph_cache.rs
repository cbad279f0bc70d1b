//! Fuzz target: depmod's incremental cache file, as a damaged or hostile file would reach
//! `Cache::from_bytes`. The target appends the file's checksum to the input so that the
//! fuzzer gets past it into the entry parser (the input is also tried as it is).
#![no_main]
#![forbid(unsafe_code)]

use modkit_depgraph::Cache;

/// The cache's checksum (a copy of `fnv1a` in modkit-depgraph's cache.rs, which is private;
/// if the two drift apart, this target only exercises the checksum check).
fn checksum(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h ^= u64::from_le_bytes(w.try_into().unwrap_or_default());
        h = h.wrapping_mul(0x0100_0000_01b3).rotate_left(29);
    }
    for &b in words.remainder() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^ bytes.len() as u64
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = Cache::from_bytes(data);
    let mut file = data.to_vec();
    file.extend_from_slice(&checksum(data).to_le_bytes());
    if let Ok(cache) = Cache::from_bytes(&file) {
        let _ = cache.len();
        let again = cache.to_bytes();
        let reread = Cache::from_bytes(&again).expect("own output reads back");
        assert_eq!(reread.len(), cache.len());
    }
});
