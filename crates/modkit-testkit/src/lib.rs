//! Test support shared by the workspace's tests and by xtask: where the kernel cache lives, the
//! kmod oracle (found by its real path and checked to be kmod of the version the tests compare
//! with, never a modkit link on `PATH`), and skips that cannot hide.
//!
//! A test that needs something this machine may lack asks for it with [`require`]: outside CI
//! a missing prerequisite prints a loud `SKIPPED` line and is recorded under
//! `target/modkit-skipped/` (`cargo xtask skipped` lists the records); under CI ([`under_ci`])
//! it fails the test with the command that installs it.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// The kmod release the differential tests compare with: Debian 12's.
pub const KMOD_VERSION: u32 = 30;

/// The environment variable `.ci/run` sets; `CI` (GitHub Actions and most CI systems) counts
/// too.
pub const CI_VARIABLE: &str = "MODKIT_CI";

/// Whether this is a CI run, where a missing prerequisite is an error, never a skip.
pub fn under_ci() -> bool {
    [CI_VARIABLE, "CI"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false"))
}

/// Something a test needs that this machine does not have, and how to get it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What is missing, and where it was looked for.
    pub what: String,
    /// The command or step that provides it.
    pub fix: String,
}

impl Missing {
    pub fn new(what: impl Into<String>, fix: impl Into<String>) -> Missing {
        Missing {
            what: what.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (fix: {})", self.what, self.fix)
    }
}

impl std::error::Error for Missing {}

/// The prerequisite `found`, or, when it is missing: under CI a panic naming the test, what is
/// missing and the fix; elsewhere a loud `SKIPPED` line, a record for `cargo xtask skipped`,
/// and `None` (the test returns without checking anything).
#[track_caller]
pub fn require<T>(test: &str, found: Result<T, Missing>) -> Option<T> {
    match found {
        Ok(value) => {
            // The test got past this prerequisite: an older record of it is stale.
            let _ = std::fs::remove_file(skip_record(test));
            Some(value)
        }
        Err(missing) => {
            if under_ci() {
                panic!(
                    "{test}: {} — under CI a missing prerequisite is an error; fix: {}",
                    missing.what, missing.fix
                );
            }
            eprintln!("SKIPPED {test}: {missing}");
            println!("SKIPPED {test}: {missing}");
            record_skip(test, &missing);
            None
        }
    }
}

/// Where skips are recorded: `target/modkit-skipped/` (or under `$CARGO_TARGET_DIR`).
pub fn skipped_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || workspace_root().join("target"),
        |dir| workspace_root().join(dir),
    );
    target.join("modkit-skipped")
}

/// Every recorded skip, as (test, reason), sorted by test name.
pub fn skipped() -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(skipped_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let test = entry.file_name().to_str()?.strip_suffix(".txt")?.to_owned();
            let why = std::fs::read_to_string(entry.path()).ok()?;
            Some((test, why.trim_end().to_owned()))
        })
        .collect();
    out.sort();
    out
}

fn skip_record(test: &str) -> PathBuf {
    let name: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    skipped_dir().join(format!("{name}.txt"))
}

fn record_skip(test: &str, missing: &Missing) {
    let path = skip_record(test);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = std::fs::write(path, format!("{missing}\n"));
}

/// The repository root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("modkit-testkit lives in crates/")
        .to_path_buf()
}

/// Where downloads and extracted kernel trees are kept between runs: `$MODKIT_CACHE`, else
/// `$XDG_CACHE_HOME/modkit`, else `~/.cache/modkit`. Never inside the repository. xtask
/// downloads into it and the tests read from it: one rule for both.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MODKIT_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("modkit");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/modkit")
}

/// The cached Debian module directory of kernel `series` (`6.1`, `6.12`):
/// `cache_dir()/kernels/SERIES/lib/modules/RELEASE`, which `cargo xtask kmods` or `cargo xtask
/// vmtest` downloads.
pub fn kernel_modules_dir(series: &str) -> Result<PathBuf, Missing> {
    let modules = cache_dir().join("kernels").join(series).join("lib/modules");
    let missing = |detail: String| {
        Missing::new(
            format!("no Debian {series} module tree in the kernel cache ({detail})"),
            "cargo xtask kmods (downloads Debian's kernels into the cache)",
        )
    };
    let entries =
        std::fs::read_dir(&modules).map_err(|e| missing(format!("{}: {e}", modules.display())))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{series}.")))
                && p.join("modules.order").is_file()
        })
        .ok_or_else(|| missing(format!("{} holds no {series}.* tree", modules.display())))
}

/// Debian's kmod tool `tool` (`depmod`, `modprobe`, `modinfo`, `insmod`, `rmmod`, `lsmod`):
/// the first of `/usr/sbin`, `/sbin`, `/usr/bin`, `/bin` that holds a link whose real path is a
/// binary named `kmod` reporting version [`KMOD_VERSION`]. `PATH` is never searched, and a
/// modkit link (the README's install recipe puts them in `/usr/local/sbin`) is never taken.
pub fn kmod(tool: &str) -> Result<PathBuf, Missing> {
    kmod_in(
        &["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(Path::new),
        tool,
    )
}

/// [`kmod`], looking in `dirs`.
fn kmod_in(dirs: &[&Path], tool: &str) -> Result<PathBuf, Missing> {
    let install = "apt-get install kmod (Debian's kmod 30)";
    let mut seen = Vec::new();
    for path in dirs.iter().map(|dir| dir.join(tool)) {
        let Ok(real) = std::fs::canonicalize(&path) else {
            continue;
        };
        if real.file_name().and_then(|n| n.to_str()) != Some("kmod") {
            seen.push(format!(
                "{} is {}, not kmod",
                path.display(),
                real.display()
            ));
            continue;
        }
        return match kmod_version(&real) {
            Some(KMOD_VERSION) => Ok(path),
            Some(other) => Err(Missing::new(
                format!(
                    "{} is kmod {other}; the tests compare with kmod {KMOD_VERSION}",
                    real.display()
                ),
                install,
            )),
            None => Err(Missing::new(
                format!(
                    "{} does not answer `--version` as kmod does",
                    real.display()
                ),
                install,
            )),
        };
    }
    let detail = if seen.is_empty() {
        let dirs: Vec<_> = dirs.iter().map(|d| d.display().to_string()).collect();
        format!("not in {}", dirs.join(", "))
    } else {
        seen.join("; ")
    };
    Err(Missing::new(format!("kmod's {tool}: {detail}"), install))
}

/// The release of the kmod binary at `real` (`kmod version 30` on its first line), asked once
/// per process.
fn kmod_version(real: &Path) -> Option<u32> {
    static VERSIONS: Mutex<BTreeMap<PathBuf, Option<u32>>> = Mutex::new(BTreeMap::new());
    let mut versions = VERSIONS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(v) = versions.get(real) {
        return *v;
    }
    let version = Command::new(real)
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| parse_kmod_version(&String::from_utf8_lossy(&out.stdout)));
    versions.insert(real.to_owned(), version);
    version
}

/// `kmod version 30` (the first line of `kmod --version`) -> 30.
fn parse_kmod_version(text: &str) -> Option<u32> {
    let first = text.lines().next()?;
    first
        .strip_prefix("kmod version ")?
        .trim()
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// A scratch directory under the system's temporary directory, made anew, removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// `TMP/modkit-TAG-PID`.
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("modkit-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `DIR/relative` (nothing is made).
    pub fn join(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.0.join(relative)
    }

    /// Write `contents` to `DIR/relative`, making its parent directories; its path.
    pub fn write(&self, relative: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::fs::write(&path, contents)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// A symbolic link `DIR/relative` pointing at `target` (as given: relative targets stay
    /// relative), making its parent directories; its path.
    pub fn symlink(&self, target: impl AsRef<Path>, relative: impl AsRef<Path>) -> PathBuf {
        let path = self.0.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("creating {}: {e}", parent.display()));
        }
        std::os::unix::fs::symlink(target.as_ref(), &path)
            .unwrap_or_else(|e| panic!("linking {}: {e}", path.display()));
        path
    }

    /// Make the directory `DIR/relative` and its parents; its path.
    pub fn mkdir(&self, relative: impl AsRef<Path>) -> PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        path
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The smallest ELF executable: an x86-64 ELF64 header with no program headers, so no
/// `PT_INTERP` (statically linked, as an initramfs's `/init` must be). Not runnable: for
/// checks that read the header.
pub fn static_elf() -> Vec<u8> {
    let mut elf = vec![0u8; 64];
    elf[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf[18..20].copy_from_slice(&0x3eu16.to_le_bytes()); // x86-64
    elf[20..24].copy_from_slice(&1u32.to_le_bytes());
    elf[52..54].copy_from_slice(&64u16.to_le_bytes());
    elf[54..56].copy_from_slice(&56u16.to_le_bytes());
    elf[58..60].copy_from_slice(&64u16.to_le_bytes());
    elf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kmod_version() {
        assert_eq!(parse_kmod_version("kmod version 30\n+ZSTD +XZ\n"), Some(30));
        assert_eq!(parse_kmod_version("kmod version 34.2\n"), Some(34));
        assert_eq!(parse_kmod_version("modkit 0.1.0\n"), None);
        assert_eq!(parse_kmod_version(""), None);
    }

    #[test]
    fn the_oracle_is_kmod_of_the_right_version() {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let scratch = Scratch::new("testkit-oracle");
        let dir = |name: &str| {
            let d = scratch.path().join(name);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
        let fake_kmod = |dir: &Path, version: &str| {
            let kmod = dir.join("kmod");
            std::fs::write(&kmod, format!("#!/bin/sh\necho 'kmod version {version}'\n")).unwrap();
            std::fs::set_permissions(&kmod, std::fs::Permissions::from_mode(0o755)).unwrap();
            symlink(&kmod, dir.join("depmod")).unwrap();
        };
        // A modkit link, as the README's install recipe makes: refused, and said why.
        let local = dir("local");
        std::fs::write(local.join("modkit"), b"").unwrap();
        symlink(local.join("modkit"), local.join("depmod")).unwrap();
        let err = kmod_in(&[&local], "depmod").unwrap_err();
        assert!(err.what.contains("not kmod"), "{err}");
        // kmod of another release: refused with its version.
        let old = dir("old");
        fake_kmod(&old, "29");
        let err = kmod_in(&[&old], "depmod").unwrap_err();
        assert!(err.what.contains("kmod 29"), "{err}");
        // kmod 30 after a modkit link: the first real kmod is taken.
        let good = dir("good");
        fake_kmod(&good, "30");
        assert_eq!(
            kmod_in(&[&local, &good], "depmod").unwrap(),
            good.join("depmod")
        );
        // Nothing at all: says where it looked.
        let err = kmod_in(&[&dir("empty")], "modprobe").unwrap_err();
        assert!(err.what.contains("not in"), "{err}");
        assert!(err.fix.contains("apt-get install kmod"), "{err}");
    }

    #[test]
    fn missing_says_what_and_how() {
        let m = Missing::new("kmod's depmod: not in /usr/sbin", "apt-get install kmod");
        assert_eq!(
            m.to_string(),
            "kmod's depmod: not in /usr/sbin (fix: apt-get install kmod)"
        );
    }
}
