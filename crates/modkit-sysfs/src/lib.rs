//! The device side of sysfs, rooted at a configurable path so that tests can hand it a fake
//! tree: which modaliases a device node needs (walking up from its sysfs directory, as Guix's
//! `device-module-aliases` does), every device's modalias (for coldplug), and PCI devices with
//! their kind and, from `pci.ids`, their names; what a device-mapper or MD block device is
//! built from ([`Sysfs::block_stack`]).
//!
//! ```
//! use std::fs;
//! use std::os::unix::fs::symlink;
//!
//! use modkit_sysfs::{DeviceKind, DeviceNumber, Sysfs};
//!
//! // A tree like a QEMU guest's /sys: a virtio disk on a PCI function, and the link that
//! // /sys/dev/block/254:1 (its first partition, /dev/vda1) is.
//! let root = std::env::temp_dir().join(format!("modkit-sysfs-doc-{}", std::process::id()));
//! # let _ = fs::remove_dir_all(&root);
//! let pci = root.join("devices/pci0000:00/0000:00:04.0");
//! fs::create_dir_all(pci.join("virtio1/block/vda/vda1")).unwrap();
//! let modalias = "MODALIAS=pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00\n";
//! fs::write(pci.join("uevent"), modalias).unwrap();
//! fs::write(pci.join("virtio1/uevent"), "MODALIAS=virtio:d00000002v00001AF4\n").unwrap();
//! fs::create_dir_all(root.join("dev/block")).unwrap();
//! let vda1_dir = "../../devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1";
//! symlink(vda1_dir, root.join("dev/block/254:1")).unwrap();
//!
//! let sys = Sysfs::new(&root);
//! let vda1 = DeviceNumber { kind: DeviceKind::Block, major: 254, minor: 1 };
//! assert_eq!(
//!     sys.modaliases_by_number(vda1)?,
//!     [
//!         "virtio:d00000002v00001AF4",
//!         "pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00",
//!     ]
//! );
//! # fs::remove_dir_all(&root).unwrap();
//! # Ok::<(), modkit_sysfs::Error>(())
//! ```
//!
//! Paths under the root are resolved like in a chroot: `..` stops at the root and an absolute
//! link `/sys/x` means `x` under it. Symbolic links are followed a bounded number of times and
//! walks never follow them, so loops give [`Error::SymlinkLoop`] and never hang.

#![forbid(unsafe_code)]

mod error;
mod pci;
mod pci_ids;
mod resolve;
mod stack;
mod uevent;

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use pci::{PciDevice, PciKind};
pub use pci_ids::{PCI_IDS_PATHS, PciIds};
pub use stack::{BlockDevice, BlockLayer, MAX_STACK};
pub use uevent::Uevent;

use resolve::{MAX_DEPTH, canonicalize, join};

/// Block or character device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceKind {
    /// A block device (`/sys/dev/block`).
    Block,
    /// A character device (`/sys/dev/char`).
    Char,
}

impl DeviceKind {
    /// The directory name under `/sys/dev`.
    pub fn sysfs_dir(self) -> &'static str {
        match self {
            DeviceKind::Block => "block",
            DeviceKind::Char => "char",
        }
    }
}

/// A device number: kind, major and minor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceNumber {
    /// Block or character.
    pub kind: DeviceKind,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl DeviceNumber {
    /// Split a `dev_t` as glibc's `gnu_dev_major()` and `gnu_dev_minor()` do
    /// (`<bits/sysmacros.h>`): major in bits 8-19 and 44-63, minor in bits 0-7 and 20-43.
    pub fn from_dev_t(kind: DeviceKind, dev: u64) -> DeviceNumber {
        let major = ((dev & 0x0000_0000_000f_ff00) >> 8) | ((dev & 0xffff_f000_0000_0000) >> 32);
        let minor = (dev & 0x0000_0000_0000_00ff) | ((dev & 0x0000_0fff_fff0_0000) >> 12);
        DeviceNumber {
            kind,
            major: major as u32,
            minor: minor as u32,
        }
    }
}

impl fmt::Display for DeviceNumber {
    /// `block/254:0`, the path under `/sys/dev`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}:{}", self.kind.sysfs_dir(), self.major, self.minor)
    }
}

/// A sysfs tree (and the `/dev` directory that goes with it).
#[derive(Clone, Debug)]
pub struct Sysfs {
    root: PathBuf,
    dev: PathBuf,
}

impl Default for Sysfs {
    fn default() -> Sysfs {
        Sysfs::system()
    }
}

impl Sysfs {
    /// The sysfs tree at `root` (which stands for `/sys`), with device nodes in `/dev`.
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs {
            root: root.into(),
            dev: PathBuf::from("/dev"),
        }
    }

    /// The running system's: `/sys` and `/dev`.
    pub fn system() -> Sysfs {
        Sysfs::new("/sys")
    }

    /// Look relative device node names up in `dev` instead of `/dev`.
    pub fn with_dev(mut self, dev: impl Into<PathBuf>) -> Sysfs {
        self.dev = dev.into();
        self
    }

    /// The sysfs root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory relative device node names are looked up in.
    pub fn dev(&self) -> &Path {
        &self.dev
    }

    /// The number of the device node `node` (followed if it is a link): an absolute path is
    /// used as is, a relative one (`vda`) is looked up in the `/dev` directory.
    pub fn device_number(&self, node: impl AsRef<Path>) -> Result<DeviceNumber> {
        let path = self.dev.join(node.as_ref());
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(&path, e))?;
        let kind = if meta.file_type().is_block_device() {
            DeviceKind::Block
        } else if meta.file_type().is_char_device() {
            DeviceKind::Char
        } else {
            return Err(Error::NotADeviceNode { path });
        };
        Ok(DeviceNumber::from_dev_t(kind, meta.rdev()))
    }

    /// The canonical sysfs directory of a device number (`/sys/dev/block/254:0` resolved),
    /// which must lie under `devices/`.
    pub fn device_dir(&self, number: DeviceNumber) -> Result<PathBuf> {
        let components = self.device_components(number)?;
        Ok(join(&self.root, &components))
    }

    fn device_components(&self, number: DeviceNumber) -> Result<Vec<OsString>> {
        let rel = PathBuf::from(format!("dev/{number}"));
        let components = canonicalize(&self.root, &rel)?;
        if components.len() < 2 || components[0] != "devices" {
            return Err(Error::NotADevice {
                path: join(&self.root, &components),
            });
        }
        Ok(components)
    }

    /// The modaliases a device node needs: [`Sysfs::device_number`], then
    /// [`Sysfs::modaliases_by_number`].
    pub fn device_modaliases(&self, node: impl AsRef<Path>) -> Result<Vec<String>> {
        self.modaliases_by_number(self.device_number(node)?)
    }

    /// The modaliases a device needs, nearest first: from its canonical directory up to (not
    /// including) the top-level `devices/X` directory, the `MODALIAS` of each directory's
    /// `uevent` — or, when the uevent has none, the content of its `modalias` file. A
    /// directory without either is skipped. (Guix's `device-module-aliases`, which stops at
    /// `/sys/devices/X` too.)
    pub fn modaliases_by_number(&self, number: DeviceNumber) -> Result<Vec<String>> {
        self.walk_up(self.device_components(number)?)
    }

    /// Like [`Sysfs::modaliases_by_number`] for a device directory given by path, either
    /// under the root (as [`Sysfs::device_dir`] returns it) or relative to it
    /// (`devices/platform/i8042/serio0`).
    pub fn modaliases_of_dir(&self, dir: impl AsRef<Path>) -> Result<Vec<String>> {
        let dir = dir.as_ref();
        let rel = dir.strip_prefix(&self.root).unwrap_or(dir);
        let components = canonicalize(&self.root, rel)?;
        if components.len() < 2 || components[0] != "devices" {
            return Err(Error::NotADevice {
                path: join(&self.root, &components),
            });
        }
        self.walk_up(components)
    }

    /// The modaliases from a canonical device directory up to `devices/X`, nearest first.
    fn walk_up(&self, mut components: Vec<OsString>) -> Result<Vec<String>> {
        let mut out = Vec::new();
        while components.len() > 2 {
            let dir = join(&self.root, &components);
            if let Some(alias) = dir_modalias(&dir)? {
                out.push(alias);
            }
            components.pop();
        }
        Ok(out)
    }

    /// Every device under `devices/` that has a modalias (the `MODALIAS` of its uevent, or
    /// its `modalias` file), with its directory, sorted by path: what coldplug must resolve.
    /// Symbolic links are not followed, so the walk sees each device once and ends.
    pub fn all_modaliases(&self) -> Result<Vec<(PathBuf, String)>> {
        let top = self.root.join("devices");
        let mut out = Vec::new();
        let mut visited = HashSet::new();
        let mut stack = vec![(top, 0)];
        while let Some((dir, depth)) = stack.pop() {
            if depth > MAX_DEPTH {
                return Err(Error::TooDeep {
                    path: dir,
                    max: MAX_DEPTH,
                });
            }
            let meta = std::fs::symlink_metadata(&dir).map_err(|e| Error::io(&dir, e))?;
            // Bind mounts or a corrupted tree could show a directory twice.
            if !visited.insert((meta.dev(), meta.ino())) {
                continue;
            }
            if let Some(alias) = dir_modalias(&dir)? {
                out.push((dir.clone(), alias));
            }
            let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(&dir, e))?;
                let file_type = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
                if file_type.is_dir() {
                    stack.push((entry.path(), depth + 1));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// The PCI devices of `bus/pci/devices`, sorted by address; none when there is no PCI
    /// bus. `vendor`, `device` and `class` must be there; the subsystem ids and the driver
    /// may be missing; the modalias is the `modalias` file or the uevent's `MODALIAS`.
    pub fn pci_devices(&self) -> Result<Vec<PciDevice>> {
        let bus = self.root.join("bus/pci/devices");
        let entries = match std::fs::read_dir(&bus) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&bus, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            names.push(entry.map_err(|e| Error::io(&bus, e))?.file_name());
        }
        names.sort();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for name in names {
            let rel = Path::new("bus/pci/devices").join(&name);
            let components = canonicalize(&self.root, &rel)?;
            let dir = join(&self.root, &components);
            if !seen.insert(dir.clone()) {
                continue;
            }
            let modalias = match read_attr(&dir.join("modalias"))? {
                Some(m) => m,
                None => dir_modalias(&dir)?.ok_or_else(|| Error::NotFound {
                    path: dir.join("modalias"),
                })?,
            };
            let driver = match std::fs::read_link(dir.join("driver")) {
                Ok(target) => target.file_name().map(|n| n.to_string_lossy().into_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(Error::io(dir.join("driver"), e)),
            };
            out.push(PciDevice {
                address: name.to_string_lossy().into_owned(),
                vendor: hex_attr(&dir, "vendor")?.ok_or_else(|| missing(&dir, "vendor"))? as u16,
                device: hex_attr(&dir, "device")?.ok_or_else(|| missing(&dir, "device"))? as u16,
                subsystem_vendor: hex_attr(&dir, "subsystem_vendor")?.map(|v| v as u16),
                subsystem_device: hex_attr(&dir, "subsystem_device")?.map(|v| v as u16),
                class: hex_attr(&dir, "class")?.ok_or_else(|| missing(&dir, "class"))?,
                modalias,
                driver,
                path: dir,
            });
        }
        Ok(out)
    }

    /// The parsed `uevent` of a device directory (under the root, or relative to it).
    pub fn uevent(&self, dir: impl AsRef<Path>) -> Result<Uevent> {
        let dir = dir.as_ref();
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            self.root.join(dir)
        };
        let path = dir.join("uevent");
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        Uevent::parse(&text, &path)
    }
}

fn missing(dir: &Path, attr: &str) -> Error {
    Error::NotFound {
        path: dir.join(attr),
    }
}

/// A one-line attribute file, trimmed; `None` when it does not exist.
fn read_attr(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim_end_matches('\n').to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A hexadecimal attribute like `0x8086`, as `vendor`, `device` and `class` hold.
fn hex_attr(dir: &Path, name: &str) -> Result<Option<u32>> {
    let path = dir.join(name);
    let Some(text) = read_attr(&path)? else {
        return Ok(None);
    };
    let digits = text.trim().strip_prefix("0x").unwrap_or(text.trim());
    u32::from_str_radix(digits, 16)
        .map(Some)
        .map_err(|_| Error::Malformed {
            path,
            line: 1,
            reason: format!("expected a hexadecimal number, found {text:?}"),
        })
}

/// The modalias of one directory: its uevent's `MODALIAS`, else its `modalias` file.
fn dir_modalias(dir: &Path) -> Result<Option<String>> {
    let uevent = dir.join("uevent");
    match std::fs::read_to_string(&uevent) {
        Ok(text) => {
            if let Some(alias) = Uevent::parse(&text, &uevent)?.modalias() {
                return Ok(Some(alias.to_owned()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&uevent, e)),
    }
    Ok(read_attr(&dir.join("modalias"))?.filter(|m| !m.is_empty()))
}
