//! Fuzz target: an uncompressed module file through `Module::parse` and every accessor.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    modkit_fuzz::exercise_module(data);
});
