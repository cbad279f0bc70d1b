//! Snapshot tests over `testdata/`: what the parsers make of each configuration, without kmod.
#![forbid(unsafe_code)]

mod common;

use std::path::Path;

use modkit_config::Warning;
use modkit_config::depmod::DepmodConfig;

/// Renders warnings with paths relative to `testdata/`, so snapshots do not depend on where
/// the repository lives.
fn render_warnings(warnings: &[Warning]) -> String {
    let root = format!("{}/", common::testdata().display());
    warnings
        .iter()
        .map(|w| format!("{}\n", w.to_string().replace(&root, "")))
        .collect()
}

fn check(name: &str, text: String) {
    insta::assert_snapshot!(name, text);
}

#[test]
fn modprobe_cases() {
    for case in common::modprobe_cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let (config, warnings) = common::load_case(&case, &common::case_cmdline(&case));
        check(
            &format!("modprobe-{name}"),
            format!(
                "{}--- warnings ---\n{}",
                config.show_config(),
                render_warnings(&warnings)
            ),
        );
    }
}

#[test]
fn depmod_case() {
    let root = common::testdata().join("depmod");
    let (config, warnings) =
        DepmodConfig::load(&[root.join("etc"), root.join("lib"), root.join("missing")]);
    check(
        "depmod",
        format!(
            "{config:#?}\n--- warnings ---\n{}",
            render_warnings(&warnings)
        ),
    );
    let one = config.for_kernel("6.1.0-28-amd64");
    assert_eq!(one.overrides.len(), 2);
    assert_eq!(one.external.len(), 1);
    let other = config.for_kernel("6.12.9-amd64");
    // kmod's line reader drops a backslash before any character but a newline, so the
    // pattern written `6\.1\..*` reaches regcomp as `6.1..*`, which matches 6.12.9 too.
    assert_eq!(other.overrides.len(), 2);
    assert_eq!(other.overrides[1].kernel, "6.1..*");
    assert!(other.external.is_empty());
    assert_eq!(DepmodConfig::default_dirs()[0], Path::new("/etc/depmod.d"));
}
