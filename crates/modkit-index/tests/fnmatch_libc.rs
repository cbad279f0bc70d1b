//! Differential test: our `fnmatch` against the C library's `fnmatch(3)` with flags 0, over
//! many generated patterns and strings (the C locale: Rust test binaries never call
//! `setlocale`).

use std::ffi::CString;

use modkit_index::fnmatch::fnmatch;

fn libc_fnmatch(pattern: &[u8], string: &[u8]) -> bool {
    let p = CString::new(pattern).unwrap();
    let s = CString::new(string).unwrap();
    // SAFETY: both arguments are valid NUL-terminated strings that outlive the call.
    #[allow(unsafe_code)]
    let r = unsafe { libc::fnmatch(p.as_ptr(), s.as_ptr(), 0) };
    r == 0
}

/// xorshift64*: small, deterministic, good enough to spread the cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Pattern pieces: the bytes that mean something to fnmatch, and whole bracket forms.
const PATTERN_TOKENS: &[&str] = &[
    "a",
    "b",
    "c",
    "z",
    "A",
    "0",
    "9",
    "-",
    "_",
    ":",
    "!",
    "^",
    "]",
    "[",
    "\\",
    "*",
    "?",
    ".",
    "=",
    "[a-c]",
    "[!ab]",
    "[^a]",
    "[]a]",
    "[z-a]",
    "[[:alpha:]]",
    "[[:digit:]_]",
    "[[:upper:]]",
    "[[:foo:]]",
    "[[:alpha]",
    "[=a=]",
    "[.a.]",
    "[a-]",
    "[\\]]",
    "[\\-a]",
    "[a-\\c]",
    "[!]]",
    "[]",
    "[[",
    "[a",
    "[:a:]",
    "[a[:digit:]]",
    "[[:digit:]a]",
    "[a-[.c.]]",
    "*?",
    "**",
    "\\*",
    "\\[",
];

/// String bytes: what the patterns talk about, and a few others.
const STRING_BYTES: &[&str] = &[
    "a", "b", "c", "d", "z", "A", "0", "9", "-", "_", ":", "!", "^", "]", "[", "\\", "*", "?", ".",
    "=", "/", " ",
];

#[test]
fn agrees_with_libc_on_generated_cases() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for seed in [
        0x9E37_79B9_7F4A_7C15,
        0xD1B5_4A32_D192_ED03,
        0x2545_F491_4F6C_DD1D,
    ] {
        let mut rng = Rng(seed);
        for _ in 0..100_000 {
            let mut pattern = String::new();
            for _ in 0..rng.below(10) {
                pattern.push_str(rng.pick(PATTERN_TOKENS));
            }
            let mut string = String::new();
            for _ in 0..rng.below(10) {
                string.push_str(rng.pick(STRING_BYTES));
            }
            // Half the time, derive the string from the pattern so that matches are common.
            if rng.below(2) == 0 {
                string = pattern
                    .bytes()
                    .filter(|b| !matches!(b, b'*'))
                    .map(|b| if b == b'?' { 'x' } else { b as char })
                    .collect();
            }
            let (p, s) = (pattern.as_bytes(), string.as_bytes());
            let ours = fnmatch(p, s);
            let theirs = libc_fnmatch(p, s);
            if ours != theirs && failures.len() < 20 {
                failures.push(format!(
                    "fnmatch({pattern:?}, {string:?}): ours {ours}, libc {theirs}"
                ));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, 300_000);
}

#[test]
fn agrees_with_libc_on_real_modalias_patterns() {
    let alias = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/modules.alias"),
    )
    .unwrap();
    let patterns: Vec<&str> = alias
        .lines()
        .filter_map(|l| l.strip_prefix("alias "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(patterns.len() > 500);
    // Every pattern against a concretised version of itself and of its neighbours.
    let concrete = |p: &str| -> String {
        p.replace('*', "00")
            .replace('?', "Z")
            .replace("[", "")
            .replace("]", "")
    };
    let mut matches = 0;
    for (i, p) in patterns.iter().enumerate() {
        for q in &patterns[i.saturating_sub(2)..(i + 3).min(patterns.len())] {
            let s = concrete(q);
            let ours = fnmatch(p.as_bytes(), s.as_bytes());
            assert_eq!(
                ours,
                libc_fnmatch(p.as_bytes(), s.as_bytes()),
                "{p:?} vs {s:?}"
            );
            matches += usize::from(ours);
        }
    }
    assert!(
        matches > patterns.len() / 2,
        "too few matches ({matches}) to mean anything"
    );
}
