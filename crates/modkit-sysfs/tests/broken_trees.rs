//! Trees built in a scratch directory to break one thing at a time: unreadable and malformed
//! files, missing attributes, absurd depth. Every case must be a typed error naming the path.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};

use modkit_sysfs::{DeviceKind, DeviceNumber, Error, PciIds, Sysfs, Uevent};
use modkit_testkit::Scratch;

const DISK: DeviceNumber = DeviceNumber {
    kind: DeviceKind::Block,
    major: 8,
    minor: 0,
};

#[test]
fn unreadable_uevent_is_an_io_error_with_its_path() {
    let t = Scratch::new("unreadable");
    t.write(
        "devices/pci0000:00/0000:00:01.0/host0/sda/uevent",
        "MAJOR=8\n",
    );
    // A directory where the file should be: reading it fails for root too (EISDIR).
    fs::create_dir_all(t.0.join("devices/pci0000:00/0000:00:01.0/uevent")).unwrap();
    t.symlink(
        "../../devices/pci0000:00/0000:00:01.0/host0/sda",
        "dev/block/8:0",
    );
    let sys = Sysfs::new(&t.0);
    for result in [
        sys.modaliases_by_number(DISK).map(drop),
        sys.all_modaliases().map(drop),
    ] {
        match result {
            Err(Error::Io { path, .. }) => {
                assert_eq!(path, t.0.join("devices/pci0000:00/0000:00:01.0/uevent"));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn malformed_uevent_names_file_and_line() {
    let t = Scratch::new("malformed");
    t.write("devices/platform/foo/uevent", "DRIVER=foo\nnonsense\n");
    t.symlink("../../devices/platform/foo", "dev/char/5:5");
    let sys = Sysfs::new(&t.0);
    let err = sys
        .modaliases_by_number(DeviceNumber {
            kind: DeviceKind::Char,
            major: 5,
            minor: 5,
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}:2: expected KEY=VALUE, found \"nonsense\"",
            t.0.join("devices/platform/foo/uevent").display()
        )
    );
}

#[test]
fn pci_attributes_missing_or_malformed() {
    let t = Scratch::new("pci");
    let dev = "devices/pci0000:00/0000:00:01.0";
    t.write(format!("{dev}/vendor"), "0x8086\n");
    t.write(format!("{dev}/class"), "0x010601\n");
    t.write(format!("{dev}/modalias"), "pci:v00008086d00002922sv*\n");
    t.symlink(format!("../../../{dev}"), "bus/pci/devices/0000:00:01.0");
    let sys = Sysfs::new(&t.0);
    match sys.pci_devices() {
        Err(Error::NotFound { path }) => assert_eq!(path, t.0.join(dev).join("device")),
        other => panic!("{other:?}"),
    }
    t.write(format!("{dev}/device"), "0xzz\n");
    match sys.pci_devices() {
        Err(Error::Malformed { path, line: 1, .. }) => {
            assert_eq!(path, t.0.join(dev).join("device"));
        }
        other => panic!("{other:?}"),
    }
    t.write(format!("{dev}/device"), "0x2922\n");
    let devices = sys.pci_devices().unwrap();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].subsystem_vendor, None);
    assert_eq!(devices[0].driver, None);
    // No modalias file and no uevent: the modalias is missing.
    fs::remove_file(t.0.join(dev).join("modalias")).unwrap();
    match sys.pci_devices() {
        Err(Error::NotFound { path }) => assert_eq!(path, t.0.join(dev).join("modalias")),
        other => panic!("{other:?}"),
    }
    // The uevent's MODALIAS stands in for the file.
    t.write(format!("{dev}/uevent"), "MODALIAS=pci:v00008086d00002922\n");
    assert_eq!(
        sys.pci_devices().unwrap()[0].modalias,
        "pci:v00008086d00002922"
    );
}

#[test]
fn no_pci_bus_means_no_pci_devices() {
    let t = Scratch::new("nopci");
    fs::create_dir_all(t.0.join("devices")).unwrap();
    assert!(Sysfs::new(&t.0).pci_devices().unwrap().is_empty());
    assert!(Sysfs::new(&t.0).all_modaliases().unwrap().is_empty());
}

#[test]
fn missing_devices_directory_is_not_found() {
    let t = Scratch::new("nodevices");
    match Sysfs::new(&t.0).all_modaliases() {
        Err(Error::NotFound { path }) => assert_eq!(path, t.0.join("devices")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn absurd_depth_is_an_error() {
    let t = Scratch::new("deep");
    let mut rel = PathBuf::from("devices");
    for _ in 0..140 {
        rel.push("d");
    }
    fs::create_dir_all(t.0.join(&rel)).unwrap();
    assert!(matches!(
        Sysfs::new(&t.0).all_modaliases(),
        Err(Error::TooDeep { max: 128, .. })
    ));
    t.symlink(format!("../../{}", rel.display()), "dev/block/8:0");
    assert!(matches!(
        Sysfs::new(&t.0).modaliases_by_number(DISK),
        Err(Error::TooDeep { max: 128, .. })
    ));
}

#[test]
fn a_link_loop_inside_devices_does_not_trap_the_walk() {
    let t = Scratch::new("walkloop");
    t.write("devices/platform/a/uevent", "MODALIAS=platform:a\n");
    t.symlink("..", "devices/platform/a/up");
    t.symlink("../a", "devices/platform/a/self");
    let all = Sysfs::new(&t.0).all_modaliases().unwrap();
    assert_eq!(
        all,
        [(t.0.join("devices/platform/a"), "platform:a".to_owned())]
    );
}

#[test]
fn uevent_parsing() {
    let u = Uevent::parse("DRIVER=x\n\nMODALIAS=a=b\n", Path::new("u")).unwrap();
    assert_eq!(u.get("DRIVER"), Some("x"));
    assert_eq!(u.modalias(), Some("a=b"));
    assert_eq!(u.vars().len(), 2);
    assert_eq!(
        Uevent::parse("MODALIAS=\n", Path::new("u"))
            .unwrap()
            .modalias(),
        None
    );
}

fn pci_ids_sample() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/pci.ids")).unwrap()
}

#[test]
fn pci_ids_names() {
    let ids = PciIds::parse(&pci_ids_sample(), Path::new("pci.ids")).unwrap();
    assert_eq!(ids.vendor_count(), 4);
    assert_eq!(ids.vendor(0x1af4), Some("Red Hat, Inc."));
    assert_eq!(
        ids.device(0x1b36, 0x0010),
        Some("QEMU NVM Express Controller")
    );
    assert_eq!(
        ids.subsystem(0x1af4, 0x1001, 0x1af4, 0x0002),
        Some("Virtio block device")
    );
    assert_eq!(ids.subsystem(0x1af4, 0x1001, 0x1af4, 0x0003), None);
    assert_eq!(ids.device(0x1af4, 0x9999), None);
    assert_eq!(ids.class(0x010802), Some("NVM Express"));
    assert_eq!(ids.class(0x010801), Some("Non-Volatile memory controller"));
    assert_eq!(ids.class(0x017700), Some("Mass storage controller"));
    assert_eq!(ids.class(0x0d0000), None);
}

#[test]
fn pci_ids_errors_name_the_line() {
    let cases = [
        ("zzzz  Bad\n", 1, "expected a 4-digit hexadecimal id"),
        ("\t1234  Orphan\n", 1, "device line before any vendor"),
        (
            "8086  Intel\n\t\t8086 0001  Orphan\n",
            2,
            "subsystem line before any device",
        ),
        ("8086  Intel\n\t10ce\n", 2, "expected an id and a name"),
        ("C 0x  Bad\n", 1, "expected a 2-digit hexadecimal id"),
        (
            "C 01  Storage\n\t\t02  Orphan\n",
            2,
            "programming interface line before any subclass",
        ),
        ("8086  Intel\n\t\t\t1  Deep\n", 2, "too deeply indented"),
    ];
    for (text, line, reason) in cases {
        match PciIds::parse(text, Path::new("pci.ids")) {
            Err(Error::Malformed {
                line: l,
                reason: r,
                path,
            }) => {
                assert_eq!(path, Path::new("pci.ids"));
                assert_eq!(l, line, "{text:?}");
                assert!(r.starts_with(reason), "{text:?}: {r}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
}

#[test]
fn pci_ids_every_prefix_parses_or_fails_cleanly() {
    let text = pci_ids_sample();
    let mut failures = 0;
    for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
        if PciIds::parse(&text[..end], Path::new("pci.ids")).is_err() {
            failures += 1;
        }
    }
    // Cut inside an id or just after one, a line is malformed; elsewhere it is a shorter
    // name. Both happen.
    assert!(failures > 0 && failures < text.len(), "{failures}");
}

#[test]
fn system_pci_ids_when_installed() {
    let found = PciIds::load_system().ok_or_else(|| {
        modkit_testkit::Missing::new(
            "no pci.ids in the system's places",
            "apt-get install pci.ids",
        )
    });
    let Some(loaded) = modkit_testkit::require("system_pci_ids_when_installed", found) else {
        return;
    };
    let (path, ids) = loaded.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        ids.vendor_count() > 1000,
        "{}: too few vendors",
        path.display()
    );
    assert_eq!(ids.vendor(0x8086), Some("Intel Corporation"));
}
