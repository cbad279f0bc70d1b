//! The context of every operation: a module directory, its configuration and indexes, and the
//! modules met so far, each with what kmod's libkmod caches on its `struct kmod_module`.
//!
//! Modules live in a pool, as in libkmod: one entry per name, and one more per alias a module
//! was found through (kmod keys those `name\alias`). That distinction is visible in kmod's
//! behaviour (options and blacklisting of aliases, which entries a probe visits), so it is kept.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use modkit_config::modprobe::ModprobeConfig;
use modkit_index::fnmatch::fnmatch;
use modkit_syscalls::{InitState, Kernel};

use crate::indexes::{IndexFile, Indexes};
use crate::info::{self, Info};
use crate::name::{alias_normalize, modname_normalize, path_to_modname};
use crate::{Error, Level, Reporter};

/// A module in a [`Context`]'s pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModId(usize);

/// A module as a lookup found it: a file, or built into the kernel (or known only by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleRef {
    /// A module file.
    File {
        /// The module name.
        name: String,
        /// The file.
        path: PathBuf,
    },
    /// A module without a file: built in, or named by an alias whose module has no file.
    Builtin {
        /// The module name.
        name: String,
    },
}

impl ModuleRef {
    /// A module given as a file; kmod shows its absolute path. A path that names no module
    /// (its base name is empty: `dir/`) is not found, as in kmod.
    pub fn from_path(path: &Path) -> Result<ModuleRef, Error> {
        let io = |cause| Error::Io {
            path: path.to_owned(),
            cause,
        };
        let name = path_to_modname(path).ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))?;
        let path = std::path::absolute(path).map_err(io)?;
        Ok(ModuleRef::File { name, path })
    }

    /// The module name.
    pub fn name(&self) -> &str {
        match self {
            ModuleRef::File { name, .. } | ModuleRef::Builtin { name } => name,
        }
    }
}

/// A module's soft dependencies, as [`Context::softdeps`] finds them.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SoftDeps {
    /// The `pre:` modules, to load before it.
    pub pre: Vec<ModId>,
    /// The `post:` modules, to load after it.
    pub post: Vec<ModId>,
    /// The names whose lookup failed, with why, in configuration order.
    pub failed: Vec<(String, Error)>,
}

impl SoftDeps {
    /// Report each failed name in kmod's words, as kmod does before going on without it.
    pub fn report(&self, reporter: &mut dyn Reporter) {
        for (dep, err) in &self.failed {
            reporter.message(
                Level::Error,
                &format!("failed to lookup soft dependency '{dep}', continuing anyway. ({err})"),
            );
        }
    }
}

/// What libkmod keeps per `struct kmod_module`.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) alias: Option<String>,
    path: Option<PathBuf>,
    /// modules.dep has been read for it (`init.dep`).
    dep_init: bool,
    /// Dependencies in kmod's order: the reverse of the modules.dep line.
    deps: Vec<ModId>,
    pub(crate) builtin: bool,
    install: Option<Option<String>>,
    remove: Option<Option<String>>,
    pub(crate) visited: bool,
    pub(crate) required: bool,
    pub(crate) ignorecmd: bool,
}

impl Entry {
    fn new(name: String, alias: Option<String>) -> Entry {
        Entry {
            name,
            alias,
            path: None,
            dep_init: false,
            deps: Vec::new(),
            builtin: false,
            install: None,
            remove: None,
            visited: false,
            required: false,
            ignorecmd: false,
        }
    }
}

/// The module directory `ROOT/lib/modules/VERSION` as kmod's tools spell it: `ROOT` and
/// `VERSION` pasted into `%s/lib/modules/%s` (a root ending in `/` gives `//`, as in kmod),
/// the running kernel's release when no version is given, `/lib/modules/...` without a root.
pub fn module_dir(root: Option<&OsStr>, version: Option<&str>) -> PathBuf {
    module_dir_in(root, OsStr::new(MODULE_DIRECTORY), version)
}

/// Where module trees live under a root, as kmod builds it by default (`MODULE_DIRECTORY`).
pub const MODULE_DIRECTORY: &str = "/lib/modules";

/// [`module_dir`] with another directory of module trees than `/lib/modules` (kmod 34's
/// `depmod -m`): `ROOT` + `moduledir` + `/VERSION`, joined as text as kmod joins them.
pub fn module_dir_in(root: Option<&OsStr>, moduledir: &OsStr, version: Option<&str>) -> PathBuf {
    let version = version
        .map(str::to_owned)
        .unwrap_or_else(|| modkit_syscalls::kernel_release().unwrap_or_default());
    let mut dir = root.map(OsStr::to_os_string).unwrap_or_default();
    dir.push(moduledir);
    dir.push("/");
    dir.push(version);
    PathBuf::from(dir)
}

/// Which modprobe.d files a [`Context`] reads (see [`Context::load_config`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigFiles {
    /// No modprobe.d file at all (the module directory's `modules.softdep` and the kernel
    /// command line, when given, still count).
    None,
    /// kmod's directories: `/etc/modprobe.d`, `/run/modprobe.d`, `/usr/local/lib/modprobe.d`,
    /// `/lib/modprobe.d`.
    #[default]
    Default,
    /// kmod's directories under a root (`ROOT/etc/modprobe.d`, ...): the configuration of
    /// another system's tree, not the host's.
    Under(PathBuf),
    /// These files and directories instead of kmod's (modprobe's `-C`); none given means
    /// kmod's directories, as with modprobe.
    Paths(Vec<PathBuf>),
}

impl ConfigFiles {
    /// The files and directories to read, or `None` for no configuration.
    fn paths(&self) -> Option<Vec<PathBuf>> {
        match self {
            ConfigFiles::None => None,
            ConfigFiles::Paths(paths) if !paths.is_empty() => Some(paths.clone()),
            ConfigFiles::Default | ConfigFiles::Paths(_) => Some(ModprobeConfig::default_dirs()),
            ConfigFiles::Under(root) => Some(
                ModprobeConfig::default_dirs()
                    .iter()
                    .map(|dir| root.join(dir.strip_prefix("/").unwrap_or(dir)))
                    .collect(),
            ),
        }
    }
}

/// A module directory with its configuration and indexes: what libkmod's `kmod_ctx` holds.
///
/// Indexes are opened on first use and kept, so a context serves any number of lookups with
/// one open (and one mmap) per index. Modules found are kept in a pool, as libkmod does.
pub struct Context {
    config: ModprobeConfig,
    indexes: Indexes,
    entries: Vec<Entry>,
    by_key: HashMap<String, ModId>,
    first_softdep_only: bool,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("dir", &self.dir())
            .field("modules", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Context {
    /// A context over the module directory `dir` (e.g. from [`module_dir`]) with `config`.
    pub fn new(dir: impl Into<PathBuf>, config: ModprobeConfig) -> Context {
        Context {
            config,
            indexes: Indexes::new(dir.into()),
            entries: Vec::new(),
            by_key: HashMap::new(),
            first_softdep_only: false,
        }
    }

    /// The configuration modprobe uses: the modprobe.d files `files` chooses and the
    /// directory's `modules.softdep` and `modules.weakdep` (which depmod writes from the
    /// modules' own `softdep=` and `weakdep=` records), sorted by file name together as
    /// libkmod sorts them, then the kernel command line `cmdline`. Returns the configuration and the
    /// warnings for bad lines. Nothing is checked about `dir`: a missing `modules.softdep` is
    /// no configuration, as in kmod.
    pub fn load_config(
        dir: &Path,
        files: &ConfigFiles,
        cmdline: Option<&str>,
    ) -> (ModprobeConfig, Vec<modkit_config::Warning>) {
        // depmod writes modules.softdep, and kmod >= 33's modules.weakdep, from the
        // modules' own `softdep=` and `weakdep=` records; libkmod reads both as configuration
        // files, sorted by name among the modprobe.d files (kmod_config_new inserts them into
        // the sorted list first, so they also win over a file of the same name).
        let generated = ["modules.softdep", "modules.weakdep"].map(|file| dir.join(file));
        let (mut config, mut warnings) = match files.paths() {
            Some(paths) => {
                let all: Vec<PathBuf> = generated.iter().cloned().chain(paths).collect();
                ModprobeConfig::load(&all, None)
            }
            None => {
                let (mut config, mut warnings) = (ModprobeConfig::default(), Vec::new());
                for path in &generated {
                    if let Ok(text) = std::fs::read_to_string(path) {
                        config.parse(&text, path, &mut warnings);
                    }
                }
                (config, warnings)
            }
        };
        if let Some(cmdline) = cmdline {
            config.parse_cmdline(cmdline, &mut warnings);
        }
        (config, warnings)
    }

    /// A context over the module directory `dir` with the configuration
    /// [`Context::load_config`] reads; the warnings are for the caller to show.
    ///
    /// A `dir` that is missing, not a directory or cannot be read is an error
    /// ([`Error::ModuleDir`]), not a directory where nothing is found. A caller that goes on
    /// without it, as kmod's modprobe does (configured aliases and install commands need no
    /// directory), builds its context with [`Context::new`] and [`Context::load_config`].
    pub fn open(
        dir: impl Into<PathBuf>,
        files: &ConfigFiles,
        cmdline: Option<&str>,
    ) -> Result<(Context, Vec<modkit_config::Warning>), Error> {
        let dir = dir.into();
        if let Err(cause) = std::fs::read_dir(&dir) {
            return Err(Error::ModuleDir { path: dir, cause });
        }
        let (config, warnings) = Context::load_config(&dir, files, cmdline);
        Ok((Context::new(dir, config), warnings))
    }

    /// Honour only the first `softdep` line matching a module, exactly as kmod 30 does,
    /// instead of all of them (the default).
    pub fn set_first_softdep_only(&mut self, first_only: bool) {
        self.first_softdep_only = first_only;
    }

    /// The module directory.
    pub fn dir(&self) -> &Path {
        self.indexes.dir()
    }

    /// The configuration.
    pub fn config(&self) -> &ModprobeConfig {
        &self.config
    }

    /// Say that about `lookups` lookups will follow (`modprobe -a` with that many names).
    /// With many, the trie walks of a wildcard index keep the subtrees they read from its
    /// first lookup rather than after a few hundred walks, and the module pool is sized for
    /// them; the answers are the same either way.
    pub fn expect_lookups(&mut self, lookups: usize) {
        self.indexes.expect_lookups(lookups);
        // About a module a name: the pool grows once.
        self.entries.reserve(lookups);
        self.by_key.reserve(lookups);
    }

    /// Write `alias KEY VALUE` for every entry of modules.alias.bin and modules.symbols.bin,
    /// as `modprobe -c` ends (kmod's `kmod_dump_index`). A missing index writes nothing.
    pub fn dump_indexes(&self, out: &mut impl std::io::Write) -> Result<(), Error> {
        self.indexes.dump(out)
    }

    // ---- the pool ----

    fn get_or_new(&mut self, name: &str, alias: Option<&str>) -> ModId {
        // Not format!: this runs once per name of `modprobe -a`.
        let mut key = String::with_capacity(name.len() + alias.map_or(0, |a| a.len() + 1));
        key.push_str(name);
        if let Some(alias) = alias {
            key.push('\\');
            key.push_str(alias);
        }
        if let Some(&id) = self.by_key.get(&key) {
            return id;
        }
        let id = ModId(self.entries.len());
        self.entries
            .push(Entry::new(name.to_owned(), alias.map(str::to_owned)));
        self.by_key.insert(key, id);
        id
    }

    pub(crate) fn entry(&self, id: ModId) -> &Entry {
        &self.entries[id.0]
    }

    pub(crate) fn entry_mut(&mut self, id: ModId) -> &mut Entry {
        &mut self.entries[id.0]
    }

    /// Forget the marks of the last probe (kmod's `kmod_set_modules_visited/required`).
    pub(crate) fn reset_marks(&mut self) {
        for entry in &mut self.entries {
            entry.visited = false;
            entry.required = false;
        }
    }

    /// The module of this name (kmod's `kmod_module_new_from_name`: cut at the first `.`,
    /// `-` as `_`). Nothing is checked.
    pub fn module_from_name(&mut self, name: &str) -> ModId {
        self.get_or_new(&modname_normalize(name), None)
    }

    /// The module in a file (kmod's `kmod_module_new_from_path`): the file must exist and its
    /// base name must not be empty.
    pub fn module_from_path(&mut self, path: &Path) -> Result<ModId, Error> {
        let io = |cause| Error::Io {
            path: path.to_owned(),
            cause,
        };
        let abs = std::path::absolute(path).map_err(io)?;
        std::fs::metadata(&abs).map_err(io)?;
        let name = path_to_modname(path).ok_or_else(|| io(std::io::ErrorKind::NotFound.into()))?;
        let id = self.get_or_new(&name, None);
        let entry = self.entry_mut(id);
        if entry.path.is_none() {
            entry.path = Some(abs);
        }
        Ok(id)
    }

    /// A module's name (normalised).
    pub fn name(&self, id: ModId) -> &str {
        &self.entry(id).name
    }

    /// The alias a module was found through, if it was.
    pub fn alias(&self, id: ModId) -> Option<&str> {
        self.entry(id).alias.as_deref()
    }

    /// Was the module found in the built-in indexes?
    pub fn is_builtin(&self, id: ModId) -> bool {
        self.entry(id).builtin
    }

    // ---- lookups ----

    /// The modules a name, alias or `symbol:NAME` stands for, in kmod 30's lookup order
    /// (`kmod_module_new_from_lookup`); the first step that finds anything wins:
    ///
    /// 1. `alias` lines of the configuration (fnmatch patterns);
    /// 2. modules.dep.bin, by exact name (skipped when the name has a `:`);
    /// 3. modules.symbols.bin, for `symbol:NAME`;
    /// 4. `install`, then `remove` commands of the configuration, by exact name;
    /// 5. modules.alias.bin patterns;
    /// 6. modules.builtin.bin, by exact name;
    /// 7. modules.builtin.alias.bin patterns.
    ///
    /// The name is normalised first (`-` as `_` outside `[...]`); a name kmod cannot
    /// normalise (unbalanced brackets) finds nothing. Nothing found is an empty list, not an
    /// error.
    pub fn lookup(&mut self, given: &str) -> Result<Vec<ModId>, Error> {
        // kmod 30 rejects a name its `alias_normalize` cannot take (a `]` outside brackets,
        // an unterminated `[`): nothing is found.
        let Some(alias) = alias_normalize(given) else {
            return Ok(Vec::new());
        };
        let mut found = Vec::new();

        let matches: Vec<(String, String)> = self
            .config
            .aliases
            .iter()
            .filter(|a| fnmatch(a.pattern.as_bytes(), alias.as_bytes()))
            .map(|a| (a.pattern.clone(), a.module.clone()))
            .collect();
        for (pattern, module) in matches {
            found.push(self.get_or_new(&module, Some(&pattern)));
        }
        if !found.is_empty() {
            return Ok(found);
        }

        if !alias.contains(':')
            && let Some(line) = self.indexes.get(IndexFile::Dep, &alias)?
        {
            let id = self.get_or_new(&alias, None);
            self.parse_depline(id, &line);
            return Ok(vec![id]);
        }

        if alias.starts_with("symbol:") {
            for module in self.indexes.wild(IndexFile::Symbols, &alias)? {
                found.push(self.get_or_new(&module, Some(&alias)));
            }
            if !found.is_empty() {
                return Ok(found);
            }
        }

        if let Some(command) = self
            .config
            .install
            .iter()
            .find(|c| c.module == alias)
            .map(|c| c.command.clone())
        {
            let id = self.module_from_name(&alias);
            self.entry_mut(id).install = Some(Some(command));
            return Ok(vec![id]);
        }
        if let Some(command) = self
            .config
            .remove
            .iter()
            .find(|c| c.module == alias)
            .map(|c| c.command.clone())
        {
            let id = self.module_from_name(&alias);
            self.entry_mut(id).remove = Some(Some(command));
            return Ok(vec![id]);
        }

        for module in self.indexes.wild(IndexFile::Alias, &alias)? {
            found.push(self.get_or_new(&module, Some(&alias)));
        }
        if !found.is_empty() {
            return Ok(found);
        }

        if self.indexes.get(IndexFile::Builtin, &alias)?.is_some() {
            let id = self.module_from_name(&alias);
            self.entry_mut(id).builtin = true;
            return Ok(vec![id]);
        }

        for module in self.indexes.wild(IndexFile::BuiltinAlias, &alias)? {
            let id = self.get_or_new(&module, Some(&alias));
            self.entry_mut(id).builtin = true;
            found.push(id);
        }
        Ok(found)
    }

    /// [`Context::lookup`], as files and built-in modules (what `modinfo` shows).
    pub fn resolve(&mut self, name: &str) -> Result<Vec<ModuleRef>, Error> {
        let ids = self.lookup(name)?;
        let mut modules = Vec::with_capacity(ids.len());
        for id in ids {
            let name = self.name(id).to_owned();
            modules.push(match self.path(id)? {
                Some(path) => ModuleRef::File { name, path },
                None => ModuleRef::Builtin { name },
            });
        }
        Ok(modules)
    }

    /// The modules that export `symbol`, as modules.symbols.bin names them (the `symbol:NAME`
    /// step of [`Context::lookup`] alone, keyed as it keys them), in the index's order; `None`
    /// when the directory has no symbols index to ask.
    pub fn exporters_of(&mut self, symbol: &str) -> Result<Option<Vec<ModId>>, Error> {
        if self.indexes.open(IndexFile::Symbols)?.is_none() {
            return Ok(None);
        }
        let key = format!("symbol:{symbol}");
        let mut found = Vec::new();
        for module in self.indexes.wild(IndexFile::Symbols, &key)? {
            found.push(self.get_or_new(&module, Some(&key)));
        }
        Ok(Some(found))
    }

    /// kmod's `kmod_module_parse_depline`: the module's path and its dependencies.
    fn parse_depline(&mut self, id: ModId, line: &str) {
        if self.entry(id).dep_init {
            return;
        }
        self.entry_mut(id).dep_init = true;
        let Some((relpath, rest)) = line.split_once(':') else {
            return;
        };
        let join = |dir: &Path, rel: &str| -> PathBuf {
            if rel.starts_with('/') {
                PathBuf::from(rel)
            } else {
                let mut path = dir.as_os_str().to_os_string();
                path.push("/");
                path.push(rel);
                PathBuf::from(path)
            }
        };
        if self.entry(id).path.is_none() {
            let path = join(self.dir(), relpath);
            self.entry_mut(id).path = Some(path);
        }
        let mut deps = Vec::new();
        for dep in rest.split([' ', '\t']).filter(|s| !s.is_empty()) {
            let path = join(self.dir(), dep);
            let dep_id = self.get_or_new(&path_to_modname(&path).unwrap_or_default(), None);
            let entry = self.entry_mut(dep_id);
            if entry.path.is_none() {
                entry.path = Some(path);
            }
            deps.push(dep_id);
        }
        deps.reverse();
        self.entry_mut(id).deps = deps;
    }

    fn ensure_deps(&mut self, id: ModId) -> Result<(), Error> {
        if self.entry(id).dep_init {
            return Ok(());
        }
        let name = self.entry(id).name.clone();
        if let Some(line) = self.indexes.get(IndexFile::Dep, &name)? {
            self.parse_depline(id, &line);
        }
        Ok(())
    }

    /// The module's file: where it was given from, else from modules.dep; `None` for a
    /// built-in module or one the directory does not have.
    pub fn path(&mut self, id: ModId) -> Result<Option<PathBuf>, Error> {
        if self.entry(id).path.is_none() {
            self.ensure_deps(id)?;
        }
        Ok(self.entry(id).path.clone())
    }

    /// The module's dependencies from modules.dep, in the order kmod keeps and walks them:
    /// the reverse of the modules.dep line (which depmod writes so that loading it backwards
    /// works).
    pub fn dependencies(&mut self, id: ModId) -> Result<Vec<ModId>, Error> {
        self.ensure_deps(id)?;
        Ok(self.entry(id).deps.clone())
    }

    /// The options for the module: every `options` line (files, then the kernel command
    /// line) for its name or for the alias it was found through, joined by spaces; empty when
    /// there are none (kmod's `kmod_module_get_options`).
    pub fn options(&self, id: ModId) -> String {
        let entry = self.entry(id);
        let mut out = String::new();
        for option in &self.config.options {
            let matches = option.module == entry.name
                || entry.alias.as_deref() == Some(option.module.as_str());
            if !matches || option.options.is_empty() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&option.options);
        }
        out
    }

    /// The module's install command: the first `install` line whose pattern matches its name
    /// (or the one it was looked up through).
    pub fn install_command(&mut self, id: ModId) -> Option<String> {
        if self.entry(id).install.is_none() {
            let name = &self.entry(id).name;
            let command = self
                .config
                .install
                .iter()
                .find(|c| fnmatch(c.module.as_bytes(), name.as_bytes()))
                .map(|c| c.command.clone());
            self.entry_mut(id).install = Some(command);
        }
        self.entry(id).install.clone().flatten()
    }

    /// The module's remove command, found as [`Context::install_command`] is.
    pub fn remove_command(&mut self, id: ModId) -> Option<String> {
        if self.entry(id).remove.is_none() {
            let name = &self.entry(id).name;
            let command = self
                .config
                .remove
                .iter()
                .find(|c| fnmatch(c.module.as_bytes(), name.as_bytes()))
                .map(|c| c.command.clone());
            self.entry_mut(id).remove = Some(command);
        }
        self.entry(id).remove.clone().flatten()
    }

    /// The module's soft dependencies, each name looked up as [`Context::lookup`] does.
    /// Every `softdep` line whose pattern matches the module counts, in configuration order
    /// (kmod 30 takes only the first; that is the one difference). A name whose lookup fails
    /// is skipped and kept in [`SoftDeps::failed`], for the caller to report as kmod does
    /// ([`SoftDeps::report`]).
    pub fn softdeps(&mut self, id: ModId) -> SoftDeps {
        let name = self.entry(id).name.clone();
        let lines: Vec<(Vec<String>, Vec<String>)> = self
            .config
            .softdeps
            .iter()
            .filter(|s| fnmatch(s.module.as_bytes(), name.as_bytes()))
            .map(|s| (s.pre.clone(), s.post.clone()))
            .take(if self.first_softdep_only {
                1
            } else {
                usize::MAX
            })
            .collect();
        let mut found = SoftDeps::default();
        for (pre_names, post_names) in lines {
            for (names, pre) in [(pre_names, true), (post_names, false)] {
                for dep in names {
                    match self.lookup(&dep) {
                        Ok(ids) if pre => found.pre.extend(ids),
                        Ok(ids) => found.post.extend(ids),
                        Err(err) => found.failed.push((dep, err)),
                    }
                }
            }
        }
        found
    }

    /// The module's state in the kernel, as kmod's `kmod_module_get_initstate` works it out:
    /// a module found in the built-in indexes is built in without asking.
    pub fn initstate(&self, kernel: &dyn Kernel, id: ModId) -> InitState {
        let entry = self.entry(id);
        if entry.builtin {
            return InitState::Builtin;
        }
        kernel
            .sys_module()
            .initstate(&entry.name)
            .unwrap_or(InitState::NotLoaded)
    }

    /// Live or built in (kmod's `module_is_inkernel`).
    pub fn is_in_kernel(&self, kernel: &dyn Kernel, id: ModId) -> bool {
        matches!(
            self.initstate(kernel, id),
            InitState::Live | InitState::Builtin
        )
    }

    /// What the module says about itself: its file's records, or a built-in module's from
    /// modules.builtin.modinfo.
    pub fn module_info(&self, module: &ModuleRef) -> Result<Info, Error> {
        match module {
            ModuleRef::File { path, .. } => info::file_info(path),
            ModuleRef::Builtin { name } => info::builtin_info(self.dir(), name),
        }
    }
}

#[cfg(test)]
mod tests {
    use modkit_testkit::Scratch;

    use super::*;
    use crate::Recorder;

    #[test]
    fn open_names_a_module_directory_that_is_missing_or_not_one() {
        let scratch = Scratch::new("context-open");
        let missing = scratch.join("lib/modules/1.0");
        let file = scratch.write("lib/modules/2.0", "");
        for (dir, why) in [
            (&missing, "No such file or directory"),
            (&file, "Not a directory"),
        ] {
            let err = Context::open(dir, &ConfigFiles::None, None).unwrap_err();
            assert!(
                matches!(&err, Error::ModuleDir { path, .. } if path == dir),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("could not open module directory {}: {why}", dir.display())
            );
        }
        let dir = scratch.mkdir("lib/modules/3.0");
        let (ctx, warnings) = Context::open(&dir, &ConfigFiles::None, None).unwrap();
        assert_eq!((ctx.dir(), warnings.len()), (dir.as_path(), 0));
    }

    #[test]
    fn configuration_none_under_a_root_or_given_paths() {
        let scratch = Scratch::new("context-config");
        let dir = scratch.mkdir("lib/modules/1.0");
        scratch.write("etc/modprobe.d/a.conf", "options m x=1\nnonsense here\n");
        scratch.write("given/b.conf", "options m y=2\n");
        let options = |files: &ConfigFiles, cmdline: Option<&str>| {
            let (mut ctx, warnings) = Context::open(&dir, files, cmdline).unwrap();
            let id = ctx.module_from_name("m");
            (ctx.options(id), warnings.len())
        };
        assert_eq!(options(&ConfigFiles::None, None), (String::new(), 0));
        assert_eq!(
            options(&ConfigFiles::None, Some("m.z=3")),
            ("z=3".into(), 0)
        );
        assert_eq!(
            options(&ConfigFiles::Under(scratch.path().into()), None),
            ("x=1".into(), 1)
        );
        assert_eq!(
            options(
                &ConfigFiles::Paths(vec![scratch.join("given")]),
                Some("m.z=3")
            ),
            ("y=2 z=3".into(), 0)
        );
    }

    #[test]
    fn softdeps_are_data_with_the_names_that_could_not_be_looked_up() {
        let scratch = Scratch::new("context-softdeps");
        let dir = scratch.mkdir("lib/modules/1.0");
        // The module directory's own softdeps count with no configuration at all; a corrupt
        // modules.dep.bin makes every lookup of a name fail.
        scratch.write(
            "lib/modules/1.0/modules.softdep",
            "softdep m pre: n post: o\n",
        );
        scratch.write("lib/modules/1.0/modules.dep.bin", "corrupt");
        let (mut ctx, _) = Context::open(&dir, &ConfigFiles::None, None).unwrap();
        let id = ctx.module_from_name("m");
        let softdeps = ctx.softdeps(id);
        assert_eq!((softdeps.pre.len(), softdeps.post.len()), (0, 0));
        let failed: Vec<&str> = softdeps.failed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(failed, ["n", "o"]);
        assert!(
            matches!(softdeps.failed[0].1, Error::Index { .. }),
            "{:?}",
            softdeps.failed
        );
        let mut recorder = Recorder::default();
        softdeps.report(&mut recorder);
        let (level, text) = &recorder.messages[0];
        assert_eq!(*level, Level::Error);
        assert_eq!(
            *text,
            format!(
                "failed to lookup soft dependency 'n', continuing anyway. ({})",
                softdeps.failed[0].1
            )
        );
        assert_eq!(recorder.messages.len(), 2);
    }
}
