//! The root scenarios: boot Debian's kernel with an image written by `modkit initramfs`
//! (modkit-init as `/init`, the modules for one storage controller and ext4, from the Debian
//! tree) and an ext4 disk on that controller, `root=UUID=...` or `root=LABEL=...`. A boot
//! passes only when the disk's own init (`vmtest-root`, the disk's `/sbin/init`) runs from the
//! mounted ext4 root and says so; the negative case (an image without the disk's driver) passes
//! only when modkit-init prints its one line about the missing root device and powers off.
//!
//! The image is built from the controller's PCI IDs as QEMU emulates it (and the devices that
//! appear behind it), never from module names: [`CONTROLLERS`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use ::vmtest::{cmdline, root};

use super::qemu::{self, Accel};
use super::report::{self, BootReport, ScenarioResult, Status};

/// One device on the path from a controller to its disk: its modalias as the guest's sysfs
/// shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceAlias {
    pub modalias: &'static str,
    /// Which QEMU device it is.
    pub device: &'static str,
    /// The driver Debian's kernels give it (a module, or built in: 6.12's virtio_pci).
    pub driver: &'static str,
}

/// A storage controller QEMU emulates, the devices from it to the disk, and the QEMU
/// arguments that attach the disk `root` to it.
#[derive(Debug)]
pub struct Controller {
    pub name: &'static str,
    pub aliases: &'static [DeviceAlias],
    /// QEMU `-device` arguments, after `-drive ...,id=root`.
    pub devices: &'static [&'static str],
}

/// The controllers a root disk is booted from (on the `pc` machine's PCI bus), each path as
/// the kernel walks it. From QEMU's source: hw/virtio/virtio-pci.c (a transitional device's
/// subsystem is vendor 0x1af4, id = the virtio device id, 2 for block),
/// include/hw/pci/pci_ids.h (0x1af4:0x1001 virtio block, class 0x0100), hw/nvme/ctrl.c
/// (0x1b36:0x0010, class 0x0108 prog-if 2), hw/ide/ich.c (ICH9 AHCI 0x8086:0x2922, class
/// 0x0106 prog-if 1); other devices keep QEMU's default subsystem 0x1af4:0x1100
/// (hw/pci/pci.c). The bus modaliases are the kernel's: `virtio:d%08Xv%08X`
/// (drivers/virtio/virtio.c) and `scsi:t-0x%02x`, type 0 a disk (drivers/scsi/scsi_sysfs.c),
/// behind AHCI's ATA port. An NVMe namespace has no modalias of its own (nvme drives it). On
/// q35's PCIe ports a virtio device is modern-only (0x1af4:0x1042) and its alias differs.
pub const CONTROLLERS: [Controller; 3] = [
    Controller {
        name: "virtio",
        aliases: &[
            DeviceAlias {
                modalias: "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
                device: "virtio-blk-pci, the PCI function",
                driver: "virtio_pci",
            },
            DeviceAlias {
                modalias: "virtio:d00000002v00001AF4",
                device: "virtio-blk-pci, the virtio block device on it",
                driver: "virtio_blk",
            },
        ],
        devices: &["-device", "virtio-blk-pci,drive=root"],
    },
    Controller {
        name: "nvme",
        aliases: &[DeviceAlias {
            modalias: "pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02",
            device: "nvme, QEMU's NVMe controller",
            driver: "nvme",
        }],
        devices: &["-device", "nvme,drive=root,serial=modkit-root"],
    },
    Controller {
        name: "ahci",
        aliases: &[
            DeviceAlias {
                modalias: "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
                device: "ich9-ahci, the ICH9 AHCI controller",
                driver: "ahci",
            },
            DeviceAlias {
                modalias: "scsi:t-0x00",
                device: "ide-hd on AHCI, the SCSI disk",
                driver: "sd_mod",
            },
        ],
        devices: &[
            "-device",
            "ahci,id=ahci",
            "-device",
            "ide-hd,drive=root,bus=ahci.0",
        ],
    },
];

/// Every controller's devices: the device set of `cargo xtask bench initramfs`.
pub fn device_set() -> impl Iterator<Item = &'static DeviceAlias> {
    CONTROLLERS.iter().flat_map(|c| c.aliases.iter())
}

/// How `root=` names the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    Uuid,
    Label,
}

/// One root boot.
#[derive(Debug)]
pub struct Case {
    /// The scenario name (`vmtest --scenario NAME`).
    pub name: &'static str,
    /// Where the disk is attached.
    pub disk_on: &'static str,
    /// Which controller's modules the image has.
    pub image_for: &'static str,
    pub by: By,
}

impl Case {
    /// Whether the root is expected to be found.
    pub fn positive(&self) -> bool {
        self.disk_on == self.image_for
    }
}

/// The root scenarios, in the order they run.
pub const CASES: [Case; 5] = [
    Case {
        name: "root-virtio",
        disk_on: "virtio",
        image_for: "virtio",
        by: By::Uuid,
    },
    Case {
        name: "root-nvme",
        disk_on: "nvme",
        image_for: "nvme",
        by: By::Uuid,
    },
    Case {
        name: "root-ahci",
        disk_on: "ahci",
        image_for: "ahci",
        by: By::Uuid,
    },
    Case {
        name: "root-label",
        disk_on: "virtio",
        image_for: "virtio",
        by: By::Label,
    },
    Case {
        name: "root-missing",
        disk_on: "virtio",
        image_for: "nvme",
        by: By::Uuid,
    },
];

/// The disk's filesystem UUID and label.
pub const DISK_UUID: &str = "3b0e7c5a-9d41-4f6e-8a2b-6c1d0f9e8a71";
pub const DISK_LABEL: &str = "modkit-root";

/// The static programs a root boot needs.
#[derive(Debug)]
pub struct Programs {
    /// The multi-call `modkit` (its `initramfs` writes the images).
    pub modkit: PathBuf,
    /// The image's `/init`.
    pub init: PathBuf,
    /// The disk's `/sbin/init`.
    pub disk_init: PathBuf,
}

/// One kernel: the image QEMU boots and the Debian tree the initramfs takes modules from.
#[derive(Debug)]
pub struct Kernel<'a> {
    pub release: &'a str,
    pub boot_image: &'a Path,
    /// The tree's root (`ROOT/lib/modules/RELEASE`).
    pub tree: &'a Path,
}

/// How the boots run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub accel: Accel,
    pub timeout: Duration,
    pub verbose: bool,
}

/// What one root boot gave, beside its report.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub image_bytes: u64,
    pub modules: usize,
    /// CLOCK_BOOTTIME (the clock of the kernel's timestamps) when the disk's init ran.
    pub boot_to_root: Option<f64>,
}

/// One root boot's line in the report's table.
#[derive(Debug, Clone)]
pub struct Row {
    pub release: String,
    pub case: &'static str,
    pub figures: Figures,
    pub status: Status,
}

/// The root boots side by side: per kernel and case, where the disk was, what the image was
/// built for, its module count and size, the boot-to-root time and the result.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "\nroot boots (images by modkit initramfs, zstd; boot-to-root: kernel start to the disk's \
         init, CLOCK_BOOTTIME):\n",
    );
    out.push_str(&format!(
        "  {:<22}  {:<13}  {:<7}  {:<9}  {:>7}  {:>10}  {:>12}  result\n",
        "kernel", "scenario", "disk on", "image for", "modules", "image", "boot-to-root"
    ));
    for row in rows {
        let case = CASES.iter().find(|c| c.name == row.case);
        let (disk_on, image_for) = case.map_or(("?", "?"), |c| (c.disk_on, c.image_for));
        let boot = row
            .figures
            .boot_to_root
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.2} s"));
        out.push_str(&format!(
            "  {:<22}  {:<13}  {:<7}  {:<9}  {:>7}  {:>10}  {:>12}  {}\n",
            row.release,
            row.case,
            disk_on,
            image_for,
            row.figures.modules,
            format!(
                "{:.2} MiB",
                row.figures.image_bytes as f64 / (1 << 20) as f64
            ),
            boot,
            row.status.label()
        ));
    }
    out
}

/// Makes `mkfs.ext4` available (e2fsprogs): installs it when root, else says what to run.
fn mkfs(sh: &Shell) -> Result<PathBuf> {
    let find = || {
        ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
    };
    if let Some(path) = find() {
        return Ok(path);
    }
    if !crate::tools::is_root(sh) {
        bail!("mkfs.ext4 is not installed; run `sudo apt-get install -y e2fsprogs` and try again");
    }
    eprintln!("installing e2fsprogs...");
    cmd!(sh, "apt-get install -y -q e2fsprogs")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .context("apt-get install -y e2fsprogs failed")?;
    find().context("mkfs.ext4 still missing after installing e2fsprogs")
}

/// Writes the root disk: ext4 with [`DISK_UUID`] and [`DISK_LABEL`], made from a directory
/// without root privileges (`mkfs.ext4 -d`), holding the disk's init as `/sbin/init` and the
/// marker file (`vmtest::root::MARKER`) with the UUID.
pub fn write_disk(sh: &Shell, programs: &Programs, dir: &Path) -> Result<PathBuf> {
    let mkfs = mkfs(sh)?;
    let tree = dir.join("root-disk");
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(tree.join("sbin"))?;
    for mount_point in ["dev", "proc", "sys", "run"] {
        std::fs::create_dir_all(tree.join(mount_point))?;
    }
    std::fs::copy(&programs.disk_init, tree.join("sbin/init"))
        .with_context(|| format!("cannot copy {} to the disk", programs.disk_init.display()))?;
    std::fs::write(tree.join(root::MARKER.trim_start_matches('/')), DISK_UUID)?;
    // What makes a directory an OS tree to systemd's switch-root (an anchor's dracut image).
    std::fs::create_dir_all(tree.join("etc"))?;
    std::fs::write(
        tree.join("etc/os-release"),
        "NAME=\"modkit root disk\"\nID=modkit-vmtest\n",
    )?;
    let image = dir.join("root-disk.ext4");
    let _ = std::fs::remove_file(&image);
    cmd!(
        sh,
        "{mkfs} -q -F -d {tree} -U {DISK_UUID} -L {DISK_LABEL} {image} 32M"
    )
    .run()
    .context("mkfs.ext4 could not make the root disk")?;
    Ok(image)
}

/// Builds the image for `controller` with `modkit initramfs` and returns it with its module
/// count (from modkit's summary line).
fn build_image(
    sh: &Shell,
    programs: &Programs,
    kernel: &Kernel,
    controller: &Controller,
    out: &Path,
) -> Result<usize> {
    let (modkit, init, tree, release) = (
        &programs.modkit,
        &programs.init,
        kernel.tree,
        kernel.release,
    );
    let aliases: Vec<String> = controller
        .aliases
        .iter()
        .flat_map(|a| ["--device-alias".to_owned(), a.modalias.to_string()])
        .collect();
    let summary = cmd!(
        sh,
        "{modkit} initramfs -k {release} -b {tree} --init {init} --compress zstd -o {out} {aliases...} --fs ext4"
    )
    .read()
    .with_context(|| format!("modkit initramfs failed for {}", controller.name))?;
    // `PATH: N modules, ...`
    let modules = summary
        .rsplit_once(": ")
        .and_then(|(_, rest)| rest.split_once(" modules"))
        .and_then(|(n, _)| n.parse().ok())
        .with_context(|| format!("no module count in modkit's summary {summary:?}"))?;
    Ok(modules)
}

fn controller(name: &str) -> &'static Controller {
    CONTROLLERS
        .iter()
        .find(|c| c.name == name)
        .expect("a known controller")
}

/// The line modkit-init prints when the root device does not appear (`boot::Failure`).
fn missing_root_line(spec: &str) -> String {
    format!("modkit-init: root device {spec} did not appear in 10 s; block devices seen: ")
}

/// Boots `case` and returns its report (one scenario, named after the case) and figures.
pub fn boot(
    sh: &Shell,
    case: &Case,
    programs: &Programs,
    kernel: &Kernel,
    disk: &Path,
    dir: &Path,
    settings: Settings,
) -> Result<(BootReport, Figures)> {
    let image = dir.join(format!("initramfs-{}.img", case.image_for));
    let modules = build_image(sh, programs, kernel, controller(case.image_for), &image)?;
    let image_bytes = std::fs::metadata(&image)?.len();
    let spec = match case.by {
        By::Uuid => format!("UUID={DISK_UUID}"),
        By::Label => format!("LABEL={DISK_LABEL}"),
    };
    let target = Target {
        name: case.name,
        initrd: &image,
        disk,
        disk_on: case.disk_on,
        spec: &spec,
    };
    let (console, mut problems) = boot_console(sh, &target, kernel, dir, settings)?;
    let mut report = if case.positive() {
        report::parse(&console, &[case.name])
    } else {
        negative_report(case, &spec, &console)
    };
    report.problems.append(&mut problems);
    let boot_to_root = boot_to_root(&report);
    Ok((
        report,
        Figures {
            image_bytes,
            modules,
            boot_to_root,
        },
    ))
}

/// What a root boot boots: an initramfs, and the root disk on a controller.
#[derive(Debug)]
pub struct Target<'a> {
    /// The scenario name the disk's init reports under.
    pub name: &'a str,
    pub initrd: &'a Path,
    pub disk: &'a Path,
    /// Which of [`CONTROLLERS`] the disk is on.
    pub disk_on: &'a str,
    /// The `root=` value.
    pub spec: &'a str,
}

/// Boots `target` with `kernel` (any initramfs: modkit's or an anchor's) and returns the
/// console and the harness's problems (a time-out, QEMU's complaints).
pub fn boot_console(
    sh: &Shell,
    target: &Target,
    kernel: &Kernel,
    dir: &Path,
    settings: Settings,
) -> Result<(String, Vec<String>)> {
    // `rd.emergency=poweroff`: an anchor's dracut image that fails powers off instead of
    // waiting at its emergency shell (modkit-init and initramfs-tools ignore it).
    let append = format!(
        "console=ttyS0 quiet panic=-1 rd.emergency=poweroff root={} {}={} {}={DISK_UUID}",
        target.spec,
        cmdline::SCENARIOS,
        target.name,
        root::EXPECT
    );
    let mut devices = vec![
        "-drive".to_owned(),
        format!(
            "file={},if=none,id=root,format=raw,snapshot=on",
            target.disk.display()
        ),
    ];
    devices.extend(
        controller(target.disk_on)
            .devices
            .iter()
            .map(|s| s.to_string()),
    );
    let output = qemu::run(
        sh,
        &qemu::Boot {
            kernel: kernel.boot_image.to_owned(),
            initrd: target.initrd.to_owned(),
            append,
            accel: settings.accel,
            timeout: settings.timeout,
            console_log: dir.join(format!("console-{}.log", target.name)),
            echo: settings.verbose,
            devices,
        },
    )?;
    ensure!(
        output.qemu_stderr.trim().is_empty() || output.qemu_status.is_some(),
        "qemu: {}",
        output.qemu_stderr.trim()
    );
    let mut problems = Vec::new();
    if output.timed_out {
        problems.push(format!("timed out after {} s", settings.timeout.as_secs()));
    }
    Ok((output.console, problems))
}

/// The boot-to-root time the disk's init reported, in seconds.
pub fn boot_to_root(report: &BootReport) -> Option<f64> {
    report
        .scenarios
        .iter()
        .flat_map(|s| &s.transcript)
        .find_map(|line| line.strip_prefix(root::BOOT_TO_ROOT))
        .and_then(|s| s.trim_end_matches(" s").parse().ok())
}

/// The negative case passes when modkit-init said the root device did not appear (and
/// listed what it saw) and the disk's init never ran.
fn negative_report(case: &Case, spec: &str, console: &str) -> BootReport {
    let expected = missing_root_line(spec);
    let line = console.lines().find(|l| l.contains(&expected));
    let disk_init_ran = console.lines().any(|l| {
        matches!(
            ::vmtest::protocol::Message::find(l),
            Some(::vmtest::protocol::Message::Verdict(_))
        )
    });
    let status = if line.is_some() && !disk_init_ran {
        Status::Pass
    } else {
        Status::Fail
    };
    let mut transcript = vec![format!("expected a line starting {expected:?}")];
    match line {
        Some(line) => transcript.push(format!("got: {}", line.trim())),
        None => transcript.push("modkit-init printed no such line".into()),
    }
    if disk_init_ran {
        transcript.push("but the disk's init ran: the image had the driver after all".into());
    }
    // The kernel's trouble still counts; the protocol's complaints (no plan, no verdict) are
    // what this case expects.
    let mut report = report::parse(console, &[]);
    report
        .problems
        .retain(|p| p.starts_with("the kernel panicked") || p.starts_with("the kernel reported"));
    report.scenarios = vec![ScenarioResult {
        name: case.name.to_owned(),
        status,
        transcript,
    }];
    report.verdict = Some(status == Status::Pass);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cases_are_the_guests_root_scenarios() {
        let names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
        assert_eq!(names, root::SCENARIOS);
    }

    #[test]
    fn cases_name_known_controllers_and_one_is_negative() {
        for case in &CASES {
            controller(case.disk_on);
            controller(case.image_for);
        }
        assert_eq!(CASES.iter().filter(|c| !c.positive()).count(), 1);
        assert!(CASES.iter().any(|c| c.by == By::Label && c.positive()));
        for name in ["virtio", "nvme", "ahci"] {
            assert!(
                CASES
                    .iter()
                    .any(|c| c.positive() && c.disk_on == name && c.by == By::Uuid),
                "{name}"
            );
        }
    }

    #[test]
    fn negative_needs_the_line_and_no_disk_init() {
        let case = &CASES[4];
        let spec = format!("UUID={DISK_UUID}");
        let good = format!(
            "[    1.0] virtio_blk virtio0: [vda] 65536 512-byte logical blocks\n\
             modkit-init: root device {spec} did not appear in 10 s; block devices seen: vda \
             (ext4 UUID={DISK_UUID}); modules loaded: nvme\nmodkit-init: powering off\n"
        );
        let report = negative_report(case, &spec, &good);
        assert!(report.passed(), "{report:?}");
        let report = negative_report(case, &spec, "modkit-init: powering off\n");
        assert!(!report.passed());
        let ran = format!(
            "{good}{}\n",
            ::vmtest::protocol::Message::Verdict(true).line()
        );
        assert!(!negative_report(case, &spec, &ran).passed());
    }
}
