//! The configuration files kmod reads from a list of directories (or single files): `*.conf`
//! sorted by file name across all of them, the first file of a name winning.
//!
//! This mirrors `conf_files_list` in kmod's libkmod-config.c and `cfg_files_list` in
//! tools/depmod.c. It is the only part of the crate that touches the file system.

use std::path::{Path, PathBuf};

use crate::Warning;

/// Which file names a tool accepts in its directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accept {
    /// depmod: `*.conf` only.
    Conf,
    /// libkmod (modprobe): `*.conf`, and also `*.alias` as kmod 30 does.
    ConfOrAlias,
}

impl Accept {
    fn accepts(self, name: &str) -> bool {
        if name.starts_with('.') {
            return false;
        }
        let len = name.len();
        let conf = len >= 6 && name.ends_with(".conf");
        match self {
            Accept::Conf => conf,
            Accept::ConfOrAlias => conf || (len >= 6 && name.ends_with(".alias")),
        }
    }
}

/// Lists the files to parse, in parse order, with kmod's sorting and overriding.
///
/// A path that is a regular file is taken as it is (named by its base name for sorting and
/// overriding); a path that is a directory contributes its accepted entries; a path that does
/// not exist is skipped silently, as kmod does.
pub(crate) fn list(paths: &[PathBuf], accept: Accept, warnings: &mut Vec<Warning>) -> Vec<PathBuf> {
    // (name, full path), kept sorted by name (byte order, like strcmp).
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut insert = |name: String, path: PathBuf| {
        if let Err(pos) = files.binary_search_by(|(n, _)| n.as_bytes().cmp(name.as_bytes())) {
            files.insert(pos, (name, path));
        }
    };
    for dir in paths {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        if !meta.is_dir() {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            insert(name, dir.clone());
            continue;
        }
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(cause) => {
                warnings.push(Warning::Read {
                    path: dir.clone(),
                    cause,
                });
                continue;
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !accept.accepts(&name) {
                continue;
            }
            let path = dir.join(&name);
            if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                warnings.push(Warning::NestedDirectory { path });
                continue;
            }
            insert(name, path);
        }
    }
    files.into_iter().map(|(_, p)| p).collect()
}

/// Reads each listed file and hands its text to `parse`; unreadable files become warnings.
pub(crate) fn parse_all(
    files: &[PathBuf],
    warnings: &mut Vec<Warning>,
    mut parse: impl FnMut(&str, &Path, &mut Vec<Warning>),
) {
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => parse(&String::from_utf8_lossy(&bytes), file, warnings),
            Err(cause) => warnings.push(Warning::Read {
                path: file.clone(),
                cause,
            }),
        }
    }
}
