//! From the kernel to a mounted root: load what the devices need (modkit's coldplug, in rounds,
//! again whenever new devices appear) until the `root=` device shows up, load its
//! filesystem's module, mount it. Every way this can fail is a [`Failure`] whose text is the
//! one console line the user sees.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use modkit::coldplug::{self, Outcome};
use modkit::syscalls::{LinuxKernel, ProcDir};
use modkit::sysfs::Sysfs;
use modkit::{CommandRunner, ConfigFiles, Context, Level, ProbeOptions, Reporter};
use sys_mount::{Mount, MountFlags};

use crate::blockdev::{self, BlockDevice};
use crate::bootargs::{BootArgs, RootSpec, RootWait};

/// Where the root filesystem is mounted before the switch.
pub const SYSROOT: &str = "/sysroot";

/// How often the block devices are looked at while waiting.
const POLL: Duration = Duration::from_millis(25);

/// With `rootwait` (no limit), how often a line says what is still awaited.
const STILL_WAITING: Duration = Duration::from_secs(10);

/// Why the root filesystem could not be mounted: the text is one line for the console.
#[derive(Debug)]
#[non_exhaustive]
pub enum Failure {
    /// No `root=` on the command line.
    NoRoot,
    /// A `root=` this init does not understand.
    BadRoot(String),
    /// The image has no module directory for the running kernel.
    NoModules {
        /// The running kernel.
        release: String,
        /// The directories `/lib/modules` has.
        present: Vec<String>,
    },
    /// The root device did not appear in time.
    RootNotFound {
        /// What was waited for.
        spec: RootSpec,
        /// How long.
        waited: Duration,
        /// Every block device seen at the end.
        seen: Vec<BlockDevice>,
        /// The modules in the kernel at the end.
        loaded: Vec<String>,
        /// Modules coldplug could not load, with why.
        failed: Vec<String>,
    },
    /// The root device holds nothing this init recognises and no `rootfstype=` was given.
    UnknownFilesystem(Box<BlockDevice>),
    /// Mounting failed.
    Mount {
        /// The device.
        device: Box<BlockDevice>,
        /// The filesystem type tried.
        fstype: String,
        /// The kernel's answer.
        cause: std::io::Error,
        /// Whether the kernel lists the type in /proc/filesystems.
        known_to_kernel: bool,
    },
    /// Setting up (mounting /proc, ...) failed.
    Setup(String),
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoRoot => f.write_str(
                "no root= on the kernel command line; give root=UUID=..., LABEL=..., PARTUUID=... \
                 or /dev/NAME",
            ),
            Failure::BadRoot(value) => write!(
                f,
                "root={value} is not a form modkit-init knows; give root=UUID=..., LABEL=..., \
                 PARTUUID=..., PARTLABEL=..., /dev/NAME or MAJOR:MINOR"
            ),
            Failure::NoModules { release, present } => write!(
                f,
                "this image has no modules for the running kernel {release} (/lib/modules has: \
                 {}); build it with `modkit initramfs -k {release}`",
                list(present)
            ),
            Failure::RootNotFound {
                spec,
                waited,
                seen,
                loaded,
                failed,
            } => {
                write!(
                    f,
                    "root device {spec} did not appear in {} s; block devices seen: {}; modules \
                     loaded: {}",
                    waited.as_secs(),
                    list(seen),
                    list(loaded)
                )?;
                if !failed.is_empty() {
                    write!(f, "; modules that failed: {}", failed.join(", "))?;
                }
                Ok(())
            }
            Failure::UnknownFilesystem(device) => write!(
                f,
                "no filesystem recognised on /dev/{device}; give rootfstype=TYPE"
            ),
            Failure::Mount {
                device,
                fstype,
                cause,
                known_to_kernel,
            } => {
                write!(
                    f,
                    "mounting /dev/{} ({fstype}) on {SYSROOT} failed: {}",
                    device.name,
                    modkit::syscalls::io_error_text(cause)
                )?;
                if !known_to_kernel {
                    write!(
                        f,
                        "; the kernel has no {fstype} filesystem (is its module in the image?)"
                    )?;
                }
                Ok(())
            }
            Failure::Setup(what) => f.write_str(what),
        }
    }
}

/// The cause of [`Failure::Mount`] is printed in the message, not returned by `source()`
/// (the workspace's one error rule).
impl std::error::Error for Failure {}

/// Collects what coldplug and probe say, instead of printing it in the middle of the boot.
#[derive(Debug, Default)]
struct Messages(Vec<String>);

impl Reporter for Messages {
    fn show(&mut self, _line: &str) {}

    fn message(&mut self, level: Level, text: &str) {
        if level != Level::Info {
            self.0.push(text.to_owned());
        }
    }
}

/// An initramfs has no shell: `install` commands cannot run (modkit initramfs copies none).
#[derive(Debug)]
struct NoShell;

impl CommandRunner for NoShell {
    fn run(&mut self, command: &str, module: &str) -> std::io::Result<i32> {
        Err(std::io::Error::other(format!(
            "the initramfs has no shell for the install command of {module}: {command}"
        )))
    }
}

/// The system paths the boot reads; `Paths::system()` in the real init, a fake tree in tests.
#[derive(Debug, Clone)]
pub struct Paths {
    /// `/sys`.
    pub sys: PathBuf,
    /// `/dev`.
    pub dev: PathBuf,
    /// `/proc`.
    pub proc: PathBuf,
    /// `/lib/modules`.
    pub modules: PathBuf,
}

impl Paths {
    /// The running system's.
    pub fn system() -> Paths {
        Paths {
            sys: "/sys".into(),
            dev: "/dev".into(),
            proc: "/proc".into(),
            modules: "/lib/modules".into(),
        }
    }
}

/// The root device, found and mounted on [`SYSROOT`].
#[derive(Debug)]
pub struct Mounted {
    /// The device.
    pub device: BlockDevice,
    /// Its filesystem type.
    pub fstype: String,
    /// How long finding the device took (coldplug included).
    pub found_after: Duration,
    /// The modules loaded in the kernel when it was mounted.
    pub loaded: usize,
}

fn loaded_modules(proc: &Path) -> Vec<String> {
    ProcDir::new(proc)
        .modules()
        .map(|mods| mods.into_iter().map(|m| m.name).collect())
        .unwrap_or_default()
}

fn kernel_filesystems(proc: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(proc.join("filesystems"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_whitespace().last().map(str::to_owned))
        .collect()
}

/// The modules context for the running kernel: `/lib/modules/RELEASE` with the image's
/// modprobe.d and the command line's module arguments and blacklist.
pub fn open_modules(paths: &Paths, cmdline: &str) -> Result<Context, Failure> {
    let release = modkit::syscalls::kernel_release()
        .map_err(|err| Failure::Setup(format!("uname: {err}")))?;
    let dir = paths.modules.join(&release);
    if !dir.is_dir() {
        let mut present: Vec<String> = std::fs::read_dir(&paths.modules)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        present.sort();
        return Err(Failure::NoModules { release, present });
    }
    let (ctx, warnings) = Context::open(dir, &ConfigFiles::Default, Some(cmdline))
        .map_err(|err| Failure::Setup(err.to_string()))?;
    for warning in warnings {
        crate::say(&format!("warning: {warning}"));
    }
    Ok(ctx)
}

/// Waits for the root device: coldplug whenever the set of devices changed, then look at the
/// block devices, until one matches or the wait is over.
pub fn wait_for_root(
    args: &BootArgs,
    spec: &RootSpec,
    ctx: &mut Context,
    paths: &Paths,
) -> Result<(BlockDevice, Duration), Failure> {
    let kernel = LinuxKernel::new();
    let sysfs = Sysfs::new(&paths.sys);
    let class_block = paths.sys.join("class/block");
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let start = Instant::now();
    let mut devices_seen: Option<Vec<(PathBuf, String)>> = None;
    let mut failed: Vec<String> = Vec::new();
    let mut next_note = STILL_WAITING;
    loop {
        let devices = sysfs.all_modaliases().unwrap_or_default();
        if devices_seen.as_ref() != Some(&devices) {
            devices_seen = Some(devices);
            let mut messages = Messages::default();
            match coldplug::coldplug(ctx, &kernel, &sysfs, &mut NoShell, &mut messages, jobs) {
                Ok(done) => {
                    for (step, outcome) in done.plan.steps.iter().zip(&done.outcomes) {
                        let why = match outcome {
                            Outcome::Failed(why) => format!("{} ({why})", step.name),
                            Outcome::DependencyFailed(dep) => {
                                format!("{} (its dependency {dep} failed)", step.name)
                            }
                            _ => continue,
                        };
                        if !failed.contains(&why) {
                            failed.push(why);
                        }
                    }
                }
                Err(err) => {
                    let why = format!("coldplug: {err}");
                    if !failed.contains(&why) {
                        failed.push(why);
                    }
                }
            }
        }
        let block = blockdev::scan(&class_block, &paths.dev);
        if let Some(found) = block.iter().find(|d| d.matches(spec)) {
            return Ok((found.clone(), start.elapsed()));
        }
        let waited = start.elapsed();
        match args.wait {
            RootWait::For(limit) if waited >= limit => {
                return Err(Failure::RootNotFound {
                    spec: spec.clone(),
                    waited: limit,
                    seen: block,
                    loaded: loaded_modules(&paths.proc),
                    failed,
                });
            }
            RootWait::Forever if waited >= next_note => {
                next_note += STILL_WAITING;
                crate::say(&format!(
                    "still waiting for root device {spec} (rootwait) after {} s; block devices \
                     seen: {}",
                    waited.as_secs(),
                    list(&block)
                ));
            }
            _ => {}
        }
        std::thread::sleep(POLL);
    }
}

/// Loads the module of filesystem `fstype` unless the kernel has it: `fs-TYPE`, as the kernel
/// asks for it, else a module named `TYPE`.
fn load_filesystem(ctx: &mut Context, fstype: &str, proc: &Path) {
    if kernel_filesystems(proc).contains(fstype) {
        return;
    }
    let kernel = LinuxKernel::new();
    for name in [format!("fs-{fstype}"), fstype.to_owned()] {
        let Ok(ids) = ctx.lookup(&name) else {
            continue;
        };
        if ids.is_empty() {
            continue;
        }
        let mut messages = Messages::default();
        for id in ids {
            let _ = modkit::probe(
                ctx,
                &kernel,
                id,
                "",
                &ProbeOptions::default(),
                &mut messages,
                &mut NoShell,
            );
        }
        for message in messages.0 {
            crate::say(&message);
        }
        return;
    }
}

/// Finds the root device, loads its filesystem and mounts it on [`SYSROOT`].
pub fn mount_root(args: &BootArgs, cmdline: &str, paths: &Paths) -> Result<Mounted, Failure> {
    let spec = match (&args.root, &args.bad_root) {
        (Some(spec), _) => spec.clone(),
        (None, Some(bad)) => return Err(Failure::BadRoot(bad.clone())),
        (None, None) => return Err(Failure::NoRoot),
    };
    let mut ctx = open_modules(paths, cmdline)?;
    if let Some(delay) = args.delay {
        std::thread::sleep(delay);
    }
    let (device, found_after) = wait_for_root(args, &spec, &mut ctx, paths)?;
    let fstype = match (&args.rootfstype, &device.fs) {
        (Some(fstype), _) => fstype.clone(),
        (None, Some(fs)) => fs.fstype.to_owned(),
        (None, None) => return Err(Failure::UnknownFilesystem(Box::new(device))),
    };
    load_filesystem(&mut ctx, &fstype, &paths.proc);
    std::fs::create_dir_all(SYSROOT)
        .map_err(|err| Failure::Setup(format!("creating {SYSROOT}: {err}")))?;
    let mut flags = MountFlags::empty();
    if args.read_only {
        flags |= MountFlags::RDONLY;
    }
    let mut mount = Mount::builder().fstype(fstype.as_str()).flags(flags);
    if let Some(data) = &args.rootflags {
        mount = mount.data(data);
    }
    if let Err(cause) = mount.mount(paths.dev.join(&device.name), SYSROOT) {
        let known_to_kernel = kernel_filesystems(&paths.proc).contains(&fstype);
        return Err(Failure::Mount {
            device: Box::new(device),
            fstype,
            cause,
            known_to_kernel,
        });
    }
    Ok(Mounted {
        device,
        fstype,
        found_after,
        loaded: loaded_modules(&paths.proc).len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::probe::Filesystem;

    #[test]
    fn failure_lines() {
        let vda = BlockDevice {
            name: "vda".into(),
            devnum: Some((254, 0)),
            partition: None,
            fs: Some(Filesystem {
                fstype: "ext4",
                uuid: Some("0a1b".into()),
                label: None,
            }),
            part_id: None,
            error: None,
        };
        let failure = Failure::RootNotFound {
            spec: RootSpec::Uuid("1234".into()),
            waited: Duration::from_secs(10),
            seen: vec![vda.clone()],
            loaded: vec!["virtio_pci".into(), "virtio_blk".into()],
            failed: vec!["nvme (No such device)".into()],
        };
        assert_eq!(
            failure.to_string(),
            "root device UUID=1234 did not appear in 10 s; block devices seen: vda (ext4 \
             UUID=0a1b); modules loaded: virtio_pci, virtio_blk; modules that failed: nvme (No \
             such device)"
        );
        let failure = Failure::RootNotFound {
            spec: RootSpec::Label("root".into()),
            waited: Duration::from_secs(3),
            seen: vec![],
            loaded: vec![],
            failed: vec![],
        };
        assert_eq!(
            failure.to_string(),
            "root device LABEL=root did not appear in 3 s; block devices seen: none; modules \
             loaded: none"
        );
        let failure = Failure::Mount {
            device: Box::new(vda),
            fstype: "ext4".into(),
            cause: std::io::Error::from_raw_os_error(libc::ENODEV),
            known_to_kernel: false,
        };
        assert_eq!(
            failure.to_string(),
            "mounting /dev/vda (ext4) on /sysroot failed: No such device; the kernel has no \
             ext4 filesystem (is its module in the image?)"
        );
        assert!(
            Failure::NoModules {
                release: "6.1.0-57-amd64".into(),
                present: vec!["6.12.117+deb12-amd64".into()]
            }
            .to_string()
            .contains("(/lib/modules has: 6.12.117+deb12-amd64)")
        );
    }

    #[test]
    fn missing_root_is_said_first() {
        let paths = Paths {
            sys: "/nonexistent/sys".into(),
            dev: "/nonexistent/dev".into(),
            proc: "/nonexistent/proc".into(),
            modules: "/nonexistent/lib/modules".into(),
        };
        let err = mount_root(&BootArgs::parse("quiet"), "quiet", &paths).unwrap_err();
        assert!(matches!(err, Failure::NoRoot), "{err}");
        let err = mount_root(&BootArgs::parse("root=sda"), "root=sda", &paths).unwrap_err();
        assert!(
            matches!(err, Failure::BadRoot(ref v) if v == "sda"),
            "{err}"
        );
        let err = mount_root(&BootArgs::parse("root=/dev/sda"), "", &paths).unwrap_err();
        assert!(
            matches!(err, Failure::NoModules { ref present, .. } if present.is_empty()),
            "{err}"
        );
    }
}
