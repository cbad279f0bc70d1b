//! The guest `/init` of `cargo xtask vmtest`: mounts the pseudo file systems, runs the scenarios
//! named on the kernel command line with modkit's real tools, prints one machine-readable line per
//! event on the console and powers the VM off.
//!
//! Console protocol (parsed by `xtask/src/vmtest/report.rs`; keep the two in step). Every line
//! starts with `MODKIT-VMTEST ` and is one of:
//!
//! ```text
//! plan NAME NAME ...          the scenarios this boot will run, in order
//! begin NAME                  a scenario starts
//! log NAME TEXT               one transcript line of that scenario (escaped, see `escape`)
//! end NAME pass|fail          a scenario's result
//! error TEXT                  the harness itself failed (e.g. a panic in this program)
//! verdict pass|fail           the last line: all scenarios passed, or not
//! ```
//!
//! Kernel command line: `vmtest.scenarios=a,b,c`, `vmtest.release=RELEASE` (what `uname -r`
//! must say) and `vmtest.modext=ko|ko.xz` (which files of `/kmods` go into
//! `/lib/modules/RELEASE/extra`, as the distribution ships them for that kernel). Some boots also
//! carry kernel arguments for modprobe (`hello_api.greeting=...`, `modprobe.blacklist=...`); the
//! scenarios that need them check that they are there.

#![deny(unsafe_code)] // Two exceptions: reboot(2) in `power_off`, delete_module(2) in scenarios.rs.

mod kmsg;
mod scenarios;

use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::Path;

use anyhow::{Context, Result};

/// The prefix of every protocol line.
pub const PREFIX: &str = "MODKIT-VMTEST";

fn main() {
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(run));
    let passed = match outcome {
        Ok(Ok(passed)) => passed,
        Ok(Err(err)) => {
            emit(&format!("error {}", escape(&format!("{err:#}"))));
            false
        }
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            emit(&format!(
                "error {}",
                escape(&format!("vmtest-init panicked: {message}"))
            ));
            false
        }
    };
    emit(&format!("verdict {}", if passed { "pass" } else { "fail" }));
    power_off();
}

/// Mounts what the tools need, runs the scenarios; `Ok(true)` when all passed.
fn run() -> Result<bool> {
    mount_pseudo_filesystems()?;
    let cmdline = std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?;
    let names: Vec<String> = cmdline_value(&cmdline, "vmtest.scenarios")
        .map(|list| {
            list.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    anyhow::ensure!(
        !names.is_empty(),
        "no vmtest.scenarios=... on the kernel command line: {cmdline:?}"
    );
    let env = scenarios::Env {
        release: cmdline_value(&cmdline, "vmtest.release").map(str::to_string),
        module_ext: cmdline_value(&cmdline, "vmtest.modext")
            .unwrap_or("ko")
            .to_string(),
        cmdline: cmdline.trim_end().to_string(),
    };

    emit(&format!("plan {}", names.join(" ")));
    let mut kmsg = kmsg::Kmsg::open().context("opening /dev/kmsg")?;
    let mut all_passed = true;
    for name in &names {
        emit(&format!("begin {name}"));
        let passed = match scenarios::find(name) {
            Some(scenario) => {
                let mut ctx = scenarios::Ctx::new(name, &mut kmsg, &env);
                scenario(&mut ctx);
                ctx.cleanup();
                ctx.passed()
            }
            None => {
                emit(&format!(
                    "log {name} {}",
                    escape("FAIL: no such scenario in vmtest-init")
                ));
                false
            }
        };
        all_passed &= passed;
        emit(&format!(
            "end {name} {}",
            if passed { "pass" } else { "fail" }
        ));
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

/// The value of `key=value` on a kernel command line (no quoting needed for our keys).
fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// Prints one protocol line; a single `write` so kernel messages cannot split it.
pub fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(format!("{PREFIX} {line}\n").as_bytes());
    let _ = out.flush();
}

/// Makes `text` one printable line: `\` becomes `\\`, other control and non-ASCII bytes `\xNN`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out
}

/// Ends the VM; as PID 1 we must never return (the kernel would panic).
#[allow(unsafe_code, reason = "sync(2) and reboot(2) have no safe wrapper")]
fn power_off() -> ! {
    // SAFETY: sync and reboot take no pointers; reboot only returns on failure.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
    emit("error reboot(RB_POWER_OFF) failed; exiting, which panics the kernel");
    std::process::exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_values() {
        let line =
            "console=ttyS0 quiet vmtest.scenarios=insmod,params vmtest.release=6.1.0-56-amd64\n";
        assert_eq!(
            cmdline_value(line, "vmtest.scenarios"),
            Some("insmod,params")
        );
        assert_eq!(
            cmdline_value(line, "vmtest.release"),
            Some("6.1.0-56-amd64")
        );
        assert_eq!(cmdline_value(line, "vmtest"), None);
        assert_eq!(cmdline_value(line, "missing"), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("plain text: ok"), "plain text: ok");
        assert_eq!(escape("a\\b\tc\nd\u{e9}"), "a\\\\b\\x09c\\x0ad\\xc3\\xa9");
    }
}
