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

#![deny(unsafe_code)] // One exception: mapping module files in `scan::read_module`.

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
    /// The incremental cache file, if caching (see [`cache::default_cache_path`]).
    pub cache_path: Option<PathBuf>,
    /// Messages of the run, in order.
    pub diagnostics: Diagnostics,
    /// Why the cache could not be used (unreadable, corrupt). Kept out of `diagnostics`, which
    /// hold what kmod prints: the run is the same without the cache, so `depmod` shows these
    /// only with `-v`.
    pub cache_notes: Vec<String>,
}

/// What a run produced.
#[derive(Debug)]
pub struct Generated {
    /// The files, in kmod's writing order (empty when `up_to_date`).
    pub files: Vec<OutputFile>,
    /// How many modules were parsed and how many came from the cache.
    pub stats: LoadStats,
    /// Nothing changed since the run recorded in the cache, whose outputs in `out_dir` are
    /// untouched: there is nothing to write.
    pub up_to_date: bool,
    /// Hash of all inputs of this run (for [`Depmod::save_cache`]).
    pub fingerprint: u64,
    /// The cache entries section to save after the files are written.
    pub cache_entries: Option<Vec<u8>>,
    /// How long each phase took (shown by `depmod -vv`).
    pub timings: Vec<(&'static str, std::time::Duration)>,
}

impl Depmod {
    /// A run over `module_dir` with the default configuration and no kernel symbols.
    pub fn new(module_dir: &Path, flavor: Flavor) -> Depmod {
        Depmod {
            module_dir: module_dir.to_path_buf(),
            config: config::default_config(),
            files: None,
            kernel: KernelSymbols::default(),
            resolve: ResolveOptions::default(),
            flavor,
            binaries: true,
            cache_path: None,
            diagnostics: Diagnostics::default(),
            cache_notes: Vec::new(),
        }
    }

    /// Hash of everything the outputs depend on besides the module files themselves.
    fn settings_fingerprint(&self) -> u64 {
        let mut text = format!(
            "{} {} {:?} {:?} {:?} {:?} {} {}",
            env!("CARGO_PKG_VERSION"),
            self.module_dir.display(),
            self.config,
            self.files,
            self.resolve,
            self.flavor,
            self.binaries,
            self.kernel.given,
        );
        for (name, crc) in &self.kernel.symbols {
            text.push_str(name);
            text.push_str(&crc.to_string());
            text.push('\n');
        }
        for f in [
            "modules.order",
            "modules.builtin",
            "modules.builtin.modinfo",
        ] {
            match std::fs::metadata(self.module_dir.join(f)) {
                Ok(m) => text.push_str(&format!("{f} {:?}\n", scan::file_key(&m))),
                Err(_) => text.push_str(&format!("{f} missing\n")),
            }
        }
        cache::fnv1a(text.as_bytes())
    }

    /// Whether the state recorded in the cache shows that nothing changed: same inputs, and the
    /// outputs it wrote to `out_dir` still there, untouched.
    fn unchanged(&self, fingerprint: u64, out_dir: &Path) -> Option<cache::State> {
        let state = cache::read_state(self.cache_path.as_deref()?)?;
        if state.fingerprint != fingerprint || state.out_dir != out_dir.to_string_lossy() {
            return None;
        }
        let fresh = state.outputs.iter().all(|(name, key)| {
            std::fs::metadata(out_dir.join(name)).is_ok_and(|m| scan::file_key(&m) == *key)
        });
        fresh.then_some(state)
    }

    /// Scan, read, resolve and render. Files are not written (see [`output::write_all`]);
    /// `out_dir` is where the caller will write them (for the up-to-date check).
    pub fn generate_into(&mut self, out_dir: &Path) -> Result<Generated, Error> {
        let candidates = match &self.files {
            Some(files) => scan::candidates_from_files(&self.module_dir, files)?,
            None => scan::scan(&self.module_dir, &self.config, &mut self.diagnostics)?,
        };
        let mut fingerprint = 0;
        if self.cache_path.is_some() {
            use rayon::prelude::*;
            let mut keys: Vec<(&str, Option<FileKey>)> = candidates
                .par_iter()
                .map(|c| {
                    let key = std::fs::metadata(&c.path).ok().map(|m| scan::file_key(&m));
                    (c.path.as_str(), key)
                })
                .collect();
            keys.sort_unstable_by_key(|k| k.0);
            let mut text = String::with_capacity(keys.len() * 96);
            for (path, key) in &keys {
                text.push_str(path);
                text.push_str(&format!(" {key:?}\n"));
            }
            fingerprint =
                cache::fnv1a(text.as_bytes()) ^ self.settings_fingerprint().rotate_left(17);
            if !self.diagnostics.verbose
                && let Some(state) = self.unchanged(fingerprint, out_dir)
            {
                for (level, text) in state.messages {
                    self.diagnostics.messages.push(Message {
                        level: match level {
                            0 => Level::Error,
                            1 => Level::Warning,
                            _ => Level::Info,
                        },
                        text,
                    });
                }
                return Ok(Generated {
                    files: Vec::new(),
                    stats: LoadStats {
                        parsed: 0,
                        cached: candidates.len(),
                    },
                    up_to_date: true,
                    fingerprint,
                    cache_entries: None,
                    timings: Vec::new(),
                });
            }
        }
        let cache = match &self.cache_path {
            Some(path) => match Cache::load(path) {
                Ok(c) => Some(c),
                Err(err) => {
                    self.cache_notes
                        .push(format!("not using the cache: {err}; rebuilding it"));
                    Some(Cache::new())
                }
            },
            None => None,
        };
        let diag = &mut self.diagnostics;
        let mut timings = Vec::with_capacity(4);
        let mut clock = std::time::Instant::now();
        let mut lap =
            |name: &'static str, timings: &mut Vec<(&'static str, std::time::Duration)>| {
                let now = std::time::Instant::now();
                timings.push((name, now - clock));
                clock = now;
            };
        let (mut modules, stats) = scan::load(candidates, cache.as_ref(), diag);
        lap("read modules", &mut timings);
        drop(cache);
        graph::order_modules(&mut modules, &self.module_dir, diag);
        let graph = Depgraph::build(modules, &self.kernel, self.resolve, diag)?;
        lap("order and resolve", &mut timings);
        let files = output::render(&graph, &self.module_dir, self.flavor, self.binaries, diag)?;
        lap("render", &mut timings);
        let cache_entries = self.cache_path.as_ref().map(|_| {
            cache::serialize(graph.modules.iter().filter_map(|m| {
                m.key
                    .as_ref()
                    .map(|k| (m.candidate.path.as_str(), k, &m.data))
            }))
        });
        lap("serialise cache", &mut timings);
        Ok(Generated {
            files,
            stats,
            up_to_date: false,
            fingerprint,
            cache_entries,
            timings,
        })
    }

    /// [`Depmod::generate_into`] the module directory itself.
    pub fn generate(&mut self) -> Result<Generated, Error> {
        let dir = self.module_dir.clone();
        self.generate_into(&dir)
    }

    /// Save the cache after the files of `generated` were written to `out_dir`, recording
    /// their identities and the run's messages (`messages`, as printed).
    pub fn save_cache(
        &self,
        generated: &Generated,
        out_dir: &Path,
        messages: &[Message],
    ) -> Result<(), Error> {
        let (Some(path), Some(entries)) = (&self.cache_path, &generated.cache_entries) else {
            return Ok(());
        };
        let mut outputs = Vec::with_capacity(generated.files.len());
        for f in &generated.files {
            let p = out_dir.join(f.name);
            let meta = std::fs::metadata(&p).map_err(|source| Error::Io {
                path: p.clone(),
                what: "could not stat",
                source,
            })?;
            outputs.push((f.name.to_owned(), scan::file_key(&meta)));
        }
        let state = cache::State {
            fingerprint: generated.fingerprint,
            module_dir: self.module_dir.to_string_lossy().into_owned(),
            out_dir: out_dir.to_string_lossy().into_owned(),
            outputs,
            messages: messages
                .iter()
                .map(|m| {
                    let level = match m.level {
                        Level::Error => 0,
                        Level::Warning => 1,
                        Level::Info => 2,
                    };
                    (level, m.text.clone())
                })
                .collect(),
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            what: "could not create",
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        output::write_file_atomic(dir, &name, &cache::file_bytes(&state, entries))
    }
}
