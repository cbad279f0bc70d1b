//! Inputs the fuzzers (`cargo xtask fuzz`, crates/modkit-fuzz) found where modkit-config
//! disagrees with kmod, kept so that they stay fixed.
#![forbid(unsafe_code)]

use modkit_config::depmod::kernel_matches;

/// Found by `ere_libc`: glibc compiles depmod.d kernel patterns with `REG_EXTENDED`, whose
/// syntax bits include `RE_UNMATCHED_RIGHT_PAREN_ORD`: a `)` that closes no group is an
/// ordinary character. Our matcher refused such a pattern (so it matched nothing), where kmod's
/// depmod applies the line. Answers below are glibc 2.36's.
#[test]
fn unmatched_right_paren_is_ordinary() {
    let data = include_bytes!("../testdata/regressions/ere_libc-unmatched-paren");
    let mut parts = data.splitn(2, |&b| b == 0);
    let pattern = std::str::from_utf8(parts.next().unwrap()).unwrap();
    let kernel = std::str::from_utf8(parts.next().unwrap_or_default()).unwrap();
    assert_eq!(pattern, "()|^)|");
    assert!(kernel_matches(pattern, kernel), "{pattern:?} on {kernel:?}");

    assert!(kernel_matches("6.1)", "6.1)-amd64"));
    assert!(!kernel_matches("6.1)", "6.1.0-amd64"));
    assert!(kernel_matches("^a)b$", "a)b"));
    assert!(kernel_matches("(6)\\.1)", "6.1)"));
    // Inside a group, `)` still closes it; an unclosed `(` is still an error (matches nothing).
    assert!(kernel_matches("(6|5)\\.1", "6.1.0"));
    assert!(!kernel_matches("(6\\.1", "6.1.0"));
}

/// Found by `ere_libc`: glibc refuses a repetition operator right after an anchor (`^*`,
/// `^+`, `$?`, `^{1}`: REG_BADRPT), so kmod's depmod ignores such a line; our matcher read the
/// operator as repeating the anchor and matched. A group around the anchor is fine for both.
#[test]
fn quantified_anchor_is_invalid() {
    let data = include_bytes!("../testdata/regressions/ere_libc-quantified-anchor");
    let pattern = std::str::from_utf8(data.split(|&b| b == 0).next().unwrap()).unwrap();
    assert_eq!(pattern, "|^+|");
    assert!(!kernel_matches(pattern, ""));
    for p in [
        "^*", "^+", "^?", "^{1}", "$+", "x$*", "$?", "a^*", "(^*)", "(a|^*)b",
    ] {
        assert!(!kernel_matches(p, "a"), "{p}");
        assert!(!kernel_matches(p, "b"), "{p}");
        assert!(!kernel_matches(p, "x"), "{p}");
        assert!(!kernel_matches(p, ""), "{p}");
    }
    assert!(kernel_matches("(^)*", ""));
}

/// Found by `ere_libc`: in a bracket expression, glibc accepts a `-` right after a range only
/// as the last member (`[a-c-]`); `[a-c-e]` is REG_ERANGE, so kmod's depmod ignores the line.
/// Our matcher read that `-` as a literal.
#[test]
fn dash_after_a_range_is_invalid_unless_last() {
    let data = include_bytes!("../testdata/regressions/ere_libc-dash-after-range");
    let mut parts = data.splitn(2, |&b| b == 0);
    let pattern = std::str::from_utf8(parts.next().unwrap()).unwrap();
    let kernel = std::str::from_utf8(parts.next().unwrap()).unwrap();
    assert_eq!(pattern, "[-aa[-a-%+]");
    assert!(!kernel_matches(pattern, kernel));
    assert!(!kernel_matches("[a-c-e]", "d"));
    assert!(!kernel_matches("[a-c-e-g]", "-"));
    assert!(kernel_matches("[a-c-]", "-"));
    assert!(kernel_matches("[%--]", "-"));
    assert!(kernel_matches("[--a]", "-"));
}

/// Found by `ere_libc`: glibc reads `{,n}` as `{0,n}` (and `{,}` as `*`), a GNU extension
/// kmod's depmod inherits; our matcher refused the pattern.
#[test]
fn brace_without_a_minimum() {
    let data = include_bytes!("../testdata/regressions/ere_libc-brace-without-min");
    let mut parts = data.splitn(2, |&b| b == 0);
    let pattern = std::str::from_utf8(parts.next().unwrap()).unwrap();
    let kernel = std::str::from_utf8(parts.next().unwrap()).unwrap();
    assert_eq!((pattern, kernel), ("a}{,3}b+", "aab"));
    assert!(kernel_matches(pattern, kernel));
    assert!(kernel_matches("a{,2}b", "b"));
    assert!(kernel_matches("a{,}b", "aaab"));
    assert!(!kernel_matches("^a{,2}$", "aaa"));
    assert!(kernel_matches("^a{,2}$", "aa"));
}
