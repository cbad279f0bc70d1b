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
//! [`coldplug`] repeats both in rounds, scanning sysfs again for the devices that the drivers
//! it loaded made appear.
//!
//! One concern per file: `plan.rs` the planner, `pool.rs` the worker pool, `rounds.rs` the
//! rounds. A kernel that cannot be shared between the pool's threads as it is (a
//! [`modkit_syscalls::RecordingKernel`]) runs behind [`modkit_syscalls::LockedKernel`].

mod plan;
mod pool;
mod rounds;

pub use plan::{Plan, SkipReason, Skipped, Step, plan};
pub use pool::{Outcome, run};
pub use rounds::{Coldplug, MAX_ROUNDS, coldplug};
