//! `modprobe` over a fake module directory holding the sample modules, indexed by our own
//! `depmod`: exact stdout, stderr and exit status for what runs without loading anything (`-n`,
//! `--show-depends`, `-R`, `-c`, lookup failures), and the same commands run by kmod's modprobe
//! when it is installed (it is in CI), which must print the same bytes.
#![deny(unsafe_code)] // common::module_syscalls_fail allows it for its prctl calls

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Output, output};
use modkit_testkit::Scratch;

const VERSION: &str = "1.0-test";

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../kmods/fixtures")
        .join(rel)
}

/// A root with `lib/modules/1.0-test/extra/hello_{api,feature}.ko`, indexed by `modkit depmod`,
/// and a config directory.
struct Root {
    dir: Scratch,
}

impl Root {
    fn new(name: &str, config: &str) -> Root {
        let dir = Scratch::new(&format!("modprobe-{name}"));
        let extra = dir.mkdir(format!("lib/modules/{VERSION}/extra"));
        for module in ["hello_api", "hello_feature"] {
            std::fs::copy(
                fixture(&format!("6.1/{module}.ko")),
                extra.join(format!("{module}.ko")),
            )
            .unwrap();
        }
        dir.write("conf/test.conf", config);
        let depmod = output(
            Command::new(env!("CARGO_BIN_EXE_modkit"))
                .args(["depmod", "-b"])
                .arg(dir.path())
                .arg(VERSION),
        );
        assert_eq!(depmod.code, 0, "depmod: {depmod:?}");
        Root { dir }
    }

    fn moddir(&self) -> String {
        format!("{}/lib/modules/{VERSION}", self.dir.path().display())
    }

    /// `modprobe -d ROOT -S 1.0-test -C ROOT/conf ARGS`, by `program` (ours or kmod's).
    fn run(&self, program: &[&str], args: &[&str]) -> Output {
        self.run_in(Path::new("."), program, args)
    }

    /// [`Root::run`] in the directory `cwd`.
    fn run_in(&self, cwd: &Path, program: &[&str], args: &[&str]) -> Output {
        let mut command = Command::new(program[0]);
        command
            .current_dir(cwd)
            .args(&program[1..])
            .arg("-d")
            .arg(self.dir.path())
            .args(["-S", VERSION, "-C"])
            .arg(self.dir.join("conf"))
            .args(args)
            .env_remove("MODPROBE_OPTIONS");
        output(&mut command)
    }

    fn modkit(&self, args: &[&str]) -> Output {
        self.run(&[env!("CARGO_BIN_EXE_modkit"), "modprobe"], args)
    }
}

/// kmod 30's modprobe, or `None` after a recorded skip (under CI, a failure).
fn kmod_modprobe(test: &str) -> Option<PathBuf> {
    modkit_testkit::require(test, modkit_testkit::kmod("modprobe"))
}

const CONFIG: &str = "options hello_api greeting=hi\nalias my-feature hello_feature\n";

/// The commands compared with kmod, and what they must print.
fn cases(root: &Root) -> Vec<(Vec<&'static str>, Output)> {
    let moddir = root.moddir();
    let ok = |stdout: String| Output {
        stdout,
        stderr: String::new(),
        code: 0,
    };
    vec![
        (
            vec!["--show-depends", "hello_feature"],
            ok(format!(
                "insmod {moddir}/extra/hello_api.ko greeting=hi \ninsmod {moddir}/extra/hello_feature.ko \n"
            )),
        ),
        (
            vec!["-n", "-v", "hello_feature"],
            ok(format!(
                "insmod {moddir}/extra/hello_api.ko greeting=hi \ninsmod {moddir}/extra/hello_feature.ko \n"
            )),
        ),
        (
            vec!["-n", "-v", "my-feature", "extra=1"],
            ok(format!(
                "insmod {moddir}/extra/hello_api.ko greeting=hi \ninsmod {moddir}/extra/hello_feature.ko extra=1\n"
            )),
        ),
        (vec!["-R", "modkit:hello-api"], ok("hello_api\n".to_owned())),
        (vec!["-R", "symbol:api_test"], ok("hello_api\n".to_owned())),
        (
            vec!["-a", "-R", "modkit:hello-api", "my-feature"],
            ok("hello_api\nhello_feature\n".to_owned()),
        ),
        (
            vec!["nosuch"],
            Output {
                stdout: String::new(),
                stderr: format!("modprobe: FATAL: Module nosuch not found in directory {moddir}\n"),
                code: 1,
            },
        ),
        (
            vec!["-q", "nosuch"],
            Output {
                stdout: String::new(),
                stderr: String::new(),
                code: 1,
            },
        ),
    ]
}

#[test]
fn modprobe_prints_what_it_would_do() {
    let root = Root::new("exact", CONFIG);
    for (args, expected) in cases(&root) {
        assert_eq!(root.modkit(&args), expected, "modprobe {args:?}");
    }
}

#[test]
fn modprobe_before_depmod_says_where_it_looked() {
    let dir = Scratch::new("modprobe-unindexed");
    let moddir = dir.join(format!("lib/modules/{VERSION}"));
    dir.write(
        moddir.join("extra/hello_feature.ko"),
        std::fs::read(fixture("6.1/hello_feature.ko")).unwrap(),
    );
    let out = output(
        Command::new(env!("CARGO_BIN_EXE_modkit"))
            .args(["modprobe", "-d"])
            .arg(dir.path())
            .args(["-S", VERSION, "-C", "/dev/null", "hello_feature"]),
    );
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        format!(
            "modprobe: FATAL: Module hello_feature not found in directory {}\n",
            moddir.display()
        )
    );
    assert_eq!(out.code, 1);
}

/// Each command line `cases` gives for a fresh root, run by modkit and by kmod 30's
/// modprobe: the same bytes, the same status.
fn same_as_kmod<A: AsRef<str>>(test: &str, cases: impl Fn(&Root) -> Vec<Vec<A>>) {
    let Some(kmod) = kmod_modprobe(test) else {
        return;
    };
    let kmod = kmod.to_str().expect("kmod's path is UTF-8");
    let root = Root::new(test, CONFIG);
    let cases = cases(&root);
    assert!(!cases.is_empty());
    for args in cases {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        assert_eq!(
            root.modkit(&args),
            root.run(&[kmod], &args),
            "modprobe {args:?}"
        );
    }
}

#[test]
fn same_output_as_kmod() {
    same_as_kmod("same_output_as_kmod", |root| {
        cases(root).into_iter().map(|(args, _)| args).collect()
    });
}

/// `modprobe -d ROOT -S 1.0-test -C ROOT/conf ARGS` by `program`, where ROOT has no module
/// directory at all.
fn without_module_dir(root: &Path, program: &[&str], args: &[&str]) -> Output {
    output(
        Command::new(program[0])
            .args(&program[1..])
            .arg("-d")
            .arg(root)
            .args(["-S", VERSION, "-C"])
            .arg(root.join("conf"))
            .args(args)
            .env_remove("MODPROBE_OPTIONS"),
    )
}

/// What modprobe prints with no module directory, as kmod 30 prints it: configured aliases
/// and install commands still work, and a name not found is reported with the directory.
fn missing_dir_cases(moddir: &str) -> Vec<(Vec<&'static str>, Output)> {
    let failed = |stderr: String| Output {
        stdout: String::new(),
        stderr,
        code: 1,
    };
    vec![
        (
            vec!["hello_feature"],
            failed(format!(
                "modprobe: FATAL: Module hello_feature not found in directory {moddir}\n"
            )),
        ),
        (
            vec!["-a", "nosuch", "other"],
            failed(format!(
                "modprobe: WARNING: Module nosuch not found in directory {moddir}\n\
                 modprobe: WARNING: Module other not found in directory {moddir}\n"
            )),
        ),
        (
            vec!["-r", "hello_feature"],
            failed("modprobe: FATAL: Module hello_feature not found.\n".to_owned()),
        ),
        (
            vec!["-R", "my-feature"],
            Output {
                stdout: "hello_feature\n".to_owned(),
                stderr: String::new(),
                code: 0,
            },
        ),
        (
            vec!["fake-thing"],
            Output {
                stdout: String::new(),
                stderr: String::new(),
                code: 0,
            },
        ),
    ]
}

const MISSING_DIR_CONFIG: &str = "install fake-thing /bin/true\nalias my-feature hello_feature\n";

#[test]
fn a_missing_module_directory_is_named_as_kmod_names_it() {
    let root = Scratch::new("modprobe-no-moddir");
    root.write("conf/test.conf", MISSING_DIR_CONFIG);
    let moddir = root.join("lib/modules").join(VERSION);
    let modkit = [env!("CARGO_BIN_EXE_modkit"), "modprobe"];
    for (args, expected) in missing_dir_cases(&moddir.display().to_string()) {
        assert_eq!(
            without_module_dir(root.path(), &modkit, &args),
            expected,
            "modprobe {args:?}"
        );
    }
    // -c needs no module directory: the configuration, then no index.
    let shown = without_module_dir(root.path(), &modkit, &["-c"]);
    assert!(
        shown
            .stdout
            .starts_with("install fake_thing /bin/true\nalias my_feature hello_feature\n"),
        "{shown:?}"
    );
    assert!(
        shown
            .stdout
            .ends_with("\n# End of configuration files. Dumping indexes now:\n\n"),
        "{shown:?}"
    );
    assert_eq!((shown.stderr.as_str(), shown.code), ("", 0));
}

#[test]
fn a_missing_module_directory_same_output_as_kmod() {
    let Some(kmod) = kmod_modprobe("a_missing_module_directory_same_output_as_kmod") else {
        return;
    };
    let kmod = kmod.to_str().expect("kmod's path is UTF-8");
    let root = Scratch::new("modprobe-no-moddir-kmod");
    root.write("conf/test.conf", MISSING_DIR_CONFIG);
    let moddir = root.join("lib/modules").join(VERSION);
    let modkit = [env!("CARGO_BIN_EXE_modkit"), "modprobe"];
    let mut args: Vec<Vec<&str>> = missing_dir_cases(&moddir.display().to_string())
        .into_iter()
        .map(|(args, _)| args)
        .collect();
    args.push(vec!["-c"]);
    args.push(vec!["-q", "nosuch"]);
    for args in args {
        assert_eq!(
            without_module_dir(root.path(), &modkit, &args),
            without_module_dir(root.path(), &[kmod], &args),
            "modprobe {args:?}"
        );
    }
}

/// `--show-exports`, `--show-modversions` and its alias `--dump-modversions` on module files:
/// `0x%08x<TAB>SYMBOL` lines (exports from `__crc_` symbols, `__versions` in section order),
/// compressed files read too, and libkmod's errno text when a file has nothing to show or is
/// missing.
fn symbol_cases() -> Vec<(Vec<String>, Output)> {
    let path = |rel: &str| fixture(rel).display().to_string();
    let ok = |stdout: &str| Output {
        stdout: stdout.to_owned(),
        stderr: String::new(),
        code: 0,
    };
    let failed = |stderr: String| Output {
        stdout: String::new(),
        stderr,
        code: 1,
    };
    let feature_versions = "0x92997ed8\t_printk\n0xbdfb6dbb\t__fentry__\n0xa83d4555\tapi_test\n\
                            0x5b8239ca\t__x86_return_thunk\n0x9060323f\tmodule_layout\n";
    let args = |flag: &str, rel: &str| vec![flag.to_owned(), path(rel)];
    vec![
        (
            args("--show-exports", "6.1/hello_api.ko"),
            ok("0xa83d4555\tapi_test\n"),
        ),
        (
            args("--show-exports", "6.12/hello_api.ko.xz"),
            ok("0xa83d4555\tapi_test\n"),
        ),
        (
            args("--show-modversions", "6.1/hello_feature.ko"),
            ok(feature_versions),
        ),
        (
            args("--dump-modversions", "6.1/hello_feature.ko"),
            ok(feature_versions),
        ),
        (
            args("--show-modversions", "6.12/hello_api.ko.zst"),
            ok(
                "0x122c3a7e\t_printk\n0x5b8239ca\t__x86_return_thunk\n0xde474460\tparam_ops_charp\n\
                0xbdfb6dbb\t__fentry__\n0x2f9b2b9a\tmodule_layout\n",
            ),
        ),
        (
            args("--show-exports", "6.1/hello_feature.ko"),
            failed(format!(
                "modprobe: FATAL: could not get symbols of {}: No such file or directory\n",
                path("6.1/hello_feature.ko")
            )),
        ),
        (
            args("--show-exports", "6.1/nosuch.ko"),
            failed(format!(
                "modprobe: FATAL: Module {} not found.\n",
                path("6.1/nosuch.ko")
            )),
        ),
    ]
}

#[test]
fn show_exports_and_modversions_print_crcs() {
    let root = Root::new("symbols", CONFIG);
    let cases = symbol_cases();
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(&root.modkit(&args), expected, "modprobe {args:?}");
    }
    // kmod takes only a file; a name is looked up too (kmod 30: "Module hello_api not found.").
    assert_eq!(
        root.modkit(&["--show-exports", "hello-api"]),
        Output {
            stdout: "0xa83d4555\tapi_test\n".to_owned(),
            stderr: String::new(),
            code: 0
        }
    );
}

#[test]
fn show_exports_and_modversions_same_output_as_kmod() {
    same_as_kmod("show_exports_and_modversions_same_output_as_kmod", |_| {
        symbol_cases().into_iter().map(|(args, _)| args).collect()
    });
}

/// A module given as a path (`/...` or `./...`) is that file, loaded after its modules.dep
/// dependencies (looked up by its module name), as kmod >= 31 does; kmod 30 looks the path
/// up as a name and finds nothing, so this is pinned here.
#[test]
fn a_module_given_as_a_path_is_that_file_with_its_dependencies() {
    let root = Root::new("path", CONFIG);
    let moddir = root.moddir();
    // A copy outside the module directory still gets hello_api from modules.dep.
    let copy = root.dir.write(
        "elsewhere/hello_feature.ko",
        std::fs::read(fixture("6.1/hello_feature.ko")).unwrap(),
    );
    let copy = copy.display().to_string();
    let ok = |stdout: String| Output {
        stdout,
        stderr: String::new(),
        code: 0,
    };
    assert_eq!(
        root.modkit(&["--show-depends", &copy, "x=1"]),
        ok(format!(
            "insmod {moddir}/extra/hello_api.ko greeting=hi \ninsmod {copy} x=1\n"
        ))
    );
    let modkit = [env!("CARGO_BIN_EXE_modkit"), "modprobe"];
    let relative = ["-n", "-v", "./elsewhere/hello_feature.ko"];
    assert_eq!(
        root.run_in(root.dir.path(), &modkit, &relative),
        ok(format!(
            "insmod {moddir}/extra/hello_api.ko greeting=hi \ninsmod {copy} \n"
        ))
    );
    let missing = root.dir.join("elsewhere/nosuch.ko").display().to_string();
    assert_eq!(
        root.modkit(&["-n", &missing]),
        Output {
            stdout: String::new(),
            stderr: format!(
                "modprobe: FATAL: Failed to get module from path {missing}: No such file or directory\n"
            ),
            code: 1,
        }
    );
}

/// `modprobe -c` lists the `weakdep` lines of the module directory's `modules.weakdep`, as
/// kmod >= 33 does, after the softdeps; kmod 30 reads no such file, so its output is ours
/// without those lines.
#[test]
fn show_config_lists_the_weakdeps_of_modules_weakdep() {
    let root = Root::new("weakdep", CONFIG);
    root.dir.write(
        format!("lib/modules/{VERSION}/modules.weakdep"),
        "# Weak dependencies extracted from modules themselves.\nweakdep hello_feature hello_api\n",
    );
    let ours = root.modkit(&["-c"]);
    let line = "weakdep hello_feature hello_api\n";
    assert_eq!((ours.stderr.as_str(), ours.code), ("", 0), "{ours:?}");
    let config_part = ours
        .stdout
        .split("\n# End of configuration files.")
        .next()
        .unwrap();
    assert!(config_part.ends_with(line), "{ours:?}");
    let Some(kmod) = kmod_modprobe("show_config_lists_the_weakdeps_of_modules_weakdep") else {
        return;
    };
    let theirs = root.run(&[kmod.to_str().unwrap()], &["-c"]);
    assert_eq!(ours.stdout.replacen(line, "", 1), theirs.stdout);
    assert_eq!((theirs.stderr.as_str(), theirs.code), ("", 0));
}

/// The module directory's `modules.softdep` is one more configuration file, sorted by name
/// among the modprobe.d files as libkmod sorts it (`a.conf`, `modules.softdep`, `z.conf`):
/// `modprobe -c` lists the softdeps in that order, and the first softdep line of a module
/// is the one that counts.
#[test]
fn modules_softdep_sorts_among_the_configuration_files() {
    let root = Root::new("softdep-order", CONFIG);
    root.dir.write(
        format!("lib/modules/{VERSION}/modules.softdep"),
        "# Soft dependencies extracted from modules themselves.\nsoftdep hello_feature post: hello_api\n",
    );
    root.dir
        .write("conf/a.conf", "softdep hello_api pre: a_first\n");
    root.dir
        .write("conf/z.conf", "softdep hello_feature pre: z_last\n");
    let ours = root.modkit(&["-c"]);
    assert_eq!((ours.stderr.as_str(), ours.code), ("", 0), "{ours:?}");
    let softdeps: Vec<&str> = ours
        .stdout
        .lines()
        .filter(|line| line.starts_with("softdep "))
        .collect();
    assert_eq!(
        softdeps,
        [
            "softdep hello_api pre: a_first",
            "softdep hello_feature post: hello_api",
            "softdep hello_feature pre: z_last",
        ]
    );
    // modules.softdep's line comes before z.conf's: hello_feature's post: hello_api counts.
    let shown = root.modkit(&["--show-depends", "hello_feature"]);
    assert_eq!((shown.stderr.as_str(), shown.code), ("", 0), "{shown:?}");
    assert!(!shown.stdout.contains("z_last"), "{shown:?}");
    let Some(kmod) = kmod_modprobe("modules_softdep_sorts_among_the_configuration_files") else {
        return;
    };
    for args in [&["-c"][..], &["--show-depends", "hello_feature"]] {
        let mut ours = root.modkit(args);
        let theirs = root.run(&[kmod.to_str().unwrap()], args);
        ours.stdout = ours.stdout.replace(env!("CARGO_BIN_EXE_modkit"), "");
        assert_eq!(ours, theirs, "modprobe {args:?}");
    }
}
