//! The worker pool: a plan's steps on a pool of threads, each started as soon as the steps it
//! depends on have finished; a step whose hard dependency failed is not tried.

use std::collections::BTreeSet;
use std::sync::{Condvar, Mutex};

use modkit_syscalls::{Kernel, LoadError, LoadFailure, LoadMethod, LoadOptions};

use super::{Plan, Step};
use crate::CommandRunner;
use crate::report::substitute_cmdline_opts;

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
