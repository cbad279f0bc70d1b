//! The host side of the storm scenario (vmtest/src/scenarios/storm.rs): the real modules it
//! loads (`vmtest::storm::MODULES`: crypto, netfilter, file systems) with their dependencies
//! from the kernel's tree, for `/storm` in the initramfs (unindexed: the guest runs depmod).

use std::path::Path;

use ::vmtest::storm::{MODULES, ROOT};
use anyhow::{Result, ensure};
use xshell::Shell;

use super::coldplug::{self, Files};
use crate::kernels::KernelTree;

/// The storm's modules and their dependencies from `kernel`'s tree. Every one of
/// [`MODULES`] must be a module file: a built-in one could not be loaded and unloaded.
pub fn modules(sh: &Shell, modkit: &Path, kernel: &KernelTree) -> Result<Files> {
    let tree = coldplug::tree_files(sh, modkit, kernel, ROOT, MODULES)?;
    for name in MODULES {
        ensure!(
            tree.has_module(name),
            "{} has no module file for the storm's {name} (built in: {}):\n{}",
            kernel.modules_dir.display(),
            tree.builtin.iter().any(|b| b == name),
            tree.shown
        );
    }
    Ok(tree.files)
}
