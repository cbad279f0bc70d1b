//! `cargo xtask bench`: modkit beside kmod 30 in one run, as one table of medians of
//! interleaved runs, each row with its goal for modkit / kmod (issue 16): depmod on Debian's
//! trees (full, 6.1 <= 0.22 and 6.12 <= 0.30; re-run with nothing changed <= 0.05 (6.1) and
//! 0.01 (6.12) of kmod's full run; peak memory no more than kmod's), and the quick
//! invocations of `quick` (modprobe -R in three regimes, modinfo, `--show-depends`, insmod,
//! rmmod, lsmod).
//!
//! Every run is checked after its clock stops: depmod must exit 0 and print nothing (its
//! stdout and stderr go to files, read afterwards), and every file in its module directory
//! must be byte-identical to what kmod's first run wrote (modkit with `--index-layout
//! postorder`, kmod 30's node order); a quick invocation must end as kmod's first run ended,
//! with the same output. A fast run that writes the wrong thing or complains fails the bench.
//! `modkit check --all` is timed in `check` (no kmod counterpart: a goal in seconds). Every
//! run goes through [`run_timed`].

mod check;
mod initramfs;
mod quick;

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
    /// Runs of each quick command (modinfo, modprobe, insmod, ...; the median is reported)
    #[arg(long, default_value_t = 31)]
    quick_runs: usize,
    /// Time this modkit binary (an earlier build, for a before/after table) instead of
    /// building the worktree's
    #[arg(long, value_name = "PATH")]
    modkit: Option<PathBuf>,
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
    /// User and system time (`wait4`): what the run cost in CPU, less swayed than the wall
    /// time by the other work of a loaded machine.
    cpu_seconds: f64,
    max_rss_kb: i64,
}

pub fn run(args: Args) -> Result<()> {
    if let Some(Mode::Initramfs(args)) = args.mode {
        return initramfs::run(args);
    }
    ensure!(
        args.runs > 0 && args.quick_runs > 0,
        "--runs and --quick-runs must be at least 1"
    );
    let sh = Shell::new()?;
    let modkit = match &args.modkit {
        Some(path) => {
            std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?
        }
        None => crate::tools::build_modkit(&sh, "bench")?,
    };
    println!("bench: modkit is {}", modkit.display());
    if let Some(Mode::Check) = args.mode {
        let mut failed = Vec::new();
        check::run(&sh, &modkit, &args.kernel, args.runs, &mut failed)?;
        if !failed.is_empty() {
            bail!("goals missed: {}", failed.join("; "));
        }
        return Ok(());
    }
    let kmod = Kmod::find()?;
    let load_before = load_average();
    println!("bench: load average before: {load_before}");
    let mut table = Table::default();
    for series in Series::select(&args.kernel)? {
        let tree = kernels::ensure(&sh, series)?;
        depmod_rows(&sh, &kmod, &modkit, &tree, args.runs, &mut table)?;
        if series == Series::V6_1 {
            quick::rows(&sh, &kmod, &modkit, &tree, &args, &mut table)?;
        }
    }
    let load_after = load_average();
    table.print(&load_before, &load_after, &args);
    let mut failed = table.failed();
    check::run(&sh, &modkit, &args.kernel, args.runs, &mut failed)?;
    if !failed.is_empty() {
        bail!("goals missed: {}", failed.join("; "));
    }
    Ok(())
}

/// The depmod rows of one kernel tree: a full run and a re-run with nothing changed, both
/// timed against kmod's full run, and the full run's peak memory against kmod's. Every run's
/// files are compared with kmod's first run's.
fn depmod_rows(
    sh: &Shell,
    kmod: &Kmod,
    modkit: &Path,
    tree: &KernelTree,
    runs: usize,
    table: &mut Table,
) -> Result<()> {
    let series = tree.series;
    let depmod = &kmod.depmod;
    let scratch = crate::cache_dir().join("bench").join(&tree.release);
    let logs = scratch.join("logs");
    let kroot = make_root(sh, tree, &scratch.join("kmod"))?;
    let froot = make_root(sh, tree, &scratch.join("modkit-full"))?;
    let iroot = make_root(sh, tree, &scratch.join("modkit-incremental"))?;
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
    let depmod_run = |command: Command| measure(command, &logs);
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
    for _ in 0..runs {
        k.push(depmod_run(kmod_cmd(&kroot))?);
        kc.add(&reference, &moddir(&kroot))?;
        f.push(depmod_run(modkit_cmd(&froot, false))?);
        fc.add(&reference, &moddir(&froot))?;
        i.push(depmod_run(modkit_cmd(&iroot, true))?);
        ic.add(&reference, &moddir(&iroot))?;
    }
    for (who, c) in [
        ("kmod", &kc),
        ("modkit (full)", &fc),
        ("modkit (re-run)", &ic),
    ] {
        ensure!(c.outputs > 0, "{who}: no output files were compared");
        for d in c.differences.iter().take(10) {
            println!("  {} {who}: {d}", series.as_str());
        }
    }
    let (km, fm, im) = (Sample::median(&k), Sample::median(&f), Sample::median(&i));
    // Nothing changed: issue 16 keeps what it measured (0.004 of kmod's 7 s full run on
    // 6.12); on 6.1, whose full run takes kmod 0.6 s, the same few ms of stat calls and
    // comparisons are a larger share, and issue 3's goal stands.
    let (goal_full, goal_unchanged, flavour) = match series {
        Series::V6_1 => (0.22, 0.05, "plain .ko"),
        Series::V6_12 => (0.30, 0.01, ".ko.xz"),
    };
    let compared = |c: &Compared| format!("{}/{} index files", c.identical, c.outputs);
    let what = format!("-b ROOT {release}, kmod's first run's files");
    table.push(Row {
        work: format!("depmod full, {} ({flavour})", series.as_str()),
        measures: format!("{what}; modkit --no-cache"),
        kmod: Value::Seconds(km.seconds),
        modkit: Value::Seconds(fm.seconds),
        cpu: Some(fm.cpu_seconds / km.cpu_seconds),
        goal: goal_full,
        same: kc.same() && fc.same(),
        compared: compared(&fc),
        runs,
    });
    table.push(Row {
        work: format!("depmod nothing changed, {}", series.as_str()),
        measures: format!("{what}; modkit's cache warm, over kmod's full run"),
        kmod: Value::Seconds(km.seconds),
        modkit: Value::Seconds(im.seconds),
        cpu: Some(im.cpu_seconds / km.cpu_seconds),
        goal: goal_unchanged,
        same: kc.same() && ic.same(),
        compared: compared(&ic),
        runs,
    });
    table.push(Row {
        work: format!("depmod full, {}: peak memory", series.as_str()),
        measures: "peak RSS of the full runs (wait4)".into(),
        kmod: Value::Kilobytes(km.max_rss_kb),
        modkit: Value::Kilobytes(fm.max_rss_kb),
        cpu: None,
        goal: 1.0,
        same: kc.same() && fc.same(),
        compared: compared(&fc),
        runs,
    });
    Ok(())
}

/// A measured quantity of one tool: a median time or a median peak.
#[derive(Debug, Clone, Copy)]
enum Value {
    Seconds(f64),
    Kilobytes(i64),
}

impl Value {
    fn number(self) -> f64 {
        match self {
            Value::Seconds(s) => s,
            Value::Kilobytes(kb) => kb as f64,
        }
    }

    fn shown(self) -> String {
        match self {
            Value::Seconds(s) if s < 0.1 => format!("{:.2} ms", s * 1000.0),
            Value::Seconds(s) => format!("{s:.3} s"),
            Value::Kilobytes(kb) => format!("{} MB", (kb + 512) / 1024),
        }
    }
}

/// One line of the table: kmod 30 and modkit on the same work, in the same run.
#[derive(Debug)]
struct Row {
    /// The work, as the issue names it.
    work: String,
    /// What exactly is run and timed.
    measures: String,
    kmod: Value,
    modkit: Value,
    /// The goal for modkit / kmod.
    goal: f64,
    /// modkit's median CPU time (user + system) over kmod's, where measured.
    cpu: Option<f64>,
    /// Whether every run's answer (files, or status, stdout and stderr) was kmod's.
    same: bool,
    /// What was compared, for the reader.
    compared: String,
    /// Timed runs of each tool.
    runs: usize,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.modkit.number() / self.kmod.number()
    }

    fn met(&self) -> bool {
        self.same && self.ratio() <= self.goal
    }
}

/// The bench's one table.
#[derive(Debug, Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    fn print(&self, load_before: &str, load_after: &str, args: &Args) {
        println!(
            "\nbench: modkit beside kmod 30, medians of interleaved runs ({} for depmod, {} for \
             the others); load average before {load_before}, after {load_after}",
            args.runs, args.quick_runs
        );
        let header = [
            "work",
            "kmod 30",
            "modkit",
            "modkit/kmod",
            "goal",
            "met",
            "CPU modkit/kmod",
            "same output",
        ];
        let cells: Vec<[String; 8]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.work.clone(),
                    r.kmod.shown(),
                    r.modkit.shown(),
                    format!("{:.3}", r.ratio()),
                    format!("<= {}", r.goal),
                    if r.met() { "yes" } else { "NO" }.to_string(),
                    r.cpu.map_or_else(|| "-".to_string(), |c| format!("{c:.3}")),
                    format!("{} ({})", yes(r.same), r.compared),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: &[&str]| {
            let mut out = String::from("|");
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                // Text left, numbers right.
                if (1..=4).contains(&i) || i == 6 {
                    out.push_str(&format!(" {cell:>w$} |"));
                } else {
                    out.push_str(&format!(" {cell:<w$} |"));
                }
            }
            println!("{out}");
        };
        line(&header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        line(&rule.iter().map(String::as_str).collect::<Vec<_>>());
        for row in &cells {
            line(&row.iter().map(String::as_str).collect::<Vec<_>>());
        }
        println!(
            "\nmet: the median wall-time ratio against the goal, with every output as kmod's; \
             the CPU column (user + system, from wait4) is for reading a loaded machine's \
             figures, not judged"
        );
        println!("\nwhat each row runs (each run's clock covers the whole process):");
        for r in &self.rows {
            println!("  {}: {} [{} runs each]", r.work, r.measures, r.runs);
        }
    }

    /// The rows that missed their goal or answered differently from kmod.
    fn failed(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| !r.met())
            .map(|r| {
                format!(
                    "{} ({:.3}, goal <= {}{})",
                    r.work,
                    r.ratio(),
                    r.goal,
                    if r.same {
                        ""
                    } else {
                        ", output differs from kmod's"
                    }
                )
            })
            .collect()
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

impl Sample {
    /// The median time and the median peak, each over all samples.
    fn median(samples: &[Sample]) -> Sample {
        Sample {
            seconds: median(samples.iter().map(|s| s.seconds).collect()),
            cpu_seconds: median(samples.iter().map(|s| s.cpu_seconds).collect()),
            max_rss_kb: median(samples.iter().map(|s| s.max_rss_kb).collect()),
        }
    }
}

/// A run timed by [`run_timed`]: its sample, wait status, stdout and stderr.
#[derive(Debug)]
struct Timed {
    sample: Sample,
    /// The wait status, as `wait4` gives it.
    status: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Timed {
    /// The exit status, or None when a signal ended the run.
    fn exit_code(&self) -> Option<i32> {
        libc::WIFEXITED(self.status).then(|| libc::WEXITSTATUS(self.status))
    }

    /// How the run ended, for a message.
    fn how(&self) -> String {
        match self.exit_code() {
            Some(code) => format!("exit status {code}"),
            None => format!("wait status {:#x}", self.status),
        }
    }
}

/// Run a command to completion, its stdout and stderr in files under `logs`; wall time and
/// its own peak RSS (from `wait4`), its status and what it printed (read after the clock
/// stopped).
#[allow(
    unsafe_code,
    reason = "wait4(2) has no safe wrapper; std's wait gives no rusage"
)]
fn run_timed(mut command: Command, logs: &Path) -> Result<Timed> {
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
    Ok(Timed {
        sample: Sample {
            seconds,
            cpu_seconds: [usage.ru_utime, usage.ru_stime]
                .iter()
                .map(|t| t.tv_sec as f64 + t.tv_usec as f64 / 1e6)
                .sum(),
            max_rss_kb: usage.ru_maxrss,
        },
        status,
        stdout: std::fs::read(&out_path)?,
        stderr: std::fs::read(&err_path)?,
    })
}

/// [`run_timed`], and the run must have exited 0 and printed nothing (depmod), or the bench
/// fails with the command and what it said.
fn measure(command: Command, logs: &Path) -> Result<Sample> {
    let described = describe(&command);
    let timed = run_timed(command, logs)?;
    if timed.exit_code() != Some(0) || !timed.stderr.is_empty() || !timed.stdout.is_empty() {
        bail!(
            "{described} ended with {}; stderr:\n{}\nstdout:\n{}",
            timed.how(),
            String::from_utf8_lossy(&timed.stderr).trim_end(),
            String::from_utf8_lossy(&timed.stdout).trim_end(),
        );
    }
    Ok(timed.sample)
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
        let s = |seconds, cpu_seconds, max_rss_kb| Sample {
            seconds,
            cpu_seconds,
            max_rss_kb,
        };
        let m = Sample::median(&[s(3.0, 0.5, 10), s(1.0, 0.1, 30), s(2.0, 0.9, 20)]);
        assert_eq!((m.seconds, m.cpu_seconds, m.max_rss_kb), (2.0, 0.5, 20));
    }
}
