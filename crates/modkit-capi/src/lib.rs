//! `libkmod.so.2` from Rust: the C library of kmod (the ABI of Debian 12's `libkmod.h`, the
//! soname and symbol versions of its `libkmod.so.2`) served by the modkit facade, so programs
//! that link libkmod (systemd-udevd's kmod builtin, `systemd-modules-load`, `lspci -k`) run
//! on modkit without relinking.
//!
//! The cdylib this crate builds is that library: `build.rs` gives it the soname
//! `libkmod.so.2`, passes `libkmod.map` (Debian's version nodes `LIBKMOD_5`, `LIBKMOD_6`,
//! `LIBKMOD_22`, each function in the node Debian's library exports it from) to the linker
//! and pins every function to its node with a `.symver` directive. Install it as
//! `libkmod.so.2` in the library path (the cdylib is `target/release/libmodkit_capi.so`).
//!
//! # Handles
//!
//! `struct kmod_ctx`, `kmod_module`, `kmod_list` and `kmod_config_iter` are opaque in
//! libkmod.h; here each pointer a caller holds is a token into one registry, never memory
//! the caller could touch (the `kmod_list_foreach` macros only call `kmod_list_next`). A token
//! is never reused, so NULL, a handle after its last unref, a double unref or a list node
//! after `kmod_module_unref_list` are answered with NULL or a negative errno, never a crash.
//! Reference counts are libkmod's: a module holds its context, a list holds its modules, the
//! same module of a context is the same handle (the context's pool). Each context keeps the
//! facade's [`modkit::Context`], with libkmod's rule of the first `softdep` line.
//!
//! The registry sits behind one lock, so contexts may be used from several threads (libkmod
//! asks for one context per thread; that is allowed, and more). Log messages go to the log
//! function after the lock is released, so a log function may call the library.
//!
//! # What the clients import
//!
//! Read from the dynamic symbol tables of Debian 12's binaries (`objdump -T`): udev 252
//! (`/bin/udevadm`, which is `systemd-udevd`: its kmod builtin), `libsystemd-shared-252.so`
//! (`module_load_and_warn`, which `systemd-modules-load` calls), `systemd-modules-load`
//! itself, and pciutils 3.9's `lspci`:
//!
//! | function | udevd | libsystemd-shared | modules-load | lspci |
//! |---|---|---|---|---|
//! | `kmod_new` | x | | x | x |
//! | `kmod_unref` | x | | x | x |
//! | `kmod_load_resources` | x | | x | x |
//! | `kmod_validate_resources` | x | | | |
//! | `kmod_set_log_fn` | x | | x | |
//! | `kmod_list_next` | x | x | | x |
//! | `kmod_module_new_from_lookup` | x | x | | x |
//! | `kmod_module_get_module` | x | x | | x |
//! | `kmod_module_get_name` | x | x | | x |
//! | `kmod_module_get_initstate` | x | x | | |
//! | `kmod_module_probe_insert_module` | x | x | | |
//! | `kmod_module_unref` | x | x | | x |
//! | `kmod_module_unref_list` | x | x | | x |
//!
//! Debian's `kmod` binary (modprobe, modinfo, ...) links libkmod statically and imports
//! nothing; its tools' sources call, beyond the above, `kmod_ref`, `kmod_get_dirname`,
//! `kmod_set_log_priority`, `kmod_config_get_*` and the `kmod_config_iter_*` functions,
//! `kmod_dump_index`, `kmod_module_new_from_name`, `kmod_module_new_from_path`,
//! `kmod_module_new_from_loaded`, `kmod_module_ref`, `kmod_module_get_path`,
//! `kmod_module_get_options`, `kmod_module_get_install_commands`,
//! `kmod_module_get_remove_commands`, `kmod_module_get_dependencies`,
//! `kmod_module_get_softdeps`, `kmod_module_get_refcnt`, `kmod_module_get_holders`,
//! `kmod_module_get_size`, `kmod_module_get_info` with `kmod_module_info_*`,
//! `kmod_module_get_versions`, `kmod_module_get_symbols`,
//! `kmod_module_get_dependency_symbols` with their getters and free functions,
//! `kmod_module_insert_module`, `kmod_module_remove_module`, `kmod_module_initstate_str`,
//! `kmod_module_apply_filter`, `kmod_list_last` and `kmod_list_prev`.
//!
//! # Coverage
//!
//! All 73 functions Debian's `libkmod.so.2` exports are exported with its version nodes, and
//! all are implemented on the facade, with these limits:
//!
//! - `kmod_module_probe_insert_module` with a `run_install` or `print_action` callback
//!   returns `-EOPNOTSUPP` (and logs why) without loading anything; with both NULL, as udevd
//!   and systemd call it, it is the facade's probe with libkmod's flags and return values
//!   (`KMOD_PROBE_APPLY_BLACKLIST*` for a blacklisted module).
//! - Log messages carry the file name `modkit-capi` and line 0; their words are modkit's
//!   (libkmod's where the facade has them: soft dependencies, removal, insertion).
//! - `kmod_validate_resources` compares modification times of the configuration and index
//!   files with those of `kmod_new`/`kmod_load_resources`, as libkmod does.
//! - A probe takes a `/sys/module/NAME` directory without `initstate` as a module in the
//!   kernel (the facade's rule) and skips it; libkmod sees "coming", asks the kernel, gets
//!   `EEXIST` and ignores it: the same answer, one syscall fewer.
//! - `kmod_get_log_priority` on a dead or NULL context answers -1 (libkmod would read freed
//!   memory).
//!
//! What the tests compare with Debian's library, answer for answer, over Debian's 6.1 and
//! 6.12 trees: `kmod_new`, `kmod_get_dirname`, `kmod_load_resources`,
//! `kmod_validate_resources`, the six `kmod_config_get_*` with their iterators,
//! `kmod_dump_index` (all five indexes), `kmod_list_next`/`prev`/`last`, the four
//! `kmod_module_new_from_*` but `loaded`, `kmod_module_get_module`, `get_name`, `get_path`,
//! `get_options`, `get_install_commands`, `get_remove_commands`, `get_initstate`,
//! `initstate_str`, `get_dependencies`, `get_softdeps`, `get_info` and its getters,
//! `get_versions`, `get_symbols`, `get_dependency_symbols` and their getters,
//! `apply_filter`, `probe_insert_module` (dry runs, the blacklist, a module without a file),
//! `kmod_unref` (tests/client.rs); `lspci -k`, `systemd-modules-load` and `udevadm
//! test-builtin 'kmod load'` (tests/lspci.rs, tests/systemd.rs). Exercised only for misuse
//! (tests/boundary.rs), for they read the running kernel: `kmod_module_new_from_loaded`,
//! `get_refcnt`, `get_holders`, `get_sections`, `get_size`; and `remove_module`, which the
//! host tests must not call for real. `insert_module` and probe's real load path run in the
//! VM (`cargo xtask vmtest --scenario libkmod`, vmtest/src/scenarios/libkmod.rs): Debian's
//! `udevadm test-builtin 'kmod load ...'` and `systemd-modules-load` load modules through this
//! library, and Debian's `lspci -nk` prints with it what it prints with Debian's.
#![deny(unsafe_code)]

mod ffi;
mod state;

pub use ffi::{KmodConfigIter, KmodCtx, KmodList, KmodModule};
