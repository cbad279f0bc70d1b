//! `cargo xtask bench`, alias part: `modprobe -a -R` on one concrete modalias per alias pattern
//! of Debian 6.1's tree (about 25,000 strings, duplicates removed), kmod 30's and modkit's over
//! the same indexes (kmod's), interleaved, medians of N runs. The answers must be identical
//! (stdout, stderr, exit status) and modkit's median at most half of kmod's (issue 7).
//!
//! Every timed run writes its stdout and stderr to files, read after its clock stops: it must
//! exit 0, print nothing on stderr, and answer exactly what kmod's first run answered.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use xshell::{Shell, cmd};

use super::{Prints, measure};
use crate::kernels::{self, Series};
use crate::tools::{Kmod, median};

/// The goal: modkit's time over kmod's.
const GOAL: f64 = 0.5;

/// Measure on the 6.1 tree when `kernel` (the `--kernel` of `cargo xtask bench`) selects it.
/// A missed goal or a different answer is pushed to `failed`.
pub(crate) fn run(
    sh: &Shell,
    kmod: &Kmod,
    modkit: &Path,
    kernel: &str,
    runs: usize,
    failed: &mut Vec<String>,
) -> Result<()> {
    if !Series::select(kernel)?.contains(&Series::V6_1) {
        return Ok(());
    }
    let modprobe = kmod.modprobe.as_path();
    let tree = kernels::ensure(sh, Series::V6_1)?;
    let release = tree.release.as_str();
    let root = crate::cache_dir()
        .join("bench")
        .join(format!("alias-{release}"));
    let moddir = crate::tools::kmod_indexed_root(sh, kmod, &tree.modules_dir, &root, release)?;
    let empty = root.join("modprobe.d");
    std::fs::create_dir_all(&empty)?;
    let names = crate::compat::modprobe::concrete_aliases(&moddir)?;

    let (root_dir, empty_dir, aliases) = (&root, &empty, &names);
    let command = |program: &Path, ours: bool| {
        let tool: &[&str] = if ours { &["modprobe"] } else { &[] };
        cmd!(
            sh,
            "{program} {tool...} -d {root_dir} -S {release} -C {empty_dir} -R -a {aliases...}"
        )
    };
    // Warm up, and compare the answers; kmod's is the reference for every timed run.
    let output = |program: &Path, ours: bool| -> Result<(Option<i32>, Vec<u8>, Vec<u8>)> {
        let out = command(program, ours)
            .quiet()
            .ignore_status()
            .output()
            .with_context(|| format!("running {}", program.display()))?;
        Ok((out.status.code(), out.stdout, out.stderr))
    };
    let kmod_out = output(modprobe, false)?;
    let ours_out = output(modkit, true)?;
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
        for (program, ours, times) in [(modprobe, false, &mut k), (modkit, true, &mut o)] {
            let timed = measure(Command::from(command(program, ours)), &logs, Prints::Stdout)?;
            let stdout = timed.stdout;
            times.push(timed.sample.seconds);
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
    let (km, om) = (median(k), median(o));
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
        super::yes(same),
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
