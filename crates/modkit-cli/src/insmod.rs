//! `insmod`: load one module file, as kmod's insmod does (no dependency resolution), and when
//! the kernel reports an unknown symbol, say which module exports it.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use modkit::config::modprobe::ModprobeConfig;
use modkit::name::path_to_modname;
use modkit::{Context, Exporter};
use modkit_syscalls::{Errno, Kernel, LoadError, LoadFailure, LoadMethod, LoadOptions};

use crate::lsmod::kernel_from_env;
use crate::parse_args;

/// Environment variable naming the directory that holds `/lib/modules/VERSION` trees (for tests).
pub(crate) const LIB_MODULES_ENV: &str = "MODKIT_LIB_MODULES";

/// How long the unknown-symbol hint may scan module files before giving up.
const HINT_BUDGET: Duration = Duration::from_secs(2);

/// Insert a module into the Linux kernel. Dependencies are not loaded: use modprobe for that.
#[derive(Debug, Parser)]
#[command(name = "insmod", version, disable_version_flag = true)]
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
    #[arg(short = 'V', long, action = clap::ArgAction::Version)]
    version: (),
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

pub fn main(args: Vec<OsString>) -> ExitCode {
    let args: Args = match parse_args(args) {
        Ok(args) => args,
        Err(exit) => return exit,
    };
    let Some(file) = args.file else {
        eprintln!("insmod: ERROR: missing filename.");
        return ExitCode::FAILURE;
    };
    if file.as_os_str() == "-" {
        eprintln!("insmod: ERROR: this tool does not support loading from stdin!");
        return ExitCode::FAILURE;
    }
    let kernel = kernel_from_env();
    let lib_modules = std::env::var_os(LIB_MODULES_ENV)
        .map_or_else(|| PathBuf::from("/lib/modules"), PathBuf::from);
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
    for line in &outcome.stderr {
        eprintln!("{line}");
    }
    if let (Some(method), true) = (outcome.method, args.verbose > 0) {
        eprintln!("insmod: {}: {}", file.display(), describe(method));
    }
    if outcome.method.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What inserting did: how (on success) and the lines for stderr.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) method: Option<LoadMethod>,
    pub(crate) stderr: Vec<String>,
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
            stderr: vec![format!(
                "insmod: ERROR: could not load module {shown}: {reason}"
            )],
        };
    }
    let err = match kernel.load(file, params, options) {
        Ok(method) => {
            return Outcome {
                method: Some(method),
                stderr: Vec::new(),
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
    let mut stderr = vec![format!(
        "insmod: ERROR: could not insert module {shown}: {reason}"
    )];
    if let LoadError::Kernel {
        failure: LoadFailure::UnknownSymbol,
        ..
    } = err
    {
        // The running kernel's module directory; a release that would leave it is ignored.
        let mut tree = kernel
            .release()
            .ok()
            .filter(|release| !release.is_empty() && !release.contains('/'))
            .map(|release| Context::new(lib_modules.join(release), ModprobeConfig::default()));
        let deadline = Instant::now() + HINT_BUDGET;
        let found = modkit::missing_symbols(kernel, file, tree.as_mut(), deadline);
        let inserting = path_to_modname(file).unwrap_or_default();
        stderr.extend(found.exported.iter().map(|e| hint(e, &inserting)));
    }
    Outcome {
        method: None,
        stderr,
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

/// The line insmod adds for a missing symbol, `inserting` being the name of the module that
/// failed to load.
fn hint(exporter: &Exporter, inserting: &str) -> String {
    let location = exporter
        .path
        .as_ref()
        .map(|path| format!(" ({})", path.display()))
        .unwrap_or_default();
    format!(
        "insmod: hint: {} is exported by {}{location}, which is not loaded; load it first, or use 'modprobe {inserting}' after 'depmod -a'",
        exporter.symbol, exporter.module
    )
}

// The unknown-symbol hint is tested on the binary, with the sample modules, in
// tests/insmod.rs; these tests need no file from outside the crate.
#[cfg(test)]
mod tests {
    use super::*;
    use modkit_syscalls::{Call, ProcDir, RecordingKernel, SysModule, Syscall};

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("modkit-insmod-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let path = self.0.join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, contents).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
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
        let scratch = Scratch::new("garbage");
        scratch.write("modules", "");
        let file = scratch.write("hello_feature.ko", b"not an ELF file");
        let kernel = kernel(&scratch.0, Some(LoadFailure::UnknownSymbol));
        let outcome = insert(&kernel, &file, "", LoadOptions::default(), &scratch.0);
        assert_eq!(
            outcome.stderr,
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
        let scratch = Scratch::new("other");
        // The fake kernel reads nothing of the file but its first bytes (no compression).
        let file = scratch.write("hello_api.ko", b"\x7fELF: the kernel would read the rest");
        let kernel = kernel(&scratch.0, Some(LoadFailure::AlreadyLoaded));
        let outcome = insert(
            &kernel,
            &file,
            "greeting=hi there",
            LoadOptions::default(),
            &scratch.0,
        );
        assert_eq!(
            outcome.stderr,
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
            &scratch.0,
        );
        assert_eq!(
            (outcome.method, outcome.stderr),
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

        let missing = scratch.0.join("missing.ko");
        let outcome = insert(&kernel, &missing, "", LoadOptions::default(), &scratch.0);
        assert_eq!(
            outcome.stderr,
            [format!(
                "insmod: ERROR: could not load module {}: No such file or directory",
                missing.display()
            )]
        );
        assert_eq!(kernel.calls().len(), 2);
    }
}
