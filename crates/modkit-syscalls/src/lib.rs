//! The kernel side of modkit and the only crate that makes module syscalls: loading
//! (`finit_module`/`init_module`), unloading (`delete_module`), and reading what is loaded
//! (`/proc/modules`, `/sys/module`).
//!
//! Everything goes through the [`Kernel`] trait: [`LinuxKernel`] is the running kernel,
//! [`RecordingKernel`] a fake that records calls, so tools are tested without root
//! ([`LockedKernel`] shares it between threads). [`kernel_release`] is the running kernel's
//! release for every tool.
#![deny(unsafe_code)] // One exception: the raw syscalls of `sys`.

mod errno;
mod kernel;
mod locked;
mod proc;
mod recording;
#[allow(
    unsafe_code,
    reason = "the raw syscalls: libc::syscall, memfd_create, uname, reboot"
)]
mod sys;
mod sysfs;

use std::path::PathBuf;

pub use errno::{Errno, LoadFailure, UnloadFailure, io_error_text, libkmod_remove_error};
pub use kernel::{
    Kernel, LinuxKernel, LoadError, LoadMethod, LoadOptions, MAX_MODULE_SIZE, UnloadError,
    UnloadOptions,
};
pub use locked::LockedKernel;
pub use modkit_elf::Compression;
pub use proc::{LoadedModule, ModuleState, ProcDir, parse_modules};
pub use recording::{Call, RecordingKernel, Syscall};
pub use sys::{
    MODULE_INIT_COMPRESSED_FILE, MODULE_INIT_IGNORE_MODVERSIONS, MODULE_INIT_IGNORE_VERMAGIC,
    address_space_limit, power_off,
};
pub use sysfs::{InitState, SysModule};

/// The running kernel's release, as `uname -r` prints it (`6.1.0-28-amd64`): from `uname(2)`, as
/// kmod takes it, so it works before `/proc` is mounted (an initramfs runs the tools first).
pub fn kernel_release() -> Result<String, Errno> {
    sys::uname_release()
}

/// An error reading the kernel's trees.
///
/// Each message is whole: a variant's cause is printed in it and not returned again by
/// `source()`, so `{err}` and a reporter that walks `source()` (anyhow's `{err:#}`) both
/// print it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read.
    #[error("could not read {}: {cause}", path.display())]
    Io {
        /// What was read.
        path: PathBuf,
        /// Why it failed.
        cause: std::io::Error,
    },
    /// A file did not say what the kernel writes there.
    #[error("{}:{line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::path::Path;

    use super::{Error, LoadError};

    #[test]
    fn a_cause_is_printed_in_the_message_not_returned_as_source() {
        let err = Error::Io {
            path: "/proc/modules".into(),
            cause: std::io::Error::other("disk on fire"),
        };
        assert_eq!(
            err.to_string(),
            "could not read /proc/modules: disk on fire"
        );
        assert!(err.source().is_none());

        let path = Path::new("/m.ko");
        let cases = [
            (
                LoadError::Open {
                    path: path.into(),
                    cause: std::io::Error::from_raw_os_error(libc::ENOENT),
                },
                "could not open /m.ko: No such file or directory",
            ),
            (
                LoadError::Read {
                    path: path.into(),
                    cause: std::io::Error::other("disk on fire"),
                },
                "could not read /m.ko: disk on fire",
            ),
            (
                LoadError::Decompress {
                    path: path.into(),
                    cause: modkit_elf::Error::MissingSection(".symtab"),
                },
                "could not decompress /m.ko: module has no .symtab section",
            ),
        ];
        for (err, message) in cases {
            assert_eq!(err.to_string(), message);
            assert!(err.source().is_none(), "{message}");
        }
    }
}
