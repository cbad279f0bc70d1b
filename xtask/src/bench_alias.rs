//! `cargo xtask bench`, alias part: `modprobe -a -R` on one concrete modalias per alias pattern
//! of Debian 6.1's tree (about 25,000 strings, duplicates removed), kmod 30's and modkit's over
//! the same indexes (kmod's), interleaved, medians of N runs. The answers must be identical
//! (stdout, stderr, exit status) and modkit's median at most half of kmod's (issue 7).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result};
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
    // Warm up, and compare the answers.
    let kmod_out = output(command(&modprobe, false))?;
    let ours_out = output(command(modkit, true))?;
    let same = kmod_out == ours_out;
    let (mut k, mut o) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        k.push(time(command(&modprobe, false))?);
        o.push(time(command(modkit, true))?);
    }
    let (km, om) = (median(&mut k), median(&mut o));
    let ratio = om / km;
    let ok = same && ratio <= GOAL;
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
        "  answers identical to kmod's ({} lines): {}",
        kmod_out.1.iter().filter(|&&b| b == b'\n').count(),
        if same { "yes" } else { "NO" }
    );
    if !ok {
        failed.push(format!(
            "6.1 modprobe -a -R ({ratio:.3}, same answers: {same})"
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

/// Wall time of a run, output discarded.
fn time(mut command: Command) -> Result<f64> {
    command.stdout(Stdio::null()).stderr(Stdio::null());
    let start = Instant::now();
    command
        .status()
        .with_context(|| format!("running {:?}", command.get_program()))?;
    Ok(start.elapsed().as_secs_f64())
}

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
