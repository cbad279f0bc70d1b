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

use crate::lsmod::{kernel_from_env, parse_args};

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
        LoadError::Open { source, .. } | LoadError::Read { source, .. } => {
            Errno::from_io(source).strerror()
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
        {
            if let Some(symbol) = key.strip_prefix("symbol:") {
                index
                    .entry(symbol.to_owned())
                    .or_insert_with(|| module.to_owned());
            }
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
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
