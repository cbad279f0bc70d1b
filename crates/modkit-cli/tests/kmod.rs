//! `kmod` as a name of the multi-call binary: `kmod static-nodes`, `kmod list`, `kmod help`,
//! pinned over a fake `/lib/modules` (`MODKIT_LIB_MODULES`) and compared with kmod 30 itself,
//! which reads `/lib/modules/$(uname -r)` only: a private mount namespace lays the fake tree
//! over the real one for both tools.
#![deny(unsafe_code)] // common::module_syscalls_fail allows it for its prctl calls

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Output, output};
use modkit_testkit::{Missing, Scratch, require};

/// A modules.devname with kmod's header, a node in a subdirectory, and entries kmod rejects
/// (a word only, an empty line, a type that is neither `c` nor `b`) or reads oddly (a negative
/// major, trailing words, no final newline).
const DEVNAME: &str = "# Device nodes to trigger on-demand module loading.\n\
fuse fuse c10:229\n\
cuse cuse c10:203\n\
dm_mod mapper/control c10:236\n\
bad line\n\
\n\
  odd\tnode   b-1:+7 trailing words\n\
x y z1:2\n\
spaced spaced c 10: 230\n\
colon colon c10 :231\n\
snd_seq snd/seq c116:1";

const TMPFILES: &str = "\
c! /dev/fuse 0600 - - - 10:229
c! /dev/cuse 0600 - - - 10:203
d /dev/mapper 0755 - - -
c! /dev/mapper/control 0600 - - - 10:236
b! /dev/node 0600 - - - 4294967295:7
c! /dev/spaced 0600 - - - 10:230
d /dev/snd 0755 - - -
c! /dev/snd/seq 0600 - - - 116:1
";

const INVALID: &str = "\
Error: invalid devname entry: bad line
Error: invalid devname entry: \n\
Error: invalid devname entry: x y z1:2
Error: invalid devname entry: colon colon c10 :231
";

fn release() -> String {
    modkit::syscalls::kernel_release().expect("uname")
}

/// A `lib/modules/RELEASE` tree for the running kernel's release, with `devname` as its
/// modules.devname (none when `None`).
fn tree(tag: &str, devname: Option<&str>) -> Scratch {
    let dir = Scratch::new(tag);
    let release_dir = dir.mkdir(format!("upper/modules/{}", release()));
    if let Some(devname) = devname {
        fs::write(release_dir.join("modules.devname"), devname).unwrap();
    }
    dir.mkdir("work");
    dir
}

/// `modkit ARGS...` with `tree`'s modules as its /lib/modules.
fn modkit(tree: &Scratch, args: &[&str]) -> Output {
    output(
        Command::new(env!("CARGO_BIN_EXE_modkit"))
            .args(args)
            .env("MODKIT_LIB_MODULES", tree.join("upper/modules")),
    )
}

#[track_caller]
fn check(out: Output, stdout: &str, stderr: &str, code: i32) {
    let expected = Output {
        stdout: stdout.to_owned(),
        stderr: stderr.to_owned(),
        code,
    };
    assert_eq!(out, expected);
}

#[test]
fn static_nodes_in_each_format() {
    let tree = tree("static-nodes", Some(DEVNAME));
    let args = ["kmod", "static-nodes", "--format=tmpfiles"];
    check(modkit(&tree, &args), TMPFILES, INVALID, 1);
    check(
        modkit(&tree, &["kmod", "static-nodes", "-f", "devname"]),
        "fuse fuse c10:229\ncuse cuse c10:203\ndm_mod mapper/control c10:236\n\
         odd node b4294967295:7\nspaced spaced c10:230\nsnd_seq snd/seq c116:1\n",
        INVALID,
        1,
    );
    let human = modkit(&tree, &["kmod", "static-nodes"]);
    assert!(
        human.stdout.starts_with(
            "Module: fuse\n\tDevice node: /dev/fuse\n\t\tType: character device\n\
             \t\tMajor: 10\n\t\tMinor: 229\nModule: cuse\n"
        ),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("\t\tType: block device\n"));
}

#[test]
fn static_nodes_output_is_replaced_and_its_directory_made() {
    let tree = tree("static-nodes-output", Some("fuse fuse c10:229\n"));
    let target = tree.join("run/tmpfiles.d/static-nodes.conf");
    let args = ["kmod", "static-nodes", "--format=tmpfiles", "--output"];
    let out = modkit(&tree, &[&args[..], &[target.to_str().unwrap()]].concat());
    check(out, "", "", 0);
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "c! /dev/fuse 0600 - - - 10:229\n"
    );
    // Replaced, not rewritten: a reader holding the old file keeps it whole.
    let old = fs::File::open(&target).unwrap();
    fs::write(
        tree.join(format!("upper/modules/{}/modules.devname", release())),
        "cuse cuse c10:203\n",
    )
    .unwrap();
    let out = modkit(&tree, &[&args[..], &[target.to_str().unwrap()]].concat());
    check(out, "", "", 0);
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "c! /dev/cuse 0600 - - - 10:203\n"
    );
    let mut kept = String::new();
    std::io::Read::read_to_string(&mut &old, &mut kept).unwrap();
    assert_eq!(kept, "c! /dev/fuse 0600 - - - 10:229\n");
    let leftovers: Vec<_> = fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["static-nodes.conf"]);
    // A parent that cannot be a directory: named, with the reason (kmod 30 says "Success."
    // for a file as the last directory, and "Not a directory" for one further up).
    tree.write("blocked", "");
    let target = tree.join("blocked/x.conf");
    let target = target.to_str().unwrap();
    let stderr =
        format!("Error: could not create parent directory for {target} - Not a directory.\n");
    check(
        modkit(&tree, &["kmod", "static-nodes", "-o", target]),
        "",
        &stderr,
        1,
    );
}

#[test]
fn static_nodes_without_modules_devname_warns_and_succeeds() {
    let tree = tree("static-nodes-none", None);
    let target = tree.join("out/x.conf");
    let out = modkit(
        &tree,
        &["kmod", "static-nodes", "-o", target.to_str().unwrap()],
    );
    let devname = tree.join(format!("upper/modules/{}/modules.devname", release()));
    let stderr = format!("Warning: {} not found - ignoring\n", devname.display());
    check(out, "", &stderr, 0);
    assert!(!target.exists(), "kmod 30 writes no file then");
}

#[test]
fn kmod_by_argv0_and_as_a_tool() {
    let dir = Scratch::new("kmod-argv0");
    let link = dir.join("kmod");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_modkit"), &link).unwrap();
    let by_link = output(Command::new(&link).arg("help"));
    let as_tool = output(Command::new(env!("CARGO_BIN_EXE_modkit")).args(["kmod", "help"]));
    assert_eq!(by_link, as_tool);
    assert!(by_link.stdout.starts_with("kmod - Manage kernel modules"));
    let version = output(Command::new(&link).arg("--version"));
    assert_eq!(
        version,
        output(Command::new(env!("CARGO_BIN_EXE_modkit")).args(["kmod", "-V"]))
    );
    assert_eq!(version.code, 0);
    // `kmod list` is lsmod.
    let trees = Scratch::new("kmod-list");
    trees.write("proc/modules", "fuse 163840 3 - Live 0x0000000000000000\n");
    trees.mkdir("sys/module");
    let list = |tool: &[&str]| {
        output(
            Command::new(env!("CARGO_BIN_EXE_modkit"))
                .args(tool)
                .env("MODKIT_PROC", trees.join("proc"))
                .env("MODKIT_SYS_MODULE", trees.join("sys/module")),
        )
    };
    let lsmod = list(&["lsmod"]);
    assert_eq!(
        lsmod.stdout,
        "Module                  Size  Used by\nfuse                  163840  3\n"
    );
    assert_eq!(list(&["kmod", "list"]), lsmod);
}

/// Run `program args...` in a private mount namespace where `/lib/modules` holds `tree`'s
/// modules (an overlay over the real directory that holds it), or say why that cannot be done.
fn with_lib_modules(tree: &Scratch, program: &Path, args: &[&str]) -> Result<Output, String> {
    let lib = fs::canonicalize("/lib").unwrap_or_else(|_| PathBuf::from("/lib"));
    let script = r#"mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$1" && shift 3 && exec "$@""#;
    let mut command = Command::new("unshare");
    command
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(&lib)
        .arg(tree.join("upper"))
        .arg(tree.join("work"))
        .arg(program)
        .args(args)
        .env_remove("MODKIT_LIB_MODULES");
    let out = output(&mut command);
    if out.code != 0 && (out.stderr.contains("unshare:") || out.stderr.contains("mount:")) {
        return Err(format!(
            "cannot lay a tree over /lib/modules: {}",
            out.stderr.trim()
        ));
    }
    Ok(out)
}

#[test]
fn same_output_as_kmod_over_the_same_tree() {
    let test = "same_output_as_kmod_over_the_same_tree";
    let Some(kmod) = require(test, modkit_testkit::kmod("kmod")) else {
        return;
    };
    let ours = PathBuf::from(env!("CARGO_BIN_EXE_modkit"));
    let tree = tree("kmod-static-nodes", Some(DEVNAME));
    let probe = with_lib_modules(&tree, &kmod, &["static-nodes"]).map_err(|why| {
        Missing::new(
            why,
            "run the tests as root with util-linux's unshare (CI does)",
        )
    });
    if require(test, probe).is_none() {
        return;
    }
    let cases: &[&[&str]] = &[
        &["static-nodes"],
        &["static-nodes", "--format=tmpfiles"],
        &["static-nodes", "-f", "devname", "ignored-argument"],
        &["static-nodes", "--form", "human"],
        &["static-nodes", "-f", "json"],
        &["static-nodes", "--help"],
        &["help"],
        &[],
        &["no-such-command"],
    ];
    let mut compared = 0;
    for args in cases {
        let theirs = with_lib_modules(&tree, &kmod, args).unwrap();
        let mine = with_lib_modules(&tree, &ours, &[&["kmod"], *args].concat()).unwrap();
        assert_eq!(mine, theirs, "kmod {args:?}");
        compared += 1;
    }
    // --output: the same file, its directory made by each.
    for (who, program, prefix) in [("kmod", &kmod, &[][..]), ("modkit", &ours, &["kmod"][..])] {
        let target = tree.join(format!("{who}/run/tmpfiles.d/static-nodes.conf"));
        let args = ["static-nodes", "--format=tmpfiles", "--output"];
        let args = [prefix, &args, &[target.to_str().unwrap()]].concat();
        let out = with_lib_modules(&tree, program, &args).unwrap();
        assert_eq!((out.stdout.as_str(), out.code), ("", 1), "{who}");
        assert_eq!(out.stderr, INVALID, "{who}");
        assert_eq!(fs::read_to_string(&target).unwrap(), TMPFILES, "{who}");
        compared += 1;
    }
    // No modules.devname: the same warning, no file.
    let empty = self::tree("kmod-static-nodes-none", None);
    let theirs = with_lib_modules(&empty, &kmod, &["static-nodes"]).unwrap();
    let mine = with_lib_modules(&empty, &ours, &["kmod", "static-nodes"]).unwrap();
    assert_eq!(mine, theirs);
    assert!(
        theirs.stderr.starts_with("Warning: /lib/modules/"),
        "{theirs:?}"
    );
    assert_eq!(compared, cases.len() + 2);
}
