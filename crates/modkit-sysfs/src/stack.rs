//! What a block device is built from: a device-mapper or MD device and, through `slaves/`,
//! the devices under it, recursively (LVM on LUKS on an MD array of partitions ...). The
//! kernel links each member under `/sys/block/NAME/slaves/` (drivers/md/dm.c and md.c,
//! `bd_link_disk_holder`); `dm/name` and `dm/uuid` say what a device-mapper device is, and
//! `md/level` which personality an array runs (Documentation/admin-guide/md.rst).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::resolve::{canonicalize, join};
use crate::{DeviceNumber, Sysfs, read_attr};

/// Devices one stack may hold before the walk counts as runaway (a real one has a handful).
pub const MAX_STACK: usize = 4096;

/// The layer a block device is, as sysfs says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockLayer {
    /// A device-mapper device (`dm/`).
    DeviceMapper {
        /// `dm/name` (`vg0-root`, `luks-3b0e...`).
        name: String,
        /// `dm/uuid`, set by the tool that made it: `LVM-...`, `CRYPT-LUKS2-...`, `mpath-...`;
        /// empty when none was given.
        uuid: String,
    },
    /// An MD array (`md/`).
    Md {
        /// `md/level`: `raid1`, `raid5`, `linear` ...; empty for an inactive array or a
        /// container.
        level: String,
    },
}

/// One block device of a stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// Its canonical directory under the root (`.../block/sda/sda2`, `.../block/dm-0`).
    pub dir: PathBuf,
    /// Its kernel name (`sda2`, `dm-0`, `md127`).
    pub name: String,
    /// What it is, when it is a device-mapper or MD device (or a partition of one).
    pub layer: Option<BlockLayer>,
}

impl Sysfs {
    /// The block device `number` and every device it is built from: the `slaves/` of its
    /// disk (for a partition, the whole disk's), each followed in turn, depth first in name
    /// order, each device once. A plain disk or partition is a stack of one.
    pub fn block_stack(&self, number: DeviceNumber) -> Result<Vec<BlockDevice>> {
        let first = canonicalize(&self.root, &PathBuf::from(format!("dev/{number}")))?;
        let mut out: Vec<BlockDevice> = Vec::new();
        let mut pending = vec![first];
        while let Some(components) = pending.pop() {
            let dir = join(&self.root, &components);
            if out.iter().any(|d| d.dir == dir) {
                continue;
            }
            if out.len() == MAX_STACK {
                return Err(Error::TooDeep {
                    path: dir,
                    max: MAX_STACK,
                });
            }
            // A partition (it has a `partition` attribute) is stacked as its disk is.
            let mut disk = components.clone();
            if dir.join("partition").exists() && disk.len() > 1 {
                disk.pop();
            }
            let disk_dir = join(&self.root, &disk);
            let layer = if disk_dir.join("dm").is_dir() {
                Some(BlockLayer::DeviceMapper {
                    name: read_attr(&disk_dir.join("dm/name"))?.unwrap_or_default(),
                    uuid: read_attr(&disk_dir.join("dm/uuid"))?.unwrap_or_default(),
                })
            } else if disk_dir.join("md").is_dir() {
                Some(BlockLayer::Md {
                    level: read_attr(&disk_dir.join("md/level"))?.unwrap_or_default(),
                })
            } else {
                None
            };
            let slaves_dir = disk_dir.join("slaves");
            let mut slaves: Vec<OsString> = match std::fs::read_dir(&slaves_dir) {
                Ok(entries) => entries
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<std::io::Result<_>>()
                    .map_err(|e| Error::io(&slaves_dir, e))?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(Error::io(&slaves_dir, e)),
            };
            // Depth first, in name order: pushed in reverse.
            slaves.sort();
            for slave in slaves.iter().rev() {
                let mut rel: PathBuf = disk.iter().collect();
                rel.push("slaves");
                rel.push(slave);
                pending.push(canonicalize(&self.root, &rel)?);
            }
            out.push(BlockDevice {
                name: components
                    .last()
                    .map(|c| c.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                dir,
                layer,
            });
        }
        Ok(out)
    }
}
