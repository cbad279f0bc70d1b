//! The kernel command line, as the kernel splits it (`next_arg` in lib/cmdline.c), and the
//! arguments an initramfs acts on: `root=`, `rootfstype=`, `rootflags=`, `ro`/`rw`,
//! `rootwait[=SECONDS]`, `rootdelay=SECONDS`, `init=`. Module arguments (`MODULE.PARAM=`,
//! `modprobe.blacklist=`) are the facade's: [`modkit::Context::open`] reads them from the same
//! text.

use std::fmt;
use std::time::Duration;

/// How long the root device is waited for when the command line does not say (no
/// `rootwait`): the kernel itself would give up at once, but drivers probe asynchronously.
pub const DEFAULT_ROOT_WAIT: Duration = Duration::from_secs(10);

/// Which device the root filesystem is on, as `root=` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootSpec {
    /// `root=/dev/NAME`: the block device named `NAME` in sysfs (`/dev/disk/...` links do
    /// not exist in an initramfs without udev).
    Path(String),
    /// `root=UUID=...`: the filesystem's UUID, from its superblock (case-insensitive).
    Uuid(String),
    /// `root=LABEL=...`: the filesystem's label, from its superblock.
    Label(String),
    /// `root=PARTUUID=...`: a partition's unique id, from the GPT entry or the MBR disk
    /// signature (`SSSSSSSS-PP`), case-insensitive.
    PartUuid(String),
    /// `root=PARTLABEL=...`: a GPT partition's name.
    PartLabel(String),
    /// `root=MAJOR:MINOR`: the device number, decimal.
    DevNum(u32, u32),
}

impl RootSpec {
    /// Parses a `root=` value; `None` for a form this init does not know.
    pub fn parse(value: &str) -> Option<RootSpec> {
        let tagged = |prefix: &str| {
            value
                .strip_prefix(prefix)
                .filter(|rest| !rest.is_empty())
                .map(str::to_owned)
        };
        if let Some(uuid) = tagged("UUID=") {
            return Some(RootSpec::Uuid(uuid));
        }
        if let Some(label) = tagged("LABEL=") {
            return Some(RootSpec::Label(label));
        }
        if let Some(partuuid) = tagged("PARTUUID=") {
            return Some(RootSpec::PartUuid(partuuid));
        }
        if let Some(partlabel) = tagged("PARTLABEL=") {
            return Some(RootSpec::PartLabel(partlabel));
        }
        // udev's links, which an initramfs without udev does not have: the same ids.
        type Tag = fn(String) -> RootSpec;
        let links: [(&str, Tag); 4] = [
            ("/dev/disk/by-uuid/", RootSpec::Uuid),
            ("/dev/disk/by-label/", RootSpec::Label),
            ("/dev/disk/by-partuuid/", RootSpec::PartUuid),
            ("/dev/disk/by-partlabel/", RootSpec::PartLabel),
        ];
        for (prefix, spec) in links {
            if let Some(id) = tagged(prefix) {
                return Some(spec(id));
            }
        }
        if let Some(name) = tagged("/dev/") {
            return Some(RootSpec::Path(name));
        }
        let (major, minor) = value.split_once(':')?;
        Some(RootSpec::DevNum(major.parse().ok()?, minor.parse().ok()?))
    }
}

impl fmt::Display for RootSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootSpec::Path(name) => write!(f, "/dev/{name}"),
            RootSpec::Uuid(uuid) => write!(f, "UUID={uuid}"),
            RootSpec::Label(label) => write!(f, "LABEL={label}"),
            RootSpec::PartUuid(uuid) => write!(f, "PARTUUID={uuid}"),
            RootSpec::PartLabel(label) => write!(f, "PARTLABEL={label}"),
            RootSpec::DevNum(major, minor) => write!(f, "{major}:{minor}"),
        }
    }
}

/// How long to wait for the root device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootWait {
    /// Up to this long (`rootwait=SECONDS`, or [`DEFAULT_ROOT_WAIT`] without `rootwait`).
    For(Duration),
    /// `rootwait`: until it appears, as the kernel does.
    Forever,
}

/// What the command line asks of the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootArgs {
    /// `root=`, parsed; `None` when absent.
    pub root: Option<RootSpec>,
    /// A `root=` value this init does not understand.
    pub bad_root: Option<String>,
    /// `rootfstype=`: the filesystem type, instead of the one the superblock says.
    pub rootfstype: Option<String>,
    /// `rootflags=`: the mount's data (`data=journal,...`).
    pub rootflags: Option<String>,
    /// Mount read-only (the kernel's default; `rw` clears it, the last of `ro`/`rw` wins).
    pub read_only: bool,
    /// `rootwait`.
    pub wait: RootWait,
    /// `rootdelay=SECONDS`: sleep before looking for the root device.
    pub delay: Option<Duration>,
    /// `init=`: the program to run on the root filesystem.
    pub init: Option<String>,
}

impl Default for BootArgs {
    fn default() -> BootArgs {
        BootArgs {
            root: None,
            bad_root: None,
            rootfstype: None,
            rootflags: None,
            read_only: true,
            wait: RootWait::For(DEFAULT_ROOT_WAIT),
            delay: None,
            init: None,
        }
    }
}

impl BootArgs {
    /// Reads the arguments an initramfs acts on from the text of `/proc/cmdline`; others are
    /// ignored, a later argument overrides an earlier one (as in the kernel). Everything after
    /// a lone `--` is for init, not the kernel, and ignored.
    pub fn parse(cmdline: &str) -> BootArgs {
        let mut args = BootArgs::default();
        for (key, value) in kernel_args(cmdline) {
            match (key.as_str(), value) {
                ("--", None) => break,
                ("root", Some(value)) => match RootSpec::parse(&value) {
                    Some(spec) => (args.root, args.bad_root) = (Some(spec), None),
                    None => (args.root, args.bad_root) = (None, Some(value)),
                },
                ("rootfstype", Some(value)) => args.rootfstype = Some(value),
                ("rootflags", Some(value)) => args.rootflags = Some(value),
                ("ro", None) => args.read_only = true,
                ("rw", None) => args.read_only = false,
                ("rootwait", None) => args.wait = RootWait::Forever,
                ("rootwait", Some(value)) => {
                    if let Ok(seconds) = value.parse::<u64>() {
                        args.wait = RootWait::For(Duration::from_secs(seconds));
                    }
                }
                ("rootdelay", Some(value)) => {
                    if let Ok(seconds) = value.parse::<u64>() {
                        args.delay = Some(Duration::from_secs(seconds));
                    }
                }
                ("init", Some(value)) => args.init = Some(value),
                _ => {}
            }
        }
        args
    }
}

/// Splits a kernel command line into `(key, value)` pairs as the kernel's `next_arg` does:
/// words are separated by blanks; a double quote starts a quoted stretch in which blanks do
/// not separate (`root="LABEL=my disk"`, `key="a b"`); the quotes are dropped around the whole
/// word or around the value.
pub fn kernel_args(cmdline: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = cmdline.trim_start();
    while !rest.is_empty() {
        let mut in_quote = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            if c == '"' {
                in_quote = !in_quote;
            } else if !in_quote && c.is_ascii_whitespace() {
                end = i;
                break;
            }
        }
        let (word, after) = rest.split_at(end);
        rest = after.trim_start();
        // A word quoted as a whole: `"key=value"`.
        let word = match word.strip_prefix('"') {
            Some(inner) => inner.strip_suffix('"').unwrap_or(inner),
            None => word,
        };
        match word.split_once('=') {
            Some((key, value)) => {
                let value = value
                    .strip_prefix('"')
                    .map(|v| v.strip_suffix('"').unwrap_or(v))
                    .unwrap_or(value);
                out.push((key.to_owned(), Some(value.to_owned())));
            }
            None => out.push((word.to_owned(), None)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: Option<&str>) -> (String, Option<String>) {
        (key.to_owned(), value.map(str::to_owned))
    }

    #[test]
    fn splits_like_the_kernel() {
        assert_eq!(
            kernel_args("  console=ttyS0 quiet root=\"LABEL=my disk\" \"a=b c\" x=\"y z\"\n"),
            vec![
                pair("console", Some("ttyS0")),
                pair("quiet", None),
                pair("root", Some("LABEL=my disk")),
                pair("a", Some("b c")),
                pair("x", Some("y z")),
            ]
        );
        assert_eq!(kernel_args(""), vec![]);
        assert_eq!(
            kernel_args("a= b"),
            vec![pair("a", Some("")), pair("b", None)]
        );
        // An unterminated quote runs to the end.
        assert_eq!(kernel_args("k=\"v w"), vec![pair("k", Some("v w"))]);
    }

    #[test]
    fn root_forms() {
        let cases = [
            ("/dev/vda", Some(RootSpec::Path("vda".into()))),
            ("/dev/nvme0n1p2", Some(RootSpec::Path("nvme0n1p2".into()))),
            ("UUID=0a1b", Some(RootSpec::Uuid("0a1b".into()))),
            ("LABEL=root fs", Some(RootSpec::Label("root fs".into()))),
            (
                "PARTUUID=1234abcd-02",
                Some(RootSpec::PartUuid("1234abcd-02".into())),
            ),
            (
                "PARTLABEL=system",
                Some(RootSpec::PartLabel("system".into())),
            ),
            ("8:1", Some(RootSpec::DevNum(8, 1))),
            ("UUID=", None),
            ("/dev/", None),
            ("vda", None),
            ("8:x", None),
        ];
        for (text, want) in cases {
            assert_eq!(RootSpec::parse(text), want, "{text}");
            if let Some(spec) = want {
                assert_eq!(spec.to_string(), text);
            }
        }
        assert_eq!(
            RootSpec::parse("/dev/disk/by-uuid/0a1b"),
            Some(RootSpec::Uuid("0a1b".into()))
        );
        assert_eq!(
            RootSpec::parse("/dev/disk/by-partlabel/esp"),
            Some(RootSpec::PartLabel("esp".into()))
        );
    }

    #[test]
    fn boot_args() {
        let args = BootArgs::parse(
            "root=UUID=abc rootfstype=ext4 rootflags=data=journal rw rootdelay=2 init=/bin/sh \
             hello.greeting=x ro rootwait",
        );
        assert_eq!(
            args,
            BootArgs {
                root: Some(RootSpec::Uuid("abc".into())),
                bad_root: None,
                rootfstype: Some("ext4".into()),
                rootflags: Some("data=journal".into()),
                read_only: true,
                wait: RootWait::Forever,
                delay: Some(Duration::from_secs(2)),
                init: Some("/bin/sh".into()),
            }
        );
        let args = BootArgs::parse("rw rootwait=3 root=LABEL=a root=nonsense");
        assert!(!args.read_only);
        assert_eq!(args.wait, RootWait::For(Duration::from_secs(3)));
        assert_eq!(args.root, None);
        assert_eq!(args.bad_root.as_deref(), Some("nonsense"));
        // After `--` the words are init's.
        let args = BootArgs::parse("root=/dev/sda1 -- root=/dev/sdb rw");
        assert_eq!(args.root, Some(RootSpec::Path("sda1".into())));
        assert!(args.read_only);
        assert_eq!(BootArgs::parse(""), BootArgs::default());
    }
}
