//! `cargo xtask bench`: modkit depmod side by side with kmod's depmod on Debian's trees, as
//! medians of N interleaved runs, with the ratios issue 3 sets as goals: full run (6.1 <= 0.35,
//! 6.12 <= 0.6 of kmod), re-run with nothing changed (<= 0.05 of kmod's full run, output still
//! byte-identical) and peak memory (no more than kmod's).
//!
//! Every run is checked after its clock stops: it must exit 0 and print nothing (its stdout
//! and stderr go to files, read afterwards), and every file in its module directory must be
//! byte-identical to what kmod's first run wrote (modkit with `--index-layout postorder`, kmod
//! 30's node order), so a fast run that writes the wrong thing or complains fails the bench.
//! Alias resolution (`modprobe -R`) is timed in `alias`, `modkit check --all` in `check`;
//! every run goes through [`measure`].

mod alias;
mod check;
mod initramfs;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::kernels::{self, KernelTree, Series};
use crate::tools::{DEPMOD_OUTPUTS, Kmod, median};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kernel series: 6.1, 6.12 or all
    #[arg(long, default_value = "all")]
    kernel: String,
    /// Runs of each command (the median is reported)
    #[arg(long, short = 'n', default_value_t = 5)]
    runs: usize,
    #[command(subcommand)]
    mode: Option<Mode>,
}

/// A benchmark of its own, instead of depmod's and modprobe's.
#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// `modkit initramfs` against mkinitramfs (MODULES=dep, most) and dracut (hostonly,
    /// generic) on the same tree and device set: build time, image size, module count
    Initramfs(initramfs::Args),
    /// Only `modkit check --all` (every signature verified) on Debian's trees; the full bench
    /// runs it too
    Check,
}

/// One measured run: wall time and the child's peak resident set.
#[derive(Debug, Clone, Copy)]
struct Sample {
    seconds: f64,
    max_rss_kb: i64,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(Mode::Initramfs(args)) = args.mode {
        return initramfs::run(args);
    }
    ensure!(args.runs > 0, "--runs must be at least 1");
    let sh = Shell::new()?;
    let modkit = crate::tools::build_modkit(&sh, "bench")?;
    if let Some(Mode::Check) = args.mode {
        let mut failed = Vec::new();
        check::run(&sh, &modkit, &args.kernel, args.runs, &mut failed)?;
        if !failed.is_empty() {
            bail!("goals missed: {}", failed.join("; "));
        }
        return Ok(());
    }
    let kmod = Kmod::find()?;
    let depmod = &kmod.depmod;
    println!("bench: load average before: {}", load_average());
    let mut failed = Vec::new();
    for series in Series::select(&args.kernel)? {
        let tree = kernels::ensure(&sh, series)?;
        let scratch = crate::cache_dir().join("bench").join(&tree.release);
        let logs = scratch.join("logs");
        let kroot = make_root(&sh, &tree, &scratch.join("kmod"))?;
        let froot = make_root(&sh, &tree, &scratch.join("modkit-full"))?;
        let iroot = make_root(&sh, &tree, &scratch.join("modkit-incremental"))?;
        let cache = scratch.join("incremental.cache");
        let _ = std::fs::remove_file(&cache);
        std::fs::create_dir_all(&logs)?;
        let release = tree.release.as_str();
        let kmod_cmd = |root: &Path| cmd!(sh, "{depmod} -b {root} {release}").into();
        let modkit_cmd = |root: &Path, cached: bool| {
            let cache_flags: Vec<OsString> = if cached {
                vec!["--cache-file".into(), cache.clone().into()]
            } else {
                vec!["--no-cache".into()]
            };
            cmd!(
                sh,
                "{modkit} depmod --index-layout postorder {cache_flags...} -b {root} {release}"
            )
            .into()
        };
        let depmod_run = |command: Command| measure(command, &logs, Prints::Nothing);
        let moddir = |root: &Path| root.join("lib/modules").join(release);
        // Warm the page cache and fill the incremental cache; kmod's first run writes the
        // reference every later run of either tool is compared with.
        depmod_run(kmod_cmd(&kroot))?;
        let reference = top_files(&moddir(&kroot))?;
        let outputs = reference
            .keys()
            .filter(|n| DEPMOD_OUTPUTS.contains(&n.as_str()))
            .count();
        ensure!(
            reference.contains_key("modules.dep") && outputs > 0,
            "kmod's depmod wrote no modules.dep in {}",
            moddir(&kroot).display()
        );
        depmod_run(modkit_cmd(&froot, false))?;
        depmod_run(modkit_cmd(&iroot, true))?;

        let (mut k, mut f, mut i) = (Vec::new(), Vec::new(), Vec::new());
        let (mut kc, mut fc, mut ic) = (
            Compared::default(),
            Compared::default(),
            Compared::default(),
        );
        for _ in 0..args.runs {
            k.push(depmod_run(kmod_cmd(&kroot))?.sample);
            kc.add(&reference, &moddir(&kroot))?;
            f.push(depmod_run(modkit_cmd(&froot, false))?.sample);
            fc.add(&reference, &moddir(&froot))?;
            i.push(depmod_run(modkit_cmd(&iroot, true))?.sample);
            ic.add(&reference, &moddir(&iroot))?;
        }
        for (who, c) in [
            ("kmod", &kc),
            ("modkit (full)", &fc),
            ("modkit (re-run)", &ic),
        ] {
            ensure!(c.outputs > 0, "{who}: no output files were compared");
            for d in c.differences.iter().take(10) {
                println!("  {who}: {d}");
            }
        }
        for (who, c) in [
            ("kmod's depmod", &kc),
            ("modkit depmod (full)", &fc),
            ("modkit depmod (nothing changed)", &ic),
        ] {
            if !c.same() {
                failed.push(format!(
                    "{} {who}: {} difference(s) from kmod's first run's files",
                    series.as_str(),
                    c.differences.len()
                ));
            }
        }
        let (same_full, same_inc) = (fc.same(), ic.same());

        let (km, fm, im) = (Sample::median(&k), Sample::median(&f), Sample::median(&i));
        let goal_full = match series {
            Series::V6_1 => 0.35,
            Series::V6_12 => 0.6,
        };
        println!(
            "\nbench {} ({release}), medians of {} runs:",
            series.as_str(),
            args.runs
        );
        println!(
            "  kmod depmod (full)            {:>8.3} s  {:>7} KB peak",
            km.seconds, km.max_rss_kb
        );
        println!(
            "  modkit depmod (full)          {:>8.3} s  {:>7} KB peak",
            fm.seconds, fm.max_rss_kb
        );
        println!(
            "  modkit depmod (nothing changed){:>7.3} s  {:>7} KB peak",
            im.seconds, im.max_rss_kb
        );
        let full_ratio = fm.seconds / km.seconds;
        let inc_ratio = im.seconds / km.seconds;
        let mem_ratio = fm.max_rss_kb as f64 / km.max_rss_kb as f64;
        let mut line = |what: &str, value: f64, goal: f64, extra: bool| {
            let ok = value <= goal && extra;
            println!(
                "  {:<44} {value:>6.3}  (goal <= {goal}) {}",
                what,
                if ok { "ok" } else { "MISSED" }
            );
            if !ok {
                failed.push(format!("{} {what}", series.as_str()));
            }
        };
        line("full run / kmod full run", full_ratio, goal_full, same_full);
        line(
            "nothing-changed re-run / kmod full run",
            inc_ratio,
            0.05,
            same_inc,
        );
        line(
            "peak memory (full) / kmod peak memory",
            mem_ratio,
            1.0,
            true,
        );
        println!(
            "  outputs byte-identical to kmod's first run, after each timed run ({} files, {} \
             of them depmod's outputs): kmod {}/{}, full {}/{}, re-run {}/{} files: {}",
            reference.len(),
            outputs,
            kc.identical,
            kc.outputs,
            fc.identical,
            fc.outputs,
            ic.identical,
            ic.outputs,
            yes(kc.same() && same_full && same_inc)
        );
    }
    alias::run(&sh, &kmod, &modkit, &args.kernel, args.runs, &mut failed)?;
    check::run(&sh, &modkit, &args.kernel, args.runs, &mut failed)?;
    println!("\nbench: load average after: {}", load_average());
    if !failed.is_empty() {
        bail!("goals missed: {}", failed.join("; "));
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// What a timed run may print: nothing at all (depmod), or its answers on stdout (modprobe
/// -R); never anything on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prints {
    Nothing,
    Stdout,
}

/// A timed run: its [`Sample`] and what it printed on stdout.
#[derive(Debug)]
struct Measured {
    sample: Sample,
    stdout: Vec<u8>,
}

impl Sample {
    /// The median time and the median peak, each over all samples.
    fn median(samples: &[Sample]) -> Sample {
        Sample {
            seconds: median(samples.iter().map(|s| s.seconds).collect()),
            max_rss_kb: median(samples.iter().map(|s| s.max_rss_kb).collect()),
        }
    }
}

/// Run a command to completion, its stdout and stderr in files under `logs`; wall time and
/// its own peak RSS (from `wait4`), and its stdout. After the clock stops, the run must have
/// exited 0 and printed nothing but what `prints` allows, or the bench fails with the command
/// and what it said.
#[allow(
    unsafe_code,
    reason = "wait4(2) has no safe wrapper; std's wait gives no rusage"
)]
fn measure(mut command: Command, logs: &Path, prints: Prints) -> Result<Measured> {
    let (out_path, err_path) = (logs.join("stdout"), logs.join("stderr"));
    let create = |path: &Path| {
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))
    };
    command
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?);
    let start = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("running {}", describe(&command)))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet waited for; status and usage point to live locals.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let seconds = start.elapsed().as_secs_f64();
    ensure!(
        r == pid,
        "wait4 failed: {}",
        std::io::Error::last_os_error()
    );
    // Reaped by wait4 above: dropping the handle must not wait again (it holds no pipes).
    std::mem::forget(child);
    let stdout = std::fs::read(&out_path)?;
    let stderr = std::fs::read(&err_path)?;
    let exited_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    let stdout_ok = prints == Prints::Stdout || stdout.is_empty();
    if !exited_ok || !stderr.is_empty() || !stdout_ok {
        let how = if libc::WIFEXITED(status) {
            format!("exit status {}", libc::WEXITSTATUS(status))
        } else {
            format!("wait status {status:#x}")
        };
        let shown = match prints {
            Prints::Nothing => {
                format!("\nstdout:\n{}", String::from_utf8_lossy(&stdout).trim_end())
            }
            Prints::Stdout => String::new(),
        };
        bail!(
            "{} ended with {how}; stderr:\n{}{shown}",
            describe(&command),
            String::from_utf8_lossy(&stderr).trim_end(),
        );
    }
    Ok(Measured {
        sample: Sample {
            seconds,
            max_rss_kb: usage.ru_maxrss,
        },
        stdout,
    })
}

/// A command for a message: the program and its arguments, a long list after `-a` (the
/// modaliases of `modprobe -R -a`) shortened.
fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy()];
    words.extend(command.get_args().map(|a| a.to_string_lossy()));
    match words.iter().position(|a| a == "-a") {
        Some(at) if words.len() > at + 4 => format!(
            "{} ... ({} names)",
            words[..at + 4].join(" "),
            words.len() - at - 1
        ),
        _ => words.join(" "),
    }
}

/// A scratch root of hard links to the cached tree (never written to), without any index the
/// cached tree may hold, so every output compared is one the benchmarked runs wrote.
fn make_root(sh: &Shell, tree: &KernelTree, root: &Path) -> Result<PathBuf> {
    crate::tools::unindexed_root(sh, &tree.modules_dir, root, &tree.release)?;
    Ok(root.to_path_buf())
}

/// The regular files at the top of a module directory (depmod's outputs, its inputs such as
/// modules.order, and anything a run left behind), by name.
fn top_files(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path())
                .with_context(|| format!("reading {}", entry.path().display()))?;
            files.insert(name, bytes);
        }
    }
    Ok(files)
}

/// Module directories compared with the reference, one after each run.
#[derive(Debug, Default)]
struct Compared {
    /// depmod output files compared, over all runs.
    outputs: usize,
    /// Those found byte-identical.
    identical: usize,
    differences: Vec<String>,
}

impl Compared {
    /// Compare `dir` with `reference`: the same file names, the same bytes.
    fn add(&mut self, reference: &BTreeMap<String, Vec<u8>>, dir: &Path) -> Result<()> {
        let now = top_files(dir)?;
        for name in reference.keys().filter(|n| !now.contains_key(*n)) {
            self.differences.push(format!("{name} is missing"));
        }
        for (name, bytes) in &now {
            let Some(want) = reference.get(name) else {
                self.differences
                    .push(format!("{name} is there and not in kmod's output"));
                continue;
            };
            let output = DEPMOD_OUTPUTS.contains(&name.as_str());
            self.outputs += usize::from(output);
            if bytes == want {
                self.identical += usize::from(output);
            } else {
                let at = bytes
                    .iter()
                    .zip(want)
                    .position(|(a, b)| a != b)
                    .unwrap_or(bytes.len().min(want.len()));
                self.differences.push(format!(
                    "{name} differs at byte {at} ({} bytes, kmod's {})",
                    bytes.len(),
                    want.len()
                ));
            }
        }
        Ok(())
    }

    fn same(&self) -> bool {
        self.differences.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_described_for_messages() {
        let depmod = Command::new("/usr/sbin/depmod");
        assert_eq!(describe(&depmod), "/usr/sbin/depmod");
        let mut modprobe = Command::new("modkit");
        modprobe.args(["modprobe", "-d", "R", "-R", "-a", "a", "b", "c", "d", "e"]);
        assert_eq!(
            describe(&modprobe),
            "modkit modprobe -d R -R -a a b c ... (5 names)"
        );
        let mut few = Command::new("modprobe");
        few.args(["-R", "-a", "a", "b"]);
        assert_eq!(describe(&few), "modprobe -R -a a b");
    }

    #[test]
    fn sample_medians() {
        let s = |seconds, max_rss_kb| Sample {
            seconds,
            max_rss_kb,
        };
        let m = Sample::median(&[s(3.0, 10), s(1.0, 30), s(2.0, 20)]);
        assert_eq!((m.seconds, m.max_rss_kb), (2.0, 20));
    }
}
