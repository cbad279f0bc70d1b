//! Shared test helpers: libc's fnmatch as the oracle, a small deterministic generator, keys
//! made from patterns, and the Debian 6.1 tree from the xtask's cache.

#![allow(dead_code)] // reason: each test binary uses a different subset of the helpers

use std::ffi::CString;
use std::path::{Path, PathBuf};

/// The C library's `fnmatch(pattern, string, 0) == 0` (the C locale: Rust test binaries
/// never call `setlocale`).
#[allow(unsafe_code, reason = "calls the C library's fnmatch(3), the oracle")]
pub fn libc_fnmatch(pattern: &[u8], string: &[u8]) -> bool {
    let p = CString::new(pattern).unwrap();
    let s = CString::new(string).unwrap();
    // SAFETY: both arguments are valid NUL-terminated strings that outlive the call.
    let r = unsafe { libc::fnmatch(p.as_ptr(), s.as_ptr(), 0) };
    r == 0
}

/// xorshift64*: small, deterministic, good enough to spread the cases.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Pattern pieces: the bytes that mean something to fnmatch, and whole bracket forms.
pub const PATTERN_TOKENS: &[&str] = &[
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
pub const STRING_BYTES: &[&str] = &[
    "a", "b", "c", "d", "z", "A", "0", "9", "-", "_", ":", "!", "^", "]", "[", "\\", "*", "?", ".",
    "=", "/", " ",
];

/// A random pattern of up to `max` tokens.
pub fn random_pattern(rng: &mut Rng, max: usize) -> String {
    let mut pattern = String::new();
    for _ in 0..rng.below(max) {
        pattern.push_str(rng.pick(PATTERN_TOKENS));
    }
    pattern
}

/// A random key: half the time made from `pattern` so that matches are common.
pub fn random_key(rng: &mut Rng, pattern: &str) -> String {
    if rng.below(2) == 0 {
        return pattern
            .bytes()
            .filter(|&b| b != b'*')
            .map(|b| if b == b'?' { 'x' } else { b as char })
            .collect();
    }
    let mut key = String::new();
    for _ in 0..rng.below(10) {
        key.push_str(rng.pick(STRING_BYTES));
    }
    key
}

/// A concrete string a modalias pattern is likely to match: `*` becomes `variant`, `?` a
/// letter, a bracket its first member.
pub fn concretize(pattern: &str, variant: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(variant),
            '?' => out.push('Z'),
            '\\' => out.extend(chars.next()),
            '[' => {
                let mut first = None;
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    if first.is_none() && c != '!' && c != '^' {
                        first = Some(c);
                    }
                }
                out.extend(first);
            }
            c => out.push(c),
        }
    }
    out
}

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

pub use modkit_testkit::{Missing, Scratch};

/// The `modules.alias` kmod 30's depmod writes for the cached Debian 6.1 tree, made in a
/// hard-linked scratch copy (depmod replaces its outputs by rename, so the cache is never
/// written). `Err` says why it is not available.
pub fn debian_61_modules_alias(scratch: &Scratch) -> Result<Vec<u8>, Missing> {
    let tree = modkit_testkit::kernel_modules_dir("6.1")?;
    let depmod = modkit_testkit::kmod("depmod")?;
    let version = tree.file_name().unwrap().to_str().unwrap().to_owned();
    let root = scratch.0.join("root");
    let dest = root.join("lib/modules");
    std::fs::create_dir_all(&dest).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-al")
        .arg(&tree)
        .arg(&dest)
        .status()
        .expect("running cp");
    assert!(status.success(), "cp -al failed");
    let status = std::process::Command::new(depmod)
        .arg("-b")
        .arg(&root)
        .arg(&version)
        .status()
        .expect("running kmod's depmod");
    assert!(status.success(), "depmod failed");
    Ok(std::fs::read(dest.join(&version).join("modules.alias")).unwrap())
}
