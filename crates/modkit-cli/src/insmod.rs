//! `insmod`: load one module file, as kmod's insmod does (no dependency resolution), and when
//! the kernel reports an unknown symbol, say which module exports it.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use modkit::name::path_to_modname;
use modkit::syscalls::{Errno, Kernel, LoadError, LoadFailure, LoadMethod, LoadOptions};
use modkit::{ConfigFiles, Context, Exporter};

use crate::common::{self, Level};

const TOOL: &str = "insmod";

/// How long the unknown-symbol hint may scan module files before giving up (the kernel's
/// symbols and the index are read first, outside it).
const HINT_BUDGET: Duration = Duration::from_secs(2);

/// Insert a module into the Linux kernel. Dependencies are not loaded: use modprobe for that.
#[derive(Debug, Parser)]
#[command(name = "insmod", disable_version_flag = true)]
struct Args {
    /// Force: ignore the module's version magic and symbol versions (may crash your machine)
    #[arg(short, long)]
    force: bool,
    /// Ignored, for compatibility with kmod
    #[arg(short, long)]
    syslog: bool,
    /// Ignored, for compatibility with kmod
    #[arg(short = 'p', hide = true)]
    probe: bool,
    /// Say how the module was handed to the kernel
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Show version
    #[arg(short = 'V', long)]
    version: bool,
    /// The module file (.ko, .ko.xz, .ko.zst, .ko.gz)
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Module parameters, `name=value`
    #[arg(
        value_name = "PARAMS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    params: Vec<String>,
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
    let Some(file) = args.file else {
        common::error(TOOL, "missing filename.");
        return ExitCode::FAILURE;
    };
    if file.as_os_str() == "-" {
        common::error(TOOL, "this tool does not support loading from stdin!");
        return ExitCode::FAILURE;
    }
    let kernel = common::kernel_from_env();
    let lib_modules = common::lib_modules_from_env();
    let options = if args.force {
        LoadOptions::force()
    } else {
        LoadOptions::default()
    };
    let outcome = insert(
        &kernel,
        &file,
        &args.params.join(" "),
        options,
        &lib_modules,
    );
    for (level, text) in &outcome.messages {
        common::report(TOOL, *level, text);
    }
    if let (Some(method), true) = (outcome.method, args.verbose > 0) {
        common::write_stderr(&format!(
            "insmod: {}: {}\n",
            file.display(),
            describe(method)
        ));
    }
    if outcome.method.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What inserting did: how (on success) and the messages for stderr.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) method: Option<LoadMethod>,
    pub(crate) messages: Vec<(Level, String)>,
}

/// Insert `file` with `params`; on failure, kmod's message and any hints.
pub(crate) fn insert(
    kernel: &dyn Kernel,
    file: &Path,
    params: &str,
    options: LoadOptions,
    lib_modules: &Path,
) -> Outcome {
    let shown = file.display();
    // kmod stats the path first (kmod_module_new_from_path) and words that failure differently.
    if let Err(err) = fs::metadata(file) {
        let reason = Errno::from_io(&err);
        return Outcome {
            method: None,
            messages: vec![(
                Level::Error,
                format!("could not load module {shown}: {reason}"),
            )],
        };
    }
    let err = match kernel.load(file, params, options) {
        Ok(method) => {
            return Outcome {
                method: Some(method),
                messages: Vec::new(),
            };
        }
        Err(err) => err,
    };
    let reason = match &err {
        LoadError::Open { cause, .. } | LoadError::Read { cause, .. } => {
            Errno::from_io(cause).strerror()
        }
        LoadError::Kernel { failure, .. } => failure.kmod_message(),
        other => other.to_string(),
    };
    let mut messages = vec![(
        Level::Error,
        format!("could not insert module {shown}: {reason}"),
    )];
    if let LoadError::Kernel {
        failure: LoadFailure::UnknownSymbol,
        ..
    } = err
    {
        // The running kernel's module directory (no configuration: only its indexes are
        // asked); a release that would leave it is ignored, one that is not there searched
        // in `file`'s directory only.
        let mut tree = kernel
            .release()
            .ok()
            .filter(|release| !release.is_empty() && !release.contains('/'))
            .and_then(|release| {
                Context::open(lib_modules.join(release), &ConfigFiles::None, None).ok()
            })
            .map(|(ctx, _)| ctx);
        let found = modkit::missing_symbols(kernel, file, tree.as_mut(), HINT_BUDGET);
        let inserting = path_to_modname(file).unwrap_or_default();
        messages.extend(
            found
                .exported
                .iter()
                .map(|e| (Level::Hint, hint(e, &inserting))),
        );
    }
    Outcome {
        method: None,
        messages,
    }
}

fn describe(method: LoadMethod) -> String {
    match method {
        LoadMethod::Finit => "loaded with finit_module".to_owned(),
        LoadMethod::KernelDecompressed(c) => {
            format!("loaded with finit_module, decompressed ({c}) by the kernel")
        }
        LoadMethod::UserDecompressed(c) => format!("decompressed ({c}) here, then loaded"),
        LoadMethod::InitModule => "loaded with init_module".to_owned(),
        _ => "loaded".to_owned(),
    }
}

/// The hint insmod adds for a missing symbol, `inserting` being the name of the module that
/// failed to load.
fn hint(exporter: &Exporter, inserting: &str) -> String {
    let location = exporter
        .path
        .as_ref()
        .map(|path| format!(" ({})", path.display()))
        .unwrap_or_default();
    format!(
        "{} is exported by {}{location}, which is not loaded; load it first, or use 'modprobe {inserting}' after 'depmod -a'",
        exporter.symbol, exporter.module
    )
}

// The unknown-symbol hint is tested on the binary, with the sample modules, in
// tests/insmod.rs; these tests need no file from outside the crate.
#[cfg(test)]
mod tests {
    use super::*;
    use modkit::syscalls::{Call, ProcDir, RecordingKernel, SysModule, Syscall};
    use modkit_testkit::Scratch;

    /// The lines insmod prints for `outcome`'s messages.
    fn lines(outcome: &Outcome) -> Vec<String> {
        let line = |(level, text): &(Level, String)| common::message_line(TOOL, *level, text);
        outcome.messages.iter().map(line).collect()
    }

    /// A fake kernel with `/proc` at `proc` whose first finit_module fails so.
    fn kernel(proc: &Path, failure: Option<LoadFailure>) -> RecordingKernel {
        let kernel = RecordingKernel::new(SysModule::new(proc.join("no-sys")), ProcDir::new(proc));
        if let Some(failure) = failure {
            kernel.script(Syscall::FinitModule, Err(failure.errno()));
        }
        kernel
    }

    #[test]
    fn a_module_that_cannot_be_read_just_gets_kmods_message() {
        let scratch = Scratch::new("insmod-garbage");
        scratch.write("modules", "");
        let file = scratch.write("hello_feature.ko", b"not an ELF file");
        let kernel = kernel(scratch.path(), Some(LoadFailure::UnknownSymbol));
        let outcome = insert(&kernel, &file, "", LoadOptions::default(), scratch.path());
        assert_eq!(
            lines(&outcome),
            [format!(
                "insmod: ERROR: could not insert module {}: Unknown symbol in module",
                file.display()
            )]
        );
        // Looking for the exporter makes no syscall.
        assert_eq!(kernel.calls().len(), 1);
    }

    #[test]
    fn other_failures_and_success() {
        let scratch = Scratch::new("insmod-other");
        // The fake kernel reads nothing of the file but its first bytes (no compression).
        let file = scratch.write("hello_api.ko", b"\x7fELF: the kernel would read the rest");
        let kernel = kernel(scratch.path(), Some(LoadFailure::AlreadyLoaded));
        let outcome = insert(
            &kernel,
            &file,
            "greeting=hi there",
            LoadOptions::default(),
            scratch.path(),
        );
        assert_eq!(
            lines(&outcome),
            [format!(
                "insmod: ERROR: could not insert module {}: File exists",
                file.display()
            )]
        );
        let outcome = insert(
            &kernel,
            &file,
            "greeting=hi there",
            LoadOptions::force(),
            scratch.path(),
        );
        assert_eq!(
            (outcome.method, lines(&outcome)),
            (Some(LoadMethod::Finit), vec![])
        );
        let size = fs::metadata(&file).unwrap().len();
        let call = |flags| Call::FinitModule {
            file: file.clone(),
            size,
            params: "greeting=hi there".into(),
            flags,
        };
        assert_eq!(kernel.calls(), [call(0), call(3)]);

        let missing = scratch.path().join("missing.ko");
        let outcome = insert(
            &kernel,
            &missing,
            "",
            LoadOptions::default(),
            scratch.path(),
        );
        assert_eq!(
            lines(&outcome),
            [format!(
                "insmod: ERROR: could not load module {}: No such file or directory",
                missing.display()
            )]
        );
        assert_eq!(kernel.calls().len(), 2);
    }
}
