//! What the two sides of `cargo xtask vmtest` share, so that they agree through code rather
//! than by matching each other's source text: the host (`xtask/src/vmtest/`) asks for
//! scenarios by the names in [`SCENARIOS`], boots with the kernel arguments each needs and the
//! command line [`cmdline`] builds, lays out the initramfs where the guest looks ([`MODKIT`],
//! [`TOOLS`], [`KMODS_DIR`], [`coldplug`]), and parses the console lines the guest prints
//! through [`protocol::Message`]; the guest (`vmtest-init`, this crate's binary) reads the same
//! keys, runs the same scenarios and prints those lines.
//!
//! No dependencies and no I/O: it is built for the host and, statically, for the guest.

#![forbid(unsafe_code)]

/// One scenario of `vmtest-init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scenario {
    pub name: &'static str,
    /// Kernel arguments its boot must carry (empty for most). Scenarios with the same
    /// arguments share a boot; the others never see them.
    pub kernel_args: &'static [&'static str],
    /// Seconds this scenario adds to its boot's time limit (the host's `--timeout` covers the
    /// short ones; `storm` and `faults` take longer under TCG).
    pub extra_seconds: u64,
}

impl Scenario {
    const fn plain(name: &'static str) -> Scenario {
        Scenario {
            name,
            kernel_args: &[],
            extra_seconds: 0,
        }
    }

    const fn long(name: &'static str, extra_seconds: u64) -> Scenario {
        Scenario {
            name,
            kernel_args: &[],
            extra_seconds,
        }
    }
}

/// The scenarios a plain `cargo xtask vmtest` runs, in the order they run.
pub const SCENARIOS: &[Scenario] = &[
    Scenario::plain("boot"),
    Scenario::plain("insmod"),
    Scenario::plain("in-use"),
    Scenario::plain("compressed"),
    Scenario::plain("params"),
    Scenario::plain("modprobe"),
    Scenario::plain("options"),
    Scenario {
        name: "cmdline",
        kernel_args: cmdline::MODPROBE_ARGS,
        extra_seconds: 0,
    },
    Scenario {
        name: "blacklist",
        kernel_args: cmdline::MODPROBE_ARGS,
        extra_seconds: 0,
    },
    Scenario::plain("coldplug"),
    Scenario::plain("no-proc"),
    Scenario::plain("libkmod"),
    Scenario::long("faults", 30),
    Scenario::long("storm", 300),
    Scenario::plain("check"),
    Scenario {
        name: "check-sig",
        kernel_args: check::SIG_ARGS,
        extra_seconds: 0,
    },
];

/// Scenarios that break on purpose, so that the host shows it notices (`--selftest`); never
/// run by default: a failed check, a kernel panic, `/init` exiting, a hang.
pub const SELFTESTS: &[Scenario] = &[
    Scenario::plain("selftest-fail"),
    Scenario::plain("selftest-panic"),
    Scenario::plain("selftest-exit"),
    Scenario::plain("selftest-hang"),
];

/// The scenario (or selftest) called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().chain(SELFTESTS).find(|s| s.name == name)
}

/// The multi-call binary in the initramfs.
pub const MODKIT: &str = "/bin/modkit";

/// The names linked to [`MODKIT`] in `/sbin`, as kmod's tools are.
pub const TOOLS: &[&str] = &["insmod", "rmmod", "lsmod", "modinfo", "modprobe", "depmod"];

/// Where the initramfs holds the sample modules: `NAME.ko` and `NAME.ko.xz` of each of
/// [`SAMPLE_MODULES`].
pub const KMODS_DIR: &str = "/kmods";

/// The sample modules (`kmods/`), in unload order: `hello_feature` uses `hello_api`.
pub const SAMPLE_MODULES: &[&str] = &["hello_feature", "hello_api"];

/// The fault-injection sample modules (`kmods/fault_*`), also in [`KMODS_DIR`] as `NAME.ko`
/// and `NAME.ko.xz`; each calls `hello_api`'s `api_test`, so they unload before
/// [`SAMPLE_MODULES`]. `fault_nodev`'s init returns -ENODEV; `fault_sleep`'s sleeps
/// ([`FAULT_SLEEP_MS`]) and then succeeds.
pub const FAULT_MODULES: &[&str] = &["fault_nodev", "fault_sleep"];

/// How long `fault_sleep`'s init sleeps by default (its `delay_ms` parameter), in ms.
pub const FAULT_SLEEP_MS: u64 = 3000;

/// The root scenarios: each boots with an initramfs written by `modkit initramfs` (modkit-init
/// as `/init`) and an ext4 disk whose `/sbin/init` is `vmtest-root` (this crate's second
/// binary), which reports in the [`protocol`] once modkit-init has switched to it. The host
/// (`xtask/src/vmtest/root.rs`) has a case for each name.
pub mod root {
    /// The root scenarios, in the order they run.
    pub const SCENARIOS: &[&str] = &[
        "root-virtio",
        "root-nvme",
        "root-ahci",
        "root-label",
        "root-missing",
    ];
    /// The file on the disk that holds the disk's UUID.
    pub const MARKER: &str = "/modkit-root-marker";
    /// The kernel argument that names the UUID the disk must have (`vmtest.expect=UUID`).
    pub const EXPECT: &str = "vmtest.expect";
    /// The start of the log line with the time from kernel start to the disk's init
    /// (`boot-to-root 3.21 s`).
    pub const BOOT_TO_ROOT: &str = "boot-to-root ";
}

/// The coldplug scenario: QEMU's PCI devices, whose drivers are modules of Debian's kernels.
pub mod coldplug {
    /// The root holding `lib/modules/RELEASE` with the drivers' modules and their dependencies
    /// (unindexed: the guest runs depmod over it).
    pub const ROOT: &str = "/coldplug";

    /// The drivers of the devices the host attaches: the host carries their modules, the
    /// guest checks that coldplug loads each one that is not built in.
    pub const DRIVERS: &[&str] = &[
        "virtio_pci",
        "virtio_blk",
        "virtio_net",
        "e1000",
        "virtio_rng",
    ];
}

/// The libkmod scenario: Debian's programs that link libkmod, run with modkit's
/// `libkmod.so.2` as the only one in the library search path.
pub mod libkmod {
    /// The programs, at their paths in Debian 12's packages (pciutils, udev, systemd); the
    /// host adds them with every shared library they load.
    pub const PROGRAMS: &[&str] = &[
        "/usr/bin/lspci",
        "/bin/udevadm",
        "/lib/systemd/systemd-modules-load",
    ];
    /// Debian's own `libkmod.so.2`, for the reference runs (`LD_LIBRARY_PATH`); nothing else
    /// searches this directory.
    pub const DEBIAN_DIR: &str = "/opt/debian-libkmod";
}

/// The storm scenario: many modprobe processes at once over real modules of Debian's kernels
/// that share dependencies.
pub mod storm {
    /// The root holding `lib/modules/RELEASE` with [`MODULES`] and their dependencies
    /// (unindexed: the guest runs depmod over it).
    pub const ROOT: &str = "/storm";

    /// The modules the storm loads by name, none built into Debian's 6.1 or 6.12: crypto
    /// ciphers sharing `*_common` helpers, netfilter modules sharing `nf_conntrack`,
    /// `nf_nat`, `x_tables` and `nf_tables`, file systems sharing `fat` and `cdrom`. No
    /// conntrack helper (`nf_nat_ftp`, ...): removing one waits 0.6-1.2 s in the kernel on
    /// 6.1 under TCG, which 20 rounds cannot afford.
    pub const MODULES: &[&str] = &[
        "twofish_generic",
        "cast5_generic",
        "cast6_generic",
        "blowfish_generic",
        "des_generic",
        "xt_state",
        "xt_conntrack",
        "xt_nat",
        "xt_MASQUERADE",
        "nft_ct",
        "nft_nat",
        "vfat",
        "msdos",
        "isofs",
        "udf",
        "minix",
    ];

    /// Concurrent modprobe processes per round.
    pub const PROCESSES: usize = 64;

    /// Rounds of loads, each followed by `modprobe -r`.
    pub const ROUNDS: usize = 20;

    /// Concurrent readers resolving names while depmod rewrites the indexes.
    pub const READERS: usize = 8;
}

/// The `check` scenarios: `modkit check` on each case, then `insmod`; the two must agree.
pub mod check {
    /// The target's files, as `modkit check -b ROOT` reads them: `lib/modules/RELEASE` (with
    /// `extra/hello_api.ko` and [`SIGNED_MODULE`], unindexed: the guest runs depmod),
    /// `boot/config-RELEASE` and `usr/src/linux-headers-RELEASE/Module.symvers`.
    pub const ROOT: &str = "/check";
    /// The kernel's built-in certificates (DER, concatenated), taken from its image.
    pub const CERTS: &str = "/check/certs.der";
    /// The cases' module files (`NAME.ko` of each of [`CASE_MODULES`]), outside the tree.
    pub const CASES_DIR: &str = "/check/cases";
    /// The cases built from `kmods/check_*`.
    pub const CASE_MODULES: &[&str] = &[
        "check_control",
        "check_signed",
        "check_missing",
        "check_crc",
        "check_proprietary",
    ];
    /// hello_api as built for the other kernel (the vermagic case).
    pub const OTHER_KERNEL: &str = "/check/other/hello_api.ko";
    /// One of the kernel's own modules (signed with its build key, no dependencies), under
    /// `lib/modules/RELEASE`, without its extension (`.ko` or `.ko.xz`, as the kernel ships it).
    pub const SIGNED_MODULE: &str = "kernel/lib/crc7";
    /// The kernel arguments of `check-sig`.
    pub const SIG_ARGS: &[&str] = &["module.sig_enforce=1"];
}

/// The kernel command line: what the host puts there, what the guest reads back.
pub mod cmdline {
    /// The scenarios to run, comma-separated.
    pub const SCENARIOS: &str = "vmtest.scenarios";
    /// The kernel release the host booted (what `uname -r` must say).
    pub const RELEASE: &str = "vmtest.release";
    /// Which files of [`KMODS_DIR`](crate::KMODS_DIR) go into `/lib/modules/RELEASE/extra`:
    /// `ko` or `ko.xz`, as the distribution ships that kernel's modules.
    pub const MODULE_EXT: &str = "vmtest.modext";

    /// hello_api's parameter for modprobe to pass on. The kernel ignores `MOD.PARAM` for
    /// modules it does not have built in; modprobe reads it from `/proc/cmdline`.
    pub const GREETING: &str = "hello_api.greeting=\"Hello from the kernel command line\"";
    /// The value the kernel keeps from [`GREETING`] (it strips the quotes).
    pub const GREETING_VALUE: &str = "Hello from the kernel command line";
    /// A blacklist for modprobe.
    pub const BLACKLIST: &str = "modprobe.blacklist=hello_api";
    /// The kernel arguments of the `cmdline` and `blacklist` scenarios. They would change what
    /// the other modprobe scenarios see, so those two get a boot of their own.
    pub const MODPROBE_ARGS: &[&str] = &[GREETING, BLACKLIST];

    /// The host's arguments for the guest: `vmtest.scenarios=a,b vmtest.release=R
    /// vmtest.modext=E`.
    pub fn vmtest_args(scenarios: &[&str], release: &str, module_ext: &str) -> String {
        format!(
            "{SCENARIOS}={} {RELEASE}={release} {MODULE_EXT}={module_ext}",
            scenarios.join(",")
        )
    }

    /// The value of `key=value` on a kernel command line (no quoting needed for our keys).
    pub fn value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
        cmdline
            .split_whitespace()
            .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
    }

    /// The scenarios [`SCENARIOS`] names, in order; empty when it is not there.
    pub fn scenarios(cmdline: &str) -> Vec<&str> {
        value(cmdline, SCENARIOS)
            .map(|list| list.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }
}

/// The console protocol. Every line starts with `MODKIT-VMTEST ` and is one of:
///
/// ```text
/// plan NAME NAME ...          the scenarios this boot will run, in order
/// begin NAME                  a scenario starts
/// log NAME TEXT               one transcript line of that scenario (escaped, see `escape`)
/// end NAME pass|fail          a scenario's result
/// error TEXT                  the harness itself failed (e.g. a panic in vmtest-init)
/// verdict pass|fail           the last line: all scenarios passed, or not
/// ```
///
/// Kernel messages share the console, so the host finds a line's prefix anywhere in it.
pub mod protocol {
    /// The first word of every protocol line.
    pub const PREFIX: &str = "MODKIT-VMTEST";

    /// A transcript line that starts with this is a row of the scenario's result (a case of
    /// `check`): the host's report shows it even when the scenario passed.
    pub const ROW: &str = "  = ";

    /// One protocol line.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Message {
        Plan(Vec<String>),
        Begin(String),
        /// A transcript line, unescaped.
        Log {
            scenario: String,
            text: String,
        },
        End {
            scenario: String,
            passed: bool,
        },
        /// The harness failed; unescaped.
        Error(String),
        Verdict(bool),
        /// A line with the prefix and a keyword this protocol does not have (what follows the
        /// prefix).
        Unknown(String),
    }

    impl Message {
        /// The console line, without its newline: text that could break the line escaped.
        pub fn line(&self) -> String {
            let word = |passed: bool| if passed { "pass" } else { "fail" };
            let body = match self {
                Message::Plan(names) => format!("plan {}", names.join(" ")),
                Message::Begin(name) => format!("begin {name}"),
                Message::Log { scenario, text } => format!("log {scenario} {}", escape(text)),
                Message::End { scenario, passed } => format!("end {scenario} {}", word(*passed)),
                Message::Error(text) => format!("error {}", escape(text)),
                Message::Verdict(passed) => format!("verdict {}", word(*passed)),
                Message::Unknown(text) => text.clone(),
            };
            format!("{PREFIX} {body}")
        }

        /// The message in a console line, wherever its prefix starts; `None` without one.
        pub fn find(line: &str) -> Option<Message> {
            let marker = format!("{PREFIX} ");
            let at = line.find(&marker)?;
            let message = &line[at + marker.len()..];
            let (keyword, rest) = message.split_once(' ').unwrap_or((message, ""));
            Some(match keyword {
                "plan" => Message::Plan(rest.split_whitespace().map(str::to_string).collect()),
                "begin" => Message::Begin(rest.to_string()),
                "log" => {
                    let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
                    Message::Log {
                        scenario: name.to_string(),
                        text: unescape(text),
                    }
                }
                "end" => {
                    let (name, result) = rest.rsplit_once(' ').unwrap_or((rest, ""));
                    Message::End {
                        scenario: name.to_string(),
                        passed: result == "pass",
                    }
                }
                "error" => Message::Error(unescape(rest)),
                "verdict" => Message::Verdict(rest.trim() == "pass"),
                _ => Message::Unknown(message.to_string()),
            })
        }
    }

    /// Makes `text` one printable line: `\` becomes `\\`, other control and non-ASCII bytes
    /// `\xNN`.
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

    /// Reverses [`escape`]: `\\` and `\xNN`; anything else is kept as it is.
    pub fn unescape(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'\\' {
                if bytes.get(i + 1) == Some(&b'\\') {
                    out.push(b'\\');
                    i += 2;
                    continue;
                }
                if bytes.get(i + 1) == Some(&b'x') {
                    let hex = text
                        .get(i + 2..i + 4)
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    if let Some(byte) = hex {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::protocol::{Message, escape, unescape};
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let all: Vec<&str> = SCENARIOS.iter().chain(SELFTESTS).map(|s| s.name).collect();
        for (i, name) in all.iter().enumerate() {
            assert!(!all[..i].contains(name), "{name} twice");
            assert_eq!(find(name).map(|s| s.name), Some(*name));
        }
        assert_eq!(find("nope"), None);
        assert!(SELFTESTS.iter().all(|s| s.kernel_args.is_empty()));
    }

    #[test]
    fn cmdline_values() {
        let line =
            "console=ttyS0 quiet vmtest.scenarios=insmod,params vmtest.release=6.1.0-56-amd64\n";
        assert_eq!(
            cmdline::value(line, cmdline::SCENARIOS),
            Some("insmod,params")
        );
        assert_eq!(
            cmdline::value(line, cmdline::RELEASE),
            Some("6.1.0-56-amd64")
        );
        assert_eq!(cmdline::value(line, "vmtest"), None);
        assert_eq!(cmdline::value(line, "missing"), None);
        assert_eq!(cmdline::scenarios(line), ["insmod", "params"]);
        assert!(cmdline::scenarios("quiet vmtest.scenarios=").is_empty());
    }

    #[test]
    fn the_guest_reads_what_the_host_writes() {
        let line = format!(
            "console=ttyS0 {} {}",
            cmdline::vmtest_args(&["boot", "in-use"], "6.12.57+deb13-amd64", "ko.xz"),
            cmdline::MODPROBE_ARGS.join(" ")
        );
        assert_eq!(cmdline::scenarios(&line), ["boot", "in-use"]);
        assert_eq!(
            cmdline::value(&line, cmdline::RELEASE),
            Some("6.12.57+deb13-amd64")
        );
        assert_eq!(cmdline::value(&line, cmdline::MODULE_EXT), Some("ko.xz"));
        assert!(line.contains(cmdline::GREETING) && line.contains(cmdline::BLACKLIST));
        assert_eq!(
            cmdline::GREETING,
            format!("hello_api.greeting=\"{}\"", cmdline::GREETING_VALUE)
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("plain text: ok"), "plain text: ok");
        assert_eq!(escape("a\\b\tc\nd\u{e9}"), "a\\\\b\\x09c\\x0ad\\xc3\\xa9");
        assert_eq!(
            unescape("a\\\\b\\x09c\\xc3\\xa9\\xZZ\\"),
            "a\\b\tc\u{e9}\\xZZ\\"
        );
    }

    #[test]
    fn messages_round_trip() {
        let messages = [
            Message::Plan(vec!["boot".into(), "in-use".into()]),
            Message::Begin("in-use".into()),
            Message::Log {
                scenario: "in-use".into(),
                text: "  FAIL: odd \\ text\twith\nbreaks \u{e9}".into(),
            },
            Message::End {
                scenario: "in-use".into(),
                passed: false,
            },
            Message::End {
                scenario: "boot".into(),
                passed: true,
            },
            Message::Error("vmtest-init panicked: oops\n".into()),
            Message::Verdict(true),
            Message::Verdict(false),
        ];
        for message in messages {
            let line = message.line();
            assert!(!line.contains('\n'), "{line:?}");
            assert_eq!(Message::find(&line), Some(message.clone()), "{line}");
            // Kernel text before it on the same console line.
            let noisy = format!("[    2.5] random: crng init{line}\r");
            let found = Message::find(noisy.trim_end_matches('\r'));
            assert_eq!(found, Some(message), "{noisy}");
        }
        assert_eq!(
            Message::Verdict(true).line(),
            "MODKIT-VMTEST verdict pass",
            "the wire format"
        );
        assert_eq!(
            Message::find("MODKIT-VMTEST bogus 1 2"),
            Some(Message::Unknown("bogus 1 2".into()))
        );
        assert_eq!(Message::find("MODKIT-VMTESTverdict pass"), None);
        assert_eq!(Message::find("plain kernel text"), None);
    }
}
