//! Debian kernels for the VM tests and the sample modules: resolve the current package names
//! with `apt-cache`, download them with `apt-get download` and extract them with `dpkg-deb -x`,
//! all without root and cached under `cache_dir()`.
//!
//! Layout of the cache:
//! - `debs/NAME_VERSION_ARCH.deb`: the downloaded packages;
//! - `kernels/SERIES/`: the four packages of one kernel extracted into one root (`boot/`,
//!   `lib/modules/RELEASE/`, `usr/src/linux-headers-*`, `usr/lib/linux-kbuild-*`), with a stamp
//!   file `.modkit-tree` written last. A tree is only ever built under a temporary name and renamed
//!   into place, so a half-extracted tree is never taken as complete, and two runs at once each
//!   finish correctly.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{Context as _, Result, bail, ensure as check};
use xshell::{Shell, cmd};

/// A Debian 12 kernel series the project tests against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Series {
    /// Debian 12's own kernel, `linux-image-6.1.0-NN-amd64`.
    V6_1,
    /// The bookworm-backports/security 6.12 kernel, `linux-image-6.12.N+deb12-amd64`.
    V6_12,
}

impl Series {
    /// Every series, oldest first.
    pub fn all() -> [Series; 2] {
        [Series::V6_1, Series::V6_12]
    }

    /// `"6.1"` or `"6.12"`: the name on the command line and of the cache directory.
    pub fn as_str(self) -> &'static str {
        match self {
            Series::V6_1 => "6.1",
            Series::V6_12 => "6.12",
        }
    }

    /// Parses a `--kernel` value: `6.1`, `6.12` or `all`.
    pub fn select(arg: &str) -> Result<Vec<Series>> {
        if arg == "all" {
            return Ok(Series::all().to_vec());
        }
        Ok(vec![arg.parse()?])
    }

    /// The `apt-cache search --names-only` pattern of this series' unsigned image packages.
    fn image_pattern(self) -> &'static str {
        match self {
            Series::V6_1 => r"^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$",
            Series::V6_12 => r"^linux-image-6\.12\.[0-9]+\+deb12-amd64-unsigned$",
        }
    }

    /// The ordering key of an image package name (the ABI number for 6.1, the upstream patch
    /// level for 6.12), or `None` when the name is not one of this series' images.
    fn image_rank(self, name: &str) -> Option<u32> {
        let release = name
            .strip_prefix("linux-image-")?
            .strip_suffix("-amd64-unsigned")?;
        let number = match self {
            Series::V6_1 => release.strip_prefix("6.1.0-")?,
            Series::V6_12 => release.strip_prefix("6.12.")?.strip_suffix("+deb12")?,
        };
        number.parse().ok()
    }

    /// The kbuild package for a kernel ABI (`6.1.0-56` or `6.12.117+deb12`).
    fn kbuild_package(self, abi: &str) -> String {
        match self {
            Series::V6_1 => "linux-kbuild-6.1".to_owned(),
            Series::V6_12 => format!("linux-kbuild-{abi}"),
        }
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Series {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Series> {
        match s {
            "6.1" => Ok(Series::V6_1),
            "6.12" => Ok(Series::V6_12),
            _ => bail!("unknown kernel series `{s}` (expected 6.1 or 6.12)"),
        }
    }
}

/// An extracted Debian kernel: image, modules, headers and kbuild in one root.
#[derive(Debug, Clone)]
pub struct KernelTree {
    pub series: Series,
    /// The kernel release (`uname -r`), e.g. `6.1.0-56-amd64`.
    pub release: String,
    /// The Debian version of all four packages, e.g. `6.1.192-2`.
    pub version: String,
    /// The packages extracted into `root`, as `NAME=VERSION`.
    pub packages: Vec<String>,
    /// The extraction root.
    pub root: PathBuf,
    /// `root/usr/src/linux-headers-RELEASE`: the directory for `make -C`.
    pub headers: PathBuf,
    /// `root/usr/lib/linux-kbuild-*`: kbuild's `scripts/` (with `sign-file`) and `tools/`.
    pub kbuild: PathBuf,
    /// `root/boot/vmlinuz-RELEASE` (a bzImage).
    pub vmlinuz: PathBuf,
    /// `root/lib/modules/RELEASE`.
    pub modules_dir: PathBuf,
    /// `root/boot/System.map-RELEASE`.
    pub system_map: PathBuf,
}

impl KernelTree {
    /// The kernel's `scripts/sign-file`.
    pub fn sign_file(&self) -> PathBuf {
        self.kbuild.join("scripts/sign-file")
    }
}

/// Makes sure the newest Debian kernel of `series` is downloaded and extracted, and returns it.
///
/// Resolution uses the local apt lists only, so a run with everything cached does no network
/// work. Without apt lists (or without apt) the cached tree is used as it is.
pub fn ensure(sh: &Shell, series: Series) -> Result<KernelTree> {
    let cache =
        std::path::absolute(crate::cache_dir()).context("cannot resolve the cache directory")?;
    let root = cache.join("kernels").join(series.as_str());
    let cached = read_stamp(&root);
    remove_stale(sh, &cache.join("kernels"), &format!(".{series}."));

    // On a fresh machine apt's lists may be missing or stale: refresh them (as root) and ask
    // again before giving up.
    let packages = resolve(sh, series).or_else(|err| {
        let why = format!("kernel {series}: apt-cache knows no kernel packages ({err:#})");
        match crate::tools::apt_update(sh, &why) {
            Ok(true) => resolve(sh, series),
            Ok(false) => Err(err),
            Err(update) => Err(err.context(format!("{update:#}"))),
        }
    });
    let packages = match packages {
        Ok(packages) => packages,
        Err(err) => {
            if let Some(stamp) = cached {
                eprintln!(
                    "kernel {series}: cannot resolve packages ({err:#}); using the cached {}",
                    stamp.release
                );
                return tree(series, &root, &stamp);
            }
            return Err(err.context(format!(
                "no Debian {series} kernel is cached in {} and none can be resolved; \
                 run `apt-get update` (as root) so apt-cache knows the kernel packages",
                root.display()
            )));
        }
    };
    let wanted = Stamp::new(&packages)?;
    if let Some(stamp) = &cached
        && stamp.packages == wanted.packages
    {
        return tree(series, &root, stamp);
    }

    eprintln!("kernel {series}: {} ({})", wanted.release, wanted.version);
    let debs_dir = cache.join("debs");
    let fetched = packages
        .iter()
        .map(|package| download(sh, &debs_dir, package))
        .collect::<Result<Vec<_>>>()
        .and_then(|debs| extract(sh, &root, &wanted, &debs));
    match (fetched, cached) {
        (Ok(()), cached) => {
            if let Some(old) = cached {
                forget_debs(&debs_dir, &old, &wanted);
            }
            tree(series, &root, &wanted)
        }
        // Say, no network: the tree we have is better than none.
        (Err(err), Some(old)) => {
            eprintln!(
                "kernel {series}: cannot update to {} ({err:#}); using the cached {}",
                wanted.release, old.release
            );
            tree(series, &root, &old)
        }
        (Err(err), None) => Err(err),
    }
}

/// One binary package to fetch, as apt-cache describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Package {
    name: String,
    version: String,
    arch: String,
    /// Size of the `.deb` in bytes.
    size: u64,
}

impl Package {
    /// The file name `apt-get download` gives it (an epoch's `:` is written `%3a`).
    fn deb_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }
}

/// Finds the newest image of `series` and its headers and kbuild, all of the same version.
/// The image comes first.
fn resolve(sh: &Shell, series: Series) -> Result<Vec<Package>> {
    let pattern = series.image_pattern();
    let found = cmd!(sh, "apt-cache search --names-only {pattern}")
        .quiet()
        .read()
        .context("cannot run apt-cache (is this a Debian system?)")?;
    let image = found
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|name| Some((series.image_rank(name)?, name)))
        .max()
        .map(|(_, name)| name.to_owned())
        .with_context(|| format!("apt-cache knows no package matching {pattern}"))?;

    let release = image
        .strip_prefix("linux-image-")
        .and_then(|r| r.strip_suffix("-unsigned"))
        .unwrap_or(&image);
    let abi = release.strip_suffix("-amd64").unwrap_or(release);
    let names = [
        image.clone(),
        format!("linux-headers-{release}"),
        format!("linux-headers-{abi}-common"),
        series.kbuild_package(abi),
    ];
    // Each apt-cache run takes most of a second here, so ask for the candidates of all four
    // at once; only when one differs from the image's (linux-kbuild-6.1 has a version per
    // point release) ask again for that exact version.
    let all = &names;
    let shown = cmd!(sh, "apt-cache show --no-all-versions {all...}")
        .quiet()
        .read()
        .context("cannot run apt-cache show")?;
    let mut described = parse_show(&shown);
    let version = described
        .iter()
        .find(|p| p.name == image)
        .map(|p| p.version.clone())
        .with_context(|| format!("apt-cache has no candidate version of {image}"))?;
    let missing: Vec<String> = names
        .iter()
        .filter(|name| {
            !described
                .iter()
                .any(|p| &p.name == *name && p.version == version)
        })
        .map(|name| format!("{name}={version}"))
        .collect();
    if !missing.is_empty() {
        let shown = cmd!(sh, "apt-cache show --no-all-versions {missing...}")
            .quiet()
            .read()
            .context("cannot run apt-cache show")?;
        described.extend(parse_show(&shown));
    }
    names
        .iter()
        .map(|name| {
            described
                .iter()
                .find(|p| &p.name == name && p.version == version)
                .cloned()
                .with_context(|| {
                    format!("apt-cache knows no {name} of version {version} (the image's)")
                })
        })
        .collect()
}

/// Parses `apt-cache show` paragraphs (only the fields needed).
fn parse_show(text: &str) -> Vec<Package> {
    text.split("\n\n")
        .filter_map(|para| {
            let field = |key: &str| {
                para.lines()
                    .find_map(|line| line.strip_prefix(key)?.strip_prefix(':'))
                    .map(|v| v.trim().to_owned())
            };
            Some(Package {
                name: field("Package")?,
                version: field("Version")?,
                arch: field("Architecture")?,
                size: field("Size")?.parse().ok()?,
            })
        })
        .collect()
}

/// Downloads one package into `debs_dir` unless it is there already; returns its path.
fn download(sh: &Shell, debs_dir: &Path, package: &Package) -> Result<PathBuf> {
    let path = debs_dir.join(package.deb_name());
    let label = format!("{} {}", package.name, package.version);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == package.size) {
        eprintln!("  {label}: cached");
        return Ok(path);
    }
    eprint!("  downloading {label} ({})...", megabytes(package.size));
    let _ = std::io::stderr().flush();
    let start = Instant::now();

    // Into a private directory first, so that an interrupted download never sits under the
    // final name and two runs at once do not write the same file.
    sh.create_dir(debs_dir)
        .with_context(|| format!("cannot create {}", debs_dir.display()))?;
    remove_stale(sh, debs_dir, ".partial-");
    let partial = debs_dir.join(format!(".partial-{}", std::process::id()));
    let _ = sh.remove_path(&partial);
    sh.create_dir(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    let spec = format!("{}={}", package.name, package.version);
    let output = {
        let _dir = sh.push_dir(&partial);
        cmd!(sh, "apt-get download -q {spec}")
            .quiet()
            .ignore_status()
            .output()
    };
    let result = (|| {
        let output = output.context("cannot run apt-get download")?;
        if !output.status.success() {
            bail!(
                "apt-get download {spec} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let fetched = partial.join(package.deb_name());
        let len = std::fs::metadata(&fetched)
            .with_context(|| format!("apt-get download did not write {}", fetched.display()))?
            .len();
        check!(
            len == package.size,
            "{} has {len} bytes, apt-cache says {}",
            fetched.display(),
            package.size
        );
        std::fs::rename(&fetched, &path)
            .with_context(|| format!("cannot move {} to {}", fetched.display(), path.display()))
    })();
    let _ = sh.remove_path(&partial);
    match result {
        Ok(()) => {
            eprintln!(" done ({:.1} s)", start.elapsed().as_secs_f64());
            Ok(path)
        }
        Err(err) => {
            eprintln!(" failed");
            Err(err)
        }
    }
}

/// Extracts a kernel's `debs` into a fresh tree and renames it to `root`, replacing an older
/// tree.
fn extract(sh: &Shell, root: &Path, stamp: &Stamp, debs: &[PathBuf]) -> Result<()> {
    extract_then(sh, root, stamp, debs, |fresh| {
        fix_headers_makefile(fresh, root, &stamp.release)
    })
}

/// Debian's current binary packages `names` (amd64, the candidates apt would install),
/// downloaded into the cache and extracted together into `cache_dir()/userland/NAME`, a tree
/// rebuilt only when a package's version changes (for the VM: real programs with their
/// shared libraries, run from an initramfs). No root needed; a fresh machine refreshes apt's
/// lists first.
pub fn userland(sh: &Shell, name: &str, names: &[&str]) -> Result<PathBuf> {
    let cache =
        std::path::absolute(crate::cache_dir()).context("cannot resolve the cache directory")?;
    let root = cache.join("userland").join(name);
    let cached = read_stamp(&root);
    remove_stale(sh, &cache.join("userland"), &format!(".{name}."));
    let show = || -> Result<Vec<Package>> {
        let shown = cmd!(sh, "apt-cache show --no-all-versions {names...}")
            .quiet()
            .read()
            .context("cannot run apt-cache show")?;
        let described = parse_show(&shown);
        names
            .iter()
            .map(|wanted| {
                described
                    .iter()
                    .find(|p| p.name == *wanted && (p.arch == "amd64" || p.arch == "all"))
                    .cloned()
                    .with_context(|| format!("apt-cache knows no package {wanted} (amd64)"))
            })
            .collect()
    };
    let packages = show().or_else(|err| {
        let why = format!("{name}: apt-cache does not know the packages ({err:#})");
        match crate::tools::apt_update(sh, &why) {
            Ok(true) => show(),
            Ok(false) => Err(err),
            Err(update) => Err(err.context(format!("{update:#}"))),
        }
    });
    let packages = match (packages, &cached) {
        (Ok(packages), _) => packages,
        (Err(err), Some(_)) => {
            eprintln!("{name}: cannot resolve packages ({err:#}); using the cached tree");
            return Ok(root);
        }
        (Err(err), None) => return Err(err),
    };
    let wanted = Stamp {
        release: name.to_owned(),
        version: "-".to_owned(),
        packages: packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone(), p.arch.clone()))
            .collect(),
    };
    if cached.is_some_and(|stamp| stamp.packages == wanted.packages) {
        return Ok(root);
    }
    eprintln!("{name}: fetching {} Debian packages", packages.len());
    let debs_dir = cache.join("debs");
    let debs = packages
        .iter()
        .map(|package| download(sh, &debs_dir, package))
        .collect::<Result<Vec<_>>>()?;
    extract_then(sh, &root, &wanted, &debs, |_| Ok(()))?;
    Ok(root)
}

/// Extracts `debs` into a fresh tree, runs `finish` on it, and renames it to `root`,
/// replacing an older tree.
fn extract_then(
    sh: &Shell,
    root: &Path,
    stamp: &Stamp,
    debs: &[PathBuf],
    finish: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let parent = root.parent().context("the kernel root has no parent")?;
    sh.create_dir(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let name = root
        .file_name()
        .context("the kernel root has no name")?
        .to_string_lossy();
    let pid = std::process::id();
    let fresh = parent.join(format!(".{name}.new-{pid}"));
    let _ = sh.remove_path(&fresh);
    sh.create_dir(&fresh)
        .with_context(|| format!("cannot create {}", fresh.display()))?;

    let result = (|| {
        for deb in debs {
            let file = deb.file_name().unwrap_or_default().to_string_lossy();
            let package = file.split('_').next().unwrap_or_default();
            eprint!("  extracting {package}...");
            let _ = std::io::stderr().flush();
            let start = Instant::now();
            let done = cmd!(sh, "dpkg-deb -x {deb} {fresh}").quiet().run();
            if done.is_err() {
                eprintln!(" failed");
            }
            done.with_context(|| format!("cannot extract {}", deb.display()))?;
            eprintln!(" done ({:.1} s)", start.elapsed().as_secs_f64());
        }
        finish(&fresh)?;
        // The stamp goes in last: whatever lacks it is not a complete tree.
        let stamp_path = fresh.join(STAMP);
        std::fs::write(&stamp_path, stamp.render())
            .with_context(|| format!("cannot write {}", stamp_path.display()))?;

        // Swap the new tree in. If another run got there first with the same packages, keep
        // theirs (it may be in use) and drop ours.
        if read_stamp(root).is_some_and(|theirs| theirs.packages == stamp.packages) {
            return Ok(());
        }
        let old = parent.join(format!(".{name}.old-{pid}"));
        if root.exists() {
            std::fs::rename(root, &old)
                .with_context(|| format!("cannot move {} aside", root.display()))?;
        }
        std::fs::rename(&fresh, root)
            .with_context(|| format!("cannot move {} to {}", fresh.display(), root.display()))?;
        let _ = sh.remove_path(&old);
        Ok(())
    })();
    let _ = sh.remove_path(&fresh);
    result
}

/// Removes what runs that were killed left behind: the entries of `dir` named `PREFIX...-PID`
/// whose process is gone.
pub(crate) fn remove_stale(sh: &Shell, dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = sh.remove_path(entry.path());
        }
    }
}

/// Line 1 of Debian's `linux-headers-RELEASE/Makefile` is `include /usr/src/...-common/Makefile`;
/// point it at the extracted copy (`root` being the tree's final location).
fn fix_headers_makefile(tree: &Path, root: &Path, release: &str) -> Result<()> {
    let path = tree
        .join("usr/src")
        .join(format!("linux-headers-{release}"))
        .join("Makefile");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let Some(target) = first.strip_prefix("include /usr/src/") else {
        // Already pointing somewhere else: leave it to whoever changed it.
        return Ok(());
    };
    let fixed = format!("include {}/usr/src/{target}\n{rest}", root.display());
    std::fs::write(&path, fixed).with_context(|| format!("cannot write {}", path.display()))
}

/// Deletes the debs of a replaced tree, to keep the cache from growing with each update.
fn forget_debs(debs_dir: &Path, old: &Stamp, new: &Stamp) {
    for (name, version, arch) in &old.packages {
        if !new
            .packages
            .iter()
            .any(|(n, v, _)| n == name && v == version)
        {
            let deb = format!("{name}_{}_{arch}.deb", version.replace(':', "%3a"));
            let _ = std::fs::remove_file(debs_dir.join(deb));
        }
    }
}

/// The stamp file's name inside a tree.
const STAMP: &str = ".modkit-tree";

/// What a complete tree was made from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    release: String,
    version: String,
    /// (name, version, arch), the image first, then headers, common headers, kbuild.
    packages: Vec<(String, String, String)>,
}

impl Stamp {
    fn new(packages: &[Package]) -> Result<Stamp> {
        let image = packages.first().context("no packages")?;
        let release = image
            .name
            .strip_prefix("linux-image-")
            .and_then(|r| r.strip_suffix("-unsigned"))
            .with_context(|| format!("{} is not a kernel image package", image.name))?;
        Ok(Stamp {
            release: release.to_owned(),
            version: image.version.clone(),
            packages: packages
                .iter()
                .map(|p| (p.name.clone(), p.version.clone(), p.arch.clone()))
                .collect(),
        })
    }

    fn render(&self) -> String {
        let mut out = String::from("# modkit: this kernel tree was extracted completely from:\n");
        out += &format!("release {}\nversion {}\n", self.release, self.version);
        for (name, version, arch) in &self.packages {
            out += &format!("package {name} {version} {arch}\n");
        }
        out
    }

    fn parse(text: &str) -> Option<Stamp> {
        let mut release = None;
        let mut version = None;
        let mut packages = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["release", r] => release = Some(r.to_string()),
                ["version", v] => version = Some(v.to_string()),
                ["package", n, v, a] => {
                    packages.push((n.to_string(), v.to_string(), a.to_string()))
                }
                _ => return None,
            }
        }
        (!packages.is_empty()).then_some(())?;
        Some(Stamp {
            release: release?,
            version: version?,
            packages,
        })
    }
}

fn read_stamp(root: &Path) -> Option<Stamp> {
    Stamp::parse(&std::fs::read_to_string(root.join(STAMP)).ok()?)
}

/// The paths of a complete tree, checked to exist.
fn tree(series: Series, root: &Path, stamp: &Stamp) -> Result<KernelTree> {
    let release = stamp.release.clone();
    let kbuild_name = stamp
        .packages
        .iter()
        .find_map(|(name, _, _)| name.starts_with("linux-kbuild-").then_some(name.as_str()))
        .with_context(|| format!("the stamp of {} names no kbuild package", root.display()))?;
    let tree = KernelTree {
        series,
        version: stamp.version.clone(),
        packages: stamp
            .packages
            .iter()
            .map(|(n, v, _)| format!("{n}={v}"))
            .collect(),
        root: root.to_owned(),
        headers: root
            .join("usr/src")
            .join(format!("linux-headers-{release}")),
        kbuild: root.join("usr/lib").join(kbuild_name),
        vmlinuz: root.join("boot").join(format!("vmlinuz-{release}")),
        modules_dir: root.join("lib/modules").join(&release),
        system_map: root.join("boot").join(format!("System.map-{release}")),
        release,
    };
    for path in [
        &tree.headers,
        &tree.kbuild,
        &tree.vmlinuz,
        &tree.modules_dir,
        &tree.system_map,
    ] {
        check!(
            path.exists(),
            "{} is missing from the cached kernel tree; delete {} and run again",
            path.display(),
            root.display()
        );
    }
    Ok(tree)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_images() {
        assert_eq!(
            Series::V6_1.image_rank("linux-image-6.1.0-56-amd64-unsigned"),
            Some(56)
        );
        assert_eq!(
            Series::V6_1.image_rank("linux-image-6.1.0-9-amd64-unsigned"),
            Some(9)
        );
        assert_eq!(
            Series::V6_1.image_rank("linux-image-6.12.117+deb12-amd64-unsigned"),
            None
        );
        assert_eq!(
            Series::V6_12.image_rank("linux-image-6.12.117+deb12-amd64-unsigned"),
            Some(117)
        );
        assert_eq!(
            Series::V6_12.image_rank("linux-image-6.12.117+deb12-cloud-amd64-unsigned"),
            None
        );
    }

    #[test]
    fn stamp_round_trips() {
        let packages = [Package {
            name: "linux-image-6.1.0-56-amd64-unsigned".into(),
            version: "6.1.192-2".into(),
            arch: "amd64".into(),
            size: 1,
        }];
        let stamp = Stamp::new(&packages).unwrap();
        assert_eq!(stamp.release, "6.1.0-56-amd64");
        assert_eq!(Stamp::parse(&stamp.render()), Some(stamp));
        assert_eq!(Stamp::parse("release x\nversion y\n"), None);
    }

    #[test]
    fn parses_apt_cache_show() {
        let text = "Package: linux-kbuild-6.1\nVersion: 6.1.192-2\nArchitecture: amd64\nSize: 15\n\
                    Description: x\n\nPackage: b\nVersion: 1:2\nArchitecture: all\nSize: 3\n";
        let packages = parse_show(text);
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].size, 15);
        assert_eq!(packages[1].deb_name(), "b_1%3a2_all.deb");
    }

    #[test]
    fn selects_series() {
        assert_eq!(Series::select("all").unwrap(), Series::all());
        assert_eq!(Series::select("6.12").unwrap(), [Series::V6_12]);
        assert!(Series::select("6.2").is_err());
    }
}
