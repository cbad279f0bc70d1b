//! `cargo xtask compat`: run modkit's tools and kmod's on the same Debian module trees and
//! fail on any difference in output or exit status. modinfo here; `depmod`, `modprobe` and
//! `kmod static-nodes` in their modules.

mod depmod;
pub(crate) mod modprobe;
mod static_nodes;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::kernels::{self, KernelTree, Series};
use crate::tools::Kmod;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kernel series whose Debian module tree to compare on: 6.1, 6.12 or all
    #[arg(long, default_value = "all")]
    kernel: String,
    /// Show at most this many differences per check
    #[arg(long, default_value_t = 5)]
    max_diffs: usize,
}

/// Arguments given to many module files in one run of each tool.
const BATCH: usize = 400;

pub fn run(args: Args) -> Result<()> {
    let sh = Shell::new()?;
    let kmod = Kmod::find()?;
    let modkit = crate::tools::build_modkit(&sh, "compat")?;
    let mut report = Report::default();

    for series in Series::select(&args.kernel)? {
        let tree = kernels::ensure(&sh, series)?;
        let modules = module_files(&tree.modules_dir)?;
        ensure!(
            !modules.is_empty(),
            "no modules found in {}",
            tree.modules_dir.display()
        );
        println!(
            "compat: {} ({}): {} modules in {}",
            series.as_str(),
            tree.release,
            modules.len(),
            tree.modules_dir.display()
        );
        modinfo_files(&sh, &kmod, &modkit, &tree, &modules, &args, &mut report)?;
        let root = indexed_root(&sh, &kmod, &tree)?;
        modinfo_names(
            &sh,
            &kmod,
            &modkit,
            &tree,
            &root,
            &modules,
            &args,
            &mut report,
        )?;
        modprobe::check(
            &sh,
            &kmod,
            &root,
            &tree.release,
            series.as_str(),
            &modkit,
            &mut |check, tally| report.record(&check, tally),
        )?;
        modprobe::check_symbols(
            &kmod,
            &root,
            &tree.release,
            series.as_str(),
            &modkit,
            &modules,
            &mut |check, tally| report.record(&check, tally),
        )?;
        let moddir = root.join("lib/modules").join(&tree.release);
        match static_nodes::namespace_works(&sh, &moddir) {
            Ok(()) => static_nodes::check(
                &sh,
                &kmod,
                &modkit,
                &root,
                &tree.release,
                series.as_str(),
                &mut |check, tally| report.record(&check, tally),
            )?,
            // Under CI a check that cannot run is an error; elsewhere the summary says so.
            Err(err) if modkit_testkit::under_ci() => {
                return Err(err.context("kmod static-nodes (under CI it must run)"));
            }
            Err(err) => report.skip(
                &format!("{}: kmod static-nodes", series.as_str()),
                &format!("{err:#}"),
            ),
        }
        depmod::check(&sh, &kmod, &tree, &modkit, &mut |check, tally| {
            report.record(&check, tally)
        })?;
    }

    fixtures(&sh, &kmod, &modkit, &args, &mut report)?;
    let foreign = depmod::check_foreign(&sh, &kmod, &modkit, &mut |check, tally| {
        report.record(&check, tally)
    });
    if let Err(err) = foreign {
        // Under CI a missing input is an error; elsewhere the summary says what did not run.
        if modkit_testkit::under_ci() {
            return Err(err.context("the s390x depmod check (under CI it must run)"));
        }
        report.skip("depmod s390x (big-endian)", &format!("{err:#}"));
    }

    println!("\ncompat summary:");
    for line in &report.lines {
        println!("  {line}");
    }
    if report.failures > 0 {
        bail!(
            "{} compatibility check(s) failed: differences with kmod, nothing compared, or kmod \
             failing on every run",
            report.failures
        );
    }
    println!("compat: no differences with kmod");
    Ok(())
}

#[derive(Debug, Default)]
struct Report {
    lines: Vec<String>,
    failures: usize,
}

/// What one check compared: items (files, names, configurations), the runs of kmod's tool and
/// how many of them succeeded (exit status 0), and the differences found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub compared: usize,
    pub kmod_runs: usize,
    pub kmod_ok: usize,
    pub diffs: usize,
}

impl Tally {
    /// Count one run of kmod's tool, by its exit status.
    pub(crate) fn kmod_ran(&mut self, status: Option<i32>) {
        self.kmod_runs += 1;
        if status == Some(0) {
            self.kmod_ok += 1;
        }
    }
}

impl Report {
    /// A check that could not run (outside CI only): shown in the summary, not a failure.
    fn skip(&mut self, check: &str, why: &str) {
        self.lines.push(format!("{:<9} {check}: {why}", "SKIPPED"));
    }

    /// Record a check. It fails on a difference, and also when it compared nothing or kmod
    /// succeeded on nothing: both would make "0 differences" mean nothing.
    fn record(&mut self, check: &str, t: Tally) {
        let verdict = if t.compared == 0 {
            "EMPTY"
        } else if t.kmod_ok == 0 {
            "KMOD-FAIL"
        } else if t.diffs > 0 {
            "DIFFERENT"
        } else {
            "ok"
        };
        self.lines.push(format!(
            "{verdict:<9} {check}: {} compared, {} differences (kmod succeeded in {} of {} runs)",
            t.compared, t.diffs, t.kmod_ok, t.kmod_runs
        ));
        if verdict != "ok" {
            self.failures += 1;
        }
    }
}

/// Every module file under `dir`, sorted.
pub(crate) fn module_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && modkit_glob::name::path_ends_with_kmod_ext(entry.file_name())
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// What one run of a tool did.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    status: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn run_tool(sh: &Shell, program: &[&Path], args: &[&str], files: &[&Path]) -> Result<Outcome> {
    let (first, rest) = program.split_first().context("empty program")?;
    let output = cmd!(sh, "{first} {rest...} {args...} {files...}")
        .ignore_status()
        .quiet()
        .output()
        .with_context(|| format!("running {}", first.display()))?;
    Ok(Outcome {
        status: output.status.code(),
        stdout: output.stdout,
        stderr: output.stderr,
    })
}

/// Compare `modinfo ARGS FILES...` of both tools over every module, in batches; on a
/// difference, find the modules that differ and show them.
fn compare_modinfo<T: AsRef<Path>>(
    sh: &Shell,
    kmod: &Kmod,
    modkit: &Path,
    args: &[&str],
    files: &[T],
    max_diffs: usize,
) -> Result<Tally> {
    let ours = [modkit, Path::new("modinfo")];
    let theirs = [kmod.modinfo.as_path()];
    let mut tally = Tally {
        compared: files.len(),
        ..Tally::default()
    };
    for batch in files.chunks(BATCH) {
        let batch: Vec<&Path> = batch.iter().map(AsRef::as_ref).collect();
        let expected = run_tool(sh, &theirs, args, &batch)?;
        tally.kmod_ran(expected.status);
        if expected == run_tool(sh, &ours, args, &batch)? {
            continue;
        }
        for file in &batch {
            let expected = run_tool(sh, &theirs, args, &[file])?;
            let actual = run_tool(sh, &ours, args, &[file])?;
            if expected != actual {
                tally.diffs += 1;
                if tally.diffs <= max_diffs {
                    println!(
                        "{}",
                        describe_difference(
                            &format!("modinfo {}", args.join(" ")),
                            file,
                            &expected,
                            &actual
                        )
                    );
                }
            }
        }
    }
    Ok(tally)
}

fn describe_difference(what: &str, file: &Path, expected: &Outcome, actual: &Outcome) -> String {
    let mut text = format!("--- difference: {what} {}\n", file.display());
    if expected.status != actual.status {
        let _ = writeln!(
            text,
            "exit status: kmod {:?}, modkit {:?}",
            expected.status, actual.status
        );
    }
    for (stream, kmod, ours) in [
        ("stdout", &expected.stdout, &actual.stdout),
        ("stderr", &expected.stderr, &actual.stderr),
    ] {
        if kmod == ours {
            continue;
        }
        let kmod = String::from_utf8_lossy(kmod);
        let ours = String::from_utf8_lossy(ours);
        let (kmod_lines, our_lines): (Vec<_>, Vec<_>) =
            (kmod.split('\n').collect(), ours.split('\n').collect());
        let first = kmod_lines
            .iter()
            .zip(&our_lines)
            .position(|(a, b)| a != b)
            .unwrap_or(kmod_lines.len().min(our_lines.len()));
        let _ = writeln!(text, "{stream} differs from line {}:", first + 1);
        for line in kmod_lines.iter().skip(first).take(4) {
            let _ = writeln!(text, "  kmod:   {line:?}");
        }
        for line in our_lines.iter().skip(first).take(4) {
            let _ = writeln!(text, "  modkit: {line:?}");
        }
    }
    text
}

/// The modinfo variants compared on every module file.
const MODINFO_VARIANTS: &[&[&str]] = &[
    &[],
    &["-0"],
    &["-p"],
    &["-F", "depends"],
    &["-F", "alias"],
    &["-n"],
];

fn modinfo_files(
    sh: &Shell,
    kmod: &Kmod,
    modkit: &Path,
    tree: &KernelTree,
    modules: &[PathBuf],
    args: &Args,
    report: &mut Report,
) -> Result<()> {
    for variant in MODINFO_VARIANTS {
        let started = Instant::now();
        let tally = compare_modinfo(sh, kmod, modkit, variant, modules, args.max_diffs)?;
        let check = format!("{} modinfo {}", tree.release, variant.join(" "));
        println!(
            "compat: {check}: {} files, {} differences ({:.1?})",
            modules.len(),
            tally.diffs,
            started.elapsed()
        );
        report.record(check.trim_end(), tally);
    }
    Ok(())
}

/// The project's own fixtures: every kernel, compression and the signed variant. Debian's kmod
/// 30 is built without zlib, so it cannot read `.ko.gz`: those are left out of the comparison
/// (modkit reads them; its snapshot tests cover them).
fn fixtures(
    sh: &Shell,
    kmod: &Kmod,
    modkit: &Path,
    args: &Args,
    report: &mut Report,
) -> Result<()> {
    let dir = crate::project_root().join("kmods/fixtures");
    let files: Vec<PathBuf> = module_files(&dir)?
        .into_iter()
        .filter(|path| !path.to_string_lossy().ends_with(".gz"))
        .collect();
    ensure!(
        !files.is_empty(),
        "no fixtures in {}: run `cargo xtask kmods --update-fixtures`",
        dir.display()
    );
    for variant in MODINFO_VARIANTS {
        let tally = compare_modinfo(sh, kmod, modkit, variant, &files, args.max_diffs)?;
        report.record(
            format!("fixtures modinfo {}", variant.join(" ")).trim_end(),
            tally,
        );
    }
    Ok(())
}

/// A scratch root holding hard links to a tree's modules and kmod's indexes for them, for
/// lookups by name. Made anew on every run, under the cache, never in the cached tree itself.
fn indexed_root(sh: &Shell, kmod: &Kmod, tree: &KernelTree) -> Result<PathBuf> {
    let root = crate::cache_dir().join("compat").join(&tree.release);
    crate::tools::kmod_indexed_root(sh, kmod, &tree.modules_dir, &root, &tree.release)?;
    Ok(root)
}

/// Names to look up with `modinfo NAME`: every module name, every built-in module, a sample of
/// alias patterns (a pattern matches itself), a sample of `symbol:` keys, and names that exist
/// nowhere.
fn lookup_names(moddir: &Path, modules: &[PathBuf]) -> Result<Vec<String>> {
    // A module's name as a user types it: its file name up to the first `.`, `-` kept (not
    // kmod's `path_to_modname`), so that both modinfos' normalisation is compared too.
    let mut names: Vec<String> = modules
        .iter()
        .filter_map(|path| {
            path.file_name()?
                .to_str()?
                .split('.')
                .next()
                .map(str::to_owned)
        })
        .collect();
    let read = |file: &str| {
        let path = moddir.join(file);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    for line in read("modules.builtin")?.lines() {
        if let Some(name) = line
            .rsplit('/')
            .next()
            .and_then(|base| base.split('.').next())
        {
            names.push(name.to_owned());
        }
    }
    for line in read("modules.alias")?.lines().step_by(10) {
        if let Some(pattern) = line
            .strip_prefix("alias ")
            .and_then(|rest| rest.rsplit_once(' '))
            .map(|(p, _)| p)
        {
            names.push(pattern.to_owned());
        }
    }
    for line in read("modules.symbols")?.lines().step_by(50) {
        if let Some(symbol) = line
            .strip_prefix("alias ")
            .and_then(|rest| rest.split(' ').next())
        {
            names.push(symbol.to_owned());
        }
    }
    names.extend(
        [
            "no_such_module",
            "no-such-module",
            "symbol:no_such_symbol",
            "pci:v0000FFFFd0000FFFFsv*",
        ]
        .map(String::from),
    );
    Ok(names)
}

#[allow(clippy::too_many_arguments)] // reason: the checks share the run's context
fn modinfo_names(
    sh: &Shell,
    kmod: &Kmod,
    modkit: &Path,
    tree: &KernelTree,
    root: &Path,
    modules: &[PathBuf],
    args: &Args,
    report: &mut Report,
) -> Result<()> {
    let moddir = root.join("lib/modules").join(&tree.release);
    let names = lookup_names(&moddir, modules)?;
    let root = root.to_string_lossy();
    for variant in [&["-F", "filename"][..], &[]] {
        let started = Instant::now();
        let mut full: Vec<&str> = vec!["-b", &root, "-k", &tree.release];
        full.extend_from_slice(variant);
        let tally = compare_modinfo(sh, kmod, modkit, &full, &names, args.max_diffs)?;
        let check = format!(
            "{} modinfo -b ROOT -k VERSION {} NAME",
            tree.release,
            variant.join(" ")
        );
        println!(
            "compat: {check}: {} names, {} differences ({:.1?})",
            names.len(),
            tally.diffs,
            started.elapsed()
        );
        report.record(&check, tally);
    }
    Ok(())
}
