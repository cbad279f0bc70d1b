//! `/proc`: the loaded modules (`/proc/modules`, parsed by the `procfs` crate) and the kernel's
//! symbols (`/proc/kallsyms`), under a configurable root.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use procfs::FromRead;

use crate::Error;

/// A module's state in `/proc/modules` (kernel/module/procfs.c `module_flags`/`m_show`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModuleState {
    /// `Live`.
    Live,
    /// `Loading`: its init function is running.
    Loading,
    /// `Unloading`.
    Unloading,
    /// Something else, as the kernel wrote it.
    Other(String),
}

/// One line of `/proc/modules`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModule {
    /// The module name (always with `_`, never `-`).
    pub name: String,
    /// Bytes of memory the module takes.
    pub size: u64,
    /// Its reference count; -1 when the kernel cannot unload modules.
    pub refcount: i64,
    /// The loaded modules that use it (the kernel's own marks `[permanent]`, `[unsafe]` left out).
    pub used_by: Vec<String>,
    /// Its state.
    pub state: ModuleState,
}

/// A `/proc` tree (the real one, or a fake one in tests).
#[derive(Debug, Clone)]
pub struct ProcDir {
    root: PathBuf,
}

impl Default for ProcDir {
    fn default() -> Self {
        ProcDir::new("/proc")
    }
}

impl ProcDir {
    /// The tree rooted at `root` (normally `/proc`).
    pub fn new(root: impl Into<PathBuf>) -> ProcDir {
        ProcDir { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `/proc/modules`.
    pub fn modules_path(&self) -> PathBuf {
        self.root.join("modules")
    }

    /// The loaded modules, in the kernel's order (most recently loaded first).
    pub fn modules(&self) -> Result<Vec<LoadedModule>, Error> {
        let path = self.modules_path();
        let text = fs::read_to_string(&path).map_err(|cause| Error::Io {
            path: path.clone(),
            cause,
        })?;
        parse_modules(&text).map_err(|(line, message)| Error::Parse {
            path,
            line,
            message,
        })
    }

    /// The names in `/proc/kallsyms`, or `None` when it cannot be read. Names are listed even
    /// to unprivileged readers (only the addresses are hidden).
    pub fn kallsyms(&self) -> Option<HashSet<String>> {
        let text = fs::read_to_string(self.root.join("kallsyms")).ok()?;
        Some(
            text.lines()
                .filter_map(|line| line.split_whitespace().nth(2))
                .map(str::to_owned)
                .collect(),
        )
    }
}

/// Parse the text of `/proc/modules`; on error, the 1-based line and what is wrong.
pub fn parse_modules(text: &str) -> Result<Vec<LoadedModule>, (usize, String)> {
    // procfs gives the fields by name but loses the kernel's order, which lsmod keeps; take each
    // line through it on its own so the order and the failing line number survive.
    let mut modules = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = procfs::KernelModules::from_read(line.as_bytes())
            .map_err(|_| (index + 1, format!("malformed line {line:?}")))?;
        let Some(module) = parsed.0.into_values().next() else {
            return Err((index + 1, format!("no module in {line:?}")));
        };
        modules.push(LoadedModule {
            name: module.name,
            size: u64::from(module.size),
            refcount: i64::from(module.refcount),
            used_by: module
                .used_by
                .into_iter()
                .filter(|user| !user.starts_with('['))
                .collect(),
            state: match module.state.as_str() {
                "Live" => ModuleState::Live,
                "Loading" => ModuleState::Loading,
                "Unloading" => ModuleState::Unloading,
                other => ModuleState::Other(other.to_owned()),
            },
        });
    }
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_in_order_without_kernel_marks() {
        let text = "hello_feature 16384 0 - Live 0x0000000000000000 (OE)\n\
                    hello_api 16384 1 hello_feature, Live 0x0000000000000000 (OE)\n\
                    xfs 2236416 2 - Loading 0x0000000000000000\n\
                    fuse 176128 3 [permanent], Live 0x0000000000000000\n\
                    nf_tables 348160 12 nft_chain_nat,nft_ct, Unloading 0xffffffffc0a00000\n";
        let modules = parse_modules(text).unwrap();
        let summary: Vec<_> = modules
            .iter()
            .map(|m| {
                (
                    m.name.as_str(),
                    m.size,
                    m.refcount,
                    m.used_by.join(","),
                    m.state.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("hello_feature", 16384, 0, String::new(), ModuleState::Live),
                (
                    "hello_api",
                    16384,
                    1,
                    "hello_feature".to_owned(),
                    ModuleState::Live
                ),
                ("xfs", 2236416, 2, String::new(), ModuleState::Loading),
                ("fuse", 176128, 3, String::new(), ModuleState::Live),
                (
                    "nf_tables",
                    348160,
                    12,
                    "nft_chain_nat,nft_ct".to_owned(),
                    ModuleState::Unloading
                ),
            ]
        );
    }

    #[test]
    fn empty_file_means_no_modules() {
        assert_eq!(parse_modules(""), Ok(Vec::new()));
    }

    #[test]
    fn a_truncated_line_names_its_line_number() {
        let text = "a 1 0 - Live 0x0\nb 2\n";
        let (line, _) = parse_modules(text).unwrap_err();
        assert_eq!(line, 2);
        // Every prefix of a valid line either parses or fails cleanly.
        let valid = "hello_api 16384 1 hello_feature, Live 0x0000000000000000 (OE)";
        for end in 0..valid.len() {
            let _ = parse_modules(&valid[..end]);
        }
    }
}
