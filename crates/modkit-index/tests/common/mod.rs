//! Shared test helpers: rebuild depmod's indexes from its text outputs, the way depmod
//! builds them from module data (kmod 30 `tools/depmod.c`, `output_*_bin`).

#![allow(dead_code)] // reason: each test binary uses a different subset of the helpers

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use modkit_index::IndexBuilder;

/// kmod's `path_to_modname` (modkit-glob's), for modules.dep paths (never empty).
pub fn modname(path: &str) -> String {
    modkit_glob::name::path_to_modname(path).unwrap()
}

/// kmod's `alias_normalize` / depmod's `underscores2` (modkit-glob's).
pub use modkit_glob::name::alias_normalize as normalize_alias;

/// Module name -> module index (its line number in modules.dep).
pub fn module_indexes(modules_dep: &str) -> HashMap<String, u32> {
    modules_dep
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let path = line.split(':').next().unwrap();
            (modname(path), i as u32)
        })
        .collect()
}

/// modules.dep.bin: key module name, value the whole modules.dep line, priority its index.
pub fn dep_builder(modules_dep: &str) -> IndexBuilder {
    let mut b = IndexBuilder::new();
    for (i, line) in modules_dep.lines().enumerate() {
        let path = line.split(':').next().unwrap();
        b.insert(&modname(path), line, i as u32).unwrap();
    }
    b
}

/// modules.alias.bin from modules.alias (`alias PATTERN MODULE`), priorities from modules.dep.
pub fn alias_builder(modules_alias: &str, modules_dep: &str) -> IndexBuilder {
    let idx = module_indexes(modules_dep);
    let mut b = IndexBuilder::new();
    for line in modules_alias.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split(' ');
        assert_eq!(words.next(), Some("alias"), "{line}");
        let (pattern, module) = (words.next().unwrap(), words.next().unwrap());
        if let Some(key) = normalize_alias(pattern) {
            b.insert(&key, module, idx[module]).unwrap();
        }
    }
    b
}

/// modules.symbols.bin from modules.symbols (`alias symbol:NAME MODULE`).
pub fn symbols_builder(modules_symbols: &str, modules_dep: &str) -> IndexBuilder {
    let idx = module_indexes(modules_dep);
    let mut b = IndexBuilder::new();
    for line in modules_symbols.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split(' ');
        assert_eq!(words.next(), Some("alias"), "{line}");
        let (key, module) = (words.next().unwrap(), words.next().unwrap());
        b.insert(key, module, idx[module]).unwrap();
    }
    b
}

/// modules.builtin.bin from modules.builtin: key module name, empty value, priority 0; lines
/// not starting with a letter are skipped, as depmod does.
pub fn builtin_builder(modules_builtin: &str) -> IndexBuilder {
    let mut b = IndexBuilder::new();
    for line in modules_builtin.lines() {
        if line.starts_with(|c: char| c.is_ascii_alphabetic()) {
            b.insert(&modname(line), "", 0).unwrap();
        }
    }
    b
}

/// modules.builtin.alias.bin from modules.builtin.modinfo (`module.key=value` NUL-separated):
/// key the normalized alias, value the module name, priority 0, in file order.
pub fn builtin_alias_builder(builtin_modinfo: &[u8]) -> IndexBuilder {
    let mut b = IndexBuilder::new();
    for record in builtin_modinfo.split(|&c| c == 0) {
        let record = std::str::from_utf8(record).unwrap();
        let Some((module, rest)) = record.split_once('.') else {
            continue;
        };
        let Some((key, value)) = rest.split_once('=') else {
            continue;
        };
        if module.is_empty() || key != "alias" || value.is_empty() {
            continue;
        }
        if let Some(alias) = normalize_alias(value) {
            b.insert(&alias, module, 0).unwrap();
        }
    }
    b
}

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn read_string(path: &Path) -> String {
    String::from_utf8(read(path)).unwrap()
}
