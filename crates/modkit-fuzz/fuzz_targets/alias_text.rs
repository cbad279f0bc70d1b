//! Fuzz target: a `modules.alias` text file through both readers (whole text and streaming,
//! which must agree), alias normalisation, the matcher, and a write/read round trip.
#![no_main]
#![forbid(unsafe_code)]

use std::path::Path;

use modkit_glob::name::alias_normalize;
use modkit_glob::{AliasMatcher, parse_aliases, read_aliases, write_modules_alias};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let path = Path::new("/lib/modules/6.1.0-fuzz/modules.alias");
    let streamed = read_aliases(data, path);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_aliases(text, path);
    match (&parsed, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "the two readers differ"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("one reader fails: {parsed:?} / {streamed:?}"),
    }
    let Ok(aliases) = parsed else { return };
    for a in aliases.iter().take(32) {
        let _ = alias_normalize(&a.pattern);
    }
    let mut out = Vec::new();
    if write_modules_alias(&mut out, &aliases, path).is_ok() {
        let again = read_aliases(out.as_slice(), path).expect("own output reads back");
        assert_eq!(again, aliases, "round trip");
    }
    let keys: Vec<String> = aliases
        .iter()
        .take(8)
        .map(|a| a.pattern.replace(['*', '?'], "x"))
        .collect();
    let matcher = AliasMatcher::new(aliases);
    for key in &keys {
        let _ = matcher.modules(key);
    }
});
