//! `cargo xtask vmtest`: boots Debian's kernels in QEMU with an initramfs holding modkit's static
//! tools, the sample modules and a Rust `/init` (the `vmtest` crate) that runs end-to-end
//! scenarios and prints machine-readable results; turns the console into a report.
//!
//! Per kernel: build the sample modules (`kmods::build`), extract the ELF vmlinux from the
//! bzImage for a fast PVH boot (cached), write a newc initramfs, boot under TCG with a time limit,
//! parse the console (`report::parse`). Fails on any failed scenario, panic, timeout or missing
//! verdict; QEMU's exit status means nothing (0 after a panic too).

mod check;
mod coldplug;
mod libkmod;
pub(crate) mod qemu;
pub(crate) mod report;
pub(crate) mod root;
mod storm;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use modkit_elf::bzimage;
use xshell::Shell;

use crate::kernels::{self, KernelTree, Series};
use crate::kmods::{self, BuiltModules};
use qemu::Accel;
use report::{BootReport, Status};

/// The extra kernel arguments `scenario` needs, joined; scenarios with the same needs share a
/// boot. The table is the guest's (`vmtest::SCENARIOS`).
fn kernel_args(scenario: &str) -> String {
    ::vmtest::find(scenario).map_or_else(String::new, |s| s.kernel_args.join(" "))
}

/// The time limit of a boot that runs `scenarios`: `base` (`--timeout`) plus what each of
/// them adds (`vmtest::Scenario::extra_seconds`).
fn boot_limit(base: Duration, scenarios: &[&str]) -> Duration {
    let extra: u64 = scenarios
        .iter()
        .filter_map(|name| ::vmtest::find(name))
        .map(|s| s.extra_seconds)
        .sum();
    base + Duration::from_secs(extra)
}

/// The boots that run `scenarios`: one per distinct set of kernel arguments, in the order the
/// sets first appear, each with its scenarios in the order given.
fn boots<'a>(scenarios: &[&'a str]) -> Vec<(String, Vec<&'a str>)> {
    let mut boots: Vec<(String, Vec<&'a str>)> = Vec::new();
    for &scenario in scenarios {
        let args = kernel_args(scenario);
        match boots.iter_mut().find(|(a, _)| *a == args) {
            Some((_, group)) => group.push(scenario),
            None => boots.push((args, vec![scenario])),
        }
    }
    boots
}

/// Boot Debian's kernels in QEMU and run modkit's tools in them.
///
/// Builds modkit and the guest init statically, builds the sample modules for each kernel,
/// boots each kernel under TCG with an initramfs written here, and reports each scenario.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which Debian kernel to boot.
    #[arg(long, value_name = "SERIES", default_value = "all", value_parser = ["6.1", "6.12", "all"])]
    kernel: String,

    /// Run only these scenarios (comma-separated or repeated); default: all of them.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    scenario: Vec<String>,

    /// Keep the work directory (initramfs, console logs) and print its path.
    #[arg(long)]
    keep: bool,

    /// Boot this bzImage instead of Debian's kernels (with --headers for the sample modules).
    #[arg(
        long,
        value_name = "PATH",
        requires = "headers",
        conflicts_with = "kernel"
    )]
    kernel_image: Option<PathBuf>,

    /// The headers of --kernel-image (a directory for `make -C`).
    #[arg(long, value_name = "PATH", requires = "kernel_image")]
    headers: Option<PathBuf>,

    /// How QEMU runs the guest; KVM cannot boot these kernels on some hosts (it hangs).
    #[arg(long, value_enum, default_value = "tcg")]
    accel: Accel,

    /// Seconds one boot may take before QEMU is killed and the run fails.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,

    /// Show the guest's console while it runs.
    #[arg(long, short)]
    verbose: bool,

    /// Check the harness itself: a failing scenario and a kernel panic must both be reported.
    #[arg(long, hide = true)]
    selftest: bool,
}

pub fn run(args: Args) -> Result<()> {
    let start = Instant::now();
    let sh = Shell::new()?;
    let scenarios = select_scenarios(&args.scenario)?;
    qemu::ensure_installed(&sh)?;

    let kernels = match (&args.kernel_image, &args.headers) {
        (Some(image), Some(headers)) => vec![custom_kernel(image, headers)?],
        _ => Series::select(&args.kernel)?
            .into_iter()
            .map(|series| kernels::ensure(&sh, series))
            .collect::<Result<Vec<_>>>()?,
    };
    let mut guest = build_guest(&sh)?;
    if scenarios.contains(&"libkmod") {
        let ours = libkmod::build_ours(&sh)?;
        let files = libkmod::files(&sh, &ours)?;
        eprintln!(
            "libkmod scenario: lspci, udevadm and systemd-modules-load from Debian's packages, \
             {} files with their libraries and modkit's libkmod.so.2",
            files.len()
        );
        guest.libkmod = Some(files);
    }

    let work = std::env::temp_dir().join(format!("modkit-vmtest-{}", std::process::id()));
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let result = run_in(&sh, &args, &scenarios, &kernels, &guest, &work);
    if args.keep {
        eprintln!("vmtest: work directory kept: {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    let outcome = result?;
    eprintln!(
        "vmtest: {outcome} ({:.1} s in all)",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run_in(
    sh: &Shell,
    args: &Args,
    scenarios: &[&str],
    kernels: &[KernelTree],
    guest: &Guest,
    work: &Path,
) -> Result<String> {
    let mut runs = Vec::new();
    let (root_cases, init_scenarios): (Vec<&str>, Vec<&str>) = scenarios
        .iter()
        .partition(|name| ::vmtest::root::SCENARIOS.contains(name));
    let programs = root::Programs {
        modkit: guest.modkit.clone(),
        init: guest.modkit_init.clone(),
        disk_init: guest.root_init.clone(),
    };
    let settings = root::Settings {
        accel: args.accel,
        timeout: Duration::from_secs(args.timeout),
        verbose: args.verbose,
    };
    let mut disk: Option<PathBuf> = None;
    let mut root_rows = Vec::new();
    for kernel in kernels {
        let prepared = prepare(sh, kernel, guest, work)?;
        if args.selftest {
            selftest(sh, args, &prepared)?;
            return Ok(
                "selftest passed: a failed check, a panic, init exiting and a hang were all reported".into(),
            );
        }
        let timeout = Duration::from_secs(args.timeout);
        if !root_cases.is_empty() {
            let tree = coldplug::indexed_tree(sh, &guest.modkit, kernel)?;
            let disk = match &disk {
                Some(disk) => disk.clone(),
                None => disk.insert(root::write_disk(sh, &programs, work)?).clone(),
            };
            let target = root::Kernel {
                release: &kernel.release,
                boot_image: &prepared.boot_image,
                tree: &tree,
            };
            for name in &root_cases {
                let case = root::CASES
                    .iter()
                    .find(|c| c.name == *name)
                    .with_context(|| format!("no root case for the scenario {name}"))?;
                let (report, figures) =
                    root::boot(sh, case, &programs, &target, &disk, &prepared.dir, settings)?;
                let title = format!(
                    "{}, {}: disk on {}, image for {}",
                    prepared.title(args.accel),
                    case.name,
                    case.disk_on,
                    case.image_for
                );
                println!("{}", report::render(&title, &report));
                root_rows.push(root::Row {
                    release: kernel.release.clone(),
                    case: case.name,
                    figures,
                    status: report
                        .scenarios
                        .iter()
                        .find(|s| s.name == case.name)
                        .map_or(Status::NotRun, |s| s.status),
                });
                runs.push((kernel.release.clone(), report));
            }
        }
        for (extra, group) in boots(&init_scenarios) {
            let limit = boot_limit(timeout, &group);
            let report = boot(sh, args, &prepared, &group, &extra, limit)?;
            let mut title = prepared.title(args.accel);
            if !extra.is_empty() {
                title.push_str(&format!(", with `{extra}`"));
            }
            println!("{}", report::render(&title, &report));
            runs.push((kernel.release.clone(), report));
        }
    }

    print!("{}", summary(scenarios, &runs));
    if !root_rows.is_empty() {
        print!("{}", root::table(&root_rows));
    }
    let mut failed: Vec<&str> = runs
        .iter()
        .filter(|(_, report)| !report.passed())
        .map(|(release, _)| release.as_str())
        .collect();
    failed.dedup();
    if !failed.is_empty() {
        let hint = if args.keep {
            ""
        } else {
            "; rerun with --keep to keep the console logs"
        };
        bail!("vmtest failed on {}{hint}", failed.join(", "));
    }
    let total = runs
        .iter()
        .map(|(_, report)| report.scenarios.len())
        .sum::<usize>();
    Ok(format!("all {total} scenario runs passed"))
}

/// The names of the scenarios asked for (a selftest too), or of all of `vmtest::SCENARIOS`.
fn select_scenarios(asked: &[String]) -> Result<Vec<&'static str>> {
    let all = || {
        ::vmtest::SCENARIOS
            .iter()
            .map(|s| s.name)
            .chain(::vmtest::root::SCENARIOS.iter().copied())
    };
    if asked.is_empty() {
        return Ok(all().collect());
    }
    asked
        .iter()
        .map(|name| {
            let root = ::vmtest::root::SCENARIOS.iter().find(|s| *s == name);
            let found = ::vmtest::find(name).map(|s| s.name).or(root.copied());
            found.with_context(|| {
                format!(
                    "unknown scenario `{name}` (known: {})",
                    all().collect::<Vec<_>>().join(", ")
                )
            })
        })
        .collect()
}

/// A kernel given with --kernel-image/--headers, described like one of Debian's.
fn custom_kernel(image: &Path, headers: &Path) -> Result<KernelTree> {
    let image = std::path::absolute(image).context("cannot resolve --kernel-image")?;
    let headers = std::path::absolute(headers).context("cannot resolve --headers")?;
    let bytes =
        std::fs::read(&image).with_context(|| format!("cannot read {}", image.display()))?;
    let release = bzimage::release(&bytes)
        .with_context(|| format!("{} is not a usable bzImage", image.display()))?;
    ensure!(
        headers.join("Makefile").is_file(),
        "{} has no Makefile: not kernel headers",
        headers.display()
    );
    // Only used to pick kbuild workarounds; 6.12's (no BTF for modules) are harmless elsewhere.
    let series = if release.starts_with("6.1.") {
        Series::V6_1
    } else {
        Series::V6_12
    };
    let root = headers.parent().unwrap_or(&headers).to_path_buf();
    Ok(KernelTree {
        series,
        release,
        version: "custom".into(),
        packages: vec![
            format!("image={}", image.display()),
            format!("headers={}", headers.display()),
        ],
        kbuild: headers.clone(),
        modules_dir: root.join("lib/modules/none"),
        system_map: root.join("System.map"),
        vmlinuz: image,
        root,
        headers,
    })
}

/// The static guest programs.
#[derive(Debug)]
pub(crate) struct Guest {
    pub(crate) modkit: PathBuf,
    init: PathBuf,
    /// modkit-init, the `/init` of the root scenarios' images.
    pub(crate) modkit_init: PathBuf,
    /// vmtest-root, the root disk's `/sbin/init`.
    pub(crate) root_init: PathBuf,
    /// Debian's programs that link libkmod, with modkit's library (the libkmod scenario).
    libkmod: Option<libkmod::Files>,
}

/// Builds modkit and vmtest-init statically, in their own target directory so that the host
/// build is not invalidated by the different RUSTFLAGS.
pub(crate) fn build_guest(sh: &Shell) -> Result<Guest> {
    let root = crate::project_root();
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir).join("vmtest"),
        None => root.join("target/vmtest"),
    };
    let triple = crate::tools::TRIPLE;
    eprintln!("building modkit, modkit-init and the vmtest programs (static, {triple})...");
    let _dir = sh.push_dir(&root);
    crate::tools::static_build(sh, "release", &["modkit-cli", "vmtest"])
        .arg("--target-dir")
        .arg(&target_dir)
        // Stripped, as a distribution ships them: the root scenarios report image sizes.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "symbols")
        // The tools change all the time while the VM tests run; thin LTO made every rebuild
        // take over a minute on two cores, incremental builds without LTO take seconds. Same
        // code, just not cross-crate optimised.
        .env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_INCREMENTAL", "true")
        .run()
        .context("cannot build the guest programs")?;
    // modkit-init with the `init` profile (built for size: every image carries it), as users
    // build it, so the images booted and measured are the ones they get.
    crate::tools::static_build(sh, "init", &["modkit-init"])
        .arg("--target-dir")
        .arg(&target_dir)
        .run()
        .context("cannot build modkit-init")?;
    let out = target_dir.join(triple).join("release");
    let guest = Guest {
        modkit: out.join("modkit"),
        init: out.join("vmtest-init"),
        modkit_init: target_dir.join(triple).join("init").join("modkit-init"),
        root_init: out.join("vmtest-root"),
        libkmod: None,
    };
    for binary in [
        &guest.modkit,
        &guest.init,
        &guest.modkit_init,
        &guest.root_init,
    ] {
        let bytes =
            std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
        // The check `modkit initramfs --init` makes: static, since an initramfs has no libc.
        modkit::initramfs::image::check_init(binary, &bytes)?;
    }
    Ok(guest)
}

/// One kernel, ready to boot.
#[derive(Debug)]
struct Prepared {
    release: String,
    /// How the distribution ships this kernel's modules: `ko` (Debian's 6.1) or `ko.xz` (6.12).
    module_ext: &'static str,
    /// The ELF vmlinux (PVH entry), or the bzImage when extraction failed.
    boot_image: PathBuf,
    initramfs: PathBuf,
    dir: PathBuf,
}

impl Prepared {
    fn title(&self, accel: Accel) -> String {
        format!("kernel {} ({})", self.release, accel.name())
    }
}

fn prepare(sh: &Shell, kernel: &KernelTree, guest: &Guest, work: &Path) -> Result<Prepared> {
    let modules = kmods::build(sh, kernel)?;
    let boot_image = match cached_vmlinux(kernel) {
        Ok(vmlinux) => vmlinux,
        Err(err) => {
            eprintln!(
                "note: booting the bzImage (slower): cannot extract vmlinux from {}: {err:#}",
                kernel.vmlinuz.display()
            );
            kernel.vmlinuz.clone()
        }
    };
    let dir = work.join(&kernel.release);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let initramfs = dir.join("initramfs.cpio");
    // The coldplug scenario's modules; without them (a custom kernel) only it fails.
    let coldplug_files = coldplug::modules(sh, &guest.modkit, kernel).unwrap_or_else(|err| {
        eprintln!("note: no modules for the coldplug scenario: {err:#}");
        coldplug::Files::default()
    });
    coldplug::write_disk(&dir)?;
    // The storm scenario's modules; without them (a custom kernel) only it fails.
    let storm_files = storm::modules(sh, &guest.modkit, kernel).unwrap_or_else(|err| {
        eprintln!("note: no modules for the storm scenario: {err:#}");
        coldplug::Files::default()
    });
    let check_files = check::files(sh, kernel, &modules)?;
    let archive = initramfs_for(
        guest,
        &modules,
        &kernel.release,
        &[&coldplug_files, &storm_files],
        &check_files,
    )?;
    std::fs::write(&initramfs, archive)
        .with_context(|| format!("cannot write {}", initramfs.display()))?;
    Ok(Prepared {
        release: kernel.release.clone(),
        module_ext: match kernel.series {
            Series::V6_1 => "ko",
            Series::V6_12 => "ko.xz",
        },
        boot_image,
        initramfs,
        dir,
    })
}

/// The ELF vmlinux of `kernel`, extracted once into the cache.
pub(crate) fn cached_vmlinux(kernel: &KernelTree) -> Result<PathBuf> {
    let meta = std::fs::metadata(&kernel.vmlinuz)
        .with_context(|| format!("cannot read {}", kernel.vmlinuz.display()))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let dir = std::path::absolute(crate::cache_dir())?.join("vmlinux");
    // Keyed by the image's size and time too: a rebuilt kernel of the same release is new.
    let key = format!(
        "vmlinux-{}-{:x}-{}",
        kernel.release,
        meta.len(),
        mtime.map_or(0, |t| t.as_secs())
    );
    let path = dir.join(&key);
    if path.is_file() {
        return Ok(path);
    }
    eprint!("extracting vmlinux from {}...", kernel.vmlinuz.display());
    let _ = std::io::stderr().flush();
    let started = Instant::now();
    let image = std::fs::read(&kernel.vmlinuz)?;
    let vmlinux = bzimage::extract_vmlinux(&image);
    eprintln!(
        " {}",
        if vmlinux.is_ok() {
            format!("done ({:.1} s)", started.elapsed().as_secs_f64())
        } else {
            "failed".into()
        }
    );
    let vmlinux = vmlinux?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // Older extractions of this release are stale now.
    for entry in std::fs::read_dir(&dir)?.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("vmlinux-{}-", kernel.release))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let tmp = dir.join(format!(".{key}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, vmlinux).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot rename to {}", path.display()))?;
    Ok(path)
}

/// The initramfs: `/init`, `/bin/modkit` with its links in `/sbin`, the sample modules in
/// `/kmods` (plain, and xz-compressed as kbuild does it) and the real modules' trees.
fn initramfs_for(
    guest: &Guest,
    modules: &BuiltModules,
    release: &str,
    trees: &[&coldplug::Files],
    check_files: &[(String, Vec<u8>)],
) -> Result<Vec<u8>> {
    let read = |path: &Path| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let mut archive = modkit_cpio::Archive::new(0);
    for dir in [
        "bin",
        "sbin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "kmods",
        "lib",
        "lib/modules",
    ] {
        archive.dir(dir);
    }
    archive.dir(&format!("lib/modules/{release}"));
    archive.char_device("dev/console", 0o600, 5, 1);
    archive.file("init", 0o755, read(&guest.init)?);
    archive.file(in_archive(::vmtest::MODKIT), 0o755, read(&guest.modkit)?);
    for tool in ::vmtest::TOOLS {
        archive.symlink(&format!("sbin/{tool}"), ::vmtest::MODKIT);
    }
    let kmods = in_archive(::vmtest::KMODS_DIR);
    for name in ::vmtest::SAMPLE_MODULES
        .iter()
        .chain(::vmtest::FAULT_MODULES)
    {
        let path = match modules.all().find(|(built, _)| built == name) {
            Some((_, path)) => path,
            None => bail!("no build of the sample module {name}"),
        };
        let ko = read(path)?;
        archive.file(
            &format!("{kmods}/{name}.ko.xz"),
            0o644,
            xz_like_kbuild(&ko)?,
        );
        archive.file(&format!("{kmods}/{name}.ko"), 0o644, ko.clone());
    }
    for tree in trees {
        tree.add_to(&mut archive);
    }
    for (path, data) in check_files {
        archive.file(path, 0o644, data.clone());
    }
    if let Some(files) = &guest.libkmod {
        files.add_to(&mut archive);
    }
    Ok(archive.finish())
}

/// A path of the guest's file system as the archive names it (no leading `/`).
fn in_archive(path: &str) -> &str {
    path.trim_start_matches('/')
}

/// Compresses like kbuild's `xz --check=crc32 --lzma2=dict=1MiB` (scripts/Makefile.modinst):
/// the kernel's decompressor wants CRC32.
fn xz_like_kbuild(data: &[u8]) -> Result<Vec<u8>> {
    use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
    let mut options = LzmaOptions::new_preset(6)?;
    options.dict_size(1 << 20);
    let mut filters = Filters::new();
    filters.lzma2(&options);
    let stream = Stream::new_stream_encoder(&filters, Check::Crc32)?;
    let mut encoder = liblzma::write::XzEncoder::new_stream(Vec::new(), stream);
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

fn boot(
    sh: &Shell,
    args: &Args,
    prepared: &Prepared,
    scenarios: &[&str],
    extra: &str,
    timeout: Duration,
) -> Result<BootReport> {
    let mut append = format!(
        "console=ttyS0 quiet panic=-1 rdinit=/init {}",
        ::vmtest::cmdline::vmtest_args(scenarios, &prepared.release, prepared.module_ext),
    );
    if !extra.is_empty() {
        append.push(' ');
        append.push_str(extra);
    }
    let label = scenarios.join(",");
    // One boot per kernel and set of kernel arguments; the selftests boot once per scenario.
    let console_log_path = match scenarios {
        [one] => prepared.dir.join(format!("console-{one}.log")),
        _ if extra.is_empty() => prepared.dir.join("console.log"),
        _ => prepared
            .dir
            .join(format!("console-{}.log", scenarios.join("+"))),
    };
    eprintln!(
        "booting {} under {} ({label})...",
        prepared.release,
        args.accel.name()
    );
    let output = qemu::run(
        sh,
        &qemu::Boot {
            kernel: prepared.boot_image.clone(),
            initrd: prepared.initramfs.clone(),
            append,
            accel: args.accel,
            timeout,
            console_log: console_log_path.clone(),
            echo: args.verbose,
            devices: coldplug::qemu_args(&coldplug::disk_path(&prepared.dir)),
        },
    )?;
    let mut report = report::parse(&output.console, scenarios);
    if output.timed_out {
        report.problems.push(format!(
            "timed out: QEMU killed after {} s",
            timeout.as_secs()
        ));
    }
    let qemu_failed = output.qemu_status.is_some_and(|status| !status.success());
    if qemu_failed || (report.verdict.is_none() && !output.qemu_stderr.trim().is_empty()) {
        report.problems.push(format!(
            "qemu exited with {:?}: {}",
            output.qemu_status,
            output.qemu_stderr.trim()
        ));
    }
    eprintln!("  ... {:.1} s", output.elapsed.as_secs_f64());
    if args.keep {
        eprintln!("  console log: {}", console_log_path.display());
    }
    Ok(report)
}

/// Boots each of `vmtest::SELFTESTS`; each must be reported as a failure, for the right reason.
fn selftest(sh: &Shell, args: &Args, prepared: &Prepared) -> Result<()> {
    fn problem(report: &BootReport, what: impl Fn(&str) -> bool) -> bool {
        report.problems.iter().any(|p| what(p))
    }
    type Check = fn(&BootReport) -> bool;
    let timeout = Duration::from_secs(args.timeout);
    // (scenario, time limit, whether the report says the right thing, what it should say)
    let cases: [(&str, Duration, Check, &str); 4] = [
        (
            "selftest-fail",
            timeout,
            |r| r.verdict == Some(false) && r.scenarios[0].status == Status::Fail,
            "a failed scenario",
        ),
        (
            "selftest-panic",
            timeout,
            |r| problem(r, |p| p.starts_with("the kernel panicked")),
            "a kernel panic",
        ),
        (
            "selftest-exit",
            timeout,
            |r| problem(r, |p| p.contains("Attempted to kill init")),
            "init dying",
        ),
        // Whether the guest is still booting or already hanging when the limit hits, it must
        // be a reported timeout.
        (
            "selftest-hang",
            Duration::from_secs(8),
            |r| problem(r, |p| p.starts_with("timed out")),
            "a timeout",
        ),
    ];
    ensure!(
        ::vmtest::SELFTESTS
            .iter()
            .map(|s| s.name)
            .eq(cases.iter().map(|c| c.0)),
        "the selftest cases are not vmtest::SELFTESTS"
    );
    for (scenario, limit, right, what) in cases {
        let report = boot(sh, args, prepared, &[scenario], "", limit)?;
        print!("{}", report::render(&prepared.title(args.accel), &report));
        ensure!(
            !report.passed() && right(&report),
            "{scenario} was not reported as {what}"
        );
    }
    Ok(())
}

/// A table of every scenario on every kernel.
fn summary(scenarios: &[&str], runs: &[(String, BootReport)]) -> String {
    let width = scenarios.iter().map(|s| s.len()).max().unwrap_or(0).max(8);
    // One column per kernel, whatever number of boots it took.
    let mut releases: Vec<&str> = Vec::new();
    for (release, _) in runs {
        if !releases.contains(&release.as_str()) {
            releases.push(release);
        }
    }
    let mut rows = Vec::new();
    let mut header = format!("  {:<width$}", "scenario");
    for release in &releases {
        header.push_str(&format!("  {release:<22}"));
    }
    rows.push(header);
    for scenario in scenarios {
        let mut row = format!("  {scenario:<width$}");
        for release in &releases {
            let status = runs
                .iter()
                .filter(|(r, _)| r == release)
                .find_map(|(_, report)| report.scenarios.iter().find(|s| s.name == *scenario))
                .map_or("?", |s| s.status.label());
            row.push_str(&format!("  {status:<22}"));
        }
        rows.push(row);
    }
    for (release, report) in runs {
        for problem in &report.problems {
            rows.push(format!("  {release}: {problem}"));
        }
    }
    let mut out = String::from("\nsummary:\n");
    for row in rows {
        out.push_str(row.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_selection() {
        let mut all: Vec<&str> = ::vmtest::SCENARIOS.iter().map(|s| s.name).collect();
        all.extend(::vmtest::root::SCENARIOS);
        assert_eq!(select_scenarios(&[]).unwrap(), all);
        assert_eq!(
            select_scenarios(&["root-nvme".to_string()]).unwrap(),
            ["root-nvme"]
        );
        let asked = vec!["params".to_string(), "selftest-panic".to_string()];
        assert_eq!(
            select_scenarios(&asked).unwrap(),
            ["params", "selftest-panic"]
        );
        let err = select_scenarios(&["nope".to_string()]).unwrap_err();
        assert!(
            err.to_string().starts_with("unknown scenario `nope`"),
            "{err}"
        );
    }

    #[test]
    fn xz_for_the_kernel() {
        let data = b"module bytes ".repeat(100);
        let xz = xz_like_kbuild(&data).unwrap();
        // Stream flags after the magic: check type 0x01 is CRC32 (xz file format 2.1.1.2).
        assert_eq!(&xz[..8], b"\xfd7zXZ\x00\x00\x01");
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut liblzma::read::XzDecoder::new(&xz[..]), &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn summary_table() {
        let log = "MODKIT-VMTEST plan boot insmod\nMODKIT-VMTEST begin boot\nMODKIT-VMTEST end boot pass\n\
                   MODKIT-VMTEST begin insmod\nMODKIT-VMTEST end insmod fail\nMODKIT-VMTEST verdict fail\n";
        let runs = vec![(
            "6.1.0-56-amd64".to_string(),
            report::parse(log, &["boot", "insmod"]),
        )];
        assert_eq!(
            summary(&["boot", "insmod"], &runs),
            "\nsummary:\n  scenario  6.1.0-56-amd64\n  boot      PASS\n  insmod    FAIL\n"
        );
    }

    #[test]
    fn boots_by_kernel_arguments() {
        // What the two modprobe scenarios get: modprobe's parameter and blacklist.
        let modprobe_args = "hello_api.greeting=\"Hello from the kernel command line\" modprobe.blacklist=hello_api";
        let plain = String::new;
        assert_eq!(
            boots(&["boot", "params"]),
            [(plain(), vec!["boot", "params"])]
        );
        assert_eq!(
            boots(&["cmdline", "boot", "blacklist", "options"]),
            [
                (modprobe_args.to_string(), vec!["cmdline", "blacklist"]),
                (plain(), vec!["boot", "options"])
            ]
        );
        // Everything by default: three boots per kernel, the plain one first, then modprobe's
        // arguments, then enforced signatures.
        let all = boots(&select_scenarios(&[]).unwrap());
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].0, "");
        assert!(all[0].1.contains(&"check"));
        assert_eq!(
            all[1],
            (modprobe_args.to_string(), vec!["cmdline", "blacklist"])
        );
        assert_eq!(
            all[2],
            ("module.sig_enforce=1".to_string(), vec!["check-sig"])
        );
    }

    #[test]
    fn long_scenarios_extend_their_boot() {
        let base = Duration::from_secs(60);
        assert_eq!(boot_limit(base, &["boot", "params"]), base);
        let storm = ::vmtest::find("storm").unwrap().extra_seconds;
        let faults = ::vmtest::find("faults").unwrap().extra_seconds;
        assert!(storm > 0 && faults > 0);
        assert_eq!(
            boot_limit(base, &["boot", "faults", "storm"]),
            base + Duration::from_secs(storm + faults)
        );
    }

    #[test]
    fn summary_merges_the_boots_of_a_kernel() {
        let plain = "MODKIT-VMTEST plan boot\nMODKIT-VMTEST begin boot\nMODKIT-VMTEST end boot pass\n\
                     MODKIT-VMTEST verdict pass\n";
        let cmdline = "MODKIT-VMTEST plan cmdline\nMODKIT-VMTEST begin cmdline\n\
                       MODKIT-VMTEST end cmdline fail\nMODKIT-VMTEST verdict fail\n";
        let runs = vec![
            (
                "6.1.0-56-amd64".to_string(),
                report::parse(plain, &["boot"]),
            ),
            (
                "6.1.0-56-amd64".to_string(),
                report::parse(cmdline, &["cmdline"]),
            ),
        ];
        assert_eq!(
            summary(&["boot", "cmdline"], &runs),
            "\nsummary:\n  scenario  6.1.0-56-amd64\n  boot      PASS\n  cmdline   FAIL\n"
        );
    }
}
