//! Differential tests against the C library's `fnmatch(3)` with flags 0: the plain function,
//! compiled [`Glob`]s and [`GlobSet`]s, over generated patterns and keys.
#![deny(unsafe_code)] // Only the libc oracle in common/ allows it.

mod common;

use common::{Rng, libc_fnmatch, random_key, random_pattern};
use modkit_glob::{Glob, GlobSet, fnmatch};

#[test]
fn fnmatch_and_glob_agree_with_libc_on_generated_cases() {
    let mut checked = 0;
    let mut matched = 0;
    let mut failures = Vec::new();
    for seed in [
        0x9E37_79B9_7F4A_7C15,
        0xD1B5_4A32_D192_ED03,
        0x2545_F491_4F6C_DD1D,
    ] {
        let mut rng = Rng(seed);
        for _ in 0..100_000 {
            let pattern = random_pattern(&mut rng, 10);
            let key = random_key(&mut rng, &pattern);
            let theirs = libc_fnmatch(pattern.as_bytes(), key.as_bytes());
            let ours = fnmatch(pattern.as_bytes(), key.as_bytes());
            let glob = Glob::new(&pattern).is_match(&key);
            if (ours != theirs || glob != theirs) && failures.len() < 20 {
                failures.push(format!(
                    "({pattern:?}, {key:?}): fnmatch {ours}, Glob {glob}, libc {theirs}"
                ));
            }
            checked += 1;
            matched += usize::from(theirs);
        }
    }
    assert!(
        failures.is_empty(),
        "disagreements:\n{}",
        failures.join("\n")
    );
    assert_eq!(checked, 300_000);
    // The generator must produce both answers in earnest for the comparison to mean much.
    assert!(
        matched > 30_000 && checked - matched > 30_000,
        "{matched} matches"
    );
}

#[test]
fn glob_sets_agree_with_libc_on_generated_sets() {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let mut compared = 0;
    let mut hits = 0;
    // Long literal runs between wildcards, as modaliases have, so that big groups file their
    // patterns by 4-byte grams (and grams repeat in keys).
    const WORDS: &[&str] = &[
        "*", "*", "?", "abcd", "bcda", "cdab", "ab", "d", "[a-d]", "\\*",
    ];
    for round in 0..60 {
        // Patterns share literal prefixes often, as modaliases do, so that the prefix groups
        // nest: a common stem, then random tokens.
        let stems = ["", "a", "ab", "ab:", "b", "ab:c"];
        let patterns: Vec<String> = (0..150)
            .map(|_| {
                let body = if round % 2 == 0 {
                    random_pattern(&mut rng, 6)
                } else {
                    (0..rng.below(7)).map(|_| rng.pick(WORDS)).collect()
                };
                format!("{}{body}", rng.pick(&stems))
            })
            .collect();
        let set: GlobSet = patterns.iter().map(|p| Glob::new(p)).collect();
        for i in 0..300 {
            let from = &patterns[i % patterns.len()];
            let key = format!("{}{}", rng.pick(&stems), random_key(&mut rng, from));
            let expected: Vec<usize> = patterns
                .iter()
                .enumerate()
                .filter(|(_, p)| libc_fnmatch(p.as_bytes(), key.as_bytes()))
                .map(|(id, _)| id)
                .collect();
            assert_eq!(set.matches(&key), expected, "key {key:?}");
            assert_eq!(set.is_match(&key), !expected.is_empty(), "key {key:?}");
            compared += patterns.len();
            hits += expected.len();
        }
    }
    assert_eq!(compared, 60 * 300 * 150);
    assert!(hits > 10_000, "only {hits} matches");
}
