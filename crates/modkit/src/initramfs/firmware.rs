//! The firmware files the included modules name (`firmware=` records), found under
//! `ROOT/lib/firmware` as the kernel's loader looks for them: the plain name, then `.xz` and
//! `.zst` (CONFIG_FW_LOADER_COMPRESS_XZ/_ZSTD). What is named but absent is collected, for one
//! warning (as dracut gives).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::Closure;

/// Extensions the kernel's firmware loader tries after the plain name
/// (drivers/base/firmware_loader/main.c, `fw_get_filesystem_firmware` with the decompressors).
pub const EXTENSIONS: [&str; 3] = ["", ".xz", ".zst"];

/// One firmware file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The name as the module gives it (`rtl_nic/rtl8168h-2.fw`).
    pub name: String,
    /// The file it was found as.
    pub file: PathBuf,
    /// Its path in the image (`lib/firmware/NAME[.xz|.zst]`).
    pub image_path: String,
    /// The modules that name it, in closure order.
    pub modules: Vec<String>,
}

/// The firmware of a closure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Firmware {
    /// Found files, sorted by name.
    pub found: Vec<Found>,
    /// Names no file was found for, sorted, each with the modules that name it.
    pub missing: Vec<(String, Vec<String>)>,
}

/// Look up every firmware name of `closure` under `firmware_dir` (normally
/// `ROOT/lib/firmware`). A name that would leave the directory (`..`, absolute) is never
/// looked up: it counts as missing.
pub fn find(firmware_dir: &Path, closure: &Closure) -> Firmware {
    let mut wanted: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for module in &closure.modules {
        for name in &module.firmware {
            let users = wanted.entry(name.as_str()).or_default();
            if !users.contains(&module.name) {
                users.push(module.name.clone());
            }
        }
    }
    let mut out = Firmware::default();
    for (name, modules) in wanted {
        let safe = !name.is_empty()
            && Path::new(name)
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        let hit = safe
            .then(|| {
                EXTENSIONS.iter().find_map(|ext| {
                    let file = firmware_dir.join(format!("{name}{ext}"));
                    file.is_file()
                        .then(|| (file, format!("lib/firmware/{name}{ext}")))
                })
            })
            .flatten();
        match hit {
            Some((file, image_path)) => out.found.push(Found {
                name: name.to_owned(),
                file,
                image_path,
                modules,
            }),
            None => out.missing.push((name.to_owned(), modules)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initramfs::{Included, Reason};

    fn module(name: &str, firmware: &[&str]) -> Included {
        Included {
            name: name.into(),
            path: PathBuf::from(format!("/m/{name}.ko")),
            rel: format!("{name}.ko"),
            reason: Reason::Named(name.into()),
            firmware: firmware.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn plain_then_xz_then_zst_and_one_list_of_missing() {
        let base = std::env::temp_dir().join(format!("modkit-fw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let dir = base.join("firmware");
        std::fs::create_dir_all(dir.join("rtl_nic")).unwrap();
        std::fs::write(dir.join("rtl_nic/a.fw.xz"), "x").unwrap();
        std::fs::write(dir.join("rtl_nic/a.fw.zst"), "z").unwrap();
        std::fs::write(dir.join("b.bin"), "b").unwrap();
        std::fs::write(dir.join("b.bin.xz"), "bx").unwrap();
        std::fs::write(dir.join("c.bin.zst"), "c").unwrap();
        std::fs::write(base.join("escape.bin"), "no").unwrap();
        let closure = Closure {
            modules: vec![
                module("one", &["rtl_nic/a.fw", "gone.bin", "b.bin"]),
                module("two", &["b.bin", "c.bin", "gone.bin", "../escape.bin"]),
            ],
            ..Closure::default()
        };
        let fw = find(&dir, &closure);
        let found: Vec<(&str, &str, Vec<&str>)> = fw
            .found
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.image_path.as_str(),
                    f.modules.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("b.bin", "lib/firmware/b.bin", vec!["one", "two"]),
                ("c.bin", "lib/firmware/c.bin.zst", vec!["two"]),
                ("rtl_nic/a.fw", "lib/firmware/rtl_nic/a.fw.xz", vec!["one"]),
            ]
        );
        assert_eq!(
            fw.missing,
            [
                ("../escape.bin".to_owned(), vec!["two".to_owned()]),
                (
                    "gone.bin".to_owned(),
                    vec!["one".to_owned(), "two".to_owned()]
                ),
            ]
        );
        let _ = std::fs::remove_dir_all(&base);
    }
}
