//! Fuzz target: a depmod.d file through the parser, the per-kernel view, ranks, and the
//! kernel-version ERE matcher on every pattern the file names.
#![no_main]
#![forbid(unsafe_code)]

use std::path::Path;

use modkit_config::depmod::{DepmodConfig, kernel_matches};

const KERNELS: &[&str] = &["6.1.0-56-amd64", "6.12.38+deb13-amd64", ""];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut config = DepmodConfig::default();
    let mut warnings = Vec::new();
    DepmodConfig::parse(
        &text,
        Path::new("/etc/depmod.d/fuzz.conf"),
        &mut config,
        &mut warnings,
    );
    let _ = warnings.iter().map(ToString::to_string).count();
    config.finish();
    for kernel in KERNELS {
        let view = config.for_kernel(kernel);
        let _ = config.overrides_for(kernel).map(|o| o.path()).count();
        for relpath in ["kernel/fs/ext4/ext4.ko", "updates/x.ko", "extra/a/b.ko"] {
            let _ = view.rank(Some(relpath));
        }
        let _ = view.rank(None);
    }
    for word in text.split_whitespace().take(8) {
        for kernel in KERNELS {
            let _ = kernel_matches(word, kernel);
        }
    }
});
