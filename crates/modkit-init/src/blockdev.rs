//! The block devices present, from sysfs (`/sys/class/block`) and their device nodes (`/dev`,
//! a devtmpfs): name, device number, partition number and disk, and what [`crate::probe`]
//! finds on them. Both roots are parameters, so tests hand in a fake tree.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::bootargs::RootSpec;
use crate::probe::{self, Filesystem, PartitionId};

/// One block device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDevice {
    /// Its name in sysfs and under `/dev` (`vda`, `nvme0n1p1`, `sda`).
    pub name: String,
    /// Its device number, from sysfs's `dev`.
    pub devnum: Option<(u32, u32)>,
    /// For a partition: its number and its disk's name.
    pub partition: Option<(u32, String)>,
    /// The filesystem on it, when its superblock is one [`probe::filesystem`] knows.
    pub fs: Option<Filesystem>,
    /// For a partition: its ids from the disk's partition table.
    pub part_id: Option<PartitionId>,
    /// Why its device node could not be read, if it could not.
    pub error: Option<String>,
}

impl BlockDevice {
    /// Whether `spec` names this device.
    pub fn matches(&self, spec: &RootSpec) -> bool {
        let fs = self.fs.as_ref();
        let part = self.part_id.as_ref();
        match spec {
            RootSpec::Path(name) => &self.name == name,
            RootSpec::Uuid(uuid) => fs
                .and_then(|f| f.uuid.as_deref())
                .is_some_and(|u| u.eq_ignore_ascii_case(uuid)),
            RootSpec::Label(label) => fs.and_then(|f| f.label.as_deref()) == Some(label),
            RootSpec::PartUuid(uuid) => part.is_some_and(|p| p.uuid.eq_ignore_ascii_case(uuid)),
            RootSpec::PartLabel(label) => part.and_then(|p| p.label.as_deref()) == Some(label),
            RootSpec::DevNum(major, minor) => self.devnum == Some((*major, *minor)),
        }
    }
}

impl fmt::Display for BlockDevice {
    /// `vda1 (ext4 UUID=... LABEL=...)`, `sda (no filesystem found)`, `sdb (unreadable: ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (", self.name)?;
        match (&self.fs, &self.error) {
            (_, Some(error)) => write!(f, "unreadable: {error}")?,
            (Some(fs), None) => {
                f.write_str(fs.fstype)?;
                if let Some(uuid) = &fs.uuid {
                    write!(f, " UUID={uuid}")?;
                }
                if let Some(label) = &fs.label {
                    write!(f, " LABEL={label}")?;
                }
            }
            (None, None) => f.write_str("no filesystem found")?,
        }
        if let Some(part) = &self.part_id {
            write!(f, " PARTUUID={}", part.uuid)?;
        }
        f.write_str(")")
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Reads up to `len` bytes from the start of `path`.
fn read_head(path: &Path, len: usize) -> std::io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(len);
    File::open(path)?.take(len as u64).read_to_end(&mut head)?;
    Ok(head)
}

/// The partition ids of the disk at `node`: GPT when it has one, else the MBR's.
fn partition_table(node: &Path, block_size: u64) -> std::io::Result<Vec<PartitionId>> {
    let file = File::open(node)?;
    let mut head = vec![0u8; 2 * block_size as usize];
    let n = read_at_most(&file, &mut head, 0)?;
    head.truncate(n);
    let lba1 = head.get(block_size as usize..).unwrap_or_default();
    if let Some(header) = probe::gpt_header(lba1, block_size) {
        let mut entries = vec![0u8; header.entries_len() as usize];
        let n = read_at_most(&file, &mut entries, header.entries_offset)?;
        entries.truncate(n);
        return Ok(probe::gpt_partitions(&header, &entries));
    }
    Ok(probe::mbr_partitions(&head))
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

/// Every block device in `class_block` (`/sys/class/block`), probed through its node in `dev`
/// (`/dev`), sorted by name. Devices of size 0 (an empty loop or CD drive) are listed but not
/// read.
pub fn scan(class_block: &Path, dev: &Path) -> Vec<BlockDevice> {
    let Ok(entries) = std::fs::read_dir(class_block) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut tables: HashMap<String, std::io::Result<Vec<PartitionId>>> = HashMap::new();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let sys = class_block.join(&name);
        let devnum = read_trimmed(&sys.join("dev")).and_then(|d| {
            let (major, minor) = d.split_once(':')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        });
        // A partition's sysfs directory sits inside its disk's.
        let partition = read_trimmed(&sys.join("partition"))
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(|n| {
                let real = std::fs::canonicalize(&sys).ok()?;
                let disk = real.parent()?.file_name()?.to_str()?.to_owned();
                Some((n, disk))
            });
        let size = read_trimmed(&sys.join("size")).and_then(|s| s.parse::<u64>().ok());
        let node = dev.join(&name);
        let mut device = BlockDevice {
            name,
            devnum,
            partition,
            fs: None,
            part_id: None,
            error: None,
        };
        if size == Some(0) {
            out.push(device);
            continue;
        }
        match read_head(&node, probe::PROBE_LEN) {
            Ok(head) => device.fs = probe::filesystem(&head),
            Err(err) => device.error = Some(format!("{}: {err}", node.display())),
        }
        if let Some((number, disk)) = &device.partition {
            let table = tables.entry(disk.clone()).or_insert_with(|| {
                let block_size =
                    read_trimmed(&class_block.join(disk).join("queue/logical_block_size"))
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(512);
                partition_table(&dev.join(disk), block_size)
            });
            if let Ok(table) = table {
                device.part_id = table.iter().find(|p| p.number == *number).cloned();
            }
        }
        out.push(device);
    }
    out
}
