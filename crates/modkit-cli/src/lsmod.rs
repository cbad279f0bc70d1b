//! `lsmod`: list the loaded modules in kmod's format, from `/proc/modules` and `/sys/module`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use modkit::syscalls::{Errno, Kernel};

use crate::common;

/// Show the status of modules in the Linux kernel: one line per loaded module with its size,
/// reference count and the modules using it.
#[derive(Debug, Parser)]
#[command(name = "lsmod", disable_version_flag = true)]
struct Args {
    /// Print to syslog, not stderr (accepted for compatibility)
    #[arg(short, long)]
    syslog: bool,
    /// Enable more messages (accepted for compatibility)
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Show version
    #[arg(short = 'V', long)]
    version: bool,
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
    let kernel = common::kernel_from_env();
    match render(&kernel) {
        Ok(text) => match std::io::stdout().lock().write_all(text.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => common::io_exit("lsmod", &err),
        },
        Err(message) => {
            common::write_stderr(&format!("{message}\n"));
            ExitCode::FAILURE
        }
    }
}

/// The whole output of lsmod, or kmod 30's error line.
pub(crate) fn render(kernel: &dyn Kernel) -> Result<String, String> {
    let modules = kernel.loaded_modules().map_err(|err| {
        let reason = match &err {
            modkit::syscalls::Error::Io { cause, .. } => Errno::from_io(cause).strerror(),
            other => other.to_string(),
        };
        // kmod 30's wording (tools/lsmod.c).
        format!("Error: could not get list of modules: {reason}")
    })?;
    let mut out = String::from("Module                  Size  Used by\n");
    for module in &modules {
        // kmod reads the count and holders from /sys/module/NAME, as `Kernel` does first.
        let refcount = kernel.refcount(&module.name).unwrap_or(module.refcount);
        let holders = kernel.holders(&module.name);
        let _ = write!(out, "{:<19} {:>8}  {}", module.name, module.size, refcount);
        if !holders.is_empty() {
            let _ = write!(out, " {}", holders.join(","));
        }
        out.push('\n');
    }
    Ok(out)
}
