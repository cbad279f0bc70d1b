//! `insmod`: load one module file, as kmod's insmod does (no dependency resolution), and when
//! the kernel reports an unknown symbol, say which module exports it.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use modkit_syscalls::{Errno, Kernel, LoadError, LoadFailure, LoadMethod, LoadOptions};

use crate::lsmod::kernel_from_env;
use crate::parse_args;

/// Environment variable naming the directory that holds `/lib/modules/VERSION` trees (for tests).
pub(crate) const LIB_MODULES_ENV: &str = "MODKIT_LIB_MODULES";

/// How long the unknown-symbol hint may scan module files before giving up.
const HINT_BUDGET: Duration = Duration::from_secs(2);

/// Largest module decompressed for the hint.
const HINT_DECOMPRESS_LIMIT: u64 = 256 << 20;

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
        let release = kernel_release(kernel);
        let tree = release.map(|release| lib_modules.join(release));
        let deadline = Instant::now() + HINT_BUDGET;
        let hints = missing_symbol_hints(kernel, file, tree.as_deref(), deadline);
        stderr.extend(hints.iter().map(|hint| hint.render(&module_name(file))));
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

/// The running kernel's release (`uname -r`), from `/proc/sys/kernel/osrelease` of the kernel's
/// `/proc` tree.
fn kernel_release(kernel: &dyn Kernel) -> Option<String> {
    let text = fs::read_to_string(kernel.proc_dir().root().join("sys/kernel/osrelease")).ok()?;
    let release = text.trim();
    (!release.is_empty() && !release.contains('/')).then(|| release.to_owned())
}

/// kmod's module name of a file: base name up to the first `.`, `-` as `_`.
fn module_name(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    base.split('.').next().unwrap_or_default().replace('-', "_")
}

/// One symbol the module needs and the module that exports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hint {
    pub(crate) symbol: String,
    pub(crate) module: String,
    pub(crate) path: Option<PathBuf>,
}

impl Hint {
    /// The line printed, `inserting` being the name of the module that failed to load.
    pub(crate) fn render(&self, inserting: &str) -> String {
        let location = self
            .path
            .as_ref()
            .map(|path| format!(" ({})", path.display()))
            .unwrap_or_default();
        format!(
            "insmod: hint: {} is exported by {}{location}, which is not loaded; load it first, or use 'modprobe {inserting}' after 'depmod -a'",
            self.symbol, self.module
        )
    }
}

/// For each symbol `file` needs that neither the kernel nor a loaded module provides, the
/// not-loaded module that exports it: from `tree/modules.symbols` when there is one, else from
/// the module files in `file`'s own directory and then in `tree`, scanned until `deadline`.
/// Anything that cannot be read just gives fewer hints.
pub(crate) fn missing_symbol_hints(
    kernel: &dyn Kernel,
    file: &Path,
    tree: Option<&Path>,
    deadline: Instant,
) -> Vec<Hint> {
    let Some(needed) = undefined_symbols(file) else {
        return Vec::new();
    };
    let loaded: HashSet<String> = kernel
        .loaded_modules()
        .map(|modules| modules.into_iter().map(|m| m.name).collect())
        .unwrap_or_default();
    let kallsyms = kernel.proc_dir().kallsyms();
    let missing: Vec<String> = needed
        .into_iter()
        .filter(|symbol| {
            kallsyms.as_ref().is_none_or(|names| {
                !names.contains(symbol.as_str()) && !names.contains(&format!("__ksymtab_{symbol}"))
            })
        })
        .collect();

    let mut found = Found {
        own_name: module_name(file),
        loaded,
        missing,
        hints: Vec::new(),
    };

    let index = tree.and_then(symbols_index);
    if let (Some(tree), Some(index)) = (tree, &index) {
        let mut by_module: Vec<(&str, Vec<String>)> = Vec::new();
        for symbol in &found.missing {
            if let Some(module) = index.get(symbol.as_str()) {
                match by_module.iter_mut().find(|(name, _)| name == module) {
                    Some((_, symbols)) => symbols.push(symbol.clone()),
                    None => by_module.push((module, vec![symbol.clone()])),
                }
            }
        }
        let paths = dep_paths(tree);
        for (module, symbols) in by_module {
            found.exporter(module, paths.get(module).cloned(), symbols);
        }
    }

    let own_dir = file.parent().map(|dir| {
        if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }
    });
    let mut dirs: Vec<(&Path, bool)> = own_dir.into_iter().map(|dir| (dir, false)).collect();
    if index.is_none() {
        dirs.extend(tree.map(|tree| (tree, true)));
    }
    for (dir, recursive) in dirs {
        let mut candidates = Vec::new();
        collect_module_files(dir, recursive, &mut candidates);
        for candidate in candidates {
            if found.missing.is_empty() || Instant::now() > deadline {
                break;
            }
            let name = module_name(&candidate);
            if name == found.own_name || found.loaded.contains(&name) || same_file(&candidate, file)
            {
                continue;
            }
            if let Some(exports) = exported_symbols(&candidate) {
                found.exporter(&name, Some(candidate), exports);
            }
        }
    }
    found.hints
}

/// The search so far: what is still missing and the hints found.
struct Found {
    own_name: String,
    loaded: HashSet<String>,
    missing: Vec<String>,
    hints: Vec<Hint>,
}

impl Found {
    /// `module` (at `path`) exports `exports`: each missing one gets a hint, unless the module
    /// is the one being inserted or is loaded already.
    fn exporter(&mut self, module: &str, path: Option<PathBuf>, exports: Vec<String>) {
        if module == self.own_name || self.loaded.contains(module) {
            return;
        }
        let exports: HashSet<String> = exports.into_iter().collect();
        let hints = &mut self.hints;
        self.missing.retain(|symbol| {
            if !exports.contains(symbol) {
                return true;
            }
            hints.push(Hint {
                symbol: symbol.clone(),
                module: module.to_owned(),
                path: path.clone(),
            });
            false
        });
    }
}

/// The symbols a module file needs, or `None` if it cannot be read.
fn undefined_symbols(file: &Path) -> Option<Vec<String>> {
    let bytes = fs::read(file).ok()?;
    let image = modkit_elf::decompress(&bytes, HINT_DECOMPRESS_LIMIT).ok()?;
    let module = modkit_elf::Module::parse(&image).ok()?;
    let mut seen = HashSet::new();
    Some(
        module
            .imports()
            .ok()?
            .into_iter()
            .filter(|name| seen.insert(*name))
            .map(str::to_owned)
            .collect(),
    )
}

/// The symbols a module file exports, or `None` if it cannot be read.
fn exported_symbols(file: &Path) -> Option<Vec<String>> {
    let bytes = fs::read(file).ok()?;
    let image = modkit_elf::decompress(&bytes, HINT_DECOMPRESS_LIMIT).ok()?;
    let module = modkit_elf::Module::parse(&image).ok()?;
    Some(
        module
            .exports()
            .ok()?
            .into_iter()
            .map(|symbol| symbol.name.to_owned())
            .collect(),
    )
}

/// `modules.symbols` (`alias symbol:NAME MODULE` lines) as symbol -> module, if present.
fn symbols_index(tree: &Path) -> Option<HashMap<String, String>> {
    let text = fs::read_to_string(tree.join("modules.symbols")).ok()?;
    let mut index = HashMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some("alias"), Some(key), Some(module)) = (words.next(), words.next(), words.next())
            && let Some(symbol) = key.strip_prefix("symbol:")
        {
            index
                .entry(symbol.to_owned())
                .or_insert_with(|| module.to_owned());
        }
    }
    Some(index)
}

/// Module name -> file, from `modules.dep` (`relpath: deps...` lines); empty if absent.
fn dep_paths(tree: &Path) -> HashMap<String, PathBuf> {
    let Ok(text) = fs::read_to_string(tree.join("modules.dep")) else {
        return HashMap::new();
    };
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(path, _)| {
            let path = Path::new(path);
            let full = if path.is_absolute() {
                path.to_owned()
            } else {
                tree.join(path)
            };
            (module_name(path), full)
        })
        .collect()
}

/// Module files (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`) in `dir`, sorted per directory.
fn collect_module_files(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|entry| entry.file_name());
    let mut subdirs = Vec::new();
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            subdirs.push(path);
        } else if is_module_file(&path) {
            out.push(path);
        }
    }
    if recursive {
        for subdir in subdirs {
            collect_module_files(&subdir, true, out);
        }
    }
}

fn is_module_file(path: &Path) -> bool {
    modkit::has_module_extension(path.as_os_str().as_encoded_bytes())
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modkit_syscalls::{Call, ProcDir, RecordingKernel, SysModule, Syscall};

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../kmods/fixtures")
            .canonicalize()
            .unwrap()
    }

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

    const ADVICE: &str =
        "which is not loaded; load it first, or use 'modprobe hello_feature' after 'depmod -a'";

    #[test]
    fn unknown_symbol_names_the_exporter_in_the_same_directory() {
        let proc = Scratch::new("samedir");
        proc.write("modules", "");
        for kver in ["6.1", "6.12"] {
            let dir = fixtures().join(kver);
            let file = dir.join("hello_feature.ko");
            let kernel = kernel(&proc.0, Some(LoadFailure::UnknownSymbol));
            let outcome = insert(
                &kernel,
                &file,
                "",
                LoadOptions::default(),
                &proc.0.join("lib"),
            );
            assert_eq!(outcome.method, None);
            assert_eq!(
                outcome.stderr,
                [
                    format!(
                        "insmod: ERROR: could not insert module {}: Unknown symbol in module",
                        file.display()
                    ),
                    format!(
                        "insmod: hint: api_test is exported by hello_api ({}), {ADVICE}",
                        dir.join("hello_api.ko").display()
                    ),
                ],
                "{kver}"
            );
            assert_eq!(kernel.calls().len(), 1);
        }
    }

    #[test]
    fn compressed_modules_are_read_for_the_hint_too() {
        let scratch = Scratch::new("compressed");
        scratch.write("modules", "");
        let file = scratch.write(
            "mods/hello_feature.ko.xz",
            fs::read(fixtures().join("6.12/hello_feature.ko.xz")).unwrap(),
        );
        let api = scratch.write(
            "mods/hello_api.ko.zst",
            fs::read(fixtures().join("6.12/hello_api.ko.zst")).unwrap(),
        );
        let kernel = kernel(&scratch.0, Some(LoadFailure::UnknownSymbol));
        let hints = missing_symbol_hints(
            &kernel,
            &file,
            None,
            Instant::now() + Duration::from_secs(30),
        );
        assert_eq!(
            hints,
            [Hint {
                symbol: "api_test".into(),
                module: "hello_api".into(),
                path: Some(api)
            }]
        );
    }

    #[test]
    fn no_hint_for_what_is_loaded_or_in_the_kernel() {
        let file = fixtures().join("6.12/hello_feature.ko");
        let deadline = Instant::now() + Duration::from_secs(30);

        let loaded = Scratch::new("loaded");
        loaded.write(
            "modules",
            "hello_api 12288 0 - Live 0x0000000000000000 (OE)\n",
        );
        assert_eq!(
            missing_symbol_hints(&kernel(&loaded.0, None), &file, None, deadline),
            []
        );

        let kallsyms = Scratch::new("kallsyms");
        kallsyms.write("modules", "");
        kallsyms.write(
            "kallsyms",
            "0000000000000000 T _printk\n0000000000000000 r __ksymtab_api_test\t[hello_api]\n",
        );
        assert_eq!(
            missing_symbol_hints(&kernel(&kallsyms.0, None), &file, None, deadline),
            []
        );

        // kallsyms without api_test: the hint is back.
        kallsyms.write("kallsyms", "0000000000000000 T _printk\n");
        let hints = missing_symbol_hints(&kernel(&kallsyms.0, None), &file, None, deadline);
        assert_eq!(
            hints.iter().map(|h| h.symbol.as_str()).collect::<Vec<_>>(),
            ["api_test"]
        );
    }

    #[test]
    fn modules_symbols_is_used_when_present() {
        let scratch = Scratch::new("index");
        scratch.write("proc/modules", "");
        scratch.write("proc/sys/kernel/osrelease", "6.12.0-test\n");
        let tree = scratch.0.join("lib/modules/6.12.0-test");
        scratch.write("lib/modules/6.12.0-test/modules.symbols", "# Aliases for symbols, used by symbol_request().\nalias symbol:other_sym other\nalias symbol:api_test hello_api\n");
        scratch.write(
            "lib/modules/6.12.0-test/modules.dep",
            "extra/hello_feature.ko: extra/hello_api.ko\nextra/hello_api.ko:\n",
        );
        // The module alone in its directory: only the index can name the exporter.
        let file = scratch.write(
            "alone/hello_feature.ko",
            fs::read(fixtures().join("6.12/hello_feature.ko")).unwrap(),
        );
        let kernel = kernel(&scratch.0.join("proc"), Some(LoadFailure::UnknownSymbol));
        let outcome = insert(
            &kernel,
            &file,
            "",
            LoadOptions::default(),
            &scratch.0.join("lib/modules"),
        );
        assert_eq!(
            outcome.stderr[1..],
            [format!(
                "insmod: hint: api_test is exported by hello_api ({}), {ADVICE}",
                tree.join("extra/hello_api.ko").display()
            )]
        );
    }

    #[test]
    fn without_an_index_the_module_tree_is_scanned() {
        let scratch = Scratch::new("scan");
        scratch.write("modules", "");
        let file = scratch.write(
            "alone/hello_feature.ko",
            fs::read(fixtures().join("6.1/hello_feature.ko")).unwrap(),
        );
        let kernel = kernel(&scratch.0, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        let hints = missing_symbol_hints(&kernel, &file, Some(&fixtures()), deadline);
        // Subdirectories in name order: 6.1 before 6.12.
        assert_eq!(
            hints,
            [Hint {
                symbol: "api_test".into(),
                module: "hello_api".into(),
                path: Some(fixtures().join("6.1/hello_api.ko"))
            }]
        );
        // Past the deadline nothing is scanned, and nothing is claimed.
        assert_eq!(
            missing_symbol_hints(
                &kernel,
                &file,
                Some(&fixtures()),
                Instant::now() - Duration::from_secs(1)
            ),
            []
        );
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
    }

    #[test]
    fn other_failures_and_success() {
        let scratch = Scratch::new("other");
        let file = fixtures().join("6.12/hello_api.ko");
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
