//! The guest `/init` of `cargo xtask vmtest`: mounts the pseudo file systems, runs the scenarios
//! named on the kernel command line with modkit's real tools, prints one machine-readable line per
//! event on the console and powers the VM off.
//!
//! What the host and the guest share (the scenario names and their kernel arguments, the
//! command-line keys, the console protocol, the initramfs layout) is this crate's library
//! (`src/lib.rs`), which xtask uses too.

#![deny(unsafe_code)] // One exception: delete_module(2) in scenarios.rs.

mod kmsg;
mod scenarios;

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use anyhow::{Context, Result};
use vmtest::cmdline;
use vmtest::protocol::Message;

fn main() {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(run));
    let passed = match outcome {
        Ok(Ok(passed)) => passed,
        Ok(Err(err)) => {
            emit(Message::Error(format!("{err:#}")));
            false
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            emit(Message::Error(format!("vmtest-init panicked: {message}")));
            false
        }
    };
    emit(Message::Verdict(passed));
    power_off();
}

/// Mounts what the tools need, runs the scenarios; `Ok(true)` when all passed.
fn run() -> Result<bool> {
    mount_pseudo_filesystems()?;
    let cmdline = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    let names = cmdline::scenarios(&cmdline);
    anyhow::ensure!(
        !names.is_empty(),
        "no {}=... on the kernel command line: {cmdline:?}",
        cmdline::SCENARIOS
    );
    let env = scenarios::Env {
        release: cmdline::value(&cmdline, cmdline::RELEASE).map(str::to_string),
        module_ext: cmdline::value(&cmdline, cmdline::MODULE_EXT)
            .unwrap_or("ko")
            .to_string(),
        cmdline: cmdline.trim_end().to_string(),
    };

    emit(Message::Plan(names.iter().map(|s| s.to_string()).collect()));
    let mut kmsg = kmsg::Kmsg::open().context("opening /dev/kmsg")?;
    let mut all_passed = true;
    for &name in &names {
        emit(Message::Begin(name.to_string()));
        let passed = match scenarios::find(name) {
            Some(scenario) => {
                let mut ctx = scenarios::Ctx::new(name, &mut kmsg, &env);
                scenario(&mut ctx);
                ctx.cleanup();
                ctx.passed()
            }
            None => {
                emit(Message::Log {
                    scenario: name.to_string(),
                    text: "FAIL: no such scenario in vmtest-init".into(),
                });
                false
            }
        };
        all_passed &= passed;
        emit(Message::End {
            scenario: name.to_string(),
            passed,
        });
    }
    Ok(all_passed)
}

fn mount_pseudo_filesystems() -> Result<()> {
    use sys_mount::Mount;
    for (fstype, target) in [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev")] {
        std::fs::create_dir_all(target).with_context(|| format!("creating {target}"))?;
        // Already mounted (e.g. devtmpfs when the kernel mounts it itself) is fine.
        if let Err(err) = Mount::builder().fstype(fstype).mount(fstype, target)
            && err.raw_os_error() != Some(libc::EBUSY)
        {
            return Err(err).with_context(|| format!("mounting {fstype} on {target}"));
        }
    }
    if !Path::new("/tmp").exists() {
        std::fs::create_dir("/tmp").context("creating /tmp")?;
    }
    Ok(())
}

/// Prints one protocol line; a single `write` so kernel messages cannot split it.
pub fn emit(message: Message) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{}\n", message.line()).as_bytes());
    let _ = out.flush();
}

/// Ends the VM; as PID 1 we must never return (the kernel would panic).
fn power_off() -> ! {
    let errno = modkit_syscalls::power_off();
    emit(Message::Error(format!(
        "reboot(RB_POWER_OFF) failed ({}); exiting, which panics the kernel",
        errno.strerror()
    )));
    std::process::exit(1)
}
