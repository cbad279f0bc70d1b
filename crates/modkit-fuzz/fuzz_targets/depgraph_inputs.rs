//! Fuzz target: depmod's text inputs — modules.order, modules.builtin and
//! modules.builtin.modinfo — through a whole `Depmod` run (scan, order, resolve, render) over
//! a scratch module directory holding the two sample modules. Input: the three files'
//! contents separated by the byte 0xFF (which none of them contains legitimately), plus the
//! depmod.d text as a fourth part.
#![no_main]
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use modkit_depgraph::{Depmod, DepmodConfig, Flavor};

fn module_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base =
            std::env::temp_dir().join(format!("modkit-fuzz-depgraph-{}", std::process::id()));
        let dir = base.join("lib/modules/6.1.0-fuzz");
        std::fs::create_dir_all(dir.join("kernel/extra")).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kmods/fixtures/6.1");
        for m in ["hello_api.ko", "hello_feature.ko"] {
            std::fs::copy(fixtures.join(m), dir.join("kernel/extra").join(m)).unwrap();
        }
        dir
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = module_dir();
    let mut parts = data.split(|&b| b == 0xFF);
    for name in [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ] {
        let path = dir.join(name);
        match parts.next() {
            Some(bytes) => std::fs::write(&path, bytes).unwrap(),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let mut depmod = Depmod::new(dir, Flavor::kmod30());
    if let Some(conf) = parts.next() {
        let text = String::from_utf8_lossy(conf);
        let mut config = DepmodConfig::default();
        let mut warnings = Vec::new();
        DepmodConfig::parse(
            &text,
            Path::new("/etc/depmod.d/fuzz.conf"),
            &mut config,
            &mut warnings,
        );
        config.finish();
        let config = config.for_kernel("6.1.0-fuzz");
        depmod.config = config;
    }
    if let Ok(generated) = depmod.generate() {
        for file in &generated.files {
            // kmod 30 writes the builtin indexes as 0-byte files when there is no input.
            if file.name.ends_with(".bin") && !file.bytes.is_empty() {
                let index = modkit_index::Index::from_bytes(&file.bytes).expect("own index reads");
                for entry in index.iter() {
                    entry.expect("own index iterates");
                }
            }
        }
    }
    let _ = depmod.diagnostics.drain();
});
