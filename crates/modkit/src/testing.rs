//! Test fixtures for the device code: a module directory whose indexes are written here with
//! the index writer (modules.dep.bin, modules.alias.bin, built-in indexes, and the text
//! modules.alias), holding stand-in module files, next to modkit-sysfs's fake QEMU sysfs tree.

use std::path::{Path, PathBuf};

use modkit_config::modprobe::ModprobeConfig;
use modkit_index::{IndexBuilder, Layout};
use modkit_syscalls::{ProcDir, RecordingKernel, SysModule};
use modkit_sysfs::Sysfs;

use crate::Context;

/// (module, modules.dep dependencies, alias patterns), in module order.
pub(crate) const MODULES: &[(&str, &[&str], &[&str])] = &[
    ("virtio", &[], &[]),
    ("virtio_ring", &["virtio"], &[]),
    (
        "virtio_pci",
        &["virtio_ring", "virtio"],
        &["pci:v00001AF4d*sv*sd*bc*sc*i*"],
    ),
    (
        "virtio_blk",
        &["virtio_ring", "virtio"],
        &["virtio:d00000002v*"],
    ),
    (
        "virtio_net",
        &["virtio_ring", "virtio"],
        &["virtio:d00000001v*"],
    ),
    ("usbcore", &[], &["usb:v*p*d*dc09dsc*dp*ic*isc*ip*in*"]),
    ("xhci_hcd", &["usbcore"], &[]),
    (
        "xhci_pci",
        &["xhci_hcd", "usbcore"],
        &["pci:v*d*sv*sd*bc0Csc03i30*"],
    ),
    (
        "usb_storage",
        &["usbcore"],
        &["usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*"],
    ),
    ("scsi_mod", &[], &[]),
    ("sd_mod", &["scsi_mod"], &["scsi:t-0x00*"]),
    ("drm", &[], &[]),
    (
        "bochs",
        &["drm"],
        &["pci:v00001234d00001111sv*sd*bc03sc00i00*"],
    ),
    ("atkbd", &[], &["serio:ty01pr*id*ex*"]),
];

/// Built-in modules and their aliases.
const BUILTIN: &[(&str, &[&str])] = &[
    ("8250", &["platform:serial8250"]),
    ("i8042", &["platform:i8042"]),
];

pub(crate) const VERSION: &str = "1.0-test";

/// A scratch root: `lib/modules/1.0-test`, a fake `/sys/module` and `/proc`.
pub(crate) struct FakeTree {
    root: PathBuf,
}

impl Drop for FakeTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn rel(name: &str) -> String {
    format!("kernel/drivers/{name}.ko")
}

impl FakeTree {
    pub(crate) fn new(name: &str) -> FakeTree {
        let root = std::env::temp_dir().join(format!("modkit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let tree = FakeTree { root };
        let moddir = tree.moddir();
        std::fs::create_dir_all(moddir.join("kernel/drivers")).unwrap();
        let (mut dep, mut alias) = (IndexBuilder::new(), IndexBuilder::new());
        let mut alias_text = String::from("# Aliases extracted from modules themselves.\n");
        for (priority, (module, deps, aliases)) in MODULES.iter().enumerate() {
            let priority = priority as u32;
            std::fs::write(moddir.join(rel(module)), format!("fake {module}\n")).unwrap();
            let deps: Vec<String> = deps.iter().map(|d| rel(d)).collect();
            let line = format!("{}: {}", rel(module), deps.join(" "));
            dep.insert(module, line.trim_end(), priority).unwrap();
            for pattern in *aliases {
                // depmod normalises the keys of modules.alias.bin, not the text file's.
                let key = modkit_glob::normalize_alias(pattern).unwrap();
                alias.insert(&key, module, priority).unwrap();
                alias_text.push_str(&format!("alias {pattern} {module}\n"));
            }
        }
        let (mut builtin, mut builtin_alias) = (IndexBuilder::new(), IndexBuilder::new());
        for (priority, (module, aliases)) in BUILTIN.iter().enumerate() {
            builtin.insert(module, "", priority as u32).unwrap();
            for pattern in *aliases {
                let key = modkit_glob::normalize_alias(pattern).unwrap();
                builtin_alias.insert(&key, module, priority as u32).unwrap();
            }
        }
        for (file, index) in [
            ("modules.dep.bin", dep),
            ("modules.alias.bin", alias),
            ("modules.builtin.bin", builtin),
            ("modules.builtin.alias.bin", builtin_alias),
        ] {
            std::fs::write(moddir.join(file), index.write(Layout::PostOrder).unwrap()).unwrap();
        }
        std::fs::write(moddir.join("modules.alias"), alias_text).unwrap();
        std::fs::create_dir_all(tree.root.join("sys_module")).unwrap();
        std::fs::create_dir_all(tree.root.join("proc")).unwrap();
        std::fs::write(tree.root.join("proc/modules"), "").unwrap();
        tree
    }

    pub(crate) fn moddir(&self) -> PathBuf {
        self.root.join("lib/modules").join(VERSION)
    }

    /// A context over the module directory with `config` as the only modprobe.d file.
    pub(crate) fn context(&self, config: &str) -> Context {
        let mut warnings = Vec::new();
        let mut parsed = ModprobeConfig::default();
        parsed.parse(config, Path::new("test.conf"), &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        Context::new(self.moddir(), parsed)
    }

    /// modkit-sysfs's fake QEMU guest.
    pub(crate) fn sysfs(&self) -> Sysfs {
        Sysfs::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("../modkit-sysfs/testdata/qemu"))
    }

    /// Mark a module as loaded (`live`) in the fake `/sys/module`.
    pub(crate) fn set_loaded(&self, name: &str) {
        let dir = self.root.join("sys_module").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("initstate"), "live\n").unwrap();
    }

    pub(crate) fn kernel(&self) -> RecordingKernel {
        RecordingKernel::new(
            SysModule::new(self.root.join("sys_module")),
            ProcDir::new(self.root.join("proc")),
        )
    }

    /// The path of a module's stand-in file.
    pub(crate) fn module_path(&self, name: &str) -> PathBuf {
        let mut path = self.moddir().into_os_string();
        path.push("/");
        path.push(rel(name));
        PathBuf::from(path)
    }
}
