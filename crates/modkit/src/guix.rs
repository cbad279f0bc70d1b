//! The operations of Guix's `(gnu build linux-modules)`, for boot systems that load modules
//! from a directory of files rather than through an indexed `/lib/modules`: load a module file
//! and, first, what it depends on (from its `depends=` record), skipping blacklisted modules;
//! load modules by name from a directory; list the loaded modules; find a module file by name.

use std::path::{Path, PathBuf};

use modkit_syscalls::{Errno, Kernel, LoadError, LoadOptions};

use crate::info::file_info;
use crate::name::{modname_normalize, path_ends_with_kmod_ext, path_to_modname};

/// Why a module could not be loaded.
///
/// Each message is whole: a variant's cause is printed in it and not returned again by
/// `source()`, so `{err}` and a reporter that walks `source()` (anyhow's `{err:#}`) both
/// print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuixError {
    /// A module file could not be read.
    #[error(transparent)]
    Module(#[from] crate::Error),
    /// No file for a module was found.
    #[error("module {name} not found in {}", dir.display())]
    NotFound {
        /// The module name.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The kernel refused a module.
    #[error("could not load {}: {cause}", path.display())]
    Load {
        /// The module file.
        path: PathBuf,
        /// What went wrong.
        cause: LoadError,
    },
}

/// How [`load_module_file`] works.
pub struct LoadFile<'a> {
    /// Load the dependencies first (and take "already loaded" as success).
    pub recursive: bool,
    /// Module names not to load (Guix: `modprobe.blacklist=` of the kernel command line).
    pub blacklist: &'a [String],
    /// The file of a dependency, by module name.
    pub lookup: &'a dyn Fn(&str) -> Result<PathBuf, GuixError>,
    /// Parameters for the module file itself (not its dependencies).
    pub options: &'a str,
}

impl std::fmt::Debug for LoadFile<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadFile")
            .field("recursive", &self.recursive)
            .field("blacklist", &self.blacklist)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// The module names of `depends=` in a module file, in order.
pub fn module_dependencies(path: &Path) -> Result<Vec<String>, crate::Error> {
    let info = file_info(path)?;
    Ok(info
        .values("depends")
        .flat_map(|v| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|name| !name.is_empty())
        .collect())
}

/// Load the module in `path`, its dependencies first when `recursive` (Guix's
/// `load-linux-module*`). `Ok(false)` when the module (or a dependency) is blacklisted and
/// was not loaded. With `recursive`, a module already loaded counts as loaded.
pub fn load_module_file(
    kernel: &dyn Kernel,
    path: &Path,
    how: &LoadFile<'_>,
) -> Result<bool, GuixError> {
    let name = path_to_modname(path).unwrap_or_default();
    if how.blacklist.iter().any(|b| modname_normalize(b) == name) {
        return Ok(false);
    }
    if how.recursive {
        for dep in module_dependencies(path)? {
            let dep_path = (how.lookup)(&dep)?;
            let dep_how = LoadFile {
                options: "",
                ..*how
            };
            if !load_module_file(kernel, &dep_path, &dep_how)? {
                return Ok(false);
            }
        }
    }
    match kernel.load(path, how.options, LoadOptions::default()) {
        Ok(_) => Ok(true),
        Err(LoadError::Kernel { failure, .. })
            if how.recursive && failure.errno() == Errno(libc::EEXIST) =>
        {
            Ok(true)
        }
        Err(cause) => Err(GuixError::Load {
            path: path.to_owned(),
            cause,
        }),
    }
}

/// Load the modules `names` (and what they depend on) from the files under `dir` (Guix's
/// `load-linux-modules-from-directory`), skipping the blacklisted ones.
pub fn load_modules_from_directory(
    kernel: &dyn Kernel,
    names: &[&str],
    dir: &Path,
    blacklist: &[String],
) -> Result<(), GuixError> {
    let lookup = |name: &str| -> Result<PathBuf, GuixError> {
        find_module_file(dir, name)?.ok_or_else(|| GuixError::NotFound {
            name: name.to_owned(),
            dir: dir.to_owned(),
        })
    };
    for name in names {
        let path = lookup(name)?;
        let how = LoadFile {
            recursive: true,
            blacklist,
            lookup: &lookup,
            options: "",
        };
        load_module_file(kernel, &path, &how)?;
    }
    Ok(())
}

/// The names of the loaded modules, in the kernel's order (`/proc/modules`).
pub fn loaded_modules(kernel: &dyn Kernel) -> Result<Vec<String>, modkit_syscalls::Error> {
    Ok(kernel
        .loaded_modules()?
        .into_iter()
        .map(|m| m.name)
        .collect())
}

/// The file of module `name` under `dir` (searched recursively, in file name order): a
/// `.ko`, `.ko.gz`, `.ko.xz` or `.ko.zst` file whose module name is `name`'s, both as kmod
/// normalises them (`-` and `_` the same, a name ending at its first `.`, so a file name such
/// as `usb-storage.ko` finds its file too) (Guix's `find-module-file`).
pub fn find_module_file(dir: &Path, name: &str) -> Result<Option<PathBuf>, crate::Error> {
    let wanted = modname_normalize(name);
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let read = std::fs::read_dir(&dir).map_err(|cause| crate::Error::Io {
            path: dir.clone(),
            cause,
        })?;
        let mut entries: Vec<_> = read.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        let mut subdirs = Vec::new();
        for path in entries {
            if path.is_dir() {
                subdirs.push(path);
            } else if path_ends_with_kmod_ext(&path)
                && path_to_modname(&path).as_ref() == Some(&wanted)
            {
                return Ok(Some(path));
            }
        }
        // Depth-first, in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(None)
}
