//! `--host`: what the running machine needs to reach its root filesystem: the root mount from
//! `/proc/self/mountinfo` (its device number and filesystem type), then the modaliases of the
//! block device and of every sysfs parent, as `device-modules` walks them. `--host-all`:
//! [`all_devices_request`], every device present.
//!
//! Not followed yet: the members of a device-mapper, MD or LVM root (`slaves/`), so such a
//! root gets its filesystem and whatever the walk of the virtual device finds, not its disks.

use modkit_sysfs::{DeviceKind, DeviceNumber, Sysfs};

use super::Request;
use crate::Error;
use crate::devices::{Device, device_module_aliases};

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
/// node when the number is anonymous), and the filesystem type. `None` when mountinfo has no
/// root mount.
pub fn host_request(sysfs: &Sysfs, mountinfo: &str) -> Result<Option<Request>, Error> {
    let Some(root) = root_mount(mountinfo) else {
        return Ok(None);
    };
    let device = if root.major != 0 {
        Some(Device::Number(DeviceNumber {
            kind: DeviceKind::Block,
            major: root.major,
            minor: root.minor,
        }))
    } else if root.source.starts_with("/dev/") {
        Some(Device::Node(root.source.clone().into()))
    } else {
        None
    };
    let aliases = match device {
        Some(device) => device_module_aliases(sysfs, &device)?,
        None => Vec::new(),
    };
    Ok(Some(Request {
        aliases,
        filesystems: vec![root.fstype],
        ..Request::default()
    }))
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
}
