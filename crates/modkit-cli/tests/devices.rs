//! `device-modules` and `coldplug` over modkit-sysfs's fake QEMU sysfs tree and a module
//! directory whose indexes are written here: exact stdout, stderr and exit status, including
//! `--dry-run` and `--json`, and a real run that fails (nothing here can load a module) and
//! must say so.
#![deny(unsafe_code)] // common::module_syscalls_fail allows it for its prctl calls

mod common;

use common::{Output, output};

use std::path::{Path, PathBuf};
use std::process::Command;

use modkit_testkit::Scratch;

const VERSION: &str = "1.0-test";

struct Root {
    dir: Scratch,
}

fn sysfs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../modkit-sysfs/testdata/qemu")
}

impl Root {
    /// A root with the module directory, a modprobe.d file `config`, an empty
    /// `/sys/module` and a `/proc` with `cmdline`.
    fn new(name: &str, config: &str, cmdline: &str) -> Root {
        let root = Root {
            dir: Scratch::new(&format!("devices-{name}")),
        };
        modkit::fixtures::write_module_dir(&root.moddir());
        root.dir.write("conf/test.conf", config);
        root.dir.mkdir("sys_module");
        root.dir.write("proc/modules", "");
        root.dir.write("proc/cmdline", cmdline);
        root
    }

    fn moddir(&self) -> PathBuf {
        self.dir.join("lib/modules").join(VERSION)
    }

    /// `modkit TOOL -b ROOT -k 1.0-test -C ROOT/conf --sysfs FAKE ARGS`, with the root's
    /// `/sys/module` and `/proc`; the root's path in the output reads `ROOT`.
    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let out = output(
            Command::new(env!("CARGO_BIN_EXE_modkit"))
                .arg(tool)
                .arg("-b")
                .arg(self.dir.path())
                .args(["-k", VERSION, "-C"])
                .arg(self.dir.join("conf"))
                .arg("--sysfs")
                .arg(sysfs())
                .args(args)
                .env("MODKIT_SYS_MODULE", self.dir.join("sys_module"))
                .env("MODKIT_PROC", self.dir.join("proc")),
        );
        let root = self.dir.path().display().to_string();
        Output {
            stdout: out.stdout.replace(&root, "ROOT"),
            stderr: out.stderr.replace(&root, "ROOT"),
            code: out.code,
        }
    }

    fn set_loaded(&self, name: &str) {
        let dir = self.dir.join("sys_module").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("initstate"), "live\n").unwrap();
    }
}

fn ok(stdout: &str) -> Output {
    Output {
        stdout: stdout.to_owned(),
        stderr: String::new(),
        code: 0,
    }
}

#[test]
fn the_disk_needs_its_driver_and_the_pci_transport() {
    let root = Root::new("vda", "", "");
    assert_eq!(
        root.run("device-modules", &["block:254:0"]),
        ok("virtio\nvirtio_ring\nvirtio_blk\nvirtio_pci\n")
    );
    // The partition walks up through the disk: the same modules.
    assert_eq!(
        root.run("device-modules", &["block:254:1"]),
        ok("virtio\nvirtio_ring\nvirtio_blk\nvirtio_pci\n")
    );
}

#[test]
fn several_devices_and_missing_modules() {
    let root = Root::new("missing", "", "");
    assert_eq!(
        root.run("device-modules", &["block:254:0", "block:8:0"]),
        ok(
            "virtio\nvirtio_ring\nvirtio_blk\nvirtio_pci\nscsi_mod\nsd_mod\nusbcore\nusb_storage\nxhci_hcd\nxhci_pci\n"
        )
    );
    assert_eq!(
        root.run(
            "device-modules",
            &[
                "--missing",
                "--provided",
                "virtio-ring,virtio",
                "--provided",
                "usbcore xhci_hcd",
                "block:254:0",
                "block:8:0"
            ]
        ),
        ok("virtio_blk\nvirtio_pci\nscsi_mod\nsd_mod\nusb_storage\nxhci_pci\n")
    );
    // A sysfs directory works as well as a number.
    assert_eq!(
        root.run("device-modules", &["devices/platform/i8042/serio0"]),
        ok("atkbd\n")
    );
}

#[test]
fn device_modules_from_a_text_modules_alias() {
    let root = Root::new("alias-file", "", "");
    let file = root.dir.join("guix.alias");
    std::fs::write(
        &file,
        "# Aliases extracted from modules themselves.\nalias virtio:d00000002v* virtio_blk\nalias pci:v*d*sv*sd*bc01sc*i* other_storage\n",
    )
    .unwrap();
    assert_eq!(
        root.run(
            "device-modules",
            &["--alias-file", file.to_str().unwrap(), "block:254:0"]
        ),
        ok("virtio\nvirtio_ring\nvirtio_blk\nother_storage\n")
    );
    let out = root.run(
        "device-modules",
        &["--alias-file", "/nonexistent", "block:254:0"],
    );
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));
    assert!(
        out.stderr.starts_with("device-modules: ERROR: "),
        "{}",
        out.stderr
    );
}

#[test]
fn device_modules_json() {
    let root = Root::new("json", "", "");
    let expected = concat!(
        r#"{"devices":[{"device":"block:254:0","modaliases":["virtio:d00000002v00001AF4","pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00"],"#,
        r#""matches":[{"modalias":"virtio:d00000002v00001AF4","modules":["virtio_blk"]},{"modalias":"pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00","modules":["virtio_pci"]}],"#,
        r#""modules":[{"name":"virtio","path":"ROOT/lib/modules/1.0-test/kernel/drivers/virtio.ko"},{"name":"virtio_ring","path":"ROOT/lib/modules/1.0-test/kernel/drivers/virtio_ring.ko"},"#,
        r#"{"name":"virtio_blk","path":"ROOT/lib/modules/1.0-test/kernel/drivers/virtio_blk.ko"},{"name":"virtio_pci","path":"ROOT/lib/modules/1.0-test/kernel/drivers/virtio_pci.ko"}],"builtin":[]},"#,
        r#"{"device":"char:4:64","modaliases":["platform:serial8250"],"matches":[{"modalias":"platform:serial8250","modules":["8250"]}],"modules":[],"builtin":["8250"]}],"#,
        r#""modules":["virtio","virtio_ring","virtio_blk","virtio_pci"],"missing":["virtio_blk","virtio_pci"]}"#,
        "\n"
    );
    assert_eq!(
        root.run(
            "device-modules",
            &[
                "--json",
                "--missing",
                "--provided",
                "virtio,virtio_ring",
                "block:254:0",
                "char:4:64"
            ]
        ),
        ok(expected)
    );
}

#[test]
fn device_errors_are_reported_and_the_others_answered() {
    let root = Root::new("errors", "", "");
    let out = root.run(
        "device-modules",
        &[
            "char:10:200",
            "char:10:205",
            "block:254:0",
            "/nonexistent/vdz",
        ],
    );
    assert_eq!(out.stdout, "virtio\nvirtio_ring\nvirtio_blk\nvirtio_pci\n");
    assert_eq!(out.code, 1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stderr);
    assert!(
        lines[0].starts_with("device-modules: ERROR: char:10:200: "),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("device-modules: ERROR: char:10:205: "),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        "device-modules: ERROR: /nonexistent/vdz: /nonexistent/vdz: no such file or directory"
    );
}

#[test]
fn coldplug_dry_run() {
    let root = Root::new(
        "dry",
        "blacklist atkbd\nblacklist virtio_net\noptions sd_mod x=1\ninstall bochs /bin/true\n",
        "quiet modprobe.blacklist=usb_storage virtio_blk.queue_depth=4\n",
    );
    root.set_loaded("usbcore");
    let m = "ROOT/lib/modules/1.0-test/kernel/drivers";
    let expected = format!(
        "install bochs /bin/true\n\
         load virtio {m}/virtio.ko\n\
         load virtio_ring {m}/virtio_ring.ko\n\
         load virtio_pci {m}/virtio_pci.ko\n\
         load virtio_blk {m}/virtio_blk.ko queue_depth=4\n\
         load xhci_hcd {m}/xhci_hcd.ko\n\
         load xhci_pci {m}/xhci_pci.ko\n\
         load scsi_mod {m}/scsi_mod.ko\n\
         load sd_mod {m}/sd_mod.ko x=1\n\
         skip virtio_net (blacklisted) for virtio:d00000001v00001AF4\n\
         skip usbcore (loaded) for usb:v1D6Bp0002d0601dc09dsc00dp01ic09isc00ip00in00\n\
         skip usb_storage (blacklisted) for usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00\n\
         skip i8042 (builtin) for platform:i8042\n\
         skip atkbd (blacklisted) for serio:ty01pr00id00ex00\n\
         skip 8250 (builtin) for platform:serial8250\n"
    );
    assert_eq!(root.run("coldplug", &["--dry-run"]), ok(&expected));
}

#[test]
fn coldplug_dry_run_json() {
    let root = Root::new("dry-json", "blacklist atkbd\n", "");
    let out = root.run("coldplug", &["--dry-run", "--json"]);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""));
    let m = "ROOT/lib/modules/1.0-test/kernel/drivers";
    let module = |name: &str, deps: &str, aliases: &str| {
        format!(
            r#"{{"name":"{name}","path":"{m}/{name}.ko","params":"","install":null,"depends":[{deps}],"soft_depends":[],"modaliases":[{aliases}],"status":"planned","error":null}}"#
        )
    };
    let modules = [
        module("drm", "", ""),
        module(
            "bochs",
            r#""drm""#,
            r#""pci:v00001234d00001111sv00001AF4sd00001100bc03sc00i00""#,
        ),
        module("virtio", "", ""),
        module("virtio_ring", r#""virtio""#, ""),
        module(
            "virtio_pci",
            r#""virtio","virtio_ring""#,
            r#""pci:v00001AF4d00001000sv00001AF4sd00001100bc02sc00i00","pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00""#,
        ),
        module(
            "virtio_net",
            r#""virtio","virtio_ring""#,
            r#""virtio:d00000001v00001AF4""#,
        ),
        module(
            "virtio_blk",
            r#""virtio","virtio_ring""#,
            r#""virtio:d00000002v00001AF4""#,
        ),
        module(
            "usbcore",
            "",
            r#""usb:v1D6Bp0002d0601dc09dsc00dp01ic09isc00ip00in00""#,
        ),
        module("xhci_hcd", r#""usbcore""#, ""),
        module(
            "xhci_pci",
            r#""usbcore","xhci_hcd""#,
            r#""pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30""#,
        ),
        module(
            "usb_storage",
            r#""usbcore""#,
            r#""usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00""#,
        ),
        module("scsi_mod", "", ""),
        module("sd_mod", r#""scsi_mod""#, r#""scsi:t-0x00""#),
    ];
    let json = out.stdout;
    let modules_part = format!(r#""modules":[{}]"#, modules.join(","));
    assert!(json.contains(&modules_part), "{json}");
    assert!(json.starts_with(r#"{"devices":[{"path":"devices/pci0000:00/0000:00:00.0","modalias":"pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"},"#), "{json}");
    assert!(
        json.ends_with(concat!(
            r#""skipped":[{"name":"i8042","reason":"builtin","modalias":"platform:i8042"},"#,
            r#"{"name":"atkbd","reason":"blacklisted","modalias":"serio:ty01pr00id00ex00"},"#,
            r#"{"name":"8250","reason":"builtin","modalias":"platform:serial8250"}],"#,
            r#""unmatched":["pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"]}"#,
            "\n"
        )),
        "{json}"
    );
    assert_eq!(json.matches(r#"{"path":"devices/"#).count(), 13, "{json}");
}

#[test]
fn coldplug_reports_failures_and_exits_non_zero() {
    // Everything is skipped but one module; loading its stand-in file cannot work (no
    // privilege in tests, and it is no module anyway): the failure must be reported.
    let root = Root::new("fail", "blacklist atkbd\n", "");
    for loaded in [
        "drm",
        "bochs",
        "virtio",
        "virtio_ring",
        "virtio_pci",
        "virtio_net",
        "virtio_blk",
        "usbcore",
        "xhci_hcd",
        "xhci_pci",
        "usb_storage",
        "scsi_mod",
    ] {
        root.set_loaded(loaded);
    }
    let out = root.run("coldplug", &["-j", "2"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .starts_with("coldplug: ERROR: could not load sd_mod: "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(!out.stdout.contains("loaded sd_mod"), "{}", out.stdout);
}

#[test]
fn a_missing_module_directory_is_an_error_naming_it() {
    let root = Root::new("no-moddir", "", "");
    std::fs::remove_dir_all(root.moddir()).unwrap();
    for (tool, args) in [
        ("device-modules", &["block:254:0"][..]),
        ("coldplug", &["--dry-run"][..]),
    ] {
        assert_eq!(
            root.run(tool, args),
            Output {
                stdout: String::new(),
                stderr: format!(
                    "{tool}: ERROR: could not open module directory ROOT/lib/modules/{VERSION}: \
                     No such file or directory\n"
                ),
                code: 1,
            },
            "{tool} {args:?}"
        );
    }
}
