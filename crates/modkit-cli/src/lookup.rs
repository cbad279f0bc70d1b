//! Finding modules by file name, module name or alias in /lib/modules/VERSION, and reading what
//! they say about themselves, the way kmod's libkmod does for its tools.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use modkit_elf::{Module, decompress};

/// File name extensions of module files, as kmod's `path_ends_with_kmod_ext` knows them.
const MODULE_EXTENSIONS: &[&[u8]] = &[b".ko", b".ko.gz", b".ko.xz", b".ko.zst"];

/// Largest decompressed module accepted (the biggest Debian module is under 20 MiB).
const DECOMPRESSED_LIMIT: u64 = 512 << 20;

pub(crate) fn has_module_extension(path: &[u8]) -> bool {
    MODULE_EXTENSIONS.iter().any(|ext| path.ends_with(ext))
}

/// The module name of a module file: its base name without the extension, with `-` as `_`.
pub(crate) fn module_name_from_path(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    let stem = base.split('.').next().unwrap_or_default();
    normalize_name(stem)
}

/// kmod's `alias_normalize`: `-` becomes `_`, except inside `[...]`.
pub(crate) fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_brackets = false;
    for ch in name.chars() {
        match ch {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            '-' if !in_brackets => {
                out.push('_');
                continue;
            }
            _ => {}
        }
        out.push(ch);
    }
    out
}

/// A module found by a lookup.
#[derive(Debug, Clone)]
pub(crate) enum ModuleRef {
    File { name: String, path: PathBuf },
    Builtin { name: String },
}

impl ModuleRef {
    /// A module given as a file; kmod shows its absolute path.
    pub(crate) fn from_path(path: &Path) -> Result<ModuleRef> {
        let path = std::path::absolute(path)
            .with_context(|| format!("could not make {} absolute", path.display()))?;
        Ok(ModuleRef::File {
            name: module_name_from_path(&path),
            path,
        })
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            ModuleRef::File { name, .. } | ModuleRef::Builtin { name } => name,
        }
    }
}

/// What a module says about itself: its `.modinfo` records in order, then, for a signed module
/// file, the signature fields kmod adds (`sig_id`, `signer`, `sig_key`, `sig_hashalgo`,
/// `signature`).
#[derive(Debug, Default)]
pub(crate) struct Info {
    pub(crate) records: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Info {
    fn push_record(&mut self, record: &[u8]) {
        // libkmod: a string without '=' is a key with an empty value.
        match record.iter().position(|&b| b == b'=') {
            Some(eq) => self
                .records
                .push((record[..eq].to_vec(), record[eq + 1..].to_vec())),
            None => self.records.push((record.to_vec(), Vec::new())),
        }
    }

    fn push(&mut self, key: &str, value: impl Into<Vec<u8>>) {
        self.records.push((key.as_bytes().to_vec(), value.into()));
    }
}

/// Lookups in one module directory, `BASEDIR/lib/modules/VERSION`.
#[derive(Debug)]
pub(crate) struct Lookup {
    dir: PathBuf,
}

impl Lookup {
    pub(crate) fn new(basedir: Option<&Path>, version: Option<&str>) -> Lookup {
        let version = version.map(str::to_owned).unwrap_or_else(kernel_release);
        let mut dir = basedir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        dir.push("lib/modules");
        dir.push(version);
        Lookup { dir }
    }

    /// The modules a name or alias stands for, in kmod's lookup order: the module of that name
    /// (modules.dep.bin), an exported symbol (modules.symbols.bin), alias patterns
    /// (modules.alias.bin), built-in modules (modules.builtin.bin) and aliases of built-in
    /// modules (modules.builtin.alias.bin). Configured aliases (modprobe.d) are not consulted yet.
    pub(crate) fn resolve(&self, name: &str) -> Result<Vec<ModuleRef>> {
        let name = normalize_name(name);
        if !name.contains(':') {
            if let Some(module) = self.module_from_dep_index(&name)? {
                return Ok(vec![module]);
            }
        }
        if name.starts_with("symbol:") {
            let names = self.index_values("modules.symbols.bin", &name, false)?;
            if !names.is_empty() {
                return self.modules_by_names(names);
            }
        }
        let names = self.index_values("modules.alias.bin", &name, true)?;
        if !names.is_empty() {
            return self.modules_by_names(names);
        }
        if !self
            .index_values("modules.builtin.bin", &name, false)?
            .is_empty()
        {
            return Ok(vec![ModuleRef::Builtin { name }]);
        }
        let names = self.index_values("modules.builtin.alias.bin", &name, false)?;
        Ok(names
            .into_iter()
            .map(|name| ModuleRef::Builtin { name })
            .collect())
    }

    fn modules_by_names(&self, names: Vec<String>) -> Result<Vec<ModuleRef>> {
        let mut modules = Vec::with_capacity(names.len());
        for name in names {
            match self.module_from_dep_index(&name)? {
                Some(module) => modules.push(module),
                // libkmod gives such a module no path; modinfo then shows it as built in.
                None => modules.push(ModuleRef::Builtin { name }),
            }
        }
        Ok(modules)
    }

    fn module_from_dep_index(&self, name: &str) -> Result<Option<ModuleRef>> {
        let Some(line) = self
            .index_values("modules.dep.bin", name, false)?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let relpath = line.split(':').next().unwrap_or_default();
        let path = if relpath.starts_with('/') {
            PathBuf::from(relpath)
        } else {
            self.dir.join(relpath)
        };
        Ok(Some(ModuleRef::File {
            name: name.to_owned(),
            path,
        }))
    }

    /// Values of `key` in an index of the module directory; a missing index has none.
    fn index_values(&self, file: &str, key: &str, wildcard: bool) -> Result<Vec<String>> {
        let path = self.dir.join(file);
        let index = match modkit_index::Index::open(&path) {
            Ok(index) => index,
            Err(modkit_index::Error::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Vec::new());
            }
            Err(err) => {
                return Err(err).with_context(|| format!("could not read {}", path.display()));
            }
        };
        let context = || format!("could not look up {key} in {}", path.display());
        let values: Vec<String> = if wildcard {
            index
                .search_wild(key)
                .with_context(context)?
                .into_iter()
                .map(|v| v.value.to_owned())
                .collect()
        } else {
            match index.get_all(key).with_context(context)? {
                Some(values) => values.map(|v| v.value.to_owned()).collect(),
                None => Vec::new(),
            }
        };
        Ok(values)
    }

    /// Read what a module says about itself.
    pub(crate) fn module_info(&self, module: &ModuleRef) -> Result<Info> {
        match module {
            ModuleRef::File { path, .. } => file_info(path),
            ModuleRef::Builtin { name } => self.builtin_info(name),
        }
    }

    /// A built-in module's records from modules.builtin.modinfo (`NAME.KEY=VALUE\0`...).
    fn builtin_info(&self, name: &str) -> Result<Info> {
        let path = self.dir.join("modules.builtin.modinfo");
        let mut info = Info::default();
        let data = match std::fs::read(&path) {
            Ok(data) => data,
            // An old kernel without the file: kmod shows just the name.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(info),
            Err(err) => {
                return Err(err).with_context(|| format!("could not read {}", path.display()));
            }
        };
        let prefix = format!("{name}.");
        for record in data.split(|&b| b == 0) {
            if let Some(rest) = record.strip_prefix(prefix.as_bytes()) {
                info.push_record(rest);
            }
        }
        Ok(info)
    }
}

/// A module file without a `.modinfo` section: kmod 30 fails on it with ENOENT.
#[derive(Debug)]
pub(crate) struct NoModinfo;

impl std::fmt::Display for NoModinfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("No such file or directory")
    }
}

impl std::error::Error for NoModinfo {}

/// Read a module file (compressed or not) and collect its records and signature fields.
pub(crate) fn file_info(path: &Path) -> Result<Info> {
    let raw = std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
    let bytes =
        decompress(&raw, DECOMPRESSED_LIMIT).with_context(|| format!("{}", path.display()))?;
    let module = Module::parse(&bytes).with_context(|| format!("{}", path.display()))?;
    if !module.has_modinfo() {
        return Err(anyhow::Error::new(NoModinfo))
            .with_context(|| format!("{} has no .modinfo section", path.display()));
    }
    let mut info = Info::default();
    for record in module.modinfo() {
        info.records
            .push((record.key.to_vec(), record.value.to_vec()));
    }
    if let Ok(Some(sig)) = modkit_elf::signature(&bytes) {
        info.push("sig_id", sig.id_type_name());
        info.push("signer", sig.signer.clone());
        info.push("sig_key", sig.sig_key_hex());
        info.push("sig_hashalgo", sig.hash_algo_name().as_bytes());
        info.push("signature", sig.signature_hex());
    }
    Ok(info)
}

/// The running kernel's release, as `uname -r` prints it.
fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|release| release.trim_end().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized_outside_brackets() {
        assert_eq!(normalize_name("snd-hda-intel"), "snd_hda_intel");
        assert_eq!(normalize_name("pci:v[a-f]-x"), "pci:v[a-f]_x");
        assert_eq!(
            module_name_from_path(Path::new("/x/hello-api.ko.xz")),
            "hello_api"
        );
    }
}
