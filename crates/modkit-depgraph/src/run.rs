//! One depmod run, layer by layer: find the modules ([`scan`](crate::scan)), read them (with
//! the incremental cache), read the module directory's text inputs, order and resolve
//! ([`graph`](crate::graph)), render every file ([`render`](crate::render)); then write the
//! files and the cache in one call.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use modkit_config::depmod::{External, Override, Search};
use rayon::prelude::*;

use crate::cache::{self, Cache, CacheLocation, Fingerprint};
use crate::config::{self, DepmodConfig};
use crate::diag::{Diagnostics, Level, Message};
use crate::error::Error;
use crate::graph::{self, Depgraph, ResolveOptions};
use crate::io::{self, FileKey, TextInput};
use crate::kernel::KernelSymbols;
use crate::render::{self, BuiltinInputs, Flavor, OutputFile};
use crate::scan::{self, Candidate, LoadStats};

/// One depmod run over a module directory: its settings, then [`Depmod::generate`] to compute
/// the files and [`Depmod::write`] to write them (and the cache).
///
/// A new run uses kmod's built-in configuration (`search updates built-in`, no depmod.d file);
/// [`Depmod::read_config`] reads depmod.d as the `depmod` tool does.
#[derive(Debug)]
#[non_exhaustive]
pub struct Depmod {
    /// `BASEDIR/lib/modules/VERSION`.
    pub module_dir: PathBuf,
    /// Where [`Depmod::write`] puts the files (kmod 31's `-o`); the module directory if unset.
    pub out_dir: Option<PathBuf>,
    /// depmod.d settings (see [`Depmod::read_config`]).
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
    /// The incremental cache, if caching.
    pub cache: Option<CacheLocation>,
    /// Messages of the run, in order, and notes about the cache.
    pub diagnostics: Diagnostics,
    /// Called as each [`Phase`] of [`Depmod::generate`] and [`Depmod::write`] begins (the
    /// `depmod` tool names the phase in its out-of-memory message).
    pub on_phase: Option<fn(Phase)>,
}

/// A step of a run, as [`Depmod::on_phase`] hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Walking the module directories.
    Scan,
    /// Reading the module files (and the cache).
    Read,
    /// Ordering the modules and resolving their symbols.
    Resolve,
    /// Rendering the output files in memory.
    Render,
    /// Writing the files and the cache.
    Write,
}

/// Address space a run needs besides its worker threads: the binary and its libraries, the
/// allocator's heap with the modules' data and the rendered files, and the largest module
/// decompressed (Debian 6.12's amdgpu: 28 MiB).
const SHARED_ADDRESS_SPACE: u64 = 48 << 20;
/// What each worker thread adds at most: its stack (2 MiB), its xz decoder (a 1 MiB
/// dictionary for Debian's modules), and the module file it reads or maps with that file
/// decompressed, which for a large module is megabytes (6.12's drm and network drivers: 5 to
/// 28 MiB). 8 MiB let six workers run at 96 MiB, and two of them decompressing large modules at
/// once ran out (CI, `depmod_under_memory_limits`, 6.12 with 64 threads asked for); two
/// workers complete 6.12 at 56 MiB.
const WORKER_ADDRESS_SPACE: u64 = 24 << 20;

/// How many worker threads fit in an address-space limit of `limit` bytes (`ulimit -v`), when
/// that is fewer than rayon's `default` (one per CPU, or `RAYON_NUM_THREADS`): each one's
/// stack and buffers are address space, and past the limit an allocation fails. At least one.
fn workers_within(limit: Option<u64>, default: usize) -> Option<usize> {
    let fit = limit?.saturating_sub(SHARED_ADDRESS_SPACE) / WORKER_ADDRESS_SPACE;
    let fit = usize::try_from(fit).unwrap_or(usize::MAX).max(1);
    (fit < default).then_some(fit)
}

/// The worker threads rayon's global pool would start: `RAYON_NUM_THREADS`, else one per CPU.
fn default_workers() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
}

/// What [`Depmod::generate`] computed. Nothing is written until [`Depmod::write`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Generated {
    /// The files, in kmod's writing order (empty when `up_to_date`).
    pub files: Vec<OutputFile>,
    /// How many modules were parsed and how many came from the cache.
    pub stats: LoadStats,
    /// Nothing changed since the run recorded in the cache, whose outputs are untouched: there
    /// is nothing to write.
    pub up_to_date: bool,
    /// How long each phase took (shown by `depmod -vv`).
    pub timings: Vec<(&'static str, Duration)>,
    /// What saving the cache needs, when caching.
    save: Option<CacheSave>,
}

/// The cache's part of a run, saved by [`Depmod::write`] once the files are written.
#[derive(Debug)]
struct CacheSave {
    /// Hash of all inputs of the run.
    fingerprint: u64,
    /// The serialised entries.
    entries: Vec<u8>,
    /// The messages of the run, replayed when nothing changed.
    messages: Vec<Message>,
}

impl Depmod {
    /// A run over `module_dir` with kmod's built-in configuration, no kernel symbols and no
    /// cache.
    pub fn new(module_dir: &Path, flavor: Flavor) -> Depmod {
        Depmod {
            module_dir: module_dir.to_path_buf(),
            out_dir: None,
            config: config::default_config(),
            files: None,
            kernel: KernelSymbols::default(),
            resolve: ResolveOptions::default(),
            flavor,
            binaries: true,
            cache: None,
            diagnostics: Diagnostics::default(),
            on_phase: None,
        }
    }

    fn phase(&self, phase: Phase) {
        if let Some(hook) = self.on_phase {
            hook(phase);
        }
    }

    /// Read depmod.d as the `depmod` tool does: the `*.conf` files of `dirs` (the system's are
    /// [`DepmodConfig::default_dirs`]; `depmod -C` names others), keeping the `override` and
    /// `external` lines for kernel `kversion`. Returns the lines kmod would warn about.
    pub fn read_config(&mut self, dirs: &[PathBuf], kversion: &str) -> Vec<modkit_config::Warning> {
        let (config, warnings) = DepmodConfig::load(dirs);
        self.config = config.for_kernel(kversion);
        warnings
    }

    /// Where the files go.
    pub fn out_dir(&self) -> &Path {
        self.out_dir.as_deref().unwrap_or(&self.module_dir)
    }

    /// Scan, read, order, resolve and render, in memory: nothing is written. With a cache whose
    /// record shows that nothing changed (and outside verbose mode), the result is
    /// `up_to_date` and the recorded messages are replayed.
    ///
    /// The work runs on rayon's threads, or, under an address-space limit too small for one
    /// thread per CPU, on a pool of as many as fit.
    pub fn generate(&mut self) -> Result<Generated, Error> {
        let Some(workers) =
            workers_within(modkit_syscalls::address_space_limit(), default_workers())
        else {
            return self.generate_here();
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .map_err(|err| Error::Threads {
                count: workers,
                reason: err.to_string(),
            })?;
        pool.install(|| self.generate_here())
    }

    /// [`Depmod::generate`] on the current rayon pool.
    fn generate_here(&mut self) -> Result<Generated, Error> {
        self.phase(Phase::Scan);
        let first_message = self.diagnostics.messages.len();
        let candidates = match &self.files {
            Some(files) => scan::candidates_from_files(&self.module_dir, files)?,
            None => scan::scan(&self.module_dir, &self.config, &mut self.diagnostics)?,
        };
        let fingerprint = self.cache.is_some().then(|| self.fingerprint(&candidates));
        if let Some(fingerprint) = fingerprint
            && !self.diagnostics.verbose
            && let Some(state) = self.unchanged(fingerprint)
        {
            return Ok(self.replay(state, candidates.len()));
        }
        self.phase(Phase::Read);
        let cache = self.load_cache();

        let mut timings = Vec::with_capacity(4);
        let mut clock = Instant::now();
        let mut lap = |name: &'static str, timings: &mut Vec<(&'static str, Duration)>| {
            let now = Instant::now();
            timings.push((name, now - clock));
            clock = now;
        };
        let (mut modules, stats) = scan::load(candidates, cache.as_ref())?;
        lap("read modules", &mut timings);
        drop(cache);

        let order = TextInput::read(&self.module_dir, "modules.order");
        self.phase(Phase::Resolve);
        let diag = &mut self.diagnostics;
        graph::order_modules(&mut modules, |m| &m.candidate, &order, diag);
        // kmod reports unreadable modules while loading them, in module order.
        for m in &modules {
            if let Some(err) = &m.error {
                diag.error(format!(
                    "failed to load symbols from {}: {err}",
                    m.candidate.path
                ));
            }
        }
        let keys: Vec<Option<FileKey>> = modules.iter().map(|m| m.key).collect();
        let graph = Depgraph::build(
            modules.into_iter().map(|m| (m.candidate, m.data)),
            &self.kernel,
            self.resolve,
            diag,
        )?;
        lap("order and resolve", &mut timings);
        self.phase(Phase::Render);
        let diag = &mut self.diagnostics;

        let builtin = self.binaries.then(|| BuiltinInputs {
            modules: TextInput::read(&self.module_dir, "modules.builtin"),
            modinfo: TextInput::read(&self.module_dir, "modules.builtin.modinfo"),
        });
        let files = render::render(&graph, self.flavor, builtin.as_ref(), diag)?;
        lap("render", &mut timings);

        let save = fingerprint.map(|fingerprint| CacheSave {
            fingerprint,
            entries: cache::serialize(graph.modules.iter().zip(&keys).filter_map(|(m, key)| {
                key.as_ref()
                    .map(|key| (m.candidate.path.as_str(), key, &m.data))
            })),
            messages: diag.messages[first_message..].to_vec(),
        });
        lap("serialise cache", &mut timings);
        Ok(Generated {
            files,
            stats,
            up_to_date: false,
            timings,
            save,
        })
    }

    /// The result of a run that found nothing changed since the one `state` records: no
    /// files, the recorded messages said again.
    fn replay(&mut self, state: cache::State, modules: usize) -> Generated {
        for (code, text) in state.messages {
            let level = match code {
                0 => Level::Error,
                1 => Level::Warning,
                _ => Level::Info,
            };
            self.diagnostics.messages.push(Message { level, text });
        }
        Generated {
            files: Vec::new(),
            stats: LoadStats {
                parsed: 0,
                cached: modules,
            },
            up_to_date: true,
            timings: Vec::new(),
            save: None,
        }
    }

    /// The cache's entries, if caching: empty when there are none yet, and when the file
    /// cannot be used (with a note; it is rebuilt).
    fn load_cache(&mut self) -> Option<Cache> {
        let location = self.cache.as_ref()?;
        Some(Cache::load(location.path()).unwrap_or_else(|err| {
            self.diagnostics
                .notes
                .push(format!("not using the cache: {err}; rebuilding it"));
            Cache::new()
        }))
    }

    /// Write the files of `generated` into [`Depmod::out_dir`] (created if missing), each
    /// through a temporary name and a rename, after clearing the temporaries of killed runs;
    /// then save the cache, recording the files' identities and the run's messages. A cache
    /// that cannot be saved is a note in `diagnostics`, not an error: the files are right
    /// without it. Nothing is written when `generated` is up to date.
    pub fn write(&mut self, generated: &Generated) -> Result<(), Error> {
        if generated.up_to_date {
            return Ok(());
        }
        self.phase(Phase::Write);
        let out_dir = self.out_dir().to_path_buf();
        io::create_dir_all(&out_dir, "could not open directory")?;
        io::remove_stale_temporaries(&out_dir, |name| {
            generated.files.iter().any(|f| f.name == name)
        });
        for f in &generated.files {
            io::write_file_atomic(&out_dir, f.name, &f.bytes)?;
        }
        let (Some(location), Some(save)) = (&self.cache, &generated.save) else {
            return Ok(());
        };
        if let Err(err) = self.save_cache(location, save, &generated.files, &out_dir) {
            self.diagnostics
                .notes
                .push(format!("could not write the cache: {err}"));
        }
        if let CacheLocation::Host(path) = location
            && let Some(dir) = path.parent()
        {
            let removed = cache::prune(dir, path);
            if removed > 0 {
                self.diagnostics.notes.push(format!(
                    "removed {removed} cache file(s) of module directories that no longer exist"
                ));
            }
        }
        Ok(())
    }

    fn save_cache(
        &self,
        location: &CacheLocation,
        save: &CacheSave,
        files: &[OutputFile],
        out_dir: &Path,
    ) -> Result<(), Error> {
        let mut outputs = Vec::with_capacity(files.len());
        for f in files {
            outputs.push((f.name.to_owned(), io::stat(&out_dir.join(f.name))?));
        }
        let state = cache::State {
            fingerprint: save.fingerprint,
            module_dir: self.module_dir.to_string_lossy().into_owned(),
            out_dir: out_dir.to_string_lossy().into_owned(),
            outputs,
            // The codes `replay` reads back.
            messages: save
                .messages
                .iter()
                .map(|m| {
                    let code = match m.level {
                        Level::Error => 0,
                        Level::Warning => 1,
                        Level::Info => 2,
                    };
                    (code, m.text.clone())
                })
                .collect(),
        };
        let path = location.path();
        let dir = path.parent().unwrap_or(Path::new("."));
        io::create_dir_all(dir, "could not create")?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        io::write_file_atomic(dir, &name, &cache::file_bytes(&state, &save.entries))
    }

    /// Whether the state recorded in the cache shows that nothing changed: same inputs, and the
    /// outputs it wrote to the output directory still there, untouched.
    fn unchanged(&self, fingerprint: u64) -> Option<cache::State> {
        let state = cache::read_state(self.cache.as_ref()?.path())?;
        let out_dir = self.out_dir();
        if state.fingerprint != fingerprint || state.out_dir != out_dir.to_string_lossy() {
            return None;
        }
        let fresh = state
            .outputs
            .iter()
            .all(|(name, key)| io::file_key_of(&out_dir.join(name)) == Some(*key));
        fresh.then_some(state)
    }

    /// The hash of everything the outputs depend on: the settings, the identities of the
    /// module directory's text inputs and of every module file.
    fn fingerprint(&self, candidates: &[Candidate]) -> u64 {
        let mut keys: Vec<(&str, Option<FileKey>)> = candidates
            .par_iter()
            .map(|c| (c.path.as_str(), io::file_key_of(Path::new(&c.path))))
            .collect();
        keys.sort_unstable_by_key(|k| k.0);
        let mut fp = Fingerprint::default();
        self.hash_settings(&mut fp);
        keys.hash(&mut fp);
        fp.finish()
    }

    /// Feed every setting the outputs depend on. The structs are taken apart field by field,
    /// so that a new field does not compile until it is either fed or said not to matter.
    fn hash_settings(&self, fp: &mut Fingerprint) {
        let Depmod {
            module_dir,
            out_dir: _, // checked on its own against the recorded one
            config,
            files,
            kernel,
            resolve,
            flavor,
            binaries,
            cache: _,       // where the record is, not an input
            diagnostics: _, // verbose mode skips the record altogether
            on_phase: _,    // a hook, not an input
        } = self;
        env!("CARGO_PKG_VERSION").hash(fp);
        module_dir.hash(fp);
        hash_config(config, fp);
        files.hash(fp);
        let KernelSymbols { symbols, given } = kernel;
        (symbols, given).hash(fp);
        let ResolveOptions {
            symbol_prefix,
            print_unknown,
            check_symvers,
        } = resolve;
        (symbol_prefix, print_unknown, check_symvers).hash(fp);
        let Flavor {
            layout,
            weakdep,
            warn_dups,
            symbol_prefix,
        } = flavor;
        (layout, weakdep, warn_dups, symbol_prefix).hash(fp);
        binaries.hash(fp);
        for name in [
            "modules.order",
            "modules.builtin",
            "modules.builtin.modinfo",
        ] {
            (name, io::file_key_of(&module_dir.join(name))).hash(fp);
        }
    }
}

/// Feed a depmod.d configuration, field by field (see [`Depmod::hash_settings`]).
fn hash_config(config: &DepmodConfig, fp: &mut Fingerprint) {
    let DepmodConfig {
        search,
        overrides,
        external,
        excludes,
    } = config;
    search.len().hash(fp);
    for s in search {
        match s {
            Search::Dir(dir) => (0u8, dir).hash(fp),
            Search::BuiltIn => 1u8.hash(fp),
            Search::External => 2u8.hash(fp),
        }
    }
    overrides.len().hash(fp);
    for Override {
        module,
        kernel,
        subdir,
    } in overrides
    {
        (module, kernel, subdir).hash(fp);
    }
    external.len().hash(fp);
    for External { kernel, dir } in external {
        (kernel, dir).hash(fp);
    }
    excludes.hash(fp);
}

#[cfg(test)]
mod tests {
    use super::workers_within;

    #[test]
    fn workers_fit_the_address_space_limit() {
        // No limit: rayon's default. 96 MiB: two workers, whatever was asked for.
        assert_eq!(workers_within(None, 64), None);
        assert_eq!(workers_within(Some(96 << 20), 64), Some(2));
        assert_eq!(workers_within(Some(96 << 20), 2), None);
        // Too little for even one: still one.
        assert_eq!(workers_within(Some(16 << 20), 4), Some(1));
        assert_eq!(workers_within(Some(1 << 40), 8), None);
    }
}
