//! Our lookups over kmod's own index files give what kmod's modprobe gives: `--show-depends`
//! for every module (modules.dep.bin exact lookup) and `--resolve-alias` for modalias strings
//! (modules.alias.bin wildcard lookup, kmod's value order and duplicates included).
#![forbid(unsafe_code)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use modkit_index::{Index, WildMemo};
use modkit_testkit::require;

const VERSION: &str = "6.1.0-56-amd64";

/// A module root made of the testdata indexes, with empty placeholder `.ko` files (modprobe
/// checks that the files exist) and an empty config directory.
struct Root(PathBuf);

impl Root {
    fn new(tag: &str) -> Root {
        let root = std::env::temp_dir().join(format!("modkit-index-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("lib/modules").join(VERSION);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(root.join("etc/modprobe.d")).unwrap();
        for entry in std::fs::read_dir(testdata("")).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("modules.")
            {
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
        }
        for line in read_string(&dir.join("modules.dep")).lines() {
            let ko = dir.join(line.split(':').next().unwrap());
            std::fs::create_dir_all(ko.parent().unwrap()).unwrap();
            std::fs::write(ko, b"").unwrap();
        }
        Root(root)
    }

    fn dir(&self) -> PathBuf {
        self.0.join("lib/modules").join(VERSION)
    }

    /// kmod's `modprobe` (the path [`kmod_modprobe`] found) over this root.
    fn modprobe(&self, modprobe: &Path, args: &[&str]) -> Vec<String> {
        let out = Command::new(modprobe)
            .arg("-C")
            .arg(self.0.join("etc/modprobe.d"))
            .arg("-d")
            .arg(&self.0)
            .args(["-S", VERSION])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// kmod 30's modprobe, or `None` after a skip (outside CI; under CI a failure).
fn kmod_modprobe(test: &str) -> Option<PathBuf> {
    require(test, modkit_testkit::kmod("modprobe"))
}

#[test]
fn show_depends_agrees_with_dep_bin() {
    let Some(modprobe) = kmod_modprobe("show_depends_agrees_with_dep_bin") else {
        return;
    };
    let root = Root::new("show-depends");
    let dir = root.dir();
    let index = Index::open(dir.join("modules.dep.bin")).unwrap();
    let dep = read_string(&dir.join("modules.dep"));
    let mut compared = 0;
    for line in dep.lines() {
        let name = modname(line.split(':').next().unwrap());
        let value = index
            .get(&name)
            .unwrap()
            .expect("every module is in modules.dep.bin");
        assert_eq!(value, line);
        // modprobe prints one `insmod PATH` per module to load, the module itself last.
        let (path, deps) = value.split_once(':').unwrap();
        let expected: BTreeSet<PathBuf> = deps
            .split_whitespace()
            .chain([path])
            .map(|p| dir.join(p))
            .collect();
        let printed = root.modprobe(&modprobe, &["--show-depends", &name]);
        let got: BTreeSet<PathBuf> = printed
            .iter()
            .map(|l| PathBuf::from(l.strip_prefix("insmod ").unwrap().trim_end()))
            .collect();
        assert_eq!(got, expected, "{name}");
        let last = printed.last().unwrap();
        assert_eq!(
            Path::new(last.strip_prefix("insmod ").unwrap().trim_end()),
            dir.join(path)
        );
        compared += 1;
    }
    assert_eq!(compared, dep.lines().count());
}

/// A concrete string that the alias pattern matches: wildcards filled in.
fn concretize(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str("00"),
            '?' => out.push('0'),
            '[' => {
                // Take the set's first member.
                let mut first = None;
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    first.get_or_insert(c);
                }
                out.extend(first);
            }
            c => out.push(c),
        }
    }
    out
}

#[test]
fn resolve_alias_agrees_with_alias_bin() {
    let Some(modprobe) = kmod_modprobe("resolve_alias_agrees_with_alias_bin") else {
        return;
    };
    let root = Root::new("resolve-alias");
    let dir = root.dir();
    let alias = Index::open(dir.join("modules.alias.bin")).unwrap();
    let builtin_alias = Index::open(dir.join("modules.builtin.alias.bin")).unwrap();
    let text = read_string(&dir.join("modules.alias"));
    let patterns: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("alias "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut queries: Vec<String> = patterns.iter().step_by(7).map(|p| concretize(p)).collect();
    queries.extend(
        [
            "acpi:10EC5640:",
            "cpu:type:x86,ven0000fam0006mod006A:feature:,0001",
            "pci:v00001131d00007133sv0000185Bsd0000C100bc04sc80i00",
            "shared-test",
            "fs-tracefs",
            "no:such:alias",
        ]
        .map(String::from),
    );
    let mut nonempty = 0;
    let mut multi = 0;
    let (mut memo, mut builtin_memo) = (WildMemo::new(), WildMemo::new());
    for q in &queries {
        let mut kept = Vec::new();
        // modprobe normalizes the name (`-` to `_` outside brackets), then, for a name that
        // no module is called and no config mentions: modules.alias.bin, then the built-in
        // aliases.
        let key = normalize_alias(q).unwrap();
        let mut expected: Vec<&str> = alias
            .search_wild(&key)
            .unwrap()
            .iter()
            .map(|v| v.value)
            .collect();
        if expected.is_empty() {
            expected = builtin_alias
                .search_wild(&key)
                .unwrap()
                .iter()
                .map(|v| v.value)
                .collect();
        }
        let got = root.modprobe(&modprobe, &["-R", q]);
        assert_eq!(got, expected, "modprobe -R {q}");
        // The memo's answer (what modkit's `modprobe -a` gives) is the walk's.
        alias.search_wild_memo(&key, &mut memo, &mut kept).unwrap();
        if kept.is_empty() {
            builtin_alias
                .search_wild_memo(&key, &mut builtin_memo, &mut kept)
                .unwrap();
        }
        let kept: Vec<&str> = kept.iter().map(|v| v.value).collect();
        assert_eq!(kept, expected, "memo, {q}");
        nonempty += usize::from(!expected.is_empty());
        multi += usize::from(expected.len() > 1);
    }
    assert!(
        nonempty > queries.len() * 9 / 10,
        "{nonempty} of {}",
        queries.len()
    );
    assert!(multi >= 3, "only {multi} queries with several modules");
}
