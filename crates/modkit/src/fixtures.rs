//! A fake module directory for tests of device lookups and coldplug, here and in the CLI's
//! tests (feature `test-support`): the modules QEMU's devices need, with their dependencies
//! and aliases, written as the indexes depmod writes (modules.dep.bin, modules.alias.bin, the
//! built-in indexes) and the text modules.alias, beside stand-in module files. It matches
//! modkit-sysfs's fake QEMU sysfs tree (`crates/modkit-sysfs/testdata/qemu`).

use std::path::Path;

use modkit_index::{IndexBuilder, Layout};

/// (module, modules.dep dependencies, alias patterns), in module order.
pub const MODULES: &[(&str, &[&str], &[&str])] = &[
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
pub const BUILTIN: &[(&str, &[&str])] = &[
    ("8250", &["platform:serial8250"]),
    ("i8042", &["platform:i8042"]),
];

/// The path of a module's stand-in file, relative to the module directory.
pub fn rel(name: &str) -> String {
    format!("kernel/drivers/{name}.ko")
}

/// Write the module directory `moddir`: stand-in module files, the indexes and modules.alias.
/// Panics on I/O errors (it is test set-up).
pub fn write_module_dir(moddir: &Path) {
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
            let key = modkit_glob::name::alias_normalize(pattern).unwrap();
            alias.insert(&key, module, priority).unwrap();
            alias_text.push_str(&format!("alias {pattern} {module}\n"));
        }
    }
    let (mut builtin, mut builtin_alias) = (IndexBuilder::new(), IndexBuilder::new());
    for (priority, (module, aliases)) in BUILTIN.iter().enumerate() {
        builtin.insert(module, "", priority as u32).unwrap();
        for pattern in *aliases {
            let key = modkit_glob::name::alias_normalize(pattern).unwrap();
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
}
