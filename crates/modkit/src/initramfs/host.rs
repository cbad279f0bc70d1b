//! `--host`: what the running machine needs to reach its root filesystem: the root mount from
//! `/proc/self/mountinfo` (its device number and filesystem type), then the modaliases of the
//! block device and of every sysfs parent, as `device-modules` walks them. A device-mapper or
//! MD root is followed down its `slaves/` to the disks it is built from (LVM on LUKS on an MD
//! array of partitions ...), each disk's modaliases taken the same way, and each layer adds
//! the modules it needs as far as sysfs tells ([`layer_modules`]). `--host-all`:
//! [`all_devices_request`], every device present.

use modkit_sysfs::{BlockDevice, BlockLayer, DeviceKind, DeviceNumber, Sysfs};

use super::Request;
use crate::Error;

/// The root filesystem's mount, from mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootMount {
    /// The `MAJOR:MINOR` field: the block device, or an anonymous number (major 0) for
    /// filesystems such as btrfs or overlayfs.
    pub major: u32,
    /// See `major`.
    pub minor: u32,
    /// The filesystem type (`ext4`).
    pub fstype: String,
    /// The mount source (`/dev/vda1`), as mountinfo escapes it.
    pub source: String,
}

/// The mount at `/` that is visible (the last one listed: later mounts hide earlier ones), from
/// the text of a mountinfo file (proc(5): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
/// [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`). `None` when no line mounts `/`.
pub fn root_mount(mountinfo: &str) -> Option<RootMount> {
    mountinfo.lines().filter_map(parse_line).next_back()
}

fn parse_line(line: &str) -> Option<RootMount> {
    let (before, after) = line.split_once(" - ")?;
    let fields: Vec<&str> = before.split(' ').collect();
    if fields.get(4) != Some(&"/") {
        return None;
    }
    let (major, minor) = fields.get(2)?.split_once(':')?;
    let mut after = after.split(' ');
    Some(RootMount {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        fstype: after.next()?.to_owned(),
        source: after.next().unwrap_or_default().to_owned(),
    })
}

/// What the root filesystem of the machine `sysfs` describes needs, given its mountinfo: the
/// modaliases of the root's block device and its parents (by number; by the source's device
/// node when the number is anonymous) and, for a device-mapper or MD root, of every device it
/// is built from ([`Sysfs::block_stack`]) with the modules of its layers ([`layer_modules`]);
/// and the filesystem type. `None` when mountinfo has no root mount.
pub fn host_request(sysfs: &Sysfs, mountinfo: &str) -> Result<Option<Request>, Error> {
    let Some(root) = root_mount(mountinfo) else {
        return Ok(None);
    };
    let number = if root.major != 0 {
        Some(DeviceNumber {
            kind: DeviceKind::Block,
            major: root.major,
            minor: root.minor,
        })
    } else if root.source.starts_with("/dev/") {
        Some(sysfs.device_number(&root.source)?)
    } else {
        None
    };
    let mut aliases: Vec<String> = Vec::new();
    let mut stacked: Vec<(String, String)> = Vec::new();
    if let Some(number) = number {
        for device in sysfs.block_stack(number)? {
            for alias in sysfs.modaliases_of_dir(&device.dir)? {
                if !aliases.contains(&alias) {
                    aliases.push(alias);
                }
            }
            for module in layer_modules(&device) {
                if !stacked.iter().any(|(name, _)| *name == module.0) {
                    stacked.push(module);
                }
            }
        }
    }
    Ok(Some(Request {
        aliases,
        filesystems: vec![root.fstype],
        stacked,
        ..Request::default()
    }))
}

/// The modules one layer of a block device stack needs, each with what needs it; none for a
/// disk or partition (its modaliases bring its drivers). sysfs has no device-mapper table,
/// so the targets come from what the tool that made the device wrote into it, as dracut's
/// and initramfs-tools' hooks decide by the tool:
/// - every device-mapper device: `dm_mod`; by `dm/uuid`: `CRYPT-VERITY-` `dm_verity`,
///   `CRYPT-INTEGRITY-` and `CRYPT-SUBDEV-` `dm_integrity`, any other `CRYPT-` `dm_crypt`,
///   `mpath-` `dm_multipath` with multipath-tools' path selectors (`dm_service_time`,
///   `dm_round_robin`, `dm_queue_length`); `LVM-` by LVM's names for its hidden sub-volumes
///   (`dm/name`): `_rimage_`/`_rmeta_` `dm_raid` with the MD personalities (`raid0`,
///   `raid1`, `raid10`, `raid456`: the LV's level is in its table only), `_mimage_`/`_mlog`
///   `dm_mirror`, `-tpool`/`_tdata`/`_tmeta` `dm_thin_pool`, `-real`/`-cow` `dm_snapshot`,
///   `_cdata`/`_cmeta`/`_corig`/`_cpool` `dm_cache` and `dm_cache_smq`, `_wcorig`
///   `dm_writecache`, `_vdata`/`-vpool` `dm_vdo`, `_imeta`/`_iorig` `dm_integrity`; a plain
///   linear or striped LV needs only `dm_mod`.
/// - every MD array: `md_mod`, and `md-LEVEL` for its `md/level` (`md-raid1`), the name the
///   kernel asks modprobe for (drivers/md/md.c, `request_module("md-%s", ...)`), which the
///   personality's module has as an alias.
///
/// Not decided from sysfs: a LUKS device's cipher modules (its table holds the cipher; add
/// them with `--module`), and whether a LVM raid LV is raid1 or raid5.
pub fn layer_modules(device: &BlockDevice) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut add = |name: &str, what: &str| out.push((name.to_owned(), what.to_owned()));
    match &device.layer {
        Some(BlockLayer::DeviceMapper { name, uuid }) => {
            let what = format!(
                "{} (device-mapper {name}{})",
                device.name,
                if uuid.is_empty() {
                    String::new()
                } else {
                    format!(", uuid {uuid}")
                }
            );
            add("dm_mod", &what);
            if uuid.starts_with("CRYPT-VERITY-") {
                add("dm_verity", &what);
            } else if uuid.starts_with("CRYPT-INTEGRITY-") || uuid.starts_with("CRYPT-SUBDEV-") {
                add("dm_integrity", &what);
            } else if uuid.starts_with("CRYPT-") {
                add("dm_crypt", &what);
            } else if uuid.starts_with("mpath-") {
                for module in [
                    "dm_multipath",
                    "dm_service_time",
                    "dm_round_robin",
                    "dm_queue_length",
                ] {
                    add(module, &what);
                }
            } else if uuid.starts_with("LVM-") {
                for module in lvm_layer_modules(name) {
                    add(module, &what);
                }
            }
        }
        Some(BlockLayer::Md { level }) => {
            let what = format!("{} (MD array, level {level})", device.name);
            add("md_mod", &what);
            if !level.is_empty() && level != "container" {
                add(&format!("md-{level}"), &what);
            }
        }
        // A disk or partition: its modaliases bring its drivers.
        _ => {}
    }
    out
}

/// The targets of an LVM sub-volume, from the suffix LVM gives its `dm/name` (lvm2's
/// reserved LV name parts: `_rimage_`, `_tdata`, ...; the layer names `-tpool`, `-real`,
/// `-cow`, `-vpool` follow the last single `-`, as LVM doubles every `-` of a VG or LV name).
fn lvm_layer_modules(name: &str) -> &'static [&'static str] {
    let layer = |suffix: &str| {
        name.strip_suffix(suffix)
            .is_some_and(|rest| !rest.ends_with('-'))
    };
    let has = |parts: &[&str]| parts.iter().any(|part| name.contains(part));
    if has(&["_rimage_", "_rmeta_"]) {
        &["dm_raid", "raid0", "raid1", "raid10", "raid456"]
    } else if has(&["_mimage_", "_mlog"]) {
        &["dm_mirror"]
    } else if layer("-tpool") || has(&["_tdata", "_tmeta"]) {
        &["dm_thin_pool"]
    } else if layer("-real") || layer("-cow") {
        &["dm_snapshot"]
    } else if has(&["_cdata", "_cmeta", "_corig", "_cpool"]) {
        &["dm_cache", "dm_cache_smq"]
    } else if has(&["_wcorig"]) {
        &["dm_writecache"]
    } else if layer("-vpool") || has(&["_vdata"]) {
        &["dm_vdo"]
    } else if has(&["_imeta", "_iorig"]) {
        &["dm_integrity"]
    } else {
        &[]
    }
}

/// Every device of the machine `sysfs` describes: the modalias of each device under
/// `devices/`, as coldplug sees them (`--host-all`, what dracut's and initramfs-tools' "most"
/// modes approximate by directory).
pub fn all_devices_request(sysfs: &Sysfs) -> Result<Request, Error> {
    let mut aliases: Vec<String> = sysfs
        .all_modaliases()?
        .into_iter()
        .map(|(_, alias)| alias)
        .collect();
    aliases.sort();
    aliases.dedup();
    Ok(Request {
        aliases,
        ..Request::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 254:0 / / rw,relatime shared:1 - ext2 /dev/vda rw
23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw
24 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw,size=4000k
30 22 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,errors=remount-ro
";

    #[test]
    fn the_last_root_mount_wins() {
        assert_eq!(
            root_mount(MOUNTINFO),
            Some(RootMount {
                major: 254,
                minor: 0,
                fstype: "ext4".into(),
                source: "/dev/vda".into(),
            })
        );
        assert_eq!(root_mount("23 22 0:21 / /proc rw - proc proc rw\n"), None);
        assert_eq!(root_mount("garbage\n\n1 2 x / / - \n"), None);
    }

    /// LVM (a thin LV on its pool) on LUKS on an MD raid1 of a virtio and an NVMe partition,
    /// as sysfs shows it: every disk's modaliases and every layer's modules.
    #[test]
    fn a_stacked_root_brings_its_members_and_their_layers() {
        use std::os::unix::fs::symlink;
        let t = modkit_testkit::Scratch::new("host-stack");
        let link = |target: &str, rel: &str| {
            let path = t.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            symlink(target, path).unwrap();
        };
        let virtio = "devices/pci0000:00/0000:00:04.0";
        let nvme = "devices/pci0000:00/0000:00:05.0";
        t.write(
            format!("{virtio}/uevent"),
            "MODALIAS=pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00\n",
        );
        t.write(
            format!("{virtio}/virtio1/uevent"),
            "MODALIAS=virtio:d00000002v00001AF4\n",
        );
        t.write(format!("{virtio}/virtio1/block/vda/vda2/partition"), "2\n");
        t.write(
            format!("{nvme}/uevent"),
            "MODALIAS=pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02\n",
        );
        t.write(
            format!("{nvme}/nvme/nvme0/nvme0n1/nvme0n1p1/partition"),
            "1\n",
        );
        let block = "devices/virtual/block";
        t.write(format!("{block}/md127/md/level"), "raid1\n");
        link(
            &format!("../../../../../{virtio}/virtio1/block/vda/vda2"),
            &format!("{block}/md127/slaves/vda2"),
        );
        link(
            &format!("../../../../../{nvme}/nvme/nvme0/nvme0n1/nvme0n1p1"),
            &format!("{block}/md127/slaves/nvme0n1p1"),
        );
        let dm = |n: u32, name: &str, uuid: &str, slaves: &[&str]| {
            t.write(format!("{block}/dm-{n}/dm/name"), format!("{name}\n"));
            t.write(format!("{block}/dm-{n}/dm/uuid"), format!("{uuid}\n"));
            for slave in slaves {
                link(
                    &format!("../../{slave}"),
                    &format!("{block}/dm-{n}/slaves/{slave}"),
                );
            }
        };
        dm(
            0,
            "luks-1",
            "CRYPT-LUKS2-0f4e8a2b1c3d4e5f-luks-1",
            &["md127"],
        );
        dm(1, "vg0-pool_tmeta", "LVM-aaaa", &["dm-0"]);
        dm(2, "vg0-pool_tdata", "LVM-aaab", &["dm-0"]);
        dm(3, "vg0-pool-tpool", "LVM-aaac-tpool", &["dm-1", "dm-2"]);
        dm(4, "vg0-root", "LVM-aaad", &["dm-3"]);
        link("../../devices/virtual/block/dm-4", "dev/block/253:4");

        let sysfs = Sysfs::new(&t.0);
        let mountinfo = "25 1 253:4 / / rw,relatime shared:1 - ext4 /dev/mapper/vg0-root rw\n";
        let request = host_request(&sysfs, mountinfo).unwrap().unwrap();
        assert_eq!(
            request.aliases,
            [
                "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02",
                "virtio:d00000002v00001AF4",
                "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
            ]
        );
        assert_eq!(request.filesystems, ["ext4"]);
        let stacked: Vec<(&str, &str)> = request
            .stacked
            .iter()
            .map(|(name, what)| (name.as_str(), what.as_str()))
            .collect();
        assert_eq!(
            stacked,
            [
                ("dm_mod", "dm-4 (device-mapper vg0-root, uuid LVM-aaad)"),
                (
                    "dm_thin_pool",
                    "dm-3 (device-mapper vg0-pool-tpool, uuid LVM-aaac-tpool)"
                ),
                (
                    "dm_crypt",
                    "dm-0 (device-mapper luks-1, uuid CRYPT-LUKS2-0f4e8a2b1c3d4e5f-luks-1)"
                ),
                ("md_mod", "md127 (MD array, level raid1)"),
                ("md-raid1", "md127 (MD array, level raid1)"),
            ]
        );

        // A plain root has no layers.
        let plain = "25 1 254:2 / / rw - ext4 /dev/vda2 rw\n";
        link(
            &format!("../../{virtio}/virtio1/block/vda/vda2"),
            "dev/block/254:2",
        );
        let request = host_request(&sysfs, plain).unwrap().unwrap();
        assert!(request.stacked.is_empty());
        assert_eq!(request.aliases.len(), 2);
    }

    #[test]
    fn layers_by_uuid_name_and_level() {
        let modules = |layer: BlockLayer| -> Vec<String> {
            let device = BlockDevice {
                dir: "devices/virtual/block/x".into(),
                name: "x".into(),
                layer: Some(layer),
            };
            layer_modules(&device).into_iter().map(|(m, _)| m).collect()
        };
        let dm = |name: &str, uuid: &str| BlockLayer::DeviceMapper {
            name: name.into(),
            uuid: uuid.into(),
        };
        assert_eq!(modules(dm("root", "")), ["dm_mod"]);
        assert_eq!(
            modules(dm("v", "CRYPT-VERITY-1-v")),
            ["dm_mod", "dm_verity"]
        );
        assert_eq!(
            modules(dm("i", "CRYPT-SUBDEV-1-i")),
            ["dm_mod", "dm_integrity"]
        );
        assert_eq!(modules(dm("c", "CRYPT-PLAIN-c")), ["dm_mod", "dm_crypt"]);
        assert_eq!(
            modules(dm("mpatha", "mpath-3600")),
            [
                "dm_mod",
                "dm_multipath",
                "dm_service_time",
                "dm_round_robin",
                "dm_queue_length"
            ]
        );
        assert_eq!(
            modules(dm("vg-lv_rimage_0", "LVM-x")),
            ["dm_mod", "dm_raid", "raid0", "raid1", "raid10", "raid456"]
        );
        assert_eq!(modules(dm("vg-lv_mlog", "LVM-x")), ["dm_mod", "dm_mirror"]);
        assert_eq!(
            modules(dm("vg-lv-real", "LVM-x-real")),
            ["dm_mod", "dm_snapshot"]
        );
        assert_eq!(
            modules(dm("vg-lv-cow", "LVM-x-cow")),
            ["dm_mod", "dm_snapshot"]
        );
        // `--` is a `-` of the LV's own name (`my-real`), not LVM's layer.
        assert_eq!(modules(dm("vg-my--real", "LVM-x")), ["dm_mod"]);
        assert_eq!(
            modules(dm("vg-lv_corig", "LVM-x")),
            ["dm_mod", "dm_cache", "dm_cache_smq"]
        );
        assert_eq!(
            modules(dm("vg-lv_wcorig", "LVM-x")),
            ["dm_mod", "dm_writecache"]
        );
        assert_eq!(modules(dm("vg-lv_vdata", "LVM-x")), ["dm_mod", "dm_vdo"]);
        assert_eq!(
            modules(dm("vg-lv_imeta", "LVM-x")),
            ["dm_mod", "dm_integrity"]
        );
        assert_eq!(modules(dm("vg-root", "LVM-x")), ["dm_mod"]);
        let md = |level: &str| BlockLayer::Md {
            level: level.into(),
        };
        assert_eq!(modules(md("raid5")), ["md_mod", "md-raid5"]);
        assert_eq!(modules(md("linear")), ["md_mod", "md-linear"]);
        assert_eq!(modules(md("")), ["md_mod"]);
        assert_eq!(modules(md("container")), ["md_mod"]);
    }
}
