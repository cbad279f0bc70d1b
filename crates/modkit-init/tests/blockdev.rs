//! The block-device scan over a fake `/sys/class/block` and `/dev`: partitions, device
//! numbers, what each node holds, and which devices each `root=` form matches.
#![forbid(unsafe_code)]

use std::path::Path;

use modkit_init::blockdev::scan;
use modkit_init::bootargs::RootSpec;
use modkit_testkit::Scratch;

fn ext4_head(uuid_byte: u8, label: &[u8]) -> Vec<u8> {
    let mut head = vec![0u8; 4096];
    head[1024 + 0x38..1024 + 0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
    head[1024 + 0x60..1024 + 0x64].copy_from_slice(&0x2C2u32.to_le_bytes());
    head[1024 + 0x68..1024 + 0x78].copy_from_slice(&[uuid_byte; 16]);
    head[1024 + 0x78..1024 + 0x78 + label.len()].copy_from_slice(label);
    head
}

/// A fake `/sys/class/block` and `/dev`: a disk `vda` with an MBR and partition `vda1`
/// holding ext4, an empty `sr0`, and `vdb` whose node is missing.
fn fake_tree(scratch: &Scratch) -> (std::path::PathBuf, std::path::PathBuf) {
    let root = scratch.path();
    let devices = root.join("sys/devices/pci0000:00/virtio0/block");
    let class = root.join("sys/class/block");
    let dev = root.join("dev");
    for dir in [
        &class,
        &dev,
        &devices.join("vda/vda1"),
        &devices.join("vdb"),
        &devices.join("sr0"),
    ] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let write = |path: std::path::PathBuf, text: &str| std::fs::write(path, text).unwrap();
    write(devices.join("vda/dev"), "254:0\n");
    write(devices.join("vda/size"), "8192\n");
    write(devices.join("vda/vda1/dev"), "254:1\n");
    write(devices.join("vda/vda1/size"), "4096\n");
    write(devices.join("vda/vda1/partition"), "1\n");
    write(devices.join("vdb/dev"), "254:16\n");
    write(devices.join("sr0/dev"), "11:0\n");
    write(devices.join("sr0/size"), "0\n");
    for (name, target) in [
        ("vda", devices.join("vda")),
        ("vda1", devices.join("vda/vda1")),
        ("vdb", devices.join("vdb")),
        ("sr0", devices.join("sr0")),
    ] {
        std::os::unix::fs::symlink(target, class.join(name)).unwrap();
    }
    let mut mbr = vec![0u8; 1024];
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    mbr[0x1B8..0x1BC].copy_from_slice(&0xdeadbeefu32.to_le_bytes());
    mbr[0x1BE + 4] = 0x83;
    std::fs::write(dev.join("vda"), &mbr).unwrap();
    std::fs::write(dev.join("vda1"), ext4_head(0x11, b"root")).unwrap();
    std::fs::write(dev.join("sr0"), b"").unwrap();
    (class, dev)
}

#[test]
fn scans_a_fake_tree() {
    let scratch = Scratch::new("blockdev-scan");
    let (class, dev) = fake_tree(&scratch);
    let found = scan(&class, &dev);
    let names: Vec<&str> = found.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["sr0", "vda", "vda1", "vdb"]);
    let vda1 = &found[2];
    assert_eq!(vda1.devnum, Some((254, 1)));
    assert_eq!(vda1.partition, Some((1, "vda".to_owned())));
    assert_eq!(vda1.fs.as_ref().map(|f| f.fstype), Some("ext4"));
    assert_eq!(
        vda1.to_string(),
        "vda1 (ext4 UUID=11111111-1111-1111-1111-111111111111 LABEL=root PARTUUID=deadbeef-01)"
    );
    assert_eq!(found[1].to_string(), "vda (no filesystem found)");
    assert!(
        found[3].error.as_deref().unwrap().contains("vdb"),
        "{:?}",
        found[3]
    );
    assert_eq!(found[0].error, None, "size 0 is not read");

    let matching = |spec: &str| -> Vec<&str> {
        let spec = RootSpec::parse(spec).unwrap();
        found
            .iter()
            .filter(|d| d.matches(&spec))
            .map(|d| d.name.as_str())
            .collect()
    };
    assert_eq!(
        matching("UUID=11111111-1111-1111-1111-111111111111"),
        ["vda1"]
    );
    assert_eq!(
        matching("UUID=11111111-1111-1111-1111-11111111111F"),
        Vec::<&str>::new()
    );
    assert_eq!(matching("LABEL=root"), ["vda1"]);
    assert_eq!(matching("LABEL=Root"), Vec::<&str>::new());
    assert_eq!(matching("PARTUUID=DEADBEEF-01"), ["vda1"]);
    assert_eq!(matching("/dev/vdb"), ["vdb"]);
    assert_eq!(matching("254:0"), ["vda"]);
}

#[test]
fn missing_sysfs_is_empty() {
    assert_eq!(
        scan(Path::new("/nonexistent/class/block"), Path::new("/dev")),
        vec![]
    );
}
