//! `modkit`: one multi-call binary for the kmod tools, dispatched on argv[0] or the first
//! argument; the tools are the library's (`modkit_cli::run`).
#![deny(unsafe_code)] // One exception: SIGPIPE's default action, before anything runs.

use std::process::ExitCode;

/// Out of memory ends the tool with one line saying what it was doing, exit 1, never an abort.
#[global_allocator]
static GLOBAL: modkit_cli::memory::Allocator = modkit_cli::memory::Allocator;

fn main() -> ExitCode {
    restore_default_sigpipe();
    modkit_cli::memory::fit_address_space_limit();
    modkit_cli::run(std::env::args_os().collect())
}

/// A write to a closed pipe ends the tool as it ends kmod's: killed by SIGPIPE, quietly, with
/// the status a shell reads as 141. Rust's runtime ignores the signal, which turns the write
/// into an error (and `println!` into a panic, exit 101).
#[allow(unsafe_code, reason = "signal(2) has no safe wrapper in std or libc")]
fn restore_default_sigpipe() {
    // SAFETY: SIG_DFL installs no handler, so no code of ours runs on the signal; it only sets
    // this process's disposition back to what a C program such as kmod starts with (children
    // spawned by std get SIG_DFL anyway), before any thread or output exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
