//! Errors of the module database, each naming the file it is about.
//!
//! Each variant prints its cause in its message and exposes no `source()`, so a reporter that
//! walks the chain prints every cause once (the `depmod` tool prints the message alone).

use std::path::PathBuf;

/// What can stop depmod.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The system error (printed in the message).
        error: std::io::Error,
    },
    /// A module file is not a readable module.
    #[error("{}: {error}", path.display())]
    Module {
        /// The module file.
        path: PathBuf,
        /// What the ELF reader found (printed in the message).
        error: modkit_elf::Error,
    },
    /// An index could not be built (a key or value that is not 7-bit ASCII).
    #[error("could not write index {name}: {error}")]
    Index {
        /// The index file name.
        name: &'static str,
        /// The reason (printed in the message).
        error: modkit_index::Error,
    },
    /// The module directory cannot be read (kmod: "could not search modules").
    #[error("could not search modules: {reason}")]
    Search {
        /// The directory.
        path: PathBuf,
        /// The system's words for the failure.
        reason: String,
    },
    /// A module path on the command line is relative.
    #[error("{}: not absolute path.", .0.display())]
    NotAbsolute(PathBuf),
    /// Two modules on the command line have the same name.
    #[error("could not add module {}: module {name} given twice", path.display())]
    DuplicateModule {
        /// The second file.
        path: PathBuf,
        /// The shared module name.
        name: String,
    },
    /// Modules depend on each other in a cycle; the messages name every module of each cycle.
    #[error("found {count} modules in dependency cycles")]
    Cycles {
        /// How many modules are in cycles.
        count: usize,
    },
    /// A module file could not be read for want of memory (address space under `ulimit -v`):
    /// the run cannot go on without it.
    #[error("out of memory while reading {}", path.display())]
    OutOfMemory {
        /// The module file.
        path: PathBuf,
    },
    /// The worker threads could not be started (under a tight address-space limit).
    #[error("could not start {count} worker threads: {reason}")]
    Threads {
        /// How many were asked for.
        count: usize,
        /// rayon's words for the failure.
        reason: String,
    },
    /// The cache file is unusable (it is then ignored and rebuilt).
    #[error("{}: corrupt cache ({reason})", path.display())]
    CorruptCache {
        /// The cache file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::path::Path;

    use super::*;

    /// The one rule: the cause is in the message, and not a second time as `source()`.
    #[test]
    fn causes_are_printed_once() {
        let io = || std::io::Error::from(std::io::ErrorKind::NotFound);
        let cases = [
            (
                Error::Io {
                    path: "/m/x".into(),
                    what: "could not read",
                    error: io(),
                },
                format!("could not read /m/x: {}", io()),
            ),
            (
                Error::Module {
                    path: "/m/a.ko".into(),
                    error: modkit_elf::Error::NotElf { found: Vec::new() },
                },
                format!(
                    "/m/a.ko: {}",
                    modkit_elf::Error::NotElf { found: Vec::new() }
                ),
            ),
            (
                Error::Search {
                    path: "/m".into(),
                    reason: "Permission denied".into(),
                },
                "could not search modules: Permission denied".to_owned(),
            ),
            (
                Error::NotAbsolute(Path::new("a.ko").into()),
                "a.ko: not absolute path.".to_owned(),
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
            assert!(err.source().is_none(), "{err} has a source too");
        }
        let mut builder = modkit_index::IndexBuilder::new();
        let index = builder.insert("\u{e9}", "v", 0).unwrap_err();
        let err = Error::Index {
            name: "modules.alias.bin",
            error: index,
        };
        assert!(
            err.to_string()
                .starts_with("could not write index modules.alias.bin: ")
        );
        assert!(err.source().is_none());
    }
}
