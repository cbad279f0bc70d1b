//! Fuzz target, differential: modkit-index's `fnmatch` against glibc's `fnmatch(3)` with
//! flags 0 in the C locale, as kmod calls it. Input: pattern, NUL, string.
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |&b| b == 0);
    let pattern = parts.next().unwrap_or_default();
    let string = parts.next().unwrap_or_default();
    if string.contains(&0) {
        return;
    }
    modkit_fuzz::check_fnmatch(
        pattern,
        string,
        modkit_index::fnmatch::fnmatch(pattern, string),
    );
});
