//! The symbols a module file needs that the running kernel lacks, and the modules that export
//! them: what insmod adds to kmod's "Unknown symbol in module", for any tool to use.
//!
//! The exporters come from the module directory's indexes ([`Context::exporters_of`], paths
//! from modules.dep.bin) when it has a symbols index; without one, from the module files
//! themselves, in the module's own directory and then under the module directory, read until
//! a deadline.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use modkit_syscalls::Kernel;

use crate::Context;
use crate::name::{path_ends_with_kmod_ext, path_to_modname};

/// Largest module decompressed to read its symbols.
const DECOMPRESS_LIMIT: u64 = 256 << 20;

/// A symbol a module needs, exported by a module that is not loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Exporter {
    /// The symbol.
    pub symbol: String,
    /// The module that exports it.
    pub module: String,
    /// Its file, when known.
    pub path: Option<PathBuf>,
}

/// What [`missing_symbols`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MissingSymbols {
    /// The missing symbols a module was found for, grouped by module in the order the
    /// modules were found, each group in the order the file needs them.
    pub exported: Vec<Exporter>,
    /// The missing symbols no module was found for (in the time given), in the file's order.
    pub unexported: Vec<String>,
}

/// The symbols `file` needs that neither the kernel (`/proc/kallsyms`, when readable) nor a
/// loaded module provides, each with the module that exports it, which is neither `file`'s
/// own module nor loaded.
///
/// Exporters come from `tree`'s modules.symbols.bin when it has one, else from the module
/// files under `tree`; the module files in `file`'s own directory are read in either case for
/// what is still missing. Files are read in name order, a directory's files before its
/// subdirectories, for at most `budget` (counted from the start of that reading: what comes
/// before it, the kernel's symbols and the index, is always done, however slow the machine).
/// Anything that cannot be read just finds less; a `file` that cannot be read finds nothing.
pub fn missing_symbols(
    kernel: &dyn Kernel,
    file: &Path,
    tree: Option<&mut Context>,
    budget: Duration,
) -> MissingSymbols {
    let Some(needed) = undefined_symbols(file) else {
        return MissingSymbols::default();
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
    let mut search = Search::new(file, missing, loaded);
    let own_dir = own_dir(file);
    let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
    dirs.extend(own_dir.map(|dir| (dir.to_owned(), false)));
    if let Some(ctx) = tree
        && !search.ask_index(ctx)
    {
        dirs.push((ctx.dir().to_owned(), true));
    }
    let deadline = Instant::now() + budget;
    for (dir, recursive) in dirs {
        search.scan(&dir, recursive, deadline);
    }
    search.finish()
}

/// The directory of `file` (`.` for a bare file name).
pub(crate) fn own_dir(file: &Path) -> Option<&Path> {
    file.parent().map(|dir| {
        if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        }
    })
}

/// The search so far: what is still missing and who exports what was found. `missing_symbols`
/// and `modkit check` (which asks the tree first, then the module's own directory) drive it.
pub(crate) struct Search {
    file: PathBuf,
    own_name: String,
    loaded: HashSet<String>,
    missing: Vec<String>,
    exported: Vec<Exporter>,
}

impl Search {
    /// A search for the exporters of `missing`, needed by `file`; the modules named in
    /// `loaded` (and `file`'s own) are never exporters.
    pub(crate) fn new(file: &Path, missing: Vec<String>, loaded: HashSet<String>) -> Search {
        Search {
            file: file.to_owned(),
            own_name: path_to_modname(file).unwrap_or_default(),
            loaded,
            missing,
            exported: Vec::new(),
        }
    }

    /// The symbols still missing.
    pub(crate) fn missing(&self) -> &[String] {
        &self.missing
    }

    /// The exporters found so far, taken out of the search (what is found later is new).
    pub(crate) fn take_exported(&mut self) -> Vec<Exporter> {
        std::mem::take(&mut self.exported)
    }

    /// What was found and what is still missing.
    pub(crate) fn finish(self) -> MissingSymbols {
        MissingSymbols {
            exported: self.exported,
            unexported: self.missing,
        }
    }

    /// Read the module files of `dir` (and its subdirectories when `recursive`) for the
    /// missing symbols, in name order, until all are found or `deadline` passes.
    pub(crate) fn scan(&mut self, dir: &Path, recursive: bool, deadline: Instant) {
        if self.missing.is_empty() || Instant::now() > deadline {
            return;
        }
        let mut candidates = Vec::new();
        collect_module_files(dir, recursive, &mut candidates);
        for candidate in candidates {
            if self.missing.is_empty() || Instant::now() > deadline {
                break;
            }
            let name = path_to_modname(&candidate).unwrap_or_default();
            if name == self.own_name
                || self.loaded.contains(&name)
                || same_file(&candidate, &self.file)
            {
                continue;
            }
            if let Some(exports) = exported_symbols(&candidate) {
                self.exporter(&name, Some(candidate), exports);
            }
        }
    }

    /// Ask the symbols index of `ctx` (the first module it names for each symbol); `false`
    /// when there is none, or it cannot be read, so the module files must be read instead.
    pub(crate) fn ask_index(&mut self, ctx: &mut Context) -> bool {
        let mut by_module: Vec<(String, crate::ModId, Vec<String>)> = Vec::new();
        for symbol in &self.missing {
            let first = match ctx.exporters_of(symbol) {
                Ok(Some(ids)) => ids.first().copied(),
                Ok(None) | Err(_) => return false,
            };
            let Some(id) = first else {
                continue;
            };
            let module = ctx.name(id);
            match by_module.iter_mut().find(|(name, ..)| name == module) {
                Some((.., symbols)) => symbols.push(symbol.clone()),
                None => by_module.push((module.to_owned(), id, vec![symbol.clone()])),
            }
        }
        for (module, id, symbols) in by_module {
            let path = ctx.path(id).ok().flatten();
            self.exporter(&module, path, symbols);
        }
        true
    }

    /// `module` (at `path`) exports `exports`: each missing one is found, unless the module is
    /// the one that needs them or is loaded already.
    fn exporter(&mut self, module: &str, path: Option<PathBuf>, exports: Vec<String>) {
        if module == self.own_name || self.loaded.contains(module) {
            return;
        }
        let exports: HashSet<String> = exports.into_iter().collect();
        let exported = &mut self.exported;
        self.missing.retain(|symbol| {
            if !exports.contains(symbol) {
                return true;
            }
            exported.push(Exporter {
                symbol: symbol.clone(),
                module: module.to_owned(),
                path: path.clone(),
            });
            false
        });
    }
}

/// The symbols a module file needs, each once, or `None` if it cannot be read.
fn undefined_symbols(file: &Path) -> Option<Vec<String>> {
    let bytes = fs::read(file).ok()?;
    let image = modkit_elf::decompress(&bytes, DECOMPRESS_LIMIT).ok()?;
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
    let image = modkit_elf::decompress(&bytes, DECOMPRESS_LIMIT).ok()?;
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

/// The module files of `dir` (by file name, as depmod takes them), sorted per directory.
fn collect_module_files(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|entry| entry.file_name());
    let mut subdirs = Vec::new();
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            subdirs.push(entry.path());
        } else if path_ends_with_kmod_ext(entry.file_name()) {
            out.push(entry.path());
        }
    }
    if recursive {
        for subdir in subdirs {
            collect_module_files(&subdir, true, out);
        }
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
