//! Which modules a device needs, over the fake module directory and modkit-sysfs's fake QEMU
//! sysfs tree: a disk by number, devices by sysfs directory with built-in matches, the text
//! `modules.alias` as Guix reads it, and names kmod cannot normalise.
#![forbid(unsafe_code)]

mod common;

use std::path::PathBuf;

use common::FakeTree;
use modkit::devices::{
    Device, device_module_aliases, known_module_aliases, matching_modules, missing_modules,
    modules_for_aliases, modules_for_aliases_in,
};
use modkit::initramfs::host::host_request;

#[test]
fn the_disk_needs_virtio_blk_and_the_pci_transport() {
    let tree = FakeTree::new("devices-vda");
    let mut ctx = tree.context("");
    let sysfs = tree.sysfs();
    let vda = Device::parse("block:254:0", &sysfs);
    let aliases = device_module_aliases(&sysfs, &vda).unwrap();
    assert_eq!(
        aliases,
        [
            "virtio:d00000002v00001AF4",
            "pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00"
        ]
    );
    let needed = modules_for_aliases(&mut ctx, &aliases).unwrap();
    let names: Vec<&str> = needed.load_order.iter().map(|&id| ctx.name(id)).collect();
    assert_eq!(names, ["virtio", "virtio_ring", "virtio_blk", "virtio_pci"]);
    assert!(needed.builtin.is_empty());
    let missing = missing_modules(names.iter().copied(), &["virtio-ring".into()]);
    assert_eq!(missing, ["virtio", "virtio_blk", "virtio_pci"]);
}

#[test]
fn devices_by_directory_and_builtin_matches() {
    let tree = FakeTree::new("devices-dir");
    let mut ctx = tree.context("");
    let sysfs = tree.sysfs();
    let serio = Device::parse("devices/platform/i8042/serio0", &sysfs);
    assert_eq!(
        serio,
        Device::Dir(PathBuf::from("devices/platform/i8042/serio0"))
    );
    let aliases = device_module_aliases(&sysfs, &serio).unwrap();
    assert_eq!(aliases, ["serio:ty01pr00id00ex00", "platform:i8042"]);
    let needed = modules_for_aliases(&mut ctx, &aliases).unwrap();
    let names: Vec<&str> = needed.load_order.iter().map(|&id| ctx.name(id)).collect();
    assert_eq!(names, ["atkbd"]);
    let builtin: Vec<&str> = needed.builtin.iter().map(|&id| ctx.name(id)).collect();
    assert_eq!(builtin, ["i8042"]);

    let platform = device_module_aliases(
        &sysfs,
        &Device::parse("devices/platform/serial8250", &sysfs),
    )
    .unwrap();
    let needed = modules_for_aliases(&mut ctx, &platform).unwrap();
    assert!(needed.load_order.is_empty());
    let builtin: Vec<&str> = needed.builtin.iter().map(|&id| ctx.name(id)).collect();
    assert_eq!(builtin, ["8250"]);
}

#[test]
fn text_aliases_as_guix_reads_them() {
    let tree = FakeTree::new("devices-text");
    let known = known_module_aliases(&tree.moddir().join("modules.alias")).unwrap();
    assert_eq!(
        matching_modules(&known, "virtio:d00000001v00001AF4"),
        ["virtio_net"]
    );
    assert_eq!(
        matching_modules(
            &known,
            "pci:v00001AF4d00001000sv00001AF4sd00001100bc02sc00i00"
        ),
        ["virtio_pci"]
    );
    assert!(matching_modules(&known, "platform:nothing").is_empty());

    let mut ctx = tree.context("");
    let sysfs = tree.sysfs();
    let aliases = device_module_aliases(&sysfs, &Device::parse("block:254:1", &sysfs)).unwrap();
    let needed = modules_for_aliases_in(&mut ctx, &known, &aliases).unwrap();
    let names: Vec<&str> = needed.load_order.iter().map(|&id| ctx.name(id)).collect();
    assert_eq!(names, ["virtio", "virtio_ring", "virtio_blk", "virtio_pci"]);
}

#[test]
fn names_kmod_cannot_normalise_find_nothing() {
    let tree = FakeTree::new("devices-brackets");
    let mut ctx = tree.context("");
    let found = ctx.lookup("virtio:d00000002v1AF4").unwrap();
    assert_eq!(
        found.iter().map(|&id| ctx.name(id)).collect::<Vec<_>>(),
        ["virtio_blk"]
    );
    // The pattern `virtio:d00000002v*` matches both, but kmod's alias_normalize refuses them.
    assert!(ctx.lookup("virtio:d00000002v1]AF4").unwrap().is_empty());
    assert!(ctx.lookup("virtio:d00000002v[1AF4").unwrap().is_empty());
    assert_eq!(ctx.lookup("virtio:d00000002v[1]AF4").unwrap().len(), 1);
}

/// `initramfs --host` on the fake QEMU guest: the root mount's disk by number, walked up to the
/// PCI function, plus the root filesystem's type. (Which mountinfo line is the root is
/// `root_mount`'s unit test.)
const MOUNTINFO: &str = "30 22 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n";

#[test]
fn the_root_disk_of_the_fake_qemu_guest() {
    let sysfs = FakeTree::new("host-root").sysfs();
    let request = host_request(&sysfs, MOUNTINFO).unwrap().unwrap();
    assert_eq!(
        request,
        modkit::initramfs::Request {
            aliases: vec![
                "virtio:d00000002v00001AF4".into(),
                "pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00".into(),
            ],
            filesystems: vec!["ext4".into()],
            ..modkit::initramfs::Request::default()
        }
    );
    let btrfs = "5 1 0:33 / / rw - btrfs none rw\n";
    let request = host_request(&sysfs, btrfs).unwrap().unwrap();
    assert!(request.aliases.is_empty(), "no device to walk");
    assert_eq!(request.filesystems, ["btrfs"]);
    assert_eq!(host_request(&sysfs, "").unwrap(), None);
}
