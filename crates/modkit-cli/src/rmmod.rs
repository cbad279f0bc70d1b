//! `rmmod`: unload modules, with kmod's checks, messages and exit status.

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use modkit::name::{modname_normalize, path_to_modname};
use modkit::syscalls::{Errno, Kernel, UnloadError, UnloadOptions, libkmod_remove_error};

use crate::common::{self, Log};

/// Remove modules from the Linux kernel.
#[derive(Debug, Parser)]
#[command(name = "rmmod", disable_version_flag = true)]
struct Args {
    /// Force a module unload: may crash your machine. This requires Forced Module Removal
    /// option in your kernel. DANGEROUS
    #[arg(short, long)]
    force: bool,
    /// Print to syslog, not stderr
    #[arg(short, long)]
    syslog: bool,
    /// Enable more messages
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Show version
    #[arg(short = 'V', long)]
    version: bool,
    /// Modules to remove, by name or by file path
    #[arg(value_name = "MODULE")]
    modules: Vec<OsString>,
}

/// This tool's command line as clap sees it: its manual page and shell completions.
pub(crate) fn command() -> clap::Command {
    <Args as clap::CommandFactory>::command()
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args: Args = match common::parse_args(args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    if args.version {
        common::print_version();
        return ExitCode::SUCCESS;
    }
    let log = Log::new("rmmod", args.syslog);
    if args.modules.is_empty() {
        log.error("missing module name.");
        return ExitCode::FAILURE;
    }
    let kernel = common::kernel_from_env();
    let options = UnloadOptions { force: args.force };
    let failures = args
        .modules
        .iter()
        .filter(|arg| !remove(&kernel, arg, options, &log))
        .count();
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Remove one module; report a failure and say whether it worked.
pub(crate) fn remove(
    kernel: &dyn Kernel,
    arg: &OsString,
    options: UnloadOptions,
    log: &Log,
) -> bool {
    let arg_text = arg.to_string_lossy();
    let Some(name) = module_name(Path::new(arg)) else {
        // kmod 30 stops at this error and exits 0; modkit goes on and fails at the end.
        let reason = Errno(libc::ENOENT);
        log.error(format_args!("could not use module {arg_text}: {reason}"));
        return false;
    };
    match kernel.unload(&name, options) {
        Ok(()) => true,
        Err(err) => {
            match err {
                // kmod names the argument as given in this one message.
                UnloadError::Kernel { name, failure } => {
                    // libkmod's line (the module's name), then rmmod's (the argument).
                    log.error(libkmod_remove_error(&name, failure.errno()));
                    log.error(format_args!(
                        "could not remove module {arg_text}: {failure}"
                    ));
                }
                other => log.error(other),
            }
            false
        }
    }
}

/// The module an argument names, as kmod's rmmod takes it: when it exists (kmod stats it),
/// the module name of the file (`kmod_module_new_from_path`; `None` for a path whose base name
/// is empty, such as `DIR/`), else the argument as a name (`kmod_module_new_from_name`).
fn module_name(arg: &Path) -> Option<String> {
    if arg.exists() {
        path_to_modname(arg)
    } else {
        Some(modname_normalize(&arg.to_string_lossy()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_like_kmod() {
        let name = |arg: &str| module_name(Path::new(arg));
        assert_eq!(name("hello-api").as_deref(), Some("hello_api"));
        assert_eq!(name("hello_api.ko").as_deref(), Some("hello_api"));
        // A path that does not exist stays a (strange) name, as in kmod.
        assert_eq!(
            name("/nonexistent/dir").as_deref(),
            Some("/nonexistent/dir")
        );
        // One that exists is a file: its base name, none for `DIR/` (kmod: "could not use").
        assert_eq!(name("/").as_deref(), None);
        let dir = modkit_testkit::Scratch::new("rmmod");
        let file = dir.write("snd-hda-intel.ko.xz", b"");
        assert_eq!(module_name(&file).as_deref(), Some("snd_hda_intel"));
        let pid = std::process::id();
        assert_eq!(module_name(dir.path()), Some(format!("modkit_rmmod_{pid}")));
        assert_eq!(module_name(&dir.join("")), None);
    }
}
