//! Running out of memory, for every tool: under an address-space limit (`ulimit -v`) glibc's
//! malloc keeps one heap for all threads, and an allocation that fails ends the tool with one
//! line, `TOOL: ERROR: out of memory while WHAT (allocating N bytes)`, and exit status 1,
//! where Rust would abort ("memory allocation of N bytes failed", SIGABRT).
//!
//! The line is written from a stack buffer in one `write(2)`: nothing may allocate once an
//! allocation has failed, so it cannot go through `common::report`. Files being written are
//! safe: every index goes to a temporary name and is renamed into place only when whole.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::common::Level;

/// The tool's name (a `&'static` from the dispatch table), once dispatched.
static TOOL: AtomicPtr<&'static str> = AtomicPtr::new(ptr::null_mut());
/// What the tool is doing (`reading modules`), as its phases say.
static ACTIVITY: AtomicPtr<&'static str> = AtomicPtr::new(ptr::null_mut());

/// The tool the out-of-memory line names (`modkit` until this is called).
pub(crate) fn set_tool(name: &'static &'static str) {
    TOOL.store(ptr::from_ref(name).cast_mut(), Ordering::Release);
}

/// What the tool is doing from now on, for the out-of-memory line (`&"reading modules"`).
pub(crate) fn doing(what: &'static &'static str) {
    ACTIVITY.store(ptr::from_ref(what).cast_mut(), Ordering::Release);
}

/// The text stored in `slot`, if any.
#[allow(
    unsafe_code,
    reason = "reading back a pointer that only `set_tool` and `doing` store"
)]
fn load(slot: &AtomicPtr<&'static str>) -> Option<&'static str> {
    // SAFETY: the slot holds null or a pointer made from a `&'static &'static str` (the only
    // stores are in `set_tool` and `doing`), which stays valid and unchanged for ever.
    unsafe { slot.load(Ordering::Acquire).as_ref().copied() }
}

/// Under an address-space limit, one malloc arena for all threads. glibc gives each thread
/// that meets a locked heap an arena of its own (up to 8 per CPU), each reserving 64 MiB of
/// address space (128 MiB while it is being aligned): with two worker threads, depmod needed
/// over 128 MiB of address space for under 40 MiB of memory. Without a limit nothing changes.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code, reason = "mallopt(3) has no safe wrapper")]
pub fn fit_address_space_limit() {
    if modkit::syscalls::address_space_limit().is_some() {
        // SAFETY: mallopt takes no pointers; M_ARENA_MAX only bounds the arenas malloc creates
        // from now on. It runs first thing in `main`, before any other thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Other C libraries have no per-thread arenas to limit.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn fit_address_space_limit() {}

/// The system allocator, ending the tool with one clear line when it has no memory to give:
/// the binary's `#[global_allocator]` (main.rs).
#[derive(Debug)]
pub struct Allocator;

#[allow(
    unsafe_code,
    reason = "GlobalAlloc is an unsafe trait; every method passes its arguments to System's"
)]
// SAFETY: each method hands its arguments, under the caller's guarantees, to the same method
// of `System` and returns what it returns; a null return never comes back (the process ends).
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `alloc` are System's.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator, that is from System; the rest is the
        // caller's guarantee.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from System.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The out-of-memory line for a failed request of `size` bytes, in `buf`; its length.
fn out_of_memory_line(buf: &mut [u8], size: usize) -> usize {
    let tool = load(&TOOL).unwrap_or("modkit");
    let mut out = &mut *buf;
    // Writing into a slice cannot fail but for want of room, which only cuts the line short.
    let _ = write!(out, "{tool}: {}: out of memory", Level::Error.name());
    if let Some(what) = load(&ACTIVITY) {
        let _ = write!(out, " while {what}");
    }
    let _ = write!(out, " (allocating {size} bytes)");
    let room = out.len();
    let mut len = buf.len() - room;
    // The newline always fits: a cut line still ends as a line.
    len = len.min(buf.len() - 1);
    buf[len] = b'\n';
    len + 1
}

/// Say that `size` bytes could not be allocated, and end the process with status 1.
#[allow(unsafe_code, reason = "write(2) and _exit(2) without allocating")]
#[cold]
fn out_of_memory(size: usize) -> ! {
    let mut buf = [0u8; 256];
    let len = out_of_memory_line(&mut buf, size);
    // SAFETY: `buf[..len]` is initialised memory that outlives the call; write only reads it.
    // _exit ends the process at once, running no destructor or atexit handler that might
    // allocate; the index files are whole or absent (they are renamed into place when written).
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::_exit(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_tool_activity_and_size() {
        let mut buf = [0u8; 256];
        set_tool(&"depmod");
        doing(&"reading modules");
        let len = out_of_memory_line(&mut buf, 24);
        assert_eq!(
            std::str::from_utf8(&buf[..len]).unwrap(),
            "depmod: ERROR: out of memory while reading modules (allocating 24 bytes)\n"
        );
        let mut small = [0u8; 20];
        let len = out_of_memory_line(&mut small, usize::MAX);
        assert_eq!(len, 20);
        assert_eq!(&small[..], b"depmod: ERROR: out \n");
    }
}
