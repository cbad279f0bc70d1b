//! A real client on the host: Debian's own `lspci -k` (pciutils), run in a chroot whose
//! `/lib/modules/$(uname -r)` is Debian's 6.1 or 6.12 tree indexed by kmod's depmod, once
//! with Debian's `libkmod.so.2` in the chroot and once with modkit's, prints the same
//! "Kernel driver in use" and "Kernel modules" lines for this machine's PCI devices. The
//! chroot holds copies of lspci and the libraries it loads; `/sys` and `/proc` are mounted
//! in a private mount namespace (root, as CI runs; the host is not touched).
#![forbid(unsafe_code)]

mod support;

use std::path::Path;

use modkit_testkit::{Missing, Scratch, require};

use support::{copy_in, mount_namespace};

const LSPCI: &str = "/usr/bin/lspci";

/// `lspci -k` in the chroot `root` with `library` as its libkmod.so.2.
fn lspci(root: &Path, library: &Path) -> String {
    let out = support::in_chroot(root, library, &[LSPCI, "-k", "-A", "linux-sysfs"])
        .output()
        .expect("unshare runs");
    assert!(
        out.status.success(),
        "lspci with {}: {:?} {}",
        library.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Compares lspci -k over one tree; the number of "Kernel modules" lines, or None when a
/// prerequisite is missing (outside CI).
fn compare(test: &str, series: &str) -> Option<usize> {
    require(test, mount_namespace())?;
    let lspci_found = Path::new(LSPCI)
        .exists()
        .then_some(())
        .ok_or_else(|| Missing::new(LSPCI, "apt-get install pciutils"));
    require(test, lspci_found)?;
    let debian = require(test, support::debian_library())?;
    let depmod = require(test, modkit_testkit::kmod("depmod"))?;
    let cached = require(test, modkit_testkit::kernel_modules_dir(series))?;
    let running = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let running = running.trim();

    let scratch = Scratch::new(&format!("capi-lspci-{series}"));
    let root = scratch.join("root");
    // Debian's tree as the running kernel's, indexed by kmod's depmod.
    support::indexed_tree(&root, &cached, running, &depmod);
    let ours = support::our_library();
    support::install_programs(&root, &[Path::new(LSPCI)], &[&debian, &ours]);
    if Path::new("/usr/share/misc/pci.ids").exists() {
        copy_in(&root, Path::new("/usr/share/misc/pci.ids"));
    }
    for dir in ["sys", "proc", "etc"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }

    let theirs = lspci(&root, &debian);
    let mine = lspci(&root, &ours);
    assert_eq!(mine, theirs, "{series}: lspci -k differs");
    let modules = theirs
        .lines()
        .filter(|l| l.trim_start().starts_with("Kernel modules: "))
        .count();
    let devices = theirs.lines().filter(|l| !l.starts_with('\t')).count();
    println!("{series}: lspci -k identical over {devices} devices, {modules} with kernel modules");
    assert!(devices > 0, "{series}: no PCI device to compare");
    Some(modules)
}

/// Over both trees: which modules a device gets depends on the machine's devices and the
/// tree (Debian 6.12 builds virtio_pci in), so the lookups are counted over both.
#[test]
fn same_kernel_modules_as_debian_libkmod() {
    let test = "lspci::same_kernel_modules_as_debian_libkmod";
    let mut modules = 0;
    for series in ["6.1", "6.12"] {
        let Some(found) = compare(test, series) else {
            return;
        };
        modules += found;
    }
    assert!(
        modules > 0,
        "no device got a 'Kernel modules' line from either tree"
    );
}
