//! What the C-boundary tests share: their prerequisites (gcc, Debian's libkmod-dev and
//! libkmod2, each a loud skip outside CI and an error under it), modkit's `libkmod.so.2` in a
//! directory of its own for `LD_LIBRARY_PATH`, and building a C program against Debian's
//! `libkmod.h`.
#![allow(
    dead_code,
    reason = "each test binary includes this module and uses only part of it"
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use modkit_testkit::{Missing, Scratch};

/// Debian's header, from libkmod-dev.
pub const HEADER: &str = "/usr/include/libkmod.h";

/// Debian's library (libkmod2).
pub fn debian_library() -> Result<PathBuf, Missing> {
    [
        "/lib/x86_64-linux-gnu/libkmod.so.2",
        "/usr/lib/x86_64-linux-gnu/libkmod.so.2",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .ok_or_else(|| {
        Missing::new(
            "Debian's libkmod.so.2 (not in /lib/x86_64-linux-gnu)",
            "apt-get install libkmod2",
        )
    })
}

/// gcc and Debian's libkmod.h (with the `libkmod.so` link to build against).
pub fn c_toolchain() -> Result<(), Missing> {
    let gcc = Command::new("gcc").arg("--version").output();
    if !gcc.is_ok_and(|o| o.status.success()) {
        return Err(Missing::new("gcc", "apt-get install gcc"));
    }
    if !Path::new(HEADER).exists() {
        return Err(Missing::new(
            format!("{HEADER} (Debian's libkmod header)"),
            "apt-get install libkmod-dev",
        ));
    }
    Ok(())
}

/// modkit's cdylib as cargo built it for these tests: beside the test binaries in
/// `target/PROFILE/deps/` (`cargo test` does not copy it up to `target/PROFILE/`, where a
/// `cargo build` puts it).
pub fn our_library() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let deps = exe
        .parent()
        .expect("test binaries live in target/PROFILE/deps");
    let lib = deps.join("libmodkit_capi.so");
    assert!(
        lib.is_file(),
        "{} is missing: cargo builds the cdylib for the crate's tests",
        lib.display()
    );
    lib
}

/// A directory holding modkit's library as `libkmod.so.2`, for `LD_LIBRARY_PATH`.
pub fn our_library_dir(scratch: &Scratch) -> PathBuf {
    let dir = scratch.mkdir("ourlib");
    std::os::unix::fs::symlink(our_library(), dir.join("libkmod.so.2"))
        .expect("the scratch directory is writable");
    dir
}

/// `tests/NAME.c` compiled against Debian's libkmod.h and linked with `-lkmod`.
pub fn build_c(scratch: &Scratch, name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(format!("{name}.c"));
    let exe = scratch.join(name);
    let out = Command::new("gcc")
        .args([
            "-Wall",
            "-Werror",
            "-Wno-deprecated-declarations",
            "-O1",
            "-o",
        ])
        .arg(&exe)
        .arg(&source)
        .arg("-lkmod")
        .output()
        .expect("gcc runs");
    assert!(
        out.status.success(),
        "gcc {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Run `exe` with `args`, with modkit's library (`lib_dir`) or Debian's (`None`), and check
/// the dynamic loader picked the one asked for.
pub fn run_with(exe: &Path, args: &[&Path], lib_dir: Option<&Path>) -> Output {
    let command = |trace: bool| {
        // Without CAP_SYS_MODULE: a client that probes can never load anything.
        let mut c = if trace {
            Command::new(exe)
        } else {
            let mut c = Command::new("setpriv");
            c.args([
                "--bounding-set",
                "-sys_module",
                "--inh-caps",
                "-sys_module",
                "--",
            ])
            .arg(exe);
            c
        };
        c.args(args).env_remove("LD_PRELOAD").env_remove("KMOD_LOG");
        match lib_dir {
            Some(dir) => c.env("LD_LIBRARY_PATH", dir),
            None => c.env_remove("LD_LIBRARY_PATH"),
        };
        if trace {
            c.env("LD_TRACE_LOADED_OBJECTS", "1");
        }
        c
    };
    let trace = command(true).output().expect("the loader runs");
    let trace = String::from_utf8_lossy(&trace.stdout);
    let line = trace
        .lines()
        .find(|l| l.trim_start().starts_with("libkmod.so.2"))
        .unwrap_or_else(|| panic!("{} does not load libkmod.so.2: {trace}", exe.display()));
    let expected = match lib_dir {
        Some(dir) => dir.join("libkmod.so.2"),
        None => debian_library().expect("checked by the caller"),
    };
    let resolved = line
        .split("=>")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_default();
    assert_eq!(
        std::fs::canonicalize(resolved).ok(),
        std::fs::canonicalize(&expected).ok(),
        "{} resolved libkmod.so.2 to {resolved}, not {}",
        exe.display(),
        expected.display()
    );
    command(false).output().expect("the client runs")
}

/// The shared libraries `file` loads, as `ldd` resolves them (with the dynamic loader).
pub fn needed(file: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(file).output().expect("ldd runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// `file` copied to the same path under `root` (its contents, not a link).
pub fn copy_in(root: &Path, file: &Path) {
    let target = root.join(file.strip_prefix("/").unwrap());
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::copy(file, &target).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
}

/// `from` hard-linked (or copied) under `to`: the kernel cache is never written to.
pub fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            link_tree(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::hard_link(entry.path(), &target)
                .or_else(|_| std::fs::copy(entry.path(), &target).map(|_| ()))
                .unwrap();
        }
    }
}

/// A private mount namespace can be made (root).
pub fn mount_namespace() -> Result<(), Missing> {
    Command::new("unshare")
        .args(["--mount", "true"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| ())
        .ok_or_else(|| {
            Missing::new(
                "a private mount namespace (unshare --mount: root)",
                "run the tests as root, as .ci/run does",
            )
        })
}

/// `command` in the chroot `root` with `library` installed as its `libkmod.so.2`, in a private
/// mount namespace with the host's `/sys` and a fresh `/proc`, and without `CAP_SYS_MODULE`
/// (`setpriv`), so a client that tried to load a module could only fail. The caller adds its
/// environment and runs it.
pub fn in_chroot(root: &Path, library: &Path, command: &[&str]) -> Command {
    let lib = root.join("lib/x86_64-linux-gnu/libkmod.so.2");
    let _ = std::fs::remove_file(&lib);
    std::fs::copy(library, &lib).unwrap_or_else(|e| panic!("{}: {e}", library.display()));
    // Fixed text; the chroot comes in as "$1", the command after it.
    let script = "root=\"$1\"; shift; mount --rbind /sys \"$root/sys\" && \
                  mount -t proc proc \"$root/proc\" && \
                  exec setpriv --bounding-set -sys_module --inh-caps -sys_module \
                  chroot \"$root\" \"$@\"";
    let mut unshare = Command::new("unshare");
    unshare
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(root)
        .args(command)
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("KMOD_LOG");
    unshare
}

/// Debian's tree `cached` as release `release`'s under `root/lib/modules`, hard-linked, and
/// indexed by kmod's `depmod`; the module directory.
pub fn indexed_tree(root: &Path, cached: &Path, release: &str, depmod: &Path) -> PathBuf {
    let dir = root.join("lib/modules").join(release);
    link_tree(cached, &dir);
    let out = Command::new(depmod)
        .arg("-b")
        .arg(root)
        .arg(release)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", depmod.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// `programs` copied into the chroot `root`, with every shared library they and `libraries`
/// load except `libkmod.so.2` (which [`in_chroot`] puts in for each run).
pub fn install_programs(root: &Path, programs: &[&Path], libraries: &[&Path]) {
    for program in programs {
        copy_in(root, program);
    }
    for file in programs.iter().chain(libraries) {
        for lib in needed(file) {
            if lib.file_name().is_some_and(|n| n != "libkmod.so.2") {
                copy_in(root, &lib);
            }
        }
    }
}
