//! Library functions in the spirit of Guix's `gnu/build/linux-modules.scm`, for system builders
//! that assemble a module directory and want its small databases without a full depmod run:
//! the module-name -> file-name database and the alias and device-node databases.

use std::io::Write as _;
use std::path::Path;

use crate::data::ModuleData;
use crate::error::Error;
use crate::io::write_file_atomic;
use crate::scan::{self, Candidate};

/// One module of a directory: its name, file and what it says.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ModuleEntry {
    /// The module name (from the file name, `-` made `_`).
    pub name: String,
    /// The file name relative to the directory.
    pub file: String,
    /// What the module says.
    pub data: ModuleData,
}

/// Read every module file under `dir` (recursively, all compressions), sorted by file name.
pub fn modules_in(dir: &Path) -> Result<Vec<ModuleEntry>, Error> {
    let mut diag = crate::diag::Diagnostics::default();
    let config = crate::config::default_config();
    let candidates = scan::scan(dir, &config, &mut diag)?;
    let mut entries = Vec::with_capacity(candidates.len());
    for Candidate {
        name,
        path,
        relpath,
    } in candidates
    {
        let file = std::fs::File::open(&path).map_err(|error| Error::Io {
            path: path.clone().into(),
            what: "could not open",
            error,
        })?;
        let meta = file.metadata().map_err(|error| Error::Io {
            path: path.clone().into(),
            what: "could not stat",
            error,
        })?;
        let data = scan::read_module(&file, &meta, Path::new(&path))?;
        entries.push(ModuleEntry {
            name,
            file: relpath.unwrap_or(path),
            data,
        });
    }
    entries.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(entries)
}

/// The module-name -> file-name database (Guix's `modules.name`): one `NAME FILE` line per
/// module, sorted by name.
pub fn module_name_database(modules: &[ModuleEntry]) -> Vec<u8> {
    let mut sorted: Vec<&ModuleEntry> = modules.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.file.cmp(&b.file)));
    let mut out = Vec::with_capacity(modules.len() * 48);
    for m in sorted {
        writeln!(out, "{} {}", m.name, m.file).expect("Vec write");
    }
    out
}

/// The alias database in modules.alias format: `alias PATTERN NAME` for every alias.
pub fn alias_database(modules: &[ModuleEntry]) -> Vec<u8> {
    let mut out = b"# Aliases extracted from modules themselves.\n".to_vec();
    for m in modules {
        for alias in m.data.aliases() {
            writeln!(out, "alias {alias} {}", m.name).expect("Vec write");
        }
    }
    out
}

/// The device-node database in modules.devname format (`NAME DEVNAME cMAJ:MIN`), for modules
/// with both a `devname:` alias and a `char-major-`/`block-major-` alias.
pub fn devname_database(modules: &[ModuleEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in modules {
        if let Some((dev, kind, major, minor)) = m.data.devname() {
            if out.is_empty() {
                out.extend_from_slice(b"# Device nodes to trigger on-demand module loading.\n");
            }
            writeln!(out, "{} {dev} {kind}{major}:{minor}", m.name).expect("Vec write");
        }
    }
    out
}

/// Write `modules.name` into `dir` (atomically).
pub fn write_module_name_database(dir: &Path) -> Result<(), Error> {
    let modules = modules_in(dir)?;
    write_file_atomic(dir, "modules.name", &module_name_database(&modules))
}

/// Write `modules.alias` into `dir` (atomically).
pub fn write_module_alias_database(dir: &Path) -> Result<(), Error> {
    let modules = modules_in(dir)?;
    write_file_atomic(dir, "modules.alias", &alias_database(&modules))
}

/// Write `modules.devname` into `dir` (atomically).
pub fn write_module_device_database(dir: &Path) -> Result<(), Error> {
    let modules = modules_in(dir)?;
    write_file_atomic(dir, "modules.devname", &devname_database(&modules))
}
