//! The coldplug scenario: QEMU gives the guest PCI devices whose drivers are modules in
//! Debian's kernels (virtio-net, virtio-blk with a small disk, e1000, virtio-rng; see
//! xtask/src/vmtest/coldplug.rs). The initramfs carries those modules with their dependencies
//! in `/coldplug/lib/modules/RELEASE`, unindexed. Our depmod indexes them, `modkit coldplug`
//! finds every device's modalias in sysfs and loads what they need; then every device has its
//! driver, the disk's node appears, and `modkit device-modules /dev/vda` names its modules.

use std::path::Path;
use std::time::{Duration, Instant};

use vmtest::MODKIT;
use vmtest::coldplug::{DRIVERS, ROOT};

use super::{Ctx, read_trimmed};

/// (vendor, device, driver) of the PCI devices the host attaches: the driver each must be
/// bound to after coldplug (virtio-pci devices get the `virtio-pci` PCI driver; the virtio
/// drivers bind on the virtio bus beneath).
const PCI_DRIVERS: &[(&str, &str, &str)] = &[
    ("0x1af4", "0x1000", "virtio-pci"),
    ("0x1af4", "0x1001", "virtio-pci"),
    ("0x1af4", "0x1005", "virtio-pci"),
    ("0x8086", "0x100e", "e1000"),
];

/// (virtio device id, driver) for the virtio bus.
const VIRTIO_DRIVERS: &[(&str, &str)] = &[
    ("0x0001", "virtio_net"),
    ("0x0002", "virtio_blk"),
    ("0x0004", "virtio_rng"),
];

/// The names of the modules built into the kernel (`modules.builtin`).
fn builtin_modules(moddir: &str) -> Vec<String> {
    std::fs::read_to_string(format!("{moddir}/modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(modkit_glob::name::path_to_modname)
        .collect()
}

/// The name of the driver a sysfs device directory is bound to, if any.
fn driver(dir: &Path) -> Option<String> {
    std::fs::read_link(dir.join("driver"))
        .ok()
        .and_then(|target| Some(target.file_name()?.to_string_lossy().into_owned()))
}

fn devices(bus: &str) -> Vec<std::path::PathBuf> {
    let mut dirs: Vec<_> = std::fs::read_dir(format!("/sys/bus/{bus}/devices"))
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

pub fn coldplug(ctx: &mut Ctx<'_>) {
    let Some(release) = ctx.env.release.clone() else {
        ctx.check(false, "the host names the release (vmtest.release=)");
        return;
    };
    let moddir = format!("{ROOT}/lib/modules/{release}");
    if !ctx.check(
        Path::new(&moddir).join("kernel").is_dir(),
        format!("{moddir}/kernel holds the drivers' modules"),
    ) {
        return;
    }
    for dir in devices("pci") {
        let (vendor, device) = (
            read_trimmed(&format!("{}/vendor", dir.display())),
            read_trimmed(&format!("{}/device", dir.display())),
        );
        ctx.log(format!(
            "  pci {} {vendor}:{device} driver {:?}",
            dir.display(),
            driver(&dir)
        ));
    }

    let out = ctx.run(&[MODKIT, "depmod", "-b", ROOT, &release]);
    ctx.expect_success(&out);

    // Debian's 6.12 has virtio_pci, virtio and virtio_ring built in; 6.1 has them as modules.
    let builtin = builtin_modules(&moddir);
    ctx.log(format!(
        "  built in here: {:?}",
        DRIVERS
            .iter()
            .filter(|m| builtin.contains(&m.to_string()))
            .collect::<Vec<_>>()
    ));

    // A dry run sees the devices present now; where virtio_pci is a module, the virtio
    // devices behind it appear only once it is loaded (the real run goes round again).
    let out = ctx.run(&[MODKIT, "coldplug", "--dry-run", "-b", ROOT, "-k", &release]);
    ctx.expect_success(&out);
    // A built-in driver is never loaded; coldplug names it only when the kernel's
    // modules.builtin.modinfo has its aliases (Debian's 6.12 has none for virtio_pci).
    for module in ["virtio_pci", "e1000"] {
        let load = format!("load {module} ");
        let found = out.stdout.lines().any(|l| l.starts_with(&load));
        if builtin.contains(&module.to_string()) {
            ctx.check(!found, format!("--dry-run does not plan built-in {module}"));
        } else {
            ctx.check(found, format!("--dry-run says {load:?}"));
        }
    }

    let out = ctx.run(&[MODKIT, "coldplug", "-b", ROOT, "-k", &release]);
    ctx.expect_success(&out);
    for module in DRIVERS {
        if builtin.contains(&module.to_string()) {
            ctx.check(
                !out.stdout.lines().any(|l| l == format!("loaded {module}")),
                format!("coldplug does not load built-in {module}"),
            );
            continue;
        }
        ctx.check(
            out.stdout.lines().any(|l| l == format!("loaded {module}")),
            format!("coldplug reports {module} loaded"),
        );
        ctx.expect_loaded(module, true);
    }

    for (vendor, device, want) in PCI_DRIVERS {
        let found = devices("pci").into_iter().find(|dir| {
            read_trimmed(&format!("{}/vendor", dir.display())) == *vendor
                && read_trimmed(&format!("{}/device", dir.display())) == *device
        });
        match found {
            Some(dir) => {
                let bound = driver(&dir);
                ctx.check(
                    bound.as_deref() == Some(*want),
                    format!(
                        "{}/driver ({vendor}:{device}) is {want}, found {bound:?}",
                        dir.display()
                    ),
                );
            }
            None => {
                ctx.check(false, format!("a PCI device {vendor}:{device} exists"));
            }
        }
    }
    for (id, want) in VIRTIO_DRIVERS {
        let bound = devices("virtio")
            .into_iter()
            .filter(|dir| read_trimmed(&format!("{}/device", dir.display())) == *id)
            .find_map(|dir| driver(&dir));
        ctx.check(
            bound.as_deref() == Some(*want),
            format!("the virtio device {id} is bound to {want}, found {bound:?}"),
        );
    }

    // devtmpfs makes the node from a kernel thread: give it a moment.
    let started = Instant::now();
    while !Path::new("/dev/vda").exists() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !ctx.check(Path::new("/dev/vda").exists(), "/dev/vda appeared") {
        return;
    }

    let out = ctx.run(&[
        MODKIT,
        "device-modules",
        "-b",
        ROOT,
        "-k",
        &release,
        "/dev/vda",
    ]);
    ctx.expect_success(&out);
    let names: Vec<&str> = out.stdout.lines().collect();
    let position = |name: &str| names.iter().position(|n| *n == name);
    for module in ["virtio_blk", "virtio_pci", "virtio", "virtio_ring"] {
        let listed = position(module).is_some();
        if builtin.contains(&module.to_string()) {
            ctx.check(
                !listed,
                format!("device-modules /dev/vda leaves out built-in {module}"),
            );
        } else {
            ctx.check(listed, format!("device-modules /dev/vda names {module}"));
        }
    }
    if !builtin.contains(&"virtio".to_string()) {
        ctx.check(
            matches!((position("virtio"), position("virtio_blk")), (Some(a), Some(b)) if a < b),
            "virtio comes before virtio_blk (load order)",
        );
    }
    ctx.check(
        !names.contains(&"e1000") && !names.contains(&"virtio_net"),
        "device-modules /dev/vda names no network driver",
    );

    let out = ctx.run(&[
        MODKIT,
        "device-modules",
        "-b",
        ROOT,
        "-k",
        &release,
        "--missing",
        "--provided",
        "virtio,virtio_ring,virtio_pci",
        "/dev/vda",
    ]);
    ctx.expect_success(&out);
    ctx.check(
        out.stdout.lines().any(|l| l == "virtio_blk")
            && !out
                .stdout
                .lines()
                .any(|l| l == "virtio_pci" || l == "virtio"),
        "--missing leaves out what is provided and keeps virtio_blk",
    );

    // Everything is loaded now: a second coldplug has nothing to do and says so.
    let out = ctx.run(&[MODKIT, "coldplug", "-b", ROOT, "-k", &release]);
    ctx.expect_success(&out);
    ctx.check(
        !out.stdout.lines().any(|l| l.starts_with("loaded ")),
        "a second coldplug loads nothing",
    );
    ctx.check(
        out.stdout
            .lines()
            .any(|l| l.starts_with("skip virtio_blk (loaded)")),
        "a second coldplug skips virtio_blk as loaded",
    );
}
