//! `vmtest-root`: the `/sbin/init` of the root disk in `cargo xtask vmtest`'s root scenarios
//! (`vmtest::root`). modkit-init found the disk, mounted it and ran this; it checks that it
//! runs as PID 1 from the ext4 root the harness made (the marker file holds the UUID the kernel
//! command line names), that modkit-init moved /dev, /proc, /sys and /run over, reports the
//! boot-to-root time and the modules loaded in the console protocol, and powers off.
#![forbid(unsafe_code)]

use vmtest::protocol::Message;
use vmtest::{cmdline, root};

fn say(message: Message) {
    println!("{}", message.line());
}

fn main() {
    let kernel_cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let name = cmdline::value(&kernel_cmdline, cmdline::SCENARIOS)
        .unwrap_or("root")
        .to_owned();
    say(Message::Plan(vec![name.clone()]));
    say(Message::Begin(name.clone()));
    let log = |text: String| {
        say(Message::Log {
            scenario: name.clone(),
            text,
        })
    };
    let mut passed = true;
    let mut check = |ok: bool, what: String| {
        log(format!("{}: {what}", if ok { "ok" } else { "FAIL" }));
        passed &= ok;
    };

    check(std::process::id() == 1, "running as PID 1".into());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let fields: Vec<Vec<&str>> = mounts
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    match fields.iter().rev().find(|f| f[1] == "/") {
        Some(f) => {
            log(format!("/ is {} ({}, {})", f[0], f[2], f[3]));
            check(f[2] == "ext4", "the root filesystem is ext4".into());
            check(
                f[0].starts_with("/dev/"),
                "mounted from a block device".into(),
            );
        }
        None => check(false, "/proc/mounts has a line for /".into()),
    }
    let expected = cmdline::value(&kernel_cmdline, root::EXPECT).unwrap_or_default();
    let marker = std::fs::read_to_string(root::MARKER).unwrap_or_default();
    check(
        !expected.is_empty() && marker.trim() == expected,
        format!(
            "{} holds {expected:?} (found {:?})",
            root::MARKER,
            marker.trim()
        ),
    );
    check(
        !std::path::Path::new("/init").exists(),
        "no /init here: this is the disk, not the initramfs".into(),
    );
    for mount in ["/dev", "/proc", "/sys", "/run"] {
        check(
            fields.iter().any(|f| f[1] == mount),
            format!("{mount} was moved to the new root"),
        );
    }
    // CLOCK_BOOTTIME, the clock of the kernel's timestamps.
    if let Some(uptime) = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
    {
        log(format!("{}{uptime:.2} s", root::BOOT_TO_ROOT));
    }
    let modules = std::fs::read_to_string("/proc/modules").unwrap_or_default();
    let names: Vec<&str> = modules
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    log(format!(
        "{} modules loaded: {}",
        names.len(),
        names.join(" ")
    ));

    say(Message::End {
        scenario: name.clone(),
        passed,
    });
    say(Message::Verdict(passed));
    let errno = modkit_syscalls::power_off();
    say(Message::Error(format!(
        "power off failed: {}",
        errno.strerror()
    )));
    std::process::exit(1);
}
