//! The depmod command line: exact stdout, stderr and exit status, on small trees made of the
//! sample module fixtures and of synthetic modules; where kmod's depmod is installed, the same
//! runs of kmod give the same output, files and status.

mod common;

#[path = "../../modkit-depgraph/tests/common/elf.rs"]
mod elf;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Output, output};

use elf::{Spec, build};

fn modkit_depmod(args: &[&str]) -> Output {
    output(
        Command::new(env!("CARGO_BIN_EXE_modkit"))
            .arg("depmod")
            .args(args),
    )
}

/// A scratch root with `lib/modules/1.0`, removed when dropped.
struct Root(PathBuf);

impl Root {
    fn new(name: &str) -> Root {
        let dir =
            std::env::temp_dir().join(format!("modkit-cli-depmod-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("lib/modules/1.0")).unwrap();
        Root(dir)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
    fn moddir(&self) -> PathBuf {
        self.0.join("lib/modules/1.0")
    }
    fn add(&self, rel: &str, bytes: &[u8]) {
        let p = self.moddir().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
    /// The files depmod wrote (everything at the top of the module directory).
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        fs::read_dir(self.moddir())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().unwrap().is_file())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn fixture(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../kmods/fixtures/6.1")
            .join(name),
    )
    .unwrap()
}

fn sample_root(name: &str) -> Root {
    let r = Root::new(name);
    r.add("extra/hello_api.ko", &fixture("hello_api.ko"));
    r.add("extra/hello_feature.ko", &fixture("hello_feature.ko"));
    r
}

fn missing_warnings(r: &Root) -> String {
    let dir = r.moddir();
    let d = dir.display();
    format!(
        "depmod: WARNING: could not open modules.order at {d}: No such file or directory\n\
         depmod: WARNING: could not open modules.builtin at {d}: No such file or directory\n\
         depmod: WARNING: could not open modules.builtin.modinfo at {d}: No such file or directory\n"
    )
}

#[test]
fn bad_version() {
    let r = Root::new("bad-version");
    assert_eq!(
        modkit_depmod(&["-b", r.path(), "foo"]),
        Output {
            stdout: String::new(),
            stderr: "depmod: ERROR: Bad version passed foo\n".into(),
            code: 1
        }
    );
}

#[test]
fn symbol_prefix_is_one_char() {
    let r = Root::new("prefix");
    assert_eq!(
        modkit_depmod(&["-b", r.path(), "-P", "ab", "1.0"]),
        Output {
            stdout: String::new(),
            stderr: "depmod: FATAL: -P only takes a single char\n".into(),
            code: 1
        }
    );
}

#[test]
fn files_must_be_absolute() {
    let r = sample_root("relative");
    assert_eq!(
        modkit_depmod(&["-b", r.path(), "1.0", "relative.ko"]),
        Output {
            stdout: String::new(),
            stderr: "depmod: FATAL: relative.ko: not absolute path.\n".into(),
            code: 1
        }
    );
}

#[test]
fn writes_the_files_and_warns_about_missing_inputs() {
    let r = sample_root("write");
    let out = modkit_depmod(&[
        "-b",
        r.path(),
        "--index-layout",
        "postorder",
        "--no-cache",
        "1.0",
    ]);
    assert_eq!(
        out,
        Output {
            stdout: String::new(),
            stderr: missing_warnings(&r),
            code: 0
        }
    );
    let files = r.files();
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "modules.alias",
            "modules.alias.bin",
            "modules.builtin.alias.bin",
            "modules.builtin.bin",
            "modules.dep",
            "modules.dep.bin",
            "modules.devname",
            "modules.softdep",
            "modules.symbols",
            "modules.symbols.bin"
        ]
    );
    assert_eq!(
        files["modules.dep"],
        b"extra/hello_api.ko:\nextra/hello_feature.ko: extra/hello_api.ko\n"
    );
    // The default layout is kmod 34's, which also writes modules.weakdep.
    modkit_depmod(&["-b", r.path(), "--no-cache", "1.0"]);
    assert_eq!(
        r.files()["modules.weakdep"],
        b"# Weak dependencies extracted from modules themselves.\n"
    );
}

#[test]
fn dry_run_prints_the_text_files() {
    let r = sample_root("dry-run");
    let out = modkit_depmod(&["-b", r.path(), "-n", "1.0"]);
    assert_eq!(
        out.stdout,
        "extra/hello_api.ko:\n\
         extra/hello_feature.ko: extra/hello_api.ko\n\
         # Aliases extracted from modules themselves.\n\
         alias modkit:hello-api hello_api\n\
         # Soft dependencies extracted from modules themselves.\n\
         # Weak dependencies extracted from modules themselves.\n\
         # Aliases for symbols, used by symbol_request().\n\
         alias symbol:api_test hello_api\n"
    );
    let d = r.moddir();
    assert_eq!(
        out.stderr,
        format!(
            "depmod: WARNING: could not open modules.order at {}: No such file or directory\n",
            d.display()
        )
    );
    assert_eq!(out.code, 0);
    assert!(r.files().is_empty(), "-n writes nothing");
}

#[test]
fn errsyms_needs_kernel_symbols() {
    let r = sample_root("errsyms");
    let out = modkit_depmod(&["-b", r.path(), "-e", "--no-cache", "1.0"]);
    assert_eq!(
        out.stderr,
        format!(
            "depmod: WARNING: -e needs -E or -F\n{}",
            missing_warnings(&r)
        )
    );
    assert_eq!(out.code, 0);
}

#[test]
fn verbose_traces_dependencies() {
    let r = sample_root("verbose");
    let out = modkit_depmod(&["-b", r.path(), "-v", "--no-cache", "1.0"]);
    let d = r.moddir();
    assert_eq!(
        out.stdout,
        format!(
            "{0}/extra/hello_feature.ko needs \"api_test\": {0}/extra/hello_api.ko\n",
            d.display()
        )
    );
}

#[test]
fn quick_does_nothing_when_up_to_date() {
    let r = sample_root("quick");
    assert_eq!(
        modkit_depmod(&["-b", r.path(), "--no-cache", "1.0"]).code,
        0
    );
    fs::remove_file(r.moddir().join("modules.alias")).unwrap();
    let out = modkit_depmod(&["-A", "-b", r.path(), "1.0"]);
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
    assert!(
        !r.moddir().join("modules.alias").exists(),
        "-A did the work"
    );
}

fn cycle_root(name: &str) -> Root {
    let r = Root::new(name);
    r.add(
        "kernel/x.ko",
        &build(&Spec::x86_64().exports(&["x_fn"]).imports(&["y_fn"])),
    );
    r.add(
        "kernel/y.ko",
        &build(&Spec::x86_64().exports(&["y_fn"]).imports(&["x_fn"])),
    );
    r.add("kernel/z.ko", &build(&Spec::x86_64().imports(&["x_fn"])));
    fs::write(
        r.moddir().join("modules.order"),
        "kernel/z.ko\nkernel/x.ko\nkernel/y.ko\n",
    )
    .unwrap();
    fs::write(
        r.moddir().join("modules.builtin"),
        "kernel/fs/ext4/ext4.ko\n",
    )
    .unwrap();
    fs::write(
        r.moddir().join("modules.builtin.modinfo"),
        b"ext4.alias=fs-ext4\0",
    )
    .unwrap();
    r
}

#[test]
fn cycles_fail_naming_every_module() {
    let r = cycle_root("cycle");
    let out = modkit_depmod(&["-b", r.path(), "--no-cache", "1.0"]);
    assert_eq!(
        out,
        Output {
            stdout: String::new(),
            stderr: "depmod: ERROR: Cycle detected: x -> y -> x\n\
                     depmod: ERROR: Found 2 modules in dependency cycles!\n"
                .into(),
            code: 1
        }
    );
}

/// kmod's depmod, if installed (Debian's kmod 30 in CI).
fn kmod_depmod() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/sbin/depmod");
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: kmod's depmod is not installed; the differential depmod tests did not run"
        );
        None
    }
}

/// Run kmod and modkit (post-order layout) on two copies of a tree made by `make`; the same
/// stdout, stderr (with the root spelled ROOT), status and files.
fn differential(name: &str, make: fn(&str) -> Root, extra: &[&str]) {
    let Some(kmod) = kmod_depmod() else { return };
    let (k, m) = (
        make(&format!("{name}-kmod")),
        make(&format!("{name}-modkit")),
    );
    let mut args: Vec<&str> = extra.to_vec();
    args.push("1.0");
    let mut kout = output(Command::new(kmod).arg("-b").arg(k.path()).args(&args));
    let mut margs = vec!["-b", m.path(), "--index-layout", "postorder", "--no-cache"];
    margs.extend_from_slice(&args);
    let mut mout = modkit_depmod(&margs);
    kout.stderr = kout.stderr.replace(k.path(), "ROOT");
    kout.stdout = kout.stdout.replace(k.path(), "ROOT");
    mout.stderr = mout.stderr.replace(m.path(), "ROOT");
    mout.stdout = mout.stdout.replace(m.path(), "ROOT");
    assert_eq!(mout, kout, "{name}: output differs from kmod's");
    assert_eq!(m.files(), k.files(), "{name}: files differ from kmod's");
}

#[test]
fn same_as_kmod_on_the_sample_modules() {
    differential("diff-sample", sample_root, &[]);
    differential("diff-sample-n", sample_root, &["-n"]);
    differential("diff-sample-v", sample_root, &["-v"]);
}

#[test]
fn same_as_kmod_on_cycles() {
    differential("diff-cycle", cycle_root, &[]);
}

fn unknown_root(name: &str) -> Root {
    let r = sample_root(name);
    fs::write(
        r.0.join("System.map"),
        "ffffffff81000000 T _printk\nffffffff82000000 r __ksymtab__printk\n",
    )
    .unwrap();
    r
}

/// kmod and modkit with `-e FLAG ROOT/FILE` on two copies of a tree that holds FILE.
fn differential_with_file(name: &str, make: fn(&str) -> Root, flag: &str, file: &str) -> String {
    let Some(kmod) = kmod_depmod() else {
        return String::new();
    };
    let (k, m) = (
        make(&format!("{name}-kmod")),
        make(&format!("{name}-modkit")),
    );
    let kfile = k.0.join(file);
    let mfile = m.0.join(file);
    let mut kout = output(
        Command::new(kmod)
            .arg("-b")
            .arg(k.path())
            .args(["-e", flag])
            .arg(&kfile)
            .arg("1.0"),
    );
    let mut mout = modkit_depmod(&[
        "-b",
        m.path(),
        "--index-layout",
        "postorder",
        "--no-cache",
        "-e",
        flag,
        mfile.to_str().unwrap(),
        "1.0",
    ]);
    kout.stderr = kout.stderr.replace(k.path(), "ROOT");
    mout.stderr = mout.stderr.replace(m.path(), "ROOT");
    assert_eq!(mout, kout, "{name}");
    assert_eq!(m.files(), k.files(), "{name}");
    kout.stderr
}

/// `-e -F System.map`: the unknown-symbol warnings, in kmod's order and words.
#[test]
fn same_as_kmod_on_unknown_symbols() {
    let stderr = differential_with_file("diff-unknown", unknown_root, "-F", "System.map");
    if kmod_depmod().is_some() {
        assert!(stderr.contains("needs unknown symbol"), "{stderr}");
    }
}

fn symvers_root(name: &str) -> Root {
    let r = sample_root(name);
    fs::write(
        r.0.join("Module.symvers"),
        "0x12345678\t_printk\tvmlinux\tEXPORT_SYMBOL\t\n\
         0xdeadbeef\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n\
         0x1\tother\tsome_module\tEXPORT_SYMBOL\n",
    )
    .unwrap();
    r
}

/// `-e -E Module.symvers`: CRC mismatches, in kmod's words. (A bad version field is left out:
/// kmod's message ends with `%m` of whatever errno was left over, which is not reproducible.)
#[test]
fn same_as_kmod_on_symbol_versions() {
    let stderr = differential_with_file("diff-symvers", symvers_root, "-E", "Module.symvers");
    if kmod_depmod().is_some() {
        assert!(
            stderr.contains("disagrees about version of symbol _printk"),
            "{stderr}"
        );
    }
}

#[test]
fn missing_module_directory() {
    let r = Root::new("missing-dir");
    let out = modkit_depmod(&["-b", r.path(), "--no-cache", "2.0"]);
    let dir = r.0.join("lib/modules/2.0");
    assert_eq!(
        out,
        Output {
            stdout: String::new(),
            stderr: format!(
                "depmod: ERROR: could not open directory {}: No such file or directory\n\
                 depmod: FATAL: could not search modules: No such file or directory\n",
                dir.display()
            ),
            code: 1
        }
    );
}

#[test]
fn quick_without_modules_dep_does_the_work() {
    let r = sample_root("quick-first");
    let out = modkit_depmod(&["-A", "-b", r.path(), "--no-cache", "1.0"]);
    assert_eq!(
        out.stderr,
        format!(
            "depmod: ERROR: could not fstatat({}, modules.dep): No such file or directory\n{}",
            r.moddir().display(),
            missing_warnings(&r)
        )
    );
    assert_eq!(out.code, 0);
    assert!(r.moddir().join("modules.dep").exists());
}

#[test]
fn a_file_size_limit_is_a_clear_error_and_keeps_the_old_files() {
    let r = sample_root("fsize");
    let first = modkit_depmod(&[
        "-b",
        r.path(),
        "--no-cache",
        "--index-layout",
        "postorder",
        "1.0",
    ]);
    assert_eq!(first.code, 0, "{first:?}");
    let before = r.files();
    // Add a module so the new files differ, then run with no room to write at all. The signal
    // the kernel sends for it (SIGXFSZ) is at its default action here, which would kill a tool
    // that does not ignore it.
    r.add("extra/copy/hello_copy.ko", &fixture("hello_api.ko"));
    let out = output(
        Command::new("sh")
            .args(["-c", r#"ulimit -f 0; exec "$0" "$@""#])
            .arg(env!("CARGO_BIN_EXE_modkit"))
            .args([
                "depmod",
                "-b",
                r.path(),
                "--no-cache",
                "--index-layout",
                "postorder",
                "1.0",
            ]),
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("File too large"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&r.moddir().display().to_string()),
        "{}",
        out.stderr
    );
    let after: BTreeMap<String, Vec<u8>> = r
        .files()
        .into_iter()
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    assert_eq!(after, before, "the old files are untouched");
}

#[test]
fn temporaries_of_killed_runs_are_cleared() {
    let r = sample_root("stale-tmp");
    // PID 4194304 is above Linux's largest pid_max: that run is certainly gone.
    r.add(".modules.dep.4194304.tmp", b"half");
    r.add(".modules.alias.bin.4194304.tmp", b"half");
    // Not ours, or a live process (our own parent, the test): left alone.
    r.add(".notes.4194304.tmp", b"keep");
    let live = format!(".modules.dep.{}.tmp", std::process::id());
    r.add(&live, b"keep");
    let out = modkit_depmod(&["-b", r.path(), "--no-cache", "1.0"]);
    assert_eq!(out.code, 0, "{out:?}");
    let files = r.files();
    assert!(
        !files.contains_key(".modules.dep.4194304.tmp"),
        "{:?}",
        files.keys()
    );
    assert!(
        !files.contains_key(".modules.alias.bin.4194304.tmp"),
        "{:?}",
        files.keys()
    );
    assert_eq!(files[".notes.4194304.tmp"], b"keep");
    assert_eq!(files[&live], b"keep");
}
