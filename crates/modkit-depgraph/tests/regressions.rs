//! Inputs the bad-input suite and the fuzzers (`cargo xtask fuzz`) found to hang or break
//! depmod's database, kept so that they stay fixed.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use modkit_depgraph::{Depmod, Flavor};

/// A module directory with FIFOs in place of `modules.order`, `modules.builtin` and
/// `modules.builtin.modinfo`. depmod used to block forever opening the first (kmod 30 does
/// too); now each is reported as not a regular file and the run goes on without it.
#[test]
fn fifos_in_place_of_the_text_inputs_do_not_block() {
    let dir = std::env::temp_dir()
        .join(format!("modkit-depgraph-fifo-{}", std::process::id()))
        .join("lib/modules/6.1.0-fifo");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("kernel")).unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../kmods/fixtures/6.1/hello_api.ko");
    std::fs::copy(&fixture, dir.join("kernel/hello_api.ko")).unwrap();
    let names = [
        "modules.order",
        "modules.builtin",
        "modules.builtin.modinfo",
    ];
    for name in names {
        let ok = std::process::Command::new("mkfifo")
            .arg(dir.join(name))
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo {name}");
    }
    let (tx, rx) = mpsc::channel();
    let module_dir: PathBuf = dir.clone();
    std::thread::spawn(move || {
        let mut depmod = Depmod::new(&module_dir, Flavor::kmod30());
        let result = depmod
            .generate()
            .map(|g| g.files.len())
            .map_err(|e| e.to_string());
        let messages: Vec<String> = depmod
            .diagnostics
            .drain()
            .into_iter()
            .map(|m| m.text)
            .collect();
        let _ = tx.send((result, messages));
    });
    // A deadline that only guards against the hang.
    let outcome = rx.recv_timeout(Duration::from_secs(30));
    if outcome.is_err() {
        // Unblock the reader (each FIFO once), so the thread does not outlive the test.
        for name in names {
            let _ = std::fs::OpenOptions::new().write(true).open(dir.join(name));
        }
    }
    let _ = std::fs::remove_dir_all(dir.parent().unwrap().parent().unwrap().parent().unwrap());
    let (result, messages) = outcome.expect("depmod blocked on a FIFO");
    assert!(result.is_ok(), "{result:?}");
    for name in names {
        assert!(
            messages
                .iter()
                .any(|m| m.contains(name) && m.contains("not a regular file")),
            "{name} not reported: {messages:#?}"
        );
    }
}
