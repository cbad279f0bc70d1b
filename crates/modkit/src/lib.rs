//! modkit: find, describe, load and unload Linux kernel modules the way kmod does, in one
//! dependency.
//!
//! The pieces are their own crates, re-exported here: [`elf`] (module files), [`index`] (kmod's
//! `.bin` indexes), [`config`] (modprobe.d, the kernel command line), [`syscalls`] (the kernel,
//! behind the [`Kernel`] trait), [`depgraph`] (depmod: modules.dep and the indexes, written as
//! kmod writes them), [`sysfs`] (devices and their modaliases), [`glob`] (kmod's patterns and
//! name rules), [`cpio`] (initramfs archives). On top of them this crate has what `modprobe` does:
//!
//! - [`Context`]: a module directory (`ROOT/lib/modules/VERSION`), its configuration
//!   ([`ConfigFiles`]: kmod's, a root's, given files or none) and its indexes, opened lazily
//!   and once ([`Context::open`] says when the directory is missing or unreadable); [`Context::lookup`] resolves a name, alias or symbol in
//!   kmod's order (configured aliases, modules.dep, symbols, install/remove commands, alias
//!   patterns, built-in modules, aliases of built-in modules).
//! - [`probe`]: load a module with its dependencies, soft dependencies, options and install
//!   commands, honouring the blacklist, already-loaded and built-in modules as kmod 30 does.
//! - [`remove`]: unload a module, its unused dependencies and soft dependencies, and with
//!   `--remove-holders` the modules that use it.
//! - [`guix`]: the operations of Guix's `(gnu build linux-modules)`: load a module file and
//!   what it depends on, load modules by name from a directory, list loaded modules, find a
//!   module file by name.
//! - [`devices`]: which modules a device needs (its modaliases from sysfs, looked up in
//!   kmod's order, with their dependencies), which of them are missing from a given list, and
//!   the text `modules.alias` as Guix reads it.
//! - [`coldplug`]: plan and carry out loading what every present device needs, skipping
//!   blacklisted, built-in and loaded modules, independent modules loaded side by side.
//! - [`initramfs`]: the modules, firmware and configuration an initramfs needs for a set of
//!   devices, modules and filesystems, and the image itself.
//! - [`missing_symbols`]: which symbols a module file needs that the kernel lacks, and which
//!   modules export them ([`Context::exporters_of`]): insmod's hint after kmod's "Unknown
//!   symbol in module".
//! - [`check`]: would a target kernel (its `Module.symvers` and module directory) accept a
//!   module, and if not why, in the kernel's words with the errno `insmod` would get.
//! - [`name`]: kmod's rules for module names and module file names (modkit-glob's).
//!
//! Every decision takes a [`Kernel`], so tests run the whole logic against a
//! [`syscalls::RecordingKernel`] over fake trees. What kmod prints goes through a [`Reporter`];
//! install and remove commands run through a [`CommandRunner`].
//!
//! One deliberate difference from kmod 30: every `softdep` line that matches a module is
//! honoured (kmod uses only the first), in configuration order.
#![deny(unsafe_code)] // One exception: mapping a module file in `info::ModuleFile::open`.

pub mod check;
pub mod coldplug;
mod context;
pub mod devices;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod fixtures;
pub mod guix;
mod indexes;
mod info;
pub mod initramfs;
mod missing;
mod probe;
mod remove;
mod report;

use std::path::PathBuf;

pub use modkit_config as config;
pub use modkit_cpio as cpio;
pub use modkit_depgraph as depgraph;
pub use modkit_elf as elf;
pub use modkit_glob as glob;
pub use modkit_glob::name;
pub use modkit_index as index;
pub use modkit_syscalls as syscalls;
pub use modkit_syscalls::Kernel;
pub use modkit_sysfs as sysfs;

pub use context::{
    ConfigFiles, Context, MODULE_DIRECTORY, ModId, ModuleRef, SoftDeps, module_dir, module_dir_in,
};
pub use info::{Info, SymbolCrc, builtin_info, file_exports, file_info, file_versions};
pub use missing::{Exporter, MissingSymbols, missing_symbols};
pub use probe::{Blacklist, ProbeOptions, ProbeOutcome, probe};
pub use remove::{RemoveOptions, remove};
pub use report::{CommandRunner, Level, Recorder, Reporter, ShellRunner};

/// Why something could not be done. The kernel's refusals are not errors of this type: they
/// are reported as kmod reports them and give a non-zero status.
///
/// Each message is whole: a variant's cause is printed in it and not returned again by
/// `source()`, so `{err}` and a reporter that walks `source()` (anyhow's `{err:#}`) both
/// print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("could not read {}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// An index file is corrupt.
    #[error("{}: {cause}", path.display())]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        cause: modkit_index::Error,
    },
    /// A module file could not be decompressed or parsed.
    #[error("{}: {cause}", path.display())]
    Elf {
        /// The module file.
        path: PathBuf,
        /// What is wrong.
        cause: modkit_elf::Error,
    },
    /// A device could not be found or read in sysfs.
    #[error(transparent)]
    Sysfs(#[from] modkit_sysfs::Error),
    /// A module file has no `.modinfo` section.
    #[error("{} has no .modinfo section", path.display())]
    NoModinfo {
        /// The module file.
        path: PathBuf,
    },
    /// The module directory is missing, is not a directory or cannot be read.
    #[error("could not open module directory {}: {}", path.display(), syscalls::io_error_text(.cause))]
    ModuleDir {
        /// The module directory.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

impl Error {
    /// The `strerror` text kmod would show for this error.
    pub fn errno_text(&self) -> String {
        match self {
            Error::Io { cause, .. } | Error::ModuleDir { cause, .. } => {
                syscalls::Errno::from_io(cause).strerror()
            }
            // kmod 30 fails on a module without .modinfo with ENOENT.
            Error::NoModinfo { .. } => syscalls::Errno(libc::ENOENT).strerror(),
            // libkmod: a file that is no ELF (nor compressed) is ENOEXEC; a short file, a
            // broken compressed stream or a malformed ELF is EINVAL.
            Error::Elf {
                cause: modkit_elf::Error::NotElf { .. },
                ..
            }
            | Error::Index { .. } => syscalls::Errno(libc::ENOEXEC).strerror(),
            Error::Elf { .. } => syscalls::Errno(libc::EINVAL).strerror(),
            Error::Sysfs(_) => syscalls::Errno(libc::ENODEV).strerror(),
        }
    }

    /// What exactly went wrong, without the errno text of [`Error::errno_text`].
    pub fn detail(&self) -> String {
        match self {
            Error::Io { path, .. } => format!("could not read {}", path.display()),
            Error::ModuleDir { path, .. } => {
                format!("could not open module directory {}", path.display())
            }
            other => other.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::path::Path;

    use super::Error;
    use crate::guix::GuixError;

    #[test]
    fn a_cause_is_printed_in_the_message_not_returned_as_source() {
        let path = Path::new("/m/x.ko");
        let cases = [
            (
                Error::Io {
                    path: path.into(),
                    cause: std::io::Error::other("disk on fire"),
                },
                "could not read /m/x.ko: disk on fire",
            ),
            (
                Error::Index {
                    path: "/m/modules.dep.bin".into(),
                    cause: modkit_index::Error::TooShort { len: 3 },
                },
                "/m/modules.dep.bin: index is 3 bytes, shorter than its 12-byte header",
            ),
            (
                Error::Elf {
                    path: path.into(),
                    cause: modkit_elf::Error::MissingSection(".symtab"),
                },
                "/m/x.ko: module has no .symtab section",
            ),
            (
                Error::ModuleDir {
                    path: "/m".into(),
                    cause: std::io::Error::from_raw_os_error(libc::ENOENT),
                },
                "could not open module directory /m: No such file or directory",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
            assert!(err.source().is_none(), "{message}");
        }
        let err = GuixError::Load {
            path: path.into(),
            cause: crate::syscalls::LoadError::Params { path: path.into() },
        };
        assert_eq!(
            err.to_string(),
            "could not load /m/x.ko: parameters for /m/x.ko contain a NUL byte"
        );
        assert!(err.source().is_none());
    }
}
