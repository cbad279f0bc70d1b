//! The insmod, rmmod and lsmod command lines: exact stdout, stderr and exit status, over fake
//! `/proc` and `/sys/module` trees (through the `MODKIT_PROC`/`MODKIT_SYS_MODULE` test hooks),
//! and against kmod itself where a private mount namespace can show both tools the same fake
//! trees. Nothing here makes a module syscall that could succeed.
#![deny(unsafe_code)] // common::module_syscalls_fail allows it for its prctl calls

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Output, delete_module_fails, output};
use modkit_testkit::{Missing, Scratch, require};

/// `modkit ARGS...`, seeing `trees` (if any) as its /proc and /sys/module.
fn modkit(args: &[&str], trees: Option<&Trees>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modkit"));
    command
        .args(args)
        .env_remove("MODKIT_PROC")
        .env_remove("MODKIT_SYS_MODULE")
        .env_remove("MODKIT_LIB_MODULES");
    if let Some(trees) = trees {
        command
            .env("MODKIT_PROC", trees.proc())
            .env("MODKIT_SYS_MODULE", trees.sys_module());
    }
    output(&mut command)
}

/// Pin everything a run shows.
#[track_caller]
fn check(args: &[&str], trees: Option<&Trees>, stdout: &str, stderr: &str, code: i32) {
    let expected = Output {
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
        code,
    };
    assert_eq!(modkit(args, trees), expected, "modkit {args:?}");
}

/// Fake `/proc` and `/sys/module` trees in a scratch directory.
struct Trees(Scratch);

impl Trees {
    fn new(name: &str) -> Trees {
        let dir = Scratch::new(&format!("cli-{name}"));
        dir.mkdir("sys/module");
        dir.write("proc/modules", "");
        Trees(dir)
    }

    fn proc(&self) -> PathBuf {
        self.0.join("proc")
    }

    fn sys_module(&self) -> PathBuf {
        self.0.join("sys/module")
    }

    /// A loaded module, as the kernel shows it in both trees.
    fn loaded(self, name: &str, size: u64, refcnt: u32, holders: &[&str]) -> Trees {
        let used_by = if holders.is_empty() {
            "-".to_owned()
        } else {
            format!("{},", holders.join(","))
        };
        let line = format!("{name} {size} {refcnt} {used_by} Live 0x0000000000000000\n");
        let mut modules = fs::read_to_string(self.proc().join("modules")).unwrap();
        modules.push_str(&line);
        fs::write(self.proc().join("modules"), modules).unwrap();
        let dir = self.sys_module().join(name);
        fs::create_dir_all(dir.join("holders")).unwrap();
        fs::write(dir.join("initstate"), "live\n").unwrap();
        fs::write(dir.join("refcnt"), format!("{refcnt}\n")).unwrap();
        for holder in holders {
            fs::write(dir.join("holders").join(holder), "").unwrap();
        }
        self
    }

    /// A module directory as the kernel makes one for a built-in module with parameters.
    fn builtin(self, name: &str) -> Trees {
        fs::create_dir_all(self.sys_module().join(name).join("parameters")).unwrap();
        self
    }

    /// The modules of the VM test, `hello_feature` using `hello_api`, and a long name.
    fn sample(name: &str) -> Trees {
        Trees::new(name)
            .loaded("hello_feature", 12288, 0, &[])
            .loaded("hello_api", 12288, 1, &["hello_feature"])
            .loaded("snd_hda_codec_realtek", 196608, 1, &[])
            .loaded("snd_hda_codec", 200704, 2, &["snd_hda_codec_realtek"])
    }
}

const SAMPLE_LSMOD: &str = "\
Module                  Size  Used by
hello_feature          12288  0
hello_api              12288  1 hello_feature
snd_hda_codec_realtek   196608  1
snd_hda_codec         200704  2 snd_hda_codec_realtek
";

#[test]
fn lsmod_prints_kmods_table() {
    let trees = Trees::sample("lsmod");
    check(&["lsmod"], Some(&trees), SAMPLE_LSMOD, "", 0);
    let empty = Trees::new("lsmod-empty");
    check(
        &["lsmod"],
        Some(&empty),
        "Module                  Size  Used by\n",
        "",
        0,
    );
}

#[test]
fn lsmod_without_proc_modules_fails_as_kmod_30() {
    let trees = Trees::new("lsmod-noproc");
    fs::remove_file(trees.proc().join("modules")).unwrap();
    check(
        &["lsmod"],
        Some(&trees),
        "",
        "Error: could not get list of modules: No such file or directory\n",
        1,
    );
}

#[test]
fn lsmod_rejects_arguments() {
    let out = modkit(&["lsmod", "extra"], None);
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));
    assert!(
        out.stderr
            .starts_with("error: unexpected argument 'extra' found\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn rmmod_reports_each_refusal_and_fails_at_the_end() {
    let trees = Trees::sample("rmmod").builtin("vt");
    fs::remove_file(trees.sys_module().join("snd_hda_codec_realtek/refcnt")).unwrap();
    check(
        &[
            "rmmod",
            "hello-api",
            "nope",
            "vt",
            "snd_hda_codec",
            "snd_hda_codec_realtek",
            "/no/such/file.ko",
        ],
        Some(&trees),
        "",
        "rmmod: ERROR: Module hello_api is in use by: hello_feature\n\
         rmmod: ERROR: Module nope is not currently loaded\n\
         rmmod: ERROR: Module vt is builtin.\n\
         rmmod: ERROR: Module snd_hda_codec is in use by: snd_hda_codec_realtek\n\
         rmmod: ERROR: Module unloading is not supported\n\
         rmmod: ERROR: Module /no/such/file is not currently loaded\n",
        1,
    );
}

#[test]
fn rmmod_takes_the_name_of_an_existing_file() {
    let trees = Trees::sample("rmmod-path");
    let file = trees.0.join("hello_api.ko.xz");
    fs::write(&file, "").unwrap();
    check(
        &["rmmod", file.to_str().unwrap()],
        Some(&trees),
        "",
        "rmmod: ERROR: Module hello_api is in use by: hello_feature\n",
        1,
    );
}

#[test]
fn rmmod_of_a_path_that_names_no_module_says_so_like_kmod() {
    let trees = Trees::sample("rmmod-dir");
    // The base name of `DIR/` is empty: kmod 30 says so (then stops and exits 0; modkit
    // goes on with the other arguments and fails at the end).
    let dir = format!("{}/", trees.0.path().display());
    check(
        &["rmmod", &dir, "nope"],
        Some(&trees),
        "",
        &format!(
            "rmmod: ERROR: could not use module {dir}: No such file or directory\n\
             rmmod: ERROR: Module nope is not currently loaded\n"
        ),
        1,
    );
}

#[test]
fn usage_errors_exit_1() {
    check(
        &["rmmod"],
        None,
        "",
        "rmmod: ERROR: missing module name.\n",
        1,
    );
    check(
        &["insmod"],
        None,
        "",
        "insmod: ERROR: missing filename.\n",
        1,
    );
    check(
        &["insmod", "-"],
        None,
        "",
        "insmod: ERROR: this tool does not support loading from stdin!\n",
        1,
    );
    for tool in ["insmod", "rmmod", "lsmod"] {
        let out = modkit(&[tool, "--no-such-option"], None);
        assert_eq!((out.code, out.stdout.as_str()), (1, ""), "{tool}");
        assert!(
            out.stderr
                .starts_with("error: unexpected argument '--no-such-option' found\n"),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn insmod_of_a_missing_file_says_so_like_kmod() {
    check(
        &["insmod", "/no/such/dir/hello_api.ko", "greeting=hi"],
        None,
        "",
        "insmod: ERROR: could not load module /no/such/dir/hello_api.ko: No such file or directory\n",
        1,
    );
}

#[test]
fn help_goes_to_stdout() {
    for (tool, usage) in [
        ("insmod", "Usage: insmod [OPTIONS] [FILE] [PARAMS]...\n"),
        ("rmmod", "Usage: rmmod [OPTIONS] [MODULE]...\n"),
        ("lsmod", "Usage: lsmod [OPTIONS]\n"),
    ] {
        let out = modkit(&[tool, "--help"], None);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{tool}");
        assert!(out.stdout.contains(usage), "{tool}: {}", out.stdout);
        assert!(
            out.stdout.contains("  -V, --version"),
            "{tool}: {}",
            out.stdout
        );
    }
    let out = modkit(&["insmod", "-h"], None);
    assert!(out.stdout.contains("-f, --force"), "{}", out.stdout);
}

/// Run `program args...` in a private mount namespace whose /proc and /sys/module are `trees`,
/// or say why that cannot be done here.
fn in_namespace(trees: &Trees, program: &Path, args: &[&str]) -> Result<Output, String> {
    in_namespace_refusing(trees, program, args, None)
}

/// [`in_namespace`], with every `delete_module` answered by `refusal` (an errno) if given.
fn in_namespace_refusing(
    trees: &Trees,
    program: &Path,
    args: &[&str],
    refusal: Option<i32>,
) -> Result<Output, String> {
    let script =
        r#"mount --bind "$1" /proc && mount --bind "$2" /sys/module && shift 2 && exec "$@""#;
    let mut command = Command::new("unshare");
    command
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(trees.proc())
        .arg(trees.sys_module())
        .arg(program)
        .args(args);
    command
        .env_remove("MODKIT_PROC")
        .env_remove("MODKIT_SYS_MODULE");
    if let Some(errno) = refusal {
        delete_module_fails(&mut command, errno);
    }
    let out = command
        .output()
        .map_err(|err| format!("cannot run unshare: {err}"))?;
    if !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("unshare:") {
        return Err(format!(
            "unshare -m refused: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    })
}

#[test]
fn same_output_as_kmod_over_the_same_trees() {
    let test = "same_output_as_kmod_over_the_same_trees";
    let trees = Trees::sample("kmod-diff");
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_modkit"));
    let cases: &[&[&str]] = &[
        &["lsmod"],
        &["kmod", "list"],
        &["rmmod", "hello_api", "nope", "snd-hda-codec"],
        &["rmmod", "-v", "hello_api"],
        // Module names: every `-` made `_`, brackets included, cut at the first `.`.
        &["rmmod", "a[x-y]", "snd-hda.intel"],
    ];
    for args in cases {
        let (tool, tool_args) = (args[0], &args[1..]);
        let Some(kmod) = require(test, modkit_testkit::kmod(tool)) else {
            return;
        };
        let theirs = in_namespace(&trees, &kmod, tool_args).map_err(|why| {
            Missing::new(
                why,
                "run the tests as root with util-linux's unshare (CI does)",
            )
        });
        let Some(theirs) = require(test, theirs) else {
            return;
        };
        // Our default paths, not the test hooks: the namespace shows us the fake trees.
        let mine = in_namespace(&trees, &ours, args).unwrap();
        assert_eq!(mine, theirs, "{args:?}");
    }
    assert_eq!(
        in_namespace(&trees, &ours, &["lsmod"]).unwrap().stdout,
        SAMPLE_LSMOD
    );
}

#[test]
fn rmmod_when_the_kernel_refuses_prints_libkmods_line_then_its_own() {
    let trees = Trees::sample("rmmod-refused").loaded("snd_hda_intel", 65536, 0, &[]);
    for (errno, text) in [
        (libc::EBUSY, "Device or resource busy"),
        (libc::EAGAIN, "Resource temporarily unavailable"),
        (libc::EPERM, "Operation not permitted"),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modkit"));
        command
            .args(["rmmod", "hello_feature", "snd-hda-intel"])
            .env("MODKIT_PROC", trees.proc())
            .env("MODKIT_SYS_MODULE", trees.sys_module());
        let out = output(delete_module_fails(&mut command, errno));
        let libkmod = "rmmod: ERROR: ../libkmod/libkmod-module.c:856 kmod_module_remove_module()";
        let expected = Output {
            stdout: String::new(),
            stderr: format!(
                "{libkmod} could not remove 'hello_feature': {text}\n\
                 rmmod: ERROR: could not remove module hello_feature: {text}\n\
                 {libkmod} could not remove 'snd_hda_intel': {text}\n\
                 rmmod: ERROR: could not remove module snd-hda-intel: {text}\n"
            ),
            code: 1,
        };
        assert_eq!(out, expected, "{text}");
    }
}

#[test]
fn rmmod_refused_as_kmod_30() {
    let test = "rmmod_refused_as_kmod_30";
    let trees = Trees::sample("rmmod-refused-kmod").loaded("snd_hda_intel", 65536, 0, &[]);
    let Some(kmod) = require(test, modkit_testkit::kmod("rmmod")) else {
        return;
    };
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_modkit"));
    let mut compared = 0;
    for errno in [libc::EBUSY, libc::EAGAIN, libc::EPERM] {
        let args = ["hello_feature", "snd-hda-intel"];
        let theirs = in_namespace_refusing(&trees, &kmod, &args, Some(errno)).map_err(|why| {
            Missing::new(
                why,
                "run the tests as root with util-linux's unshare (CI does)",
            )
        });
        let Some(theirs) = require(test, theirs) else {
            return;
        };
        let mine = in_namespace_refusing(
            &trees,
            &ours,
            &[&["rmmod"][..], &args].concat(),
            Some(errno),
        )
        .unwrap();
        assert_eq!(theirs.stderr.lines().count(), 4, "{theirs:?}");
        assert_eq!(mine, theirs, "errno {errno}");
        compared += 1;
    }
    assert_eq!(compared, 3);
}

/// Trees where `hello_api` is loaded and used `refcnt` times, and under them `root/` with a
/// module directory `lib/modules/1.0` that has it, indexed by our depmod; and that root.
fn modprobe_remove_trees(name: &str, refcnt: u32) -> (Trees, String) {
    let trees = Trees::new(name).loaded("hello_api", 16384, refcnt, &[]);
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kmods/fixtures/6.1/hello_api.ko");
    trees.0.write(
        "root/lib/modules/1.0/extra/hello_api.ko",
        fs::read(fixture).unwrap(),
    );
    for input in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        trees.0.write(format!("root/lib/modules/1.0/{input}"), "");
    }
    let root = trees.0.join("root").to_str().unwrap().to_owned();
    let depmod = modkit(&["depmod", "-b", &root, "--no-cache", "1.0"], None);
    assert_eq!((depmod.code, depmod.stderr.as_str()), (0, ""), "{depmod:?}");
    (trees, root)
}

/// `modkit modprobe ARGS` over `trees`, every `delete_module` answered with `errno`.
fn modprobe_refused(trees: &Trees, args: &[&str], errno: i32) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modkit"));
    command
        .arg("modprobe")
        .args(args)
        .env("MODKIT_PROC", trees.proc())
        .env("MODKIT_SYS_MODULE", trees.sys_module());
    output(delete_module_fails(&mut command, errno))
}

/// kmod 30's modprobe run with `args` over `trees` in a private mount namespace, every
/// `delete_module` answered with `errno`; `None` after a recorded skip.
fn kmod_modprobe_refused(test: &str, trees: &Trees, args: &[&str], errno: i32) -> Option<Output> {
    let kmod = require(test, modkit_testkit::kmod("modprobe"))?;
    let theirs = in_namespace_refusing(trees, &kmod, args, Some(errno)).map_err(|why| {
        Missing::new(
            why,
            "run the tests as root with util-linux's unshare (CI does)",
        )
    });
    require(test, theirs)
}

#[test]
fn modprobe_remove_refused_as_kmod_30() {
    let test = "modprobe_remove_refused_as_kmod_30";
    let (trees, root) = modprobe_remove_trees("modprobe-refused", 0);
    let args = ["-d", &root, "-S", "1.0", "-r", "hello_api"];
    let mine = modprobe_refused(&trees, &args, libc::EBUSY);
    let expected = Output {
        stdout: String::new(),
        // libkmod's line only: kmod 30's modprobe adds none of its own.
        stderr: "modprobe: ERROR: ../libkmod/libkmod-module.c:856 kmod_module_remove_module() \
                 could not remove 'hello_api': Device or resource busy\n"
            .into(),
        code: 1,
    };
    assert_eq!(mine, expected);
    if let Some(theirs) = kmod_modprobe_refused(test, &trees, &args, libc::EBUSY) {
        assert_eq!(theirs, expected);
    }
}

/// `modprobe -r -w MSEC`: a module in use is not refused for its reference count; the
/// kernel is asked again while it answers EAGAIN, until MSEC have passed, and a failure is
/// kmod's own line instead of libkmod's. One deliberate difference: when time runs out,
/// kmod 30 exits 0 and says nothing (its last pause overwrites the error); modkit says it
/// could not remove the module and fails.
#[test]
fn modprobe_remove_waits_as_kmod_30() {
    let test = "modprobe_remove_waits_as_kmod_30";
    let (trees, root) = modprobe_remove_trees("modprobe-wait", 1);
    let failed = |stderr: &str| Output {
        stdout: String::new(),
        stderr: stderr.to_owned(),
        code: 1,
    };
    let waiting = ["-d", &root, "-S", "1.0", "-r", "-w", "300", "hello_api"];
    // A run that answers must have taken the whole wait.
    let timed = |program: &dyn Fn() -> Option<Output>| {
        let started = std::time::Instant::now();
        let out = program();
        let waited = started.elapsed();
        assert!(
            out.is_none() || waited >= std::time::Duration::from_millis(300),
            "gave up after {waited:?}"
        );
        out
    };
    let mine = timed(&|| Some(modprobe_refused(&trees, &waiting, libc::EAGAIN)));
    let gave_up =
        failed("modprobe: ERROR: could not remove 'hello_api': Resource temporarily unavailable\n");
    assert_eq!(mine, Some(gave_up));

    // Shared with kmod 30 byte for byte: another refusal ends the wait at once, with kmod's
    // line; without -w the reference count refuses the module before the kernel is asked;
    // a value strtoul does not read whole is refused before anything else.
    let cases = [
        (
            &waiting[..],
            libc::EPERM,
            failed("modprobe: ERROR: could not remove 'hello_api': Operation not permitted\n"),
        ),
        (
            &["-d", &root, "-S", "1.0", "-r", "hello_api"][..],
            libc::EAGAIN,
            failed("modprobe: FATAL: Module hello_api is in use.\n"),
        ),
        (
            &["-r", "-w", "10ms", "hello_api"][..],
            libc::EAGAIN,
            failed("modprobe: ERROR: unexpected wait value '10ms'.\n"),
        ),
    ];
    for (args, errno, expected) in &cases {
        assert_eq!(
            &modprobe_refused(&trees, args, *errno),
            expected,
            "{args:?}"
        );
    }

    let Some(theirs) = timed(&|| kmod_modprobe_refused(test, &trees, &waiting, libc::EAGAIN))
    else {
        return;
    };
    assert_eq!(
        theirs,
        Output {
            stdout: String::new(),
            stderr: String::new(),
            code: 0
        }
    );
    let mut compared = 0;
    for (args, errno, expected) in &cases {
        let Some(theirs) = kmod_modprobe_refused(test, &trees, args, *errno) else {
            return;
        };
        assert_eq!(&theirs, expected, "{args:?}");
        compared += 1;
    }
    assert_eq!(compared, cases.len());
}

/// How `command` ends with its standard output (or error) a pipe nobody reads: the signal
/// that killed it, or its exit status.
fn ending_on_a_closed_pipe(command: &mut Command, stderr: bool) -> (Option<i32>, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    if stderr {
        command.stderr(writer).stdout(std::process::Stdio::null());
    } else {
        command.stdout(writer).stderr(std::process::Stdio::piped());
    }
    let out = command.output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{out:?}"
    );
    (out.status.signal(), out.status.code())
}

#[test]
fn a_closed_pipe_ends_the_tools_as_it_ends_kmod() {
    let trees = Trees::sample("closed-pipe");
    let modkit = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modkit"));
        command
            .args(args)
            .env("MODKIT_PROC", trees.proc())
            .env("MODKIT_SYS_MODULE", trees.sys_module());
        command
    };
    let killed = (Some(libc::SIGPIPE), None);
    for args in [
        &["lsmod"][..],
        &["kmod", "help"],
        &["kmod", "list"],
        &["--list"],
        &["--help"],
        &["modinfo", "-V"],
    ] {
        assert_eq!(
            ending_on_a_closed_pipe(&mut modkit(args), false),
            killed,
            "{args:?}"
        );
    }
    assert_eq!(
        ending_on_a_closed_pipe(&mut modkit(&["rmmod", "nope"]), true),
        killed
    );
    let test = "a_closed_pipe_ends_the_tools_as_it_ends_kmod";
    let Some(kmod) = require(test, modkit_testkit::kmod("kmod")) else {
        return;
    };
    assert_eq!(
        ending_on_a_closed_pipe(Command::new(kmod).arg("help"), false),
        killed
    );
}

#[test]
fn configuration_warnings_as_kmod_30_prints_them() {
    let test = "configuration_warnings_as_kmod_30_prints_them";
    let trees = Trees::new("config-warnings");
    trees
        .0
        .write("proc/cmdline", "BOOT_IMAGE=x a[b.c=1 foo.bar=2 x-y.z\n");
    let conf = trees.0.write("bad.conf", "bogus line\ninclude x\n");
    let args = ["-C", conf.to_str().unwrap(), "-c"];
    let mut command = Command::new(env!("CARGO_BIN_EXE_modkit"));
    command
        .arg("modprobe")
        .args(args)
        .env("MODKIT_PROC", trees.proc());
    let mine = output(&mut command);
    let libkmod = "libkmod: ERROR ../libkmod/libkmod-config.c";
    let conf = conf.display();
    assert_eq!(
        mine.stderr,
        format!(
            "{libkmod}:712 kmod_config_parse: {conf} line 1: ignoring bad line starting with 'bogus'\n\
             {libkmod}:708 kmod_config_parse: {conf}: command include is deprecated and not parsed anymore\n\
             {libkmod}:489 kcmdline_parse_result: Ignoring bad option on kernel command line while parsing module name: 'a[b'\n"
        )
    );
    assert!(
        mine.stdout
            .starts_with("options foo bar=2\noptions x_y z\n"),
        "{}",
        mine.stdout
    );
    let Some(kmod) = require(test, modkit_testkit::kmod("modprobe")) else {
        return;
    };
    let theirs = in_namespace(&trees, &kmod, &args).map_err(|why| {
        Missing::new(
            why,
            "run the tests as root with util-linux's unshare (CI does)",
        )
    });
    let Some(theirs) = require(test, theirs) else {
        return;
    };
    assert_eq!(theirs.stderr, mine.stderr);
}

#[test]
fn every_tool_says_its_version_in_kmods_shape() {
    let expected = format!(
        "modkit version {}\n+ZSTD +XZ +ZLIB +LIBCRYPTO\n",
        env!("CARGO_PKG_VERSION")
    );
    for tool in [
        &["--version"][..],
        &["insmod", "-V"],
        &["rmmod", "--version"],
        &["lsmod", "-V"],
        &["modinfo", "-V"],
        &["modprobe", "-V"],
        &["depmod", "-V"],
        &["kmod", "--version"],
    ] {
        let out = modkit(tool, None);
        assert_eq!(
            (out.stdout.as_str(), out.code),
            (expected.as_str(), 0),
            "{tool:?}"
        );
    }
}
