//! kmod's configuration — modprobe.d, depmod.d and the kernel command line — parsed exactly
//! as kmod 30 parses it.
//!
//! The parsers take a file's text and its name (for warnings) and do no I/O; thin loaders
//! read kmod's directories. A line kmod would reject becomes a [`Warning`] naming the file and
//! line in kmod's words, and parsing goes on.
//!
//! - [`modprobe`]: modprobe.d, the kernel command line and `modprobe -c`'s configuration
//!   dump.
//! - [`depmod`]: depmod.d (`search`, `override`, `external`, `exclude`).
#![forbid(unsafe_code)]

pub mod depmod;
mod ere;
mod files;
mod lines;
pub mod modprobe;
mod warning;

pub use warning::Warning;
