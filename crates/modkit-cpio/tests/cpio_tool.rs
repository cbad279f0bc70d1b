//! The archive as GNU cpio reads it: `cpio -t` lists it, `cpio -idv` unpacks it with the same
//! contents, modes and symlinks (the `cpio` tool is the second opinion on the format).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use modkit_cpio::Archive;
use modkit_testkit::{Missing, Scratch, require};

/// GNU cpio, from its usual places (not from PATH, which a test machine may not set up).
fn cpio_tool() -> Result<PathBuf, Missing> {
    ["/usr/bin/cpio", "/bin/cpio"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| Missing::new("GNU cpio in /usr/bin or /bin", "apt-get install cpio"))
}

fn run(tool: &Path, args: &[&str], dir: &Path, input: &[u8]) -> (String, String) {
    let mut child = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run cpio");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cpio {args:?}: {out:?}");
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn sample() -> Vec<u8> {
    let mut archive = Archive::new(1_234_567_890);
    archive.file(
        "lib/modules/6.1.0/kernel/fs/ext4.ko",
        0o644,
        vec![7u8; 1001],
    );
    archive.file("init", 0o755, b"#!/bin/sh\n".to_vec());
    archive.symlink("sbin/init", "/init");
    archive.file(
        "etc/modprobe.d/modkit.conf",
        0o644,
        b"options ext4 x=1\n".to_vec(),
    );
    archive.finish()
}

#[test]
fn cpio_lists_the_archive_in_path_order() {
    let Some(tool) = require("modkit-cpio::cpio_lists_the_archive", cpio_tool()) else {
        return;
    };
    let scratch = Scratch::new("cpio-list");
    let (stdout, _) = run(&tool, &["-t", "--quiet"], scratch.path(), &sample());
    assert_eq!(
        stdout,
        "etc\netc/modprobe.d\netc/modprobe.d/modkit.conf\ninit\nlib\nlib/modules\n\
         lib/modules/6.1.0\nlib/modules/6.1.0/kernel\nlib/modules/6.1.0/kernel/fs\n\
         lib/modules/6.1.0/kernel/fs/ext4.ko\nsbin\nsbin/init\n"
    );
}

#[test]
fn cpio_unpacks_the_same_files() {
    let Some(tool) = require("modkit-cpio::cpio_unpacks_the_same_files", cpio_tool()) else {
        return;
    };
    let scratch = Scratch::new("cpio-unpack");
    let (_, stderr) = run(
        &tool,
        &[
            "-idv",
            "--no-absolute-filenames",
            "--preserve-modification-time",
        ],
        scratch.path(),
        &sample(),
    );
    assert!(
        stderr.contains("lib/modules/6.1.0/kernel/fs/ext4.ko"),
        "{stderr}"
    );
    let root = scratch.path();
    assert_eq!(
        std::fs::read(root.join("lib/modules/6.1.0/kernel/fs/ext4.ko")).unwrap(),
        vec![7u8; 1001]
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/modprobe.d/modkit.conf")).unwrap(),
        "options ext4 x=1\n"
    );
    assert_eq!(
        std::fs::read_link(root.join("sbin/init")).unwrap(),
        Path::new("/init")
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let init = std::fs::metadata(root.join("init")).unwrap();
    assert_eq!(init.permissions().mode() & 0o7777, 0o755);
    assert_eq!(init.mtime(), 1_234_567_890);
}

/// A tool from its usual places (not from PATH).
fn tool(name: &str, package: &str) -> Result<PathBuf, Missing> {
    [format!("/usr/bin/{name}"), format!("/bin/{name}")]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Missing::new(
                format!("{name} in /usr/bin or /bin"),
                format!("apt-get install {package}"),
            )
        })
}

#[test]
fn the_standard_tools_decompress_every_compression() {
    let test = "modkit-cpio::the_standard_tools_decompress_every_compression";
    let plain = sample();
    for (how, name, package) in [
        (modkit_cpio::Compression::Zstd, "zstd", "zstd"),
        (modkit_cpio::Compression::Xz, "xz", "xz-utils"),
        (modkit_cpio::Compression::Gzip, "gzip", "gzip"),
    ] {
        let Some(tool) = require(test, tool(name, package)) else {
            return;
        };
        let packed = modkit_cpio::compress(&plain, how).unwrap();
        let scratch = Scratch::new(&format!("cpio-{name}"));
        let (stdout, _) = run_bytes(&tool, &["-dc"], scratch.path(), &packed);
        assert_eq!(stdout, plain, "{name} -dc");
    }
}

fn run_bytes(tool: &Path, args: &[&str], dir: &Path, input: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut child = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the tool");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "{} {args:?}: {out:?}", tool.display());
    (out.stdout, out.stderr)
}
