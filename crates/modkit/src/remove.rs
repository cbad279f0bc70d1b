//! Unloading a module the way `modprobe -r` does (kmod 30's `rmmod_do_module`): its `post:`
//! soft dependencies, with `--remove-holders` the modules using it, the module itself (or its
//! remove command), then the dependencies nobody uses any more and its `pre:` soft
//! dependencies.

use std::time::{Duration, Instant};

use modkit_syscalls::{Errno, InitState, Kernel, UnloadOptions, libkmod_remove_error};

use crate::context::{Context, ModId};
use crate::probe::{c_name, run_command};
use crate::report::substitute_cmdline_opts;
use crate::{CommandRunner, Level, Reporter};

/// How to remove, as `modprobe -r`'s flags set it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoveOptions {
    /// Ignore remove commands and soft dependencies (`-i`).
    pub ignore_commands: bool,
    /// Do not check whether modules are loaded or in use.
    pub ignore_loaded: bool,
    /// Fail when the module is not loaded (`--first-time`).
    pub first_time: bool,
    /// Unload nothing, run nothing (`-n`).
    pub dry_run: bool,
    /// Report each action (`rmmod NAME`, `remove COMMAND`).
    pub show: bool,
    /// Force the unload (`-f`: `O_TRUNC`).
    pub force: bool,
    /// Remove the modules that use it first (`--remove-holders`).
    pub remove_holders: bool,
    /// `-w MSEC`: while the kernel answers that a module is in use (`EAGAIN`), try again, with
    /// growing pauses, until this much time has passed; the reference count is then not
    /// checked first. `None` (or zero) tries once.
    pub wait: Option<Duration>,
}

/// Remove the module `id` as kmod 30's `modprobe -r` does.
///
/// A module that is not loaded is no error (unless `first_time`); a built-in one is. The
/// module's `post:` soft dependencies go first and the `pre:` ones last, their failures
/// ignored; a module still in use is refused, naming the modules that use it; after the
/// module, each of its dependencies whose reference count dropped to 0 is unloaded too.
pub fn remove(
    ctx: &mut Context,
    kernel: &dyn Kernel,
    id: ModId,
    options: &RemoveOptions,
    reporter: &mut dyn Reporter,
    runner: &mut dyn CommandRunner,
) -> Result<(), Errno> {
    remove_module(ctx, kernel, id, options, true, reporter, runner)
}

fn remove_module(
    ctx: &mut Context,
    kernel: &dyn Kernel,
    id: ModId,
    options: &RemoveOptions,
    top: bool,
    reporter: &mut dyn Reporter,
    runner: &mut dyn CommandRunner,
) -> Result<(), Errno> {
    let name = ctx.name(id).to_owned();
    let (mut pre, mut post, mut command) = (Vec::new(), Vec::new(), None);
    if !options.ignore_commands {
        let softdeps = ctx.softdeps(id);
        softdeps.report(reporter);
        (pre, post) = (softdeps.pre, softdeps.post);
        command = ctx.remove_command(id);
    }

    if command.is_none() && !options.ignore_loaded {
        match ctx.initstate(kernel, id) {
            InitState::NotLoaded | InitState::Unknown(_) => {
                if options.first_time {
                    reporter.message(Level::Log, &format!("Module {name} is not in kernel."));
                    return Err(Errno(libc::ENOENT));
                }
                return Ok(());
            }
            InitState::Builtin => {
                // Soft dependencies and holders that are built in are quietly skipped.
                if !top {
                    return Ok(());
                }
                reporter.message(Level::Log, &format!("Module {name} is builtin."));
                return Err(Errno(libc::ENOENT));
            }
            _ => {}
        }
    }

    // 1. The post soft dependencies, last first; failures do not matter.
    for &m in post.iter().rev() {
        let _ = remove_module(ctx, kernel, m, options, false, reporter, runner);
    }

    // 2. The modules holding this one, last first; a failure stops here.
    if options.remove_holders && top {
        let holders = kernel.holders(&name);
        let holders: Vec<ModId> = holders.iter().map(|h| ctx.module_from_name(h)).collect();
        for &holder in holders.iter().rev() {
            remove_module(ctx, kernel, holder, options, false, reporter, runner)?;
        }
    }

    // 3. The module itself, unless something still uses it (with -w the kernel is asked,
    // again and again, instead).
    if command.is_none() && !options.ignore_loaded && !waits(options) {
        let usage = kernel
            .sys_module()
            .refcnt(&name)
            .ok()
            .flatten()
            .unwrap_or(0);
        if usage > 0 {
            let holders = kernel.holders(&name);
            if top && !holders.is_empty() {
                // kmod says only "is in use."; say by what, as kmod's rmmod does.
                reporter.message(
                    Level::Log,
                    &format!("Module {name} is in use by: {}", holders.join(" ")),
                );
            } else {
                reporter.message(Level::Log, &format!("Module {name} is in use."));
            }
            return Err(Errno(libc::EBUSY));
        }
    }
    match &command {
        None => delete(kernel, &name, options, reporter)?,
        Some(command) => {
            let command = substitute_cmdline_opts(command, "");
            if options.show {
                reporter.show(&format!("remove {command}"));
            }
            if !options.dry_run {
                run_command(&name, "remove", &command, Level::Log, reporter, runner)?;
            }
        }
    }

    // 4. Dependencies nobody uses any more; failures do not matter.
    if command.is_none() {
        let deps = ctx.dependencies(id).unwrap_or_default();
        for dep in deps {
            let dep_name = ctx.name(dep).to_owned();
            if kernel.sys_module().refcnt(&dep_name).ok().flatten() == Some(0) {
                let _ = delete(kernel, &dep_name, options, reporter);
            }
        }
    }

    // 5. The pre soft dependencies, last first; failures do not matter.
    for &m in pre.iter().rev() {
        let _ = remove_module(ctx, kernel, m, options, false, reporter, runner);
    }
    Ok(())
}

/// Whether `-w` asks to retry a module in use.
fn waits(options: &RemoveOptions) -> bool {
    options.wait.is_some_and(|wait| !wait.is_zero())
}

/// kmod's `rmmod_do_remove_module`: `delete_module(NAME, O_NONBLOCK)`; with `-w`, again while
/// the kernel answers `EAGAIN` (in use), pausing 2, 4, 8... ms (never past the deadline) as
/// kmod's `get_backoff_delta_msec` does, and then kmod's own line instead of libkmod's.
fn delete(
    kernel: &dyn Kernel,
    name: &str,
    options: &RemoveOptions,
    reporter: &mut dyn Reporter,
) -> Result<(), Errno> {
    if options.show {
        reporter.show(&format!("rmmod {name}"));
    }
    if options.dry_run {
        return Ok(());
    }
    let flags = UnloadOptions {
        force: options.force,
    }
    .delete_flags();
    let c_name = c_name(name)?;
    let deadline = options
        .wait
        .filter(|_| waits(options))
        .map(|wait| Instant::now() + wait);
    let mut pause = Duration::from_millis(1);
    let result = loop {
        let result = kernel.delete_module(&c_name, flags);
        let Some(deadline) = deadline else {
            break result;
        };
        let now = Instant::now();
        if result != Err(Errno(libc::EAGAIN)) || now >= deadline {
            break result;
        }
        pause = (pause * 2).min(deadline - now);
        std::thread::sleep(pause);
    };
    result.inspect_err(|errno| {
        let line = if deadline.is_some() {
            format!("could not remove '{name}': {}", errno.strerror())
        } else {
            // kmod 30's modprobe shows only libkmod's line here.
            libkmod_remove_error(name, *errno)
        };
        reporter.message(Level::Error, &line);
    })
}
