//! What libkmod's handles stand for, with no `unsafe`: every `kmod_ctx`, `kmod_module`,
//! `kmod_list` node and `kmod_config_iter` a C caller holds is a token (a number that is never
//! dereferenced) into one [`Registry`]. A token is never reused, so a handle used after its
//! last unref, a double unref or a pointer libkmod never gave out finds nothing and gets an
//! error instead of freed memory.

use std::collections::HashMap;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use modkit::config::modprobe::ModprobeConfig;
use modkit::syscalls::{Errno, InitState, Kernel, LinuxKernel, LoadError, LoadOptions};
use modkit::{Context, ModId, ModuleRef};

/// libkmod's `LOG_*` priorities (syslog's).
pub(crate) const LOG_ERR: i32 = 3;
pub(crate) const LOG_WARNING: i32 = 4;
pub(crate) const LOG_INFO: i32 = 6;
pub(crate) const LOG_DEBUG: i32 = 7;

/// `kmod_validate_resources` answers (libkmod.h `enum kmod_resources`).
pub(crate) const RESOURCES_OK: i32 = 0;
pub(crate) const RESOURCES_MUST_RELOAD: i32 = 1;
pub(crate) const RESOURCES_MUST_RECREATE: i32 = 2;

/// libkmod.h `enum kmod_probe` and `enum kmod_filter`.
pub(crate) mod flags {
    pub(crate) const PROBE_FORCE_VERMAGIC: u32 = 0x00001;
    pub(crate) const PROBE_FORCE_MODVERSION: u32 = 0x00002;
    pub(crate) const PROBE_IGNORE_COMMAND: u32 = 0x00004;
    pub(crate) const PROBE_IGNORE_LOADED: u32 = 0x00008;
    pub(crate) const PROBE_DRY_RUN: u32 = 0x00010;
    pub(crate) const PROBE_FAIL_ON_LOADED: u32 = 0x00020;
    pub(crate) const PROBE_APPLY_BLACKLIST_ALL: u32 = 0x10000;
    pub(crate) const PROBE_APPLY_BLACKLIST: u32 = 0x20000;
    pub(crate) const PROBE_APPLY_BLACKLIST_ALIAS_ONLY: u32 = 0x40000;
    pub(crate) const INSERT_FORCE_VERMAGIC: u32 = 0x1;
    pub(crate) const INSERT_FORCE_MODVERSION: u32 = 0x2;
    pub(crate) const REMOVE_NOLOG: u32 = 1;
    pub(crate) const FILTER_BLACKLIST: u32 = 1;
    pub(crate) const FILTER_BUILTIN: u32 = 2;
}

/// The index files `kmod_load_resources` opens, in `enum kmod_index` order
/// (libkmod.c `index_files`).
pub(crate) const INDEX_FILES: [&str; 5] = [
    "modules.dep",
    "modules.alias",
    "modules.symbols",
    "modules.builtin.alias",
    "modules.builtin",
];

/// `kmod_dump_index`'s line prefix per index (libkmod.c).
pub(crate) const INDEX_PREFIX: [&str; 5] = ["", "alias ", "alias ", "", ""];

/// A message for the context's log function, sent once the registry is unlocked (so a log
/// function may call back into the library).
#[derive(Debug, Clone)]
pub(crate) struct LogRecord {
    pub(crate) log_fn: usize,
    pub(crate) data: usize,
    pub(crate) priority: i32,
    pub(crate) function: &'static str,
    pub(crate) text: CString,
}

/// Where a context's messages go.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LogTarget {
    /// libkmod's default: `libkmod: PRIORITY FILE:LINE FUNCTION: ` and the message on stderr.
    Stderr,
    /// The caller's function (its address) and data.
    Function { log_fn: usize, data: usize },
    /// `kmod_set_log_fn(ctx, NULL, ...)`: nowhere.
    Nowhere,
}

/// Modification times of what a context was built from, for `kmod_validate_resources`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamps(Vec<Option<SystemTime>>);

fn stamp(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

pub(crate) struct CtxState {
    refcount: u32,
    pub(crate) ctx: Context,
    pub(crate) dirname: CString,
    pub(crate) log: LogTarget,
    pub(crate) priority: i32,
    pub(crate) userdata: usize,
    /// The handle of each module of the pool that a caller holds.
    pool: HashMap<ModId, usize>,
    config_paths: Vec<PathBuf>,
    config_stamps: Stamps,
    index_stamps: Option<Stamps>,
    kernel: LinuxKernel,
}

impl CtxState {
    fn config_stamps(paths: &[PathBuf]) -> Stamps {
        let mut stamps = Vec::new();
        for path in paths {
            stamps.push(stamp(path));
            if let Ok(entries) = std::fs::read_dir(path) {
                let mut files: Vec<PathBuf> =
                    entries.filter_map(|e| Some(e.ok()?.path())).collect();
                files.sort();
                stamps.extend(files.iter().map(|f| stamp(f)));
            }
        }
        Stamps(stamps)
    }

    fn index_stamps(&self) -> Stamps {
        let dir = self.ctx.dir();
        Stamps(
            INDEX_FILES
                .iter()
                .map(|f| stamp(&dir.join(format!("{f}.bin"))))
                .collect(),
        )
    }
}

pub(crate) struct ModState {
    refcount: u32,
    pub(crate) ctx: usize,
    pub(crate) id: ModId,
    pub(crate) name: CString,
    path: Option<Option<CString>>,
    options: Option<Option<CString>>,
    install: Option<Option<CString>>,
    remove: Option<Option<CString>>,
    builtin: Option<bool>,
}

/// What one node of a `kmod_list` holds.
#[derive(Debug)]
pub(crate) enum Item {
    /// A module (the list holds one reference on it).
    Module(usize),
    /// `kmod_module_get_info`: key and value.
    Info { key: CString, value: CString },
    /// `kmod_module_get_versions`.
    Version { symbol: CString, crc: u64 },
    /// `kmod_module_get_symbols`.
    Symbol { symbol: CString, crc: u64 },
    /// `kmod_module_get_dependency_symbols`: symbol, CRC, `enum kmod_symbol_bind`.
    Dependency {
        symbol: CString,
        crc: u64,
        bind: i32,
    },
    /// `kmod_module_get_sections`.
    Section { name: CString, address: u64 },
}

struct ListState {
    nodes: Vec<usize>,
    items: Vec<Item>,
}

pub(crate) struct ConfigIter {
    items: Vec<(CString, Option<CString>)>,
    /// Before the first `kmod_config_iter_next`: `None`.
    pos: Option<usize>,
}

/// Which configuration a `kmod_config_get_*` iterator walks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ConfigKind {
    Blacklists,
    Install,
    Remove,
    Aliases,
    Options,
    Softdeps,
}

/// Every live handle.
#[derive(Default)]
pub(crate) struct Registry {
    next: usize,
    ctxs: HashMap<usize, CtxState>,
    modules: HashMap<usize, ModState>,
    lists: HashMap<usize, ListState>,
    /// Node token -> (list, index in it).
    nodes: HashMap<usize, (usize, usize)>,
    iters: HashMap<usize, ConfigIter>,
    /// Messages waiting for the registry to be unlocked.
    pub(crate) pending: Vec<LogRecord>,
}

fn errno(e: i32) -> i32 {
    -e
}

fn c_string(text: impl Into<Vec<u8>>) -> CString {
    let mut bytes = text.into();
    // A C string ends at its first NUL, as libkmod's copies of it would.
    if let Some(nul) = bytes.iter().position(|&b| b == 0) {
        bytes.truncate(nul);
    }
    CString::new(bytes).unwrap_or_default()
}

fn io_errno(err: &std::io::Error) -> i32 {
    -err.raw_os_error().unwrap_or(libc::EIO)
}

/// The negative errno libkmod gives for a facade error.
fn facade_errno(err: &modkit::Error) -> i32 {
    match err {
        modkit::Error::Io { cause, .. } | modkit::Error::ModuleDir { cause, .. } => io_errno(cause),
        modkit::Error::NoModinfo { .. } => errno(libc::ENODATA),
        modkit::Error::Elf {
            cause: modkit::elf::Error::NotElf { .. },
            ..
        } => errno(libc::ENOEXEC),
        _ => errno(libc::EINVAL),
    }
}

/// The `KMOD_LOG` variable as libkmod reads it.
pub(crate) fn env_log_priority() -> Option<i32> {
    std::env::var("KMOD_LOG")
        .ok()
        .map(|text| log_priority(&text))
}

/// libkmod.c `log_priority`: a number (what `strtol` reads, when a blank or the end follows
/// it), else a name it starts with (`err`, `info`, `debug`), else 0.
fn log_priority(text: &str) -> i32 {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let rest = &text[digits..];
    if digits > 0 && rest.chars().next().is_none_or(char::is_whitespace) {
        return text[..digits].parse().unwrap_or(0);
    }
    if text.starts_with("err") {
        LOG_ERR
    } else if text.starts_with("info") {
        LOG_INFO
    } else if text.starts_with("debug") {
        LOG_DEBUG
    } else {
        0
    }
}

impl Registry {
    fn token(&mut self) -> usize {
        // Tokens look like aligned heap addresses and are never reused.
        self.next += 1;
        0x10_0000 + self.next * 16
    }

    // ---- logging ----

    pub(crate) fn log(&mut self, ctx: usize, priority: i32, function: &'static str, text: String) {
        let Some(state) = self.ctxs.get(&ctx) else {
            return;
        };
        if priority > state.priority {
            return;
        }
        let (log_fn, data) = match state.log {
            LogTarget::Nowhere => return,
            LogTarget::Stderr => (0, 0),
            LogTarget::Function { log_fn, data } => (log_fn, data),
        };
        self.pending.push(LogRecord {
            log_fn,
            data,
            priority,
            function,
            text: c_string(text),
        });
    }

    // ---- contexts ----

    /// `kmod_new`: `dirname` (absolute) and the configuration paths (`None`: kmod's).
    pub(crate) fn new_ctx(&mut self, dirname: PathBuf, config: Option<Vec<PathBuf>>) -> usize {
        // libkmod reads the module directory's modules.softdep as one more configuration
        // file, sorted by its name among the others (kmod 30 has no modules.weakdep).
        let config_paths = config.unwrap_or_else(ModprobeConfig::default_dirs);
        let mut files = config_paths.clone();
        files.push(dirname.join("modules.softdep"));
        let cmdline = std::fs::read_to_string("/proc/cmdline").ok();
        let (config, warnings) = ModprobeConfig::load(&files, cmdline.as_deref());
        let mut ctx = Context::new(&dirname, config);
        // libkmod honours the first softdep line of a module only.
        ctx.set_first_softdep_only(true);
        let token = self.token();
        let state = CtxState {
            refcount: 1,
            ctx,
            dirname: c_string(dirname.as_os_str().as_encoded_bytes()),
            log: LogTarget::Stderr,
            priority: env_log_priority().unwrap_or(LOG_ERR),
            userdata: 0,
            pool: HashMap::new(),
            config_stamps: CtxState::config_stamps(&config_paths),
            config_paths,
            index_stamps: None,
            kernel: LinuxKernel::new(),
        };
        self.ctxs.insert(token, state);
        for warning in warnings {
            self.log(token, LOG_ERR, "kmod_config_parse", format!("{warning}\n"));
        }
        self.log(
            token,
            LOG_INFO,
            "kmod_new",
            format!("ctx {token:#x} created\n"),
        );
        token
    }

    pub(crate) fn ctx(&self, token: usize) -> Option<&CtxState> {
        self.ctxs.get(&token)
    }

    pub(crate) fn ctx_mut(&mut self, token: usize) -> Option<&mut CtxState> {
        self.ctxs.get_mut(&token)
    }

    pub(crate) fn ref_ctx(&mut self, token: usize) -> bool {
        match self.ctxs.get_mut(&token) {
            Some(state) => {
                state.refcount += 1;
                true
            }
            None => false,
        }
    }

    /// `kmod_unref`: true while the context lives on.
    pub(crate) fn unref_ctx(&mut self, token: usize) -> Option<bool> {
        let state = self.ctxs.get_mut(&token)?;
        state.refcount -= 1;
        if state.refcount > 0 {
            return Some(true);
        }
        self.log(token, LOG_INFO, "kmod_unref", "context freed\n".to_owned());
        self.ctxs.remove(&token);
        Some(false)
    }

    /// `kmod_load_resources`: every index opens (modules.builtin.alias.bin may be missing).
    pub(crate) fn load_resources(&mut self, token: usize) -> i32 {
        let Some(state) = self.ctxs.get_mut(&token) else {
            return errno(libc::ENOENT);
        };
        for (i, file) in INDEX_FILES.iter().enumerate() {
            let path = state.ctx.dir().join(format!("{file}.bin"));
            if let Err(err) = modkit::index::Index::open(&path)
                && i != 3
            {
                let code = match &err {
                    modkit::index::Error::Io { cause, .. } => io_errno(cause),
                    _ => errno(libc::EINVAL),
                };
                state.index_stamps = None;
                return code;
            }
        }
        state.index_stamps = Some(state.index_stamps());
        0
    }

    pub(crate) fn unload_resources(&mut self, token: usize) {
        if let Some(state) = self.ctxs.get_mut(&token) {
            state.index_stamps = None;
        }
    }

    /// `kmod_validate_resources`.
    pub(crate) fn validate_resources(&mut self, token: usize) -> i32 {
        let Some(state) = self.ctxs.get(&token) else {
            return errno(libc::ENOENT);
        };
        if CtxState::config_stamps(&state.config_paths) != state.config_stamps {
            return RESOURCES_MUST_RECREATE;
        }
        match &state.index_stamps {
            Some(stamps) if *stamps != state.index_stamps() => RESOURCES_MUST_RELOAD,
            _ => RESOURCES_OK,
        }
    }

    /// `kmod_dump_index`: the lines of one index.
    pub(crate) fn dump_index(&self, token: usize, index: usize) -> Result<Vec<u8>, i32> {
        let state = self.ctxs.get(&token).ok_or(errno(libc::ENOENT))?;
        let (file, prefix) = INDEX_FILES
            .get(index)
            .zip(INDEX_PREFIX.get(index))
            .ok_or(errno(libc::ENOENT))?;
        let path = state.ctx.dir().join(format!("{file}.bin"));
        let opened = modkit::index::Index::open(&path).map_err(|err| match &err {
            modkit::index::Error::Io { cause, .. } => io_errno(cause),
            _ => errno(libc::EINVAL),
        })?;
        let mut out = Vec::new();
        for entry in opened.iter() {
            let entry = entry.map_err(|_| errno(libc::EINVAL))?;
            for value in entry.values {
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(entry.key.as_bytes());
                out.push(b' ');
                out.extend_from_slice(value.value.as_bytes());
                out.push(b'\n');
            }
        }
        Ok(out)
    }

    // ---- configuration iterators ----

    pub(crate) fn config_iter(&mut self, token: usize, kind: ConfigKind) -> Option<usize> {
        let config = self.ctxs.get(&token)?.ctx.config();
        let items: Vec<(CString, Option<CString>)> = match kind {
            ConfigKind::Blacklists => config
                .blacklist
                .iter()
                .map(|b| (c_string(b.module.as_str()), None))
                .collect(),
            ConfigKind::Install => config
                .install
                .iter()
                .map(|c| {
                    (
                        c_string(c.module.as_str()),
                        Some(c_string(c.command.as_str())),
                    )
                })
                .collect(),
            ConfigKind::Remove => config
                .remove
                .iter()
                .map(|c| {
                    (
                        c_string(c.module.as_str()),
                        Some(c_string(c.command.as_str())),
                    )
                })
                .collect(),
            ConfigKind::Aliases => config
                .aliases
                .iter()
                .map(|a| {
                    (
                        c_string(a.pattern.as_str()),
                        Some(c_string(a.module.as_str())),
                    )
                })
                .collect(),
            ConfigKind::Options => config
                .options
                .iter()
                .map(|o| {
                    (
                        c_string(o.module.as_str()),
                        Some(c_string(o.options.as_str())),
                    )
                })
                .collect(),
            ConfigKind::Softdeps => config
                .softdeps
                .iter()
                .map(|s| (c_string(s.module.as_str()), Some(c_string(s.kmod_value()))))
                .collect(),
        };
        let iter = self.token();
        self.iters.insert(iter, ConfigIter { items, pos: None });
        Some(iter)
    }

    /// The current key and value; blacklists have no value (NULL).
    pub(crate) fn iter_current(&self, iter: usize) -> Option<&(CString, Option<CString>)> {
        let iter = self.iters.get(&iter)?;
        iter.items.get(iter.pos?)
    }

    pub(crate) fn iter_next(&mut self, iter: usize) -> bool {
        let Some(iter) = self.iters.get_mut(&iter) else {
            return false;
        };
        let next = iter.pos.map_or(0, |p| p + 1);
        if next >= iter.items.len() {
            // libkmod's iterator stays on its last item.
            return false;
        }
        iter.pos = Some(next);
        true
    }

    pub(crate) fn iter_free(&mut self, iter: usize) -> bool {
        self.iters.remove(&iter).is_some()
    }

    // ---- modules ----

    /// The handle for module `id` of context `ctx`: the pool's, with one more reference, or a
    /// new one (which holds a reference on the context).
    fn module_handle(&mut self, ctx: usize, id: ModId) -> usize {
        if let Some(&token) = self.ctxs.get(&ctx).and_then(|c| c.pool.get(&id))
            && let Some(m) = self.modules.get_mut(&token)
        {
            m.refcount += 1;
            return token;
        }
        let token = self.token();
        let Some(state) = self.ctxs.get_mut(&ctx) else {
            return 0;
        };
        state.refcount += 1;
        state.pool.insert(id, token);
        let name = c_string(state.ctx.name(id));
        self.modules.insert(
            token,
            ModState {
                refcount: 1,
                ctx,
                id,
                name,
                path: None,
                options: None,
                install: None,
                remove: None,
                builtin: None,
            },
        );
        token
    }

    pub(crate) fn module(&self, token: usize) -> Option<&ModState> {
        self.modules.get(&token)
    }

    pub(crate) fn ref_module(&mut self, token: usize) -> bool {
        match self.modules.get_mut(&token) {
            Some(m) => {
                m.refcount += 1;
                true
            }
            None => false,
        }
    }

    /// `kmod_module_unref`: true while the module lives on.
    pub(crate) fn unref_module(&mut self, token: usize) -> Option<bool> {
        let m = self.modules.get_mut(&token)?;
        m.refcount -= 1;
        if m.refcount > 0 {
            return Some(true);
        }
        let m = self.modules.remove(&token)?;
        if let Some(state) = self.ctxs.get_mut(&m.ctx) {
            state.pool.remove(&m.id);
        }
        self.unref_ctx(m.ctx);
        Some(false)
    }

    pub(crate) fn new_from_name(&mut self, ctx: usize, name: &str) -> Result<usize, i32> {
        let state = self.ctxs.get_mut(&ctx).ok_or(errno(libc::ENOENT))?;
        let id = state.ctx.module_from_name(name);
        Ok(self.module_handle(ctx, id))
    }

    pub(crate) fn new_from_path(&mut self, ctx: usize, path: &Path) -> Result<usize, i32> {
        let state = self.ctxs.get_mut(&ctx).ok_or(errno(libc::ENOENT))?;
        let id = state
            .ctx
            .module_from_path(path)
            .map_err(|e| facade_errno(&e))?;
        let module = self.module_handle(ctx, id);
        // A module met through a file is not built in (libkmod sets BUILTIN_NO).
        if let Some(m) = self.modules.get_mut(&module) {
            m.builtin = Some(false);
        }
        Ok(module)
    }

    /// `kmod_module_new_from_lookup`: a list of modules (None when nothing was found).
    pub(crate) fn lookup(&mut self, ctx: usize, alias: &str) -> Result<Option<usize>, i32> {
        let state = self.ctxs.get_mut(&ctx).ok_or(errno(libc::ENOENT))?;
        if modkit::name::alias_normalize(alias).is_none() {
            return Err(errno(libc::EINVAL));
        }
        let ids = state.ctx.lookup(alias).map_err(|e| facade_errno(&e))?;
        let builtin: Vec<bool> = ids.iter().map(|&id| state.ctx.is_builtin(id)).collect();
        let items = ids
            .into_iter()
            .zip(builtin)
            .map(|(id, builtin)| {
                let m = self.module_handle(ctx, id);
                if builtin && let Some(state) = self.modules.get_mut(&m) {
                    state.builtin = Some(true);
                }
                Item::Module(m)
            })
            .collect();
        Ok(self.new_list(items))
    }

    /// `kmod_module_new_from_name_lookup`: modules.dep, then the built-in indexes.
    pub(crate) fn name_lookup(&mut self, ctx: usize, name: &str) -> Result<Option<usize>, i32> {
        let state = self.ctxs.get_mut(&ctx).ok_or(errno(libc::ENOENT))?;
        let normal = modkit::name::modname_normalize(name);
        let dir = state.ctx.dir().to_owned();
        let dep = index_get(&dir, "modules.dep.bin", &normal)?;
        if dep.is_some() {
            let id = state.ctx.module_from_name(&normal);
            state.ctx.path(id).map_err(|e| facade_errno(&e))?;
            return Ok(Some(self.module_handle(ctx, id)));
        }
        if index_get(&dir, "modules.builtin.bin", &normal)?.is_some() {
            let id = state.ctx.module_from_name(&normal);
            let module = self.module_handle(ctx, id);
            if let Some(m) = self.modules.get_mut(&module) {
                m.builtin = Some(true);
            }
            return Ok(Some(module));
        }
        let found = state.ctx.lookup(&normal).map_err(|e| facade_errno(&e))?;
        // Only the built-in alias step is left: take what it found when it was that step.
        let Some(&id) = found.first() else {
            return Ok(None);
        };
        if !state.ctx.is_builtin(id) {
            return Ok(None);
        }
        let module = self.module_handle(ctx, id);
        if let Some(m) = self.modules.get_mut(&module) {
            m.builtin = Some(true);
        }
        Ok(Some(module))
    }

    /// `kmod_module_new_from_loaded`: the modules of /proc/modules, in its order.
    pub(crate) fn loaded(&mut self, ctx: usize) -> Result<Option<usize>, i32> {
        let state = self.ctxs.get(&ctx).ok_or(errno(libc::ENOENT))?;
        let text = match std::fs::read_to_string(state.kernel.proc_dir().modules_path()) {
            Ok(text) => text,
            Err(err) => {
                self.log(
                    ctx,
                    LOG_ERR,
                    "kmod_module_new_from_loaded",
                    format!(
                        "could not open /proc/modules: {}\n",
                        modkit::syscalls::io_error_text(&err)
                    ),
                );
                return Err(io_errno(&err));
            }
        };
        let mut items = Vec::new();
        for line in text.lines() {
            let Some(name) = line.split([' ', '\t']).find(|w| !w.is_empty()) else {
                continue;
            };
            let module = self.new_from_name(ctx, name)?;
            items.push(Item::Module(module));
        }
        Ok(self.new_list(items))
    }

    fn with_module<T>(
        &mut self,
        token: usize,
        f: impl FnOnce(&mut CtxState, &mut ModState) -> T,
    ) -> Option<T> {
        let m = self.modules.get_mut(&token)?;
        let state = self.ctxs.get_mut(&m.ctx)?;
        Some(f(state, m))
    }

    pub(crate) fn path(&mut self, token: usize) -> Option<&CString> {
        self.with_module(token, |state, m| {
            if m.path.is_none() {
                m.path = Some(
                    state
                        .ctx
                        .path(m.id)
                        .ok()
                        .flatten()
                        .map(|p| c_string(p.into_os_string().into_encoded_bytes())),
                );
            }
        })?;
        self.modules.get(&token)?.path.as_ref()?.as_ref()
    }

    pub(crate) fn options(&mut self, token: usize) -> Option<&CString> {
        self.with_module(token, |state, m| {
            if m.options.is_none() {
                let options = state.ctx.options(m.id);
                m.options = Some((!options.is_empty()).then(|| c_string(options)));
            }
        })?;
        self.modules.get(&token)?.options.as_ref()?.as_ref()
    }

    pub(crate) fn install_commands(&mut self, token: usize) -> Option<&CString> {
        self.with_module(token, |state, m| {
            if m.install.is_none() {
                m.install = Some(state.ctx.install_command(m.id).map(c_string));
            }
        })?;
        self.modules.get(&token)?.install.as_ref()?.as_ref()
    }

    pub(crate) fn remove_commands(&mut self, token: usize) -> Option<&CString> {
        self.with_module(token, |state, m| {
            if m.remove.is_none() {
                m.remove = Some(state.ctx.remove_command(m.id).map(c_string));
            }
        })?;
        self.modules.get(&token)?.remove.as_ref()?.as_ref()
    }

    /// libkmod's `kmod_module_is_builtin`: found through a built-in index, or named in
    /// modules.builtin.bin.
    fn is_builtin(&mut self, token: usize) -> bool {
        self.with_module(token, |state, m| {
            if let Some(known) = m.builtin {
                return known;
            }
            let builtin = state.ctx.is_builtin(m.id)
                || index_get(state.ctx.dir(), "modules.builtin.bin", state.ctx.name(m.id))
                    .ok()
                    .flatten()
                    .is_some();
            m.builtin = Some(builtin);
            builtin
        })
        .unwrap_or(false)
    }

    pub(crate) fn dependencies(&mut self, token: usize) -> Option<usize> {
        let (ctx, ids) = self.with_module(token, |state, m| {
            (m.ctx, state.ctx.dependencies(m.id).unwrap_or_default())
        })?;
        let items = ids
            .into_iter()
            .map(|id| Item::Module(self.module_handle(ctx, id)))
            .collect();
        self.new_list(items)
    }

    pub(crate) fn softdeps(&mut self, token: usize) -> Option<(Option<usize>, Option<usize>)> {
        let (ctx, softdeps) =
            self.with_module(token, |state, m| (m.ctx, state.ctx.softdeps(m.id)))?;
        for (dep, _) in &softdeps.failed {
            self.log(
                ctx,
                LOG_ERR,
                "lookup_softdep",
                format!("failed to lookup soft dependency '{dep}', continuing anyway.\n"),
            );
        }
        let pre = softdeps
            .pre
            .iter()
            .map(|&id| Item::Module(self.module_handle(ctx, id)))
            .collect();
        let post = softdeps
            .post
            .iter()
            .map(|&id| Item::Module(self.module_handle(ctx, id)))
            .collect();
        Some((self.new_list(pre), self.new_list(post)))
    }

    /// `kmod_module_get_initstate`: `enum kmod_module_initstate` or a negative errno.
    pub(crate) fn initstate(&mut self, token: usize) -> i32 {
        if !self.modules.contains_key(&token) {
            return errno(libc::ENOENT);
        }
        if self.is_builtin(token) {
            return 0;
        }
        self.with_module(token, |state, m| {
            let name = state.ctx.name(m.id).to_owned();
            match state.kernel.sys_module().initstate(&name) {
                // A /sys/module directory without `initstate` (a built-in module with
                // parameters, or one being set up): libkmod answers "coming", having ruled
                // out the built-in indexes above.
                Ok(InitState::Builtin) => 2,
                Ok(InitState::Live) => 1,
                Ok(InitState::Coming) => 2,
                Ok(InitState::Going) => 3,
                Ok(InitState::NotLoaded) => errno(libc::ENOENT),
                Ok(_) | Err(_) => errno(libc::EINVAL),
            }
        })
        .unwrap_or(errno(libc::ENOENT))
    }

    pub(crate) fn refcnt(&mut self, token: usize) -> i32 {
        self.with_module(token, |state, m| {
            let path = state
                .kernel
                .sys_module()
                .module_dir(state.ctx.name(m.id))
                .join("refcnt");
            match std::fs::read_to_string(&path) {
                Ok(text) => text
                    .trim()
                    .parse::<i64>()
                    .map_or(errno(libc::EINVAL), |n| n as i32),
                Err(err) => io_errno(&err),
            }
        })
        .unwrap_or(errno(libc::ENOENT))
    }

    pub(crate) fn holders(&mut self, token: usize) -> Option<usize> {
        let (ctx, dir) = self.with_module(token, |state, m| {
            let dir = state
                .kernel
                .sys_module()
                .module_dir(state.ctx.name(m.id))
                .join("holders");
            (m.ctx, dir)
        })?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) => {
                self.log(
                    ctx,
                    LOG_ERR,
                    "kmod_module_get_holders",
                    format!(
                        "could not open '{}': {}\n",
                        dir.display(),
                        modkit::syscalls::io_error_text(&err)
                    ),
                );
                return None;
            }
        };
        let mut items = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let module = self.new_from_name(ctx, &name.to_string_lossy()).ok()?;
            items.push(Item::Module(module));
        }
        self.new_list(items)
    }

    pub(crate) fn sections(&mut self, token: usize) -> Option<usize> {
        let (ctx, dir) = self.with_module(token, |state, m| {
            let dir = state
                .kernel
                .sys_module()
                .module_dir(state.ctx.name(m.id))
                .join("sections");
            (m.ctx, dir)
        })?;
        let fail = |registry: &mut Registry, what: String, err: &std::io::Error| {
            registry.log(
                ctx,
                LOG_ERR,
                "kmod_module_get_sections",
                format!(
                    "could not open '{what}': {}\n",
                    modkit::syscalls::io_error_text(err)
                ),
            );
        };
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) => {
                fail(self, dir.display().to_string(), &err);
                return None;
            }
        };
        let mut items = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let text = match std::fs::read_to_string(entry.path()) {
                Ok(text) => text,
                Err(err) => {
                    fail(self, entry.path().display().to_string(), &err);
                    return None;
                }
            };
            let hex = text.trim();
            let hex = hex.strip_prefix("0x").unwrap_or(hex);
            let address = u64::from_str_radix(hex, 16).ok()?;
            items.push(Item::Section {
                name: c_string(entry.file_name().as_encoded_bytes()),
                address,
            });
        }
        self.new_list(items)
    }

    /// `kmod_module_get_size`: `/sys/module/NAME/coresize`, else its /proc/modules line.
    pub(crate) fn size(&mut self, token: usize) -> i64 {
        self.with_module(token, |state, m| {
            let name = state.ctx.name(m.id).to_owned();
            let dir = state.kernel.sys_module().module_dir(&name);
            if let Err(err) = std::fs::read_dir(&dir) {
                return i64::from(io_errno(&err));
            }
            if let Ok(text) = std::fs::read_to_string(dir.join("coresize")) {
                return text
                    .trim()
                    .parse()
                    .unwrap_or(i64::from(errno(libc::EINVAL)));
            }
            match state.kernel.loaded_modules() {
                Ok(modules) => modules
                    .iter()
                    .find(|l| l.name == name)
                    .map_or(i64::from(errno(libc::ENOENT)), |l| l.size as i64),
                Err(_) => i64::from(errno(libc::ENOENT)),
            }
        })
        .unwrap_or(i64::from(errno(libc::ENOENT)))
    }

    /// The module's file, or why there is none.
    fn module_ref(&mut self, token: usize) -> Result<ModuleRef, i32> {
        if !self.modules.contains_key(&token) {
            return Err(errno(libc::ENOENT));
        }
        let builtin = self.is_builtin(token);
        let path = self
            .path(token)
            .map(|p| PathBuf::from(p.to_string_lossy().into_owned()));
        let name = self
            .module(token)
            .map(|m| m.name.to_string_lossy().into_owned());
        let name = name.ok_or(errno(libc::ENOENT))?;
        match (builtin, path) {
            (true, _) => Ok(ModuleRef::Builtin { name }),
            (false, Some(path)) => Ok(ModuleRef::File { name, path }),
            (false, None) => Err(errno(libc::ENOENT)),
        }
    }

    pub(crate) fn info(&mut self, token: usize) -> Result<(Option<usize>, i32), i32> {
        let module = self.module_ref(token)?;
        let ctx = self
            .modules
            .get(&token)
            .map(|m| m.ctx)
            .ok_or(errno(libc::ENOENT))?;
        let state = self.ctxs.get(&ctx).ok_or(errno(libc::ENOENT))?;
        let info = state
            .ctx
            .module_info(&module)
            .map_err(|e| facade_errno(&e))?;
        let count = info.records.len() as i32;
        let items = info
            .records
            .into_iter()
            .map(|(key, value)| Item::Info {
                key: c_string(key),
                value: c_string(value),
            })
            .collect();
        Ok((self.new_list(items), count))
    }

    fn file(&mut self, token: usize) -> Result<PathBuf, i32> {
        if !self.modules.contains_key(&token) {
            return Err(errno(libc::ENOENT));
        }
        self.path(token)
            .map(|p| PathBuf::from(p.to_string_lossy().into_owned()))
            .ok_or(errno(libc::ENOENT))
    }

    pub(crate) fn versions(&mut self, token: usize) -> Result<(Option<usize>, i32), i32> {
        let path = self.file(token)?;
        let versions = modkit::file_versions(&path).map_err(|e| facade_errno(&e))?;
        let count = versions.len() as i32;
        let items = versions
            .into_iter()
            .map(|v| Item::Version {
                symbol: c_string(v.name),
                crc: v.crc,
            })
            .collect();
        Ok((self.new_list(items), count))
    }

    pub(crate) fn symbols(&mut self, token: usize) -> Result<(Option<usize>, i32), i32> {
        let path = self.file(token)?;
        let symbols = modkit::file_exports(&path).map_err(|e| facade_errno(&e))?;
        // libkmod's ELF reader answers ENOENT for a module that exports nothing.
        if symbols.is_empty() {
            return Err(errno(libc::ENOENT));
        }
        let count = symbols.len() as i32;
        let items = symbols
            .into_iter()
            .map(|s| Item::Symbol {
                symbol: c_string(s.name),
                crc: s.crc,
            })
            .collect();
        Ok((self.new_list(items), count))
    }

    pub(crate) fn dependency_symbols(&mut self, token: usize) -> Result<(Option<usize>, i32), i32> {
        let path = self.file(token)?;
        let bytes = std::fs::read(&path).map_err(|e| io_errno(&e))?;
        let bytes = modkit::elf::decompress(&bytes, modkit::syscalls::MAX_MODULE_SIZE)
            .map_err(|_| errno(libc::EINVAL))?;
        let module = modkit::elf::Module::parse(&bytes).map_err(|_| errno(libc::EINVAL))?;
        let imports = module.depmod_imports().map_err(|_| errno(libc::EINVAL))?;
        let count = imports.len() as i32;
        let items = imports
            .into_iter()
            .map(|s| Item::Dependency {
                symbol: c_string(s.name),
                crc: s.crc,
                // libkmod.h `enum kmod_symbol_bind`: 'W' weak, 'U' undefined.
                bind: if s.weak {
                    i32::from(b'W')
                } else {
                    i32::from(b'U')
                },
            })
            .collect();
        Ok((self.new_list(items), count))
    }

    /// `kmod_module_apply_filter`: the modules of `input` the filter lets through, each with
    /// one more reference.
    pub(crate) fn apply_filter(
        &mut self,
        ctx: usize,
        filter: u32,
        input: usize,
    ) -> Result<Option<usize>, i32> {
        if !self.ctxs.contains_key(&ctx) {
            return Err(errno(libc::ENOENT));
        }
        let Some(modules) = self.list_modules(input) else {
            return Ok(None);
        };
        let mut items = Vec::new();
        for module in modules {
            if filter & flags::FILTER_BLACKLIST != 0 && self.is_blacklisted(module) {
                continue;
            }
            if filter & flags::FILTER_BUILTIN != 0 && self.is_builtin(module) {
                continue;
            }
            self.ref_module(module);
            items.push(Item::Module(module));
        }
        Ok(self.new_list(items))
    }

    fn is_blacklisted(&self, module: usize) -> bool {
        let Some(m) = self.modules.get(&module) else {
            return false;
        };
        let Some(state) = self.ctxs.get(&m.ctx) else {
            return false;
        };
        state.ctx.config().is_blacklisted(state.ctx.name(m.id))
    }

    // ---- loading ----

    /// `kmod_module_insert_module`.
    pub(crate) fn insert(&mut self, token: usize, flags_: u32, options: &str) -> i32 {
        let Some(m) = self.modules.get(&token) else {
            return errno(libc::ENOENT);
        };
        let (ctx, name) = (m.ctx, m.name.to_string_lossy().into_owned());
        let Some(path) = self
            .path(token)
            .map(|p| PathBuf::from(p.to_string_lossy().into_owned()))
        else {
            self.log(
                ctx,
                LOG_ERR,
                "kmod_module_insert_module",
                format!("could not find module by name='{name}'\n"),
            );
            return errno(libc::ENOENT);
        };
        let Some(state) = self.ctxs.get(&ctx) else {
            return errno(libc::ENOENT);
        };
        let options_ = LoadOptions {
            ignore_vermagic: flags_ & flags::INSERT_FORCE_VERMAGIC != 0,
            ignore_modversions: flags_ & flags::INSERT_FORCE_MODVERSION != 0,
        };
        match state.kernel.load(&path, options, options_) {
            Ok(_) => 0,
            Err(err) => {
                let code = match &err {
                    LoadError::Kernel { failure, .. } => -failure.errno().0,
                    LoadError::Open { cause, .. } | LoadError::Read { cause, .. } => {
                        io_errno(cause)
                    }
                    _ => errno(libc::EINVAL),
                };
                self.log(
                    ctx,
                    LOG_INFO,
                    "kmod_module_insert_module",
                    format!(
                        "Failed to insert module '{}': {}\n",
                        path.display(),
                        Errno(-code).strerror()
                    ),
                );
                code
            }
        }
    }

    /// `kmod_module_remove_module`: `delete_module` with `O_NONBLOCK` and, when asked,
    /// `O_TRUNC`.
    pub(crate) fn remove(&mut self, token: usize, flags_: u32) -> i32 {
        let Some(m) = self.modules.get(&token) else {
            return errno(libc::ENOENT);
        };
        let Some(state) = self.ctxs.get(&m.ctx) else {
            return errno(libc::ENOENT);
        };
        let kernel_flags = (flags_ & libc::O_TRUNC as u32) | libc::O_NONBLOCK as u32;
        match state.kernel.delete_module(&m.name, kernel_flags) {
            Ok(()) => 0,
            Err(e) => {
                if flags_ & flags::REMOVE_NOLOG == 0 {
                    let (ctx, name) = (m.ctx, m.name.to_string_lossy().into_owned());
                    self.log(
                        ctx,
                        LOG_ERR,
                        "kmod_module_remove_module",
                        format!("could not remove '{name}': {}\n", e.strerror()),
                    );
                }
                -e.0
            }
        }
    }

    /// `kmod_module_probe_insert_module` without callbacks (`run_install` and `print_action`
    /// NULL): the facade's probe, its messages sent to the context's log.
    pub(crate) fn probe(&mut self, token: usize, flags_: u32, extra: &str) -> i32 {
        use modkit::{Blacklist, ProbeOptions, ProbeOutcome};
        let Some(m) = self.modules.get(&token) else {
            return errno(libc::ENOENT);
        };
        let (ctx, id) = (m.ctx, m.id);
        // The widest blacklist the flags ask for; libkmod's answer is chosen below.
        let blacklist = if flags_ & flags::PROBE_APPLY_BLACKLIST_ALL != 0 {
            Blacklist::All
        } else if flags_ & flags::PROBE_APPLY_BLACKLIST != 0 {
            Blacklist::Module
        } else if flags_ & flags::PROBE_APPLY_BLACKLIST_ALIAS_ONLY != 0 {
            Blacklist::Aliases
        } else {
            Blacklist::Never
        };
        let options = ProbeOptions {
            force_vermagic: flags_ & flags::PROBE_FORCE_VERMAGIC != 0,
            force_modversion: flags_ & flags::PROBE_FORCE_MODVERSION != 0,
            ignore_commands: flags_ & flags::PROBE_IGNORE_COMMAND != 0,
            ignore_loaded: flags_ & flags::PROBE_IGNORE_LOADED != 0,
            dry_run: flags_ & flags::PROBE_DRY_RUN != 0,
            show: false,
            blacklist,
            first_time: flags_ & flags::PROBE_FAIL_ON_LOADED != 0,
        };
        let Some(state) = self.ctxs.get_mut(&ctx) else {
            return errno(libc::ENOENT);
        };
        let mut recorder = modkit::Recorder::default();
        let mut runner = modkit::ShellRunner::default();
        let outcome = modkit::probe(
            &mut state.ctx,
            &state.kernel,
            id,
            extra,
            &options,
            &mut recorder,
            &mut runner,
        );
        for (level, text) in recorder.messages {
            let priority = match level {
                modkit::Level::Log | modkit::Level::Error => LOG_ERR,
                modkit::Level::Warning => LOG_WARNING,
                modkit::Level::Info => LOG_INFO,
            };
            // The facade words these as libkmod does; libkmod logs them from the insertion.
            let function = if text.starts_with("could not find module by name=")
                || text.starts_with("Failed to insert module ")
            {
                "kmod_module_insert_module"
            } else {
                "kmod_module_probe_insert_module"
            };
            self.log(ctx, priority, function, format!("{text}\n"));
        }
        match outcome {
            Ok(ProbeOutcome::Done | ProbeOutcome::AlreadyLoaded) => 0,
            // libkmod's order of answers: alias-only (for a module found through an
            // alias), all, then the module.
            Ok(ProbeOutcome::Blacklisted) => {
                let alias = self
                    .ctxs
                    .get(&ctx)
                    .is_some_and(|state| state.ctx.alias(id).is_some());
                if alias && flags_ & flags::PROBE_APPLY_BLACKLIST_ALIAS_ONLY != 0 {
                    flags::PROBE_APPLY_BLACKLIST_ALIAS_ONLY as i32
                } else if flags_ & flags::PROBE_APPLY_BLACKLIST_ALL != 0 {
                    flags::PROBE_APPLY_BLACKLIST_ALL as i32
                } else {
                    flags::PROBE_APPLY_BLACKLIST as i32
                }
            }
            // The facade answers a module without a file with kmod 29's ENOSYS; kmod 30's
            // kmod_module_insert_module answers ENOENT (checked against Debian's library).
            Err(e) if e.0 == libc::ENOSYS => errno(libc::ENOENT),
            Err(e) => -e.0,
        }
    }

    // ---- lists ----

    fn new_list(&mut self, items: Vec<Item>) -> Option<usize> {
        if items.is_empty() {
            return None;
        }
        let list = self.token();
        let nodes: Vec<usize> = items.iter().map(|_| self.token()).collect();
        for (i, &node) in nodes.iter().enumerate() {
            self.nodes.insert(node, (list, i));
        }
        let head = nodes[0];
        self.lists.insert(list, ListState { nodes, items });
        Some(head)
    }

    /// The item of a node.
    pub(crate) fn item(&self, node: usize) -> Option<&Item> {
        let &(list, i) = self.nodes.get(&node)?;
        self.lists.get(&list)?.items.get(i)
    }

    /// `kmod_list_next`/`kmod_list_prev`: the node `step` away from `curr` in the list whose
    /// head is `head`, or none at either end.
    pub(crate) fn list_step(&self, head: usize, curr: usize, forward: bool) -> Option<usize> {
        let &(list, i) = self.nodes.get(&curr)?;
        let &(head_list, _) = self.nodes.get(&head)?;
        if head_list != list {
            return None;
        }
        let nodes = &self.lists.get(&list)?.nodes;
        let j = if forward {
            i.checked_add(1)?
        } else {
            i.checked_sub(1)?
        };
        nodes.get(j).copied()
    }

    pub(crate) fn list_last(&self, head: usize) -> Option<usize> {
        let &(list, _) = self.nodes.get(&head)?;
        self.lists.get(&list)?.nodes.last().copied()
    }

    fn list_modules(&self, head: usize) -> Option<Vec<usize>> {
        let &(list, _) = self.nodes.get(&head)?;
        Some(
            self.lists
                .get(&list)?
                .items
                .iter()
                .filter_map(|item| match item {
                    Item::Module(m) => Some(*m),
                    _ => None,
                })
                .collect(),
        )
    }

    /// Free the list `head` is a node of, dropping the references its modules held. False
    /// when `head` is no live node.
    pub(crate) fn free_list(&mut self, head: usize) -> bool {
        let Some(&(list, _)) = self.nodes.get(&head) else {
            return false;
        };
        let Some(state) = self.lists.remove(&list) else {
            return false;
        };
        for node in &state.nodes {
            self.nodes.remove(node);
        }
        for item in state.items {
            if let Item::Module(m) = item {
                self.unref_module(m);
            }
        }
        true
    }
}

/// One exact lookup in an index of the module directory (a missing index finds nothing).
fn index_get(dir: &Path, file: &str, key: &str) -> Result<Option<String>, i32> {
    let path = dir.join(file);
    match modkit::index::Index::open(&path) {
        Ok(index) => index
            .get(key)
            .map(|v| v.map(str::to_owned))
            .map_err(|_| errno(libc::EINVAL)),
        Err(modkit::index::Error::Io { cause, .. })
            if cause.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmod_log_is_read_as_libkmod_reads_it() {
        for (text, priority) in [
            ("7", 7),
            ("3 ", 3),
            ("err", LOG_ERR),
            ("errors", LOG_ERR),
            ("info", LOG_INFO),
            ("debug", LOG_DEBUG),
            ("6x", 0),
            ("loud", 0),
            ("", 0),
        ] {
            assert_eq!(log_priority(text), priority, "{text:?}");
        }
    }

    #[test]
    fn tokens_are_never_reused_and_dead_handles_answer_nothing() {
        let mut r = Registry::default();
        let dir = std::env::temp_dir().join("modkit-capi-unit-no-such-dir");
        let ctx = r.new_ctx(dir, Some(Vec::new()));
        let module = r.new_from_name(ctx, "some-module.ko").unwrap();
        assert_eq!(r.module(module).unwrap().name.to_str(), Ok("some_module"));
        // The pool: the same module is the same handle.
        assert_eq!(r.new_from_name(ctx, "some_module"), Ok(module));
        assert_eq!(r.unref_module(module), Some(true));
        assert_eq!(r.unref_module(module), Some(false));
        assert_eq!(r.unref_module(module), None);
        let again = r.new_from_name(ctx, "some_module").unwrap();
        assert_ne!(again, module, "a token is never given out twice");
        assert_eq!(r.unref_ctx(ctx), Some(true), "the module holds its context");
        assert_eq!(r.unref_module(again), Some(false));
        assert!(r.ctx(ctx).is_none(), "gone with its last module");
        assert_eq!(r.unref_ctx(ctx), None);
    }

    #[test]
    fn lists_step_within_one_list_only() {
        let mut r = Registry::default();
        let item = |n: u64| Item::Version {
            symbol: c_string(format!("s{n}")),
            crc: n,
        };
        let a = r.new_list(vec![item(1), item(2), item(3)]).unwrap();
        let b = r.new_list(vec![item(4)]).unwrap();
        assert!(r.new_list(Vec::new()).is_none(), "an empty list is NULL");
        let second = r.list_step(a, a, true).unwrap();
        let last = r.list_last(a).unwrap();
        assert_eq!(r.list_step(a, second, true), Some(last));
        assert_eq!(r.list_step(a, last, true), None);
        assert_eq!(r.list_step(a, a, false), None);
        assert_eq!(r.list_step(b, second, true), None, "a node of another list");
        assert!(r.free_list(a));
        assert!(r.item(second).is_none());
        assert!(!r.free_list(a), "a freed list is no list");
        assert!(matches!(r.item(b), Some(Item::Version { crc: 4, .. })));
    }
}
