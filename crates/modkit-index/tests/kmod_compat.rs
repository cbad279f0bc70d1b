//! Byte identity with kmod 30's depmod, and lookups that agree with kmod's modprobe.
//!
//! `testdata/` holds the output of kmod 30 `depmod` for a small tree (a subset of Debian's
//! 6.1 amd64 modules); see `testdata/README.md`. The full-tree test reruns depmod over the
//! whole Debian 6.1 tree when the xtask's kernel cache and kmod are present.
#![forbid(unsafe_code)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use modkit_index::{Index, IndexBuilder, Layout};
use modkit_testkit::{Scratch, require};

/// The five indexes depmod writes, and how to rebuild each from depmod's text files in `dir`.
fn rebuild(dir: &Path, name: &str) -> IndexBuilder {
    let text = |f: &str| read_string(&dir.join(f));
    match name {
        "modules.dep.bin" => dep_builder(&text("modules.dep")),
        "modules.alias.bin" => alias_builder(&text("modules.alias"), &text("modules.dep")),
        "modules.symbols.bin" => symbols_builder(&text("modules.symbols"), &text("modules.dep")),
        "modules.builtin.bin" => builtin_builder(&text("modules.builtin")),
        "modules.builtin.alias.bin" => {
            builtin_alias_builder(&read(&dir.join("modules.builtin.modinfo")))
        }
        _ => unreachable!("{name}"),
    }
}

const INDEXES: [&str; 5] = [
    "modules.dep.bin",
    "modules.alias.bin",
    "modules.symbols.bin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
];

/// Check every index in `dir` both ways: text -> builder -> bytes, and bytes -> reader ->
/// builder -> bytes, in kmod 30's post-order layout. Returns (file, size) pairs.
fn check_dir(dir: &Path) -> Vec<(String, usize)> {
    let mut checked = Vec::new();
    for name in INDEXES {
        let path = dir.join(name);
        let kmod = read(&path);
        let built = rebuild(dir, name).write(Layout::PostOrder).unwrap();
        assert!(built == kmod, "{name}: text -> index differs from kmod's");

        let index = Index::open(&path).unwrap();
        let again = IndexBuilder::from_index(&index)
            .unwrap()
            .write(Layout::PostOrder)
            .unwrap();
        assert!(again == kmod, "{name}: read -> rebuild differs from kmod's");

        // The pre-order file holds the same contents.
        let pre = IndexBuilder::from_index(&index)
            .unwrap()
            .write(Layout::PreOrder)
            .unwrap();
        assert_eq!(pre.len(), kmod.len(), "{name}: layouts differ in size");
        assert_eq!(
            Index::from_bytes(&pre).unwrap().dump().unwrap(),
            index.dump().unwrap(),
            "{name}: pre-order dump differs"
        );
        checked.push((name.to_owned(), kmod.len()));
    }
    checked
}

#[test]
fn testdata_is_byte_identical_to_kmod30() {
    let checked = check_dir(&testdata(""));
    assert_eq!(checked.len(), 5);
}

#[test]
fn full_debian_61_tree_is_byte_identical_to_kmod30() {
    let test = "full_debian_61_tree_is_byte_identical_to_kmod30";
    let Some(tree) = require(test, modkit_testkit::kernel_modules_dir("6.1")) else {
        return;
    };
    let Some(depmod) = require(test, modkit_testkit::kmod("depmod")) else {
        return;
    };
    let version = tree.file_name().unwrap().to_str().unwrap().to_owned();
    let scratch = Scratch::new("index-full");
    let modules = scratch.0.join("lib/modules");
    std::fs::create_dir_all(&modules).unwrap();
    // Hard links: depmod replaces its outputs by rename, so the cache is never written.
    let status = Command::new("cp")
        .arg("-al")
        .arg(&tree)
        .arg(&modules)
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new(depmod)
        .arg("-b")
        .arg(&scratch.0)
        .arg(&version)
        .status()
        .unwrap();
    assert!(status.success());
    let checked = check_dir(&modules.join(&version));
    let total: usize = checked.iter().map(|(_, n)| n).sum();
    eprintln!("byte-identical to kmod 30 over {total} bytes: {checked:?}");
    assert!(total > 2_000_000, "{checked:?}");
}
