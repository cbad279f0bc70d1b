//! Fuzz target, differential: modkit-glob's compiled `Glob`, its `GlobSet` and its `fnmatch`
//! against glibc's `fnmatch(3)` (flags 0, C locale), as kmod matches module aliases. Input:
//! patterns separated by NUL bytes, the last piece being the key.
#![no_main]
#![forbid(unsafe_code)]

use modkit_glob::{Glob, GlobSetBuilder, fnmatch};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts: Vec<&[u8]> = data.split(|&b| b == 0).collect();
    let key = parts.pop().unwrap_or_default();
    let mut builder = GlobSetBuilder::new();
    let mut want = Vec::new();
    for (id, raw) in parts.iter().take(16).enumerate() {
        let Ok(pattern) = std::str::from_utf8(raw) else {
            // Glob::new takes &str; fnmatch alone still gets the raw bytes.
            modkit_fuzz::check_fnmatch(raw, key, fnmatch(raw, key));
            continue;
        };
        let theirs = modkit_fuzz::libc_fnmatch(raw, key);
        modkit_fuzz::check_fnmatch(raw, key, fnmatch(raw, key));
        let glob = Glob::new(pattern);
        assert_eq!(
            glob.is_match(key),
            theirs,
            "Glob {pattern:?} on {:?}",
            String::from_utf8_lossy(key)
        );
        assert!(key.starts_with(glob.literal_prefix().as_bytes()) || !theirs);
        if glob.is_literal() {
            assert_eq!(theirs, raw == &key, "literal {pattern:?}");
        }
        if theirs {
            want.push(builder.len());
        }
        let _ = id;
        builder.add(glob);
    }
    let set = builder.build();
    assert_eq!(
        set.matches(key),
        want,
        "GlobSet on {:?}",
        String::from_utf8_lossy(key)
    );
    assert_eq!(set.is_match(key), !want.is_empty());
});
