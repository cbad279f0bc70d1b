//! The depmod command line: exact stdout, stderr and exit status, on small trees made of the
//! sample module fixtures and of synthetic modules; where kmod's depmod is installed, the same
//! runs of kmod give the same output, files and status. The incremental cache: where it goes
//! (never into the tree), that it is used, that a module rewritten in place is read again, and
//! that a cache that cannot be used changes nothing but a `-v` note.
#![deny(unsafe_code)] // common::module_syscalls_fail allows it for its prctl calls

mod common;

#[path = "../../modkit-depgraph/tests/common/elf.rs"]
mod elf;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Output, output};

use elf::{Spec, build};
use modkit_testkit::Scratch;

fn modkit_depmod(args: &[&str]) -> Output {
    output(
        Command::new(env!("CARGO_BIN_EXE_modkit"))
            .arg("depmod")
            .args(args),
    )
}

/// A scratch root with `lib/modules/1.0`.
struct Root(Scratch);

impl Root {
    fn new(name: &str) -> Root {
        let dir = Scratch::new(&format!("cli-depmod-{name}"));
        dir.mkdir("lib/modules/1.0");
        Root(dir)
    }
    fn path(&self) -> &str {
        self.0.path().to_str().unwrap()
    }
    fn moddir(&self) -> PathBuf {
        self.0.join("lib/modules/1.0")
    }
    fn add(&self, rel: &str, bytes: &[u8]) {
        self.0.write(Path::new("lib/modules/1.0").join(rel), bytes);
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
    // kmod 30's set: every index file but the last, modules.weakdep (kmod >= 33).
    assert_eq!(INDEX_FILES[10], "modules.weakdep");
    assert_eq!(names, &INDEX_FILES[..10]);
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

/// `-m DIR` (kmod 34; kmod 30 has no such option, so this is pinned): the module trees are
/// under `BASEDIR/DIR` instead of `BASEDIR/lib/modules`, and with `-o` the files go to
/// `OUTDIR/DIR/VERSION`. The files are those of the same tree under `lib/modules`.
#[test]
fn moduledir_names_where_the_trees_are() {
    let usual = sample_root("moduledir-usual");
    let moved = Scratch::new("cli-depmod-moduledir");
    for module in ["hello_api.ko", "hello_feature.ko"] {
        moved.write(
            format!("usr/lib/modules/1.0/extra/{module}"),
            fixture(module),
        );
    }
    let base = |dir: &Scratch| dir.path().to_str().unwrap().to_owned();
    let run = |args: &[&str]| {
        let out = modkit_depmod(args);
        assert_eq!(out.code, 0, "{out:?}");
        out
    };
    run(&["-b", usual.path(), "--no-cache", "1.0"]);
    let out = run(&[
        "-b",
        &base(&moved),
        "-m",
        "/usr/lib/modules",
        "--no-cache",
        "1.0",
    ]);
    // Its warnings name the moved directory.
    assert!(
        out.stderr
            .contains(&format!("{}/usr/lib/modules/1.0:", base(&moved))),
        "{out:?}"
    );
    let expected = usual.files();
    assert!(expected["modules.dep"].starts_with(b"extra/hello_api.ko:"));
    let read = |dir: PathBuf| {
        INDEX_FILES
            .iter()
            .map(|name| (name.to_string(), fs::read(dir.join(name)).unwrap()))
            .collect::<BTreeMap<String, Vec<u8>>>()
    };
    assert_eq!(read(moved.join("usr/lib/modules/1.0")), expected);
    assert!(!moved.join("lib/modules").exists());

    let out_root = Scratch::new("cli-depmod-moduledir-out");
    run(&[
        "-b",
        &base(&moved),
        "--moduledir",
        "/usr/lib/modules",
        "-o",
        &base(&out_root),
        "--no-cache",
        "1.0",
    ]);
    assert_eq!(read(out_root.join("usr/lib/modules/1.0")), expected);
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

/// Run modkit's depmod on `r`: it fails, printing `stderr` and nothing else.
#[track_caller]
fn depmod_fails_with(r: &Root, stderr: &str) {
    let out = modkit_depmod(&["-b", r.path(), "--no-cache", "1.0"]);
    let expected = Output {
        stdout: String::new(),
        stderr: stderr.to_owned(),
        code: 1,
    };
    assert_eq!(out, expected);
}

#[test]
fn cycles_fail_naming_every_module() {
    let r = cycle_root("cycle");
    depmod_fails_with(
        &r,
        "depmod: ERROR: Cycle detected: x -> y -> x\n\
                     depmod: ERROR: Found 2 modules in dependency cycles!\n",
    );
}

/// Four cycles, two of them sharing modules, and modules that only hang off one (f, g):
/// a -> b f g, b -> c f g, c -> a, d <-> e, h -> i -> j -> h and j -> k -> h. Module `M`
/// exports `M_fn` and imports its dependencies' functions in that order.
fn many_cycles_root(name: &str) -> Root {
    graph_root(
        name,
        &[
            ("a", &["b", "f", "g"]),
            ("b", &["c", "f", "g"]),
            ("c", &["a"]),
            ("d", &["e"]),
            ("e", &["d"]),
            ("f", &[]),
            ("g", &[]),
            ("h", &["i"]),
            ("i", &["j"]),
            ("j", &["h", "k"]),
            ("k", &["h"]),
        ],
        "",
    )
}

/// A tree of modules `kernel/M.ko`, each exporting `M_fn` and importing its dependencies'
/// functions in the order given, with `order` as its modules.order.
fn graph_root(name: &str, graph: &[(&str, &[&str])], order: &str) -> Root {
    let r = Root::new(name);
    for (module, deps) in graph {
        let export = format!("{module}_fn");
        let imports: Vec<String> = deps.iter().map(|dep| format!("{dep}_fn")).collect();
        let imports: Vec<&str> = imports.iter().map(String::as_str).collect();
        let spec = Spec::x86_64().exports(&[&export]).imports(&imports);
        r.add(&format!("kernel/{module}.ko"), &build(&spec));
    }
    // Empty: the modules keep kmod's hash table order.
    r.add("modules.order", order.as_bytes());
    r
}

/// a <-> b, and a -> m -> l: walking from `a` visits `m` without reporting it, so kmod's
/// later walk from `m` meets an already visited root and reports `m` alone.
fn visited_root_root(name: &str) -> Root {
    graph_root(
        name,
        &[("a", &["b", "m"]), ("b", &["a"]), ("m", &["l"]), ("l", &[])],
        "kernel/a.ko\nkernel/b.ko\nkernel/m.ko\nkernel/l.ko\n",
    )
}

#[test]
fn a_cycle_the_walk_would_circle_forever_is_not_followed() {
    // p <-> q, p -> x -> y <-> z: kmod 30's walk from p goes round y -> z -> y for ever
    // (it never hits p again); modkit reports the two cycles and stops.
    let r = graph_root(
        "circle",
        &[
            ("p", &["q", "x"]),
            ("q", &["p"]),
            ("x", &["y"]),
            ("y", &["z"]),
            ("z", &["y"]),
        ],
        "kernel/p.ko\nkernel/q.ko\nkernel/x.ko\nkernel/y.ko\nkernel/z.ko\n",
    );
    depmod_fails_with(
        &r,
        "depmod: ERROR: Cycle detected: p -> q -> p\n\
                     depmod: ERROR: Cycle detected: y -> z -> y\n\
                     depmod: ERROR: Found 4 modules in dependency cycles!\n",
    );
}

#[test]
fn each_cycle_is_reported_as_kmods_walk_meets_it() {
    let r = many_cycles_root("many-cycles");
    depmod_fails_with(
        &r,
        "depmod: ERROR: Cycle detected: i -> j -> k -> h -> i\n\
                     depmod: ERROR: Cycle detected: i -> j -> h -> i\n\
                     depmod: ERROR: Cycle detected: c -> a -> b -> c\n\
                     depmod: ERROR: Cycle detected: d -> e -> d\n\
                     depmod: ERROR: Found 9 modules in dependency cycles!\n",
    );
}

/// kmod 30's depmod, or `None` after a recorded skip (under CI, a failure).
fn kmod_depmod(test: &str) -> Option<PathBuf> {
    modkit_testkit::require(test, modkit_testkit::kmod("depmod"))
}

/// Run kmod and modkit (post-order layout) on two copies of a tree made by `make`; the same
/// stdout, stderr (with the root spelled ROOT), status and files.
fn differential(name: &str, make: fn(&str) -> Root, extra: &[&str]) {
    let Some(kmod) = kmod_depmod(name) else {
        return;
    };
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
    differential("diff-many-cycles", many_cycles_root, &[]);
    differential("diff-visited-root", visited_root_root, &[]);
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

/// kmod and modkit with `-e FLAG ROOT/FILE` on two copies of a tree that holds FILE; kmod's
/// stderr, or `None` when kmod is not here (a recorded skip; under CI a failure).
fn differential_with_file(
    name: &str,
    make: fn(&str) -> Root,
    flag: &str,
    file: &str,
) -> Option<String> {
    let kmod = kmod_depmod(name)?;
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
    Some(kout.stderr)
}

/// `-e -F System.map`: the unknown-symbol warnings, in kmod's order and words.
#[test]
fn same_as_kmod_on_unknown_symbols() {
    if let Some(stderr) = differential_with_file("diff-unknown", unknown_root, "-F", "System.map") {
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
    if let Some(stderr) =
        differential_with_file("diff-symvers", symvers_root, "-E", "Module.symvers")
    {
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

// ---- the incremental cache ------------------------------------------------------------------

/// The index files depmod writes (the default, kmod 34 layout).
const INDEX_FILES: [&str; 11] = [
    "modules.alias",
    "modules.alias.bin",
    "modules.builtin.alias.bin",
    "modules.builtin.bin",
    "modules.dep",
    "modules.dep.bin",
    "modules.devname",
    "modules.softdep",
    "modules.symbols",
    "modules.symbols.bin",
    "modules.weakdep",
];

/// `modkit depmod ARGS` with the host's cache directory moved: `XDG_CACHE_HOME` and `HOME` as
/// given (`None` unsets), `MODKIT_CACHE` unset. The real cache is left alone and the test sees
/// where the cache goes.
fn depmod_cached(xdg: Option<&Path>, home: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modkit"));
    cmd.arg("depmod").args(args).env_remove("MODKIT_CACHE");
    for (var, value) in [("XDG_CACHE_HOME", xdg), ("HOME", home)] {
        match value {
            Some(v) => cmd.env(var, v),
            None => cmd.env_remove(var),
        };
    }
    output(&mut cmd)
}

/// Every path under `dir` (files, directories, links), relative to it; empty if it is missing.
fn list_tree(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let e = e.unwrap();
            let p = e.path();
            out.insert(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

/// The index files as paths relative to a root with `lib/modules/1.0`.
fn index_paths() -> BTreeSet<String> {
    INDEX_FILES
        .iter()
        .map(|n| format!("lib/modules/1.0/{n}"))
        .collect()
}

/// The one cache file under `base` (`BASE/depmod/HASH-1.0.cache`, HASH 16 hex digits).
fn the_cache_file(base: &Path) -> PathBuf {
    let found = list_tree(base);
    let files: Vec<&String> = found.iter().filter(|p| p.ends_with(".cache")).collect();
    assert_eq!(
        files.len(),
        1,
        "one cache file under {}: {found:?}",
        base.display()
    );
    let name = files[0].strip_prefix("depmod/").expect("in depmod/");
    let hash = name
        .strip_suffix("-1.0.cache")
        .expect("named HASH-1.0.cache");
    assert!(
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name}"
    );
    base.join(files[0])
}

fn counts_line(parsed: usize, cached: usize, cache: &Path) -> String {
    format!(
        "depmod: INFO: {parsed} modules parsed, {cached} from the cache {}\n",
        cache.display()
    )
}

/// `depmod -b ROOT` adds the index files to ROOT and nothing else; the cache goes to
/// `$XDG_CACHE_HOME/modkit/depmod/`, else `$HOME/.cache/modkit/depmod/`, and the next run takes
/// every module from it.
#[test]
fn the_cache_lives_in_the_host_cache_directory_not_in_the_root() {
    let r = sample_root("cache-home");
    let scratch = Root::new("cache-home-dirs");
    let (xdg, home) = (scratch.0.join("xdg"), scratch.0.join("home"));
    let before = list_tree(r.0.path());

    let out = depmod_cached(Some(&xdg), Some(&home), &["-b", r.path(), "1.0"]);
    assert_eq!(
        out,
        Output {
            stdout: String::new(),
            stderr: missing_warnings(&r),
            code: 0
        }
    );
    let after = list_tree(r.0.path());
    assert!(after.is_superset(&before), "depmod removed files");
    let added: BTreeSet<String> = after.difference(&before).cloned().collect();
    assert_eq!(added, index_paths(), "only the index files are new in ROOT");
    let cache = the_cache_file(&xdg.join("modkit"));
    assert!(
        !home.exists(),
        "$HOME is not used when $XDG_CACHE_HOME is set"
    );
    let files = r.files();

    // With -v the run goes through the cache's entries and says so: nothing parsed.
    let out = depmod_cached(Some(&xdg), Some(&home), &["-b", r.path(), "-v", "1.0"]);
    assert_eq!(
        out.stderr,
        format!("{}{}", missing_warnings(&r), counts_line(0, 2, &cache))
    );
    assert_eq!(out.code, 0);
    assert_eq!(r.files(), files);
    assert_eq!(list_tree(r.0.path()), after);

    // Without XDG_CACHE_HOME: under $HOME/.cache; that cache is new, so everything is parsed.
    let out = depmod_cached(None, Some(&home), &["-b", r.path(), "-v", "1.0"]);
    let cache = the_cache_file(&home.join(".cache/modkit"));
    assert_eq!(
        out.stderr,
        format!("{}{}", missing_warnings(&r), counts_line(2, 0, &cache))
    );
    assert_eq!(list_tree(r.0.path()), after);
    assert_eq!(r.files(), files);
}

/// A cache directory that would be inside ROOT is not used: ROOT still gets only the indexes.
#[test]
fn a_cache_directory_inside_the_root_is_not_used() {
    let r = sample_root("cache-in-root");
    let xdg = r.0.join("xdg");
    let before = list_tree(r.0.path());
    let out = depmod_cached(Some(&xdg), None, &["-b", r.path(), "1.0"]);
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (missing_warnings(&r).as_str(), 0)
    );
    let added: BTreeSet<String> = list_tree(r.0.path()).difference(&before).cloned().collect();
    assert_eq!(added, index_paths());
    let out = depmod_cached(Some(&xdg), None, &["-b", r.path(), "-v", "1.0"]);
    let root = fs::canonicalize(&r.0).unwrap();
    assert!(
        out.stderr.contains(&format!(
            "depmod: INFO: not using the cache: {}",
            xdg.display()
        )) && out
            .stderr
            .contains(&format!("is inside {}\n", root.display())),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("from the cache"), "{}", out.stderr);
    assert!(!xdg.exists());
}

/// With `-o OUTDIR` the source tree is left exactly as it was; the indexes go to OUTDIR.
#[test]
fn outdir_adds_nothing_to_the_source_tree() {
    let r = sample_root("cache-outdir-src");
    let o = Root::new("cache-outdir-out");
    let scratch = Root::new("cache-outdir-dirs");
    let xdg = scratch.0.join("xdg");
    let (src_before, out_before) = (list_tree(r.0.path()), list_tree(o.0.path()));
    for verbose in [false, true] {
        let mut args = vec!["-b", r.path(), "-o", o.path(), "1.0"];
        if verbose {
            args.insert(0, "-v");
        }
        let out = depmod_cached(Some(&xdg), None, &args);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(list_tree(r.0.path()), src_before, "the source tree changed");
        let added: BTreeSet<String> = list_tree(o.0.path())
            .difference(&out_before)
            .cloned()
            .collect();
        assert_eq!(added, index_paths());
    }
    // The second run (-v) took every module from the cache.
    let cache = the_cache_file(&xdg.join("modkit"));
    let out = depmod_cached(
        Some(&xdg),
        None,
        &["-b", r.path(), "-o", o.path(), "-v", "1.0"],
    );
    assert!(
        out.stderr.ends_with(&counts_line(0, 2, &cache)),
        "{}",
        out.stderr
    );
}

/// A cache that cannot be written or read: the run is the same as without it, silent about it
/// (as kmod, which has no cache), and says why only with -v.
#[test]
fn an_unusable_cache_is_mentioned_only_with_verbose() {
    let r = sample_root("cache-unusable");
    let scratch = Root::new("cache-unusable-dirs");
    // A regular file where the cache directory would go: cannot create it, even as root.
    let blocked = scratch.0.join("blocked");
    fs::write(&blocked, b"not a directory").unwrap();
    let out = depmod_cached(Some(&blocked), None, &["-b", r.path(), "1.0"]);
    assert_eq!(
        out,
        Output {
            stdout: String::new(),
            stderr: missing_warnings(&r),
            code: 0
        }
    );
    let files = r.files();
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        INDEX_FILES
    );
    let out = depmod_cached(Some(&blocked), None, &["-b", r.path(), "-v", "1.0"]);
    assert_eq!(out.code, 0);
    let cache_dir = blocked.join("modkit/depmod");
    let cache = modkit::depgraph::CacheLocation::host_in(
        &blocked.join("modkit"),
        &fs::canonicalize(r.moddir()).unwrap(),
        "1.0",
    );
    let cache = cache.path();
    assert_eq!(
        out.stderr,
        format!(
            "{}depmod: INFO: could not write the cache: could not create {}: Not a directory (os error 20)\n{}",
            missing_warnings(&r),
            cache_dir.display(),
            counts_line(2, 0, cache)
        )
    );
    assert_eq!(r.files(), files);

    // A corrupt cache file, and one that cannot be read (a directory): the same.
    let xdg = scratch.0.join("xdg");
    assert_eq!(
        depmod_cached(Some(&xdg), None, &["-b", r.path(), "1.0"]).code,
        0
    );
    let cache = the_cache_file(&xdg.join("modkit"));
    fs::write(&cache, b"MODKITDS garbage").unwrap();
    let out = depmod_cached(Some(&xdg), None, &["-b", r.path(), "1.0"]);
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (missing_warnings(&r).as_str(), 0)
    );
    assert_eq!(r.files(), files);
    fs::write(&cache, b"MODKITDS garbage").unwrap();
    let out = depmod_cached(Some(&xdg), None, &["-b", r.path(), "-v", "1.0"]);
    assert_eq!(
        out.stderr,
        format!(
            "{}depmod: INFO: not using the cache: {}: corrupt cache (other format version); rebuilding it\n{}",
            missing_warnings(&r),
            cache.display(),
            counts_line(2, 0, &cache)
        )
    );
    fs::remove_file(&cache).unwrap();
    fs::create_dir(&cache).unwrap();
    let out = depmod_cached(Some(&xdg), None, &["-b", r.path(), "1.0"]);
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (missing_warnings(&r).as_str(), 0)
    );
    let out = depmod_cached(Some(&xdg), None, &["-b", r.path(), "-v", "1.0"]);
    assert_eq!(out.code, 0);
    assert!(
        out.stderr.contains(&format!(
            "depmod: INFO: not using the cache: could not read cache {}: Is a directory",
            cache.display()
        )) && out
            .stderr
            .contains("depmod: INFO: could not write the cache: "),
        "{}",
        out.stderr
    );
    assert_eq!(r.files(), files);
}

/// A run from the cache says what the first run said, once: the messages of reading `-F`'s
/// System.map are said again by every run, and the cache replays only what depmod itself said
/// (it used to replay both, so a bad System.map line came twice).
#[test]
fn an_unchanged_re_run_says_each_message_once() {
    let r = sample_root("cache-replay");
    let scratch = Root::new("cache-replay-dirs");
    let map = scratch.0.join("System.map");
    fs::write(&map, "ffffffff81000000 T printk\nbad\n").unwrap();
    let cache = scratch.0.join("depmod.cache");
    let args = [
        "-b",
        r.path(),
        "-F",
        map.to_str().unwrap(),
        "--cache-file",
        cache.to_str().unwrap(),
        "1.0",
    ];
    let expected = Output {
        stdout: String::new(),
        stderr: format!(
            "depmod: ERROR: {}:2: invalid line: bad\n\n{}",
            map.display(),
            missing_warnings(&r)
        ),
        code: 0,
    };
    assert_eq!(modkit_depmod(&args), expected);
    let files = r.files();
    let inodes = |r: &Root| -> BTreeMap<String, u64> {
        use std::os::unix::fs::MetadataExt;
        fs::read_dir(r.moddir())
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().ino(),
                )
            })
            .collect()
    };
    let before = inodes(&r);
    assert_eq!(modkit_depmod(&args), expected);
    // Nothing changed: nothing was written (each file keeps its inode), same contents.
    assert_eq!(inodes(&r), before);
    assert_eq!(r.files(), files);
}

/// Rewrite `path` in place: the same inode and length, new bytes, and the old modification
/// time put back (an editor's save plus `touch -r`, or a copy that keeps timestamps onto the
/// existing file). Only the change time, which nobody can set, tells it changed.
fn rewrite_in_place(path: &Path, bytes: &[u8]) {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let before = fs::metadata(path).unwrap();
    assert_eq!(
        before.len(),
        bytes.len() as u64,
        "the same length, for the test to mean anything"
    );
    let mut file = fs::File::options().write(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
    let times = fs::FileTimes::new()
        .set_accessed(before.accessed().unwrap())
        .set_modified(before.modified().unwrap());
    file.set_times(times).unwrap();
    // The change time moves by the kernel's clock tick: within the tick the file was created
    // in, set the times again (which changes it) until it has moved.
    let start = std::time::Instant::now();
    while fs::metadata(path).unwrap().ctime_nsec() == before.ctime_nsec()
        && fs::metadata(path).unwrap().ctime() == before.ctime()
    {
        assert!(
            start.elapsed().as_secs() < 5,
            "the change time of {} never moved",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        file.set_times(times).unwrap();
    }
    let after = fs::metadata(path).unwrap();
    assert_eq!(
        (
            after.dev(),
            after.ino(),
            after.size(),
            after.mtime(),
            after.mtime_nsec()
        ),
        (
            before.dev(),
            before.ino(),
            before.size(),
            before.mtime(),
            before.mtime_nsec()
        ),
        "rewritten in place with inode, size and mtime kept"
    );
    assert_eq!(fs::read(path).unwrap(), bytes);
}

/// A module rewritten in place with its inode, size and mtime kept is read again: its new
/// aliases replace the old ones, with and without -v (the up-to-date check and the entries).
#[test]
fn a_module_rewritten_in_place_is_read_again() {
    let r = Root::new("cache-ctime");
    let scratch = Root::new("cache-ctime-dirs");
    let xdg = scratch.0.join("xdg");
    let module = |alias: &str| {
        let record = format!("alias={alias}");
        build(
            &Spec::x86_64()
                .exports(&["m_fn"])
                .modinfo(&[record.as_str()]),
        )
    };
    let (one, two, three) = (
        module("first-alias"),
        module("other-alias"),
        module("third-alias"),
    );
    assert!(one != two && one.len() == two.len() && two.len() == three.len());
    r.add("kernel/m.ko", &one);
    r.add("kernel/u.ko", &build(&Spec::x86_64().imports(&["m_fn"])));
    let alias_file = || String::from_utf8(r.files()["modules.alias"].clone()).unwrap();
    let run = |verbose: bool| {
        let mut args = vec!["-b", r.path()];
        if verbose {
            args.push("-v");
        }
        args.push("1.0");
        let out = depmod_cached(Some(&xdg), None, &args);
        assert_eq!(out.code, 0, "{out:?}");
        out
    };
    run(false);
    assert!(
        alias_file().contains("alias first-alias m\n"),
        "{}",
        alias_file()
    );
    let cache = the_cache_file(&xdg.join("modkit"));

    let path = r.moddir().join("kernel/m.ko");
    rewrite_in_place(&path, &two);
    run(false);
    let text = alias_file();
    assert!(
        text.contains("alias other-alias m\n") && !text.contains("first-alias"),
        "{text}"
    );

    // With -v: only the rewritten module is parsed.
    rewrite_in_place(&path, &three);
    let out = run(true);
    assert!(
        out.stderr.ends_with(&counts_line(1, 1, &cache)),
        "{}",
        out.stderr
    );
    let text = alias_file();
    assert!(
        text.contains("alias third-alias m\n") && !text.contains("other-alias"),
        "{text}"
    );
}

/// The default location keeps one file per module directory: the next run removes those of
/// trees that are gone (an initramfs build's temporary tree) and what killed runs left, and
/// nothing else.
#[test]
fn caches_of_trees_that_are_gone_are_removed() {
    let scratch = Root::new("cache-prune-dirs");
    let xdg = scratch.0.join("xdg");
    let base = xdg.join("modkit");
    let gone = sample_root("cache-prune-gone");
    let kept = sample_root("cache-prune-kept");
    let out = depmod_cached(Some(&xdg), None, &["-b", gone.path(), "1.0"]);
    assert_eq!(out.code, 0, "{out:?}");
    let gone_cache = the_cache_file(&base);
    let other = base.join("depmod/notes.cache");
    fs::write(&other, "not a cache of ours").unwrap();
    // What a run killed while saving leaves: removed once that process is gone (PID 4194304 is
    // above Linux's largest pid_max), unless it is not ours or its run is alive.
    let name = gone_cache.file_name().unwrap().to_str().unwrap();
    let stale = base.join(format!("depmod/.{name}.4194304.tmp"));
    let live = base.join(format!("depmod/.{name}.{}.tmp", std::process::id()));
    let not_ours = base.join("depmod/.notes.cache.4194304.tmp");
    for f in [&stale, &live, &not_ours] {
        fs::write(f, "half").unwrap();
    }
    let out = depmod_cached(Some(&xdg), None, &["-b", kept.path(), "1.0"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(gone_cache.exists(), "its tree is still there");
    let kept_stderr = missing_warnings(&kept);
    drop(gone);
    let out = depmod_cached(Some(&xdg), None, &["-b", kept.path(), "-v", "1.0"]);
    assert!(!stale.exists() && live.exists() && not_ours.exists());
    for f in [&other, &live, &not_ours] {
        fs::remove_file(f).unwrap();
    }
    let kept_cache = the_cache_file(&base);
    assert_ne!(kept_cache, gone_cache);
    assert_eq!(
        out.stderr,
        format!(
            "{kept_stderr}depmod: INFO: removed 1 cache file(s) of module directories that no \
             longer exist\n{}",
            counts_line(0, 2, &kept_cache)
        )
    );
}
