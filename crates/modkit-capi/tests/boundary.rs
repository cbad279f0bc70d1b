//! The C boundary under misuse: `boundary.c`, built against Debian's `libkmod.h`, hands
//! modkit's library NULL handles, handles after their last unref, double unrefs, freed lists,
//! nodes of the wrong kind of list and made-up pointers; every call must answer NULL, 0 or a
//! negative errno, and the process must end normally. (Debian's libkmod crashes on several of
//! these, so it runs against modkit's only.)
#![forbid(unsafe_code)]

mod support;

use std::path::Path;

use modkit_testkit::{Scratch, require};

#[test]
fn misuse_is_answered_with_errors_not_crashes() {
    let test = "boundary::misuse_is_answered_with_errors_not_crashes";
    let Some(()) = require(test, support::c_toolchain()) else {
        return;
    };
    let Some(_) = require(test, support::debian_library()) else {
        return;
    };
    let scratch = Scratch::new("capi-boundary");
    let dir = scratch.mkdir("lib/modules/1.0");
    let module =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kmods/fixtures/6.1/hello_api.ko");
    assert!(module.is_file(), "{}", module.display());
    let exe = support::build_c(&scratch, "boundary");
    let ours = support::our_library_dir(&scratch);
    let out = support::run_with(&exe, &[dir.as_path(), module.as_path()], Some(&ours));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = stdout.lines().last().unwrap_or_default();
    let checks: usize = summary
        .strip_prefix("checks: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary: {stdout}"));
    assert!(checks > 80, "only {checks} checks ran: {stdout}");
    assert!(summary.ends_with("failures: 0"), "{stdout}");
}
