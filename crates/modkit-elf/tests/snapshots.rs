//! Snapshot tests: everything read from every sample-module fixture, every compression, and
//! this crate's Debian test modules; plus a check against kmod's own output for the latter.
#![forbid(unsafe_code)]

mod common;

use common::{FIXTURES, TESTDATA, kmod_modinfo, read, report};

/// Every fixture this test covers; `all_fixtures_are_covered` fails when a new one appears.
const FIXTURE_FILES: &[&str] = &[
    "6.1/hello_api.ko",
    "6.1/hello_feature.ko",
    "6.12/hello_api.ko",
    "6.12/hello_api.ko.gz",
    "6.12/hello_api.ko.xz",
    "6.12/hello_api.ko.zst",
    "6.12/hello_feature.ko",
    "6.12/hello_feature.ko.gz",
    "6.12/hello_feature.ko.xz",
    "6.12/hello_feature.ko.zst",
    "6.12/signed/hello_api.ko",
    "6.12/signed/hello_api.ko.xz",
];

fn check(name: &str, file: &[u8], redact_signature: bool) {
    // An absolute path: insta's own workspace detection is not needed (nor always right).
    insta::with_settings!({
        snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"),
        prepend_module_to_snapshot => false,
    }, {
        insta::assert_snapshot!(name, report(file, redact_signature));
    });
}

fn fixture(rel: &str) -> Vec<u8> {
    read(&format!("{FIXTURES}/{rel}"))
}

#[test]
fn all_fixtures_are_covered() {
    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("fixture dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else if path.to_string_lossy().contains(".ko") {
                let rel = path.strip_prefix(base).expect("below base");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let base = std::path::Path::new(FIXTURES);
    let mut found = Vec::new();
    walk(base, base, &mut found);
    found.sort();
    let mut listed: Vec<String> = FIXTURE_FILES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "kmods/fixtures changed: update FIXTURE_FILES and snapshots"
    );
}

#[test]
fn fixtures() {
    for rel in FIXTURE_FILES {
        let name = format!("fixture-{}", rel.replace('/', "-"));
        check(&name, &fixture(rel), rel.contains("signed"));
    }
}

#[test]
fn compressed_fixtures_match_plain() {
    for base in [
        "6.12/hello_api.ko",
        "6.12/hello_feature.ko",
        "6.12/signed/hello_api.ko",
    ] {
        let plain = fixture(base);
        let exts: &[&str] = if base.contains("signed") {
            &["xz"]
        } else {
            &["xz", "zst", "gz"]
        };
        for ext in exts {
            let file = fixture(&format!("{base}.{ext}"));
            let bytes = modkit_elf::decompress(&file, modkit_elf::DEFAULT_DECOMPRESS_LIMIT)
                .unwrap_or_else(|e| panic!("{base}.{ext}: {e}"));
            assert!(
                bytes.as_ref() == plain.as_slice(),
                "{base}.{ext} decompresses differently"
            );
        }
    }
}

#[test]
fn signed_fixture_is_the_unsigned_module_plus_trailer() {
    let unsigned = fixture("6.12/hello_api.ko");
    let signed = fixture("6.12/signed/hello_api.ko");
    let sig = modkit_elf::signature(&signed)
        .expect("signature readable")
        .expect("module is signed");
    assert_eq!(sig.module_len, unsigned.len());
    assert_eq!(&signed[..sig.module_len], unsigned.as_slice());
    assert_eq!(sig.id_type_name(), "PKCS#7");
    assert_eq!(sig.signer(), "modkit test signing key");
    assert_eq!(sig.hash_algo_name(), "sha256");
    assert_eq!(sig.signature.len(), 512, "RSA-4096 signature");
    assert!(
        !sig.key_id.is_empty() && sig.key_id[0] != 0,
        "serial without leading zeros"
    );
    assert_eq!(modkit_elf::signature(&unsigned).expect("no error"), None);
}

const TESTDATA_FILES: &[&str] = &[
    "libcrc32c.ko",
    "nf_conntrack_snmp.ko",
    "cxl_mem.ko",
    "xt_TRACE.ko.xz",
];

#[test]
fn testdata_modules() {
    for name in TESTDATA_FILES {
        check(
            &format!("testdata-{name}"),
            &read(&format!("{TESTDATA}/{name}")),
            false,
        );
    }
}

/// `testdata/kmod/NAME.modinfo` is kmod 30's `modinfo` output (filename line removed) and
/// `NAME.modversions` its `modprobe --dump-modversions`; see `testdata/README.md`.
#[test]
fn testdata_matches_kmod_output() {
    for name in TESTDATA_FILES {
        let file = read(&format!("{TESTDATA}/{name}"));
        let expected = read(&format!("{TESTDATA}/kmod/{name}.modinfo"));
        assert_eq!(
            kmod_modinfo(&file),
            String::from_utf8_lossy(&expected),
            "{name}"
        );

        let bytes = modkit_elf::decompress(&file, modkit_elf::DEFAULT_DECOMPRESS_LIMIT).unwrap();
        let module = modkit_elf::Module::parse(&bytes).unwrap();
        let versions: String = module
            .versions()
            .unwrap()
            .iter()
            .map(|v| format!("0x{:08x}\t{}\n", v.crc, v.name))
            .collect();
        let expected = read(&format!("{TESTDATA}/kmod/{name}.modversions"));
        assert_eq!(versions, String::from_utf8_lossy(&expected), "{name}");
    }
}
