//! The libkmod scenario: Debian's own programs that load modules in-process through libkmod,
//! run against modkit's `libkmod.so.2` (the only one in the library search path; the host put
//! them in the initramfs with their libraries, see xtask/src/vmtest/libkmod.rs):
//!
//! - `udevadm test-builtin 'kmod load MODALIAS' SYSPATH` (udev's kmod builtin, what
//!   systemd-udevd runs for every uevent) loads the virtio-rng device's drivers;
//! - `lspci -nk` prints the same "Kernel driver in use" / "Kernel modules" lines as with
//!   Debian's libkmod (the reference run names it with `LD_LIBRARY_PATH`), and `LD_DEBUG`
//!   shows which library each run loaded;
//! - `systemd-modules-load` loads `hello_api`, named in `/etc/modules-load.d`.
//!
//! The module tree is the coldplug scenario's (the VM's drivers, indexed by our depmod), with
//! hello_api in `extra/`, bind-mounted on `/lib/modules` for the scenario.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vmtest::coldplug::ROOT;
use vmtest::libkmod::{DEBIAN_DIR, PROGRAMS};
use vmtest::{KMODS_DIR, MODKIT};

use super::{Ctx, Output, loaded_modules, read_trimmed};

/// Where the programs find a library by default (Debian's multiarch directories; libkmod2
/// ships in the second): modkit's `libkmod.so.2` must be in exactly one.
const DEFAULT_PATHS: &[&str] = &[
    "/lib/x86_64-linux-gnu/libkmod.so.2",
    "/usr/lib/x86_64-linux-gnu/libkmod.so.2",
];
const MODULES_LOAD_CONF: &str = "/etc/modules-load.d/vmtest.conf";

pub fn libkmod(ctx: &mut Ctx<'_>) {
    for program in PROGRAMS {
        if !ctx.check(
            Path::new(program).is_file(),
            format!("{program} is in the initramfs"),
        ) {
            return;
        }
    }
    let found: Vec<&str> = DEFAULT_PATHS
        .iter()
        .copied()
        .filter(|path| Path::new(path).exists())
        .collect();
    let [ours] = found[..] else {
        ctx.check(
            false,
            format!("one libkmod.so.2 in the search path ({DEFAULT_PATHS:?}); found {found:?}"),
        );
        return;
    };
    let debian = format!("{DEBIAN_DIR}/libkmod.so.2");
    let (ours_bytes, debian_bytes) = (std::fs::read(ours), std::fs::read(&debian));
    if !ctx.check(
        matches!((&ours_bytes, &debian_bytes), (Ok(a), Ok(b)) if a != b),
        format!("{ours} (modkit's) and {debian} (Debian's) are there and differ"),
    ) {
        return;
    }
    let Some(release) = ctx.env.release.clone() else {
        ctx.check(false, "the host names the release (vmtest.release=)");
        return;
    };
    let Some(tree) = Tree::set_up(ctx, &release) else {
        return;
    };
    // After the builtin: the virtio-rng device then has its driver, and lspci shows it.
    udev_builtin(ctx);
    lspci(ctx, ours);
    modules_load(ctx);
    tree.tear_down(ctx);
}

/// The coldplug tree with hello_api, indexed, on `/lib/modules`.
struct Tree {
    extra: PathBuf,
    release: String,
}

impl Tree {
    fn set_up(ctx: &mut Ctx<'_>, release: &str) -> Option<Tree> {
        let moddir = format!("{ROOT}/lib/modules/{release}");
        if !ctx.check(
            Path::new(&moddir).join("kernel").is_dir(),
            format!("{moddir}/kernel holds the drivers' modules"),
        ) {
            return None;
        }
        let extra = Path::new(&moddir).join("extra");
        let ext = ctx.env.module_ext.clone();
        let from = format!("{KMODS_DIR}/hello_api.{ext}");
        let to = extra.join(format!("hello_api.{ext}"));
        ctx.log(format!("# cp {from} {}", to.display()));
        let copied = std::fs::create_dir_all(&extra).and_then(|()| std::fs::copy(&from, &to));
        if !ctx.check(copied.is_ok(), format!("copying {from}: {copied:?}")) {
            return None;
        }
        let out = ctx.run(&[MODKIT, "depmod", "-b", ROOT, release]);
        ctx.expect_success(&out);
        ctx.log(format!("# mount --bind {ROOT}/lib/modules /lib/modules"));
        let bound = sys_mount::Mount::builder()
            .fstype("none")
            .flags(sys_mount::MountFlags::BIND)
            .mount(format!("{ROOT}/lib/modules"), "/lib/modules");
        let tree = Tree {
            extra,
            release: release.to_owned(),
        };
        if !ctx.check(bound.is_ok(), format!("bind mount: {:?}", bound.err())) {
            tree.tear_down(ctx);
            return None;
        }
        Some(tree)
    }

    /// Unmounts, takes hello_api out again and re-indexes, for the scenarios after this one.
    fn tear_down(self, ctx: &mut Ctx<'_>) {
        if Path::new("/lib/modules")
            .join(&self.release)
            .join("extra")
            .exists()
        {
            let result = sys_mount::unmount("/lib/modules", sys_mount::UnmountFlags::DETACH);
            ctx.check(result.is_ok(), format!("umount /lib/modules: {result:?}"));
        }
        let _ = std::fs::remove_file(MODULES_LOAD_CONF);
        let removed = std::fs::remove_dir_all(&self.extra);
        ctx.check(
            removed.is_ok(),
            format!("removing {}: {removed:?}", self.extra.display()),
        );
        let out = ctx.run(&[MODKIT, "depmod", "-b", ROOT, &self.release]);
        ctx.expect_success(&out);
    }
}

/// The lines of `lspci -k` that come from libkmod or sysfs.
fn kernel_lines(stdout: &str, prefix: &str) -> usize {
    stdout
        .lines()
        .filter(|line| line.trim_start().starts_with(prefix))
        .count()
}

fn lspci(ctx: &mut Ctx<'_>, ours_path: &str) {
    // LD_DEBUG=files makes the dynamic linker say on stderr which files it initialised.
    let reference = ctx.run_env(
        &["/usr/bin/lspci", "-nk"],
        &[("LD_LIBRARY_PATH", DEBIAN_DIR), ("LD_DEBUG", "files")],
    );
    ctx.expect_success(&reference);
    let debian = format!("{DEBIAN_DIR}/libkmod.so.2");
    ctx.check(
        reference
            .stderr
            .contains(&format!("calling init: {debian}")),
        format!("the reference run loaded {debian}"),
    );
    let ours = ctx.run_env(&["/usr/bin/lspci", "-nk"], &[("LD_DEBUG", "files")]);
    ctx.expect_success(&ours);
    ctx.check(
        ours.stderr.contains(&format!("calling init: {ours_path}"))
            && !ours.stderr.contains(DEBIAN_DIR),
        format!("lspci loaded {ours_path}, modkit's, and nothing from {DEBIAN_DIR}"),
    );
    let modules = kernel_lines(&ours.stdout, "Kernel modules:");
    let drivers = kernel_lines(&ours.stdout, "Kernel driver in use:");
    ctx.check(
        modules >= 1 && drivers >= 1,
        format!(
            "lspci -k printed {modules} \"Kernel modules:\" and {drivers} \"Kernel driver in use:\" lines (want >= 1 of each)"
        ),
    );
    if reference.stdout != ours.stdout {
        ctx.log("  want (Debian's libkmod):");
        for line in reference.stdout.lines() {
            ctx.log(format!("    {line}"));
        }
    }
    ctx.check(
        reference.stdout == ours.stdout,
        "lspci -nk prints the same with modkit's libkmod as with Debian's",
    );
}

/// The PCI or virtio device whose `device` file reads `id` (and `vendor` reads `vendor`).
fn find_device(bus: &str, vendor: &str, id: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(format!("/sys/bus/{bus}/devices"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs.into_iter().find(|dir| {
        read_trimmed(&format!("{}/vendor", dir.display())) == vendor
            && read_trimmed(&format!("{}/device", dir.display())) == id
    })
}

/// udev's kmod builtin, as systemd-udevd runs it for a device's uevent.
fn udev_load(ctx: &mut Ctx<'_>, dir: &Path) -> Output {
    let modalias = read_trimmed(&format!("{}/modalias", dir.display()));
    let syspath = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let syspath = syspath.display().to_string();
    ctx.run(&[
        "/bin/udevadm",
        "test-builtin",
        &format!("kmod load {modalias}"),
        &syspath,
    ])
}

fn udev_builtin(ctx: &mut Ctx<'_>) {
    // The virtio-rng PCI device: its driver (virtio_pci, a module on 6.1, built into 6.12)
    // makes the virtio device appear, whose driver is the module virtio_rng.
    let Some(pci) = find_device("pci", "0x1af4", "0x1005") else {
        ctx.check(false, "the virtio-rng PCI device (1af4:1005) is there");
        return;
    };
    let out = udev_load(ctx, &pci);
    ctx.expect_success(&out);
    let deadline = Instant::now() + Duration::from_secs(5);
    let rng = loop {
        if let Some(dir) = find_device("virtio", "0x1af4", "0x0004") {
            break Some(dir);
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ctx.check(
        Path::new("/sys/module/virtio_pci").exists(),
        "virtio_pci is loaded or built in (/sys/module/virtio_pci)",
    );
    let Some(rng) = rng else {
        ctx.check(false, "the virtio-rng device appeared on the virtio bus");
        return;
    };
    if loaded_modules().iter().any(|m| m == "virtio_rng") {
        // An earlier scenario (coldplug) loaded it: take it out so the builtin must load it.
        let out = ctx.run(&["/sbin/rmmod", "virtio_rng"]);
        ctx.expect_success(&out);
    }
    ctx.expect_loaded("virtio_rng", false);
    let out = udev_load(ctx, &rng);
    ctx.expect_success(&out);
    ctx.expect_loaded("virtio_rng", true);
    let bound = std::fs::read_link(rng.join("driver"))
        .ok()
        .and_then(|t| Some(t.file_name()?.to_string_lossy().into_owned()));
    ctx.check(
        bound.as_deref() == Some("virtio_rng"),
        format!("{} is bound to virtio_rng ({bound:?})", rng.display()),
    );
}

fn modules_load(ctx: &mut Ctx<'_>) {
    ctx.expect_loaded("hello_api", false);
    ctx.log(format!("# {MODULES_LOAD_CONF}: hello_api"));
    let written = std::fs::create_dir_all("/etc/modules-load.d")
        .and_then(|()| std::fs::write(MODULES_LOAD_CONF, "# vmtest\nhello_api\n"));
    if !ctx.check(
        written.is_ok(),
        format!("writing {MODULES_LOAD_CONF}: {written:?}"),
    ) {
        return;
    }
    let out = ctx.run(&["/lib/systemd/systemd-modules-load"]);
    ctx.expect_success(&out);
    ctx.expect_kmsg(&out, "[hello_api] Hello, World!");
    ctx.expect_loaded("hello_api", true);
    let out = ctx.run(&["/sbin/rmmod", "hello_api"]);
    ctx.expect_success(&out);
    ctx.expect_loaded("hello_api", false);
}
