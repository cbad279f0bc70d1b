//! What several xtask commands share: modkit's release build, kmod's installed tools, and
//! scratch module trees hard-linked from a cached kernel tree.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

/// Build the release `modkit` binary (saying so as `task`) and return its path.
pub(crate) fn build_modkit(sh: &Shell, task: &str) -> Result<PathBuf> {
    let root = crate::project_root();
    let _dir = sh.push_dir(&root);
    println!("{task}: building modkit (release)");
    cmd!(
        sh,
        "cargo build --quiet --release --package modkit-cli --bin modkit"
    )
    .run()
    .context("building modkit")?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release/modkit"))
}

/// One of kmod's tools (`depmod`, `modprobe`, `modinfo`), as Debian's `kmod` package installs
/// it: found by its real path and checked to be kmod 30, never a modkit link on `PATH`
/// (`modkit_testkit::kmod`, which the tests use too).
pub(crate) fn kmod_tool(tool: &str) -> Result<PathBuf> {
    modkit_testkit::kmod(tool).map_err(|missing| anyhow::anyhow!("the kmod oracle: {missing}"))
}

/// Make `root/lib/modules/RELEASE` anew as hard links to the module directory `source` (the
/// cached tree is never written to) and return that module directory.
pub(crate) fn linked_root(
    sh: &Shell,
    source: &Path,
    root: &Path,
    release: &str,
) -> Result<PathBuf> {
    if root.exists() {
        std::fs::remove_dir_all(root).with_context(|| format!("removing {}", root.display()))?;
    }
    let moddir = root.join("lib/modules").join(release);
    std::fs::create_dir_all(moddir.parent().context("module dir has a parent")?)?;
    cmd!(sh, "cp -al {source} {moddir}")
        .quiet()
        .run()
        .context("linking the module tree")?;
    Ok(moddir)
}

/// [`linked_root`], then indexed by kmod's own `depmod -b ROOT RELEASE`.
pub(crate) fn kmod_indexed_root(
    sh: &Shell,
    source: &Path,
    root: &Path,
    release: &str,
) -> Result<PathBuf> {
    let moddir = linked_root(sh, source, root, release)?;
    let depmod = kmod_tool("depmod")?;
    cmd!(sh, "{depmod} -b {root} {release}")
        .quiet()
        .run()
        .context("running kmod's depmod")?;
    Ok(moddir)
}

/// Whether this process runs as root (and may install packages or refresh apt's lists).
pub(crate) fn is_root(sh: &Shell) -> bool {
    cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|uid| uid.trim() == "0")
}

/// Refresh apt's package lists (`apt-get update`) because `why`, saying so; `Ok(false)` when
/// not root, where the caller's own error (which names the command) stands.
pub(crate) fn apt_update(sh: &Shell, why: &str) -> Result<bool> {
    if !is_root(sh) {
        return Ok(false);
    }
    eprintln!("{why}: refreshing apt's package lists (apt-get update)...");
    cmd!(sh, "apt-get update -q")
        .quiet()
        .ignore_stdout()
        .run()
        .context("apt-get update failed")?;
    Ok(true)
}
