//! The host side of the coldplug scenario (vmtest/src/scenarios/coldplug.rs): the PCI devices
//! QEMU attaches (virtio-net, virtio-blk with a small raw disk image, e1000, virtio-rng), and
//! the Debian modules their drivers need, with their dependencies as modkit's own `depmod`
//! and `modprobe --show-depends` resolve them in the kernel's tree, for `/coldplug` in the
//! initramfs (unindexed: the guest runs depmod).

use std::path::{Path, PathBuf};

use ::vmtest::coldplug::DRIVERS;
use anyhow::{Context, Result, ensure};
use xshell::{Shell, cmd};

use crate::kernels::KernelTree;

/// The disk image's size: small, it only has to exist.
const DISK_SIZE: u64 = 1 << 20;

/// QEMU's arguments for the devices, with `disk` as the virtio disk.
pub fn qemu_args(disk: &Path) -> Vec<String> {
    [
        "-drive",
        &format!(
            "file={},if=none,id=coldplug-disk,format=raw",
            disk.display()
        ),
        "-device",
        "virtio-blk-pci,drive=coldplug-disk",
        "-netdev",
        "user,id=coldplug-net0",
        "-device",
        "virtio-net-pci,netdev=coldplug-net0",
        "-netdev",
        "user,id=coldplug-net1",
        "-device",
        "e1000,netdev=coldplug-net1",
        "-device",
        "virtio-rng-pci",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Where [`write_disk`] puts the disk image in `dir`.
pub fn disk_path(dir: &Path) -> PathBuf {
    dir.join("coldplug-disk.img")
}

/// Writes the raw disk image in `dir` (anew: a guest may have written to it).
pub fn write_disk(dir: &Path) -> Result<PathBuf> {
    let path = disk_path(dir);
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.set_len(DISK_SIZE)
        .with_context(|| format!("cannot size {}", path.display()))?;
    Ok(path)
}

/// Directories and files for the initramfs.
#[derive(Debug, Default)]
pub struct Files {
    dirs: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
}

impl Files {
    pub fn add_to(&self, archive: &mut modkit_cpio::Archive) {
        for dir in &self.dirs {
            archive.dir(dir);
        }
        for (path, data) in &self.files {
            archive.file(path, 0o644, data.clone());
        }
    }

    fn dir(&mut self, path: &str) {
        if !self.dirs.iter().any(|d| d == path) {
            self.dirs.push(path.to_owned());
        }
    }
}

/// `kernel`'s module tree, indexed by the (host-runnable, static) `modkit depmod`: a
/// hard-linked copy kept in the cache (its incremental cache makes later runs instant), whose
/// root (`ROOT/lib/modules/RELEASE`) is returned. The coldplug and root scenarios take modules
/// from it.
pub fn indexed_tree(sh: &Shell, modkit: &Path, kernel: &KernelTree) -> Result<PathBuf> {
    let release = kernel.release.as_str();
    let root = std::path::absolute(crate::cache_dir())?
        .join("vmtest-coldplug")
        .join(release);
    let moddir = root.join("lib/modules").join(release);
    if !moddir.join("kernel").is_dir() {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(moddir.parent().context("module dir has a parent")?)?;
        let source = &kernel.modules_dir;
        ensure!(
            source.join("kernel").is_dir(),
            "{} has no kernel/ directory of modules",
            source.display()
        );
        cmd!(sh, "cp -al {source} {moddir}")
            .quiet()
            .run()
            .context("linking the module tree")?;
    }
    cmd!(sh, "{modkit} depmod -b {root} {release}")
        .quiet()
        .run()
        .context("indexing the kernel's modules with modkit depmod")?;
    Ok(root)
}

/// The drivers' modules and their dependencies from `kernel`'s tree, resolved by the
/// (host-runnable, static) `modkit` over [`indexed_tree`]: `modprobe --show-depends`.
pub fn modules(sh: &Shell, modkit: &Path, kernel: &KernelTree) -> Result<Files> {
    let tree = tree_files(sh, modkit, kernel, ::vmtest::coldplug::ROOT, DRIVERS)?;
    for name in DRIVERS {
        ensure!(
            tree.builtin.iter().any(|b| b == name) || tree.has_module(name),
            "modkit modprobe --show-depends named neither a module file nor a built-in module \
             for {name}:\n{}",
            tree.shown
        );
    }
    Ok(tree.files)
}

/// What [`tree_files`] found.
#[derive(Debug)]
pub struct Tree {
    /// The files for the initramfs.
    pub files: Files,
    /// The modules `--show-depends` named as built in.
    pub builtin: Vec<String>,
    /// What `--show-depends` printed (for error messages).
    pub shown: String,
}

impl Tree {
    /// Whether a file of the module `name` is in the tree.
    pub fn has_module(&self, name: &str) -> bool {
        self.files
            .files
            .iter()
            .any(|(p, _)| modkit_glob::name::path_to_modname(p).as_deref() == Some(name))
    }
}

/// `names` and their dependencies from `kernel`'s tree, resolved by the (host-runnable,
/// static) `modkit` over [`indexed_tree`] (`modprobe --show-depends -a`), laid out for the
/// initramfs under `guest_root/lib/modules/RELEASE` at their modules.dep paths, with the
/// kernel's `modules.builtin`, `modules.builtin.modinfo` and `modules.order`; unindexed.
pub fn tree_files(
    sh: &Shell,
    modkit: &Path,
    kernel: &KernelTree,
    guest_root: &str,
    names: &[&str],
) -> Result<Tree> {
    let release = kernel.release.as_str();
    let root = indexed_tree(sh, modkit, kernel)?;
    let moddir = root.join("lib/modules").join(release);
    let empty = root.join("modprobe.d");
    std::fs::create_dir_all(&empty)?;
    let shown = cmd!(
        sh,
        "{modkit} modprobe -d {root} -S {release} -C {empty} --show-depends -a {names...}"
    )
    .quiet()
    .read()
    .with_context(|| {
        format!("resolving the dependencies of {names:?} with modkit modprobe --show-depends")
    })?;

    let mut files = Files::default();
    let mut builtin = Vec::new();
    // Where the guest finds the module tree, as the archive names it.
    let guest_root = super::in_archive(guest_root);
    let base = format!("{guest_root}/lib/modules/{release}");
    for dir in [
        guest_root,
        &format!("{guest_root}/lib"),
        &format!("{guest_root}/lib/modules"),
        &base,
    ] {
        files.dir(dir);
    }
    let prefix = format!("{}/", moddir.display());
    for line in shown.lines() {
        let Some(path) = line.strip_prefix("insmod ") else {
            // `builtin NAME`: nothing to carry.
            builtin.extend(line.strip_prefix("builtin ").map(|n| n.trim().to_string()));
            continue;
        };
        let path = path.trim_end();
        let rel = path
            .strip_prefix(&prefix)
            .with_context(|| format!("{path} is not under {prefix}"))?;
        let target = format!("{base}/{rel}");
        if files.files.iter().any(|(p, _)| *p == target) {
            continue;
        }
        let mut parent = String::new();
        for part in rel
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |(_, dirs)| dirs)
        {
            parent.push('/');
            parent.push_str(part);
            files.dir(&format!("{base}{parent}"));
        }
        let data = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
        files.files.push((target, data));
    }
    // Built-in modules, so that the tools skip them as built in.
    for file in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        let path = kernel.modules_dir.join(file);
        if let Ok(data) = std::fs::read(&path) {
            files.files.push((format!("{base}/{file}"), data));
        }
    }
    Ok(Tree {
        files,
        builtin,
        shown,
    })
}
