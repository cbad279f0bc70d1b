//! The file-system helpers of depmod, in one place: reading the text inputs of the module
//! directory up front (so ordering, resolving and rendering do no I/O), a file's identity,
//! writing a file through a temporary name and a rename, and clearing the temporaries a killed
//! run left behind.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::diag::Diagnostics;
use crate::error::Error;

/// The workspace's one strerror (`No such file or directory`, without Rust's `(os error N)`).
pub use modkit_syscalls::io_error_text;

/// A text input of the module directory (`modules.order`, `modules.builtin`,
/// `modules.builtin.modinfo`), read before the work starts. A file that cannot be read is a
/// value too: the step that uses it says so, in kmod's words, at kmod's point in the run.
#[derive(Debug)]
pub(crate) struct TextInput {
    name: &'static str,
    module_dir: PathBuf,
    contents: Result<Vec<u8>, String>,
}

impl TextInput {
    /// Read `module_dir/name`, refusing anything but a regular file: a FIFO would block the
    /// run until some writer came along.
    pub(crate) fn read(module_dir: &Path, name: &'static str) -> TextInput {
        TextInput {
            name,
            module_dir: module_dir.to_path_buf(),
            contents: read_regular(&module_dir.join(name)).map_err(|err| io_error_text(&err)),
        }
    }

    /// The module directory it was read from.
    pub(crate) fn module_dir(&self) -> &Path {
        &self.module_dir
    }

    /// Its contents, or a warning (kmod: "could not open NAME at DIR: REASON") and `None`.
    pub(crate) fn get(&self, diag: &mut Diagnostics) -> Option<&[u8]> {
        match &self.contents {
            Ok(bytes) => Some(bytes),
            Err(reason) => {
                diag.warning(format!(
                    "could not open {} at {}: {reason}",
                    self.name,
                    self.module_dir.display()
                ));
                None
            }
        }
    }
}

/// Lines as C's `fgets` gives them (kmod reads its text inputs so): each with its `\n`, the
/// last one possibly without.
pub(crate) fn split_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split_inclusive(|&b| b == b'\n')
}

fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    std::fs::read(path)
}

/// Read a whole file named on the command line (`-F`, `-E`).
pub(crate) fn read_file(path: &Path, what: &'static str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|error| Error::Io {
        path: path.to_path_buf(),
        what,
        error,
    })
}

/// The identity of a file: what the cache keys module files and outputs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_size`.
    pub size: u64,
    /// `st_mtime` in nanoseconds.
    pub mtime_ns: i128,
    /// `st_ctime` in nanoseconds. Only the kernel sets it, so a file rewritten in place with
    /// its inode, size and old mtime (`touch -r`) still shows as changed.
    pub ctime_ns: i128,
}

/// The identity of a file from its metadata.
pub(crate) fn file_key(meta: &Metadata) -> FileKey {
    FileKey {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.size(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
    }
}

/// The identity of the file at `path`, if it can be stat'ed.
pub(crate) fn file_key_of(path: &Path) -> Option<FileKey> {
    std::fs::metadata(path).ok().map(|m| file_key(&m))
}

/// The identity of the file at `path`, or the error naming it.
pub(crate) fn stat(path: &Path) -> Result<FileKey, Error> {
    std::fs::metadata(path)
        .map(|m| file_key(&m))
        .map_err(|error| Error::Io {
            path: path.to_path_buf(),
            what: "could not stat",
            error,
        })
}

/// Create directory `path` and its parents; `what` says what failing was ("could not create").
pub(crate) fn create_dir_all(path: &Path, what: &'static str) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|error| Error::Io {
        path: path.to_path_buf(),
        what,
        error,
    })
}

/// Write `bytes` to `dir/name` through a temporary file renamed into place, so readers (and a
/// killed run) see the old file or the new one, never a partial one: the index crate's
/// [`modkit_index::replace`], without fsync as kmod (see [`modkit_index::Durability::Renamed`]).
pub(crate) fn write_file_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let path = dir.join(name);
    modkit_index::replace(&path, bytes, modkit_index::Durability::Renamed).map_err(
        |err| match err {
            modkit_index::Error::Io {
                path: failed,
                cause,
            } => Error::Io {
                what: if failed == path {
                    "could not rename into"
                } else {
                    "could not write"
                },
                path: failed,
                error: cause,
            },
            other => Error::Io {
                path,
                what: "could not write",
                error: std::io::Error::other(other.to_string()),
            },
        },
    )
}

/// Remove the temporaries killed runs left in `dir`: `.NAME.PID.tmp` where `ours(NAME)` and
/// process PID is gone. Nothing else is touched, never this process's own, and nothing at all
/// when `/proc` is not there to tell which runs are alive.
pub(crate) fn remove_stale_temporaries(dir: &Path, ours: impl Fn(&str) -> bool) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some((name, pid)) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
        else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if ours(name) && pid != std::process::id() && !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temporaries_of_our_files_only() {
        let dir = std::env::temp_dir().join(format!("modkit-io-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A PID no process has (above the kernel's PID_MAX_LIMIT).
        let gone = 4_194_305;
        let names = [
            format!(".modules.dep.{gone}.tmp"),
            format!(".other.{gone}.tmp"),
            format!(".modules.alias.{}.tmp", std::process::id()),
            ".modules.dep.x.tmp".to_owned(),
        ];
        for n in &names {
            std::fs::write(dir.join(n), b"").unwrap();
        }
        remove_stale_temporaries(&dir, |n| n.starts_with("modules."));
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let mut want = names[1..].to_vec();
        want.sort();
        assert_eq!(left, want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("modkit-io-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_file_atomic(&dir, "f", b"one").unwrap();
        write_file_atomic(&dir, "f", b"two").unwrap();
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let err = write_file_atomic(&dir.join("missing"), "f", b"x").unwrap_err();
        assert!(err.to_string().starts_with("could not write "), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
