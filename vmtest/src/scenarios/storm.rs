//! The storm scenario: modkit's tools under concurrency, on real modules of Debian's kernels
//! (`vmtest::storm::MODULES` and their dependencies, in `/storm`, indexed here by our depmod).
//!
//! 1. Rounds: `PROCESSES` modprobe processes at once, each loading an overlapping set of the
//!    modules (they share `nf_conntrack`, `nf_nat`, `x_tables`, `fat`, `cdrom`, the ciphers'
//!    `*_common` helpers...), then one `modprobe -r` of them all. Every process must succeed
//!    (a module another process loaded first, `EEXIST`, counts as loaded, as kmod counts it);
//!    after each round's loads every module is Live with at least one reference per holder;
//!    kmod 30's `modprobe -r` checks a module's dependencies in load order, each once, so
//!    dependencies of dependencies stay behind, unused (tools/modprobe.c, step 4 of
//!    `rmmod_do_module`): those are removed by name, and then none of the tree's modules may
//!    be left.
//! 2. `modkit coldplug -j` reloading the coldplug scenario's drivers while a loop loads and
//!    removes storm modules (`modprobe -r`): both must succeed throughout.
//! 3. depmod replacing the indexes again and again (both node layouts in turn, so that every
//!    run writes every index anew) while `READERS` readers resolve every alias and name of the
//!    tree (`modprobe -R`) and compare each answer with the one the text `modules.alias` gives
//!    through modkit-glob's matcher.
//!
//! Every process runs under a time limit; one still running at it is killed and counted as
//! hung. The transcript ends with a `storm:` line of counts per phase; each round's times
//! (wall, and the machine's user, system and idle ticks) say where its time went.
//! Address-space randomisation is off while the storm runs ([`NoRandomization`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use modkit_glob::{AliasMatcher, read_alias_file};
use vmtest::storm::{MODULES, PROCESSES, READERS, ROOT, ROUNDS};
use vmtest::{MODKIT, coldplug};

use super::jobs::{self, Done};
use super::{Ctx, holders, kernel_release, loaded_modules, proc_state, refcnt};

/// A modprobe that takes longer than this has hung (TCG is slow, and 64 share one CPU).
const PROCESS_LIMIT: Duration = Duration::from_secs(60);

/// How many of [`MODULES`] each modprobe of a round loads.
const PER_PROCESS: usize = 3;

/// depmod runs while the readers read.
const DEPMOD_RUNS: usize = 4;

/// Rounds of coldplug against the `modprobe -r` loop.
const COLDPLUG_ROUNDS: usize = 1;

fn modprobe(args: &[&str]) -> Vec<String> {
    ["/sbin/modprobe", "-d", ROOT]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}

/// The names of every module file under `dir`.
fn module_names(dir: &Path, out: &mut BTreeSet<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            module_names(&path, out);
        } else if let Some(name) = modkit_glob::name::path_to_modname(&path) {
            out.insert(name);
        }
    }
}

/// The modules of process `i` of a round: overlapping sets that together cover them all.
fn process_set(i: usize) -> Vec<&'static str> {
    let n = MODULES.len();
    let mut set = Vec::new();
    for k in [i, i * 5 + 3, i * 7 + 11] {
        let m = MODULES[k % n];
        if !set.contains(&m) {
            set.push(m);
        }
    }
    set.truncate(PER_PROCESS);
    set
}

/// Counts of one phase.
#[derive(Debug, Default)]
struct Counts {
    processes: usize,
    failed: usize,
    hung: usize,
}

impl Counts {
    fn add(&mut self, ctx: &Ctx<'_>, done: &[Done]) {
        for d in done {
            self.processes += 1;
            if d.hung {
                self.hung += 1;
            }
            if !d.clean() {
                self.failed += 1;
                ctx.log(format!("  failed: {}", d.summary()));
            }
        }
    }
}

/// Modules of the tree loaded now, but those loaded before the scenario.
fn storm_loaded(tree: &BTreeSet<String>, before: &BTreeSet<String>) -> Vec<String> {
    loaded_modules()
        .into_iter()
        .filter(|m| tree.contains(m) && !before.contains(m))
        .collect()
}

/// Loaded modules of the tree that are not Live, or whose reference count is below their
/// number of holders (each holder takes one; the kernel may hold more: `libcrc32c`'s crypto
/// handle holds `crc32c_intel`, which has no holder); each as a line.
fn refcount_problems(tree: &BTreeSet<String>, before: &BTreeSet<String>) -> Vec<String> {
    storm_loaded(tree, before)
        .into_iter()
        .filter_map(|m| {
            let (count, held, state) = (refcnt(&m), holders(&m), proc_state(&m));
            let ok =
                count.is_some_and(|c| c >= held.len() as u64) && state.as_deref() == Some("Live");
            (!ok).then(|| format!("{m}: refcnt {count:?}, holders {held:?}, state {state:?}"))
        })
        .collect()
}

/// The kernel's address-space randomisation switch.
const RANDOMIZE: &str = "/proc/sys/kernel/randomize_va_space";

/// Address-space randomisation off for the storm's processes, as it was again when dropped.
/// QEMU's TCG (7.2, as Debian 12 ships it) keys the code it translates by virtual address:
/// a process whose binary lands at a new address translates all its code anew, which made
/// each modprobe cost about 140 ms of emulated time instead of about 30 ms (64 x
/// `modprobe -R`: 9.1 s with randomisation, 2.1 s without, on a loaded 2-core host). What
/// the storm tests (the tools, the kernel's module loader) does not depend on where a
/// process's binary is mapped.
struct NoRandomization {
    before: String,
}

impl NoRandomization {
    fn set(ctx: &mut Ctx<'_>) -> Option<NoRandomization> {
        let before = super::read_trimmed(RANDOMIZE);
        let ok = std::fs::write(RANDOMIZE, "0").is_ok() && super::read_trimmed(RANDOMIZE) == "0";
        ctx.check(
            ok,
            format!("address-space randomisation off for the storm (it was {before:?})"),
        )
        .then_some(NoRandomization { before })
    }
}

impl Drop for NoRandomization {
    fn drop(&mut self) {
        let _ = std::fs::write(RANDOMIZE, &self.before);
    }
}

pub fn storm(ctx: &mut Ctx<'_>) {
    let started = Instant::now();
    let Some(_randomization) = NoRandomization::set(ctx) else {
        return;
    };
    let release = kernel_release();
    let moddir = format!("{ROOT}/lib/modules/{release}");
    let mut tree = BTreeSet::new();
    module_names(Path::new(&moddir).join("kernel").as_path(), &mut tree);
    if !ctx.check(
        MODULES.iter().all(|m| tree.contains(*m)),
        format!(
            "{moddir} holds the storm's modules ({} module files)",
            tree.len()
        ),
    ) {
        return;
    }
    let before: BTreeSet<String> = loaded_modules()
        .into_iter()
        .filter(|m| tree.contains(m))
        .collect();
    ctx.log(format!(
        "  modules of the tree loaded before the storm (left alone): {before:?}"
    ));
    let out = ctx.run(&[MODKIT, "depmod", "-b", ROOT, &release]);
    if !ctx.expect_success(&out) {
        return;
    }

    let rounds = rounds(ctx, &tree, &before);
    let coldplug = coldplug_against_removal(ctx, &release, &tree, &before);
    let readers = readers_against_depmod(ctx, &release);

    let left = storm_loaded(&tree, &before);
    ctx.check(
        left.is_empty(),
        format!("no module of the tree is left at the end ({left:?})"),
    );
    ctx.log(format!(
        "storm: rounds {ROUNDS} x {PROCESSES} modprobe: {} processes, {} failed, {} hung, \
         {} loads asked of the kernel for {} modules loaded, {} refcount problems, {} modules left after removals; coldplug -j 4 ({COLDPLUG_ROUNDS} runs) \
         against {} modprobe load/remove runs: {} failed, {} hung; depmod {DEPMOD_RUNS} \
         rewrites, {READERS} readers: {} lookups, {} errors, {} wrong answers, {} hung; {:.1} s",
        rounds.counts.processes,
        rounds.counts.failed,
        rounds.counts.hung,
        rounds.attempts,
        rounds.loaded,
        rounds.refcount_problems,
        rounds.left,
        coldplug.processes,
        coldplug.failed,
        coldplug.hung,
        readers.lookups,
        readers.errors,
        readers.wrong,
        readers.hung,
        started.elapsed().as_secs_f64()
    ));
}

/// After `modprobe -r` of the storm's modules, what kmod 30's walk leaves (it looks at a
/// module's dependencies in load order, each once, so a dependency of a dependency removed
/// later in the walk stays, unused): `modprobe -r -a` of the unused ones until none is left
/// or nothing changes. Returns how many the first removal left, how many passes it took, and
/// what is still there, each such module's state logged.
fn remove_unused(
    ctx: &Ctx<'_>,
    tree: &BTreeSet<String>,
    before: &BTreeSet<String>,
) -> (usize, usize, Vec<String>) {
    let first = storm_loaded(tree, before).len();
    let mut passes = 0;
    loop {
        let left = storm_loaded(tree, before);
        let unused: Vec<&str> = left
            .iter()
            .filter(|m| refcnt(m) == Some(0) && holders(m).is_empty())
            .map(String::as_str)
            .collect();
        if unused.is_empty() || passes == 8 {
            for m in &left {
                ctx.log(format!(
                    "  left: {m}: refcnt {:?}, holders {:?}, state {:?}",
                    refcnt(m),
                    holders(m),
                    proc_state(m)
                ));
            }
            return (first, passes, left);
        }
        passes += 1;
        let mut args = vec!["-r", "-a"];
        args.extend(&unused);
        let done = jobs::run(&modprobe(&args), PROCESS_LIMIT);
        if !done.clean() {
            ctx.log(format!("  failed: {}", done.summary()));
        }
    }
}

struct Rounds {
    counts: Counts,
    refcount_problems: usize,
    left: usize,
    /// Modules the processes asked the kernel for (`insmod` lines of `-v`).
    attempts: usize,
    /// Modules loaded by the rounds.
    loaded: usize,
}

fn rounds(ctx: &mut Ctx<'_>, tree: &BTreeSet<String>, before: &BTreeSet<String>) -> Rounds {
    let mut result = Rounds {
        counts: Counts::default(),
        refcount_problems: 0,
        left: 0,
        attempts: 0,
        loaded: 0,
    };
    let commands: Vec<Vec<String>> = (0..PROCESSES)
        .map(|i| {
            // -v: each module it asks the kernel for is an `insmod PATH` line.
            let mut args = vec!["-v", "-a"];
            args.extend(process_set(i));
            modprobe(&args)
        })
        .collect();
    let mut removal = vec!["-r", "-a"];
    removal.extend(MODULES);
    let removal = modprobe(&removal);
    for round in 1..=ROUNDS {
        let started = Instant::now();
        let meter = Meter::start();
        let done = jobs::run_all(&commands, PROCESS_LIMIT);
        let loads = started.elapsed();
        let load_time = meter.show();
        let mut counts = Counts::default();
        counts.add(ctx, &done);
        let missing: Vec<&str> = MODULES
            .iter()
            .filter(|m| proc_state(m).as_deref() != Some("Live"))
            .copied()
            .collect();
        let problems = refcount_problems(tree, before);
        for problem in &problems {
            ctx.log(format!("  refcount: {problem}"));
        }
        let loaded = storm_loaded(tree, before).len();
        // More attempts than modules: processes that met a module another one was loading
        // or had loaded (EEXIST, or on 6.12 the first load's answer) and went on.
        let attempts: usize = done
            .iter()
            .map(|d| {
                d.stdout
                    .lines()
                    .filter(|l| l.starts_with("insmod "))
                    .count()
            })
            .sum();
        let meter = Meter::start();
        let removed = jobs::run(&removal, PROCESS_LIMIT);
        let removal_time = meter.show();
        let meter = Meter::start();
        let (after_first, passes, mut left) = remove_unused(ctx, tree, before);
        ctx.log(format!(
            "  round {round} times: loads {load_time}; modprobe -r {removal_time}; unused \
             dependencies {}",
            meter.show()
        ));
        ctx.log(format!(
            "  round {round}: {} modprobe in {:.1} s, {} failed, {} hung, {attempts} loads \
             asked of the kernel for {loaded} modules loaded, not Live: {missing:?}, {} refcount problems; modprobe -r: {} in {:.1} s, \
             {after_first} unused dependencies left, removed in {passes} more passes, left \
             {left:?}",
            counts.processes,
            loads.as_secs_f64(),
            counts.failed,
            counts.hung,
            problems.len(),
            if removed.clean() { "ok" } else { "FAILED" },
            removed.elapsed.as_secs_f64(),
        ));
        if !removed.clean() {
            ctx.log(format!("  {}", removed.summary()));
        }
        left.sort();
        let ok = ctx.check(
            counts.failed == 0
                && missing.is_empty()
                && problems.is_empty()
                && removed.clean()
                && left.is_empty(),
            format!("round {round}: every load succeeded, every refcount right, nothing left"),
        );
        result.counts.processes += counts.processes;
        result.counts.failed += counts.failed + usize::from(!removed.clean());
        result.counts.hung += counts.hung + usize::from(removed.hung);
        result.refcount_problems += problems.len();
        result.left += left.len();
        result.attempts += attempts;
        result.loaded += loaded;
        if !ok {
            // Start the next round clean, or stop: one broken round says enough.
            break;
        }
    }
    result
}

#[derive(Default)]
struct ColdplugCounts {
    processes: usize,
    failed: usize,
    hung: usize,
}

/// The coldplug scenario's drivers unloaded and loaded again by `modkit coldplug -j 4` while
/// another thread loads and removes storm modules.
fn coldplug_against_removal(
    ctx: &mut Ctx<'_>,
    release: &str,
    tree: &BTreeSet<String>,
    before: &BTreeSet<String>,
) -> ColdplugCounts {
    let mut counts = ColdplugCounts::default();
    let root = coldplug::ROOT;
    let builtin: Vec<String> =
        std::fs::read_to_string(format!("{root}/lib/modules/{release}/modules.builtin"))
            .unwrap_or_default()
            .lines()
            .filter_map(modkit_glob::name::path_to_modname)
            .collect();
    // The drivers on the virtio and PCI buses below virtio_pci; virtio_pci stays.
    let drivers: Vec<&str> = coldplug::DRIVERS
        .iter()
        .filter(|d| **d != "virtio_pci" && !builtin.iter().any(|b| b == *d))
        .copied()
        .collect();
    let out = ctx.run(&[MODKIT, "depmod", "-b", root, release]);
    if !ctx.expect_success(&out) {
        return counts;
    }
    // The loop's modules: the crypto and file-system ones (netfilter's take long to load).
    let mut load = vec!["-a"];
    load.extend(["cast5_generic", "cast6_generic", "vfat", "msdos", "udf"]);
    let mut unload = vec!["-r"];
    unload.extend(&load);
    let (load, unload) = (modprobe(&load), modprobe(&unload));
    for run in 1..=COLDPLUG_ROUNDS {
        let mut remove = vec!["/sbin/modprobe", "-d", root, "-r", "-a"];
        remove.extend(&drivers);
        let out = ctx.run(&remove);
        ctx.expect_success(&out);
        let still: Vec<&&str> = drivers
            .iter()
            .filter(|d| loaded_modules().iter().any(|l| l == *d))
            .collect();
        if !ctx.check(
            still.is_empty(),
            format!("coldplug run {run}: the drivers are unloaded first ({still:?} left)"),
        ) {
            return counts;
        }

        let stop = Arc::new(AtomicBool::new(false));
        let looper = {
            let stop = Arc::clone(&stop);
            let (load, unload) = (load.clone(), unload.clone());
            std::thread::spawn(move || {
                let mut done = Vec::new();
                // At least a few cycles, and on until coldplug has finished.
                while done.len() < 6 || !stop.load(Ordering::Relaxed) {
                    done.push(jobs::run(&load, PROCESS_LIMIT));
                    done.push(jobs::run(&unload, PROCESS_LIMIT));
                    if done.len() > 400 {
                        break;
                    }
                }
                done
            })
        };
        let cold = jobs::run(
            &[MODKIT, "coldplug", "-j", "4", "-b", root, "-k", release],
            PROCESS_LIMIT,
        );
        stop.store(true, Ordering::Relaxed);
        let looped = looper.join().unwrap_or_default();
        ctx.log(format!("  {}", cold.summary()));
        let loaded = loaded_modules();
        let missing: Vec<&&str> = drivers
            .iter()
            .filter(|d| !loaded.iter().any(|l| l == *d))
            .collect();
        let looped_failed: Vec<&Done> = looped.iter().filter(|d| !d.clean()).collect();
        for d in &looped_failed {
            ctx.log(format!("  failed: {}", d.summary()));
        }
        counts.processes += looped.len() + 1;
        counts.failed += looped_failed.len() + usize::from(cold.status != Some(0));
        counts.hung += looped.iter().filter(|d| d.hung).count() + usize::from(cold.hung);
        ctx.check(
            cold.status == Some(0) && missing.is_empty(),
            format!(
                "coldplug run {run}: coldplug -j 4 exits 0 and every driver is loaded again \
                 (missing {missing:?})"
            ),
        );
        ctx.check(
            looped_failed.is_empty(),
            format!(
                "coldplug run {run}: all {} modprobe load/remove runs beside it succeeded",
                looped.len()
            ),
        );
        let left = storm_loaded(tree, before);
        ctx.check(
            left.is_empty(),
            format!("coldplug run {run}: the loop left no module ({left:?})"),
        );
    }
    counts
}

#[derive(Default)]
struct ReaderCounts {
    lookups: usize,
    errors: usize,
    wrong: usize,
    hung: usize,
}

/// `READERS` threads resolving every alias and module name of the tree while depmod
/// rewrites its indexes.
fn readers_against_depmod(ctx: &mut Ctx<'_>, release: &str) -> ReaderCounts {
    let mut counts = ReaderCounts::default();
    let moddir = format!("{ROOT}/lib/modules/{release}");
    let aliases = match read_alias_file(Path::new(&format!("{moddir}/modules.alias"))) {
        Ok(aliases) => aliases,
        Err(err) => {
            ctx.check(false, format!("reading {moddir}/modules.alias: {err}"));
            return counts;
        }
    };
    let matcher = AliasMatcher::new(aliases.clone());
    // Keys: every alias without wildcards, and every module name of the storm.
    let mut keys: Vec<String> = aliases
        .iter()
        .map(|a| a.pattern.clone())
        .filter(|p| !p.contains(['*', '?', '[']))
        .collect();
    keys.extend(MODULES.iter().map(|m| m.to_string()));
    keys.sort();
    keys.dedup();
    // The answers the text file gives (modkit-glob's matcher over `modules.alias`, not the
    // `.bin` tries modprobe reads): one module per line, compared as a set.
    let expected: Vec<(String, BTreeSet<String>)> = keys
        .iter()
        .map(|key| {
            let want: BTreeSet<String> = if MODULES.contains(&&**key) {
                [key.clone()].into()
            } else {
                matcher
                    .modules(key)
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            };
            (key.clone(), want)
        })
        .collect();
    if !ctx.check(
        expected.iter().all(|(_, want)| !want.is_empty()),
        "every key has an answer in modules.alias",
    ) {
        return counts;
    }
    ctx.log(format!(
        "  {} keys to resolve ({} aliases, {} names)",
        expected.len(),
        expected.len() - MODULES.len(),
        MODULES.len()
    ));
    let expected = Arc::new(expected);
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|reader| {
            let (expected, stop) = (Arc::clone(&expected), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut counts = ReaderCounts::default();
                let mut problems = Vec::new();
                // Together at least one pass over the keys, and on until depmod is done.
                let share = expected.len().div_ceil(READERS);
                let mut i = reader * share;
                while counts.lookups < share || !stop.load(Ordering::Relaxed) {
                    let (key, want) = &expected[i % expected.len()];
                    i += 1;
                    let done = jobs::run(&modprobe(&["-R", key]), PROCESS_LIMIT);
                    counts.lookups += 1;
                    if done.hung {
                        counts.hung += 1;
                    }
                    if done.status != Some(0) || !done.stderr.is_empty() {
                        counts.errors += 1;
                        problems.push(done.summary());
                    } else if done
                        .stdout
                        .lines()
                        .map(str::to_string)
                        .collect::<BTreeSet<_>>()
                        != *want
                        || done.stdout.lines().count() != want.len()
                    {
                        counts.wrong += 1;
                        problems.push(format!("{} (want {want:?})", done.summary()));
                    }
                }
                (counts, problems)
            })
        })
        .collect();
    let mut depmod_failed = 0;
    // Each run writes every index anew (a new inode, renamed into place): the node layout
    // changes every time, so depmod's cache cannot say "nothing changed", while its
    // per-module records spare it decompressing the modules again.
    let inode = |name: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(format!("{moddir}/{name}")).map_or(0, |m| m.ino())
    };
    let mut rewrites = 0;
    let started = Instant::now();
    for run in 0..DEPMOD_RUNS {
        let layout = if run % 2 == 0 {
            "postorder"
        } else {
            "preorder"
        };
        let old = (inode("modules.alias.bin"), inode("modules.dep.bin"));
        let done = jobs::run(
            &[
                MODKIT,
                "depmod",
                "--index-layout",
                layout,
                "-b",
                ROOT,
                release,
            ],
            PROCESS_LIMIT,
        );
        let new = (inode("modules.alias.bin"), inode("modules.dep.bin"));
        if new.0 != old.0 && new.1 != old.1 {
            rewrites += 1;
        }
        if !done.clean() {
            depmod_failed += 1;
            ctx.log(format!("  failed: {}", done.summary()));
        }
    }
    let rewriting = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        match reader.join() {
            Ok((c, problems)) => {
                for problem in problems.iter().take(10) {
                    ctx.log(format!("  reader: {problem}"));
                }
                counts.lookups += c.lookups;
                counts.errors += c.errors;
                counts.wrong += c.wrong;
                counts.hung += c.hung;
            }
            Err(_) => counts.errors += 1,
        }
    }
    ctx.log(format!(
        "  depmod: {DEPMOD_RUNS} runs in {:.1} s, {depmod_failed} failed, {rewrites} replaced \
         modules.alias.bin and modules.dep.bin; readers: {} lookups, {} errors, {} wrong, {} \
         hung",
        rewriting.as_secs_f64(),
        counts.lookups,
        counts.errors,
        counts.wrong,
        counts.hung
    ));
    ctx.check(depmod_failed == 0, "every depmod run succeeded");
    ctx.check(
        rewrites == DEPMOD_RUNS,
        format!("every depmod run replaced the indexes ({rewrites} of {DEPMOD_RUNS})"),
    );
    ctx.check(
        counts.lookups >= expected.len()
            && counts.errors == 0
            && counts.wrong == 0
            && counts.hung == 0,
        format!(
            "{READERS} readers: every lookup answered as before ({} lookups)",
            counts.lookups
        ),
    );
    counts
}

/// The machine's CPU time in ticks of `/proc/stat` (`USER_HZ`, 100 a second): user (and
/// nice), system (and interrupts), idle (and I/O wait). A round's split says where its time
/// goes: processes' user code, the kernel's loader, or waiting (RCU grace periods on removal).
fn cpu_ticks() -> [u64; 3] {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let v: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let field = |i: usize| v.get(i).copied().unwrap_or(0);
    [
        field(0) + field(1),
        field(2) + field(5) + field(6),
        field(3) + field(4),
    ]
}

/// Wall time and CPU ticks since it started.
struct Meter {
    at: Instant,
    cpu: [u64; 3],
}

impl Meter {
    fn start() -> Meter {
        Meter {
            at: Instant::now(),
            cpu: cpu_ticks(),
        }
    }

    /// `1.23 s (user U, system S, idle I ticks)`.
    fn show(&self) -> String {
        let now = cpu_ticks();
        let d = |i: usize| now[i].saturating_sub(self.cpu[i]);
        format!(
            "{:.2} s (user {}, system {}, idle {} ticks)",
            self.at.elapsed().as_secs_f64(),
            d(0),
            d(1),
            d(2)
        )
    }
}
