//! Differential test: `modprobe -c` of kmod 30 and [`ModprobeConfig::show_config`] on the
//! configurations in `testdata/modprobe`, stdout and warnings alike.
//!
//! kmod reads the kernel command line from `/proc/cmdline`; when this test may create a mount
//! namespace (root), it binds each case's `cmdline` file there, otherwise it feeds the real
//! `/proc/cmdline` to both sides.
#![forbid(unsafe_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use modkit_config::modprobe::{END_OF_CONFIG, ModprobeConfig};
use modkit_testkit::{Missing, require};

/// Runs kmod's `modprobe -c` on `paths` with an empty module directory; returns stdout and
/// the messages of stderr (without kmod's `libkmod: ERROR file:line function:` prefix).
fn kmod_show_config(
    modprobe: &Path,
    paths: &[PathBuf],
    cmdline: Option<&Path>,
    root: &Path,
) -> (String, Vec<String>) {
    let mut args: Vec<std::ffi::OsString> = vec!["-c".into()];
    for p in paths {
        args.push("-C".into());
        args.push(p.into());
    }
    args.extend(["-d".into(), root.into(), "-S".into(), "1.0".into()]);
    let output = match cmdline {
        Some(cmdline) => Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                r#"mount --bind "$1" /proc/cmdline && shift && exec "$@""#,
                "sh",
            ])
            .arg(cmdline)
            .arg(modprobe)
            .args(&args)
            .output(),
        None => Command::new(modprobe).args(&args).output(),
    }
    .expect("run modprobe");
    assert!(output.status.success(), "modprobe -c failed: {output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let messages = stderr
        .lines()
        .map(|l| {
            // "libkmod: ERROR ../libkmod/libkmod-config.c:712 kmod_config_parse: MESSAGE"
            let rest = l.strip_prefix("libkmod: ERROR ").unwrap_or(l);
            let rest = rest.split_once(' ').map_or(rest, |(_, r)| r);
            rest.split_once(": ").map_or(rest, |(_, m)| m).to_owned()
        })
        .collect();
    (
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        messages,
    )
}

/// Whether this process may bind a file over /proc/cmdline in a mount namespace of its own.
fn can_bind_cmdline() -> Result<(), Missing> {
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount --bind /dev/null /proc/cmdline"])
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(Missing::new(
            format!(
                "no mount namespace here ({}); the cases' command lines were not compared, \
                 only the real /proc/cmdline",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            "run the tests as root (a privileged container) with util-linux's unshare",
        )),
        Err(e) => Err(Missing::new(
            format!("unshare: {e}"),
            "apt-get install util-linux, and run as root",
        )),
    }
}

#[test]
fn show_config_matches_kmod() {
    let test = "show_config_matches_kmod";
    let Some(modprobe) = require(test, modkit_testkit::kmod("modprobe")) else {
        return;
    };
    let scratch = std::env::temp_dir().join(format!("modkit-config-kmod-{}", std::process::id()));
    let root = scratch.join("root");
    std::fs::create_dir_all(&root).expect("scratch root");
    // Without a namespace the comparison runs on the real /proc/cmdline only (recorded as a
    // partial skip outside CI, a failure under CI).
    let bind = require(test, can_bind_cmdline()).is_some();
    let real_cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mut compared = 0;
    for case in common::modprobe_cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if name == "weakdep" {
            // kmod 30 predates weakdep (kmod 33): it rejects the lines we accept.
            continue;
        }
        let paths = common::case_paths(&case);
        let (cmdline_text, cmdline_file) = if bind {
            let file = case.join("cmdline");
            let file = if file.exists() {
                file
            } else {
                PathBuf::from("/dev/null")
            };
            (common::case_cmdline(&case), Some(file))
        } else {
            (real_cmdline.clone(), None)
        };
        let (kmod_out, kmod_err) =
            kmod_show_config(&modprobe, &paths, cmdline_file.as_deref(), &root);
        let (config, warnings) = ModprobeConfig::load(&paths, Some(&cmdline_text));
        let ours = config.show_config() + END_OF_CONFIG;
        assert_eq!(ours, kmod_out, "modprobe -c stdout differs for case {name}");
        assert_eq!(
            common::printed_warnings(&warnings),
            kmod_err,
            "warnings differ for case {name}"
        );
        compared += 1;
    }
    std::fs::remove_dir_all(&scratch).ok();
    assert!(compared >= 5, "only {compared} cases compared");
}

#[test]
fn default_dirs_match_kmod() {
    let test = "default_dirs_match_kmod";
    if require(test, modkit_testkit::kmod("modprobe")).is_none() {
        return;
    }
    // kmod 30's default list is compiled in; its strings show the directories in order (the
    // last one, /lib/modprobe.d, shares its bytes with /usr/local/lib/modprobe.d).
    let lib = [
        "/lib/x86_64-linux-gnu/libkmod.so.2",
        "/usr/lib/x86_64-linux-gnu/libkmod.so.2",
    ]
    .into_iter()
    .find_map(|p| std::fs::read(p).ok());
    let found = lib.ok_or_else(|| {
        Missing::new(
            "libkmod.so.2 not found in /lib or /usr/lib/x86_64-linux-gnu",
            "apt-get install libkmod2",
        )
    });
    let Some(lib) = require(test, found) else {
        return;
    };
    let needle = b"/etc/modprobe.d\0/run/modprobe.d\0/usr/local/lib/modprobe.d\0";
    assert!(
        lib.windows(needle.len()).any(|w| w == needle),
        "libkmod's default directories are not {:?}",
        modkit_config::modprobe::DEFAULT_DIRS
    );
}
