//! What is on a block device, from its first bytes: the filesystem's type, UUID and label
//! (ext2/3/4, XFS, Btrfs superblocks, as blkid reads them), and the partition table's ids
//! (GPT entries, the MBR disk signature). Pure functions over bytes; every read is checked.

/// How many bytes of a device [`filesystem`] needs: Btrfs's superblock ends at 68 KiB.
pub const PROBE_LEN: usize = 0x10000 + 0x1000;

/// A filesystem found by its superblock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filesystem {
    /// The type as `mount(2)` and `/proc/filesystems` name it: `ext2`, `ext3`, `ext4`,
    /// `xfs`, `btrfs`.
    pub fstype: &'static str,
    /// The UUID in blkid's lowercase text form.
    pub uuid: Option<String>,
    /// The label (volume name); `None` when empty.
    pub label: Option<String>,
}

fn get<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn le16(bytes: &[u8], at: usize) -> Option<u16> {
    get(bytes, at).map(u16::from_le_bytes)
}

fn le32(bytes: &[u8], at: usize) -> Option<u32> {
    get(bytes, at).map(u32::from_le_bytes)
}

fn le64(bytes: &[u8], at: usize) -> Option<u64> {
    get(bytes, at).map(u64::from_le_bytes)
}

/// `8-4-4-4-12` lowercase hex of 16 bytes in stored order (ext4, XFS, Btrfs store UUIDs
/// big-endian).
fn uuid_text(bytes: [u8; 16]) -> Option<String> {
    if bytes == [0; 16] {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// A GUID as GPT stores it (the first three fields little-endian), in text form.
fn guid_text(bytes: [u8; 16]) -> Option<String> {
    let mut swapped = bytes;
    swapped[0..4].reverse();
    swapped[4..6].reverse();
    swapped[6..8].reverse();
    uuid_text(swapped)
}

/// A NUL-padded label field; `None` when empty.
fn label_text(field: &[u8]) -> Option<String> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let text = String::from_utf8_lossy(&field[..end]).into_owned();
    (!text.is_empty()).then_some(text)
}

/// The filesystem whose superblock `head` (the device's first bytes, [`PROBE_LEN`] or fewer)
/// holds, if it is one this module knows.
pub fn filesystem(head: &[u8]) -> Option<Filesystem> {
    ext(head).or_else(|| xfs(head)).or_else(|| btrfs(head))
}

/// ext2/3/4: the superblock at 1024, magic 0xEF53 at +0x38. The type follows blkid: ext4
/// when it uses a feature ext3 lacks, else ext3 when it has a journal, else ext2; an external
/// journal device is not a filesystem.
fn ext(head: &[u8]) -> Option<Filesystem> {
    const SB: usize = 1024;
    const HAS_JOURNAL: u32 = 0x4;
    const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
    // What ext3 (and ext2) can mount: FILETYPE, RECOVER, META_BG; SPARSE_SUPER, LARGE_FILE,
    // BTREE_DIR.
    const EXT3_INCOMPAT: u32 = 0x2 | 0x4 | 0x10;
    const EXT3_RO_COMPAT: u32 = 0x1 | 0x2 | 0x4;
    if le16(head, SB + 0x38)? != 0xEF53 {
        return None;
    }
    let compat = le32(head, SB + 0x5C)?;
    let incompat = le32(head, SB + 0x60)?;
    let ro_compat = le32(head, SB + 0x64)?;
    if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        return None;
    }
    let fstype = if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT3_RO_COMPAT != 0 {
        "ext4"
    } else if compat & HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    Some(Filesystem {
        fstype,
        uuid: uuid_text(get(head, SB + 0x68)?),
        label: label_text(head.get(SB + 0x78..SB + 0x88)?),
    })
}

/// XFS: "XFSB" at 0, UUID at 32, a 12-byte label at 108.
fn xfs(head: &[u8]) -> Option<Filesystem> {
    if head.get(0..4)? != b"XFSB" {
        return None;
    }
    Some(Filesystem {
        fstype: "xfs",
        uuid: uuid_text(get(head, 32)?),
        label: label_text(head.get(108..120)?),
    })
}

/// Btrfs: the superblock at 64 KiB, magic "_BHRfS_M" at +0x40, fsid at +0x20, a 256-byte
/// label at +0x12b.
fn btrfs(head: &[u8]) -> Option<Filesystem> {
    const SB: usize = 0x10000;
    if head.get(SB + 0x40..SB + 0x48)? != b"_BHRfS_M" {
        return None;
    }
    Some(Filesystem {
        fstype: "btrfs",
        uuid: uuid_text(get(head, SB + 0x20)?),
        label: label_text(head.get(SB + 0x12b..SB + 0x22b)?),
    })
}

/// One partition's ids from its disk's partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionId {
    /// The partition number, as the kernel numbers it (`/sys/class/block/X/partition`).
    pub number: u32,
    /// `PARTUUID`: the GPT entry's unique GUID, or `SSSSSSSS-PP` (MBR disk signature and
    /// partition number, hex).
    pub uuid: String,
    /// `PARTLABEL`: the GPT entry's name (MBR has none).
    pub label: Option<String>,
}

/// Where a GPT's entries are, from its header (the disk's second logical block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GptHeader {
    /// The byte offset of the entry array (its LBA times the block size).
    pub entries_offset: u64,
    /// How many entries.
    pub count: u32,
    /// Each entry's size in bytes (128 or more).
    pub entry_size: u32,
}

impl GptHeader {
    /// The entry array's length in bytes.
    pub fn entries_len(&self) -> u64 {
        u64::from(self.count) * u64::from(self.entry_size)
    }
}

/// Reads the GPT header from `block` (the disk's logical block 1) for a disk with
/// `block_size`-byte blocks; `None` when there is no GPT signature or the header is
/// implausible (more than 16 MiB of entries, entries shorter than 128 bytes).
pub fn gpt_header(block: &[u8], block_size: u64) -> Option<GptHeader> {
    if block.get(0..8)? != b"EFI PART" {
        return None;
    }
    let header = GptHeader {
        entries_offset: le64(block, 72)?.checked_mul(block_size)?,
        count: le32(block, 80)?,
        entry_size: le32(block, 84)?,
    };
    (header.entry_size >= 128 && header.entries_len() <= 16 << 20).then_some(header)
}

/// The used entries of a GPT entry array (entries with a zero type GUID are unused).
pub fn gpt_partitions(header: &GptHeader, entries: &[u8]) -> Vec<PartitionId> {
    let size = header.entry_size as usize;
    let mut out = Vec::new();
    for (i, entry) in entries
        .chunks_exact(size)
        .take(header.count as usize)
        .enumerate()
    {
        let (Some(kind), Some(unique)) = (get::<16>(entry, 0), get::<16>(entry, 16)) else {
            continue;
        };
        if kind == [0; 16] {
            continue;
        }
        let Some(uuid) = guid_text(unique) else {
            continue;
        };
        let name: Vec<u16> = entry
            .get(56..128)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&name);
        out.push(PartitionId {
            number: i as u32 + 1,
            uuid,
            label: (!name.is_empty()).then_some(name),
        });
    }
    out
}

/// The primary partitions of an MBR (the disk's first 512 bytes): `SSSSSSSS-PP` ids from
/// the disk signature. Empty when there is no boot signature, no disk signature, or the MBR
/// only protects a GPT (type 0xEE).
pub fn mbr_partitions(sector: &[u8]) -> Vec<PartitionId> {
    let (Some(0x55), Some(0xAA)) = (sector.get(510), sector.get(511)) else {
        return Vec::new();
    };
    let Some(signature) = le32(sector, 0x1B8).filter(|&s| s != 0) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for n in 0..4u32 {
        let entry = 0x1BE + 16 * n as usize;
        match sector.get(entry + 4) {
            Some(0xEE) => return Vec::new(),
            Some(0) | None => {}
            Some(_) => out.push(PartitionId {
                number: n + 1,
                uuid: format!("{signature:08x}-{:02x}", n + 1),
                label: None,
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: [u8; 16] = [
        0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x60, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8,
        0xf9,
    ];
    const UUID_TEXT: &str = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9";

    fn ext_image(compat: u32, incompat: u32, ro_compat: u32, label: &[u8]) -> Vec<u8> {
        let mut head = vec![0u8; 4096];
        let sb = 1024;
        head[sb + 0x38..sb + 0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
        head[sb + 0x5C..sb + 0x60].copy_from_slice(&compat.to_le_bytes());
        head[sb + 0x60..sb + 0x64].copy_from_slice(&incompat.to_le_bytes());
        head[sb + 0x64..sb + 0x68].copy_from_slice(&ro_compat.to_le_bytes());
        head[sb + 0x68..sb + 0x78].copy_from_slice(&UUID);
        head[sb + 0x78..sb + 0x78 + label.len()].copy_from_slice(label);
        head
    }

    #[test]
    fn ext_versions() {
        // mkfs.ext4's features: has_journal; filetype, extents, 64bit, flex_bg; ...
        let ext4 = ext_image(0x3C, 0x2C2, 0x46B, b"rootfs");
        assert_eq!(
            filesystem(&ext4),
            Some(Filesystem {
                fstype: "ext4",
                uuid: Some(UUID_TEXT.into()),
                label: Some("rootfs".into()),
            })
        );
        let ext3 = ext_image(0x4, 0x2, 0x3, b"");
        assert_eq!(
            filesystem(&ext3).map(|f| (f.fstype, f.label)),
            Some(("ext3", None))
        );
        assert_eq!(
            filesystem(&ext_image(0, 0x2, 0x3, b"")).unwrap().fstype,
            "ext2"
        );
        // An external journal is not a filesystem to mount.
        assert_eq!(filesystem(&ext_image(0x4, 0x8, 0, b"")), None);
        // A 16-byte label uses the whole field.
        let full = ext_image(0, 0, 0, b"0123456789abcdef");
        assert_eq!(
            filesystem(&full).unwrap().label.as_deref(),
            Some("0123456789abcdef")
        );
    }

    #[test]
    fn xfs_and_btrfs() {
        let mut xfs = vec![0u8; 512];
        xfs[0..4].copy_from_slice(b"XFSB");
        xfs[32..48].copy_from_slice(&UUID);
        xfs[108..112].copy_from_slice(b"data");
        assert_eq!(
            filesystem(&xfs),
            Some(Filesystem {
                fstype: "xfs",
                uuid: Some(UUID_TEXT.into()),
                label: Some("data".into()),
            })
        );
        let mut btrfs = vec![0u8; PROBE_LEN];
        btrfs[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
        btrfs[0x10020..0x10030].copy_from_slice(&UUID);
        btrfs[0x1012b..0x1012f].copy_from_slice(b"home");
        assert_eq!(
            filesystem(&btrfs),
            Some(Filesystem {
                fstype: "btrfs",
                uuid: Some(UUID_TEXT.into()),
                label: Some("home".into()),
            })
        );
        assert_eq!(filesystem(&vec![0u8; PROBE_LEN]), None);
    }

    /// Every prefix of a valid superblock is refused or read, never a panic, and a prefix
    /// cut inside the fields the reader needs finds nothing.
    #[test]
    fn truncated_heads() {
        let ext4 = ext_image(0x3C, 0x2C2, 0x46B, b"rootfs");
        for len in 0..ext4.len() {
            let found = filesystem(&ext4[..len]);
            assert_eq!(found.is_some(), len >= 1024 + 0x88, "prefix {len}");
        }
        let mut btrfs = vec![0u8; PROBE_LEN];
        btrfs[0x10040..0x10048].copy_from_slice(b"_BHRfS_M");
        for len in (0..btrfs.len()).step_by(97) {
            let found = filesystem(&btrfs[..len]);
            assert_eq!(found.is_some(), len >= 0x1022b, "prefix {len}");
        }
    }

    fn gpt(entries: &[([u8; 16], [u8; 16], &str)]) -> (Vec<u8>, Vec<u8>) {
        let mut header = vec![0u8; 512];
        header[0..8].copy_from_slice(b"EFI PART");
        header[72..80].copy_from_slice(&2u64.to_le_bytes());
        header[80..84].copy_from_slice(&128u32.to_le_bytes());
        header[84..88].copy_from_slice(&128u32.to_le_bytes());
        let mut array = vec![0u8; 128 * 128];
        for (i, (kind, unique, name)) in entries.iter().enumerate() {
            let e = &mut array[i * 128..(i + 1) * 128];
            e[0..16].copy_from_slice(kind);
            e[16..32].copy_from_slice(unique);
            for (j, unit) in name.encode_utf16().enumerate() {
                e[56 + 2 * j..58 + 2 * j].copy_from_slice(&unit.to_le_bytes());
            }
        }
        (header, array)
    }

    #[test]
    fn gpt_entries() {
        let linux = [1u8; 16];
        let (header, array) = gpt(&[
            (linux, UUID, "system"),
            ([0; 16], [2; 16], ""),
            (linux, [3; 16], ""),
        ]);
        let parsed = gpt_header(&header, 512).unwrap();
        assert_eq!(
            parsed,
            GptHeader {
                entries_offset: 1024,
                count: 128,
                entry_size: 128
            }
        );
        assert_eq!(
            gpt_partitions(&parsed, &array),
            vec![
                PartitionId {
                    number: 1,
                    // The first three fields are stored little-endian.
                    uuid: "3d2c1b0a-5f4e-7160-8293-a4b5c6d7e8f9".into(),
                    label: Some("system".into()),
                },
                PartitionId {
                    number: 3,
                    uuid: "03030303-0303-0303-0303-030303030303".into(),
                    label: None,
                },
            ]
        );
        // A short array gives the entries it has.
        assert_eq!(gpt_partitions(&parsed, &array[..200]).len(), 1);
        assert_eq!(gpt_header(&header[..80], 512), None);
        assert_eq!(gpt_header(&[0u8; 512], 512), None);
        let mut huge = header.clone();
        huge[80..84].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gpt_header(&huge, 512), None);
    }

    #[test]
    fn mbr_entries() {
        let mut sector = vec![0u8; 512];
        sector[510] = 0x55;
        sector[511] = 0xAA;
        sector[0x1B8..0x1BC].copy_from_slice(&0x1234abcdu32.to_le_bytes());
        sector[0x1BE + 4] = 0x83;
        sector[0x1BE + 32 + 4] = 0x82;
        assert_eq!(
            mbr_partitions(&sector),
            vec![
                PartitionId {
                    number: 1,
                    uuid: "1234abcd-01".into(),
                    label: None
                },
                PartitionId {
                    number: 3,
                    uuid: "1234abcd-03".into(),
                    label: None
                },
            ]
        );
        let mut protective = sector.clone();
        protective[0x1BE + 4] = 0xEE;
        assert_eq!(mbr_partitions(&protective), vec![]);
        assert_eq!(mbr_partitions(&sector[..511]), vec![]);
        for len in 0..512 {
            let _ = mbr_partitions(&sector[..len]);
        }
    }
}
