//! The planner: each device's modalias looked up in kmod's order, and per module the decision
//! to skip it (blacklisted, built in, loaded) or the step that loads it after its dependencies
//! and soft dependencies, with its options or its install command.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use modkit_syscalls::{InitState, Kernel};

use crate::{Context, Error, ModId, Reporter};

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
        let softdeps = self.ctx.softdeps(id);
        softdeps.report(&mut *self.reporter);
        let (pre, post) = (softdeps.pre, softdeps.post);
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
