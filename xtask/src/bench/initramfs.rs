//! `cargo xtask bench initramfs`: `modkit initramfs` side by side with the anchors of issue 10,
//! Debian's `mkinitramfs` (initramfs-tools, MODULES=dep and MODULES=most) and `dracut`
//! (`--hostonly` and `--no-hostonly`), on the same cached Debian kernel tree, for the same
//! device set (`vmtest::root::device_set` and [`ROOT_FS`]), all compressed with zstd at level 9: build wall
//! time (medians; the anchors take seconds to a minute, so they run fewer times), image size,
//! module files in the image, and whether the device set's drivers are in it. The goals: build
//! time at most 0.1 of the faster anchor, image at most half of MODULES=dep's, boot-to-root no
//! slower than either (measured by the VM `root` scenario, from [`build_anchor_images`]).
//!
//! The anchors never see the host's `/lib/modules`: each runs in a private mount namespace
//! (`unshare --mount`, `tools::PRIVATE_MODULES`) where `/lib` is an overlay whose `modules` is a tmpfs
//! holding only a bind mount of a scratch copy of the Debian tree (hard links, indexed by kmod's
//! depmod; the cache is never written), and `/boot` is the tree's `boot/` (mkinitramfs reads
//! `/boot/config-VERSION` to check the kernel can unpack zstd), both read-only (the module files
//! are hard links into the cache). An anchor's wall time includes setting up its namespace (a few
//! mounts: milliseconds). Their configuration is private too (`mkinitramfs -d DIR`, `dracut --conf
//! FILE --confdir DIR`), their scratch files and images stay under `target/bench-initramfs/`. The
//! packages are installed with apt when missing (`initramfs-tools-core`, not `initramfs-tools`,
//! which conflicts with dracut; its postinst only writes `/etc/initramfs-tools/modules`, and
//! neither package builds an image for the host when installed). An anchor that cannot run is shown
//! with why; under CI it is an error.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::kernels::{self, KernelTree, Series};
// The device set: the root scenarios' controllers and the devices behind them
// (`vmtest::root::CONTROLLERS`, with where each modalias comes from in QEMU's source).
use crate::vmtest::root::device_set;

/// Boot-to-root at most the faster anchor's.
const GOAL_BOOT: f64 = 1.0;

/// The root filesystem of the device set's disk.
pub const ROOT_FS: &str = "ext4";

/// The zstd level every builder is given (mkinitramfs's default for zstd, modkit's
/// `modkit_cpio::ZSTD_LEVEL`; dracut's own default would be 15).
const ZSTD_LEVEL: i32 = 9;

/// The goals of issue 10: modkit's build time over the faster anchor's, its image over
/// MODULES=dep's.
const GOAL_TIME: f64 = 0.1;
const GOAL_SIZE: f64 = 0.5;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kernel series: 6.1, 6.12 or all
    #[arg(long, default_value = "all")]
    kernel: String,
    /// Runs of each modkit build (the median is reported)
    #[arg(long, short = 'n', default_value_t = 5)]
    runs: usize,
    /// Runs of each anchor build (the median is reported); each takes seconds to a minute
    #[arg(long, default_value_t = 1)]
    anchor_runs: usize,
}

/// Who builds an image, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builder {
    /// `modkit initramfs --device-alias ... --fs ext4`.
    Modkit,
    /// `modkit initramfs --generic --fs ext4`.
    ModkitGeneric,
    /// `mkinitramfs` with MODULES=dep.
    MkinitramfsDep,
    /// `mkinitramfs` with MODULES=most.
    MkinitramfsMost,
    /// `dracut --hostonly`.
    DracutHostonly,
    /// `dracut --no-hostonly`.
    DracutGeneric,
}

impl Builder {
    pub const ALL: [Builder; 6] = [
        Builder::Modkit,
        Builder::ModkitGeneric,
        Builder::MkinitramfsDep,
        Builder::MkinitramfsMost,
        Builder::DracutHostonly,
        Builder::DracutGeneric,
    ];

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            Builder::Modkit => "modkit (device set)",
            Builder::ModkitGeneric => "modkit --generic",
            Builder::MkinitramfsDep => "mkinitramfs MODULES=dep",
            Builder::MkinitramfsMost => "mkinitramfs MODULES=most",
            Builder::DracutHostonly => "dracut --hostonly",
            Builder::DracutGeneric => "dracut --no-hostonly",
        }
    }

    /// A file-name-safe name, for its image and log.
    pub fn slug(self) -> &'static str {
        match self {
            Builder::Modkit => "modkit",
            Builder::ModkitGeneric => "modkit-generic",
            Builder::MkinitramfsDep => "mkinitramfs-dep",
            Builder::MkinitramfsMost => "mkinitramfs-most",
            Builder::DracutHostonly => "dracut-hostonly",
            Builder::DracutGeneric => "dracut-generic",
        }
    }

    /// One of Debian's tools, not modkit.
    pub fn is_anchor(self) -> bool {
        !matches!(self, Builder::Modkit | Builder::ModkitGeneric)
    }

    /// An image for any machine, not for the device set only.
    pub fn is_generic(self) -> bool {
        matches!(
            self,
            Builder::ModkitGeneric | Builder::MkinitramfsMost | Builder::DracutGeneric
        )
    }

    fn package(self) -> Option<&'static str> {
        match self {
            Builder::Modkit | Builder::ModkitGeneric => None,
            Builder::MkinitramfsDep | Builder::MkinitramfsMost => Some("initramfs-tools-core"),
            Builder::DracutHostonly | Builder::DracutGeneric => Some("dracut-core"),
        }
    }

    /// What it is given, in words, for the report (`drivers`: the device set's modules,
    /// `builtin`: its drivers built into the kernel).
    fn given(self, drivers: &[String], builtin: &[String]) -> String {
        let builtin = match builtin {
            [] => String::new(),
            _ => format!(" ({} built into this kernel)", builtin.join(" ")),
        };
        let drivers = drivers.join(" ");
        let level = ZSTD_LEVEL;
        let dep = self == Builder::MkinitramfsDep;
        let hostonly = self == Builder::DracutHostonly;
        match self {
            Builder::Modkit => format!(
                "--device-alias for each of the {} modaliases of the device set (their modules: \
                 {drivers}{builtin}), --fs {ROOT_FS}, --compress zstd (level {level}, a worker per CPU up to 4), --init modkit-init",
                device_set().count()
            ),
            Builder::ModkitGeneric => {
                format!(
                    "--generic --fs {ROOT_FS} --compress zstd (level {level}, a worker per CPU up to 4), --init modkit-init"
                )
            }
            Builder::MkinitramfsDep | Builder::MkinitramfsMost => format!(
                "-d PRIVATE: initramfs.conf as Debian's but MODULES={} COMPRESS=zstd \
                 COMPRESSLEVEL={level} (zstd -T0); its `modules` file lists the device set's \
                 modules ({drivers}){builtin}, honoured in every MODULES mode{}; busybox not \
                 installed (BUSYBOX=auto, klibc)",
                if dep { "dep" } else { "most" },
                if dep {
                    "; dep also adds what the build machine's own root device and loaded \
                     modules need, as seen through its /sys"
                } else {
                    ""
                }
            ),
            Builder::DracutHostonly | Builder::DracutGeneric => format!(
                "{} --add-drivers \"{drivers}\"{builtin} --kmoddir TREE --kver VERSION \
                 --compress \"zstd -q -{level} -T0\", empty --conf and --confdir{}",
                if hostonly {
                    "--hostonly"
                } else {
                    "--no-hostonly"
                },
                if hostonly {
                    "; hostonly looks at the build machine, not the VM"
                } else {
                    ""
                }
            ),
        }
    }
}

/// What the bench gives every builder.
#[derive(Debug, Clone)]
pub struct Options {
    /// The release `modkit` binary.
    pub modkit: PathBuf,
    /// The static modkit-init its images get as `/init`.
    pub init: PathBuf,
    /// Runs of each modkit build.
    pub runs: usize,
    /// Runs of each anchor build.
    pub anchor_runs: usize,
}

/// One builder's image for one kernel, or why it has none.
#[derive(Debug, Clone)]
pub struct AnchorImage {
    pub builder: Builder,
    /// What it was given (options, configuration, drivers).
    pub given: String,
    /// The image, or why none was built (the command's status and the tail of what it said).
    pub built: Result<Built, String>,
}

/// A built image and what was measured.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// The image (under `target/bench-initramfs/RELEASE/`).
    pub path: PathBuf,
    /// Wall time of each run, in seconds, in run order.
    pub seconds: Vec<f64>,
    /// The image's size in bytes.
    pub size: u64,
    /// Its archives and module files.
    pub contents: ImageContents,
    /// The device set's drivers that are not in it.
    pub missing_drivers: Vec<String>,
    /// What the tool said that a reader of the table should know (warnings, fallbacks).
    pub notes: Vec<String>,
    /// Boot-to-root in the VM (seconds from kernel start to the disk's init), or why it did
    /// not get there; `None` before [`boot_images`].
    pub boot: Option<Result<f64, String>>,
}

impl Built {
    /// The median wall time.
    pub fn median_seconds(&self) -> f64 {
        let mut t = self.seconds.clone();
        t.sort_by(f64::total_cmp);
        t[t.len() / 2]
    }
}

pub fn run(args: Args) -> Result<()> {
    ensure!(
        args.runs > 0 && args.anchor_runs > 0,
        "--runs and --anchor-runs must be at least 1"
    );
    let sh = Shell::new()?;
    let modkit = crate::tools::build_modkit(&sh, "bench initramfs")?;
    // The static programs of the VM test: modkit-init for modkit's images, the root disk's
    // init for the boots.
    let guest = crate::vmtest::build_guest(&sh)?;
    crate::vmtest::qemu::ensure_installed(&sh)?;
    let options = Options {
        modkit,
        init: guest.modkit_init.clone(),
        runs: args.runs,
        anchor_runs: args.anchor_runs,
    };
    let host_modules = lib_modules_state();
    println!(
        "bench initramfs: load average before: {}",
        crate::bench::load_average()
    );
    let mut failed = Vec::new();
    let mut unavailable = Vec::new();
    for series in Series::select(&args.kernel)? {
        let tree = kernels::ensure(&sh, series)?;
        let mut images = build_anchor_images(&sh, &tree, &options)?;
        boot_images(&sh, &tree, &guest, &mut images)?;
        report(&tree, &images, &options, &mut failed);
        for image in &images {
            if let Err(why) = &image.built {
                let what = format!("{series} {}: {}", image.builder.name(), first_line(why));
                if image.builder.is_anchor() {
                    unavailable.push(what);
                } else {
                    failed.push(what);
                }
            }
        }
    }
    println!(
        "\nbench initramfs: load average after: {}",
        crate::bench::load_average()
    );
    ensure!(
        lib_modules_state() == host_modules,
        "the host's /lib/modules changed during the bench (before: {host_modules})"
    );
    if !unavailable.is_empty() {
        let what = format!("anchors that could not run: {}", unavailable.join("; "));
        if modkit_testkit::under_ci() {
            bail!("{what} (under CI an anchor that cannot run is an error)");
        }
        println!("\nbench initramfs: {what}");
    }
    if !failed.is_empty() {
        bail!("goals missed or not checked: {}", failed.join("; "));
    }
    Ok(())
}

/// Boots every built image in QEMU (TCG, as the VM test) with the root scenarios' ext4 disk on
/// virtio-blk, `root=UUID=...`, and records the boot-to-root time the disk's init reports: the
/// same kernel, disk, machine and command line for every builder.
fn boot_images(
    sh: &Shell,
    tree: &KernelTree,
    guest: &crate::vmtest::Guest,
    images: &mut [AnchorImage],
) -> Result<()> {
    use crate::vmtest::root;
    let dir = target_dir()
        .join("bench-initramfs")
        .join(&tree.release)
        .join("boot");
    std::fs::create_dir_all(&dir)?;
    let programs = root::Programs {
        modkit: guest.modkit.clone(),
        init: guest.modkit_init.clone(),
        disk_init: guest.root_init.clone(),
    };
    let disk = root::write_disk(sh, &programs, &dir)?;
    let boot_image = crate::vmtest::cached_vmlinux(tree)?;
    let kernel = root::Kernel {
        release: &tree.release,
        boot_image: &boot_image,
        tree: &tree.root,
    };
    let settings = root::Settings {
        accel: crate::vmtest::qemu::Accel::Tcg,
        timeout: std::time::Duration::from_secs(180),
        verbose: false,
    };
    let spec = format!("UUID={}", root::DISK_UUID);
    for image in images.iter_mut() {
        let Ok(built) = &mut image.built else {
            continue;
        };
        println!(
            "bench initramfs {}: booting {}'s image to the root disk",
            tree.series,
            image.builder.name()
        );
        let target = root::Target {
            name: image.builder.slug(),
            initrd: &built.path,
            disk: &disk,
            disk_on: "virtio",
            spec: &spec,
        };
        let (console, problems) = root::boot_console(sh, &target, &kernel, &dir, settings)?;
        let report = crate::vmtest::report::parse(&console, &[image.builder.slug()]);
        // The disk's init ran (and said when): that is the time, whatever its checks found.
        if !report.passed() {
            built.notes.push(format!(
                "the root disk's init ran, but not every check of it passed: {}",
                report
                    .scenarios
                    .iter()
                    .flat_map(|s| &s.transcript)
                    .filter(|l| l.starts_with("FAIL"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        built.boot = Some(match root::boot_to_root(&report) {
            Some(seconds) if problems.is_empty() => Ok(seconds),
            _ => {
                let tail: Vec<&str> = console.lines().rev().take(3).collect();
                Err(format!(
                    "did not reach the disk's init ({}); console ends: {}",
                    problems
                        .iter()
                        .chain(&report.problems)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join("; "),
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ))
            }
        });
    }
    Ok(())
}

/// Build every [`Builder`]'s image for `tree` (modkit's `options.runs` times, each anchor's
/// `options.anchor_runs` times, interleaved), keep the last of each under
/// `target/bench-initramfs/RELEASE/`, and measure it. An anchor that cannot be installed or
/// fails is an [`AnchorImage`] with `built: Err(why)`; only the set-up (the scratch tree, the
/// device set's drivers) is an error.
pub fn build_anchor_images(
    sh: &Shell,
    tree: &KernelTree,
    options: &Options,
) -> Result<Vec<AnchorImage>> {
    let release = tree.release.as_str();
    let scratch = crate::cache_dir()
        .join("bench")
        .join(format!("initramfs-{release}"));
    let root = scratch.join("root");
    let kmod = crate::tools::Kmod::find()?;
    let moddir = crate::tools::kmod_indexed_root(sh, &kmod, &tree.modules_dir, &root, release)?;
    let (drivers, builtin) = device_set_drivers(sh, &root, &moddir, release)?;
    let out = target_dir().join("bench-initramfs").join(release);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    for dir in ["tmp", "ns", "logs"] {
        std::fs::create_dir_all(out.join(dir))?;
    }
    let setup = Setup {
        tree,
        root: &root,
        moddir: &moddir,
        drivers: &drivers,
        out: &out,
        modkit: &options.modkit,
        init: &options.init,
    };

    let mut images: Vec<AnchorImage> = Builder::ALL
        .iter()
        .map(|&builder| {
            let installed = builder.package().map_or(Ok(()), |p| install(sh, p));
            AnchorImage {
                builder,
                given: builder.given(&drivers, &builtin),
                built: installed.map(|()| Built {
                    path: out.join(format!("{}.img", builder.slug())),
                    ..Built::default()
                }),
            }
        })
        .collect();
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); images.len()];
    let runs_of = |b: Builder| {
        if b.is_anchor() {
            options.anchor_runs
        } else {
            options.runs
        }
    };
    let most = options.runs.max(options.anchor_runs);
    for run in 0..most {
        for (image, times) in images.iter_mut().zip(&mut seconds) {
            if run >= runs_of(image.builder) || image.built.is_err() {
                continue;
            }
            println!(
                "bench initramfs {}: {} (run {} of {})",
                tree.series,
                image.builder.name(),
                run + 1,
                runs_of(image.builder)
            );
            match setup.build(sh, image.builder) {
                Ok((time, notes)) => {
                    times.push(time);
                    if let Ok(built) = &mut image.built {
                        built.notes = notes;
                    }
                }
                Err(why) => image.built = Err(why),
            }
        }
    }
    for (image, times) in images.iter_mut().zip(seconds) {
        if let Ok(built) = &mut image.built {
            built.seconds = times;
            let bytes = std::fs::read(&built.path)
                .with_context(|| format!("reading {}", built.path.display()))?;
            built.size = bytes.len() as u64;
            match read_image(&bytes) {
                Ok(contents) => {
                    let names = contents.module_names();
                    built.missing_drivers = drivers
                        .iter()
                        .filter(|d| !names.contains(d.as_str()))
                        .cloned()
                        .collect();
                    built.contents = contents;
                }
                Err(err) => {
                    image.built = Err(format!("{}: {err:#}", built.path.display()));
                }
            }
        }
    }
    Ok(images)
}

/// The device set's drivers in `root`'s tree, as kmod's `modprobe -R` resolves each modalias
/// and `fs-ROOT_FS` (no configuration), each once, in order: what the anchors are given. An
/// alias no module matches must have its `DeviceAlias::driver` built in (in
/// `modules.builtin`: 6.12 builds virtio_pci in, and a built-in driver's aliases are not
/// recorded); the second list is those built-in drivers.
fn device_set_drivers(
    sh: &Shell,
    root: &Path,
    moddir: &Path,
    release: &str,
) -> Result<(Vec<String>, Vec<String>)> {
    let modprobe = crate::tools::Kmod::find()?.modprobe;
    let empty = root.join("modprobe.d");
    std::fs::create_dir_all(&empty)?;
    let builtin_list = moddir.join("modules.builtin");
    let builtin_list = std::fs::read_to_string(&builtin_list)
        .with_context(|| format!("reading {}", builtin_list.display()))?;
    let builtin_names = builtin_names(&builtin_list);
    let fs = format!("fs-{ROOT_FS}");
    let (mut modules, mut builtin) = (Vec::new(), Vec::new());
    let add = |list: &mut Vec<String>, name: &str| {
        if !list.iter().any(|d| d == name) {
            list.push(name.to_owned());
        }
    };
    let wanted = device_set().map(|d| (d.modalias, d.driver));
    for (alias, driver) in wanted.chain([(fs.as_str(), ROOT_FS)]) {
        let found = cmd!(
            sh,
            "{modprobe} -d {root} -S {release} -C {empty} -R {alias}"
        )
        .quiet()
        .ignore_status()
        .ignore_stderr()
        .read()
        .with_context(|| format!("kmod's modprobe -R {alias} in {}", root.display()))?;
        if !found.trim().is_empty() {
            found.split_whitespace().for_each(|n| add(&mut modules, n));
        } else if builtin_names.contains(driver) {
            add(&mut builtin, driver);
        } else {
            bail!(
                "{alias}: no module in {} (kmod's modprobe -R), and {driver} is not in its \
                 modules.builtin",
                moddir.display()
            );
        }
    }
    Ok((modules, builtin))
}

/// The module names of a `modules.builtin` (one module path a line).
fn builtin_names(modules_builtin: &str) -> BTreeSet<String> {
    modules_builtin
        .lines()
        .filter_map(modkit_glob::name::path_to_modname)
        .collect()
}

/// Install `package` with apt when it is not installed; `Err(why)` when it cannot be.
fn install(sh: &Shell, package: &str) -> Result<(), String> {
    // zstd: the compressor both anchors call (initramfs-tools only recommends it and falls
    // back to gzip without it); util-linux: unshare.
    let needed = [package, "zstd", "util-linux"];
    let missing: Vec<&str> = needed
        .into_iter()
        .filter(|p| {
            let status = "${Status}";
            !cmd!(sh, "dpkg-query -W -f {status} {p}")
                .quiet()
                .ignore_stderr()
                .read()
                .is_ok_and(|s| s.trim() == "install ok installed")
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::tools::is_root(sh) {
        return Err(format!(
            "{} not installed, and not root to install it (apt-get install \
             --no-install-recommends {})",
            missing.join(", "),
            missing.join(" ")
        ));
    }
    println!(
        "bench initramfs: installing {} with apt-get",
        missing.join(" ")
    );
    let apt = || {
        let missing = &missing;
        cmd!(
            sh,
            "apt-get install -y -q --no-install-recommends {missing...}"
        )
        .env("DEBIAN_FRONTEND", "noninteractive")
        .quiet()
        .ignore_stdout()
        .run()
    };
    apt()
        .or_else(|_| {
            crate::tools::apt_update(sh, "bench initramfs")?;
            apt().map_err(anyhow::Error::from)
        })
        .map_err(|err| format!("apt-get install {} failed: {err:#}", missing.join(" ")))
}

/// The inputs every build of one kernel shares.
struct Setup<'a> {
    tree: &'a KernelTree,
    /// The scratch root (`root/lib/modules/RELEASE`: `moddir`).
    root: &'a Path,
    moddir: &'a Path,
    drivers: &'a [String],
    /// `target/bench-initramfs/RELEASE`: images, logs, the anchors' temporary files.
    out: &'a Path,
    modkit: &'a Path,
    /// modkit-init, the `/init` of modkit's images.
    init: &'a Path,
}

impl Setup<'_> {
    /// Build `builder`'s image once: its wall time and its notes, or why it failed.
    fn build(&self, sh: &Shell, builder: Builder) -> Result<(f64, Vec<String>), String> {
        let command = self
            .command(sh, builder)
            .map_err(|err| format!("{err:#}"))?;
        let start = Instant::now();
        let output = command.ignore_status().output();
        let seconds = start.elapsed().as_secs_f64();
        let output = output.map_err(|err| format!("could not run: {err:#}"))?;
        let log = self
            .out
            .join("logs")
            .join(format!("{}.log", builder.slug()));
        let mut text = output.stdout.clone();
        text.extend_from_slice(&output.stderr);
        let _ = std::fs::write(&log, &text);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() {
            let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            return Err(format!(
                "{} ({}); last lines of its stderr: {}",
                output.status,
                log.display(),
                tail.join(" | ")
            ));
        }
        let image = self.out.join(format!("{}.img", builder.slug()));
        if !image.is_file() {
            return Err(format!("exited 0 but wrote no {}", image.display()));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        Ok((seconds, notes(builder, &format!("{stdout}\n{stderr}"))))
    }

    fn command<'s>(&self, sh: &'s Shell, builder: Builder) -> Result<xshell::Cmd<'s>> {
        let release = self.tree.release.as_str();
        let (root, moddir, modkit, init) = (self.root, self.moddir, self.modkit, self.init);
        let image = self.out.join(format!("{}.img", builder.slug()));
        let tmp = self.out.join("tmp");
        let ns = self.out.join("ns");
        let boot = self.tree.root.join("boot");
        let script = crate::tools::PRIVATE_MODULES;
        let fs = ROOT_FS;
        let level = ZSTD_LEVEL.to_string();
        Ok(match builder {
            Builder::Modkit => {
                let aliases = device_set().flat_map(|d| ["--device-alias", d.modalias]);
                cmd!(
                    sh,
                    "{modkit} initramfs -b {root} -k {release} -o {image} --init {init} --compress zstd {aliases...} --fs {fs}"
                )
            }
            Builder::ModkitGeneric => cmd!(
                sh,
                "{modkit} initramfs -b {root} -k {release} -o {image} --init {init} --compress zstd --generic --fs {fs}"
            ),
            Builder::MkinitramfsDep | Builder::MkinitramfsMost => {
                let modules = if builder == Builder::MkinitramfsDep {
                    "dep"
                } else {
                    "most"
                };
                let conf = self.out.join(format!("{}.conf.d", builder.slug()));
                for dir in ["conf.d", "hooks", "scripts"] {
                    std::fs::create_dir_all(conf.join(dir))?;
                }
                // Debian's initramfs.conf, with MODULES and the compression set.
                std::fs::write(
                    conf.join("initramfs.conf"),
                    format!(
                        "MODULES={modules}\nBUSYBOX=auto\nKEYMAP=n\nCOMPRESS=zstd\n\
                         COMPRESSLEVEL={level}\nDEVICE=\nNFSROOT=auto\nRUNSIZE=10%\nFSTYPE=auto\n"
                    ),
                )?;
                std::fs::write(conf.join("modules"), self.drivers.join("\n") + "\n")?;
                cmd!(
                    sh,
                    "unshare --mount --propagation private sh -euc {script} modkit-bench-ns {ns} {moddir} {release} {boot} /usr/sbin/mkinitramfs -d {conf} -o {image} {release}"
                )
                .env("TMPDIR", &tmp)
            }
            Builder::DracutHostonly | Builder::DracutGeneric => {
                let conf = self.out.join("dracut.conf");
                let confdir = self.out.join("dracut.conf.d");
                std::fs::write(&conf, "")?;
                std::fs::create_dir_all(&confdir)?;
                let mode = if builder == Builder::DracutHostonly {
                    "--hostonly"
                } else {
                    "--no-hostonly"
                };
                let drivers = self.drivers.join(" ");
                let compress = format!("zstd -q -{level} -T0");
                cmd!(
                    sh,
                    "unshare --mount --propagation private sh -euc {script} modkit-bench-ns {ns} {moddir} {release} {boot} /usr/bin/dracut --conf {conf} --confdir {confdir} --tmpdir {tmp} --kmoddir {moddir} --kver {release} {mode} --add-drivers {drivers} --compress {compress} --force {image}"
                )
            }
        })
    }
}

/// What a successful run said (`output`: its stdout, then its stderr) that changes how its
/// row reads: dracut's warnings and its fallback from host-only driver selection; anything
/// mkinitramfs or modkit said. At most 4 lines, each cut at 200 characters.
fn notes(builder: Builder, output: &str) -> Vec<String> {
    let mut notes: Vec<String> = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let keep = match builder {
            Builder::DracutHostonly | Builder::DracutGeneric => {
                line.contains("WARNING") || line.contains("Switching to non-hostonly")
            }
            Builder::Modkit | Builder::ModkitGeneric => line.contains("WARNING"),
            Builder::MkinitramfsDep | Builder::MkinitramfsMost => true,
        };
        let line = match line.char_indices().nth(200) {
            Some((cut, _)) => format!("{}...", &line[..cut]),
            None => line.to_owned(),
        };
        if keep && !notes.contains(&line) {
            notes.push(line);
        }
    }
    notes.truncate(4);
    notes
}

/// What an initramfs image holds: the format of each of its parts and its module files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageContents {
    /// Each part in file order: `cpio` (uncompressed, such as an early microcode archive),
    /// `zstd`, `xz` or `gzip`.
    pub parts: Vec<&'static str>,
    /// The paths of the module files (`*.ko`, `*.ko.xz`, ... under a `lib/modules/`).
    pub modules: Vec<String>,
    /// Their size in the archive (as stored: compressed modules compressed), in bytes.
    pub module_bytes: u64,
}

impl ImageContents {
    /// The module names of [`ImageContents::modules`] (kmod's name rules).
    pub fn module_names(&self) -> BTreeSet<String> {
        self.modules
            .iter()
            .filter_map(modkit_glob::name::path_to_modname)
            .collect()
    }
}

/// Read an image as the kernel unpacks it: newc archives one after another, each padded with
/// zeros, uncompressed (an early microcode archive) or compressed. A compressed part runs to
/// the end of the file (its length is not recorded; zstd's concatenated frames are all read),
/// and may itself hold several archives.
pub fn read_image(bytes: &[u8]) -> Result<ImageContents> {
    let mut contents = ImageContents::default();
    let mut pos = 0;
    loop {
        pos += bytes[pos..].iter().take_while(|&&b| b == 0).count();
        let rest = &bytes[pos..];
        if rest.is_empty() {
            break;
        }
        if rest.starts_with(b"070701") {
            let end = read_archive(rest, &mut contents)
                .with_context(|| format!("the archive at offset {pos}"))?;
            contents.parts.push("cpio");
            pos += end;
            continue;
        }
        let format = modkit_elf::detect_compression(rest);
        ensure!(
            format != modkit_elf::Compression::None,
            "offset {pos}: neither a newc archive nor zstd, xz or gzip"
        );
        let data = modkit_elf::decompress(rest, 4 << 30)
            .with_context(|| format!("decompressing the {format} part at offset {pos}"))?;
        let mut at = 0;
        while at < data.len() {
            at += read_archive(&data[at..], &mut contents).with_context(|| {
                format!("the {format} part at offset {pos}, archive at offset {at} in it")
            })?;
            at += data[at..].iter().take_while(|&&b| b == 0).count();
        }
        contents.parts.push(format.name());
        break;
    }
    ensure!(!contents.parts.is_empty(), "an empty image");
    Ok(contents)
}

/// Read the archive at the start of `bytes`, add its module files to `contents`, and return
/// where it ends.
fn read_archive(bytes: &[u8], contents: &mut ImageContents) -> Result<usize> {
    let (members, end) = modkit_cpio::read(bytes)?;
    for member in members.iter().filter(|m| m.is_file()) {
        let path = String::from_utf8_lossy(member.name);
        if path.contains("lib/modules/") && modkit_glob::name::path_ends_with_kmod_ext(&*path) {
            contents.modules.push(path.into_owned());
            contents.module_bytes += member.data.len() as u64;
        }
    }
    Ok(end)
}

/// Print one kernel's table, what each builder was given, and the goals; push each goal
/// missed or not checkable to `failed`.
fn report(tree: &KernelTree, images: &[AnchorImage], options: &Options, failed: &mut Vec<String>) {
    let series = tree.series;
    println!(
        "\nbench initramfs {series} ({}): the device set ({} modaliases) + {ROOT_FS}, zstd level \
         {ZSTD_LEVEL} for all; medians of {} modkit run(s) and {} anchor run(s), wall time",
        tree.release,
        device_set().count(),
        options.runs,
        options.anchor_runs
    );
    println!(
        "  {:<26} {:>9} {:>10} {:>8} {:>12} {:>8}  {:<10} set's drivers",
        "builder", "time s", "size KiB", "modules", "modules KiB", "boot s", "parts"
    );
    for image in images {
        match &image.built {
            Ok(b) => println!(
                "  {:<26} {:>9.3} {:>10} {:>8} {:>12} {:>8}  {:<10} {}",
                image.builder.name(),
                b.median_seconds(),
                b.size / 1024,
                b.contents.modules.len(),
                b.contents.module_bytes / 1024,
                match &b.boot {
                    Some(Ok(seconds)) => format!("{seconds:.2}"),
                    Some(Err(_)) => "FAILED".to_owned(),
                    None => "-".to_owned(),
                },
                b.contents.parts.join("+"),
                if b.missing_drivers.is_empty() {
                    "all".to_owned()
                } else {
                    format!("MISSING {}", b.missing_drivers.join(" "))
                }
            ),
            Err(why) => println!("  {:<26} FAILED: {why}", image.builder.name()),
        }
    }
    println!("  given:");
    for image in images {
        println!("    {}: {}", image.builder.name(), image.given);
        if let Ok(b) = &image.built {
            for note in &b.notes {
                println!("      it said: {note}");
            }
            if let Some(Err(why)) = &b.boot {
                println!("      boot: {why}");
            }
        }
    }
    println!(
        "  boot s: kernel start to the root disk's init (CLOCK_BOOTTIME), QEMU TCG, the disk on \
         virtio-blk, root=UUID=..."
    );

    let built = |b: Builder| {
        images
            .iter()
            .find(|i| i.builder == b)
            .and_then(|i| i.built.as_ref().ok())
    };
    let mut goal = |what: String, value: Option<f64>, goal: f64, why_not: &str| match value {
        Some(v) => {
            let ok = v <= goal;
            println!(
                "  {what:<58} {v:>7.3}  (goal <= {goal}) {}",
                if ok { "met" } else { "NOT MET" }
            );
            if !ok {
                failed.push(format!("{series} {what}"));
            }
        }
        None => {
            println!("  {what:<58} NOT CHECKED: {why_not}");
            failed.push(format!("{series} {what} (not checked)"));
        }
    };
    let fastest = |generic_only: bool| {
        images
            .iter()
            .filter(|i| i.builder.is_anchor() && (!generic_only || i.builder.is_generic()))
            .filter_map(|i| Some((i.builder, i.built.as_ref().ok()?.median_seconds())))
            .min_by(|a, b| a.1.total_cmp(&b.1))
    };
    let zstd = |b: &Built| b.contents.parts.last() == Some(&"zstd");
    println!("  goals:");
    let ours = built(Builder::Modkit);
    match fastest(false) {
        Some((anchor, secs)) => goal(
            format!("build time / faster anchor's ({})", anchor.name()),
            ours.map(|o| o.median_seconds() / secs),
            GOAL_TIME,
            "modkit built no image",
        ),
        None => goal(
            "build time / faster anchor's".into(),
            None,
            GOAL_TIME,
            "no anchor built an image",
        ),
    }
    let dep = built(Builder::MkinitramfsDep);
    let comparable = ours.zip(dep).filter(|(o, d)| zstd(o) && zstd(d));
    goal(
        format!("image size / {}'s", Builder::MkinitramfsDep.name()),
        comparable.map(|(o, d)| o.size as f64 / d.size as f64),
        GOAL_SIZE,
        "an image is missing or not zstd-compressed",
    );
    println!(
        "    (modkit's image: modkit-init as /init, the modules, their indexes and modprobe.d \
         lines; the anchors' carry klibc or udev, shell scripts and libraries)"
    );
    let booted = |b: &Built| b.boot.as_ref().and_then(|r| r.as_ref().ok()).copied();
    let fastest_boot = images
        .iter()
        .filter(|i| i.builder.is_anchor())
        .filter_map(|i| Some((i.builder, booted(i.built.as_ref().ok()?)?)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    match fastest_boot {
        Some((anchor, secs)) => goal(
            format!("boot-to-root / faster anchor's ({})", anchor.name()),
            ours.and_then(booted).map(|o| o / secs),
            GOAL_BOOT,
            "modkit's image did not boot to the root disk",
        ),
        None => goal(
            "boot-to-root / faster anchor's".into(),
            None,
            GOAL_BOOT,
            "no anchor's image booted to the root disk",
        ),
    }
    println!("  for comparison (no goal of their own):");
    let generic = built(Builder::ModkitGeneric);
    if let (Some(g), Some((anchor, secs))) = (generic, fastest(true)) {
        println!(
            "  {:<58} {:>7.3}",
            format!("modkit --generic time / {}'s", anchor.name()),
            g.median_seconds() / secs
        );
    }
    for anchor in [Builder::MkinitramfsMost, Builder::DracutGeneric] {
        if let (Some(g), Some(a)) = (generic, built(anchor)) {
            println!(
                "  {:<58} {:>7.3}",
                format!("modkit --generic size / {}'s", anchor.name()),
                g.size as f64 / a.size as f64
            );
        }
    }
    for image in images {
        if let Ok(b) = &image.built
            && !zstd(b)
        {
            println!(
                "  {}: its image is {}, not zstd: sizes are not comparable",
                image.builder.name(),
                b.contents.parts.join("+")
            );
        }
    }
}

/// The first line of a message, for the summary.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// What `/lib/modules` holds on the host: the bench checks it is the same afterwards.
fn lib_modules_state() -> String {
    match std::fs::read_dir("/lib/modules") {
        Err(err) => format!("absent or unreadable ({err})"),
        Ok(entries) => {
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            format!("[{}]", names.join(", "))
        }
    }
}

/// Cargo's target directory (`$CARGO_TARGET_DIR`, or `target/` of the repository).
fn target_dir() -> PathBuf {
    let root = crate::project_root();
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use modkit_cpio::{Archive, Compression, compress};

    /// An image as mkinitramfs writes one with early microcode: an uncompressed archive, zero
    /// padding, then a compressed archive holding two concatenated archives.
    #[test]
    fn counts_modules_in_every_part_of_a_concatenated_image() {
        let mut early = Archive::new(0);
        early.file(
            "kernel/x86/microcode/GenuineIntel.bin",
            0o644,
            b"ucode".to_vec(),
        );
        let mut main = Archive::new(0);
        let m = "usr/lib/modules/6.1.0-57-amd64/kernel";
        main.file(
            &format!("{m}/drivers/block/virtio_blk.ko"),
            0o644,
            b"elf".to_vec(),
        );
        main.file(&format!("{m}/fs/ext4/ext4.ko.xz"), 0o644, b"xz".to_vec());
        main.file(
            "usr/lib/modules/6.1.0-57-amd64/modules.dep",
            0o644,
            b"x".to_vec(),
        );
        main.file("usr/bin/notamodule.ko", 0o755, b"elf".to_vec());
        main.dir(&format!("{m}/dir.ko"));
        main.symlink(&format!("{m}/link.ko"), "virtio_blk.ko");
        let mut second = Archive::new(0);
        second.file(
            &format!("{m}/drivers/nvme/host/nvme-core.ko.zst"),
            0o644,
            b"z".to_vec(),
        );

        let mut inner = main.finish();
        inner.extend_from_slice(&[0; 512]);
        inner.extend_from_slice(&second.finish());
        let mut image = early.finish();
        image.extend_from_slice(&[0; 508]);
        image.extend_from_slice(&compress(&inner, Compression::Zstd).unwrap());

        let contents = read_image(&image).unwrap();
        assert_eq!(contents.parts, ["cpio", "zstd"]);
        assert_eq!(
            contents.modules,
            [
                format!("{m}/drivers/block/virtio_blk.ko"),
                format!("{m}/fs/ext4/ext4.ko.xz"),
                format!("{m}/drivers/nvme/host/nvme-core.ko.zst"),
            ]
        );
        let names: Vec<String> = contents.module_names().into_iter().collect();
        assert_eq!(names, ["ext4", "nvme_core", "virtio_blk"]);
        assert_eq!(contents.module_bytes, 3 + 2 + 1);
    }

    #[test]
    fn reads_plain_and_each_compression() {
        let mut archive = Archive::new(0);
        archive.file("lib/modules/6.12.0/kernel/a.ko.xz", 0o644, b"a".to_vec());
        let plain = archive.finish();
        for (how, name) in [
            (Compression::None, "cpio"),
            (Compression::Gzip, "gzip"),
            (Compression::Xz, "xz"),
            (Compression::Zstd, "zstd"),
        ] {
            let contents = read_image(&compress(&plain, how).unwrap()).unwrap();
            assert_eq!(contents.parts, [name]);
            assert_eq!(contents.modules.len(), 1, "{name}");
        }
    }

    #[test]
    fn refuses_what_is_not_an_image() {
        let mut archive = Archive::new(0);
        archive.file("lib/modules/6.1/kernel/a.ko", 0o644, b"a".to_vec());
        let good = compress(&archive.finish(), Compression::Zstd).unwrap();
        for bad in [
            &b""[..],
            &[0; 16][..],
            b"not an image",
            &good[..good.len() / 2],
            b"070701 truncated",
        ] {
            assert!(read_image(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_the_built_in_modules() {
        let list = "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/nvme/host/nvme-core.ko\n\n";
        let names: Vec<String> = builtin_names(list).into_iter().collect();
        assert_eq!(names, ["nvme_core", "virtio_pci"]);
    }

    #[test]
    fn the_device_set_is_well_formed() {
        assert!(device_set().count() > 0);
        for d in device_set() {
            assert!(
                d.modalias
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'*'),
                "{}",
                d.modalias
            );
            let bus = d.modalias.split(':').next().unwrap();
            assert!(["pci", "virtio", "scsi"].contains(&bus), "{}", d.modalias);
        }
    }
}
