//! `cargo xtask bench`, the quick invocations on Debian 6.1's tree: `modprobe -R` (one
//! modalias as udev asks, about 4,000 in one process as xargs hands them out, and one
//! concrete modalias per alias pattern, about 25,000), `modinfo` of one large file and by
//! name, `modprobe --show-depends`, and insmod, rmmod and lsmod as far as this host lets them
//! run. kmod 30's and modkit's runs are interleaved over the same indexes (kmod's).
//!
//! Every timed run writes its stdout and stderr to files, read after its clock stops: its exit
//! status, stdout and stderr must be exactly what kmod's first (untimed) run gave.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail, ensure};
use xshell::{Shell, cmd};

use super::{Args, Row, Sample, Table, Value, describe, run_timed};
use crate::kernels::KernelTree;
use crate::tools::Kmod;

/// A modalias of QEMU's virtio-blk PCI function (`virtio_pci`): udev's one-alias case.
const ONE_ALIAS: &str = "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00";

/// Names per process in the middle regime (what `xargs` hands one `modprobe -a -R`).
const MIDDLE_NAMES: usize = 4000;

/// A large plain module of the 6.1 tree (3.8 MB), for `modinfo FILE`, and its name.
const LARGE_MODULE: &str = "kernel/fs/btrfs/btrfs.ko";
const LARGE_NAME: &str = "btrfs";

/// A module with dependencies and one softdep line, for `--show-depends`: kmod 30 honours only
/// the first matching softdep line, modkit every one, so btrfs (four lines) answers differently
/// by design.
const DEPENDS_NAME: &str = "ext4";

/// The medians of both tools' runs.
struct Pair {
    kmod: Sample,
    modkit: Sample,
}

/// How a row's runs must end, as kmod's first run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    /// Exit 0, something on stdout, nothing on stderr.
    Answering,
    /// A non-zero exit with an error on stderr: what this host allows (no module support).
    Refused,
}

/// Which parts of each run are compared with kmod's first run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Status, stdout and stderr.
    All,
    /// Status and stdout: kmod adds a libkmod log line on stderr that modkit does not print.
    StatusStdout,
}

/// One row to measure: the work, what is run, the goal, the tool and its arguments, how its
/// runs end, what is compared, and the number of timed runs of each tool.
type Spec = (String, String, f64, Vec<String>, Ends, Compare, usize);

/// The kmod-indexed scratch root of the 6.1 tree and what the rows run in it.
struct Setup<'a> {
    sh: &'a Shell,
    kmod: &'a Kmod,
    modkit: &'a Path,
    root: PathBuf,
    moddir: PathBuf,
    release: String,
    /// An empty modprobe.d, so the host's configuration plays no part.
    empty: PathBuf,
    logs: PathBuf,
    runs: usize,
}

/// Measure the quick rows on the 6.1 tree `tree` and add them to `table`.
pub(crate) fn rows(
    sh: &Shell,
    kmod: &Kmod,
    modkit: &Path,
    tree: &KernelTree,
    args: &Args,
    table: &mut Table,
) -> Result<()> {
    let release = tree.release.clone();
    let root = crate::cache_dir()
        .join("bench")
        .join(format!("quick-{release}"));
    let moddir = crate::tools::kmod_indexed_root(sh, kmod, &tree.modules_dir, &root, &release)?;
    let empty = root.join("modprobe.d");
    let logs = root.join("logs");
    std::fs::create_dir_all(&empty)?;
    std::fs::create_dir_all(&logs)?;
    let setup = Setup {
        sh,
        kmod,
        modkit,
        root: root.clone(),
        moddir,
        release,
        empty,
        logs,
        runs: args.quick_runs,
    };
    let result = setup.all_rows(table, args.runs);
    let _ = std::fs::remove_dir_all(&root);
    result
}

impl Setup<'_> {
    fn all_rows(&self, table: &mut Table, alias_set_runs: usize) -> Result<()> {
        let names = crate::compat::modprobe::concrete_aliases(&self.moddir)?;
        ensure!(
            names.len() > MIDDLE_NAMES,
            "only {} concrete aliases in {}",
            names.len(),
            self.moddir.display()
        );
        // Every n-th name, so the middle regime's names spread over the whole alias set.
        let step = (names.len() / MIDDLE_NAMES).max(1);
        let middle: Vec<String> = names.iter().step_by(step).cloned().collect();
        let file = self.moddir.join(LARGE_MODULE);

        let rows: [Spec; 9] = [
            (
                "modinfo FILE, one large plain module".into(),
                format!("modinfo {LARGE_MODULE} of the 6.1 tree (3.8 MB)"),
                0.8,
                vec!["modinfo".into(), path(&file)],
                Ends::Answering,
                Compare::All,
                self.runs,
            ),
            (
                format!("modprobe -a -R, {} aliases per process", middle.len()),
                "modprobe -R -a with every n-th concrete modalias of the set".into(),
                0.25,
                self.modprobe(&["-R", "-a"], &middle),
                Ends::Answering,
                Compare::All,
                self.runs,
            ),
            (
                "modprobe -R, one alias".into(),
                format!("modprobe -R {ONE_ALIAS} (virtio_pci)"),
                0.5,
                self.modprobe(&["-R"], &[ONE_ALIAS.to_string()]),
                Ends::Answering,
                Compare::All,
                self.runs,
            ),
            (
                format!("modprobe -a -R, {} aliases per process", names.len()),
                "modprobe -R -a with one concrete modalias per alias pattern".into(),
                0.5,
                self.modprobe(&["-R", "-a"], &names),
                Ends::Answering,
                Compare::All,
                alias_set_runs,
            ),
            (
                "modinfo NAME".into(),
                format!("modinfo -b ROOT -k RELEASE {LARGE_NAME}: the indexes, then the file"),
                1.0,
                vec![
                    "modinfo".into(),
                    "-b".into(),
                    path(&self.root),
                    "-k".into(),
                    self.release.clone(),
                    LARGE_NAME.into(),
                ],
                Ends::Answering,
                Compare::All,
                self.runs,
            ),
            (
                "modprobe --show-depends".into(),
                format!(
                    "modprobe --show-depends {DEPENDS_NAME} (its dependencies, from the \
                     indexes; not btrfs: its four softdep lines are modkit's one deliberate \
                     difference)"
                ),
                1.0,
                self.modprobe(&["--show-depends"], &[DEPENDS_NAME.to_string()]),
                Ends::Answering,
                Compare::All,
                self.runs,
            ),
            (
                "insmod FILE (refused here)".into(),
                format!(
                    "insmod {LARGE_MODULE}: the host kernel has no module support, so both run \
                     up to finit_module, get ENOSYS, fall back to reading the file for \
                     init_module, get ENOSYS again and report it"
                ),
                1.0,
                vec!["insmod".into(), path(&file)],
                Ends::Refused,
                Compare::All,
                self.runs,
            ),
            (
                "rmmod NAME (not loaded)".into(),
                format!(
                    "rmmod {LARGE_NAME}: startup, the check in /sys/module, \"not currently \
                     loaded\" (nothing is loadable on this host)"
                ),
                1.0,
                vec!["rmmod".into(), LARGE_NAME.into()],
                Ends::Refused,
                Compare::All,
                self.runs,
            ),
            (
                "lsmod (no /proc/modules)".into(),
                "lsmod: startup and the failed open of /proc/modules (absent on this host); \
                 stderr not compared: kmod adds libkmod's log line"
                    .into(),
                1.0,
                vec!["lsmod".into()],
                Ends::Refused,
                Compare::StatusStdout,
                self.runs,
            ),
        ];
        for (work, measures, goal, words, ends, compare, runs) in rows {
            let (pair, same, compared) = self.side_by_side(&words, ends, compare, runs)?;
            table.push(Row {
                work,
                measures,
                kmod: Value::Seconds(pair.kmod.seconds),
                modkit: Value::Seconds(pair.modkit.seconds),
                cpu: Some(pair.modkit.cpu_seconds / pair.kmod.cpu_seconds),
                goal,
                same,
                compared,
                runs,
            });
        }
        Ok(())
    }

    /// `modprobe -d ROOT -S RELEASE -C EMPTY FLAGS... NAMES...` as words after the tool.
    fn modprobe(&self, flags: &[&str], names: &[String]) -> Vec<String> {
        let mut words = vec![
            "modprobe".to_string(),
            "-d".into(),
            path(&self.root),
            "-S".into(),
            self.release.clone(),
            "-C".into(),
            path(&self.empty),
        ];
        words.extend(flags.iter().map(|f| f.to_string()));
        words.extend(names.iter().cloned());
        words
    }

    /// The command of kmod's tool (`words[0]`, its link) or of modkit's (`modkit TOOL ...`).
    fn command(&self, words: &[String], ours: bool) -> Result<Command> {
        let (tool, rest) = words.split_first().expect("a tool");
        let sh = self.sh;
        Ok(if ours {
            let modkit = self.modkit;
            cmd!(sh, "{modkit} {tool} {rest...}").into()
        } else {
            let program = match tool.as_str() {
                "modinfo" => self.kmod.modinfo.clone(),
                "modprobe" => self.kmod.modprobe.clone(),
                other => modkit_testkit::kmod(other)
                    .map_err(|missing| anyhow::anyhow!("the kmod oracle: {missing}"))?,
            };
            cmd!(sh, "{program} {rest...}").into()
        })
    }

    /// kmod's and modkit's runs of `words`, interleaved, after one untimed run of each (kmod's
    /// is the reference): the two medians, whether every run answered as the reference, and
    /// what was compared.
    fn side_by_side(
        &self,
        words: &[String],
        ends: Ends,
        compare: Compare,
        runs: usize,
    ) -> Result<(Pair, bool, String)> {
        let reference = run_timed(self.command(words, false)?, &self.logs)?;
        let described = describe(&self.command(words, false)?);
        let ended_as_expected = match ends {
            Ends::Answering => {
                reference.exit_code() == Some(0)
                    && reference.stderr.is_empty()
                    && !reference.stdout.is_empty()
            }
            Ends::Refused => {
                !matches!(reference.exit_code(), Some(0) | None) && !reference.stderr.is_empty()
            }
        };
        if !ended_as_expected {
            bail!(
                "kmod's {described} ended with {} and said:\n{}",
                reference.how(),
                String::from_utf8_lossy(&reference.stderr).trim_end()
            );
        }
        let same_as_reference = |run: &super::Timed| {
            run.status == reference.status
                && run.stdout == reference.stdout
                && (compare == Compare::StatusStdout || run.stderr == reference.stderr)
        };
        let warm_up = run_timed(self.command(words, true)?, &self.logs)?;
        let mut differing = usize::from(!same_as_reference(&warm_up));
        if differing > 0 {
            println!(
                "  modkit's {} ended with {} and answered differently from kmod's; stderr:\n{}",
                describe(&self.command(words, true)?),
                warm_up.how(),
                String::from_utf8_lossy(&warm_up.stderr).trim_end()
            );
        }
        let (mut k, mut o) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            for (ours, samples) in [(false, &mut k), (true, &mut o)] {
                let run = run_timed(self.command(words, ours)?, &self.logs)?;
                samples.push(run.sample);
                if !same_as_reference(&run) {
                    differing += 1;
                }
            }
        }
        let lines = reference.stdout.iter().filter(|&&b| b == b'\n').count()
            + reference.stderr.iter().filter(|&&b| b == b'\n').count();
        let compared = format!(
            "{} of {} runs, {lines} lines each",
            2 * runs + 1 - differing,
            2 * runs + 1
        );
        let pair = Pair {
            kmod: Sample::median(&k),
            modkit: Sample::median(&o),
        };
        Ok((pair, differing == 0, compared))
    }
}

fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}
