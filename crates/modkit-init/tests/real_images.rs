//! The superblock and partition-table readers against images made by the real tools:
//! e2fsprogs' `mkfs.ext4` and util-linux's `sfdisk` (GPT and MBR), with the UUIDs and labels
//! we asked them to write.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use modkit_init::probe::{self, Filesystem, PartitionId};
use modkit_testkit::{Missing, Scratch, require};

const FS_UUID: &str = "6f2b7c1e-3d4a-4b5c-9e8f-0a1b2c3d4e5f";
const PART_UUID: &str = "1c7b3e0a-5f4d-4c2b-8a9e-7d6c5b4a3f21";
const MIB: u64 = 1 << 20;

/// The path of `tool` in the system directories (sbin included, which a user's PATH may
/// lack), or what installs it.
fn tool(name: &str, package: &str) -> Result<PathBuf, Missing> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            Missing::new(
                format!("{name} is not installed"),
                format!("apt-get install {package}"),
            )
        })
}

fn run(command: &mut Command) {
    let output = command.output().expect("running the tool");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A 16 MiB disk image with one partition from 1 MiB to the end, in a `label` (gpt or dos)
/// table, and ext4 in the partition.
fn disk(scratch: &Scratch, label: &str, sfdisk: &Path, mkfs: &Path) -> Vec<u8> {
    let image = scratch.path().join(format!("{label}.img"));
    std::fs::write(&image, vec![0u8; (16 * MIB) as usize]).unwrap();
    let script = match label {
        "gpt" => {
            format!("label: gpt\nstart=2048, type=linux, uuid={PART_UUID}, name=\"modkit root\"\n")
        }
        _ => "label: dos\nlabel-id: 0x1234abcd\nstart=2048, type=83\n".to_owned(),
    };
    let mut child = Command::new(sfdisk)
        .arg("--no-reread")
        .arg("--no-tell-kernel")
        .arg("-q")
        .arg(&image)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting sfdisk");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "sfdisk failed on {script:?}"
    );
    run(Command::new(mkfs)
        .args([
            "-q",
            "-F",
            "-E",
            "offset=1048576",
            "-U",
            FS_UUID,
            "-L",
            "modkit-root",
        ])
        .arg(&image)
        .arg("8M"));
    std::fs::read(&image).unwrap()
}

#[test]
fn gpt_and_ext4_from_the_real_tools() {
    let Some(sfdisk) = require("gpt_and_ext4_from_the_real_tools", tool("sfdisk", "fdisk")) else {
        return;
    };
    let Some(mkfs) = require(
        "gpt_and_ext4_from_the_real_tools",
        tool("mkfs.ext4", "e2fsprogs"),
    ) else {
        return;
    };
    let scratch = Scratch::new("init-real-gpt");
    let bytes = disk(&scratch, "gpt", &sfdisk, &mkfs);

    let header = probe::gpt_header(&bytes[512..1024], 512).expect("a GPT header");
    let start = header.entries_offset as usize;
    let entries = &bytes[start..start + header.entries_len() as usize];
    assert_eq!(
        probe::gpt_partitions(&header, entries),
        vec![PartitionId {
            number: 1,
            uuid: PART_UUID.into(),
            label: Some("modkit root".into()),
        }]
    );
    // The whole disk holds no filesystem; the partition holds ext4.
    assert_eq!(probe::filesystem(&bytes[..probe::PROBE_LEN]), None);
    let part = &bytes[MIB as usize..MIB as usize + probe::PROBE_LEN];
    assert_eq!(
        probe::filesystem(part),
        Some(Filesystem {
            fstype: "ext4",
            uuid: Some(FS_UUID.into()),
            label: Some("modkit-root".into()),
        })
    );
}

#[test]
fn mbr_from_the_real_tools() {
    let Some(sfdisk) = require("mbr_from_the_real_tools", tool("sfdisk", "fdisk")) else {
        return;
    };
    let Some(mkfs) = require("mbr_from_the_real_tools", tool("mkfs.ext4", "e2fsprogs")) else {
        return;
    };
    let scratch = Scratch::new("init-real-mbr");
    let bytes = disk(&scratch, "dos", &sfdisk, &mkfs);
    assert_eq!(probe::gpt_header(&bytes[512..1024], 512), None);
    assert_eq!(
        probe::mbr_partitions(&bytes[..512]),
        vec![PartitionId {
            number: 1,
            uuid: "1234abcd-01".into(),
            label: None,
        }]
    );
}
