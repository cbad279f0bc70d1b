//! Test set-up for the device code: the fake module directory of [`modkit::fixtures`] in a
//! scratch root with a fake `/sys/module` and `/proc`, next to modkit-sysfs's fake QEMU sysfs
//! tree (outside this crate, which is why these tests are integration tests: they are not
//! packaged).

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use std::path::{Path, PathBuf};

use modkit::Context;
use modkit::config::modprobe::ModprobeConfig;
use modkit::syscalls::{ProcDir, RecordingKernel, SysModule};
use modkit::sysfs::Sysfs;

pub const VERSION: &str = "1.0-test";

/// A scratch root: `lib/modules/1.0-test`, a fake `/sys/module` and `/proc`.
pub struct FakeTree {
    root: PathBuf,
}

impl Drop for FakeTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl FakeTree {
    pub fn new(name: &str) -> FakeTree {
        let root = std::env::temp_dir().join(format!("modkit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let tree = FakeTree { root };
        let moddir = tree.moddir();
        modkit::fixtures::write_module_dir(&moddir);
        std::fs::create_dir_all(tree.root.join("sys_module")).unwrap();
        std::fs::create_dir_all(tree.root.join("proc")).unwrap();
        std::fs::write(tree.root.join("proc/modules"), "").unwrap();
        tree
    }

    pub fn moddir(&self) -> PathBuf {
        self.root.join("lib/modules").join(VERSION)
    }

    /// A context over the module directory with `config` as the only modprobe.d file.
    pub fn context(&self, config: &str) -> Context {
        let mut warnings = Vec::new();
        let mut parsed = ModprobeConfig::default();
        parsed.parse(config, Path::new("test.conf"), &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        Context::new(self.moddir(), parsed)
    }

    /// modkit-sysfs's fake QEMU guest.
    pub fn sysfs(&self) -> Sysfs {
        Sysfs::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../modkit-sysfs/testdata/qemu"))
    }

    /// Mark a module as loaded (`live`) in the fake `/sys/module`.
    pub fn set_loaded(&self, name: &str) {
        let dir = self.root.join("sys_module").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("initstate"), "live\n").unwrap();
    }

    pub fn kernel(&self) -> RecordingKernel {
        RecordingKernel::new(
            SysModule::new(self.root.join("sys_module")),
            ProcDir::new(self.root.join("proc")),
        )
    }

    /// The path of a module's stand-in file.
    pub fn module_path(&self, name: &str) -> PathBuf {
        let mut path = self.moddir().into_os_string();
        path.push("/");
        path.push(modkit::fixtures::rel(name));
        PathBuf::from(path)
    }
}
