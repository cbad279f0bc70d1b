//! What several xtask commands share: modkit's release build, kmod's installed tools (the one
//! way any command finds them), the files depmod writes, scratch module trees hard-linked from
//! a cached kernel tree, and small helpers (a median, whether a program runs).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

/// The target modkit's shipped programs are built for. Naming it (`--target`) keeps the static
/// flag of [`static_build`] away from build scripts and proc-macros, which cannot be static.
pub(crate) const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// `cargo build --profile PROFILE --target TRIPLE` of `packages` as static executables (glibc linked in,
/// `static-pie`: still position-independent, so ASLR stays). This is how modkit's programs are
/// shipped: the VM's guest has no libc to load, and a tool that starts without the dynamic
/// loader (no library search, no symbol binding) starts about 0.4 ms sooner, a third of a
/// `modprobe -R` run (see `cargo xtask bench`). The caller adds `--target-dir` or profile
/// settings and runs it; the outputs are in `TARGET_DIR/TRIPLE/PROFILE` (`release`, or `init`
/// for modkit-init, built for size).
pub(crate) fn static_build<'a>(sh: &'a Shell, profile: &str, packages: &[&str]) -> xshell::Cmd<'a> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let packages = packages.iter().flat_map(|p| ["--package", p]);
    cmd!(
        sh,
        "{cargo} build --profile {profile} {packages...} --target {TRIPLE}"
    )
    .env("RUSTFLAGS", "-C target-feature=+crt-static")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
}

/// Build the shipped `modkit` binary ([`static_build`], saying so as `task`) and return its
/// path.
pub(crate) fn build_modkit(sh: &Shell, task: &str) -> Result<PathBuf> {
    let root = crate::project_root();
    let _dir = sh.push_dir(&root);
    println!("{task}: building modkit (release, static)");
    static_build(sh, "release", &["modkit-cli"])
        .arg("--quiet")
        .args(["--bin", "modkit"])
        .run()
        .context("building modkit")?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join(TRIPLE).join("release/modkit"))
}

/// kmod's tools, the oracle every comparison runs: each as Debian's `kmod` package installs
/// it, found by its real path and checked to be kmod 30 (`modkit_testkit::kmod`, which the
/// tests use too), never a binary on `PATH`, which may be a modkit link. Every call of a kmod
/// tool in xtask runs one of these paths.
#[derive(Debug, Clone)]
pub(crate) struct Kmod {
    /// `kmod` itself, for its own commands (`kmod static-nodes`).
    pub kmod: PathBuf,
    pub depmod: PathBuf,
    pub modprobe: PathBuf,
    pub modinfo: PathBuf,
}

impl Kmod {
    /// The installed kmod's tools; an error says what is missing and what installs it.
    pub(crate) fn find() -> Result<Kmod> {
        let tool = |name: &str| {
            modkit_testkit::kmod(name)
                .map_err(|missing| anyhow::anyhow!("the kmod oracle: {missing}"))
        };
        Ok(Kmod {
            kmod: tool("kmod")?,
            depmod: tool("depmod")?,
            modprobe: tool("modprobe")?,
            modinfo: tool("modinfo")?,
        })
    }
}

/// The files depmod writes: kmod 30's set plus modules.weakdep, which modkit's default
/// pre-order flavour writes (inputs like modules.order and modules.builtin are not among them).
pub(crate) const DEPMOD_OUTPUTS: &[&str] = &[
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.softdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.devname",
    "modules.weakdep",
];

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

/// [`linked_root`] without any of [`DEPMOD_OUTPUTS`] (the cached tree may hold indexes from
/// elsewhere), so every index there is one a run under test wrote.
pub(crate) fn unindexed_root(
    sh: &Shell,
    source: &Path,
    root: &Path,
    release: &str,
) -> Result<PathBuf> {
    let moddir = linked_root(sh, source, root, release)?;
    for name in DEPMOD_OUTPUTS {
        let path = moddir.join(name);
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                return Err(err).with_context(|| format!("removing {}", path.display()));
            }
            _ => {}
        }
    }
    Ok(moddir)
}

/// [`linked_root`], then indexed by kmod's own `depmod -b ROOT RELEASE`.
pub(crate) fn kmod_indexed_root(
    sh: &Shell,
    kmod: &Kmod,
    source: &Path,
    root: &Path,
    release: &str,
) -> Result<PathBuf> {
    let moddir = linked_root(sh, source, root, release)?;
    let depmod = &kmod.depmod;
    cmd!(sh, "{depmod} -b {root} {release}")
        .quiet()
        .run()
        .context("running kmod's depmod")?;
    Ok(moddir)
}

/// Whether `command` runs and exits 0 (its output thrown away): is a program installed?
pub(crate) fn runs(command: xshell::Cmd<'_>) -> bool {
    command
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}

/// The median of `values` (the upper one of an even count); `values` must not be empty.
pub(crate) fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values[values.len() / 2]
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

/// `unshare --mount --propagation private sh -euc PRIVATE_MODULES NAME SCRATCH MODDIR RELEASE
/// BOOT PROGRAM ARGS...`: in a private mount namespace, `/lib` (through its real path:
/// `/usr/lib` on a merged-/usr system) becomes an overlay whose upper layer is a tmpfs on
/// `SCRATCH`, in which `/lib/modules` is a tmpfs holding only `MODDIR`, bound read-only as
/// `RELEASE` (empty: the running kernel's, `uname -r`), and `BOOT` (when not empty) is bound
/// read-only over `/boot`; then PROGRAM runs. Neither the host's `/lib/modules` (absent or not)
/// nor anything under `/usr/lib` is written. `bench initramfs` runs the anchors so, compat
/// runs `kmod static-nodes` so.
pub(crate) const PRIVATE_MODULES: &str = r#"
ns=$1 moddir=$2 release=$3 boot=$4
shift 4
[ -n "$release" ] || release=$(uname -r)
if [ -n "$boot" ] && [ ! -d /boot ]; then
    echo "no /boot directory to mount the kernel's boot/ over" >&2
    exit 1
fi
mount -t tmpfs modkit-private "$ns"
mkdir "$ns/upper" "$ns/work"
lib=$(readlink -f /lib)
mount -t overlay modkit-private -o "lowerdir=$lib,upperdir=$ns/upper,workdir=$ns/work" "$lib"
mkdir -p /lib/modules
mount -t tmpfs modkit-private /lib/modules
mkdir "/lib/modules/$release"
mount --bind -o ro "$moddir" "/lib/modules/$release"
[ -z "$boot" ] || mount --bind -o ro "$boot" /boot
exec "$@"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4, 1, 3, 2]), 3);
        assert_eq!(median(vec![7]), 7);
    }
}
