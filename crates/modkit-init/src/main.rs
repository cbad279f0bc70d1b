//! `modkit-init`: the `/init` of an image built by `modkit initramfs`. Mounts /proc, /sys,
//! /dev (devtmpfs) and /run, loads what the devices need until the `root=` device appears,
//! mounts it, switches to it and runs its init. When something is missing it prints one line
//! that says what (`modkit-init: root device UUID=... did not appear in 10 s; block devices
//! seen: ...; modules loaded: ...`) and powers the machine off: it never hangs and never
//! panics the kernel without a word.
#![forbid(unsafe_code)]

use std::path::Path;
use std::time::Instant;

use modkit_init::boot::{self, Paths, SYSROOT};
use modkit_init::bootargs::BootArgs;
use modkit_init::{say, switch};
use sys_mount::{Mount, MountFlags};

fn main() {
    let start = Instant::now();
    // A panic on any thread (coldplug loads on a pool) ends here: its line, then power off.
    // A hook rather than `catch_unwind`, so it holds under `panic = "abort"` (the `init`
    // profile) as well as when unwinding.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic payload".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        give_up(&format!(
            "internal error (a bug in modkit-init): {message}{place}"
        ))
    }));
    let failure = run(start);
    give_up(&failure)
}

/// Prints why the boot stops and powers off; never returns.
fn give_up(failure: &str) -> ! {
    say(failure);
    say("powering off");
    let errno = modkit::syscalls::power_off();
    say(&format!("could not power off: {}", errno.strerror()));
    // PID 1 exiting panics the kernel: the last resort, with the reason above it.
    std::process::exit(1)
}

/// Boots; returns only with the line that says why it could not.
fn run(start: Instant) -> String {
    if let Err(err) = mount_pseudo_filesystems() {
        return err;
    }
    let cmdline = match std::fs::read_to_string("/proc/cmdline") {
        Ok(text) => text,
        Err(err) => return format!("reading /proc/cmdline: {err}"),
    };
    let args = BootArgs::parse(&cmdline);
    let mounted = match boot::mount_root(&args, &cmdline, &Paths::system()) {
        Ok(mounted) => mounted,
        Err(failure) => return failure.to_string(),
    };
    say(&format!(
        "root {} is /dev/{} ({}), found in {:.2} s, {} modules loaded; mounted in {:.2} s",
        args.root
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        mounted.device.name,
        mounted.fstype,
        mounted.found_after.as_secs_f64(),
        mounted.loaded,
        start.elapsed().as_secs_f64(),
    ));
    if let Err(err) = switch::switch_root(Path::new(SYSROOT)) {
        return format!("switching to the root filesystem: {err}");
    }
    let init = match switch::find_init(args.init.as_deref()) {
        Ok(init) => init,
        Err(tried) => {
            return format!(
                "no init on the root filesystem /dev/{}: tried {}",
                mounted.device.name,
                tried.join(", ")
            );
        }
    };
    let err = switch::exec_init(&init);
    format!("could not run {}: {err}", init.display())
}

/// Mounts /proc, /sys, /dev (devtmpfs) and /run (tmpfs); one already mounted is fine.
fn mount_pseudo_filesystems() -> Result<(), String> {
    let (nosuid, nodev, noexec) = (MountFlags::NOSUID, MountFlags::NODEV, MountFlags::NOEXEC);
    for (fstype, target, flags, data) in [
        ("proc", "/proc", nosuid | nodev | noexec, None),
        ("sysfs", "/sys", nosuid | nodev | noexec, None),
        ("devtmpfs", "/dev", nosuid, Some("mode=0755")),
        ("tmpfs", "/run", nosuid | nodev, Some("mode=0755")),
    ] {
        std::fs::create_dir_all(target).map_err(|err| format!("creating {target}: {err}"))?;
        let mut mount = Mount::builder().fstype(fstype).flags(flags);
        if let Some(data) = data {
            mount = mount.data(data);
        }
        if let Err(err) = mount.mount(fstype, target)
            && err.raw_os_error() != Some(libc::EBUSY)
        {
            return Err(format!("mounting {fstype} on {target}: {err}"));
        }
    }
    Ok(())
}
