//! Coldplug: load the modules every present device needs, as udev does at boot for the
//! devices that appeared before it ran.
//!
//! [`plan`] looks each device's modalias up in kmod's order and decides per module: skip it
//! (blacklisted, with kmod's rule that the blacklist applies to modules found through an
//! alias; built in; already loaded), or load it after its dependencies (modules.dep) and its
//! `softdep` pre-modules, with its options, or run its install command. [`run`] carries the
//! plan out on a pool of threads: a module starts as soon as everything it depends on has
//! been loaded, so modules that do not depend on each other load side by side (the kernel
//! serialises their init functions, but reading and relocating them overlaps). A module whose
//! hard dependency failed is not tried; a failed soft dependency is only reported.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use std::ffi::CStr;
use std::fs::File;

use modkit_syscalls::{
    Errno, InitState, Kernel, LoadError, LoadFailure, LoadMethod, LoadOptions, ProcDir, SysModule,
};

use crate::report::substitute_cmdline_opts;
use crate::{CommandRunner, Context, Error, ModId, Reporter};

/// Why a module found for a device is not loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// A `blacklist` line (or `modprobe.blacklist=`) names it and it was found through an
    /// alias.
    Blacklisted,
    /// Built into the kernel.
    Builtin,
    /// Already loaded.
    Loaded,
}

impl SkipReason {
    /// A word for reports: `blacklisted`, `builtin`, `loaded`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Blacklisted => "blacklisted",
            SkipReason::Builtin => "builtin",
            SkipReason::Loaded => "loaded",
        }
    }
}

/// A module found for a device and not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The module name.
    pub name: String,
    /// Why.
    pub reason: SkipReason,
    /// The modalias it was found for.
    pub modalias: String,
}

/// One module to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The module name.
    pub name: String,
    /// Its file; `None` when modules.dep does not have it (the step fails).
    pub path: Option<PathBuf>,
    /// Its options (modprobe.d, then the kernel command line).
    pub params: String,
    /// The install command to run instead of loading it.
    pub install: Option<String>,
    /// Steps (indexes into [`Plan::steps`]) that must be loaded first.
    pub deps: Vec<usize>,
    /// Steps that should be loaded first (soft dependencies): their failure is not this one's.
    pub soft_deps: Vec<usize>,
    /// The modaliases it was found for (empty for a dependency only).
    pub modaliases: Vec<String>,
}

/// What coldplug will do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Every device with a modalias: (sysfs directory, modalias), by path.
    pub devices: Vec<(PathBuf, String)>,
    /// The modules to load, each after the steps it depends on.
    pub steps: Vec<Step>,
    /// Modules found and not loaded, each name once.
    pub skipped: Vec<Skipped>,
    /// Modaliases no module matches (most devices need none).
    pub unmatched: Vec<String>,
}

/// Decide what to load for `devices` (from [`modkit_sysfs::Sysfs::all_modaliases`]).
pub fn plan(
    ctx: &mut Context,
    kernel: &dyn Kernel,
    devices: Vec<(PathBuf, String)>,
    reporter: &mut dyn Reporter,
) -> Result<Plan, Error> {
    let mut planner = Planner {
        ctx,
        kernel,
        reporter,
        plan: Plan::default(),
        by_name: HashMap::new(),
        skipped: HashMap::new(),
        in_progress: BTreeSet::new(),
    };
    let mut seen_alias = BTreeSet::new();
    for (_, alias) in &devices {
        if !seen_alias.insert(alias.clone()) {
            continue;
        }
        let ids = planner.ctx.lookup(alias)?;
        if ids.is_empty() {
            planner.plan.unmatched.push(alias.clone());
        }
        for id in ids {
            planner.wanted(id, alias)?;
        }
    }
    let mut plan = planner.plan;
    plan.devices = devices;
    Ok(plan)
}

struct Planner<'a> {
    ctx: &'a mut Context,
    kernel: &'a dyn Kernel,
    reporter: &'a mut dyn Reporter,
    plan: Plan,
    by_name: HashMap<String, usize>,
    skipped: HashMap<String, SkipReason>,
    in_progress: BTreeSet<String>,
}

impl Planner<'_> {
    /// A module a modalias resolved to.
    fn wanted(&mut self, id: ModId, modalias: &str) -> Result<(), Error> {
        let name = self.ctx.name(id).to_owned();
        if let Some(&step) = self.by_name.get(&name) {
            let aliases = &mut self.plan.steps[step].modaliases;
            if !aliases.iter().any(|a| a == modalias) {
                aliases.push(modalias.to_owned());
            }
            return Ok(());
        }
        let reason = if self.ctx.alias(id).is_some() && self.ctx.config().is_blacklisted(&name) {
            Some(SkipReason::Blacklisted)
        } else {
            self.state_skip(id)
        };
        if let Some(reason) = reason {
            if self.skipped.insert(name.clone(), reason).is_none() {
                self.plan.skipped.push(Skipped {
                    name,
                    reason,
                    modalias: modalias.to_owned(),
                });
            }
            return Ok(());
        }
        if let Some(step) = self.step(id)? {
            self.plan.steps[step].modaliases.push(modalias.to_owned());
        }
        Ok(())
    }

    fn state_skip(&self, id: ModId) -> Option<SkipReason> {
        match self.ctx.initstate(self.kernel, id) {
            InitState::Builtin => Some(SkipReason::Builtin),
            InitState::Live | InitState::Coming => Some(SkipReason::Loaded),
            _ => None,
        }
    }

    /// The step of a module, made with the steps of its dependencies first; `None` when the
    /// module needs no loading (built in or loaded) or is being planned (a cycle).
    fn step(&mut self, id: ModId) -> Result<Option<usize>, Error> {
        let name = self.ctx.name(id).to_owned();
        if let Some(&step) = self.by_name.get(&name) {
            return Ok(Some(step));
        }
        if self.state_skip(id).is_some() || !self.in_progress.insert(name.clone()) {
            return Ok(None);
        }
        let path = self.ctx.path(id)?;
        let install = self.ctx.install_command(id);
        let mut deps = Vec::new();
        let mut soft_deps = Vec::new();
        if install.is_none() {
            for dep in self.ctx.dependencies(id)? {
                deps.extend(self.step(dep)?);
            }
        }
        let (pre, post) = self.ctx.softdeps(id, &mut *self.reporter);
        for soft in pre {
            soft_deps.extend(self.step(soft)?);
        }
        let params = self.ctx.options(id);
        let step = self.plan.steps.len();
        self.plan.steps.push(Step {
            name: name.clone(),
            path,
            params,
            install,
            deps,
            soft_deps,
            modaliases: Vec::new(),
        });
        self.by_name.insert(name.clone(), step);
        self.in_progress.remove(&name);
        for soft in post {
            if let Some(after) = self.step(soft)?
                && !self.plan.steps[after].soft_deps.contains(&step)
                && after > step
            {
                self.plan.steps[after].soft_deps.push(step);
            }
        }
        Ok(Some(step))
    }
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Loaded, this way.
    Loaded(LoadMethod),
    /// Its install command ran and succeeded.
    Installed,
    /// The kernel had it already (loaded meanwhile by someone else).
    AlreadyLoaded,
    /// It could not be loaded: why.
    Failed(String),
    /// Not tried: this dependency failed.
    DependencyFailed(String),
}

impl Outcome {
    /// Whether the module is in the kernel now.
    pub fn is_ok(&self) -> bool {
        matches!(
            self,
            Outcome::Loaded(_) | Outcome::Installed | Outcome::AlreadyLoaded
        )
    }
}

/// Carry `plan` out with `jobs` threads (at least one); the outcome of each step, by index.
/// With one thread the steps run in plan order.
pub fn run<K: Kernel + Sync + ?Sized>(
    plan: &Plan,
    kernel: &K,
    runner: &mut (dyn CommandRunner + Send),
    jobs: usize,
) -> Vec<Outcome> {
    let n = plan.steps.len();
    let mut dependents = vec![Vec::new(); n];
    let mut waiting = vec![0usize; n];
    for (i, step) in plan.steps.iter().enumerate() {
        for &d in step.deps.iter().chain(&step.soft_deps) {
            dependents[d].push(i);
            waiting[i] += 1;
        }
    }
    let ready: BTreeSet<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    let state = Mutex::new(State {
        ready,
        waiting,
        outcomes: vec![None; n],
        finished: 0,
    });
    let wake = Condvar::new();
    let runner = Mutex::new(runner);
    let worker = || {
        loop {
            let mut guard = lock(&state);
            let i = loop {
                if guard.finished == n {
                    return;
                }
                if let Some(i) = guard.ready.pop_first() {
                    break i;
                }
                guard = wake.wait(guard).unwrap_or_else(|e| e.into_inner());
            };
            let failed_dep = plan.steps[i]
                .deps
                .iter()
                .find(|&&d| !guard.outcomes[d].as_ref().is_some_and(Outcome::is_ok));
            let outcome =
                failed_dep.map(|&d| Outcome::DependencyFailed(plan.steps[d].name.clone()));
            drop(guard);
            let outcome = outcome.unwrap_or_else(|| execute(&plan.steps[i], kernel, &runner));
            let mut guard = lock(&state);
            guard.outcomes[i] = Some(outcome);
            guard.finished += 1;
            for &j in &dependents[i] {
                guard.waiting[j] -= 1;
                if guard.waiting[j] == 0 {
                    guard.ready.insert(j);
                }
            }
            wake.notify_all();
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..jobs.clamp(1, n.max(1)) {
            scope.spawn(worker);
        }
        worker();
    });
    let outcomes = state
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .outcomes;
    outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Outcome::Failed("never ready (dependency cycle)".into())))
        .collect()
}

/// Rounds of [`coldplug`] at most: each loads what the devices present need, and loading a
/// bus driver (virtio_pci, a USB host controller) makes the devices behind it appear.
pub const MAX_ROUNDS: usize = 8;

/// What a whole coldplug did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coldplug {
    /// The last round's devices, the steps of every round (each module once), the modules
    /// skipped (none that a round loaded) and the last round's unmatched modaliases.
    pub plan: Plan,
    /// The outcome of each step of `plan`.
    pub outcomes: Vec<Outcome>,
    /// How many rounds ran.
    pub rounds: usize,
}

/// Coldplug for real: scan `sysfs` for every device's modalias, [`plan`], [`run`], and scan
/// again, for the devices that loading drivers made appear, until a round finds nothing new
/// to load (at most [`MAX_ROUNDS`]). A module that failed is tried again in a later round only
/// when the round finds something new as well; its last outcome counts.
pub fn coldplug<K: Kernel + Sync>(
    ctx: &mut Context,
    kernel: &K,
    sysfs: &modkit_sysfs::Sysfs,
    runner: &mut (dyn CommandRunner + Send),
    reporter: &mut dyn Reporter,
    jobs: usize,
) -> Result<Coldplug, Error> {
    let mut done = Coldplug::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    while done.rounds < MAX_ROUNDS {
        let devices = sysfs.all_modaliases()?;
        let round = plan(ctx, kernel, devices, reporter)?;
        let new = round.steps.iter().any(|s| !index.contains_key(&s.name));
        done.plan.devices = round.devices.clone();
        done.plan.unmatched = round.unmatched.clone();
        for skip in &round.skipped {
            if !index.contains_key(&skip.name)
                && !done.plan.skipped.iter().any(|s| s.name == skip.name)
            {
                done.plan.skipped.push(skip.clone());
            }
        }
        if done.rounds > 0 && !new {
            break;
        }
        done.rounds += 1;
        let outcomes = run(&round, kernel, runner, jobs);
        for (step, outcome) in round.steps.iter().zip(outcomes) {
            match index.get(&step.name) {
                Some(&i) => {
                    if outcome.is_ok() || !done.outcomes[i].is_ok() {
                        done.outcomes[i] = outcome;
                    }
                }
                None => {
                    let remap = |deps: &[usize]| -> Vec<usize> {
                        deps.iter()
                            .filter_map(|&d| index.get(&round.steps[d].name).copied())
                            .collect()
                    };
                    let merged = Step {
                        deps: remap(&step.deps),
                        soft_deps: remap(&step.soft_deps),
                        ..step.clone()
                    };
                    index.insert(step.name.clone(), done.plan.steps.len());
                    done.plan.steps.push(merged);
                    done.outcomes.push(outcome);
                }
            }
        }
    }
    Ok(done)
}

/// Any [`Kernel`] behind a lock, for [`run`]'s threads when it cannot be shared as it is
/// (a [`modkit_syscalls::RecordingKernel`] in tests): the syscalls take turns.
#[derive(Debug)]
pub struct LockedKernel<K> {
    inner: Mutex<K>,
    sys: SysModule,
    proc: ProcDir,
}

impl<K: Kernel> LockedKernel<K> {
    /// `kernel`, behind a lock.
    pub fn new(kernel: K) -> LockedKernel<K> {
        LockedKernel {
            sys: kernel.sys_module().clone(),
            proc: kernel.proc_dir().clone(),
            inner: Mutex::new(kernel),
        }
    }

    /// The kernel back.
    pub fn into_inner(self) -> K {
        self.inner.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Kernel> Kernel for LockedKernel<K> {
    fn finit_module(&self, file: &File, params: &CStr, flags: u32) -> Result<(), Errno> {
        lock(&self.inner).finit_module(file, params, flags)
    }
    fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno> {
        lock(&self.inner).init_module(image, params)
    }
    fn delete_module(&self, name: &CStr, flags: u32) -> Result<(), Errno> {
        lock(&self.inner).delete_module(name, flags)
    }
    fn sys_module(&self) -> &SysModule {
        &self.sys
    }
    fn proc_dir(&self) -> &ProcDir {
        &self.proc
    }
    fn release(&self) -> Result<String, Errno> {
        lock(&self.inner).release()
    }
}

struct State {
    ready: BTreeSet<usize>,
    waiting: Vec<usize>,
    outcomes: Vec<Option<Outcome>>,
    finished: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn execute<K: Kernel + Sync + ?Sized>(
    step: &Step,
    kernel: &K,
    runner: &Mutex<&mut (dyn CommandRunner + Send)>,
) -> Outcome {
    if let Some(command) = &step.install {
        let command = substitute_cmdline_opts(command, &step.params);
        return match lock(runner).run(&command, &step.name) {
            Ok(0) => Outcome::Installed,
            Ok(code) => Outcome::Failed(format!("install command exited with status {code}")),
            Err(err) => Outcome::Failed(format!("install command could not run: {err}")),
        };
    }
    let Some(path) = &step.path else {
        return Outcome::Failed(format!("module {} not found in modules.dep", step.name));
    };
    match kernel.load(path, &step.params, LoadOptions::default()) {
        Ok(method) => Outcome::Loaded(method),
        Err(LoadError::Kernel {
            failure: LoadFailure::AlreadyLoaded,
            ..
        }) => Outcome::AlreadyLoaded,
        Err(err) => Outcome::Failed(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Recorder;
    use crate::testing::FakeTree;
    use modkit_syscalls::{Call, RecordingKernel, Syscall};

    fn names(plan: &Plan) -> Vec<&str> {
        plan.steps.iter().map(|s| s.name.as_str()).collect()
    }

    fn planned(tree: &FakeTree, config: &str, kernel: &RecordingKernel) -> Plan {
        let mut ctx = tree.context(config);
        let devices = tree.sysfs().all_modaliases().unwrap();
        plan(&mut ctx, kernel, devices, &mut Recorder::default()).unwrap()
    }

    #[test]
    fn every_device_gets_its_modules_in_dependency_order() {
        let tree = FakeTree::new("coldplug-plan");
        let kernel = tree.kernel();
        let plan = planned(&tree, "blacklist atkbd\n", &kernel);
        assert_eq!(
            names(&plan),
            [
                "drm",
                "bochs",
                "virtio",
                "virtio_ring",
                "virtio_pci",
                "virtio_net",
                "virtio_blk",
                "usbcore",
                "xhci_hcd",
                "xhci_pci",
                "usb_storage",
                "scsi_mod",
                "sd_mod",
            ]
        );
        let skipped: Vec<(&str, SkipReason)> = plan
            .skipped
            .iter()
            .map(|s| (s.name.as_str(), s.reason))
            .collect();
        assert_eq!(
            skipped,
            [
                ("i8042", SkipReason::Builtin),
                ("atkbd", SkipReason::Blacklisted),
                ("8250", SkipReason::Builtin),
            ]
        );
        assert_eq!(
            plan.unmatched,
            ["pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00"]
        );
        let pci = &plan.steps[4];
        assert_eq!(pci.deps, [2, 3]);
        assert_eq!(
            pci.modaliases,
            [
                "pci:v00001AF4d00001000sv00001AF4sd00001100bc02sc00i00",
                "pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00"
            ]
        );
    }

    #[test]
    fn loaded_modules_are_skipped_and_options_passed() {
        let tree = FakeTree::new("coldplug-loaded");
        tree.set_loaded("virtio");
        tree.set_loaded("bochs");
        let kernel = tree.kernel();
        let plan = planned(&tree, "options virtio_blk queue_depth=8\n", &kernel);
        assert!(!names(&plan).contains(&"virtio"));
        assert!(!names(&plan).contains(&"bochs"));
        assert!(
            plan.skipped
                .iter()
                .any(|s| s.name == "bochs" && s.reason == SkipReason::Loaded)
        );
        let blk = plan.steps.iter().find(|s| s.name == "virtio_blk").unwrap();
        assert_eq!(blk.params, "queue_depth=8");
    }

    #[test]
    fn one_job_loads_in_plan_order_with_exact_calls() {
        let tree = FakeTree::new("coldplug-run1");
        let kernel = tree.kernel();
        let plan = planned(&tree, "blacklist atkbd\noptions sd_mod x=1\n", &kernel);
        let kernel = LockedKernel::new(kernel);
        let outcomes = run(&plan, &kernel, &mut Recorder::default(), 1);
        let kernel = kernel.into_inner();
        assert!(
            outcomes
                .iter()
                .all(|o| *o == Outcome::Loaded(LoadMethod::Finit))
        );
        let expected: Vec<Call> = plan
            .steps
            .iter()
            .map(|s| Call::FinitModule {
                file: tree.module_path(&s.name),
                size: format!("fake {}\n", s.name).len() as u64,
                params: s.params.clone(),
                flags: 0,
            })
            .collect();
        assert_eq!(kernel.calls(), expected);
        assert!(matches!(&kernel.calls()[12], Call::FinitModule { params, .. } if params == "x=1"));
    }

    #[test]
    fn a_failed_dependency_stops_its_dependents_only() {
        let tree = FakeTree::new("coldplug-fail");
        let kernel = tree.kernel();
        let plan = planned(&tree, "blacklist atkbd\n", &kernel);
        // drm, bochs, then virtio fails.
        kernel.script(Syscall::FinitModule, Ok(()));
        kernel.script(Syscall::FinitModule, Ok(()));
        kernel.script(Syscall::FinitModule, Err(Errno(libc::ENOEXEC)));
        kernel.script(Syscall::FinitModule, Ok(()));
        kernel.script(Syscall::FinitModule, Err(Errno(libc::EEXIST)));
        let kernel = LockedKernel::new(kernel);
        let outcomes = run(&plan, &kernel, &mut Recorder::default(), 1);
        let kernel = kernel.into_inner();
        let by_name: HashMap<&str, &Outcome> = names(&plan).into_iter().zip(&outcomes).collect();
        assert!(
            matches!(by_name["virtio"], Outcome::Failed(why) if why == "Invalid module format")
        );
        for dependent in ["virtio_ring", "virtio_pci", "virtio_net", "virtio_blk"] {
            assert_eq!(
                *by_name[dependent],
                Outcome::DependencyFailed("virtio".into()),
                "{dependent}"
            );
        }
        assert_eq!(*by_name["usbcore"], Outcome::Loaded(LoadMethod::Finit));
        assert_eq!(*by_name["xhci_hcd"], Outcome::AlreadyLoaded);
        assert_eq!(*by_name["sd_mod"], Outcome::Loaded(LoadMethod::Finit));
        // Nothing was tried for the dependents of virtio.
        assert_eq!(kernel.calls().len(), plan.steps.len() - 4);
    }

    #[test]
    fn parallel_loads_respect_every_dependency() {
        let tree = FakeTree::new("coldplug-parallel");
        let kernel = tree.kernel();
        let plan = planned(&tree, "blacklist atkbd\n", &kernel);
        let shared = LockedKernel::new(kernel);
        for _ in 0..20 {
            let outcomes = run(&plan, &shared, &mut Recorder::default(), 4);
            assert!(outcomes.iter().all(Outcome::is_ok));
        }
        let calls = shared.into_inner().calls();
        assert_eq!(calls.len(), 20 * plan.steps.len());
        for round in calls.chunks(plan.steps.len()) {
            let position = |name: &str| {
                let file = tree.module_path(name);
                round
                    .iter()
                    .position(|c| matches!(c, Call::FinitModule { file: f, .. } if *f == file))
                    .unwrap()
            };
            for step in &plan.steps {
                for &dep in &step.deps {
                    assert!(position(&plan.steps[dep].name) < position(&step.name));
                }
            }
        }
    }

    /// A kernel whose loading of virtio_pci makes the virtio disk appear in a sysfs tree, as
    /// the real one does: the devices behind a bus driver appear only once it is loaded.
    struct Hotplugging {
        inner: LockedKernel<RecordingKernel>,
        sysfs: PathBuf,
        sys_module: PathBuf,
    }

    impl Kernel for Hotplugging {
        fn finit_module(&self, file: &File, params: &CStr, flags: u32) -> Result<(), Errno> {
            use std::io::Read;
            let mut text = String::new();
            let _ = (&*file).read_to_string(&mut text);
            let name = text.trim().trim_start_matches("fake ").to_owned();
            if name == "virtio_pci" {
                let dir = self.sysfs.join("devices/pci0000:00/0000:00:04.0/virtio1");
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(dir.join("uevent"), "MODALIAS=virtio:d00000002v00001AF4\n").unwrap();
            }
            let module = self.sys_module.join(&name);
            std::fs::create_dir_all(&module).unwrap();
            std::fs::write(module.join("initstate"), "live\n").unwrap();
            self.inner.finit_module(file, params, flags)
        }
        fn init_module(&self, image: &[u8], params: &CStr) -> Result<(), Errno> {
            self.inner.init_module(image, params)
        }
        fn delete_module(&self, name: &CStr, flags: u32) -> Result<(), Errno> {
            self.inner.delete_module(name, flags)
        }
        fn sys_module(&self) -> &SysModule {
            self.inner.sys_module()
        }
        fn proc_dir(&self) -> &ProcDir {
            self.inner.proc_dir()
        }
    }

    #[test]
    fn devices_that_appear_are_coldplugged_in_the_next_round() {
        let tree = FakeTree::new("coldplug-rounds");
        let sysfs_dir = std::env::temp_dir().join(format!(
            "modkit-coldplug-rounds-sysfs-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&sysfs_dir);
        let pci = sysfs_dir.join("devices/pci0000:00/0000:00:04.0");
        std::fs::create_dir_all(&pci).unwrap();
        std::fs::write(
            pci.join("uevent"),
            "MODALIAS=pci:v00001AF4d00001001sv00001AF4sd00001100bc01sc00i00\n",
        )
        .unwrap();
        let recording = tree.kernel();
        let sys_module = recording.sys_module().root().to_owned();
        let kernel = Hotplugging {
            inner: LockedKernel::new(recording),
            sysfs: sysfs_dir.clone(),
            sys_module,
        };
        let mut ctx = tree.context("");
        let sysfs = modkit_sysfs::Sysfs::new(&sysfs_dir);
        let done = coldplug(
            &mut ctx,
            &kernel,
            &sysfs,
            &mut Recorder::default(),
            &mut Recorder::default(),
            2,
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&sysfs_dir);
        assert_eq!(
            names(&done.plan),
            ["virtio", "virtio_ring", "virtio_pci", "virtio_blk"]
        );
        assert!(done.outcomes.iter().all(Outcome::is_ok));
        assert_eq!(done.rounds, 2);
        // virtio_blk's dependencies were loaded in the first round: none in its step.
        assert!(done.plan.steps[3].deps.is_empty());
        assert_eq!(done.plan.devices.len(), 2);
        assert!(done.plan.skipped.is_empty(), "{:?}", done.plan.skipped);
        assert_eq!(kernel.inner.into_inner().calls().len(), 4);
    }

    #[test]
    fn install_commands_run_instead_of_loading() {
        let tree = FakeTree::new("coldplug-install");
        let kernel = tree.kernel();
        let plan = planned(
            &tree,
            "blacklist atkbd\ninstall bochs /bin/echo $CMDLINE_OPTS\noptions bochs a=b\n",
            &kernel,
        );
        let bochs = plan.steps.iter().position(|s| s.name == "bochs").unwrap();
        assert_eq!(plan.steps[bochs].deps, Vec::<usize>::new());
        let mut recorder = Recorder::default();
        recorder.exit_statuses.push_back(3);
        let outcomes = run(&plan, &LockedKernel::new(kernel), &mut recorder, 1);
        assert_eq!(
            recorder.commands,
            [("/bin/echo a=b".to_owned(), "bochs".to_owned())]
        );
        assert_eq!(
            outcomes[bochs],
            Outcome::Failed("install command exited with status 3".into())
        );
    }

    #[test]
    fn softdeps_order_without_failing_their_dependents() {
        let tree = FakeTree::new("coldplug-softdep");
        let kernel = tree.kernel();
        let plan = planned(
            &tree,
            "blacklist atkbd\nsoftdep bochs pre: atkbd post: scsi_mod\n",
            &kernel,
        );
        let index = |name: &str| plan.steps.iter().position(|s| s.name == name).unwrap();
        let bochs = &plan.steps[index("bochs")];
        assert_eq!(bochs.soft_deps, [index("atkbd")]);
        assert!(
            plan.steps[index("scsi_mod")]
                .soft_deps
                .contains(&index("bochs"))
        );
        // atkbd is blacklisted as a device's module, but a soft dependency is loaded by name.
        kernel.script(Syscall::FinitModule, Ok(()));
        kernel.script(Syscall::FinitModule, Err(Errno(libc::EINVAL)));
        let outcomes = run(
            &plan,
            &LockedKernel::new(kernel),
            &mut Recorder::default(),
            1,
        );
        assert!(matches!(outcomes[index("atkbd")], Outcome::Failed(_)));
        assert!(outcomes[index("bochs")].is_ok());
    }
}
