//! `cargo xtask killtest`: `modkit depmod` killed with SIGKILL at random moments over a scratch
//! copy of Debian's 6.1 module tree must leave every index either the complete old file or the
//! complete new one; a run that cannot write must fail clearly and leave the old indexes alone;
//! two runs at once must leave a consistent set.
//!
//! The old indexes are kmod's depmod output for the tree with one more module (so every file,
//! text or binary, differs between old and new); the new ones are what a complete modkit run
//! writes. Before each trial the old files are put back; after it each file must equal one of
//! the two, read cleanly with modkit's reader, and kmod's modprobe must resolve modules with
//! whatever set is there.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::kernels::{self, Series};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of killed runs
    #[arg(long, default_value_t = 120)]
    trials: usize,
    /// Seed for the kill moments (default: from the clock); printed so a run can be repeated
    #[arg(long)]
    seed: Option<u64>,
    /// Number of rounds of two runs at once
    #[arg(long, default_value_t = 10)]
    concurrent: usize,
    /// Keep the scratch tree (its path is printed)
    #[arg(long)]
    keep: bool,
}

/// The files depmod writes (kmod 30's set plus modules.weakdep, which the default
/// pre-order flavour writes).
const OUTPUTS: &[&str] = &[
    "modules.dep",
    "modules.dep.bin",
    "modules.alias",
    "modules.alias.bin",
    "modules.softdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.builtin.bin",
    "modules.builtin.alias.bin",
    "modules.devname",
    "modules.weakdep",
];

/// The module present in the old tree and removed for the new one: a leaf with aliases.
const EXTRA_MODULE: &str = "kernel/drivers/net/dummy.ko";
/// Modules kmod's modprobe resolves after trials (a deep dependency chain and a leaf).
const PROBE: &[&str] = &["ext4", "nf_nat", "virtio_net"];

pub fn run(args: Args) -> Result<()> {
    let sh = Shell::new()?;
    let started = Instant::now();
    let modkit = crate::tools::build_modkit(&sh, "killtest")?;
    cmd!(sh, "depmod -V")
        .quiet()
        .ignore_stdout()
        .run()
        .context("kmod's depmod is needed (apt-get install kmod)")?;
    let tree = kernels::ensure(&sh, Series::V6_1)?;
    let scratch = std::env::temp_dir().join(format!("modkit-killtest-{}", std::process::id()));
    let checks = Instant::now();
    let result = trials(
        &sh,
        &args,
        &modkit,
        &tree.modules_dir,
        &tree.release,
        &scratch,
    );
    let checks = checks.elapsed();
    if args.keep || result.is_err() {
        println!("killtest: scratch tree kept in {}", scratch.display());
    } else {
        let _ = fs::remove_dir_all(&scratch);
    }
    result?;
    println!(
        "killtest: done in {:.1} s ({:.1} s without building modkit)",
        started.elapsed().as_secs_f64(),
        checks.as_secs_f64()
    );
    Ok(())
}

/// The scratch root and its module directory.
struct Scratch {
    root: PathBuf,
    dir: PathBuf,
    release: String,
    modkit: PathBuf,
}

impl Scratch {
    /// `modkit depmod -b ROOT RELEASE`, not yet waited for. std's `Command` rather than
    /// xshell: the trials need a handle to kill.
    fn spawn_depmod(&self) -> Result<Child> {
        Command::new(&self.modkit)
            .arg("depmod")
            .arg("-b")
            .arg(&self.root)
            .arg(&self.release)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning modkit depmod")
    }

    fn read_outputs(&self) -> BTreeMap<&'static str, Option<Vec<u8>>> {
        OUTPUTS
            .iter()
            .map(|&n| (n, fs::read(self.dir.join(n)).ok()))
            .collect()
    }

    /// Put the old files back (fresh inodes, so the cache sees them as changed).
    fn restore(&self, old: &BTreeMap<&'static str, Option<Vec<u8>>>) -> Result<()> {
        for (name, bytes) in old {
            let path = self.dir.join(name);
            let _ = fs::remove_file(&path);
            if let Some(bytes) = bytes {
                fs::write(&path, bytes).with_context(|| format!("restoring {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// Temporary files killed runs left behind; removed, counted.
    fn sweep_temporaries(&self) -> Result<usize> {
        let mut n = 0;
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                fs::remove_file(entry.path())?;
                n += 1;
            }
        }
        Ok(n)
    }
}

/// What a trial left: per file, old, new or damaged.
#[derive(Debug, Default)]
struct Tally {
    old: usize,
    new: usize,
    damaged: Vec<String>,
}

fn check_set(
    s: &Scratch,
    old: &BTreeMap<&'static str, Option<Vec<u8>>>,
    new: &BTreeMap<&'static str, Option<Vec<u8>>>,
    label: &str,
    tally: &mut Tally,
) -> Result<()> {
    for (name, now) in s.read_outputs() {
        if now == old[name] {
            tally.old += 1;
        } else if now == new[name] {
            tally.new += 1;
        } else {
            let keep = s.root.join(format!("damaged-{label}-{name}"));
            if let Some(bytes) = &now {
                fs::write(&keep, bytes)?;
            }
            tally.damaged.push(format!(
                "{label}: {name} is neither the old nor the new file ({} bytes; kept as {})",
                now.as_ref().map_or(0, Vec::len),
                keep.display()
            ));
            continue;
        }
        if name.ends_with(".bin")
            && let Some(bytes) = &now
            && let Err(err) = read_whole_index(bytes)
        {
            tally
                .damaged
                .push(format!("{label}: {name}: modkit's reader: {err}"));
        }
    }
    Ok(())
}

/// Every key and value of an index, through modkit's reader.
fn read_whole_index(bytes: &[u8]) -> Result<usize> {
    let index = modkit_index::Index::from_bytes(bytes)?;
    let mut n = 0;
    for entry in index.iter() {
        n += entry?.values.count();
    }
    Ok(n)
}

/// kmod's modprobe resolves each of [`PROBE`] with the indexes as they are.
fn kmod_resolves(sh: &Shell, s: &Scratch) -> Result<()> {
    let (root, release) = (&s.root, &s.release);
    for module in PROBE {
        let out = cmd!(
            sh,
            "modprobe -d {root} -S {release} --show-depends {module}"
        )
        .quiet()
        .read()
        .with_context(|| format!("kmod's modprobe --show-depends {module}"))?;
        ensure!(
            out.lines()
                .any(|l| l.starts_with("insmod ") && l.contains(module)),
            "kmod's modprobe --show-depends {module} printed no insmod line for it:\n{out}"
        );
    }
    Ok(())
}

/// A tiny xorshift generator: reproducible kill moments without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn trials(
    sh: &Shell,
    args: &Args,
    modkit: &Path,
    modules_dir: &Path,
    release: &str,
    scratch: &Path,
) -> Result<()> {
    let _ = fs::remove_dir_all(scratch);
    let root = scratch.join("root");
    let dir = root.join("lib/modules").join(release);
    fs::create_dir_all(dir.parent().unwrap())?;
    // Hard links for the module files (depmod only reads them); real copies of everything at
    // the top of the module directory, which depmod replaces.
    cmd!(sh, "cp -al {modules_dir} {dir}").run()?;
    for entry in fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.is_file() {
            let bytes = fs::read(&path)?;
            fs::remove_file(&path)?;
            fs::write(&path, bytes)?;
        }
    }
    ensure!(
        dir.join(EXTRA_MODULE).exists(),
        "{EXTRA_MODULE} is not in {}",
        modules_dir.display()
    );
    let s = Scratch {
        root: root.clone(),
        dir: dir.clone(),
        release: release.to_owned(),
        modkit: modkit.to_path_buf(),
    };

    // Old: kmod's depmod over the tree with the extra module. New: modkit's without it.
    cmd!(sh, "depmod -b {root} {release}")
        .run()
        .context("kmod's depmod")?;
    let old = s.read_outputs();
    fs::remove_file(dir.join(EXTRA_MODULE))?;
    let t0 = Instant::now();
    let out = cmd!(sh, "{modkit} depmod -b {root} {release}")
        .quiet()
        .ignore_stderr()
        .output()?;
    let cold = t0.elapsed();
    ensure!(out.status.success(), "a complete modkit depmod run failed");
    let new = s.read_outputs();
    let same: Vec<_> = OUTPUTS.iter().filter(|n| old[*n] == new[*n]).collect();
    if !same.is_empty() {
        // Files the extra module does not contribute to: a torn one still differs from both.
        println!("killtest: old and new are the same bytes for {same:?}");
    }
    for (name, bytes) in old.iter().chain(&new) {
        if let (true, Some(bytes)) = (name.ends_with(".bin"), bytes) {
            read_whole_index(bytes).with_context(|| format!("reference {name}"))?;
        }
    }
    // How long a run takes with the cache warm, as in the trials.
    s.restore(&old)?;
    let t0 = Instant::now();
    let mut child = s.spawn_depmod()?;
    ensure!(child.wait()?.success(), "a warm modkit depmod run failed");
    let warm = t0.elapsed();
    println!(
        "killtest: {} modules; a run takes {:.0} ms cold, {:.0} ms with its cache",
        count_modules(&dir)?,
        cold.as_secs_f64() * 1e3,
        warm.as_secs_f64() * 1e3
    );

    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    println!("killtest: {} trials, seed {seed}", args.trials);
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let (mut killed, mut finished, mut temporaries, mut mixed) = (0, 0, 0, 0);
    let trials_started = Instant::now();
    for trial in 0..args.trials {
        s.restore(&old)?;
        // Half the moments spread over the whole run, a little past its usual end; half in
        // its last part, where the files are written (the scan takes most of a run).
        let at = if trial % 2 == 0 {
            rng.unit() * 1.2
        } else {
            0.7 + rng.unit() * 0.4
        };
        let delay = warm.mul_f64(at);
        let mut child = s.spawn_depmod()?;
        std::thread::sleep(delay);
        match child.try_wait()? {
            Some(_) => finished += 1,
            None => {
                child.kill()?;
                killed += 1;
            }
        }
        child.wait()?;
        temporaries += s.sweep_temporaries()?;
        let before = (tally.old, tally.new);
        check_set(&s, &old, &new, &format!("trial{trial}"), &mut tally)?;
        // Killed between two renames: some files old, some new (each whole).
        let (olds, news) = (tally.old - before.0, tally.new - before.1);
        if olds > same.len() && news > 0 {
            mixed += 1;
        }
        if trial % 10 == 0 {
            kmod_resolves(sh, &s).with_context(|| format!("after trial {trial}"))?;
        }
    }
    println!(
        "killtest: {killed} runs killed, {finished} finished first, in {:.0} s; files left old \
         {}, new {}, damaged {}; {mixed} killed between two renames (a set of old and new \
         files); {temporaries} temporary files left by killed runs",
        trials_started.elapsed().as_secs_f64(),
        tally.old,
        tally.new,
        tally.damaged.len()
    );

    // Runs that cannot write.
    let cannot_write = cannot_write(sh, &s, &old)?;

    // Two runs at once.
    let mut both = Tally::default();
    let mut failed_runs = 0;
    for round in 0..args.concurrent {
        s.restore(&old)?;
        let mut a = s.spawn_depmod()?;
        let mut b = s.spawn_depmod()?;
        for child in [&mut a, &mut b] {
            if !child.wait()?.success() {
                failed_runs += 1;
            }
        }
        s.sweep_temporaries()?;
        check_set(&s, &old, &new, &format!("concurrent{round}"), &mut both)?;
        kmod_resolves(sh, &s).with_context(|| format!("after concurrent round {round}"))?;
    }
    println!(
        "killtest: {} rounds of two runs at once: {failed_runs} runs failed; files old {}, new \
         {}, damaged {}",
        args.concurrent,
        both.old,
        both.new,
        both.damaged.len()
    );

    let damaged: Vec<_> = tally
        .damaged
        .iter()
        .chain(&both.damaged)
        .chain(&cannot_write)
        .collect();
    if !damaged.is_empty() {
        for d in &damaged {
            eprintln!("killtest: {d}");
        }
        bail!("{} damaged index file(s) or failed checks", damaged.len());
    }
    ensure!(failed_runs == 0, "{failed_runs} concurrent run(s) failed");
    Ok(())
}

/// A read-only module directory, and a file-size limit: each run must fail, say why, and leave
/// the old indexes untouched. Returns the problems found.
fn cannot_write(
    sh: &Shell,
    s: &Scratch,
    old: &BTreeMap<&'static str, Option<Vec<u8>>>,
) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let (modkit, root, dir, release) = (&s.modkit, &s.root, &s.dir, &s.release);

    // Read-only: root ignores permission bits, so a read-only bind mount in a private mount
    // namespace; without the privileges for that, chmod (which then works).
    s.restore(old)?;
    let ro_script =
        r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@""#;
    let unshared = cmd!(sh, "unshare -m --propagation private true")
        .quiet()
        .ignore_stderr()
        .run();
    let out = if unshared.is_ok() {
        cmd!(sh, "unshare -m --propagation private sh -c {ro_script} sh {dir} {modkit} depmod -b {root} {release}")
    } else {
        cmd!(sh, "chmod a-w {dir}").run()?;
        cmd!(sh, "{modkit} depmod -b {root} {release}")
    }
    .quiet()
    .ignore_status()
    .output()?;
    if unshared.is_err() {
        cmd!(sh, "chmod u+w {dir}").run()?;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "killtest: read-only directory: exit {:?}, {}",
        out.status.code(),
        stderr.trim()
    );
    expect_clean_failure(
        &out,
        &stderr,
        "Read-only file system",
        "read-only",
        &mut problems,
    );
    check_untouched(s, old, "read-only", &mut problems);

    // File-size limit: depmod ignores SIGXFSZ itself, so whatever the caller's disposition, a
    // write fails with EFBIG and the run ends with a clear error.
    for (label, script) in [
        (
            "file-size limit",
            r#"trap '' XFSZ; ulimit -f 64; exec "$0" "$@""#,
        ),
        (
            "file-size limit, SIGXFSZ default",
            r#"ulimit -f 64; exec "$0" "$@""#,
        ),
    ] {
        s.restore(old)?;
        let out = cmd!(sh, "sh -c {script} {modkit} depmod -b {root} {release}")
            .quiet()
            .ignore_status()
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!(
            "killtest: {label}: exit {:?}, {}",
            out.status.code(),
            if stderr.trim().is_empty() {
                "(nothing on stderr)"
            } else {
                stderr.trim()
            }
        );
        expect_clean_failure(&out, &stderr, "File too large", label, &mut problems);
        s.sweep_temporaries()?;
        check_untouched(s, old, label, &mut problems);
    }
    Ok(problems)
}

fn expect_clean_failure(
    out: &std::process::Output,
    stderr: &str,
    reason: &str,
    label: &str,
    problems: &mut Vec<String>,
) {
    if out.status.success() {
        problems.push(format!("{label}: the run succeeded"));
    } else if out.status.code().is_none() {
        problems.push(format!("{label}: the run died of a signal"));
    } else if !stderr.contains(reason) || !stderr.contains("modules.") {
        problems.push(format!("{label}: unclear error: {}", stderr.trim()));
    }
}

fn check_untouched(
    s: &Scratch,
    old: &BTreeMap<&'static str, Option<Vec<u8>>>,
    label: &str,
    problems: &mut Vec<String>,
) {
    for (name, now) in s.read_outputs() {
        if now != old[name] {
            problems.push(format!("{label}: {name} changed although the run failed"));
        }
    }
}

fn count_modules(dir: &Path) -> Result<usize> {
    Ok(crate::compat::module_files(dir)?.len())
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn rng_stays_in_the_unit_interval() {
        let mut rng = Rng(12345);
        for _ in 0..10_000 {
            let x = rng.unit();
            assert!((0.0..1.0).contains(&x));
        }
    }
}
