//! The host side of the libkmod scenario (vmtest/src/scenarios/libkmod.rs): Debian's own
//! programs that link libkmod — `lspci` (pciutils), `udevadm` (udev) and
//! `systemd-modules-load` (systemd) — put into the initramfs at their usual paths with the
//! shared libraries they load, every file taken from Debian's packages (downloaded into the
//! cache, no root needed), never from the host. modkit's `libkmod.so.2` (crates/modkit-capi)
//! is the one in the library search path; Debian's own sits aside in
//! [`vmtest::libkmod::DEBIAN_DIR`], which the guest names with `LD_LIBRARY_PATH` only for the
//! reference run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail, ensure};
use elf::ElfBytes;
use elf::abi::{DT_NEEDED, DT_RUNPATH, PT_INTERP};
use elf::endian::AnyEndian;
use xshell::Shell;

use crate::kernels;

/// Debian 12's packages that hold the programs and every library they load (found with
/// `ldd` once; [`files`] checks the closure is complete and names any soname it misses).
const PACKAGES: &[&str] = &[
    "pciutils",
    "libpci3",
    "udev",
    "libudev1",
    "systemd",
    "libsystemd-shared",
    "libkmod2",
    "libc6",
    // Rust's standard library unwinds through libgcc_s: modkit's libkmod.so.2 needs it.
    "libgcc-s1",
    "zlib1g",
    "libzstd1",
    "liblzma5",
    "libssl3",
    "libacl1",
    "libblkid1",
    "libcap2",
    "libselinux1",
    "libpcre2-8-0",
    "libcrypt1",
    "libgcrypt20",
    "libgpg-error0",
    "libip4tc2",
    "liblz4-1",
    "libmount1",
    "libpam0g",
    "libseccomp2",
    "libaudit1",
    "libcap-ng0",
];

/// Where the dynamic linker looks without a cache (Debian's multiarch directories).
const LIBRARY_DIRS: &[&str] = &["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"];

/// The guest's files: path in the archive (no leading `/`) and contents.
#[derive(Debug, Default)]
pub struct Files {
    files: BTreeMap<String, Vec<u8>>,
}

impl Files {
    pub fn add_to(&self, archive: &mut modkit_cpio::Archive) {
        let mut dirs: Vec<String> = Vec::new();
        for path in self.files.keys() {
            let mut at = 0;
            while let Some(slash) = path[at..].find('/') {
                at += slash;
                let dir = &path[..at];
                if !dirs.iter().any(|d| d == dir) {
                    dirs.push(dir.to_owned());
                }
                at += 1;
            }
        }
        for dir in dirs {
            archive.dir(&dir);
        }
        for (path, data) in &self.files {
            archive.file(path, 0o755, data.clone());
        }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }
}

/// Debian's programs and their libraries, with `ours` (modkit's `libkmod.so.2`) as the
/// `libkmod.so.2` they load and Debian's own in [`vmtest::libkmod::DEBIAN_DIR`].
pub fn files(sh: &Shell, ours: &Path) -> Result<Files> {
    let root = kernels::userland(sh, "vmtest-libkmod", PACKAGES)?;
    let mut files = Files::default();
    let ours_data =
        std::fs::read(ours).with_context(|| format!("cannot read {}", ours.display()))?;
    let aside = format!(
        "{}/libkmod.so.2",
        ::vmtest::libkmod::DEBIAN_DIR.trim_start_matches('/')
    );
    // (path in the archive, the DT_RUNPATH it is found through, its contents if not read
    // from `root`); ours and Debian's libkmod are both walked: each has its own needs.
    type Pending = (String, Vec<String>, Option<Vec<u8>>);
    let mut pending: Vec<Pending> = ::vmtest::libkmod::PROGRAMS
        .iter()
        .map(|program| (program.trim_start_matches('/').to_owned(), Vec::new(), None))
        .collect();
    let mut interpreter = None;
    let mut replaced = false;
    while let Some((rel, parent_runpath, given)) = pending.pop() {
        if files.files.contains_key(&rel) {
            continue;
        }
        let mut data = match given {
            Some(data) => data,
            None => read_in(&root, &rel)?,
        };
        if rel.ends_with("/libkmod.so.2") && rel != aside {
            // Debian's goes aside, for the reference runs; modkit's takes its place.
            ensure!(
                ours_data != data,
                "{} is Debian's libkmod.so.2, not modkit's",
                ours.display()
            );
            let debian = std::mem::replace(&mut data, ours_data.clone());
            pending.push((aside.clone(), Vec::new(), Some(debian)));
            replaced = true;
        }
        let linked = Linked::parse(&data)
            .with_context(|| format!("{}: not a dynamic ELF file", root.join(&rel).display()))?;
        if let Some(interp) = linked.interpreter {
            interpreter.get_or_insert(interp);
        }
        files.files.insert(rel.clone(), data);
        // A library's own DT_RUNPATH applies to its needs; a program's applies to its own.
        let runpath = if linked.runpath.is_empty() {
            parent_runpath
        } else {
            linked.runpath
        };
        for needed in linked.needed {
            let found = find_library(&root, &needed, &runpath).with_context(|| {
                format!(
                    "{rel} needs {needed}, which none of {PACKAGES:?} holds in {} or {}",
                    LIBRARY_DIRS.join(", "),
                    if runpath.is_empty() {
                        "no DT_RUNPATH".to_owned()
                    } else {
                        runpath.join(", ")
                    }
                )
            })?;
            pending.push((found, runpath.clone(), None));
        }
    }
    ensure!(replaced, "no program loads libkmod.so.2");
    let interpreter = interpreter.context("no program names its dynamic linker (PT_INTERP)")?;
    let interp_rel = interpreter.trim_start_matches('/').to_owned();
    let data = read_in(&root, &interp_rel)?;
    files.files.insert(interp_rel, data);
    Ok(files)
}

/// What the dynamic linker reads from an ELF file.
struct Linked {
    interpreter: Option<String>,
    needed: Vec<String>,
    runpath: Vec<String>,
}

impl Linked {
    fn parse(data: &[u8]) -> Result<Linked> {
        let file = ElfBytes::<AnyEndian>::minimal_parse(data)?;
        let interpreter = file
            .segments()
            .and_then(|segments| segments.iter().find(|p| p.p_type == PT_INTERP))
            .map(|p| -> Result<String> {
                let bytes = file.segment_data(&p)?;
                Ok(
                    String::from_utf8_lossy(bytes.split(|b| *b == 0).next().unwrap_or_default())
                        .into_owned(),
                )
            })
            .transpose()?;
        let (_, strtab) = file
            .dynamic_symbol_table()?
            .context("no dynamic symbol table")?;
        let dynamic = file.dynamic()?.context("no dynamic section")?;
        let mut needed = Vec::new();
        let mut runpath = Vec::new();
        for entry in dynamic.iter() {
            match entry.d_tag {
                DT_NEEDED => needed.push(strtab.get(entry.d_val() as usize)?.to_owned()),
                DT_RUNPATH => runpath.extend(
                    strtab
                        .get(entry.d_val() as usize)?
                        .split(':')
                        .filter(|p| !p.is_empty())
                        .map(|p| p.trim_start_matches('/').to_owned()),
                ),
                _ => {}
            }
        }
        Ok(Linked {
            interpreter,
            needed,
            runpath,
        })
    }
}

/// The path (relative to `root`) the dynamic linker would load `soname` from: DT_RUNPATH
/// first, then the default directories; symbolic links resolved inside `root`.
fn find_library(root: &Path, soname: &str, runpath: &[String]) -> Option<String> {
    runpath
        .iter()
        .map(String::as_str)
        .chain(LIBRARY_DIRS.iter().copied())
        .map(|dir| format!("{dir}/{soname}"))
        .find(|rel| resolve_in(root, rel).is_ok_and(|real| root.join(real).is_file()))
}

/// `rel` inside `root` with its symbolic links followed inside `root` (an absolute link
/// target is taken relative to `root`, as it would be in the guest), never out of it.
fn resolve_in(root: &Path, rel: &str) -> Result<PathBuf> {
    let mut parts: Vec<String> = Vec::new();
    let mut todo: Vec<String> = rel.split('/').rev().map(str::to_owned).collect();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                parts.pop();
                continue;
            }
            _ => {}
        }
        parts.push(part);
        let here: PathBuf = parts.iter().collect();
        let full = root.join(&here);
        let is_link = std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            continue;
        }
        links += 1;
        ensure!(
            links <= 40,
            "{}: too many levels of symbolic links",
            root.join(rel).display()
        );
        let target = std::fs::read_link(&full)
            .with_context(|| format!("cannot read the link {}", full.display()))?;
        parts.pop();
        if target.is_absolute() {
            parts.clear();
        }
        let target = target.to_string_lossy().into_owned();
        todo.extend(target.split('/').rev().map(str::to_owned));
    }
    Ok(parts.iter().collect())
}

/// The contents of `rel` inside `root`, links followed inside `root`.
fn read_in(root: &Path, rel: &str) -> Result<Vec<u8>> {
    let real = root.join(resolve_in(root, rel)?);
    std::fs::read(&real).with_context(|| format!("cannot read {} (for {rel})", real.display()))
}

/// Builds modkit's `libkmod.so.2` for the guest (dynamic, against the glibc Debian 12's
/// programs bring) and returns its path.
pub fn build_ours(sh: &Shell) -> Result<PathBuf> {
    let root = crate::project_root();
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir).join("vmtest-capi"),
        None => root.join("target/vmtest-capi"),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building modkit's libkmod.so.2 for the guest...");
    let _dir = sh.push_dir(&root);
    xshell::cmd!(
        sh,
        "{cargo} build --release -p modkit-capi --target-dir {target_dir}"
    )
    .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
    .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
    .env("CARGO_PROFILE_RELEASE_LTO", "off")
    .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "true")
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS")
    .run()
    .context("cannot build modkit-capi")?;
    let out = target_dir.join("release");
    for name in ["libkmod.so.2", "libmodkit_capi.so"] {
        let path = out.join(name);
        if path.is_file() {
            return Ok(path);
        }
    }
    bail!(
        "cargo built modkit-capi but {} has no libkmod.so.2 or libmodkit_capi.so",
        out.display()
    )
}
