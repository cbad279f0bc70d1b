//! insmod when the kernel refuses a module for an unknown symbol: kmod's message, then a hint
//! naming the module that exports each missing symbol, pinned byte for byte on the binary with
//! the sample modules. A seccomp filter answers `finit_module` and `init_module` with ENOENT
//! (Linux's answer for an unknown symbol) before the kernel sees them: nothing is loaded.
//! `/proc`, `/sys/module` and `/lib/modules` are fake trees (the `MODKIT_*` test hooks); the
//! kernel release is the running kernel's (uname), as insmod takes it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Output, module_syscalls_fail, output};
use modkit::index::{IndexBuilder, Layout};
use modkit_testkit::Scratch;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../kmods/fixtures")
        .canonicalize()
        .unwrap()
}

/// The running kernel's release: where insmod looks under `$MODKIT_LIB_MODULES`.
fn release() -> String {
    modkit::syscalls::kernel_release().unwrap()
}

/// Fake `/proc`, `/sys/module` and `/lib/modules` in a scratch directory.
struct Trees(Scratch);

impl Trees {
    fn new(name: &str) -> Trees {
        let trees = Trees(Scratch::new(&format!("insmod-{name}")));
        trees.0.mkdir("sys/module");
        trees.0.mkdir("lib/modules");
        trees.write("proc/modules", "");
        trees
    }

    fn root(&self) -> &Path {
        self.0.path()
    }

    fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        self.0.write(relative, contents)
    }

    /// A copy of a sample module at `relative`.
    fn module(&self, relative: &str, fixture: &str) -> PathBuf {
        self.write(relative, fs::read(fixtures().join(fixture)).unwrap())
    }

    /// `lib/modules/RELEASE` of the running kernel.
    fn module_dir(&self) -> PathBuf {
        self.root().join("lib/modules").join(release())
    }

    /// `insmod FILE` against these trees, every module syscall failing with ENOENT.
    fn insmod(&self, file: &Path) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_modkit"));
        command
            .arg("insmod")
            .arg(file)
            .env("MODKIT_PROC", self.root().join("proc"))
            .env("MODKIT_SYS_MODULE", self.root().join("sys/module"))
            .env("MODKIT_LIB_MODULES", self.root().join("lib/modules"));
        output(module_syscalls_fail(&mut command, libc::ENOENT))
    }
}

/// What insmod prints when `file` fails for an unknown symbol, with these hint lines.
fn refused(file: &Path, hints: &[String]) -> Output {
    let mut stderr = format!(
        "insmod: ERROR: could not insert module {}: Unknown symbol in module\n",
        file.display()
    );
    for hint in hints {
        stderr.push_str(hint);
        stderr.push('\n');
    }
    Output {
        stdout: String::new(),
        stderr,
        code: 1,
    }
}

/// The hint that `api_test` comes from hello_api (at `path`), inserting hello_feature.
fn api_test_hint(path: Option<&Path>) -> String {
    let location = path
        .map(|path| format!(" ({})", path.display()))
        .unwrap_or_default();
    format!(
        "insmod: hint: api_test is exported by hello_api{location}, which is not loaded; load it \
         first, or use 'modprobe hello_feature' after 'depmod -a'"
    )
}

fn write_index(path: &Path, entries: &[(&str, &str, u32)]) {
    let mut builder = IndexBuilder::new();
    for (key, value, priority) in entries {
        builder.insert(key, value, *priority).unwrap();
    }
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, builder.write(Layout::PostOrder).unwrap()).unwrap();
}

#[test]
fn unknown_symbol_names_the_exporter_in_the_same_directory() {
    let trees = Trees::new("samedir");
    for kver in ["6.1", "6.12"] {
        let dir = fixtures().join(kver);
        let file = dir.join("hello_feature.ko");
        assert_eq!(
            trees.insmod(&file),
            refused(&file, &[api_test_hint(Some(&dir.join("hello_api.ko")))]),
            "{kver}"
        );
    }
}

#[test]
fn compressed_modules_are_read_for_the_hint_too() {
    let trees = Trees::new("compressed");
    let file = trees.module("mods/hello_feature.ko.xz", "6.12/hello_feature.ko.xz");
    let api = trees.module("mods/hello_api.ko.zst", "6.12/hello_api.ko.zst");
    assert_eq!(
        trees.insmod(&file),
        refused(&file, &[api_test_hint(Some(&api))])
    );
}

#[test]
fn no_hint_for_what_is_loaded_or_in_the_kernel() {
    let file = fixtures().join("6.12/hello_feature.ko");

    let loaded = Trees::new("loaded");
    loaded.write(
        "proc/modules",
        "hello_api 12288 0 - Live 0x0000000000000000 (OE)\n",
    );
    assert_eq!(loaded.insmod(&file), refused(&file, &[]));

    let kallsyms = Trees::new("kallsyms");
    kallsyms.write(
        "proc/kallsyms",
        "0000000000000000 T _printk\n0000000000000000 r __ksymtab_api_test\t[hello_api]\n",
    );
    assert_eq!(kallsyms.insmod(&file), refused(&file, &[]));

    // kallsyms without api_test: the hint is back.
    kallsyms.write("proc/kallsyms", "0000000000000000 T _printk\n");
    let dir = fixtures().join("6.12");
    assert_eq!(
        kallsyms.insmod(&file),
        refused(&file, &[api_test_hint(Some(&dir.join("hello_api.ko")))])
    );
}

#[test]
fn the_indexes_are_used_when_present() {
    let trees = Trees::new("index");
    let tree = trees.module_dir();
    write_index(
        &tree.join("modules.symbols.bin"),
        &[
            ("symbol:other_sym", "other", 0),
            ("symbol:api_test", "hello_api", 1),
        ],
    );
    write_index(
        &tree.join("modules.dep.bin"),
        &[
            (
                "hello_feature",
                "extra/hello_feature.ko: extra/hello_api.ko",
                0,
            ),
            ("hello_api", "extra/hello_api.ko:", 1),
        ],
    );
    // The module alone in its directory: only the index can name the exporter.
    let file = trees.module("alone/hello_feature.ko", "6.12/hello_feature.ko");
    assert_eq!(
        trees.insmod(&file),
        refused(
            &file,
            &[api_test_hint(Some(&tree.join("extra/hello_api.ko")))]
        )
    );

    // An exporter modules.dep.bin does not know is named without a file.
    write_index(&tree.join("modules.dep.bin"), &[]);
    assert_eq!(trees.insmod(&file), refused(&file, &[api_test_hint(None)]));

    // With an index, the module directory's files are not read: the symbols index has the
    // last word (the module's own directory is still read).
    write_index(
        &tree.join("modules.symbols.bin"),
        &[("symbol:other_sym", "other", 0)],
    );
    trees.module(
        &format!("lib/modules/{}/extra/hello_api.ko", release()),
        "6.12/hello_api.ko",
    );
    assert_eq!(trees.insmod(&file), refused(&file, &[]));
}

#[test]
fn without_an_index_the_module_directory_is_read() {
    let trees = Trees::new("scan");
    // The samples' fixtures directory as the running kernel's module directory.
    std::os::unix::fs::symlink(fixtures(), trees.module_dir()).unwrap();
    let file = trees.module("alone/hello_feature.ko", "6.1/hello_feature.ko");
    // Subdirectories in name order: 6.1 before 6.12.
    assert_eq!(
        trees.insmod(&file),
        refused(
            &file,
            &[api_test_hint(Some(
                &trees.module_dir().join("6.1/hello_api.ko")
            ))]
        )
    );
}
