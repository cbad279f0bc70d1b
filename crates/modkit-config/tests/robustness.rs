//! No input makes a parser panic: every prefix of every test configuration, and generated
//! garbage, through the modprobe.d, depmod.d and kernel command line parsers.
#![forbid(unsafe_code)]

mod common;

use std::path::Path;

use modkit_config::depmod::{DepmodConfig, kernel_matches};
use modkit_config::modprobe::ModprobeConfig;

fn all_inputs(c: &mut impl FnMut(&str)) {
    fn walk(dir: &Path, c: &mut impl FnMut(&str)) {
        for entry in std::fs::read_dir(dir).expect("testdata") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, c);
            } else {
                c(&String::from_utf8_lossy(
                    &std::fs::read(&path).expect("read"),
                ));
            }
        }
    }
    walk(&common::testdata(), c);
}

fn parse_everything(text: &str) {
    let file = Path::new("fuzz.conf");
    let mut warnings = Vec::new();
    let mut m = ModprobeConfig::default();
    m.parse(text, file, &mut warnings);
    m.parse_cmdline(text, &mut warnings);
    let _ = m.show_config();
    let mut d = DepmodConfig::default();
    DepmodConfig::parse(text, file, &mut d, &mut warnings);
    let d = d.for_kernel("6.1.0-28-amd64");
    let _ = d.rank(Some("updates/x.ko"));
    for w in &warnings {
        let _ = w.to_string();
        assert!(w.file().is_some() || w.line().is_none());
    }
}

#[test]
fn every_prefix_of_every_testdata_file() {
    let mut files = 0;
    all_inputs(&mut |text| {
        files += 1;
        for (i, _) in text.char_indices() {
            parse_everything(&text[..i]);
        }
        parse_everything(text);
    });
    assert!(files > 20, "only {files} files");
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn generated_garbage() {
    const ALPHABET: &[u8] = b"ab-_.=\"\\\n\t \x0b\r[]#*:?+(){},|^$0123456789\0";
    const WORDS: &[&str] = &[
        "alias ",
        "options ",
        "softdep ",
        "pre: ",
        "post: ",
        "install ",
        "remove ",
        "blacklist ",
        "weakdep ",
        "search ",
        "override ",
        "external ",
        "exclude ",
        "modprobe.blacklist=",
        "built-in ",
        "\\\n",
        "\"",
        "é",
        "[",
        "]",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..3000 {
        let len = (rng.next() % 80) as usize;
        let mut s = String::new();
        for _ in 0..len {
            let r = rng.next();
            if r.is_multiple_of(4) {
                s.push_str(WORDS[(r / 4 % WORDS.len() as u64) as usize]);
            } else {
                s.push(char::from(
                    ALPHABET[(r / 4 % ALPHABET.len() as u64) as usize],
                ));
            }
        }
        parse_everything(&s);
        // Kernel patterns: arbitrary text as a regex never panics or hangs.
        let _ = kernel_matches(&s, "6.1.0-28-amd64");
        let _ = kernel_matches("6.1.0", &s);
    }
}

#[test]
fn pathological_regex_terminates() {
    let long = "a".repeat(200);
    assert!(!kernel_matches("(a*)*(a*)*(a*)*b", &long));
    assert!(!kernel_matches("((((((((((a*)*)*)*)*)*)*)*)*)*)*b", &long));
    assert!(kernel_matches("(a|aa)*$", &long));
}
