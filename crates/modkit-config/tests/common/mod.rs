//! Helpers shared by the integration tests: the test configurations in `testdata/`.

#![allow(dead_code, reason = "each test binary uses a different part")]

use std::path::{Path, PathBuf};

use modkit_config::Warning;
use modkit_config::modprobe::ModprobeConfig;

pub fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// The modprobe.d cases: each directory of `testdata/modprobe` with a `paths` file (the `-C`
/// arguments, relative to it) and an optional `cmdline` (the kernel command line).
pub fn modprobe_cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(testdata().join("modprobe"))
        .expect("testdata/modprobe")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("paths").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 5, "test cases missing: {cases:?}");
    cases
}

pub fn case_paths(case: &Path) -> Vec<PathBuf> {
    std::fs::read_to_string(case.join("paths"))
        .expect("paths")
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| case.join(l))
        .collect()
}

pub fn case_cmdline(case: &Path) -> String {
    std::fs::read_to_string(case.join("cmdline")).unwrap_or_default()
}

pub fn load_case(case: &Path, cmdline: &str) -> (ModprobeConfig, Vec<Warning>) {
    ModprobeConfig::load(&case_paths(case), Some(cmdline))
}

/// Warnings that kmod prints at its default log level, as kmod words them.
pub fn printed_warnings(warnings: &[Warning]) -> Vec<String> {
    warnings
        .iter()
        .filter(|w| {
            matches!(
                w,
                Warning::BadLine { .. }
                    | Warning::Deprecated { .. }
                    | Warning::NestedDirectory { .. }
                    | Warning::BadCmdlineOption { .. }
            )
        })
        .map(ToString::to_string)
        .collect()
}
