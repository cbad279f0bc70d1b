//! Errors, each naming the path it is about.

use std::io;
use std::path::PathBuf;

/// What went wrong reading sysfs, `/dev` or a `pci.ids` file.
///
/// Each message is whole: a variant's cause is printed in it and not returned again by
/// `source()`, so `{err}` and a reporter that walks `source()` (anyhow's `{err:#}`) both
/// print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// A path, or an attribute a device must have, does not exist.
    #[error("{}: no such file or directory", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// Too many symbolic links while resolving a path: a loop.
    #[error("{}: too many levels of symbolic links", path.display())]
    SymlinkLoop {
        /// The path being resolved.
        path: PathBuf,
    },
    /// A symbolic link points out of the sysfs root.
    #[error("{}: symbolic link to {} leaves the sysfs root", path.display(), target.display())]
    OutsideRoot {
        /// The link.
        path: PathBuf,
        /// Where it points.
        target: PathBuf,
    },
    /// A path nests deeper than any real device does.
    #[error("{}: nested deeper than {max} levels", path.display())]
    TooDeep {
        /// The path.
        path: PathBuf,
        /// The limit.
        max: usize,
    },
    /// The file is not a block or character device node.
    #[error("{}: not a block or character device", path.display())]
    NotADeviceNode {
        /// The path.
        path: PathBuf,
    },
    /// The path resolves to something outside `/sys/devices`.
    #[error("{}: not a device directory under devices/", path.display())]
    NotADevice {
        /// The path.
        path: PathBuf,
    },
    /// A file's content is not what the kernel writes there.
    #[error("{}:{line}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path`, as `NotFound` when it is one.
    pub(crate) fn io(path: impl Into<PathBuf>, cause: io::Error) -> Error {
        let path = path.into();
        if cause.kind() == io::ErrorKind::NotFound {
            Error::NotFound { path }
        } else {
            Error::Io { path, cause }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::Error;

    #[test]
    fn a_cause_is_printed_in_the_message_not_returned_as_source() {
        let err = Error::io("devices/x/uevent", std::io::Error::other("disk on fire"));
        assert_eq!(err.to_string(), "devices/x/uevent: disk on fire");
        assert!(err.source().is_none());
    }
}
