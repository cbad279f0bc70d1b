//! The module database: scan a module tree, read every module once (in parallel), order the
//! modules, resolve their symbols against each other and the kernel's, compute dependencies in
//! load order, and produce every file kmod's depmod writes, byte for byte.
//!
//! ```no_run
//! use std::path::Path;
//! use modkit_depgraph::{Depmod, Flavor};
//!
//! let dir = Path::new("/lib/modules/6.1.0-56-amd64");
//! let mut run = Depmod::new(dir, Flavor::kmod30());
//! let result = run.generate().expect("depmod");
//! modkit_depgraph::output::write_all(dir, &result.files).expect("write");
//! for message in run.diagnostics.drain() {
//!     eprintln!("depmod: {}: {}", message.level, message.text);
//! }
//! ```
//!
//! The pieces are public for callers with other needs: [`scan`] finds and reads modules,
//! [`graph`] orders and resolves them, [`output`] renders the files, [`cache`] keeps per-module
//! results between runs, [`config`] reads depmod.d, and [`guix`] has the small databases of
//! Guix's `linux-modules.scm`.

pub mod cache;
pub mod config;
pub mod data;
pub mod diag;
mod error;
pub mod graph;
pub mod guix;
pub mod khash;
pub mod output;
pub mod scan;

use std::path::{Path, PathBuf};

pub use cache::{Cache, FileKey};
pub use config::DepmodConfig;
pub use data::ModuleData;
pub use diag::{Diagnostics, Level, Message};
pub use error::Error;
pub use graph::{Depgraph, KernelSymbols, ResolveOptions};
pub use output::{Flavor, OutputFile};
pub use scan::{Candidate, LoadStats, LoadedModule};

/// The text of an I/O error the way C's `%m` prints it ("No such file or directory"), without
/// Rust's "(os error N)" suffix.
pub fn io_error_text(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// One depmod run over a module directory.
#[derive(Debug)]
pub struct Depmod {
    /// `BASEDIR/lib/modules/VERSION`.
    pub module_dir: PathBuf,
    /// depmod.d settings.
    pub config: DepmodConfig,
    /// Only these module files (kmod's FILES arguments) instead of scanning.
    pub files: Option<Vec<PathBuf>>,
    /// The kernel's own symbols (`-F`/`-E`).
    pub kernel: KernelSymbols,
    /// Symbol resolution settings.
    pub resolve: ResolveOptions,
    /// Which kmod's output to produce.
    pub flavor: Flavor,
    /// Produce the binary indexes too (false for `-n`).
    pub binaries: bool,
    /// The incremental cache file, if caching.
    pub cache_path: Option<PathBuf>,
    /// Messages of the run, in order.
    pub diagnostics: Diagnostics,
}

/// What a run produced.
#[derive(Debug)]
pub struct Generated {
    /// The files, in kmod's writing order.
    pub files: Vec<OutputFile>,
    /// How many modules were parsed and how many came from the cache.
    pub stats: LoadStats,
    /// The new cache contents to write to `cache_path`, when it changed.
    pub cache: Option<Vec<u8>>,
}

impl Depmod {
    /// A run over `module_dir` with the default configuration and no kernel symbols.
    pub fn new(module_dir: &Path, flavor: Flavor) -> Depmod {
        Depmod {
            module_dir: module_dir.to_path_buf(),
            config: DepmodConfig::default(),
            files: None,
            kernel: KernelSymbols::default(),
            resolve: ResolveOptions::default(),
            flavor,
            binaries: true,
            cache_path: None,
            diagnostics: Diagnostics::default(),
        }
    }

    /// Scan, read, resolve and render. Files are not written (see [`output::write_all`]).
    pub fn generate(&mut self) -> Result<Generated, Error> {
        let diag = &mut self.diagnostics;
        let candidates = match &self.files {
            Some(files) => scan::candidates_from_files(&self.module_dir, files)?,
            None => scan::scan(&self.module_dir, &self.config, diag)?,
        };
        let cache = match &self.cache_path {
            Some(path) => match Cache::load(path) {
                Ok(c) => Some(c),
                Err(err) => {
                    diag.warning(format!("{err}; ignoring it and rebuilding"));
                    Some(Cache::new())
                }
            },
            None => None,
        };
        let cached_entries = cache.as_ref().map_or(0, Cache::len);
        let (mut modules, stats) = scan::load(candidates, cache.as_ref(), diag);
        drop(cache);
        graph::order_modules(&mut modules, &self.module_dir, diag);
        let graph = Depgraph::build(modules, &self.kernel, self.resolve, diag)?;
        let files = output::render(&graph, &self.module_dir, self.flavor, self.binaries, diag)?;
        let cache = match &self.cache_path {
            Some(_) if stats.parsed > 0 || cached_entries != graph.modules.len() => {
                Some(cache::serialize(graph.modules.iter().filter_map(|m| {
                    m.key
                        .as_ref()
                        .map(|k| (m.candidate.path.as_str(), k, &m.data))
                })))
            }
            _ => None,
        };
        Ok(Generated {
            files,
            stats,
            cache,
        })
    }
}
