//! How much faster a [`GlobSet`] is than testing every pattern with fnmatch, on a real
//! `modules.alias`: one concrete key per pattern (its `*`s made `00`), every key against the
//! whole set both ways. Not a test: timings are for people.
//!
//! `cargo run --release -p modkit-glob --example alias_speed -- /lib/modules/$(uname -r)/modules.alias`
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Instant;

use modkit_glob::{Glob, GlobSet, fnmatch, read_alias_file};

fn concretize(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str("00"),
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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .ok_or("usage: alias_speed MODULES.ALIAS")?,
    );
    let aliases = read_alias_file(&path)?;
    let mut keys: Vec<String> = aliases.iter().map(|a| concretize(&a.pattern)).collect();
    keys.sort();
    keys.dedup();

    let t = Instant::now();
    let set: GlobSet = aliases.iter().map(|a| Glob::new(&a.pattern)).collect();
    let build = t.elapsed();

    let t = Instant::now();
    let mut out = Vec::new();
    let mut set_hits = 0;
    for key in &keys {
        set.matches_into(key, &mut out);
        set_hits += out.len();
    }
    let fast = t.elapsed();

    let t = Instant::now();
    let mut linear_hits = 0;
    for key in &keys {
        linear_hits += aliases
            .iter()
            .filter(|a| fnmatch(a.pattern.as_bytes(), key.as_bytes()))
            .count();
    }
    let slow = t.elapsed();

    assert_eq!(
        set_hits, linear_hits,
        "the set and the linear scan disagree"
    );
    println!(
        "{} patterns, {} keys, {set_hits} matches\nGlobSet build {build:?}\nGlobSet   {fast:?} ({:.2} us/key)\nlinear    {slow:?} ({:.2} us/key)\nspeed-up  {:.0}x",
        aliases.len(),
        keys.len(),
        fast.as_secs_f64() * 1e6 / keys.len() as f64,
        slow.as_secs_f64() * 1e6 / keys.len() as f64,
        slow.as_secs_f64() / fast.as_secs_f64(),
    );
    Ok(())
}
