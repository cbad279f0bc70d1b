//! The rounds: scan sysfs, plan, run, and scan again for the devices that the drivers just
//! loaded made appear, until nothing new is found.

use std::collections::HashMap;

use modkit_syscalls::Kernel;

use super::{Outcome, Plan, Step, plan, run};
use crate::{CommandRunner, Context, Error, Reporter};

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
