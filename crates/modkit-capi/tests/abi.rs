//! The ABI of modkit's `libkmod.so.2` against Debian's: the soname, the version nodes and
//! their parents, every exported function in the node Debian's library exports it from, and
//! every `kmod_*` function the clients (udevd's kmod builtin, libsystemd-shared's
//! `module_load_and_warn`, `systemd-modules-load`, `lspci`) import, at the version they
//! import it.
#![forbid(unsafe_code)]

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use modkit_testkit::{Missing, require};

/// What the crate documentation lists per client: (binary, functions it imports), read from
/// Debian 12's packages with `objdump -T`.
const CLIENTS: &[(&str, &[&str])] = &[
    (
        "/usr/bin/udevadm",
        &[
            "kmod_list_next",
            "kmod_load_resources",
            "kmod_module_get_initstate",
            "kmod_module_get_module",
            "kmod_module_get_name",
            "kmod_module_new_from_lookup",
            "kmod_module_probe_insert_module",
            "kmod_module_unref",
            "kmod_module_unref_list",
            "kmod_new",
            "kmod_set_log_fn",
            "kmod_unref",
            "kmod_validate_resources",
        ],
    ),
    (
        "/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-252.so",
        &[
            "kmod_list_next",
            "kmod_module_get_initstate",
            "kmod_module_get_module",
            "kmod_module_get_name",
            "kmod_module_new_from_lookup",
            "kmod_module_probe_insert_module",
            "kmod_module_unref",
            "kmod_module_unref_list",
        ],
    ),
    (
        "/lib/systemd/systemd-modules-load",
        &[
            "kmod_load_resources",
            "kmod_new",
            "kmod_set_log_fn",
            "kmod_unref",
        ],
    ),
    (
        "/usr/bin/lspci",
        &[
            "kmod_list_next",
            "kmod_load_resources",
            "kmod_module_get_module",
            "kmod_module_get_name",
            "kmod_module_new_from_lookup",
            "kmod_module_unref",
            "kmod_module_unref_list",
            "kmod_new",
            "kmod_unref",
        ],
    ),
];

fn objdump(args: &[&str], file: &Path) -> String {
    let out = Command::new("objdump")
        .args(args)
        .arg(file)
        .output()
        .expect("objdump runs");
    assert!(out.status.success(), "objdump {args:?} {}", file.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have_objdump() -> Result<(), Missing> {
    Command::new("objdump")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
        .ok_or_else(|| Missing::new("objdump", "apt-get install binutils"))
}

/// `(name, version)` of the `kmod_*` functions a file defines (`defined`) or imports.
fn dynamic_symbols(file: &Path, defined: bool) -> BTreeSet<(String, String)> {
    objdump(&["-T"], file)
        .lines()
        .filter(|l| l.contains("*UND*") != defined)
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let name = *words.last()?;
            let version = words.get(words.len().checked_sub(2)?)?;
            name.starts_with("kmod_")
                .then(|| (name.to_owned(), version.trim_matches(['(', ')']).to_owned()))
        })
        .collect()
}

/// The "Version definitions" and SONAME lines of `objdump -p`.
fn version_definitions(file: &Path) -> (Vec<String>, String) {
    let text = objdump(&["-p"], file);
    let soname = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("SONAME"))
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let definitions = text
        .lines()
        .skip_while(|l| !l.starts_with("Version definitions:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            // "2 0x00 0x07026af5 LIBKMOD_5": the node; an indented line is its parent.
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                [parent] => format!("  parent {parent}"),
                [.., flags, _, name] => format!("{name} {flags}"),
                _ => l.trim().to_owned(),
            }
        })
        .collect();
    (definitions, soname)
}

#[test]
fn exports_debian_symbols_and_version_nodes() {
    let test = "abi::exports_debian_symbols_and_version_nodes";
    let Some(()) = require(test, have_objdump()) else {
        return;
    };
    let Some(debian) = require(test, support::debian_library()) else {
        return;
    };
    let ours = support::our_library();

    let theirs = dynamic_symbols(&debian, true);
    let mine = dynamic_symbols(&ours, true);
    assert!(
        theirs.len() >= 70,
        "Debian's library exports {}",
        theirs.len()
    );
    let missing: Vec<_> = theirs.difference(&mine).collect();
    assert!(missing.is_empty(), "not exported as Debian's: {missing:?}");
    let extra: Vec<_> = mine.difference(&theirs).collect();
    assert!(extra.is_empty(), "exported beyond Debian's: {extra:?}");

    let (their_nodes, their_soname) = version_definitions(&debian);
    let (my_nodes, my_soname) = version_definitions(&ours);
    assert_eq!(their_soname, "libkmod.so.2");
    assert_eq!(my_soname, their_soname);
    // The first definition names the file itself. The nodes' parent links (`LIBKMOD_6`
    // inherits `LIBKMOD_5`, ...) are informational, never used by the dynamic loader, and
    // rust's default linker (lld) does not record them; the nodes themselves must match.
    let nodes = |all: &[String]| -> Vec<String> {
        all.iter()
            .skip(1)
            .filter(|l| !l.starts_with("  parent "))
            .cloned()
            .collect()
    };
    assert_eq!(nodes(&my_nodes), nodes(&their_nodes));
    assert!(their_nodes.len() >= 4, "{their_nodes:?}");

    // Nothing else is exported: no Rust symbol leaks into the C namespace.
    let other: Vec<String> = objdump(&["-T"], &ours)
        .lines()
        .filter(|l| !l.contains("*UND*") && l.contains(" g "))
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .filter(|name| !name.starts_with("kmod_") && !name.starts_with("LIBKMOD_"))
        .collect();
    assert!(other.is_empty(), "other exports: {other:?}");
}

#[test]
fn covers_what_the_clients_import() {
    let test = "abi::covers_what_the_clients_import";
    let Some(()) = require(test, have_objdump()) else {
        return;
    };
    let mine = dynamic_symbols(&support::our_library(), true);
    let mut checked = 0;
    for (client, documented) in CLIENTS {
        let path = Path::new(client);
        let package = match *client {
            "/usr/bin/lspci" => "pciutils",
            "/usr/bin/udevadm" => "udev",
            "/lib/systemd/systemd-modules-load" => "systemd",
            _ => "libsystemd-shared",
        };
        let found = path
            .exists()
            .then_some(())
            .ok_or_else(|| Missing::new(*client, format!("apt-get install {package}")));
        let Some(()) = require(test, found) else {
            return;
        };
        let imports = dynamic_symbols(path, false);
        let names: BTreeSet<&str> = imports.iter().map(|(n, _)| n.as_str()).collect();
        let listed: BTreeSet<&str> = documented.iter().copied().collect();
        assert_eq!(names, listed, "{client}: the documented list is stale");
        for import in &imports {
            assert!(
                mine.contains(import),
                "{client} imports {import:?}, not exported"
            );
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked} imports checked");
}
