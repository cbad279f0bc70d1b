//! The raw module syscalls (and `uname`, `reboot`, `getrlimit`), each a thin `unsafe` wrapper
//! that only passes valid pointers.
//!
//! Numbers and flags: include/uapi/linux/module.h and the syscalls' man pages
//! (finit_module(2), init_module(2), delete_module(2), uname(2), getrlimit(2)).

use std::ffi::CStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};

use crate::errno::Errno;

/// `finit_module` flag: ignore symbol version hashes (`MODULE_INIT_IGNORE_MODVERSIONS`).
pub const MODULE_INIT_IGNORE_MODVERSIONS: u32 = 1;
/// `finit_module` flag: ignore the kernel version magic (`MODULE_INIT_IGNORE_VERMAGIC`).
pub const MODULE_INIT_IGNORE_VERMAGIC: u32 = 2;
/// `finit_module` flag: the file is compressed, the kernel decompresses it
/// (`MODULE_INIT_COMPRESSED_FILE`, Linux 5.17+ with `CONFIG_MODULE_DECOMPRESS`).
pub const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// `finit_module(fd, params, flags)`.
pub fn finit_module(file: &File, params: &CStr, flags: u32) -> Result<(), Errno> {
    // SAFETY: the fd is open for the duration of the call (borrowed from `file`), `params` is a
    // NUL-terminated string that outlives the call, and the kernel only reads through it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            flags as libc::c_int,
        )
    };
    if ret == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// `init_module(image, len, params)`: load a module from memory.
pub fn init_module(image: &[u8], params: &CStr) -> Result<(), Errno> {
    // SAFETY: `image` is a valid readable buffer of exactly `image.len()` bytes and `params` a
    // NUL-terminated string; both outlive the call and the kernel only reads (copies) them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr().cast::<libc::c_void>(),
            image.len() as libc::c_ulong,
            params.as_ptr(),
        )
    };
    if ret == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// `delete_module(name, flags)`: unload the module of that name.
pub fn delete_module(name: &CStr, flags: u32) -> Result<(), Errno> {
    // SAFETY: `name` is a NUL-terminated string that outlives the call; the kernel only reads it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_delete_module,
            name.as_ptr(),
            flags as libc::c_uint,
        )
    };
    if ret == 0 { Ok(()) } else { Err(Errno::last()) }
}

/// The `release` field of `uname(2)`: the running kernel's release, as `uname -r` prints it.
pub fn uname_release() -> Result<String, Errno> {
    // SAFETY: `utsname` is arrays of `c_char` only, for which all-zero bytes are a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable `utsname` that outlives the call; uname only writes
    // into it.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return Err(Errno::last());
    }
    // The kernel NUL-terminates each field within its array; stop at the end regardless.
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    Ok(String::from_utf8_lossy(&release).into_owned())
}

/// The process's address-space limit in bytes (`RLIMIT_AS`, what `ulimit -v` sets), or `None`
/// when there is none (or it cannot be read): what a tool sizes its threads and allocator to.
pub fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` that outlives the call; getrlimit only
    // writes into it.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) } != 0 {
        return None;
    }
    (limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// Flushes the file systems and powers the machine off (`sync(2)`, then
/// `reboot(RB_POWER_OFF)`): what an initramfs `/init` or a test guest, as PID 1, does at the
/// end, since PID 1 must never exit (the kernel would panic). Returns only when the kernel
/// refuses (not PID 1 or without `CAP_SYS_BOOT`), with its errno.
pub fn power_off() -> Errno {
    // SAFETY: sync and reboot take no pointers; reboot returns only on failure.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    Errno::last()
}

/// The whole of `file` mapped read-only, as kmod maps a module file for `init_module`: the
/// kernel copies the image, so a page is read only when the kernel gets that far (one without
/// module support refuses before touching any), and nothing is copied here first.
pub fn map_file(file: &File) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private, but pages not yet copied still show the file:
    // a module file rewritten in place while it is loaded gives the kernel (or the
    // decompressor) changing bytes, which the kernel's own checks of the image then judge,
    // and one truncated under the mapping raises SIGBUS on the next access past its new end
    // (kmod maps module files the same way and dies the same way). Module files are
    // installed under a new name and renamed, never rewritten in place.
    unsafe { memmap2::Mmap::map(file) }
}

/// An anonymous in-memory file holding `bytes`, so `finit_module` can load a module that was
/// decompressed in user space while keeping its flags (which `init_module` has no room for).
pub fn memfd_with(bytes: &[u8]) -> Result<File, Errno> {
    // SAFETY: the name is a NUL-terminated literal; memfd_create returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"modkit-module".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: `fd` was just created, is valid, and nothing else owns it.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(bytes).map_err(|err| Errno::from_io(&err))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};

    #[test]
    fn uname_release_is_the_kernels() {
        let release = uname_release().unwrap();
        assert!(!release.is_empty());
        // Linux keeps the same text in /proc, when /proc is mounted (it is where tests run).
        let proc = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(release, proc.trim_end());
    }

    #[test]
    fn memfd_holds_the_bytes() {
        let mut file = memfd_with(b"\x7fELF and more").unwrap();
        file.rewind().unwrap();
        let mut back = Vec::new();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"\x7fELF and more");
    }
}
