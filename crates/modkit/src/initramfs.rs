//! What goes into an initramfs for a set of devices, modules and filesystems, and the image
//! itself: the pieces of `modkit initramfs`, usable without the CLI.
//!
//! 1. [`closure`]: the modules a [`Request`] needs, each resolved as modprobe resolves it
//!    (through [`Context::lookup`]), with its dependencies (modules.dep), its soft
//!    dependencies `pre:` and `post:` from every matching `softdep` line (modprobe.d and the
//!    modules' own records, through `modules.softdep`), and its weak dependencies (`weakdep=`
//!    records and `weakdep` lines), recursively; each module with the [`Reason`] it is in.
//! 2. [`firmware::find`]: the files the modules' `firmware=` records name, under
//!    `ROOT/lib/firmware` (plain, `.xz`, `.zst`), and those that are absent.
//! 3. [`config_lines`]: the modprobe.d `options`, `blacklist` and `softdep` lines that mention
//!    an included module.
//! 4. [`image::build`]: the newc archive (modkit-cpio): the module files at their modules.dep
//!    paths, the tree's modules.order / modules.builtin / modules.builtin.modinfo, the indexes
//!    written by modkit's depmod for just those modules, the firmware and
//!    `/etc/modprobe.d/modkit.conf`. Nothing else: no cache file, no host path.
//! 5. [`host::host_request`]: `--host`, the root filesystem's device and type on the running
//!    machine, with the members of a device-mapper or MD root and the modules its layers
//!    need.

pub mod firmware;
pub mod host;
pub mod image;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use modkit_config::modprobe::Origin;
use modkit_glob::fnmatch;

use crate::report::{Level, Recorder};
use crate::{Context, Error, ModId};

/// What an image is for. Everything combines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Device modaliases (`pci:v00001AF4d00001001...`, `virtio:d00000002v00001AF4`).
    pub aliases: Vec<String>,
    /// Module names (or anything modprobe takes: aliases, `symbol:NAME`).
    pub modules: Vec<String>,
    /// Filesystem types (`ext4`): looked up as the kernel asks for them, `fs-TYPE`, then as
    /// a module name.
    pub filesystems: Vec<String>,
    /// The storage drivers of the tree, [`GENERIC_DIRS`].
    pub generic: bool,
    /// Modules the layers of a stacked block device need (`--host` on a device-mapper or MD
    /// root: `dm_mod`, `dm_crypt`, `md-raid1` ...), each looked up as modprobe takes a name,
    /// with what needs it (`dm-0 (device-mapper, uuid CRYPT-LUKS2-...)`).
    pub stacked: Vec<(String, String)>,
}

/// The directories (relative to the module directory) whose modules `--generic` takes: the
/// block, ATA, SCSI, NVMe, MD (RAID, device mapper), virtio, MMC (host controllers and the
/// card's block driver) and USB-storage drivers, with USB host controllers (a USB disk needs
/// one).
pub const GENERIC_DIRS: &[&str] = &[
    "kernel/drivers/block/",
    "kernel/drivers/ata/",
    "kernel/drivers/scsi/",
    "kernel/drivers/nvme/",
    "kernel/drivers/md/",
    "kernel/drivers/virtio/",
    "kernel/drivers/mmc/",
    "kernel/drivers/usb/storage/",
    "kernel/drivers/usb/host/",
];

/// Why a module is in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// It drives a device with this modalias.
    Device(String),
    /// It was asked for by this name.
    Named(String),
    /// It provides this filesystem type.
    Filesystem(String),
    /// `--generic`: a driver under this directory of the tree.
    Generic(&'static str),
    /// modules.dep: the named module needs its symbols.
    Dependency(String),
    /// A `softdep` line of the named module lists it under `pre:`.
    SoftPre(String),
    /// A `softdep` line of the named module lists it under `post:`.
    SoftPost(String),
    /// A weak dependency (`weakdep`) of the named module.
    Weak(String),
    /// A layer of the root's block device stack needs it (a device-mapper target, an MD
    /// personality), as [`Request::stacked`] says.
    Stacked {
        /// The name looked up (`dm_crypt`, `md-raid1`).
        name: String,
        /// What needs it (`md127 (MD array, level raid1)`).
        what: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Device(alias) => write!(f, "device {alias}"),
            Reason::Named(name) => write!(f, "requested as {name}"),
            Reason::Filesystem(fs) => write!(f, "filesystem {fs}"),
            Reason::Generic(dir) => write!(f, "generic driver under {}", dir.trim_end_matches('/')),
            Reason::Dependency(of) => write!(f, "dependency of {of}"),
            Reason::SoftPre(of) => write!(f, "soft dependency (pre) of {of}"),
            Reason::SoftPost(of) => write!(f, "soft dependency (post) of {of}"),
            Reason::Weak(of) => write!(f, "weak dependency of {of}"),
            Reason::Stacked { name, what } => write!(f, "root device layer {what} needs {name}"),
        }
    }
}

/// A module file that goes into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Included {
    /// The module's name.
    pub name: String,
    /// Its file.
    pub path: PathBuf,
    /// Its path in the image, relative to `/lib/modules/VERSION` (its modules.dep path).
    pub rel: String,
    /// Why it is there (the first reason found, nearest the request).
    pub reason: Reason,
    /// Its `firmware=` records, in order.
    pub firmware: Vec<String>,
}

/// The modules a [`Request`] needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closure {
    /// The module files, in the order they were found (requests first, then breadth first).
    pub modules: Vec<Included>,
    /// Modules needed but built into the kernel: nothing to copy.
    pub builtin: Vec<(String, Reason)>,
    /// Names the indexes know but no file backs (an alias naming a module the tree lacks).
    pub without_file: Vec<(String, Reason)>,
    /// Requests that resolve to nothing. A device alias without a driver is common (not every
    /// device has one); a named module or filesystem without one is an error for the CLI.
    pub unresolved: Vec<Reason>,
    /// Problems met on the way (a soft dependency that cannot be looked up, a module file
    /// whose records cannot be read), in kmod's wording where it has one.
    pub warnings: Vec<String>,
}

impl Closure {
    /// The included module names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.modules.iter().map(|m| m.name.as_str())
    }
}

/// The modules `request` needs: each request resolved as modprobe resolves it, then,
/// breadth first, each module's dependencies, soft dependencies (every matching `softdep`
/// line, `pre:` and `post:`; [`Context::set_first_softdep_only`] gives kmod 30's rule) and
/// weak dependencies. Each module name appears once, with the first reason found.
pub fn closure(ctx: &mut Context, request: &Request) -> Result<Closure, Error> {
    let mut out = Closure::default();
    let mut queue: VecDeque<(ModId, Reason)> = VecDeque::new();
    let mut seed = |ctx: &mut Context, out: &mut Closure, names: &[String], reason: Reason| {
        let mut found = Vec::new();
        for name in names {
            found = ctx.lookup(name)?;
            if !found.is_empty() {
                break;
            }
        }
        if found.is_empty() {
            out.unresolved.push(reason.clone());
        }
        queue.extend(found.into_iter().map(|id| (id, reason.clone())));
        Ok::<(), Error>(())
    };
    for alias in &request.aliases {
        seed(
            ctx,
            &mut out,
            std::slice::from_ref(alias),
            Reason::Device(alias.clone()),
        )?;
    }
    for name in &request.modules {
        seed(
            ctx,
            &mut out,
            std::slice::from_ref(name),
            Reason::Named(name.clone()),
        )?;
    }
    for (name, what) in &request.stacked {
        seed(
            ctx,
            &mut out,
            std::slice::from_ref(name),
            Reason::Stacked {
                name: name.clone(),
                what: what.clone(),
            },
        )?;
    }
    for fs in &request.filesystems {
        // The kernel asks for `fs-TYPE` (fs/filesystems.c, get_fs_type); a module named
        // after the type is the fallback for trees without that alias.
        seed(
            ctx,
            &mut out,
            &[format!("fs-{fs}"), fs.clone()],
            Reason::Filesystem(fs.clone()),
        )?;
    }
    if request.generic {
        for (name, dir) in generic_modules(ctx.dir())? {
            let id = ctx.module_from_name(&name);
            queue.push_back((id, Reason::Generic(dir)));
        }
    }

    let mut seen = HashSet::new();
    let mut recorder = Recorder::default();
    while let Some((id, reason)) = queue.pop_front() {
        let name = ctx.name(id).to_owned();
        if !seen.insert(name.clone()) {
            continue;
        }
        if ctx.is_builtin(id) {
            out.builtin.push((name, reason));
            continue;
        }
        let Some(path) = ctx.path(id)? else {
            out.without_file.push((name, reason));
            continue;
        };
        let (firmware, mut weak) = match crate::info::file_info(&path) {
            Ok(info) => {
                let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
                let firmware = info.values("firmware").map(text).collect();
                let weak: Vec<String> = info
                    .values("weakdep")
                    .flat_map(|v| {
                        text(v)
                            .split_whitespace()
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                    .collect();
                (firmware, weak)
            }
            Err(err) => {
                out.warnings.push(format!(
                    "{name}: cannot read its records, so no firmware or weak dependencies: {err}"
                ));
                (Vec::new(), Vec::new())
            }
        };
        for line in &ctx.config().weakdeps {
            if fnmatch(line.module.as_bytes(), name.as_bytes()) {
                weak.extend(line.deps.iter().cloned());
            }
        }
        for dep in ctx.dependencies(id)? {
            queue.push_back((dep, Reason::Dependency(name.clone())));
        }
        let softdeps = ctx.softdeps(id);
        softdeps.report(&mut recorder);
        for dep in softdeps.pre {
            queue.push_back((dep, Reason::SoftPre(name.clone())));
        }
        for dep in softdeps.post {
            queue.push_back((dep, Reason::SoftPost(name.clone())));
        }
        for dep in weak {
            for found in ctx.lookup(&dep)? {
                queue.push_back((found, Reason::Weak(name.clone())));
            }
        }
        let rel = relative_path(ctx.dir(), &path);
        out.modules.push(Included {
            name,
            path,
            rel,
            reason,
            firmware,
        });
    }
    out.warnings.extend(
        recorder
            .messages
            .into_iter()
            .filter(|(level, _)| *level <= Level::Warning)
            .map(|(_, text)| text),
    );
    Ok(out)
}

/// The module's path relative to the module directory (its modules.dep path); a module
/// outside the directory (an absolute modules.dep path) goes to `extra/FILE`.
fn relative_path(dir: &Path, path: &Path) -> String {
    match path.strip_prefix(dir) {
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => format!(
            "extra/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        ),
    }
}

/// The modules of modules.dep under [`GENERIC_DIRS`], in modules.dep order, with their
/// directory.
pub fn generic_modules(dir: &Path) -> Result<Vec<(String, &'static str)>, Error> {
    let path = dir.join("modules.dep");
    let text = std::fs::read_to_string(&path).map_err(|cause| Error::Io { path, cause })?;
    Ok(text
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter_map(|(rel, _)| {
            let group = GENERIC_DIRS.iter().find(|d| rel.starts_with(**d))?;
            Some((crate::name::path_to_modname(rel)?, *group))
        })
        .collect())
}

/// The modprobe.d lines that mention an included module, as text for
/// `/etc/modprobe.d/modkit.conf`: `blacklist` lines naming one, `options` lines for one,
/// `softdep` lines whose pattern matches one, each kind in configuration order. Lines from
/// `modules.softdep` (which the image's own depmod writes again) and from the kernel command
/// line are left out.
pub fn config_lines(ctx: &Context, modules: &Closure) -> Vec<String> {
    let names: HashSet<&str> = modules.names().collect();
    let from_modprobe_d = |origin: &Origin| match origin {
        Origin::File { path, .. } => path.file_name() != Some("modules.softdep".as_ref()),
        Origin::Cmdline => false,
    };
    let config = ctx.config();
    let mut lines = Vec::new();
    for b in &config.blacklist {
        if from_modprobe_d(&b.origin) && names.contains(b.module.as_str()) {
            lines.push(format!("blacklist {}", b.module));
        }
    }
    for o in &config.options {
        if from_modprobe_d(&o.origin) && names.contains(o.module.as_str()) {
            lines.push(format!("options {} {}", o.module, o.options));
        }
    }
    for s in &config.softdeps {
        if from_modprobe_d(&s.origin)
            && names
                .iter()
                .any(|n| fnmatch(s.module.as_bytes(), n.as_bytes()))
        {
            let mut line = format!("softdep {}", s.module);
            for (label, words) in [("pre:", &s.pre), ("post:", &s.post)] {
                if !words.is_empty() {
                    line.push(' ');
                    line.push_str(label);
                    for w in words {
                        line.push(' ');
                        line.push_str(w);
                    }
                }
            }
            lines.push(line);
        }
    }
    lines
}
