//! Loading a module the way `modprobe` does (libkmod's `kmod_module_probe_insert_module`):
//! dependencies first, soft dependencies around the module, options from the configuration,
//! the kernel command line and the caller, install commands instead of loading, the blacklist,
//! and modules already in the kernel.

use std::ffi::CString;

use modkit_syscalls::{Errno, Kernel, LoadError, LoadOptions};

use crate::context::{Context, ModId};
use crate::report::substitute_cmdline_opts;
use crate::{CommandRunner, Level, Reporter};

/// When the blacklist applies (kmod's `KMOD_PROBE_APPLY_BLACKLIST*` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Blacklist {
    /// Never.
    Never,
    /// To modules found through an alias (modprobe's default).
    #[default]
    Aliases,
    /// Also to the module asked for by name (modprobe `-b`).
    Module,
    /// To the module and everything loaded with it (libkmod's `APPLY_BLACKLIST_ALL`).
    All,
}

/// How to probe, as modprobe's flags set it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeOptions {
    /// Ignore symbol versions (`--force-modversion`, `-f`).
    pub force_modversion: bool,
    /// Ignore the version magic (`--force-vermagic`, `-f`).
    pub force_vermagic: bool,
    /// Ignore install commands and the asked-for module's soft dependencies (`-i`).
    pub ignore_commands: bool,
    /// Do not check whether modules are already in the kernel (`--show-depends`).
    pub ignore_loaded: bool,
    /// Load nothing, run nothing (`-n`, `--show-depends`).
    pub dry_run: bool,
    /// Report each action (`insmod PATH OPTIONS`, `install COMMAND OPTIONS`, `builtin NAME`).
    pub show: bool,
    /// When the blacklist applies.
    pub blacklist: Blacklist,
    /// Fail when the module is already in the kernel (`--first-time`).
    pub first_time: bool,
}

/// How a probe ended without error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// Everything was loaded (or, in a dry run, would have been).
    Done,
    /// The module was already in the kernel (live or built in); nothing was done.
    AlreadyLoaded,
    /// The module is blacklisted; nothing was done.
    Blacklisted,
}

/// Load the module `id` and what it needs, as kmod 30's `kmod_module_probe_insert_module`
/// does; `extra_options` go to this module only, after its configured options.
///
/// Dependencies are loaded first; each module (dependency or not) brings its soft
/// dependencies: the `pre:` ones before it, the `post:` ones after it. A module with an
/// install command (and no soft dependencies) runs the command instead of being loaded.
/// Modules already in the kernel are skipped. A failing dependency stops the probe; a failing
/// soft dependency does not.
///
/// The error is kmod's: an errno (`EEXIST` with `first_time`, the kernel's answer, or the exit
/// status of an install command); messages have gone to `reporter`.
#[allow(clippy::too_many_arguments)] // reason: mirrors kmod's probe call; a struct would only rename them
pub fn probe(
    ctx: &mut Context,
    kernel: &dyn Kernel,
    id: ModId,
    extra_options: &str,
    options: &ProbeOptions,
    reporter: &mut dyn Reporter,
    runner: &mut dyn CommandRunner,
) -> Result<ProbeOutcome, Errno> {
    if !options.ignore_loaded && ctx.is_in_kernel(kernel, id) {
        return if options.first_time {
            Err(Errno(libc::EEXIST))
        } else {
            Ok(ProbeOutcome::AlreadyLoaded)
        };
    }

    let is_alias = ctx.alias(id).is_some();
    let check_blacklist = match options.blacklist {
        Blacklist::Never => false,
        Blacklist::Aliases => is_alias,
        Blacklist::Module | Blacklist::All => true,
    };
    if check_blacklist && ctx.config().is_blacklisted(ctx.name(id)) {
        return Ok(ProbeOutcome::Blacklisted);
    }

    let mut list = Vec::new();
    ctx.reset_marks();
    if let Err(err) = probe_list(ctx, id, true, options.ignore_commands, &mut list, reporter) {
        reporter.message(Level::Error, &err.to_string());
        return Err(Errno(libc::EINVAL));
    }

    if options.blacklist == Blacklist::All {
        list.retain(|&m| !ctx.config().is_blacklisted(ctx.name(m)));
        if list.is_empty() {
            return Ok(ProbeOutcome::Blacklisted);
        }
    }

    let mut result: Result<(), Errno> = Ok(());
    for &m in &list {
        let mut step: Result<(), Errno>;
        if !options.ignore_loaded && ctx.is_in_kernel(kernel, m) {
            step = Err(Errno(libc::EEXIST));
        } else {
            // kmod's module_options_concat: "CONFIGURED EXTRA" (a trailing space when there
            // is nothing extra), or just the extra options.
            let configured = ctx.options(m);
            let extra = if m == id { extra_options } else { "" };
            let module_options = if configured.is_empty() {
                extra.to_owned()
            } else {
                format!("{configured} {extra}")
            };
            let command = ctx.install_command(m);
            match command {
                Some(command) if !ctx.entry(m).ignorecmd => {
                    if options.show {
                        reporter.show(&format!("install {command} {module_options}"));
                    }
                    step = Ok(());
                    if !options.dry_run {
                        step = run_install(ctx, m, &command, &module_options, reporter, runner);
                    }
                }
                _ => {
                    if options.show {
                        show_insmod(ctx, kernel, m, &module_options, reporter);
                    }
                    step = Ok(());
                    if !options.dry_run {
                        step = insert(ctx, kernel, m, &module_options, options, reporter);
                    }
                }
            }
        }

        let already = step.as_ref().err() == Some(&Errno(libc::EEXIST));
        if already && m == id && options.first_time {
            result = step;
            break;
        }
        // Already loaded is fine, and a soft dependency's failure is ignored.
        if already || !ctx.entry(m).required {
            step = Ok(());
        }
        result = step;
        if result.is_err() {
            break;
        }
    }
    result.map(|()| ProbeOutcome::Done)
}

/// kmod's `print_action` for a module loaded from a file (or built in).
fn show_insmod(
    ctx: &mut Context,
    kernel: &dyn Kernel,
    id: ModId,
    options: &str,
    reporter: &mut dyn Reporter,
) {
    match ctx.path(id) {
        Ok(Some(path)) => reporter.show(&format!("insmod {} {options}", path.display())),
        _ => {
            if ctx.initstate(kernel, id) == modkit_syscalls::InitState::Builtin {
                reporter.show(&format!("builtin {}", ctx.name(id)));
            }
        }
    }
}

/// kmod's `__kmod_module_get_probe_list`: the modules to load for `id`, in order.
fn probe_list(
    ctx: &mut Context,
    id: ModId,
    required: bool,
    ignorecmd: bool,
    list: &mut Vec<ModId>,
    reporter: &mut dyn Reporter,
) -> Result<(), crate::Error> {
    if ctx.entry(id).visited {
        return Ok(());
    }
    ctx.entry_mut(id).visited = true;

    let deps = ctx.dependencies(id)?;
    if required {
        // Mark the module and its dependencies before soft dependencies can visit them.
        ctx.entry_mut(id).required = true;
        for &dep in &deps {
            ctx.entry_mut(dep).required = true;
        }
    }
    for &dep in &deps {
        fill_softdep(ctx, dep, list, reporter)?;
    }
    if ignorecmd {
        list.push(id);
        ctx.entry_mut(id).ignorecmd = true;
        Ok(())
    } else {
        fill_softdep(ctx, id, list, reporter)
    }
}

/// kmod's `__kmod_module_fill_softdep`: the `pre:` modules, the module, the `post:` modules.
fn fill_softdep(
    ctx: &mut Context,
    id: ModId,
    list: &mut Vec<ModId>,
    reporter: &mut dyn Reporter,
) -> Result<(), crate::Error> {
    let softdeps = ctx.softdeps(id);
    softdeps.report(reporter);
    let (pre, post) = (softdeps.pre, softdeps.post);
    for &m in &pre {
        probe_list(ctx, m, false, false, list, reporter)?;
    }
    list.push(id);
    // A module with soft dependencies is loaded, not replaced by its install command.
    ctx.entry_mut(id).ignorecmd = !pre.is_empty() || !post.is_empty();
    for &m in &post {
        probe_list(ctx, m, false, false, list, reporter)?;
    }
    Ok(())
}

/// kmod's `kmod_module_insert_module`.
fn insert(
    ctx: &mut Context,
    kernel: &dyn Kernel,
    id: ModId,
    module_options: &str,
    options: &ProbeOptions,
    reporter: &mut dyn Reporter,
) -> Result<(), Errno> {
    let path = match ctx.path(id) {
        Ok(Some(path)) => path,
        Ok(None) | Err(_) => {
            reporter.message(
                Level::Error,
                &format!("could not find module by name='{}'", ctx.name(id)),
            );
            return Err(Errno(libc::ENOSYS));
        }
    };
    let load_options = LoadOptions {
        ignore_modversions: options.force_modversion,
        ignore_vermagic: options.force_vermagic,
    };
    kernel
        .load(&path, module_options, load_options)
        .map(|_| ())
        .map_err(|err| {
            let errno = load_errno(&err);
            reporter.message(
                Level::Info,
                &format!(
                    "Failed to insert module '{}': {}",
                    path.display(),
                    errno.strerror()
                ),
            );
            errno
        })
}

/// The errno kmod would have got for a load error.
pub(crate) fn load_errno(err: &LoadError) -> Errno {
    match err {
        LoadError::Kernel { failure, .. } => failure.errno(),
        LoadError::Open { cause, .. } | LoadError::Read { cause, .. } => Errno::from_io(cause),
        LoadError::Params { .. } => Errno(libc::EINVAL),
        _ => Errno(libc::ENOEXEC),
    }
}

/// kmod's `module_do_install_commands` and `command_do`.
fn run_install(
    ctx: &Context,
    id: ModId,
    command: &str,
    options: &str,
    reporter: &mut dyn Reporter,
    runner: &mut dyn CommandRunner,
) -> Result<(), Errno> {
    let command = substitute_cmdline_opts(command, options);
    let name = ctx.name(id);
    run_command(name, "install", &command, Level::Error, reporter, runner)
}

/// Run an install or remove command; a failure is reported at `level` and gives the
/// command's exit status as the errno (kmod's `-WEXITSTATUS`), or `EPERM` (-1) when it could
/// not run.
pub(crate) fn run_command(
    name: &str,
    kind: &str,
    command: &str,
    level: Level,
    reporter: &mut dyn Reporter,
    runner: &mut dyn CommandRunner,
) -> Result<(), Errno> {
    let status = runner.run(command, name);
    match status {
        Ok(0) => Ok(()),
        Ok(code) => {
            reporter.message(level, &format!("Error running {kind} command for {name}"));
            Err(Errno(code))
        }
        Err(_) => {
            reporter.message(level, &format!("Error running {kind} command for {name}"));
            Err(Errno(libc::EPERM))
        }
    }
}

/// A module name as the kernel takes it, or `EINVAL` for one with a NUL byte.
pub(crate) fn c_name(name: &str) -> Result<CString, Errno> {
    CString::new(name).map_err(|_| Errno(libc::EINVAL))
}
