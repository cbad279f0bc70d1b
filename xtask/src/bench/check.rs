//! `modkit check --all` over Debian's trees, as issue 11 asks: every module of the tree with
//! the headers' `Module.symvers` and the certificates built into the kernel's own image, every
//! signature verified. Goal: under 5 s for 6.1. A timed run must exit 0 with nothing on
//! stderr and report every module of the tree as loading.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use xshell::{Shell, cmd};

use super::{Sample, Timed, run_timed};
use crate::kernels::{self, Series};

/// Seconds `modkit check --all` may take on Debian 6.1's tree (issue 11).
const GOAL_6_1: f64 = 5.0;

pub(super) fn run(
    sh: &Shell,
    modkit: &Path,
    kernel: &str,
    runs: usize,
    failed: &mut Vec<String>,
) -> Result<()> {
    for series in Series::select(kernel)? {
        let tree = kernels::ensure(sh, series)?;
        let release = tree.release.as_str();
        let scratch = crate::cache_dir().join("bench").join(release).join("check");
        let logs = scratch.join("logs");
        std::fs::create_dir_all(&logs)
            .with_context(|| format!("cannot create {}", logs.display()))?;
        let root = scratch.join("root");
        let moddir = crate::tools::unindexed_root(sh, &tree.modules_dir, &root, release)?;
        cmd!(sh, "{modkit} depmod -b {root} {release}")
            .quiet()
            .run()
            .context("indexing the tree with modkit depmod")?;
        let modules = std::fs::read_to_string(moddir.join("modules.dep"))
            .context("reading the tree's modules.dep")?
            .lines()
            .count();
        ensure!(modules > 0, "{}: no modules", moddir.display());
        // The image's keyring once, outside the clock, as a file for --certs.
        let image = std::fs::read(&tree.vmlinuz)
            .with_context(|| format!("cannot read {}", tree.vmlinuz.display()))?;
        let vmlinux = modkit_elf::bzimage::vmlinux(&image)
            .with_context(|| format!("{} is not a usable image", tree.vmlinuz.display()))?;
        let certs: Vec<u8> = modkit_elf::certificates_in_image(&vmlinux)
            .iter()
            .flat_map(|c| c.der().to_vec())
            .collect();
        ensure!(
            !certs.is_empty(),
            "{}: no built-in certificate",
            tree.vmlinuz.display()
        );
        let certs_path = scratch.join("certs.der");
        std::fs::write(&certs_path, certs)
            .with_context(|| format!("cannot write {}", certs_path.display()))?;
        let symvers = tree.headers.join("Module.symvers");
        let command = || {
            cmd!(
                sh,
                "{modkit} check -b {root} -k {release} --symvers {symvers} --certs {certs_path} --sig-enforce --all"
            )
            .into()
        };
        // Warm the page cache.
        succeeded(run_timed(command(), &logs)?)?;
        let mut samples = Vec::new();
        for _ in 0..runs {
            let run = succeeded(run_timed(command(), &logs)?)?;
            let stdout = String::from_utf8_lossy(&run.stdout);
            let want = format!("checked {modules} modules in ");
            let summary = stdout.lines().last().unwrap_or_default();
            ensure!(
                summary.starts_with(&want)
                    && summary.contains(&format!(": {modules} would load, 0 would not")),
                "modkit check --all on {release}: want every one of {modules} modules to load, got:\n{}",
                stdout.trim_end()
            );
            samples.push(run.sample);
        }
        let median = Sample::median(&samples);
        println!(
            "\nbench check {} ({release}), median of {runs} runs:\n  modkit check --all --sig-enforce ({modules} modules, every signature verified) {:>7.3} s  {:>7} KB peak",
            series.as_str(),
            median.seconds,
            median.max_rss_kb
        );
        if series == Series::V6_1 {
            let ok = median.seconds < GOAL_6_1;
            println!(
                "  {:<44} {:>6.3}  (goal < {GOAL_6_1} s) {}",
                "check --all, seconds",
                median.seconds,
                if ok { "ok" } else { "MISSED" }
            );
            if !ok {
                failed.push(format!("{} modkit check --all time", series.as_str()));
            }
        }
    }
    Ok(())
}

/// `run`, which must have exited 0 with nothing on stderr.
fn succeeded(run: Timed) -> Result<Timed> {
    ensure!(
        run.exit_code() == Some(0) && run.stderr.is_empty(),
        "modkit check --all ended with {}; stderr:\n{}",
        run.how(),
        String::from_utf8_lossy(&run.stderr).trim_end()
    );
    Ok(run)
}
