//! `rmmod`: unload modules, with kmod's checks, messages and exit status.

use std::ffi::OsString;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use modkit_syscalls::{Kernel, UnloadError, UnloadOptions};

use crate::lsmod::kernel_from_env;
use crate::parse_args;

/// Remove modules from the Linux kernel.
#[derive(Debug, Parser)]
#[command(name = "rmmod", version, disable_version_flag = true)]
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
    #[arg(short = 'V', long, action = clap::ArgAction::Version)]
    version: (),
    /// Modules to remove, by name or by file path
    #[arg(value_name = "MODULE")]
    modules: Vec<OsString>,
}

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args: Args = match parse_args(args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let log = Log {
        syslog: args.syslog,
    };
    if args.modules.is_empty() {
        log.error("missing module name.");
        return ExitCode::FAILURE;
    }
    let kernel = kernel_from_env();
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
    let name = module_name(Path::new(arg));
    match kernel.unload(&name, options) {
        Ok(()) => true,
        Err(err) => {
            match err {
                // kmod names the argument as given in this one message.
                UnloadError::Kernel { failure, .. } => {
                    log.error(&format!("could not remove module {arg_text}: {failure}"))
                }
                other => log.error(&other.to_string()),
            }
            false
        }
    }
}

/// The module an argument names: a file's base name when it exists (kmod stats it), else the
/// argument itself; either cut at the first `.` with `-` as `_` (kmod's `modname_normalize`).
pub(crate) fn module_name(arg: &Path) -> String {
    let text = if arg.exists() {
        arg.file_name().unwrap_or(arg.as_os_str()).to_string_lossy()
    } else {
        arg.as_os_str().to_string_lossy()
    };
    text.split('.').next().unwrap_or_default().replace('-', "_")
}

/// Where errors go: stderr as `rmmod: ERROR: ...`, or syslog with `-s`.
#[derive(Debug)]
pub(crate) struct Log {
    pub(crate) syslog: bool,
}

impl Log {
    pub(crate) fn error(&self, message: &str) {
        // kmod opens syslog as LOG_DAEMON and logs errors at LOG_ERR: priority 3*8+3.
        if self.syslog && send_syslog(&format!("<27>rmmod: ERROR: {message}")).is_ok() {
            return;
        }
        eprintln!("rmmod: ERROR: {message}");
    }
}

fn send_syslog(line: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.send_to(line.as_bytes(), "/dev/log")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_like_kmod() {
        assert_eq!(module_name(Path::new("hello-api")), "hello_api");
        assert_eq!(module_name(Path::new("hello_api.ko")), "hello_api");
        // A path that does not exist stays a (strange) name, as in kmod.
        assert_eq!(
            module_name(Path::new("/nonexistent/dir")),
            "/nonexistent/dir"
        );
        let dir = std::env::temp_dir().join(format!("modkit-rmmod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("snd-hda-intel.ko.xz");
        std::fs::write(&file, b"").unwrap();
        assert_eq!(module_name(&file), "snd_hda_intel");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
