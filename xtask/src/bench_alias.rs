//! `cargo xtask bench`, alias part: `modprobe -a -R` on one concrete modalias per alias pattern
//! of Debian 6.1's tree (about 25,000 strings, duplicates removed), kmod 30's and modkit's over
//! the same indexes (kmod's), interleaved, medians of N runs. The answers must be identical
//! (stdout, stderr, exit status) and modkit's median at most half of kmod's (issue 7).
//!
//! Every timed run writes its stdout and stderr to files, read after its clock stops: it must
//! exit 0, print nothing on stderr, and answer exactly what kmod's first run answered.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use xshell::Shell;

use crate::kernels::{self, Series};

/// The goal: modkit's time over kmod's.
const GOAL: f64 = 0.5;

/// Measure on the 6.1 tree when `kernel` (the `--kernel` of `cargo xtask bench`) selects it.
/// A missed goal or a different answer is pushed to `failed`.
pub(crate) fn run(
    sh: &Shell,
    modkit: &Path,
    kernel: &str,
    runs: usize,
    failed: &mut Vec<String>,
) -> Result<()> {
    if !Series::select(kernel)?.contains(&Series::V6_1) {
        return Ok(());
    }
    let modprobe = crate::tools::kmod_tool("modprobe")?;
    let tree = kernels::ensure(sh, Series::V6_1)?;
    let release = tree.release.as_str();
    let root = crate::cache_dir()
        .join("bench")
        .join(format!("alias-{release}"));
    let moddir = crate::tools::kmod_indexed_root(sh, &tree.modules_dir, &root, release)?;
    let empty = root.join("modprobe.d");
    std::fs::create_dir_all(&empty)?;
    let names = crate::compat::compat_modprobe::concrete_aliases(&moddir)?;

    let command = |program: &Path, ours: bool| -> Command {
        let mut c = Command::new(program);
        if ours {
            c.arg("modprobe");
        }
        c.arg("-d").arg(&root).args(["-S", release]);
        c.arg("-C").arg(&empty).args(["-R", "-a"]).args(&names);
        c
    };
    // Warm up, and compare the answers; kmod's is the reference for every timed run.
    let kmod_out = output(command(&modprobe, false))?;
    let ours_out = output(command(modkit, true))?;
    let same = kmod_out == ours_out;
    ensure!(
        kmod_out.0 == Some(0) && kmod_out.2.is_empty(),
        "kmod's modprobe -a -R ended with {:?} and said:\n{}",
        kmod_out.0,
        String::from_utf8_lossy(&kmod_out.2).trim_end()
    );
    let answers = kmod_out.1.iter().filter(|&&b| b == b'\n').count();
    ensure!(answers > 0, "kmod's modprobe -a -R answered nothing");
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs)?;
    let (mut k, mut o) = (Vec::new(), Vec::new());
    let (mut checked, mut differing) = (0, 0);
    for _ in 0..runs {
        for (program, ours, times) in [(modprobe.as_path(), false, &mut k), (modkit, true, &mut o)]
        {
            let (seconds, stdout) = time(command(program, ours), &logs)?;
            times.push(seconds);
            checked += answers;
            if stdout != kmod_out.1 {
                differing += 1;
                println!(
                    "  {}'s timed run answered differently from kmod's first run ({} lines)",
                    if ours { "modkit" } else { "kmod" },
                    stdout.iter().filter(|&&b| b == b'\n').count()
                );
            }
        }
    }
    let (km, om) = (median(&mut k), median(&mut o));
    let ratio = om / km;
    let ok = same && differing == 0 && ratio <= GOAL;
    println!(
        "\nbench alias resolution, {release}: modprobe -a -R on {} modaliases, medians of {runs} runs:",
        names.len()
    );
    println!("  kmod modprobe -R              {km:>8.3} s");
    println!("  modkit modprobe -R            {om:>8.3} s");
    println!(
        "  {:<44} {ratio:>6.3}  (goal <= {GOAL}) {}",
        "modkit / kmod",
        if ok { "ok" } else { "MISSED" }
    );
    println!(
        "  answers identical to kmod's first run ({answers} lines): modkit's warm-up {}; timed \
         runs {} of {}, {checked} lines compared",
        if same { "yes" } else { "NO" },
        2 * runs - differing,
        2 * runs
    );
    if !ok {
        failed.push(format!(
            "6.1 modprobe -a -R ({ratio:.3}, same answers: warm-up {same}, timed runs differing \
             {differing})"
        ));
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}

/// Exit status, stdout and stderr of a run.
fn output(mut command: Command) -> Result<(Option<i32>, Vec<u8>, Vec<u8>)> {
    let out = command
        .output()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    Ok((out.status.code(), out.stdout, out.stderr))
}

/// Wall time of a run and its stdout. stdout and stderr go to files under `logs`, read after
/// the clock stops; a run that fails or prints on stderr fails the bench with what it said.
fn time(mut command: Command, logs: &Path) -> Result<(f64, Vec<u8>)> {
    let (out_path, err_path) = (logs.join("stdout"), logs.join("stderr"));
    let create = |path: &Path| {
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))
    };
    command
        .stdout(create(&out_path)?)
        .stderr(create(&err_path)?);
    let start = Instant::now();
    let status = command
        .status()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    let seconds = start.elapsed().as_secs_f64();
    let stderr = std::fs::read(&err_path)?;
    if !status.success() || !stderr.is_empty() {
        bail!(
            "{:?} {} ended with {status}; stderr:\n{}",
            command.get_program(),
            summary(&command),
            String::from_utf8_lossy(&stderr).trim_end()
        );
    }
    Ok((seconds, std::fs::read(&out_path)?))
}

/// A command's arguments for a message, the long list of modaliases shortened.
fn summary(command: &Command) -> String {
    let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
    match args.iter().position(|a| a == "-a") {
        Some(at) if args.len() > at + 4 => format!(
            "{} ... ({} names)",
            args[..at + 4].join(" "),
            args.len() - at - 1
        ),
        _ => args.join(" "),
    }
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
