//! `Sysfs::block_stack` over fake trees: LVM on LUKS on an MD mirror of two partitions, a
//! plain partition, and a `slaves/` loop, which must end.
#![forbid(unsafe_code)]

use modkit_sysfs::{BlockLayer, DeviceKind, DeviceNumber, Sysfs};
use modkit_testkit::Scratch;

fn block(major: u32, minor: u32) -> DeviceNumber {
    DeviceNumber {
        kind: DeviceKind::Block,
        major,
        minor,
    }
}

const VDA: &str = "devices/pci0000:00/0000:00:04.0/virtio1/block/vda";
const NVME: &str = "devices/pci0000:00/0000:00:05.0/nvme/nvme0/nvme0n1";

/// dm-1 (LVM) on dm-0 (LUKS2) on md127 (raid1) of vda2 and nvme0n1p1.
fn stacked_tree(t: &Scratch) {
    t.write(format!("{VDA}/vda2/partition"), "2\n");
    t.write(format!("{NVME}/nvme0n1p1/partition"), "1\n");
    t.write("devices/virtual/block/md127/md/level", "raid1\n");
    t.symlink(
        format!("../../../../../{VDA}/vda2"),
        "devices/virtual/block/md127/slaves/vda2",
    );
    t.symlink(
        format!("../../../../../{NVME}/nvme0n1p1"),
        "devices/virtual/block/md127/slaves/nvme0n1p1",
    );
    t.write("devices/virtual/block/dm-0/dm/name", "luks-root\n");
    t.write(
        "devices/virtual/block/dm-0/dm/uuid",
        "CRYPT-LUKS2-0f4e8a2b1c3d4e5f6a7b8c9d0e1f2a3b-luks-root\n",
    );
    t.symlink("../../md127", "devices/virtual/block/dm-0/slaves/md127");
    t.write("devices/virtual/block/dm-1/dm/name", "vg0-root\n");
    t.write("devices/virtual/block/dm-1/dm/uuid", "LVM-abc\n");
    t.symlink("../../dm-0", "devices/virtual/block/dm-1/slaves/dm-0");
    t.symlink("../../devices/virtual/block/dm-1", "dev/block/253:1");
    t.symlink(format!("../../{VDA}/vda2"), "dev/block/254:2");
}

#[test]
fn a_stack_is_followed_down_to_its_partitions() {
    let t = Scratch::new("stack");
    stacked_tree(&t);
    let sys = Sysfs::new(&t.0);
    let stack = sys.block_stack(block(253, 1)).unwrap();
    let seen: Vec<(&str, Option<&BlockLayer>)> = stack
        .iter()
        .map(|d| (d.name.as_str(), d.layer.as_ref()))
        .collect();
    let dm = |name: &str, uuid: &str| BlockLayer::DeviceMapper {
        name: name.into(),
        uuid: uuid.into(),
    };
    let raid1 = BlockLayer::Md {
        level: "raid1".into(),
    };
    assert_eq!(
        seen,
        [
            ("dm-1", Some(&dm("vg0-root", "LVM-abc"))),
            (
                "dm-0",
                Some(&dm(
                    "luks-root",
                    "CRYPT-LUKS2-0f4e8a2b1c3d4e5f6a7b8c9d0e1f2a3b-luks-root"
                ))
            ),
            ("md127", Some(&raid1)),
            ("nvme0n1p1", None),
            ("vda2", None),
        ]
    );
    // Each member is its canonical directory, where the walk for modaliases starts.
    assert_eq!(stack[4].dir, t.0.join(VDA).join("vda2"));
    assert_eq!(stack[3].dir, t.0.join(NVME).join("nvme0n1p1"));

    // A plain partition is a stack of one.
    let plain = sys.block_stack(block(254, 2)).unwrap();
    assert_eq!(plain.len(), 1);
    assert_eq!((plain[0].name.as_str(), &plain[0].layer), ("vda2", &None));

    // A device that is not there is an error naming the path.
    let err = sys.block_stack(block(8, 0)).unwrap_err();
    assert!(err.to_string().contains("dev/block/8:0"), "{err}");
}

#[test]
fn a_partition_of_an_array_is_stacked_as_its_array() {
    let t = Scratch::new("stack-part");
    stacked_tree(&t);
    t.write("devices/virtual/block/md127/md127p1/partition", "1\n");
    t.symlink(
        "../../devices/virtual/block/md127/md127p1",
        "dev/block/259:0",
    );
    let stack = Sysfs::new(&t.0).block_stack(block(259, 0)).unwrap();
    let names: Vec<&str> = stack.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["md127p1", "nvme0n1p1", "vda2"]);
    assert_eq!(
        stack[0].layer,
        Some(BlockLayer::Md {
            level: "raid1".into()
        })
    );
}

#[test]
fn a_slaves_loop_ends_with_each_device_once() {
    let t = Scratch::new("stack-loop");
    t.write("devices/virtual/block/dm-2/dm/name", "a\n");
    t.write("devices/virtual/block/dm-3/dm/name", "b\n");
    t.symlink("../../dm-3", "devices/virtual/block/dm-2/slaves/dm-3");
    t.symlink("../../dm-2", "devices/virtual/block/dm-3/slaves/dm-2");
    t.symlink("../../devices/virtual/block/dm-2", "dev/block/253:2");
    let stack = Sysfs::new(&t.0).block_stack(block(253, 2)).unwrap();
    let names: Vec<&str> = stack.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["dm-2", "dm-3"]);
}
