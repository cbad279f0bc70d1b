//! Errors of the module database, each naming the file it is about.

use std::path::PathBuf;

/// What can stop depmod.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The system error.
        source: std::io::Error,
    },
    /// A module file is not a readable module.
    #[error("{}: {source}", path.display())]
    Module {
        /// The module file.
        path: PathBuf,
        /// What the ELF reader found.
        source: modkit_elf::Error,
    },
    /// An index could not be built (a key or value that is not 7-bit ASCII).
    #[error("could not write index {name}: {source}")]
    Index {
        /// The index file name.
        name: &'static str,
        /// The reason.
        source: modkit_index::Error,
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
    /// The cache file is unusable (it is then ignored and rebuilt).
    #[error("{}: corrupt cache ({reason})", path.display())]
    CorruptCache {
        /// The cache file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
}
