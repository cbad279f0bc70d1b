//! Fuzz target: a possibly compressed module file through `decompress` (xz, zstd, gzip, with
//! a small cap so bombs are cut short) and then the module parser.
#![no_main]
#![forbid(unsafe_code)]

/// Far below the tools' 256 MiB default, so a bomb costs milliseconds, not seconds.
const LIMIT: u64 = 4 << 20;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = modkit_elf::detect_compression(data).name();
    if let Ok(bytes) = modkit_elf::decompress(data, LIMIT) {
        assert!(
            bytes.len() as u64 <= LIMIT.max(data.len() as u64),
            "cap exceeded"
        );
        modkit_fuzz::exercise_module(&bytes);
    }
});
