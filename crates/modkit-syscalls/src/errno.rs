//! Kernel error numbers and what they mean for loading and unloading a module.
//!
//! The wording follows kmod: `insmod` prints its own text for the four errnos whose libc text
//! misleads (tools/insmod.c `mod_strerror`) and `strerror` for the rest; `rmmod` prints
//! `strerror` (tools/rmmod.c).

use std::fmt;
use std::io;

/// A raw `errno` value returned by a syscall.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// The errno of the last failed libc call on this thread.
    pub fn last() -> Errno {
        Errno(
            io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO),
        )
    }

    /// The errno behind an I/O error (`EIO` for one that carries none).
    pub fn from_io(err: &io::Error) -> Errno {
        Errno(err.raw_os_error().unwrap_or(libc::EIO))
    }

    /// The C library's text for this errno (`strerror`), e.g. `File exists`.
    pub fn strerror(self) -> String {
        io_error_text(&io::Error::from_raw_os_error(self.0))
    }
}

/// The text of an I/O error as C's `strerror(errno)` and `%m` print it (`No such file or
/// directory`), the workspace's one strerror: std renders an OS error as `TEXT (os error N)`,
/// TEXT being `strerror_r`'s; this keeps TEXT. An error that carries no errno (made with
/// `io::Error::new`) gives its own message.
pub fn io_error_text(err: &io::Error) -> String {
    let text = err.to_string();
    let Some(code) = err.raw_os_error() else {
        return text;
    };
    match text.strip_suffix(&format!(" (os error {code})")) {
        Some(strerror) => strerror.to_owned(),
        None => text,
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({}: {})", self.0, self.strerror())
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.strerror())
    }
}

impl From<Errno> for io::Error {
    fn from(errno: Errno) -> io::Error {
        io::Error::from_raw_os_error(errno.0)
    }
}

/// Why the kernel refused to load a module (`finit_module`/`init_module`), by errno.
///
/// Meanings from the kernel's kernel/module/main.c; `Display` is kmod's insmod wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LoadFailure {
    /// `ENOENT`: the module needs a symbol that no loaded module or the kernel exports.
    UnknownSymbol,
    /// `EEXIST`: a module of this name is already loaded (or being loaded).
    AlreadyLoaded,
    /// `ENOEXEC`: not a module for this kernel (bad ELF, wrong arch, vermagic mismatch).
    InvalidFormat,
    /// `ESRCH`: a symbol's CRC (modversions) does not match the kernel's.
    WrongSymbolVersion,
    /// `EINVAL`: bad module parameters (or a malformed module).
    InvalidParameters,
    /// `EKEYREJECTED`: the module signature does not verify.
    KeyRejected,
    /// `ENOKEY`: the module is unsigned or signed by an unknown key and signatures are enforced.
    KeyRequired,
    /// `EPERM`: no `CAP_SYS_MODULE`, module loading disabled, or lockdown.
    NotPermitted,
    /// `EBUSY`: a module of this name is still initialising or unloading.
    Busy,
    /// `ENOMEM`: the kernel ran out of memory loading it.
    OutOfMemory,
    /// `EOPNOTSUPP`: the kernel cannot decompress this module itself.
    CompressionNotSupported,
    /// `ENOSYS`: the syscall does not exist on this kernel.
    NotImplemented,
    /// Any other errno: see its `strerror`.
    Other(Errno),
}

impl LoadFailure {
    /// Classify an errno returned by `finit_module`/`init_module`.
    pub fn from_errno(errno: Errno) -> LoadFailure {
        match errno.0 {
            libc::ENOENT => LoadFailure::UnknownSymbol,
            libc::EEXIST => LoadFailure::AlreadyLoaded,
            libc::ENOEXEC => LoadFailure::InvalidFormat,
            libc::ESRCH => LoadFailure::WrongSymbolVersion,
            libc::EINVAL => LoadFailure::InvalidParameters,
            libc::EKEYREJECTED => LoadFailure::KeyRejected,
            libc::ENOKEY => LoadFailure::KeyRequired,
            libc::EPERM => LoadFailure::NotPermitted,
            libc::EBUSY => LoadFailure::Busy,
            libc::ENOMEM => LoadFailure::OutOfMemory,
            libc::EOPNOTSUPP => LoadFailure::CompressionNotSupported,
            libc::ENOSYS => LoadFailure::NotImplemented,
            _ => LoadFailure::Other(errno),
        }
    }

    /// The errno this failure stands for.
    pub fn errno(self) -> Errno {
        Errno(match self {
            LoadFailure::UnknownSymbol => libc::ENOENT,
            LoadFailure::AlreadyLoaded => libc::EEXIST,
            LoadFailure::InvalidFormat => libc::ENOEXEC,
            LoadFailure::WrongSymbolVersion => libc::ESRCH,
            LoadFailure::InvalidParameters => libc::EINVAL,
            LoadFailure::KeyRejected => libc::EKEYREJECTED,
            LoadFailure::KeyRequired => libc::ENOKEY,
            LoadFailure::NotPermitted => libc::EPERM,
            LoadFailure::Busy => libc::EBUSY,
            LoadFailure::OutOfMemory => libc::ENOMEM,
            LoadFailure::CompressionNotSupported => libc::EOPNOTSUPP,
            LoadFailure::NotImplemented => libc::ENOSYS,
            LoadFailure::Other(errno) => return errno,
        })
    }

    /// kmod's `insmod` text for this failure (`mod_strerror` in tools/insmod.c).
    pub fn kmod_message(self) -> String {
        match self {
            LoadFailure::InvalidFormat => "Invalid module format".to_owned(),
            LoadFailure::UnknownSymbol => "Unknown symbol in module".to_owned(),
            LoadFailure::WrongSymbolVersion => "Module has wrong symbol version".to_owned(),
            LoadFailure::InvalidParameters => "Invalid parameters".to_owned(),
            other => other.errno().strerror(),
        }
    }
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kmod_message())
    }
}

/// Why the kernel refused to unload a module (`delete_module`), by errno.
///
/// Meanings from the kernel's `delete_module` (kernel/module/main.c); `Display` is `strerror`,
/// as kmod's rmmod prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnloadFailure {
    /// `ENOENT`: no module of this name is loaded.
    NotLoaded,
    /// `EWOULDBLOCK`/`EAGAIN`: other modules use it, or its reference count is not zero.
    InUse,
    /// `EBUSY`: it is still initialising or already unloading, or it has no exit function.
    Busy,
    /// `EPERM`: no `CAP_SYS_MODULE`, or module unloading is disabled.
    NotPermitted,
    /// Any other errno: see its `strerror`.
    Other(Errno),
}

impl UnloadFailure {
    /// Classify an errno returned by `delete_module`.
    pub fn from_errno(errno: Errno) -> UnloadFailure {
        match errno.0 {
            libc::ENOENT => UnloadFailure::NotLoaded,
            libc::EAGAIN => UnloadFailure::InUse,
            libc::EBUSY => UnloadFailure::Busy,
            libc::EPERM => UnloadFailure::NotPermitted,
            _ => UnloadFailure::Other(errno),
        }
    }

    /// The errno this failure stands for.
    pub fn errno(self) -> Errno {
        Errno(match self {
            UnloadFailure::NotLoaded => libc::ENOENT,
            UnloadFailure::InUse => libc::EAGAIN,
            UnloadFailure::Busy => libc::EBUSY,
            UnloadFailure::NotPermitted => libc::EPERM,
            UnloadFailure::Other(errno) => return errno,
        })
    }
}

/// The line libkmod 30 logs when `delete_module` fails, before the tool's own message
/// (`kmod_module_remove_module`'s `ERR`, which prints its source location): rmmod and
/// `modprobe -r` show both, as `TOOL: ERROR: ` and this.
pub fn libkmod_remove_error(name: &str, errno: Errno) -> String {
    format!(
        "../libkmod/libkmod-module.c:856 kmod_module_remove_module() could not remove '{name}': {}",
        errno.strerror()
    )
}

impl fmt::Display for UnloadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.errno().strerror())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_read_as_c_prints_them() {
        let enoent = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(io_error_text(&enoent), "No such file or directory");
        let custom = io::Error::new(io::ErrorKind::InvalidInput, "not a regular file");
        assert_eq!(io_error_text(&custom), "not a regular file");
        let kind_only = io::Error::from(io::ErrorKind::FileTooLarge);
        assert_eq!(io_error_text(&kind_only), kind_only.to_string());
    }

    #[test]
    fn strerror_is_the_bare_libc_text() {
        assert_eq!(Errno(libc::EEXIST).strerror(), "File exists");
        assert_eq!(Errno(libc::EPERM).strerror(), "Operation not permitted");
        assert_eq!(
            Errno(libc::EKEYREJECTED).strerror(),
            "Key was rejected by service"
        );
        assert_eq!(Errno(libc::ENOKEY).strerror(), "Required key not available");
        assert_eq!(
            format!("{:?}", Errno(libc::ENOENT)),
            "Errno(2: No such file or directory)"
        );
    }

    #[test]
    fn load_failures_use_kmod_insmod_wording() {
        let cases = [
            (libc::ENOENT, "Unknown symbol in module"),
            (libc::EEXIST, "File exists"),
            (libc::ENOEXEC, "Invalid module format"),
            (libc::ESRCH, "Module has wrong symbol version"),
            (libc::EINVAL, "Invalid parameters"),
            (libc::EKEYREJECTED, "Key was rejected by service"),
            (libc::ENOKEY, "Required key not available"),
            (libc::EPERM, "Operation not permitted"),
            (libc::EBUSY, "Device or resource busy"),
            (libc::ENOMEM, "Cannot allocate memory"),
            (libc::EOPNOTSUPP, "Operation not supported"),
            (libc::ENOSYS, "Function not implemented"),
            (libc::EFAULT, "Bad address"),
        ];
        for (errno, text) in cases {
            let failure = LoadFailure::from_errno(Errno(errno));
            assert_eq!(failure.to_string(), text, "errno {errno}");
            assert_eq!(failure.errno(), Errno(errno), "round trip of errno {errno}");
        }
        assert_eq!(
            LoadFailure::from_errno(Errno(libc::ENOENT)),
            LoadFailure::UnknownSymbol
        );
        assert_eq!(
            LoadFailure::from_errno(Errno(libc::EFAULT)),
            LoadFailure::Other(Errno(libc::EFAULT))
        );
    }

    #[test]
    fn unload_failures_use_strerror() {
        let cases = [
            (
                libc::ENOENT,
                UnloadFailure::NotLoaded,
                "No such file or directory",
            ),
            (
                libc::EAGAIN,
                UnloadFailure::InUse,
                "Resource temporarily unavailable",
            ),
            (libc::EBUSY, UnloadFailure::Busy, "Device or resource busy"),
            (
                libc::EPERM,
                UnloadFailure::NotPermitted,
                "Operation not permitted",
            ),
            (
                libc::EFAULT,
                UnloadFailure::Other(Errno(libc::EFAULT)),
                "Bad address",
            ),
        ];
        for (errno, kind, text) in cases {
            assert_eq!(UnloadFailure::from_errno(Errno(errno)), kind);
            assert_eq!(kind.errno(), Errno(errno));
            assert_eq!(kind.to_string(), text);
        }
    }
}
