//! Finding the modules of a tree: walk the module directory (and `external` directories) the way
//! depmod does, keep one file per module name by depmod.d priority, and load what each one says.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use modkit_elf::{DEFAULT_DECOMPRESS_LIMIT, Module};
use rayon::prelude::*;

use crate::cache::Cache;
use crate::config::DepmodConfig;
use crate::data::ModuleData;
use crate::diag::Diagnostics;
use crate::error::Error;
use crate::io::{FileKey, file_key};

/// `PATH_MAX` and `NAME_MAX` of Linux (`include/uapi/linux/limits.h`), the limits kmod's walk
/// keeps to.
const PATH_MAX: usize = 4096;
const NAME_MAX: usize = 255;

/// Modules up to this size are read, larger ones mapped.
const SMALL_MODULE: u64 = 64 << 10;

/// Whether `file_name` is a module file name (kmod's `path_ends_with_kmod_ext`, as depmod asks
/// it of each directory entry).
pub fn is_module_file(file_name: &str) -> bool {
    modkit_glob::name::path_ends_with_kmod_ext(file_name)
}

/// kmod's `path_to_modname` (empty for a path ending in `/`, which the walk never gives).
pub fn module_name(path: &str) -> String {
    modkit_glob::name::path_to_modname(path).unwrap_or_default()
}

/// kmod's `alias_normalize` (`None` for an unmatched bracket: depmod skips such aliases with a
/// warning).
pub use modkit_glob::name::alias_normalize as normalize_alias;

/// A module file chosen for its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Module name (from the file name).
    pub name: String,
    /// The path as depmod prints it (module directory + relative path).
    pub path: String,
    /// Relative to the module directory; `None` for files outside it (`external`, FILES).
    pub relpath: Option<String>,
}

impl Candidate {
    /// What modules.dep calls it: the relative path, or the full path outside the directory.
    pub fn dep_path(&self) -> &str {
        self.relpath.as_deref().unwrap_or(&self.path)
    }

    /// `relpath` with the compression suffix dropped (`dir/name.ko`), how modules.order names
    /// it (kmod's `uncrelpath`).
    pub fn uncompressed_relpath(&self) -> Option<String> {
        let rel = self.relpath.as_deref()?;
        let (dir, file) = match rel.rfind('/') {
            Some(i) => (&rel[..=i], &rel[i + 1..]),
            None => ("", rel),
        };
        let stem_len = file.find('.').unwrap_or(file.len());
        Some(format!("{dir}{}.ko", &file[..stem_len]))
    }

    /// Build a candidate for `path` inside (or outside) `module_dir`.
    pub fn new(module_dir: &str, path: String) -> Candidate {
        let relpath = path
            .strip_prefix(module_dir)
            .and_then(|rest| rest.strip_prefix('/'))
            .map(str::to_owned);
        Candidate {
            name: module_name(&path),
            path,
            relpath,
        }
    }
}

/// Walk `module_dir` and the `external` directories of `config` and keep, for each module name,
/// the file depmod keeps. The result is in no particular order (depmod orders it later).
pub fn scan(
    module_dir: &Path,
    config: &DepmodConfig,
    diag: &mut Diagnostics,
) -> Result<Vec<Candidate>, Error> {
    let dir = module_dir.to_string_lossy().into_owned();
    let mut found: HashMap<String, Candidate> = HashMap::with_capacity(8192);
    let mut order = Vec::with_capacity(8192);
    if let Err(err) = std::fs::read_dir(module_dir) {
        let reason = crate::io_error_text(&err);
        diag.error(format!(
            "could not open directory {}: {reason}",
            module_dir.display()
        ));
        return Err(Error::Search {
            path: module_dir.to_path_buf(),
            reason,
        });
    }
    let mut found_in = walk(module_dir, &dir, config);
    for ext in &config.external {
        let ext = Path::new(&ext.dir);
        if ext.is_dir() {
            found_in.extend(walk(ext, &dir, config));
        }
    }
    for event in found_in {
        match event {
            Found::Error(text) => diag.error(text),
            Found::Directory(_) => {}
            Found::Module(candidate) => match found.get(&candidate.name) {
                None => {
                    order.push(candidate.name.clone());
                    found.insert(candidate.name.clone(), candidate);
                }
                Some(existing) => {
                    if !crate::config::keeps_existing(
                        config,
                        existing.relpath.as_deref(),
                        candidate.relpath.as_deref(),
                    ) {
                        found.insert(candidate.name.clone(), candidate);
                    }
                }
            },
        }
    }
    // Keep discovery order for determinism of anything that iterates the result.
    Ok(order.into_iter().filter_map(|n| found.remove(&n)).collect())
}

/// What the walk meets, in the order a depth-first walk in readdir order meets it.
enum Found {
    /// A module file.
    Module(Candidate),
    /// An error to report (kmod's wording).
    Error(String),
    /// A subdirectory, walked in place of this entry.
    Directory(PathBuf),
}

/// Walk `path` depth first in readdir order, as kmod does, and give what it meets in that
/// order. Subdirectories are walked in parallel (most of the time is the kernel's, reading
/// directories), and their findings put back in place, so the order is the sequential walk's.
fn walk(path: &Path, module_dir: &str, config: &DepmodConfig) -> Vec<Found> {
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(err) => {
            return vec![Found::Error(format!(
                "could not open directory {}: {}",
                path.display(),
                crate::io_error_text(&err)
            ))];
        }
    };
    let mut here = Vec::new();
    for entry in entries {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // kmod's limits (PATH_MAX 4096, NAME_MAX 255), which also end symbolic-link loops.
        let base = path.as_os_str().len() + 1;
        if base + name.len() + 2 >= PATH_MAX {
            here.push(Found::Error(format!(
                "path is too long {}/{name}",
                path.display()
            )));
            continue;
        }
        if crate::config::is_excluded(config, &name) {
            continue;
        }
        let full = entry.path();
        let Ok(mut ft) = entry.file_type().map(|t| (t.is_file(), t.is_dir())) else {
            continue;
        };
        if !ft.0 && !ft.1 {
            // Symbolic links and unknown types: follow, as kmod's fstatat does.
            match std::fs::metadata(&full) {
                Ok(m) if m.is_file() || m.is_dir() => ft = (m.is_file(), m.is_dir()),
                Ok(m) => {
                    here.push(Found::Error(format!(
                        "unsupported file type {}: {:o}",
                        full.display(),
                        m.mode() & 0o170000
                    )));
                    continue;
                }
                Err(err) => {
                    here.push(Found::Error(format!("fstatat({}): {err}", full.display())));
                    continue;
                }
            }
        }
        if ft.1 {
            if base + name.len() + 2 + NAME_MAX >= PATH_MAX {
                here.push(Found::Error(format!(
                    "directory path is too long {}",
                    full.display()
                )));
                continue;
            }
            here.push(Found::Directory(full));
            continue;
        }
        if !is_module_file(&name) {
            continue;
        }
        here.push(Found::Module(Candidate::new(
            module_dir,
            full.to_string_lossy().into_owned(),
        )));
    }
    let below: Vec<Vec<Found>> = here
        .par_iter()
        .filter_map(|found| match found {
            Found::Directory(dir) => Some(walk(dir, module_dir, config)),
            _ => None,
        })
        .collect();
    if below.is_empty() {
        return here;
    }
    let mut below = below.into_iter();
    let mut out = Vec::with_capacity(here.len() + below.len());
    for found in here {
        match found {
            Found::Directory(_) => out.extend(below.next().unwrap_or_default()),
            other => out.push(other),
        }
    }
    out
}

/// A module with what was read from it.
#[derive(Debug, Clone)]
pub struct LoadedModule {
    /// Where it is.
    pub candidate: Candidate,
    /// What it says.
    pub data: ModuleData,
    /// The file's identity when it was read (for the cache).
    pub key: Option<FileKey>,
    /// Why it could not be read, if it could not (reported in module order).
    pub error: Option<String>,
}

/// Statistics of one load, for `-v` and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadStats {
    /// Modules parsed from their files.
    pub parsed: usize,
    /// Modules taken from the cache.
    pub cached: usize,
}

/// Read every candidate, in parallel, using `cache` for files that have not changed since it
/// was written. A file that cannot be read or parsed at all is a diagnostic; the module keeps
/// its place with no symbols, as with kmod. Running out of memory is no fault of the file: it
/// ends the load with [`Error::OutOfMemory`], since indexes without the module would be wrong.
pub fn load(
    candidates: Vec<Candidate>,
    cache: Option<&Cache>,
) -> Result<(Vec<LoadedModule>, LoadStats), Error> {
    let results: Vec<(LoadedModule, bool)> = candidates
        .into_par_iter()
        .map(|candidate| {
            let (data, key, err, cached) = load_one(&candidate, cache)?;
            let error = err.or_else(|| data.symbol_error.clone());
            Ok((
                LoadedModule {
                    candidate,
                    data,
                    key,
                    error,
                },
                cached,
            ))
        })
        .collect::<Result<_, Error>>()?;
    let mut stats = LoadStats::default();
    let mut out = Vec::with_capacity(results.len());
    for (module, cached) in results {
        if cached {
            stats.cached += 1;
        } else {
            stats.parsed += 1;
        }
        out.push(module);
    }
    Ok((out, stats))
}

type Loaded = (ModuleData, Option<FileKey>, Option<String>, bool);

fn load_one(candidate: &Candidate, cache: Option<&Cache>) -> Result<Loaded, Error> {
    let fail = |err: String| Ok((ModuleData::default(), None, Some(err), false));
    if let Some(cache) = cache {
        // A stat is enough to validate a cache entry; open only what changed.
        if let Ok(meta) = std::fs::metadata(&candidate.path) {
            let key = file_key(&meta);
            if let Some(data) = cache.get(&candidate.path, &key) {
                return Ok((data, Some(key), None, true));
            }
        }
    }
    let file = match File::open(&candidate.path) {
        Ok(f) => f,
        Err(err) => return fail(crate::io_error_text(&err)),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(err) => return fail(crate::io_error_text(&err)),
    };
    let key = file_key(&meta);
    match read_module(&file, &meta, Path::new(&candidate.path)) {
        Ok(data) => Ok((data, Some(key), None, false)),
        Err(err @ Error::OutOfMemory { .. }) => Err(err),
        Err(Error::Module { error, .. }) => fail(error.to_string()),
        Err(err) => fail(err.to_string()),
    }
}

/// Read and extract one module file.
pub fn read_module(file: &File, meta: &Metadata, path: &Path) -> Result<ModuleData, Error> {
    let with_path = |error: modkit_elf::Error| match error {
        modkit_elf::Error::OutOfMemory { .. } => Error::OutOfMemory {
            path: path.to_path_buf(),
        },
        error => Error::Module {
            path: path.to_path_buf(),
            error,
        },
    };
    if meta.len() == 0 {
        return Err(with_path(modkit_elf::Error::NotElf { found: Vec::new() }));
    }
    // Small modules (most of them) are read into a buffer the thread reuses: cheaper than
    // mapping, faulting in and unmapping (a TLB shootdown on both cores) a few pages each.
    if meta.len() <= SMALL_MODULE {
        thread_local! {
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        return BUFFER.with(|buffer| {
            let mut buffer = buffer.borrow_mut();
            let len = meta.len() as usize;
            if buffer.len() < len {
                buffer.resize(len, 0);
            }
            let bytes = &mut buffer[..len];
            std::os::unix::fs::FileExt::read_exact_at(file, bytes, 0).map_err(|error| {
                Error::Io {
                    path: path.to_path_buf(),
                    what: "could not read",
                    error,
                }
            })?;
            let bytes =
                modkit_elf::decompress(bytes, DEFAULT_DECOMPRESS_LIMIT).map_err(with_path)?;
            let module = Module::parse(&bytes).map_err(with_path)?;
            Ok(ModuleData::from_module(&module))
        });
    }
    // The length is known from the caller's fstat; memmap2 would fstat again.
    let len = usize::try_from(meta.len()).map_err(|_| Error::Io {
        path: path.to_path_buf(),
        what: "could not map",
        error: std::io::Error::from(std::io::ErrorKind::FileTooLarge),
    })?;
    // SAFETY: the map is read-only and private, but pages not yet copied still show the file,
    // so Rust's promise that the bytes behind `&[u8]` do not change holds only while nobody
    // writes the module file in place. Package managers install modules under a new name and
    // rename them; a file rewritten in place while depmod reads it gives wrong or changing data
    // for this run, and a file truncated under the mapping raises SIGBUS on the next access past
    // its new end, which kills depmod (kmod's depmod maps modules too and dies the same way).
    // Reads are bounds-checked against the length mapped here, which no truncation changes.
    #[allow(
        unsafe_code,
        reason = "memmap2::MmapOptions::map is unsafe: see SAFETY"
    )]
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(file) }.map_err(|error| {
        // ENOMEM: no address space left for the mapping (`ulimit -v`), no fault of the file.
        if error.kind() == std::io::ErrorKind::OutOfMemory {
            Error::OutOfMemory {
                path: path.to_path_buf(),
            }
        } else {
            Error::Io {
                path: path.to_path_buf(),
                what: "could not map",
                error,
            }
        }
    })?;
    let bytes = modkit_elf::decompress(&map, DEFAULT_DECOMPRESS_LIMIT).map_err(with_path)?;
    let module = Module::parse(&bytes).map_err(with_path)?;
    Ok(ModuleData::from_module(&module))
}

/// Paths given on the command line (FILES): each becomes a candidate, in order. They must be
/// absolute, as kmod requires.
pub fn candidates_from_files(
    module_dir: &Path,
    files: &[PathBuf],
) -> Result<Vec<Candidate>, Error> {
    let dir = module_dir.to_string_lossy();
    let mut out: Vec<Candidate> = Vec::with_capacity(files.len());
    for f in files {
        if !f.is_absolute() {
            return Err(Error::NotAbsolute(f.clone()));
        }
        let c = Candidate::new(&dir, f.to_string_lossy().into_owned());
        if out.iter().any(|o| o.name == c.name) {
            return Err(Error::DuplicateModule {
                path: f.clone(),
                name: c.name,
            });
        }
        out.push(c);
    }
    Ok(out)
}

/// kmod's `depfile_up_to_date` (for `-A`): whether modules.dep exists and no module file under
/// `module_dir` is newer than it (whole seconds, as kmod compares).
pub fn up_to_date(module_dir: &Path) -> Result<bool, Error> {
    let dep = std::fs::metadata(module_dir.join("modules.dep")).map_err(|error| Error::Io {
        path: module_dir.join("modules.dep"),
        what: "could not stat",
        error,
    })?;
    Ok(!newer_than(module_dir, dep.mtime()))
}

fn newer_than(dir: &Path, mtime: i64) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "." || name == ".." || name == "build" || name == "source" {
            continue;
        }
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_dir() {
            if newer_than(&entry.path(), mtime) {
                return true;
            }
        } else if meta.is_file() && is_module_file(&name) && meta.mtime() > mtime {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_extensions() {
        assert_eq!(module_name("kernel/a/snd-hda-intel.ko.xz"), "snd_hda_intel");
        assert!(is_module_file("a.ko.zst") && is_module_file("a.ko"));
        assert!(!is_module_file(".ko") && !is_module_file("a.ko.bz2") && !is_module_file("a.o"));
    }

    #[test]
    fn alias_normalization() {
        assert_eq!(
            normalize_alias("pci:v-d[a-b]-x").as_deref(),
            Some("pci:v_d[a-b]_x")
        );
        assert_eq!(normalize_alias("a]b"), None);
        assert_eq!(normalize_alias("a[b"), None);
    }

    #[test]
    fn uncompressed_relpath_keeps_the_stem() {
        let c = Candidate::new("/m", "/m/kernel/x/foo-bar.ko.xz".into());
        assert_eq!(c.relpath.as_deref(), Some("kernel/x/foo-bar.ko.xz"));
        assert_eq!(
            c.uncompressed_relpath().as_deref(),
            Some("kernel/x/foo-bar.ko")
        );
        assert_eq!(c.name, "foo_bar");
        let outside = Candidate::new("/m", "/elsewhere/foo.ko".into());
        assert_eq!(outside.dep_path(), "/elsewhere/foo.ko");
    }
}
