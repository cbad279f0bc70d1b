//! `modinfo` on the project's sample modules: exact stdout, stderr and exit status, every
//! kernel, compression and the signed variant; lookups by name, alias and built-in module in a
//! fake module directory. (`cargo xtask compat` compares with kmod on Debian's whole trees.)
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use modkit::index::{IndexBuilder, Layout};
use modkit_testkit::Scratch;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn fixture(rel: &str) -> String {
    root()
        .join("kmods/fixtures")
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

/// Run `modkit modinfo ARGS` and return (stdout, stderr, exit code), with the repository path
/// replaced by `[ROOT]` so snapshots do not depend on where the checkout is.
fn modinfo(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_modkit"))
        .arg("modinfo")
        .args(args)
        .output()
        .expect("run modkit");
    let root = root().to_string_lossy().into_owned();
    let clean = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace(&root, "[ROOT]");
    (
        clean(&out.stdout),
        clean(&out.stderr),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn depends_of_hello_feature_is_hello_api_everywhere() {
    for rel in [
        "6.1/hello_feature.ko",
        "6.12/hello_feature.ko",
        "6.12/hello_feature.ko.xz",
        "6.12/hello_feature.ko.zst",
        "6.12/hello_feature.ko.gz",
    ] {
        assert_eq!(
            modinfo(&["-F", "depends", &fixture(rel)]),
            ("hello_api\n".into(), String::new(), 0),
            "{rel}"
        );
    }
}

#[test]
fn full_listing_of_every_fixture() {
    for rel in [
        "6.1/hello_api.ko",
        "6.1/hello_feature.ko",
        "6.12/hello_api.ko",
        "6.12/hello_api.ko.xz",
        "6.12/hello_api.ko.zst",
        "6.12/hello_api.ko.gz",
        "6.12/hello_feature.ko",
        "6.12/signed/hello_api.ko",
        "6.12/signed/hello_api.ko.xz",
    ] {
        let (stdout, stderr, code) = modinfo(&[&fixture(rel)]);
        assert_eq!((stderr.as_str(), code), ("", 0), "{rel}");
        insta::assert_snapshot!(format!("listing-{}", rel.replace('/', "-")), stdout);
    }
}

#[test]
fn compressed_and_plain_say_the_same_apart_from_the_file_name() {
    let plain = modinfo(&[&fixture("6.12/hello_api.ko")]).0;
    for ext in ["xz", "zst", "gz"] {
        let compressed = modinfo(&[&fixture(&format!("6.12/hello_api.ko.{ext}"))]).0;
        assert_eq!(
            compressed.replace(&format!("hello_api.ko.{ext}"), "hello_api.ko"),
            plain,
            "{ext}"
        );
    }
}

#[test]
fn field_selections() {
    let api = fixture("6.1/hello_api.ko");
    assert_eq!(
        modinfo(&["-p", &api]).0,
        "greeting:Message printed when the module is loaded (charp)\n"
    );
    assert_eq!(modinfo(&["-F", "parm", &api]).0, modinfo(&["-p", &api]).0);
    assert_eq!(modinfo(&["-l", &api]).0, "GPL\n");
    assert_eq!(modinfo(&["-a", &api]).0, "modkit developers\n");
    assert_eq!(
        modinfo(&["-d", &api]).0,
        "modkit sample module exporting api_test()\n"
    );
    assert_eq!(
        modinfo(&["-n", &api]).0,
        format!(
            "{}\n",
            api.replace(&root().to_string_lossy().into_owned(), "[ROOT]")
        )
    );
    assert_eq!(modinfo(&["-F", "alias", &api]).0, "modkit:hello-api\n");
    assert_eq!(
        modinfo(&["-F", "no_such_field", &api]),
        (String::new(), String::new(), 0)
    );
    // -0 ends every value with NUL, also in the full listing (as key=value).
    assert_eq!(modinfo(&["-0", "-F", "license", &api]).0, "GPL\0");
    let listing = modinfo(&["-0", &api]).0;
    assert!(listing.contains("\0license=GPL\0"), "{listing:?}");
    assert!(
        listing.ends_with(
            "parm:           greeting:Message printed when the module is loaded (charp)\0"
        )
    );
}

#[test]
fn several_modules_go_on_after_a_failure_and_exit_1() {
    let (stdout, stderr, code) = modinfo(&[
        "-F",
        "depends",
        &fixture("6.1/hello_feature.ko"),
        "/nonexistent/x.ko",
        &fixture("6.1/hello_api.ko"),
    ]);
    assert_eq!(stdout, "hello_api\n\n");
    assert_eq!(
        stderr,
        "modinfo: ERROR: Module /nonexistent/x.ko not found.\n"
    );
    assert_eq!(code, 1);
}

#[test]
fn usage_errors() {
    assert_eq!(
        modinfo(&[]),
        (
            String::new(),
            "modinfo: ERROR: missing module or filename.\n".into(),
            1
        )
    );
    let (_, stderr, code) = modinfo(&["--bogus"]);
    assert!(stderr.contains("--bogus"), "{stderr}");
    assert_eq!(code, 1);
    let (stdout, _, code) = modinfo(&["--help"]);
    assert!(
        stdout.contains("--field <FIELD>") && stdout.contains("Print only provided FIELD"),
        "{stdout}"
    );
    assert_eq!(code, 0);
}

#[test]
fn a_file_that_is_not_a_module_gets_a_clear_error() {
    let dir = scratch("junk");
    let junk = dir.join("junk.ko");
    std::fs::write(&junk, b"this is not an ELF file at all").unwrap();
    let truncated = dir.join("cut.ko.xz");
    let xz = std::fs::read(fixture("6.12/hello_api.ko.xz")).unwrap();
    std::fs::write(&truncated, &xz[..xz.len() / 2]).unwrap();

    let (stdout, stderr, code) = modinfo(&[junk.to_str().unwrap(), truncated.to_str().unwrap()]);
    assert_eq!(
        stdout,
        format!(
            "filename:       {}\nfilename:       {}\n",
            junk.display(),
            truncated.display()
        )
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0]
            .starts_with("modinfo: ERROR: could not get modinfo from 'junk': Exec format error ("),
        "{stderr}"
    );
    assert!(lines[0].contains(&junk.display().to_string()), "{stderr}");
    assert!(
        lines[1].starts_with("modinfo: ERROR: could not get modinfo from 'cut': "),
        "{stderr}"
    );
    assert!(lines[1].contains("cut.ko.xz"), "{stderr}");
    assert_eq!(code, 1);
}

fn scratch(name: &str) -> Scratch {
    Scratch::new(&format!("modinfo-{name}"))
}

fn write_index(path: &Path, entries: &[(&str, &str, u32)]) {
    let mut builder = IndexBuilder::new();
    for (key, value, priority) in entries {
        builder.insert(key, value, *priority).unwrap();
    }
    std::fs::write(path, builder.write(Layout::PostOrder).unwrap()).unwrap();
}

/// A module directory `ROOT/lib/modules/1.0-test` with both sample modules in extra/, the
/// indexes depmod would write for them, and one built-in module.
fn fake_module_dir(name: &str) -> Scratch {
    let root = scratch(name);
    let dir = root.join("lib/modules/1.0-test");
    std::fs::create_dir_all(dir.join("extra")).unwrap();
    for name in ["hello_api", "hello_feature"] {
        std::fs::copy(
            fixture(&format!("6.1/{name}.ko")),
            dir.join(format!("extra/{name}.ko")),
        )
        .unwrap();
    }
    write_index(
        &dir.join("modules.dep.bin"),
        &[
            ("hello_api", "extra/hello_api.ko:", 0),
            (
                "hello_feature",
                "extra/hello_feature.ko: extra/hello_api.ko",
                1,
            ),
        ],
    );
    write_index(
        &dir.join("modules.alias.bin"),
        &[("modkit:hello_api", "hello_api", 0)],
    );
    write_index(
        &dir.join("modules.symbols.bin"),
        &[("symbol:api_test", "hello_api", 0)],
    );
    write_index(&dir.join("modules.builtin.bin"), &[("ext4", "", 0)]);
    std::fs::write(
        dir.join("modules.builtin.modinfo"),
        b"ext4.license=GPL\0ext4.description=Fourth Extended Filesystem\0ext4.alias=fs-ext4\0vfat.license=GPL\0",
    )
    .unwrap();
    root
}

#[test]
fn lookups_by_name_alias_symbol_and_builtin() {
    let root = fake_module_dir("lookup");
    let base = root.path().to_str().unwrap();
    let run = |name: &str| modinfo(&["-b", base, "-k", "1.0-test", "-F", "filename", name]);
    let moddir = format!("{base}/lib/modules/1.0-test");

    assert_eq!(
        run("hello_feature"),
        (
            format!("{moddir}/extra/hello_feature.ko\n"),
            String::new(),
            0
        )
    );
    assert_eq!(
        run("hello-feature"),
        (
            format!("{moddir}/extra/hello_feature.ko\n"),
            String::new(),
            0
        )
    );
    assert_eq!(
        run("modkit:hello-api"),
        (format!("{moddir}/extra/hello_api.ko\n"), String::new(), 0)
    );
    assert_eq!(
        run("symbol:api_test"),
        (format!("{moddir}/extra/hello_api.ko\n"), String::new(), 0)
    );
    assert_eq!(run("ext4"), ("(builtin)\n".into(), String::new(), 0));
    assert_eq!(
        run("nosuch"),
        (
            String::new(),
            "modinfo: ERROR: Module nosuch not found.\n".into(),
            1
        )
    );
    // kmod cannot normalise a name with unbalanced brackets: its lookup fails.
    for bad in ["pci:v]x", "pci:v[x"] {
        assert_eq!(
            run(bad),
            (
                String::new(),
                format!("modinfo: ERROR: Module alias {bad} not found.\n"),
                1
            )
        );
    }

    let (stdout, stderr, code) = modinfo(&["-b", base, "-k", "1.0-test", "ext4"]);
    assert_eq!(
        stdout,
        "name:           ext4\nfilename:       (builtin)\nlicense:        GPL\ndescription:    Fourth Extended Filesystem\nalias:          fs-ext4\n"
    );
    assert_eq!((stderr.as_str(), code), ("", 0));
}

#[test]
fn a_file_named_only_an_extension_is_a_name_unless_given_as_a_path() {
    // kmod 30: a module file name must be longer than its extension, whole as given, so
    // `modinfo .ko` looks up a name and `modinfo ./.ko` reads the file.
    let root = scratch("dot-ko");
    std::fs::create_dir_all(root.join("lib/modules/1.0-test")).unwrap();
    let base = root.path().to_str().unwrap();
    let cwd = root.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::copy(fixture("6.1/hello_api.ko"), cwd.join(".ko")).unwrap();
    let run = |arg: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_modkit"))
            .args(["modinfo", "-b", base, "-k", "1.0-test", "-F", "name", arg])
            .current_dir(&cwd)
            .output()
            .expect("run modkit");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        )
    };
    assert_eq!(
        run(".ko"),
        (
            String::new(),
            "modinfo: ERROR: Module .ko not found.\n".into(),
            1
        )
    );
    assert_eq!(run("./.ko"), ("hello_api\n".into(), String::new(), 0));
}

#[test]
fn a_corrupt_index_is_named_in_the_error() {
    let root = fake_module_dir("corrupt-index");
    let dir = root.join("lib/modules/1.0-test");
    std::fs::write(dir.join("modules.dep.bin"), b"garbage, not an index").unwrap();
    let (stdout, stderr, code) = modinfo(&[
        "-b",
        root.path().to_str().unwrap(),
        "-k",
        "1.0-test",
        "hello_api",
    ]);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("modules.dep.bin") && stderr.contains("magic"),
        "{stderr}"
    );
    assert_eq!(code, 1);
}

#[test]
fn a_module_without_modinfo_fails_like_kmod() {
    // hello_api.ko with its .modinfo section renamed: kmod 30 says ENOENT.
    let dir = scratch("nomodinfo");
    let path = dir.join("nomodinfo.ko");
    let mut bytes = std::fs::read(fixture("6.1/hello_api.ko")).unwrap();
    let at = bytes
        .windows(9)
        .position(|w| w == b".modinfo\0")
        .expect("section name");
    bytes[at + 1] = b'X';
    std::fs::write(&path, &bytes).unwrap();
    let (stdout, stderr, code) = modinfo(&[path.to_str().unwrap()]);
    assert_eq!(stdout, format!("filename:       {}\n", path.display()));
    assert_eq!(
        stderr,
        format!(
            "modinfo: ERROR: could not get modinfo from 'nomodinfo': No such file or directory ({} has no .modinfo section)\n",
            path.display()
        )
    );
    assert_eq!(code, 1);
}

#[test]
fn a_missing_module_directory_is_named_for_each_name() {
    // kmod 30 says only "Module hello_api not found."; modkit says why. Files are still
    // described, and an argument that is a path gets kmod's words: the file is what is missing.
    let root = scratch("no-moddir");
    let base = root.path().to_str().unwrap();
    let (stdout, stderr, code) = modinfo(&[
        "-b",
        base,
        "-k",
        "1.0-test",
        "-F",
        "depends",
        "hello_api",
        &fixture("6.1/hello_feature.ko"),
        "/nonexistent/x.ko",
    ]);
    assert_eq!(stdout, "hello_api\n");
    assert_eq!(
        stderr,
        format!(
            "modinfo: ERROR: Module hello_api not found: could not open module directory \
             {base}/lib/modules/1.0-test: No such file or directory\n\
             modinfo: ERROR: Module /nonexistent/x.ko not found.\n"
        )
    );
    assert_eq!(code, 1);

    // A file where the directory should be.
    root.write("lib/modules/2.0", "not a directory");
    assert_eq!(
        modinfo(&["-b", base, "-k", "2.0", "hello_api"]),
        (
            String::new(),
            format!(
                "modinfo: ERROR: Module hello_api not found: could not open module directory \
                 {base}/lib/modules/2.0: Not a directory\n"
            ),
            1
        )
    );
}
