//! `modkit initramfs` over a small tree (the sample modules built for Debian 6.1, a built-in
//! ext4, indexes from `modkit depmod`): exact `--list` and `--json` output, the modprobe.d
//! lines kept, reproducible bytes with SOURCE_DATE_EPOCH, and the errors.

mod common;

use common::{Output, output};

use std::path::{Path, PathBuf};
use std::process::Command;

use modkit_testkit::Scratch;

const VERSION: &str = "1.0-test";

struct Root {
    dir: Scratch,
}

const CONFIG: &str = "\
options hello_api greeting=hi
options unrelated x=1
blacklist hello_feature
softdep hello_api post: hello_feature
install hello_api /bin/true
";

impl Root {
    fn new(name: &str) -> Root {
        let root = Root {
            dir: Scratch::new(&format!("initramfs-{name}")),
        };
        let moddir = root.moddir();
        std::fs::create_dir_all(moddir.join("extra")).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kmods/fixtures/6.1");
        for module in ["hello_api", "hello_feature"] {
            std::fs::copy(
                fixtures.join(format!("{module}.ko")),
                moddir.join(format!("extra/{module}.ko")),
            )
            .unwrap();
        }
        std::fs::write(
            moddir.join("modules.order"),
            "extra/hello_api.ko\nextra/hello_feature.ko\n",
        )
        .unwrap();
        std::fs::write(moddir.join("modules.builtin"), "kernel/fs/ext4/ext4.ko\n").unwrap();
        std::fs::write(
            moddir.join("modules.builtin.modinfo"),
            "ext4.file=ext4\0ext4.alias=fs-ext4\0",
        )
        .unwrap();
        root.dir.write("etc/modprobe.d/test.conf", CONFIG);
        let depmod = root.modkit(&["depmod", "--no-cache", VERSION], &[]);
        assert_eq!(depmod.code, 0, "{depmod:?}");
        root
    }

    fn moddir(&self) -> PathBuf {
        self.dir.join("lib/modules").join(VERSION)
    }

    /// `modkit ARGS` with `-b ROOT` after the tool's name; the root's path reads `ROOT`.
    fn modkit(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modkit"));
        command
            .arg(args[0])
            .arg("-b")
            .arg(self.dir.path())
            .args(&args[1..])
            .current_dir(&self.dir)
            .env_remove("SOURCE_DATE_EPOCH");
        for (key, value) in env {
            command.env(key, value);
        }
        let out = output(&mut command);
        let root = self.dir.path().display().to_string();
        Output {
            stdout: out.stdout.replace(&root, "ROOT"),
            stderr: out.stderr.replace(&root, "ROOT"),
            code: out.code,
        }
    }

    /// `modkit initramfs -k VERSION ARGS`, with `--no-init` unless ARGS say `--init` (the
    /// init has its own test, `init_is_modkit_init_beside_the_program_or_the_file_given`).
    fn initramfs(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all = vec!["initramfs", "-k", VERSION];
        if !args.contains(&"--init") {
            all.push("--no-init");
        }
        all.extend(args);
        self.modkit(&all, env)
    }
}

#[test]
fn list_shows_every_file_with_its_reason() {
    let root = Root::new("list");
    let out = root.initramfs(&["--list", "--module", "hello_api", "--fs", "ext4"], &[]);
    let expected = "       160 etc/modprobe.d/modkit.conf  modprobe.d lines for these modules
      7672 lib/modules/1.0-test/extra/hello_api.ko  hello_api: requested as hello_api
      5720 lib/modules/1.0-test/extra/hello_feature.ko  hello_feature: soft dependency (post) of hello_api
        78 lib/modules/1.0-test/modules.alias  index written by modkit depmod for these modules
        52 lib/modules/1.0-test/modules.alias.bin  index written by modkit depmod for these modules
        23 lib/modules/1.0-test/modules.builtin  copied from the module directory
        38 lib/modules/1.0-test/modules.builtin.alias.bin  index written by modkit depmod for these modules
        31 lib/modules/1.0-test/modules.builtin.bin  index written by modkit depmod for these modules
        34 lib/modules/1.0-test/modules.builtin.modinfo  copied from the module directory
        63 lib/modules/1.0-test/modules.dep  index written by modkit depmod for these modules
       139 lib/modules/1.0-test/modules.dep.bin  index written by modkit depmod for these modules
         0 lib/modules/1.0-test/modules.devname  index written by modkit depmod for these modules
        42 lib/modules/1.0-test/modules.order  copied from the module directory
        55 lib/modules/1.0-test/modules.softdep  index written by modkit depmod for these modules
        81 lib/modules/1.0-test/modules.symbols  index written by modkit depmod for these modules
        51 lib/modules/1.0-test/modules.symbols.bin  index written by modkit depmod for these modules
  built-in ext4: filesystem ext4
";
    assert_eq!(out.stderr, "");
    assert_eq!(out.stdout, expected, "{}", out.stdout);
    assert_eq!(out.code, 0);
}

#[test]
fn json_has_files_builtin_modules_and_unmatched_aliases() {
    let root = Root::new("json");
    let out = root.initramfs(
        &[
            "--json",
            "--module",
            "hello_feature",
            "--device-alias",
            "pci:v00001AF4d00001001",
        ],
        &[],
    );
    let expected = concat!(
        r#"{"output":null,"compression":"zstd","size":"#,
        "SIZE",
        r#","modules":2,"files":[{"path":"etc/modprobe.d/modkit.conf","size":160,"why":"modprobe.d lines for these modules"},"#,
        r#"{"path":"lib/modules/1.0-test/extra/hello_api.ko","size":7672,"why":"hello_api: dependency of hello_feature"},"#,
        r#"{"path":"lib/modules/1.0-test/extra/hello_feature.ko","size":5720,"why":"hello_feature: requested as hello_feature"},"#,
    );
    let size_start = out.stdout.find(r#""size":"#).unwrap() + 7;
    let size_end = size_start + out.stdout[size_start..].find(',').unwrap();
    let stdout = format!(
        "{}SIZE{}",
        &out.stdout[..size_start],
        &out.stdout[size_end..]
    );
    assert!(stdout.starts_with(expected), "{stdout}");
    assert!(
        stdout.ends_with(
            r#""builtin":[],"unmatched_aliases":["pci:v00001AF4d00001001"],"missing_firmware":[]}
"#
        ),
        "{stdout}"
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
}

#[test]
fn the_image_is_reproducible_and_honours_source_date_epoch() {
    let root = Root::new("repro");
    let args = |out: &'static str| {
        [
            "-o",
            out,
            "--compress",
            "none",
            "--module",
            "hello_api",
            "--fs",
            "ext4",
        ]
    };
    let first = root.initramfs(&args("a.cpio"), &[]);
    assert_eq!(
        first,
        Output {
            stdout: "a.cpio: 2 modules, 0 firmware files, 16 files, 17536 bytes (none)\n".into(),
            stderr: String::new(),
            code: 0,
        }
    );
    root.initramfs(&args("b.cpio"), &[]);
    root.initramfs(&args("c.cpio"), &[("SOURCE_DATE_EPOCH", "1700000000")]);
    let read = |name: &str| std::fs::read(root.dir.join(name)).unwrap();
    let (a, b, c) = (read("a.cpio"), read("b.cpio"), read("c.cpio"));
    assert_eq!(a, b, "same inputs, same bytes");
    assert_ne!(a, c);
    // newc header: magic, then ino, mode, uid, gid, nlink, mtime (8 hex digits each).
    assert_eq!(&a[..6], b"070701");
    assert_eq!(&a[6 + 8 * 5..6 + 8 * 6], b"00000000");
    assert_eq!(
        &c[6 + 8 * 5..6 + 8 * 6],
        format!("{:08X}", 1_700_000_000).as_bytes()
    );
    let conf = "# The modprobe.d lines for this image's modules (modkit initramfs).\n\
                blacklist hello_feature\n\
                options hello_api greeting=hi\n\
                softdep hello_api post: hello_feature\n";
    assert!(
        a.windows(conf.len()).any(|w| w == conf.as_bytes()),
        "modkit.conf holds the lines, no install"
    );

    for (how, magic) in [
        ("zstd", &b"\x28\xb5\x2f\xfd"[..]),
        ("xz", b"\xfd7zXZ\0"),
        ("gzip", b"\x1f\x8b"),
    ] {
        let out = root.initramfs(
            &["-o", "z", "--compress", how, "--module", "hello_api"],
            &[],
        );
        assert_eq!(out.code, 0, "{out:?}");
        assert!(read("z").starts_with(magic), "{how}");
    }
}

#[test]
fn errors_name_what_is_wrong() {
    let root = Root::new("errors");
    let out = root.initramfs(
        &[
            "-o",
            "x",
            "--module",
            "nosuch",
            "--fs",
            "nofs",
            "--module",
            "hello_api",
        ],
        &[],
    );
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "initramfs: ERROR: Module nosuch not found in directory ROOT/lib/modules/1.0-test\n\
             initramfs: ERROR: filesystem nofs: no module fs-nofs or nofs in directory ROOT/lib/modules/1.0-test\n",
            1
        ),
        "each missing name is reported, the image is still written"
    );
    assert!(root.dir.join("x").is_file());

    let out = root.initramfs(&["-o", "x"], &[]);
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "initramfs: ERROR: nothing to put in the image: give --device-alias, --device-aliases, --module, --fs, --generic, --host or --host-all\n",
            1
        )
    );
    let out = root.initramfs(&["-o", "x", "--device-aliases", "gone.txt"], &[]);
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "initramfs: ERROR: could not read modaliases from gone.txt: No such file or directory (os error 2)\n",
            1
        )
    );
    let out = root.initramfs(
        &["-o", "x", "--module", "hello_api"],
        &[("SOURCE_DATE_EPOCH", "yesterday")],
    );
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "initramfs: ERROR: SOURCE_DATE_EPOCH=yesterday is not a number of seconds from 0 to 4294967295\n",
            1
        )
    );
    let out = root.initramfs(&["--module", "hello_api"], &[]);
    assert_eq!(out.code, 1, "-o is required without --list/--json");
    assert!(out.stderr.contains("--output <FILE>"), "{}", out.stderr);
    let out = root.modkit(&["initramfs", "-k", "9.9", "--list", "--module", "x"], &[]);
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "initramfs: ERROR: ROOT/lib/modules/9.9: no modules.dep.bin (not a module directory, or depmod has not run there)\n",
            1
        )
    );
}

#[test]
fn device_aliases_file_skips_blanks_and_comments() {
    let root = Root::new("aliases-file");
    std::fs::write(
        root.dir.join("aliases.txt"),
        "# from the target\n\nsymbol:api_test\n  \n",
    )
    .unwrap();
    let out = root.initramfs(&["--list", "--device-aliases", "aliases.txt"], &[]);
    assert!(
        out.stdout
            .contains("hello_api.ko  hello_api: device symbol:api_test\n"),
        "{}",
        out.stdout
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
}

#[test]
fn host_takes_the_root_disk_and_filesystem_from_mountinfo() {
    // The fake QEMU guest of modkit-sysfs, with the stand-in module directory that goes with
    // it (its module files are not ELF: the warnings say so, and the image still holds them).
    let root = Root {
        dir: Scratch::new("initramfs-host"),
    };
    modkit::fixtures::write_module_dir(&root.moddir());
    std::fs::write(
        root.dir.join("mountinfo"),
        "23 22 0:21 / /proc rw - proc proc rw\n22 1 254:0 / / rw shared:1 - ext4 /dev/vda rw\n",
    )
    .unwrap();
    std::fs::create_dir_all(root.dir.join("conf")).unwrap();
    let sysfs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../modkit-sysfs/testdata/qemu");
    // `--list` with `how` (--host or --host-all) over the fake machine: the output, and each
    // module line's reason.
    let list = |how: &str| {
        let out = root.initramfs(
            &[
                "--list",
                how,
                "-C",
                "conf",
                "--mountinfo",
                "mountinfo",
                "--sysfs",
                sysfs.to_str().unwrap(),
            ],
            &[],
        );
        let modules: Vec<String> = out
            .stdout
            .lines()
            .filter(|l| l.contains("kernel/drivers/"))
            .map(|l| l.split_once(".ko  ").unwrap().1.to_owned())
            .collect();
        (out, modules)
    };
    let (out, modules) = list("--host");
    assert_eq!(
        modules,
        [
            "virtio: dependency of virtio_blk",
            "virtio_blk: device virtio:d00000002v00001AF4",
            "virtio_pci: device pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00",
            "virtio_ring: dependency of virtio_blk",
        ],
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "initramfs: ERROR: filesystem ext4: no module fs-ext4 or ext4 in directory ROOT/lib/modules/1.0-test\n"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "initramfs: WARNING: depmod: ERROR: failed to load symbols from \
             ROOT/lib/modules/1.0-test/kernel/drivers/virtio_blk.ko: not an ELF file"
        ),
        "depmod's messages name the tree's files: {}",
        out.stderr
    );
    assert_eq!(out.code, 1);

    // --host-all: every device present, not only the root disk's path.
    let (out, all) = list("--host-all");
    assert_eq!(
        all,
        [
            "atkbd: device serio:ty01pr00id00ex00",
            "bochs: device pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00",
            "drm: dependency of bochs",
            "scsi_mod: dependency of sd_mod",
            "sd_mod: device scsi:t-0x00",
            "usb_storage: device usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00",
            "usbcore: device usb:v1D6Bp0002d0601dc09dsc00dp01ic09isc00ip00in00",
            "virtio: dependency of virtio_blk",
            "virtio_blk: device virtio:d00000002v00001AF4",
            "virtio_net: device virtio:d00000001v00001AF4",
            "virtio_pci: device pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00",
            "virtio_ring: dependency of virtio_blk",
            "xhci_hcd: dependency of xhci_pci",
            "xhci_pci: device pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30",
        ],
        "{out:?}"
    );

    let out = root.initramfs(&["--list", "--host", "--mountinfo", "gone"], &[]);
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "initramfs: ERROR: could not read gone: No such file or directory (os error 2)\n",
            1
        )
    );
}

#[test]
fn check_lists_what_an_image_lacks() {
    let root = Root::new("check");
    std::fs::create_dir_all(root.dir.join("empty-conf")).unwrap();
    // Built without the configuration: no softdep, so hello_feature is not in it.
    let out = root.initramfs(
        &[
            "-o",
            "small.img",
            "-C",
            "empty-conf",
            "--module",
            "hello_api",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let check = root.initramfs(&["--check", "small.img", "--module", "hello_api"], &[]);
    assert_eq!(
        check,
        Output {
            stdout: "hello_feature: soft dependency (post) of hello_api\n".into(),
            stderr: String::new(),
            code: 1,
        }
    );
    // A second archive after an uncompressed first one (as microcode images are made) is read
    // too.
    let out = root.initramfs(
        &[
            "-o",
            "full.img",
            "--compress",
            "xz",
            "--module",
            "hello_api",
        ],
        &[],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let first = modkit::cpio::Archive::new(0);
    let mut both = first.finish();
    both.extend_from_slice(&[0; 512]);
    both.extend_from_slice(&std::fs::read(root.dir.join("full.img")).unwrap());
    std::fs::write(root.dir.join("both.img"), both).unwrap();
    let check = root.initramfs(&["--check", "both.img", "--module", "hello_api"], &[]);
    assert_eq!(
        (check.stdout.as_str(), check.stderr.as_str(), check.code),
        ("", "", 0)
    );

    std::fs::write(root.dir.join("junk.img"), b"070701 not really").unwrap();
    let check = root.initramfs(&["--check", "junk.img", "--module", "hello_api"], &[]);
    assert_eq!(
        (check.stderr.as_str(), check.code),
        (
            "initramfs: ERROR: junk.img: newc cpio: a 110-byte header at offset 0\n",
            1
        )
    );
}

#[test]
fn weakdep_lines_bring_their_modules() {
    let root = Root::new("weakdep");
    std::fs::create_dir_all(root.dir.join("weak-conf")).unwrap();
    std::fs::write(
        root.dir.join("weak-conf/weak.conf"),
        "weakdep hello_api hello_feature\n",
    )
    .unwrap();
    let out = root.initramfs(&["--list", "-C", "weak-conf", "--module", "hello_api"], &[]);
    assert!(
        out.stdout
            .contains("hello_feature.ko  hello_feature: weak dependency of hello_api\n"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("modkit.conf"),
        "weakdep lines are not copied"
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
}

#[test]
fn init_is_modkit_init_beside_the_program_or_the_file_given() {
    let root = Root::new("init");
    // A copy of modkit in a directory of its own, so what is beside it is known.
    let bin = root.dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_modkit"), bin.join("modkit")).unwrap();
    let run = |args: &[&str]| {
        let mut command = Command::new(bin.join("modkit"));
        command
            .args(["initramfs", "-b"])
            .arg(root.dir.path())
            .args(["-k", VERSION, "--module", "hello_api"])
            .args(args)
            .current_dir(&root.dir)
            .env_remove("SOURCE_DATE_EPOCH");
        let out = output(&mut command);
        let dir = root.dir.path().display().to_string();
        Output {
            stdout: out.stdout.replace(&dir, "ROOT"),
            stderr: out.stderr.replace(&dir, "ROOT"),
            code: out.code,
        }
    };
    let out = run(&["-o", "x"]);
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "initramfs: ERROR: no /init for the image: ROOT/bin/modkit-init does not exist; build \
             modkit-init (RUSTFLAGS='-C target-feature=+crt-static' cargo build --profile init -p \
             modkit-init --target x86_64-unknown-linux-gnu) and pass --init FILE, or --no-init \
             for an image of modules only\n",
            1
        )
    );
    assert!(!root.dir.join("x").exists(), "no image without an init");

    std::fs::write(bin.join("modkit-init"), modkit_testkit::static_elf()).unwrap();
    let out = run(&["--list"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .contains("        64 init  the init program, from ROOT/bin/modkit-init\n"),
        "{}",
        out.stdout
    );
    // --init names the file; a dynamically linked one is refused with its loader named.
    let out = run(&["--list", "--init", "/usr/bin/env"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with(
            "initramfs: ERROR: /usr/bin/env cannot be the image's /init: it is dynamically \
             linked (interpreter /lib64/ld-linux-x86-64.so.2)"
        ),
        "{}",
        out.stderr
    );
    let out = run(&["--list", "--init", "gone"]);
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "initramfs: ERROR: could not read gone: No such file or directory (os error 2)\n",
            1
        )
    );
    let out = run(&["--list", "--no-init", "--init", "x"]);
    assert_eq!(out.code, 1, "--init and --no-init conflict: {out:?}");
    assert!(out.stderr.contains("cannot be used with"), "{}", out.stderr);
}
