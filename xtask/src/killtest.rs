//! `cargo xtask killtest`: `modkit depmod` killed with SIGKILL at random moments over a scratch
//! copy of Debian's 6.1 module tree must leave every index either the complete old file or the
//! complete new one, and the next run must clear the temporary files the killed one left; a run
//! that cannot write must fail clearly and leave the old indexes alone; two runs at once must
//! leave a consistent set.
//!
//! The old indexes are kmod's depmod output for the tree with one more module (so every file
//! that module contributes to differs between old and new); the new ones are what a complete
//! modkit run writes. Before each trial the old files are put back; after it each file must
//! equal one of the two and read cleanly with modkit's reader, and kmod's modprobe must resolve
//! modules with whatever set is there, as it does with a complete set.
//!
//! A third of the kills come at a uniform moment of a whole run; two thirds aim at the writing
//! (a few milliseconds of a run of hundreds): the module directory is watched for the run's
//! first temporary file, and the kill comes a uniform moment of the calibrated writing time
//! later. Where each killed run really was is read from what it left, not from the clock: its
//! own `.NAME.PID.tmp` files, a set partly replaced, or the earlier runs' temporaries cleared
//! (the first step of writing). The test fails when fewer than a quarter of the trials were
//! killed while files were being written: it would have checked too little.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use crate::kernels::{self, Series};
use crate::tools::{DEPMOD_OUTPUTS as OUTPUTS, Kmod, median};

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

/// The module present in the old tree and removed for the new one: a leaf with aliases.
const EXTRA_MODULE: &str = "kernel/drivers/net/dummy.ko";
/// Modules kmod's modprobe resolves after every trial (a deep dependency chain and a leaf).
const PROBE: &[&str] = &["ext4", "nf_nat", "virtio_net"];
/// Below this share of trials killed while writing, the run checked too little and fails.
/// Two thirds of the trials aim at the writing, so a run whose aim works lands well above it
/// (measured: about nine in ten aimed kills land, the rest just after); kills at uniform
/// moments of a run land about once in a hundred (the writing is about 1% of a run), so a
/// broken aim falls far below it.
const MIN_WRITING_SHARE: f64 = 0.25;
/// Complete warm runs timed to calibrate the kill moments.
const CALIBRATION_RUNS: usize = 5;

pub fn run(args: Args) -> Result<()> {
    ensure!(args.trials > 0, "--trials must be at least 1");
    let sh = Shell::new()?;
    let started = Instant::now();
    let modkit = crate::tools::build_modkit(&sh, "killtest")?;
    let kmod = Kmod::find()?;
    let depmod = &kmod.depmod;
    cmd!(sh, "{depmod} -V")
        .quiet()
        .ignore_stdout()
        .run()
        .context("kmod's depmod does not run")?;
    let tree = kernels::ensure(&sh, Series::V6_1)?;
    let scratch = std::env::temp_dir().join(format!("modkit-killtest-{}", std::process::id()));
    let checks = Instant::now();
    let result = trials(
        &sh,
        &args,
        &kmod,
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

/// A set of index files: each output's bytes, `None` when it is absent.
type Files = BTreeMap<&'static str, Option<Vec<u8>>>;

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

    /// One complete run, which must succeed and print nothing; its wall time.
    fn complete_run(&self, what: &str) -> Result<Duration> {
        let t0 = Instant::now();
        let out = self.spawn_depmod()?.wait_with_output()?;
        let took = t0.elapsed();
        ensure_clean_exit(&out, what)?;
        Ok(took)
    }

    fn read_outputs(&self) -> Files {
        OUTPUTS
            .iter()
            .map(|&n| (n, fs::read(self.dir.join(n)).ok()))
            .collect()
    }

    /// Put the old files back (fresh inodes, so the cache sees them as changed). Temporary
    /// files are left alone: clearing them is depmod's job, and checked.
    fn restore(&self, old: &Files) -> Result<()> {
        for (name, bytes) in old {
            let path = self.dir.join(name);
            let _ = fs::remove_file(&path);
            if let Some(bytes) = bytes {
                fs::write(&path, bytes).with_context(|| format!("restoring {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// The temporary files in the module directory (`.NAME.PID.tmp`), by file name, with the
    /// PID of the run that wrote each (`None` when the name does not parse as depmod's).
    fn temporaries(&self) -> Result<BTreeMap<String, Option<u32>>> {
        let mut found = BTreeMap::new();
        for entry in
            fs::read_dir(&self.dir).with_context(|| format!("reading {}", self.dir.display()))?
        {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if let Some(rest) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
                let pid = rest
                    .rsplit_once('.')
                    .filter(|(output, _)| OUTPUTS.contains(output))
                    .and_then(|(_, pid)| pid.parse().ok());
                found.insert(name, pid);
            }
        }
        Ok(found)
    }
}

/// The run must have exited 0 with nothing on stderr.
fn ensure_clean_exit(out: &Output, what: &str) -> Result<()> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && stderr.trim().is_empty(),
        "{what}: modkit depmod ended with {} and said: {}",
        out.status,
        stderr.trim()
    );
    Ok(())
}

/// What the trials left, file by file: old, new or damaged.
#[derive(Debug, Default)]
struct Tally {
    old: usize,
    new: usize,
    damaged: Vec<String>,
}

/// Check each output against the old and new sets (and, for `.bin`, modkit's reader); returns
/// how many of the files that differ between the sets are old and how many new.
fn check_set(
    s: &Scratch,
    old: &Files,
    new: &Files,
    label: &str,
    tally: &mut Tally,
) -> Result<(usize, usize)> {
    let (mut olds, mut news) = (0, 0);
    for (name, now) in s.read_outputs() {
        let differs = old[name] != new[name];
        if now == old[name] {
            tally.old += 1;
            olds += usize::from(differs);
        } else if now == new[name] {
            tally.new += 1;
            news += usize::from(differs);
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
    Ok((olds, news))
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

/// kmod's modprobe over the scratch tree: `--show-depends` of each of [`PROBE`] must print
/// what it prints over a complete old or new set, every time; the resolutions are counted.
struct Resolver {
    modprobe: PathBuf,
    /// Per module, the answers over the complete sets.
    expected: BTreeMap<&'static str, Vec<String>>,
    resolutions: usize,
}

impl Resolver {
    fn show_depends(&self, sh: &Shell, s: &Scratch, module: &str) -> Result<String> {
        let (modprobe, root, release) = (&self.modprobe, &s.root, &s.release);
        let out = cmd!(
            sh,
            "{modprobe} -d {root} -S {release} --show-depends {module}"
        )
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("running kmod's modprobe --show-depends {module}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success() && out.stderr.is_empty(),
            "kmod's modprobe --show-depends {module} ended with {} and said: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(stdout.into_owned())
    }

    /// Record the answers over the complete set now in place.
    fn learn(&mut self, sh: &Shell, s: &Scratch) -> Result<()> {
        for &module in PROBE {
            let answer = self.show_depends(sh, s, module)?;
            ensure!(
                answer
                    .lines()
                    .any(|l| l.starts_with("insmod ") && l.contains(&format!("/{module}.ko"))),
                "kmod's modprobe --show-depends {module} printed no insmod line for it:\n{answer}"
            );
            let known = self.expected.entry(module).or_default();
            if !known.contains(&answer) {
                known.push(answer);
            }
        }
        Ok(())
    }

    /// Resolve every module of [`PROBE`] over the set as it is.
    fn check(&mut self, sh: &Shell, s: &Scratch, label: &str) -> Result<()> {
        for &module in PROBE {
            let answer = self.show_depends(sh, s, module).context(label.to_owned())?;
            self.resolutions += 1;
            ensure!(
                self.expected[module].contains(&answer),
                "{label}: kmod's modprobe --show-depends {module} answered differently than \
                 over a complete set:\n{answer}"
            );
        }
        Ok(())
    }
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

/// Where a killed run was when it died, from what it left in the module directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No temporary of its own, every changed file still old, earlier temporaries still there.
    Before,
    /// Its own temporary left, the set partly replaced, or the earlier runs' temporaries
    /// cleared (the first step of writing) with nothing renamed yet.
    Writing,
    /// No temporary of its own and every changed file new: killed after the last rename
    /// (saving its cache, exiting).
    After,
    /// It exited before the kill.
    Finished,
}

impl Phase {
    const ALL: [Phase; 4] = [Phase::Before, Phase::Writing, Phase::After, Phase::Finished];

    fn name(self) -> &'static str {
        match self {
            Phase::Before => "before writing",
            Phase::Writing => "while writing",
            Phase::After => "after writing",
            Phase::Finished => "finished first",
        }
    }
}

/// How a trial picks its kill moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aim {
    /// Uniformly over 1.2 median complete runs from the spawn: kills in every phase.
    Anywhere,
    /// Uniformly over 1.25 times the writing time from the moment its first temporary file
    /// appears: kills while files are written, and some just after.
    Writing,
}

/// How often the module directory is looked at while a run is watched.
const POLL: Duration = Duration::from_micros(100);

/// What watching the module directory saw of one run, as times from its spawn.
#[derive(Debug, Default, Clone, Copy)]
struct Watch {
    /// A temporary file of the run first seen.
    first: Option<Duration>,
    /// A temporary file of the run last seen.
    last: Option<Duration>,
    /// The run seen gone.
    exited: Option<Duration>,
}

/// Whether the run `pid` has a temporary file (`.NAME.PID.tmp`) in `dir` now.
fn has_temporary(dir: &Path, pid: u32) -> Result<bool> {
    let suffix = format!(".{pid}.tmp");
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(&suffix) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Look at the module directory every [`POLL`] until the run exits, or, with `until_first`,
/// until its first temporary file appears. The child is not reaped.
fn watch(dir: &Path, child: &mut Child, t0: Instant, until_first: bool) -> Result<Watch> {
    let mut seen = Watch::default();
    loop {
        if child.try_wait()?.is_some() {
            seen.exited = Some(t0.elapsed());
            return Ok(seen);
        }
        if has_temporary(dir, child.id())? {
            let now = t0.elapsed();
            seen.first.get_or_insert(now);
            seen.last = Some(now);
            if until_first {
                return Ok(seen);
            }
        }
        std::thread::sleep(POLL);
    }
}

/// One killed (or finished) run, for the report.
#[derive(Debug, Clone, Copy)]
struct Trial {
    aim: Aim,
    at: f64,
    phase: Phase,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn trials(
    sh: &Shell,
    args: &Args,
    kmod: &Kmod,
    modkit: &Path,
    modules_dir: &Path,
    release: &str,
    scratch: &Path,
) -> Result<()> {
    let _ = fs::remove_dir_all(scratch);
    let root = scratch.join("root");
    let dir = root.join("lib/modules").join(release);
    fs::create_dir_all(dir.parent().context("module dir has a parent")?)?;
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
    let depmod = &kmod.depmod;
    cmd!(sh, "{depmod} -b {root} {release}")
        .run()
        .context("kmod's depmod")?;
    let old = s.read_outputs();
    fs::remove_file(dir.join(EXTRA_MODULE))?;
    let cold = s.complete_run("the first complete run")?;
    let new = s.read_outputs();
    let same: Vec<&str> = OUTPUTS
        .iter()
        .copied()
        .filter(|n| old[n] == new[n])
        .collect();
    let changing = OUTPUTS.len() - same.len();
    ensure!(
        changing >= 2,
        "old and new differ in {changing} file(s): a partly replaced set could not be told apart"
    );
    if !same.is_empty() {
        // Files the extra module does not contribute to: a torn one still differs from both.
        println!("killtest: old and new are the same bytes for {same:?}");
    }
    for (name, bytes) in old.iter().chain(&new) {
        if let (true, Some(bytes)) = (name.ends_with(".bin"), bytes) {
            read_whole_index(bytes).with_context(|| format!("reference {name}"))?;
        }
    }
    let mut resolver = Resolver {
        modprobe: kmod.modprobe.clone(),
        expected: BTreeMap::new(),
        resolutions: 0,
    };
    resolver.learn(sh, &s).context("over the new set")?;
    s.restore(&old)?;
    resolver.learn(sh, &s).context("over the old set")?;
    let leftovers = s.temporaries()?;
    ensure!(
        leftovers.is_empty(),
        "a complete run left temporary files: {:?}",
        leftovers.keys()
    );

    // Calibration: complete runs with the cache warm, as in the trials, watched for when they
    // write (their temporary files seen first and last).
    let (mut warm, mut first, mut writing) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..CALIBRATION_RUNS {
        s.restore(&old)?;
        let t0 = Instant::now();
        let mut child = s.spawn_depmod()?;
        let seen = watch(&s.dir, &mut child, t0, false)?;
        ensure_clean_exit(&child.wait_with_output()?, "a calibration run")?;
        warm.push(seen.exited.unwrap_or_else(|| t0.elapsed()));
        if let (Some(a), Some(b)) = (seen.first, seen.last) {
            first.push(a);
            writing.push(b - a);
        }
    }
    ensure!(
        !first.is_empty(),
        "no temporary file was seen in {CALIBRATION_RUNS} complete runs, looking every {} µs: \
         the writing cannot be aimed at",
        POLL.as_micros()
    );
    // Sorted: the report shows the fastest and the slowest.
    warm.sort_unstable();
    let run_time = median(warm.clone());
    let first = median(first);
    // Per run: the runs' start times vary by more than the writing lasts.
    let writing_time = median(writing).max(POLL);
    println!(
        "killtest: calibration: {} modules; a complete run takes {:.0} ms cold, {:.0} ms with \
         its cache (median of {CALIBRATION_RUNS}, {:.0}-{:.0} ms); it starts writing at {:.1} ms \
         and writes for {:.1} ms (its temporaries seen first and last, medians)",
        count_modules(&dir)?,
        ms(cold),
        ms(run_time),
        ms(warm[0]),
        ms(warm[warm.len() - 1]),
        ms(first),
        ms(writing_time),
    );

    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1
    });
    println!(
        "killtest: {} trials, seed {seed}: one in three killed at a uniform moment over {:.0} \
         ms from its spawn, two at a uniform moment over {:.1} ms from its first temporary",
        args.trials,
        ms(run_time.mul_f64(1.2)),
        ms(writing_time.mul_f64(1.25)),
    );
    let mut rng = Rng(seed);
    let mut tally = Tally::default();
    let mut log: Vec<Trial> = Vec::with_capacity(args.trials);
    let mut problems: Vec<String> = Vec::new();
    // Temporary files left by earlier killed runs, by name, with their runs' PIDs.
    let mut stale: BTreeMap<String, Option<u32>> = BTreeMap::new();
    let (mut left, mut cleared, mut clearing_runs, mut survived, mut mixed) = (0, 0, 0, 0, 0);
    let trials_started = Instant::now();
    for trial in 0..args.trials {
        let label = format!("trial{trial}");
        let aim = if trial % 3 == 0 {
            Aim::Anywhere
        } else {
            Aim::Writing
        };
        s.restore(&old)?;
        let t0 = Instant::now();
        let mut child = s.spawn_depmod()?;
        let pid = child.id();
        let kill_at = match aim {
            Aim::Anywhere => Some(run_time.mul_f64(1.2 * rng.unit())),
            Aim::Writing => watch(&s.dir, &mut child, t0, true)?
                .first
                .map(|seen| seen + writing_time.mul_f64(1.25 * rng.unit())),
        };
        if let Some(at) = kill_at {
            std::thread::sleep(at.saturating_sub(t0.elapsed()));
        }
        let exited = child.try_wait()?.is_some();
        if !exited {
            child.kill()?;
        }
        let at = t0.elapsed().as_secs_f64() / run_time.as_secs_f64();
        let out = child.wait_with_output()?;
        if exited && let Err(err) = ensure_clean_exit(&out, &label) {
            problems.push(format!("{err:#}"));
        }

        let temps = s.temporaries()?;
        let own = temps.values().filter(|p| **p == Some(pid)).count();
        let (olds, news) = check_set(&s, &old, &new, &label, &mut tally)?;
        let vanished = stale.keys().filter(|k| !temps.contains_key(*k)).count();
        let phase = if exited {
            Phase::Finished
        } else if own > 0 || (olds > 0 && news > 0) || (news == 0 && vanished > 0) {
            Phase::Writing
        } else if news == 0 {
            Phase::Before
        } else {
            Phase::After
        };
        if olds > 0 && news > 0 {
            mixed += 1;
        }
        if exited && own > 0 {
            problems.push(format!(
                "{label}: a run that finished left {own} temporary file(s)"
            ));
        }
        // depmod clears the temporaries of runs that are gone before it writes its first
        // file: one that got as far as a temporary or a rename of its own cleared them all.
        let past_clearing = exited || own > 0 || news > 0;
        for (name, run) in &temps {
            if *run == Some(pid) {
                continue;
            }
            if run.is_none() || !stale.contains_key(name) {
                problems.push(format!("{label}: unexpected temporary file {name}"));
            } else if past_clearing {
                survived += 1;
                problems.push(format!(
                    "{label}: the run wrote its files but left {name}, a killed run's temporary"
                ));
            }
        }
        left += own;
        if vanished > 0 {
            cleared += vanished;
            clearing_runs += 1;
        }
        stale = temps;

        resolver.check(sh, &s, &format!("after trial {trial}"))?;
        log.push(Trial { aim, at, phase });
    }
    let trials_took = trials_started.elapsed();

    // The last killed runs' temporaries: a complete run must clear them.
    s.restore(&old)?;
    s.complete_run("the complete run after the trials")?;
    let after = s.temporaries()?;
    let vanished = stale.keys().filter(|k| !after.contains_key(*k)).count();
    if vanished > 0 {
        cleared += vanished;
        clearing_runs += 1;
    }
    if !after.is_empty() {
        survived += after.len();
        problems.push(format!(
            "the complete run after the trials left temporary files: {:?}",
            after.keys()
        ));
    }
    let (olds, _) = check_set(&s, &old, &new, "final", &mut Tally::default())?;
    if olds > 0 {
        problems.push(format!(
            "the complete run after the trials left {olds} old file(s)"
        ));
    }
    resolver.check(sh, &s, "after the complete run")?;

    report_moments(&log, run_time);
    let count = |phase: Phase| log.iter().filter(|t| t.phase == phase).count();
    let writing = count(Phase::Writing);
    let aimed = log.iter().filter(|t| t.aim == Aim::Writing).count();
    let aimed_hits = log
        .iter()
        .filter(|t| t.aim == Aim::Writing && t.phase == Phase::Writing)
        .count();
    println!(
        "killtest: {} trials in {:.0} s: {} killed before writing, {writing} killed while \
         writing ({mixed} of them between two renames, old and new files side by side), {} \
         killed after writing, {} finished before the kill; aimed kills: {aimed_hits} of \
         {aimed} landed while writing",
        args.trials,
        trials_took.as_secs_f64(),
        count(Phase::Before),
        count(Phase::After),
        count(Phase::Finished),
    );
    println!(
        "killtest: files after the trials: old {}, new {}, damaged {}",
        tally.old,
        tally.new,
        tally.damaged.len()
    );
    println!(
        "killtest: killed runs left {left} temporary files; depmod cleared {cleared} of them \
         itself, in {clearing_runs} later runs; {} a run that got to writing",
        if survived == 0 {
            "none survived".to_owned()
        } else {
            format!("{survived} times one survived")
        }
    );
    let needed = (MIN_WRITING_SHARE * args.trials as f64).ceil() as usize;
    if writing < needed {
        problems.push(format!(
            "only {writing} of {} trials were killed while files were being written (at least \
             {needed} needed): the kills came too early or too late to test the writing",
            args.trials
        ));
    }
    if left == 0 || cleared == 0 {
        problems.push(format!(
            "killed runs left {left} temporary files and depmod cleared {cleared}: its cleanup \
             of them went unchecked"
        ));
    }

    // Runs that cannot write.
    problems.extend(cannot_write(sh, &s, &old)?);

    // Two runs at once.
    let mut both = Tally::default();
    let mut failed_runs = 0;
    for round in 0..args.concurrent {
        let label = format!("concurrent{round}");
        s.restore(&old)?;
        let a = s.spawn_depmod()?;
        let b = s.spawn_depmod()?;
        for child in [a, b] {
            if let Err(err) = ensure_clean_exit(&child.wait_with_output()?, &label) {
                problems.push(format!("{err:#}"));
                failed_runs += 1;
            }
        }
        let temps = s.temporaries()?;
        if !temps.is_empty() {
            problems.push(format!(
                "{label}: two complete runs left temporary files: {:?}",
                temps.keys()
            ));
        }
        check_set(&s, &old, &new, &label, &mut both)?;
        resolver.check(sh, &s, &format!("after concurrent round {round}"))?;
    }
    println!(
        "killtest: {} rounds of two runs at once: {failed_runs} runs failed; files old {}, new \
         {}, damaged {}",
        args.concurrent,
        both.old,
        both.new,
        both.damaged.len()
    );
    println!(
        "killtest: kmod's modprobe resolved {} times (--show-depends {} after every trial, \
         after the complete run and after every round of two), every answer as over a \
         complete set",
        resolver.resolutions,
        PROBE.join(", "),
    );

    let failures: Vec<_> = tally
        .damaged
        .iter()
        .chain(&both.damaged)
        .chain(&problems)
        .collect();
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("killtest: {f}");
        }
        bail!(
            "{} failed check(s) (damaged index files and others, listed above)",
            failures.len()
        );
    }
    Ok(())
}

/// The kill moments by tenths of a complete run, with where each run was.
fn report_moments(log: &[Trial], run_time: Duration) {
    println!(
        "killtest: kill moments, in tenths of a complete run ({:.0} ms), and where each run was:",
        ms(run_time)
    );
    let mut buckets: BTreeMap<usize, [usize; 4]> = BTreeMap::new();
    for t in log {
        let slot = Phase::ALL.iter().position(|p| *p == t.phase).unwrap_or(0);
        buckets.entry((t.at * 10.0) as usize).or_default()[slot] += 1;
    }
    for (tenth, counts) in buckets {
        let parts: Vec<String> = Phase::ALL
            .iter()
            .zip(counts)
            .filter(|(_, n)| *n > 0)
            .map(|(p, n)| format!("{n} {}", p.name()))
            .collect();
        println!(
            "  {:.1}-{:.1}  {:>3}  {}",
            tenth as f64 / 10.0,
            (tenth + 1) as f64 / 10.0,
            counts.iter().sum::<usize>(),
            parts.join(", ")
        );
    }
}

/// A read-only module directory, and a file-size limit: each run must fail, say why, and leave
/// the old indexes untouched. Returns the problems found.
fn cannot_write(sh: &Shell, s: &Scratch, old: &Files) -> Result<Vec<String>> {
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
    check_untouched(s, old, "read-only", &mut problems)?;

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
        check_untouched(s, old, label, &mut problems)?;
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

/// A failed run must leave the old files, and remove the temporary it was writing.
fn check_untouched(
    s: &Scratch,
    old: &Files,
    label: &str,
    problems: &mut Vec<String>,
) -> Result<()> {
    for (name, now) in s.read_outputs() {
        if now != old[name] {
            problems.push(format!("{label}: {name} changed although the run failed"));
        }
    }
    let temps = s.temporaries()?;
    if !temps.is_empty() {
        problems.push(format!(
            "{label}: the failed run left temporary files: {:?}",
            temps.keys()
        ));
    }
    Ok(())
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
