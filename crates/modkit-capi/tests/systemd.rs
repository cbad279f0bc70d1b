//! Real clients' probe path on the host: Debian's own `systemd-modules-load` (through
//! libsystemd-shared's `module_load_and_warn`: lookup, initstate, `probe_insert_module` with
//! `KMOD_PROBE_APPLY_BLACKLIST`) and udevd's kmod builtin (`udevadm test-builtin 'kmod load
//! ...'`, its own copy of that code, with `kmod_validate_resources`) in a chroot whose
//! `/lib/modules/$(uname -r)` is Debian's 6.1 tree, given a built-in module, a blacklisted one
//! (by name and by a modalias of it) and one that does not exist: with Debian's
//! `libkmod.so.2` and with modkit's each says the same and exits the same. Nothing is loaded: every name is answered before any syscall, and the
//! chroot runs without `CAP_SYS_MODULE` all the same (setpriv), so a mistake could only fail.
#![forbid(unsafe_code)]

mod support;

use std::path::Path;
use std::process::Output;

use modkit_testkit::{Missing, Scratch, require};

use support::mount_namespace;

const MODULES_LOAD: &str = "/lib/systemd/systemd-modules-load";
const UDEVADM: &str = "/usr/bin/udevadm";

/// `command` in the chroot `root` with `library` as its libkmod.so.2, its log on the console
/// at debug level.
fn in_chroot(root: &Path, library: &Path, command: &[&str]) -> Output {
    support::in_chroot(root, library, command)
        .env("SYSTEMD_LOG_TARGET", "console")
        .env("SYSTEMD_LOG_LEVEL", "debug")
        .env("SYSTEMD_LOG_COLOR", "0")
        .env("SYSTEMD_LOG_LOCATION", "0")
        .output()
        .expect("unshare runs")
}

#[test]
fn same_answers_as_debian_libkmod() {
    let test = "systemd::same_answers_as_debian_libkmod";
    let Some(()) = require(test, mount_namespace()) else {
        return;
    };
    for (client, package) in [(MODULES_LOAD, "systemd"), (UDEVADM, "udev")] {
        let found = Path::new(client)
            .exists()
            .then_some(())
            .ok_or_else(|| Missing::new(client, format!("apt-get install {package}")));
        let Some(()) = require(test, found) else {
            return;
        };
    }
    let Some(debian) = require(test, support::debian_library()) else {
        return;
    };
    let Some(depmod) = require(test, modkit_testkit::kmod("depmod")) else {
        return;
    };
    let Some(cached) = require(test, modkit_testkit::kernel_modules_dir("6.1")) else {
        return;
    };
    let running = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let running = running.trim();

    let scratch = Scratch::new("capi-modules-load");
    let root = scratch.join("root");
    let dir = support::indexed_tree(&root, &cached, running, &depmod);

    // A built-in module of the tree, a module file that is not loaded here (blacklisted),
    // and a name nothing knows.
    let builtin = std::fs::read_to_string(dir.join("modules.builtin")).unwrap();
    let builtin = builtin
        .lines()
        .filter_map(|p| modkit::name::path_to_modname(Path::new(p)))
        .find(|name| !Path::new("/sys/module").join(name).exists())
        .expect("Debian 6.1 builds modules in");
    let blacklisted = ["e1000e", "snd_hda_intel", "btrfs"]
        .into_iter()
        .find(|name| !Path::new("/sys/module").join(name).exists())
        .expect("one of them is not loaded on this machine");
    let ours = support::our_library();
    support::install_programs(
        &root,
        &[Path::new(MODULES_LOAD), Path::new(UDEVADM)],
        &[&debian, &ours],
    );
    for dir in ["sys", "proc", "run"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    scratch.write(
        "root/etc/modules-load.d/test.conf",
        format!("{builtin}\n{blacklisted}\nno_such_module_anywhere\n"),
    );
    scratch.write(
        "root/etc/modprobe.d/test.conf",
        format!("blacklist {blacklisted}\n"),
    );

    // A modalias of the blacklisted module, from the tree's own modules.alias.
    let aliases = std::fs::read_to_string(dir.join("modules.alias")).unwrap();
    let modalias = aliases
        .lines()
        .filter_map(|l| l.strip_prefix("alias ")?.rsplit_once(' '))
        .find(|(pattern, module)| *module == blacklisted && pattern.starts_with("pci:"))
        .map(|(pattern, _)| pattern.replace('*', "0"))
        .expect("the module has a PCI alias");
    let builtin_load =
        format!("kmod load {builtin} {blacklisted} no_such_module_anywhere {modalias}");
    let clients: [&[&str]; 2] = [
        &[MODULES_LOAD],
        &[
            UDEVADM,
            "test-builtin",
            &builtin_load,
            "/sys/devices/virtual/mem/null",
        ],
    ];
    let text = |o: &Output| {
        format!(
            "status {:?}\nstdout:\n{}stderr:\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    for command in clients {
        let theirs = text(&in_chroot(&root, &debian, command));
        let mine = text(&in_chroot(&root, &ours, command));
        assert_eq!(mine, theirs, "{command:?}");
        println!("{command:?}:\n{theirs}");
        for expected in [
            format!("Module '{builtin}' is built in"),
            format!("Module '{blacklisted}' is deny-listed"),
            "Failed to find module 'no_such_module_anywhere'".to_owned(),
        ] {
            assert!(theirs.contains(&expected), "no {expected:?} in:\n{theirs}");
        }
        assert!(theirs.contains("status Some(0)"), "{theirs}");
    }
}
