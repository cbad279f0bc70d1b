//! `/sys/module`: the kernel's per-module directories (initstate, refcnt, holders/, parameters/)
//! and the kernel's module decompressor (`/sys/module/compression`), under a configurable root.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use modkit_elf::Compression;

use crate::Error;

/// Where a module is in its life, from `/sys/module/NAME/initstate` (kernel/module/sysfs.c).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitState {
    /// `live`: loaded and initialised.
    Live,
    /// `coming`: its init function is running.
    Coming,
    /// `going`: it is being unloaded.
    Going,
    /// Built into the kernel: the directory exists (for parameters) but has no `initstate`.
    Builtin,
    /// Neither: no such module.
    NotLoaded,
    /// A state this code does not know, as the kernel wrote it.
    Unknown(String),
}

/// A `/sys/module` tree (the real one, or a fake one in tests).
#[derive(Debug, Clone)]
pub struct SysModule {
    root: PathBuf,
}

impl Default for SysModule {
    fn default() -> Self {
        SysModule::new("/sys/module")
    }
}

impl SysModule {
    /// The tree rooted at `root` (normally `/sys/module`).
    pub fn new(root: impl Into<PathBuf>) -> SysModule {
        SysModule { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one module.
    pub fn module_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// The one compression the kernel decompresses itself (`/sys/module/compression`, present
    /// with `CONFIG_MODULE_DECOMPRESS`), or `None` when it has none or names one we don't know.
    pub fn compression(&self) -> Result<Option<Compression>, Error> {
        let path = self.root.join("compression");
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        Ok(match text.trim() {
            "xz" => Some(Compression::Xz),
            "zstd" => Some(Compression::Zstd),
            "gzip" => Some(Compression::Gzip),
            _ => None,
        })
    }

    /// The module's state, as kmod's `kmod_module_get_initstate` works it out.
    pub fn initstate(&self, name: &str) -> Result<InitState, Error> {
        let dir = self.module_dir(name);
        match read_optional(&dir.join("initstate"))? {
            Some(text) => Ok(match text.trim() {
                "live" => InitState::Live,
                "coming" => InitState::Coming,
                "going" => InitState::Going,
                other => InitState::Unknown(other.to_owned()),
            }),
            None if dir.is_dir() => Ok(InitState::Builtin),
            None => Ok(InitState::NotLoaded),
        }
    }

    /// The module's reference count (`refcnt`), or `None` when the file is absent (built-in
    /// modules, or a kernel without `CONFIG_MODULE_UNLOAD`).
    pub fn refcnt(&self, name: &str) -> Result<Option<i64>, Error> {
        let path = self.module_dir(name).join("refcnt");
        let Some(text) = read_optional(&path)? else {
            return Ok(None);
        };
        text.trim().parse().map(Some).map_err(|_| Error::Parse {
            path,
            line: 1,
            message: format!("not a number: {:?}", text.trim()),
        })
    }

    /// The modules that use this one (`holders/`), or `None` when the directory is absent.
    ///
    /// In directory order, unsorted: that is the order kmod's lsmod and rmmod print them in.
    pub fn holders(&self, name: &str) -> Result<Option<Vec<String>>, Error> {
        list_optional(&self.module_dir(name).join("holders"))
    }

    /// The module's parameters (`parameters/NAME`) sorted by name, with their values; `None` as
    /// value for one that cannot be read (write-only, or needing privileges).
    pub fn parameters(&self, name: &str) -> Result<Vec<(String, Option<String>)>, Error> {
        let dir = self.module_dir(name).join("parameters");
        let Some(mut names) = list_optional(&dir)? else {
            return Ok(Vec::new());
        };
        names.sort();
        Ok(names
            .into_iter()
            .map(|param| {
                let value = fs::read_to_string(dir.join(&param))
                    .ok()
                    .map(|value| value.strip_suffix('\n').unwrap_or(&value).to_owned());
                (param, value)
            })
            .collect())
    }
}

/// A file's text, `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(cause) => Err(Error::Io {
            path: path.to_owned(),
            cause,
        }),
    }
}

/// The names in a directory, `None` when it does not exist.
fn list_optional(dir: &Path) -> Result<Option<Vec<String>>, Error> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(cause) => {
            return Err(Error::Io {
                path: dir.to_owned(),
                cause,
            });
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|cause| Error::Io {
            path: dir.to_owned(),
            cause,
        })?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(Some(names))
}
