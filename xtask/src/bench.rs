//! `cargo xtask bench`: modkit depmod side by side with kmod's depmod on Debian's trees, as
//! medians of N interleaved runs, with the ratios issue 3 sets as goals: full run (6.1 <= 0.35,
//! 6.12 <= 0.6 of kmod), re-run with nothing changed (<= 0.05 of kmod's full run, output still
//! byte-identical) and peak memory (no more than kmod's).

#[path = "bench_alias.rs"]
mod bench_alias;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use xshell::Shell;

use crate::kernels::{self, KernelTree, Series};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kernel series: 6.1, 6.12 or all
    #[arg(long, default_value = "all")]
    kernel: String,
    /// Runs of each command (the median is reported)
    #[arg(long, short = 'n', default_value_t = 5)]
    runs: usize,
}

/// One measured run: wall time and the child's peak resident set.
#[derive(Debug, Clone, Copy)]
struct Sample {
    seconds: f64,
    max_rss_kb: i64,
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.runs > 0, "--runs must be at least 1");
    let sh = Shell::new()?;
    let modkit = crate::tools::build_modkit(&sh, "bench")?;
    let depmod = crate::tools::kmod_tool("depmod")?;
    println!("bench: load average before: {}", load_average());
    let mut failed = Vec::new();
    for series in Series::select(&args.kernel)? {
        let tree = kernels::ensure(&sh, series)?;
        let scratch = crate::cache_dir().join("bench").join(&tree.release);
        let kroot = make_root(&sh, &tree, &scratch.join("kmod"))?;
        let froot = make_root(&sh, &tree, &scratch.join("modkit-full"))?;
        let iroot = make_root(&sh, &tree, &scratch.join("modkit-incremental"))?;
        let cache = scratch.join("incremental.cache");
        let _ = std::fs::remove_file(&cache);
        let release = tree.release.as_str();
        let kmod_cmd = |root: &Path| -> Command {
            let mut c = Command::new(&depmod);
            c.arg("-b").arg(root).arg(release);
            c
        };
        let modkit_cmd = |root: &Path, cached: bool| -> Command {
            let mut c = Command::new(&modkit);
            c.args(["depmod", "--index-layout", "postorder"]);
            if cached {
                c.arg("--cache-file").arg(&cache);
            } else {
                c.arg("--no-cache");
            }
            c.arg("-b").arg(root).arg(release);
            c
        };
        // Warm the page cache and fill the incremental cache.
        measure(kmod_cmd(&kroot))?;
        measure(modkit_cmd(&froot, false))?;
        measure(modkit_cmd(&iroot, true))?;

        let (mut k, mut f, mut i) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.runs {
            k.push(measure(kmod_cmd(&kroot))?);
            f.push(measure(modkit_cmd(&froot, false))?);
            i.push(measure(modkit_cmd(&iroot, true))?);
        }
        let moddir = |root: &Path| root.join("lib/modules").join(release);
        let same_full = same_outputs(&moddir(&kroot), &moddir(&froot))?;
        let same_inc = same_outputs(&moddir(&kroot), &moddir(&iroot))?;

        let (km, fm, im) = (median(&k), median(&f), median(&i));
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
            "  outputs byte-identical to kmod's: full {}, re-run {}",
            yes(same_full),
            yes(same_inc)
        );
    }
    bench_alias::run(&sh, &modkit, &args.kernel, args.runs, &mut failed)?;
    println!("\nbench: load average after: {}", load_average());
    if !failed.is_empty() {
        bail!("goals missed: {}", failed.join("; "));
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "NO" }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn median(samples: &[Sample]) -> Sample {
    let mut t: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
    let mut m: Vec<i64> = samples.iter().map(|s| s.max_rss_kb).collect();
    t.sort_by(f64::total_cmp);
    m.sort_unstable();
    Sample {
        seconds: t[t.len() / 2],
        max_rss_kb: m[m.len() / 2],
    }
}

/// Run a command to completion; wall time and its own peak RSS (from `wait4`).
fn measure(mut command: Command) -> Result<Sample> {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("running {command:?}"))?;
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
    ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{command:?} failed (status {status:#x})"
    );
    std::mem::forget(child);
    Ok(Sample {
        seconds,
        max_rss_kb: usage.ru_maxrss,
    })
}

/// A scratch root of hard links to the cached tree (never written to).
fn make_root(sh: &Shell, tree: &KernelTree, root: &Path) -> Result<PathBuf> {
    crate::tools::linked_root(sh, &tree.modules_dir, root, &tree.release)?;
    Ok(root.to_path_buf())
}

/// Whether the files depmod writes are the same in both directories.
fn same_outputs(a: &Path, b: &Path) -> Result<bool> {
    let mut names: Vec<String> = std::fs::read_dir(a)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("modules."))
        .collect();
    names.sort();
    let mut other: Vec<String> = std::fs::read_dir(b)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("modules."))
        .collect();
    other.sort();
    if names != other {
        return Ok(false);
    }
    for n in &names {
        if std::fs::read(a.join(n))? != std::fs::read(b.join(n))? {
            return Ok(false);
        }
    }
    Ok(true)
}
