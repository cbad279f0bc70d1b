//! The kernel side of modkit and the only crate that makes module syscalls: loading
//! (`finit_module`/`init_module`), unloading (`delete_module`), and reading what is loaded
//! (`/proc/modules`, `/sys/module`).
//!
//! Everything goes through the [`Kernel`] trait: [`LinuxKernel`] is the running kernel,
//! [`RecordingKernel`] a fake that records calls, so tools are tested without root.
#![deny(unsafe_code)] // One exception: the raw syscalls of `sys`.

mod errno;
mod kernel;
mod proc;
mod recording;
#[allow(
    unsafe_code,
    reason = "the raw syscalls: libc::syscall and memfd_create"
)]
mod sys;
mod sysfs;

use std::path::PathBuf;

pub use errno::{Errno, LoadFailure, UnloadFailure, io_error_text};
pub use kernel::{
    Kernel, LinuxKernel, LoadError, LoadMethod, LoadOptions, MAX_MODULE_SIZE, UnloadError,
    UnloadOptions,
};
pub use modkit_elf::Compression;
pub use proc::{LoadedModule, ModuleState, ProcDir, parse_modules};
pub use recording::{Call, RecordingKernel, Syscall};
pub use sys::{
    MODULE_INIT_COMPRESSED_FILE, MODULE_INIT_IGNORE_MODVERSIONS, MODULE_INIT_IGNORE_VERMAGIC,
};
pub use sysfs::{InitState, SysModule};

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
