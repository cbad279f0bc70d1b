//! `cargo xtask compat`, `kmod static-nodes` part: each format (human, tmpfiles, devname) of a
//! tree's modules.devname, kmod 30's and modkit's, byte for byte (stdout, stderr, exit status).
//!
//! kmod reads only `/lib/modules/$(uname -r)/modules.devname`, so both tools run in a private
//! mount namespace (`tools::PRIVATE_MODULES`) where `/lib` is an overlay whose `modules` is a tmpfs
//! holding the tree's module directory, bound read-only under the running kernel's release
//! (the host's `/lib/modules` is never touched, and modkit is given no `MODKIT_LIB_MODULES`:
//! it reads the same path kmod reads). That needs root (or a user namespace with mount rights);
//! [`namespace_works`] says whether this machine allows it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use super::Tally;
use super::modprobe::{Run, show_difference};
use crate::tools::Kmod;

/// The formats `kmod static-nodes --format` knows.
const FORMATS: &[&str] = &["human", "tmpfiles", "devname"];

/// Run `program args...` with `moddir` as `/lib/modules/$(uname -r)`.
fn in_namespace(
    sh: &Shell,
    scratch: &Path,
    moddir: &Path,
    program: &Path,
    args: &[&str],
) -> Result<Run> {
    // The running kernel's release (empty: `uname -r` inside), no /boot.
    let (script, running, no_boot) = (crate::tools::PRIVATE_MODULES, "", "");
    let out = cmd!(
        sh,
        "unshare --mount --propagation private sh -euc {script} modkit-compat-ns {scratch} {moddir} {running} {no_boot} {program} {args...}"
    )
    .env_remove("MODKIT_LIB_MODULES")
    .ignore_status()
    .quiet()
    .output()
    .context("running unshare")?;
    Ok((out.status.code(), out.stdout, out.stderr))
}

/// Whether a tree can be laid over `/lib/modules` here: `Err` says why not.
pub(crate) fn namespace_works(sh: &Shell, moddir: &Path) -> Result<()> {
    let scratch = crate::cache_dir().join("compat").join("static-nodes-probe");
    std::fs::create_dir_all(&scratch)?;
    let release = modkit::syscalls::kernel_release()
        .map_err(|errno| anyhow::anyhow!("uname: {}", errno.strerror()))?;
    let seen = format!("/lib/modules/{release}/modules.devname");
    let devname = moddir.join("modules.devname").display().to_string();
    // The file the namespace shows is the tree's.
    let (status, _, stderr) =
        in_namespace(sh, &scratch, moddir, Path::new("cmp"), &[&seen, &devname])?;
    if status != Some(0) {
        bail!(
            "cannot lay a tree over /lib/modules in a private mount namespace (needs root and \
             util-linux's unshare): {}",
            String::from_utf8_lossy(&stderr).trim()
        );
    }
    Ok(())
}

/// `kmod static-nodes --format=FORMAT` for each format, over `root`'s tree (indexed by kmod's
/// depmod, so it has a modules.devname): one check per format, counting the tree's device
/// nodes compared. The caller has checked [`namespace_works`].
pub(crate) fn check(
    sh: &Shell,
    kmod: &Kmod,
    modkit: &Path,
    root: &Path,
    release: &str,
    label: &str,
    record: &mut dyn FnMut(String, Tally),
) -> Result<()> {
    let moddir = root.join("lib/modules").join(release);
    let devname = moddir.join("modules.devname");
    let text = std::fs::read_to_string(&devname)
        .with_context(|| format!("reading {}", devname.display()))?;
    // kmod's header comment is no node; every other line is one.
    let nodes = text
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count();
    let scratch = crate::cache_dir()
        .join("compat")
        .join(format!("static-nodes-{release}"));
    std::fs::create_dir_all(&scratch)?;
    for format in FORMATS {
        let option = format!("--format={format}");
        let theirs = in_namespace(
            sh,
            &scratch,
            &moddir,
            &kmod.kmod,
            &["static-nodes", &option],
        )?;
        let ours = in_namespace(
            sh,
            &scratch,
            &moddir,
            modkit,
            &["kmod", "static-nodes", &option],
        )?;
        let mut tally = Tally {
            compared: nodes,
            ..Tally::default()
        };
        tally.kmod_ran(theirs.0);
        // An empty answer from kmod would compare equal to an empty one of ours and mean
        // nothing: the tree's nodes must be in it.
        if theirs.1.is_empty() {
            tally.compared = 0;
        }
        if theirs != ours {
            tally.diffs += 1;
            show_difference(&format!("kmod static-nodes {option}"), &theirs, &ours);
        }
        record(format!("{label}: kmod static-nodes {option}"), tally);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
