//! Inputs the fuzzers (`cargo xtask fuzz`, crates/modkit-fuzz) found where the matcher and
//! glibc's `fnmatch(3)` disagree, kept so that they stay fixed. Each is checked against libc.
#![deny(unsafe_code)] // Only the libc oracle in common/ allows it.

mod common;

use common::libc_fnmatch;
use modkit_glob::{Glob, fnmatch};

#[track_caller]
fn agree(pattern: &[u8], key: &[u8]) -> bool {
    let theirs = libc_fnmatch(pattern, key);
    assert_eq!(
        fnmatch(pattern, key),
        theirs,
        "fnmatch({:?}, {:?})",
        String::from_utf8_lossy(pattern),
        String::from_utf8_lossy(key)
    );
    if let Ok(p) = std::str::from_utf8(pattern) {
        assert_eq!(Glob::new(p).is_match(key), theirs, "Glob {p:?}");
    }
    theirs
}

/// Found by `fnmatch_libc`: glibc 2.36 reads a `[:name` up to 2048 bytes before giving up
/// on the pattern (its `CHAR_CLASS_MAX_LENGTH` is not the 256 of gnulib's copy), so a long
/// run of `a`..`y` ended by any other byte makes the `[` an ordinary member; ours gave up
/// after 256 and matched nothing.
#[test]
fn class_names_are_read_up_to_2048_bytes() {
    let data = include_bytes!("../testdata/regressions/fnmatch_libc-long-class-name");
    let mut parts = data.splitn(2, |&b| b == 0);
    let (pattern, key) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(agree(pattern, key), "the fuzzer's case matches in glibc");
    for n in [255, 256, 257, 1000, 2046, 2047, 2048, 2049, 3000] {
        let name = "k".repeat(n);
        for tail in ["Z:]", ":]", "Z:]]"] {
            let pattern = format!("[[:{name}{tail}");
            for key in ["k", ":", "[", "Z", "kk"] {
                agree(pattern.as_bytes(), key.as_bytes());
                agree(
                    format!("*{pattern}").as_bytes(),
                    format!("x{key}").as_bytes(),
                );
            }
        }
    }
}
