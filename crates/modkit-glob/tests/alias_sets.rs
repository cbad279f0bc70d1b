//! Real alias sets: the committed sample of Debian 6.1's modules.alias, and the whole file
//! when the xtask's kernel cache and kmod are there. A [`GlobSet`] must give exactly the
//! matches of testing every pattern; the text format must round-trip byte for byte.
#![deny(unsafe_code)] // Only the libc oracle in common/ allows it.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use common::{Scratch, concretize, libc_fnmatch, testdata};
use modkit_glob::{Alias, AliasMatcher, Glob, GlobSet, fnmatch, read_aliases, write_modules_alias};

/// Concrete keys for a set of patterns: each pattern with its `*`s made empty and made a
/// filler, so that keys hit their own pattern and often others of the same family.
fn keys_for(aliases: &[Alias]) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for a in aliases {
        for variant in ["", "00", "0A1b"] {
            keys.insert(concretize(&a.pattern, variant));
        }
    }
    keys.into_iter().collect()
}

/// Compare the set with a linear scan by `matcher` on every key; the number of matches.
///
/// With `prefilter`, patterns are first bucketed by up to 16 bytes of their literal prefix so
/// that 26k x 26k pairs run in seconds in a debug build. That is sound by fnmatch's
/// definition alone: the bytes before the first `*`, `?`, `[` or `\\` match themselves, so a
/// key that does not start with them cannot match.
fn check_set(
    aliases: &[Alias],
    keys: &[String],
    prefilter: bool,
    matcher: impl Fn(&[u8], &[u8]) -> bool,
) -> usize {
    const BUCKET: usize = 16;
    let literal = |p: &[u8]| {
        p.len().min(
            p.iter()
                .position(|b| b"*?[\\".contains(b))
                .unwrap_or(p.len()),
        )
    };
    let mut buckets: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (id, a) in aliases.iter().enumerate() {
        let p = a.pattern.as_bytes();
        let key = if prefilter {
            &p[..literal(p).min(BUCKET)]
        } else {
            &p[..0]
        };
        buckets.entry(key).or_default().push(id);
    }
    let set: GlobSet = aliases.iter().map(|a| Glob::new(&a.pattern)).collect();
    let mut hits = 0;
    let mut got = Vec::new();
    for key in keys {
        let k = key.as_bytes();
        let mut expected: Vec<usize> = (0..=k.len().min(BUCKET))
            .filter_map(|n| buckets.get(&k[..n]))
            .flatten()
            .copied()
            .filter(|&id| matcher(aliases[id].pattern.as_bytes(), k))
            .collect();
        expected.sort_unstable();
        set.matches_into(key, &mut got);
        assert_eq!(got, expected, "key {key:?}");
        hits += expected.len();
    }
    hits
}

fn sample() -> (Vec<u8>, Vec<Alias>) {
    let path = testdata("modules.alias");
    let bytes = std::fs::read(&path).unwrap();
    let aliases = read_aliases(&bytes[..], &path).unwrap();
    (bytes, aliases)
}

#[test]
fn sample_set_matches_libc_linear_scan() {
    let (_, aliases) = sample();
    assert_eq!(aliases.len(), 1696);
    let keys = keys_for(&aliases);
    let hits = check_set(&aliases, &keys, false, libc_fnmatch);
    eprintln!(
        "{} keys x {} patterns compared with libc, {hits} matches",
        keys.len(),
        aliases.len()
    );
    assert!(
        hits >= keys.len(),
        "every key should hit at least its own pattern"
    );
}

#[test]
fn sample_round_trips_byte_for_byte() {
    let (bytes, aliases) = sample();
    let mut out = Vec::new();
    write_modules_alias(&mut out, &aliases, Path::new("out")).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(bytes).unwrap()
    );
}

#[test]
fn sample_matcher_finds_known_modules() {
    let (_, aliases) = sample();
    let m = AliasMatcher::new(aliases);
    assert_eq!(
        m.modules("pci:v00008086d000010CEsv00008086sd00000000bc02sc00i00"),
        ["e1000e"]
    );
    assert!(
        m.modules("pci:v00008086d000010CFsv00008086sd00000000bc02sc00i00")
            .is_empty()
    );
}

#[test]
fn full_debian_61_alias_set() {
    let test = "full_debian_61_alias_set";
    let scratch = Scratch::new("glob-full61");
    let Some(bytes) = modkit_testkit::require(test, common::debian_61_modules_alias(&scratch))
    else {
        return;
    };
    let aliases = read_aliases(&bytes[..], Path::new("modules.alias")).unwrap();
    // Every `alias` line of kmod's file is one pattern (Debian's 6.1 trees have had about
    // 26,000; the count moves with security updates, so it comes from the file itself).
    let lines = bytes
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"alias "))
        .count();
    assert!(lines > 20_000, "kmod wrote only {lines} aliases");
    assert_eq!(aliases.len(), lines);

    let mut out = Vec::new();
    write_modules_alias(&mut out, &aliases, Path::new("out")).unwrap();
    assert!(
        out == bytes,
        "modules.alias does not round-trip byte for byte"
    );

    // One key per pattern (as the bench resolves them), compared with every pattern.
    let keys: Vec<String> = aliases
        .iter()
        .map(|a| concretize(&a.pattern, "00"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let hits = check_set(&aliases, &keys, true, fnmatch);
    eprintln!(
        "{} keys x {} patterns: {} comparisons, {hits} matches",
        keys.len(),
        aliases.len(),
        keys.len() * aliases.len()
    );
    assert!(hits >= keys.len());
}
