//! Fuzz target: depmod's incremental cache file, as a damaged or hostile file would reach the
//! cache's entry parser. The input is tried as it is and with its checksum appended, so that
//! the fuzzer gets past the checksum into the entries (modkit-depgraph's hidden `fuzzing`
//! module does both, with the crate's own checksum).
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    modkit_depgraph::fuzzing::cache_entries(data);
});
