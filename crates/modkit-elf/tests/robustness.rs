//! No input makes the crate panic: every prefix of every fixture, corrupted headers, corrupt
//! signatures, and decompression bombs all end in a clean result or a typed error.
#![forbid(unsafe_code)]

mod common;

use std::io::Write;

use common::{FIXTURES, SHT_PROGBITS, TESTDATA, read, synthetic_module};
use modkit_elf::{Compression, Error, Module, decompress, signature};

/// Run every reader over `bytes`; return a comparable summary when it parses.
fn exercise(bytes: &[u8]) -> Result<String, Error> {
    let _ = signature(bytes);
    let module = Module::parse(bytes)?;
    let info = module.modinfo();
    let records: Vec<_> = info.iter().collect();
    let _ = (
        info.params(),
        info.softdeps(),
        info.depends(),
        info.aliases().count(),
    );
    Ok(format!(
        "{records:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        module.exports(),
        module.imports(),
        module.versions(),
        module.depmod_exports(),
        module.depmod_imports(),
        module.section(".modinfo"),
    ))
}

/// Cut an uncompressed module at every length: each prefix either fails cleanly or, where the
/// whole ELF is still there (a signed module cut inside its trailer), reads the same as the
/// whole file.
fn truncate_plain(name: &str, file: &[u8]) {
    let full = exercise(file).unwrap_or_else(|e| panic!("{name}: {e}"));
    let elf_end = signature(file)
        .ok()
        .flatten()
        .map_or(file.len(), |s| s.module_len);
    for len in 0..file.len() {
        let prefix = &file[..len];
        match exercise(prefix) {
            Err(_) => {}
            Ok(summary) => {
                assert!(len >= elf_end, "{name}: prefix of {len} bytes parsed");
                assert_eq!(
                    summary, full,
                    "{name}: prefix of {len} bytes reads differently"
                );
            }
        }
        if len < file.len() {
            // A cut trailer is never a valid signature.
            assert!(
                !matches!(signature(prefix), Ok(Some(_))),
                "{name}: prefix of {len} bytes has a signature"
            );
        }
    }
}

/// Cut a compressed module at every length: decompression fails cleanly on every prefix.
fn truncate_compressed(name: &str, file: &[u8]) {
    assert!(decompress(file, u64::MAX).is_ok(), "{name} decompresses");
    for len in 0..file.len() {
        let prefix = &file[..len];
        match decompress(prefix, modkit_elf::DEFAULT_DECOMPRESS_LIMIT) {
            Err(Error::Decompress { .. }) => {}
            // Too short for the magic: handed back as is, and then not an ELF file.
            Ok(bytes) if modkit_elf::detect_compression(prefix) == Compression::None => {
                assert!(
                    Module::parse(&bytes).is_err(),
                    "{name}: {len}-byte prefix parsed"
                );
            }
            other => panic!("{name}: {len}-byte prefix gave {other:?}"),
        }
    }
}

#[test]
fn truncated_fixtures() {
    for rel in [
        "6.1/hello_api.ko",
        "6.1/hello_feature.ko",
        "6.12/hello_api.ko",
        "6.12/hello_feature.ko",
        "6.12/signed/hello_api.ko",
    ] {
        truncate_plain(rel, &read(&format!("{FIXTURES}/{rel}")));
    }
    for rel in [
        "6.12/hello_api.ko.xz",
        "6.12/hello_api.ko.zst",
        "6.12/hello_api.ko.gz",
        "6.12/hello_feature.ko.xz",
        "6.12/hello_feature.ko.zst",
        "6.12/hello_feature.ko.gz",
        "6.12/signed/hello_api.ko.xz",
    ] {
        truncate_compressed(rel, &read(&format!("{FIXTURES}/{rel}")));
    }
}

#[test]
fn truncated_testdata() {
    truncate_plain("libcrc32c.ko", &read(&format!("{TESTDATA}/libcrc32c.ko")));
    truncate_compressed(
        "xt_TRACE.ko.xz",
        &read(&format!("{TESTDATA}/xt_TRACE.ko.xz")),
    );
}

#[test]
fn truncated_synthetic_modules() {
    for class64 in [false, true] {
        for big in [false, true] {
            let file = synthetic_module(class64, big).build();
            truncate_plain(&format!("synthetic class64={class64} big={big}"), &file);
        }
    }
}

/// Flip each byte of a module (one at a time) to 0xff: nothing panics.
#[test]
fn corrupted_bytes_never_panic() {
    for file in [
        synthetic_module(false, true).build(),
        synthetic_module(true, false).build(),
        read(&format!("{FIXTURES}/6.12/signed/hello_api.ko")),
    ] {
        let mut copy = file.clone();
        for i in 0..file.len() {
            for value in [0xff, 0x00, 0x80] {
                copy[i] = value;
                let _ = exercise(&copy);
            }
            copy[i] = file[i];
        }
    }
}

#[test]
fn wrong_magic() {
    let mut file = synthetic_module(true, false).build();
    file[1] = b'X';
    assert!(matches!(Module::parse(&file), Err(Error::NotElf { .. })));
    assert!(matches!(Module::parse(b""), Err(Error::NotElf { .. })));
    assert!(matches!(Module::parse(b"\x7fELF"), Err(Error::Elf { .. })));
}

#[test]
fn compressed_input_to_parse_says_so() {
    let xz = read(&format!("{FIXTURES}/6.12/hello_api.ko.xz"));
    let err = Module::parse(&xz).unwrap_err();
    assert!(matches!(err, Error::Compressed(Compression::Xz)));
    assert_eq!(
        err.to_string(),
        "module data is xz-compressed; decompress it first"
    );
}

#[test]
fn huge_section_offset_is_out_of_bounds() {
    for class64 in [false, true] {
        let mut b = synthetic_module(class64, true);
        b.sections[0].offset_override = Some(if class64 { u64::MAX - 4 } else { 0xffff_fff0 });
        let err = Module::parse(&b.build()).unwrap_err();
        match err {
            Error::OutOfBounds { what, .. } => assert_eq!(what, "section .modinfo"),
            other => panic!("expected OutOfBounds, got {other:?}"),
        }
    }
    // A huge size, and a symbol table past the end: errors when symbols are asked for.
    let mut b = synthetic_module(true, false);
    b.sections[0].size_override = Some(1 << 40);
    assert!(matches!(
        Module::parse(&b.build()),
        Err(Error::OutOfBounds { .. })
    ));
    let b = synthetic_module(true, false);
    // build() appends .symtab right after the builder's sections (index 0 is the null one).
    let symtab_index = b.sections.len() + 1;
    let mut module_bytes = b.build();
    let shoff = u64::from_le_bytes(module_bytes[0x28..0x30].try_into().unwrap()) as usize;
    let sh_offset = shoff + 64 * symtab_index + 24;
    module_bytes[sh_offset..sh_offset + 8].copy_from_slice(&(1u64 << 50).to_le_bytes());
    let module = Module::parse(&module_bytes).expect("parses without touching .symtab");
    assert!(matches!(module.imports(), Err(Error::OutOfBounds { .. })));
    assert!(matches!(module.exports(), Err(Error::OutOfBounds { .. })));
    assert!(module.modinfo().name() == Some("synth"));
}

#[test]
fn overlapping_sections_are_read_as_declared() {
    // __versions laid over .modinfo: both still read, neither panics.
    let mut b = synthetic_module(true, false);
    let plain = b.build();
    let modinfo_offset = 64u64; // first section data starts right after the ELF header
    b.sections[1].offset_override = Some(modinfo_offset);
    b.sections[1].size_override = Some(64);
    let file = b.build();
    assert_eq!(file.len(), plain.len());
    let module = Module::parse(&file).unwrap();
    assert_eq!(module.modinfo().name(), Some("synth"));
    // The bytes of .modinfo are not NUL-terminated 64-byte version entries.
    let _ = module.versions();
    let _ = module.depmod_imports();
}

#[test]
fn modinfo_without_nuls() {
    let mut b = common::ElfBuilder::new(false, true);
    b.section(".modinfo", SHT_PROGBITS, b"license=GPL".to_vec());
    let file = b.build();
    let module = Module::parse(&file).unwrap();
    let records: Vec<_> = module.modinfo().collect();
    assert_eq!(
        records.len(),
        1,
        "a final record without NUL still counts (as in kmod)"
    );
    assert_eq!(module.modinfo().license().as_deref(), Some("GPL"));
    // No symbol table: symbol queries are typed errors, not panics.
    assert!(matches!(
        module.imports(),
        Err(Error::MissingSection(".symtab"))
    ));
    assert_eq!(module.versions().unwrap(), vec![]);
    assert_eq!(module.depmod_exports().unwrap(), vec![]);
}

#[test]
fn versions_of_wrong_size() {
    let mut b = common::ElfBuilder::new(true, false);
    b.section("__versions", SHT_PROGBITS, vec![0x41; 65]);
    let module_bytes = b.build();
    let module = Module::parse(&module_bytes).unwrap();
    assert!(matches!(module.versions(), Err(Error::Malformed { .. })));
    let mut b = common::ElfBuilder::new(true, false);
    b.section("__versions", SHT_PROGBITS, vec![0x41; 64]);
    let module_bytes = b.build();
    let module = Module::parse(&module_bytes).unwrap();
    let err = module.versions().unwrap_err();
    assert!(err.to_string().contains("NUL-terminated"), "{err}");
}

// ---- decompression bombs ------------------------------------------------------------------

const BOMB_SIZE: usize = 4 << 20;
const BOMB_LIMIT: u64 = 1 << 20;

fn zeros() -> Vec<u8> {
    vec![0u8; BOMB_SIZE]
}

fn assert_bomb(format: Compression, compressed: &[u8]) {
    assert_eq!(modkit_elf::detect_compression(compressed), format);
    match decompress(compressed, BOMB_LIMIT) {
        Err(Error::TooLarge { format: f, limit }) => {
            assert_eq!((f, limit), (format, BOMB_LIMIT));
        }
        other => panic!(
            "{format}: expected TooLarge, got {:?}",
            other.map(|b| b.len())
        ),
    }
    // Exactly at the limit is fine.
    let out = decompress(compressed, BOMB_SIZE as u64).expect("fits the limit");
    assert_eq!(out.len(), BOMB_SIZE);
    assert!(matches!(
        decompress(compressed, BOMB_SIZE as u64 - 1),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn xz_bomb() {
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 6);
    enc.write_all(&zeros()).unwrap();
    assert_bomb(Compression::Xz, &enc.finish().unwrap());
}

#[test]
fn zstd_bomb() {
    let compressed = ruzstd::encoding::compress_to_vec(
        zeros().as_slice(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    assert_bomb(Compression::Zstd, &compressed);
}

#[test]
fn gzip_bomb() {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&zeros()).unwrap();
    assert_bomb(Compression::Gzip, &enc.finish().unwrap());
}

#[test]
fn gzip_with_lying_size_trailer() {
    // ISIZE claims 4 GiB - 1: only a capacity hint, never trusted for the result.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(b"hello").unwrap();
    let mut gz = enc.finish().unwrap();
    let n = gz.len();
    gz[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decompress(&gz, BOMB_LIMIT),
        Err(Error::Decompress { .. })
    ));
}

#[test]
fn concatenated_streams_decode_whole() {
    let mut one = liblzma::write::XzEncoder::new(Vec::new(), 1);
    one.write_all(b"first ").unwrap();
    let mut xz = one.finish().unwrap();
    let mut two = liblzma::write::XzEncoder::new(Vec::new(), 1);
    two.write_all(b"second").unwrap();
    xz.extend(two.finish().unwrap());
    assert_eq!(decompress(&xz, 100).unwrap().as_ref(), b"first second");

    let mut zst = ruzstd::encoding::compress_to_vec(
        &b"first "[..],
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    zst.extend(ruzstd::encoding::compress_to_vec(
        &b"second"[..],
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    assert_eq!(decompress(&zst, 100).unwrap().as_ref(), b"first second");
}

#[test]
fn uncompressed_input_is_borrowed() {
    let file = synthetic_module(true, false).build();
    assert!(matches!(
        decompress(&file, 0),
        Ok(std::borrow::Cow::Borrowed(_))
    ));
}

// ---- signatures ---------------------------------------------------------------------------

/// A trailer with the given fields after `body`.
fn with_trailer(body: &[u8], fields: [u8; 5], sig_len: u32) -> Vec<u8> {
    let mut file = body.to_vec();
    file.extend_from_slice(&fields);
    file.extend_from_slice(&[0, 0, 0]);
    file.extend_from_slice(&sig_len.to_be_bytes());
    file.extend_from_slice(modkit_elf::SIGNATURE_MAGIC);
    file
}

#[test]
fn bad_trailers_are_typed_errors() {
    let body = vec![7u8; 100];
    let cases: &[([u8; 5], u32, &str)] = &[
        ([2, 0, 2, 0, 0], 10, "unknown public-key algorithm"),
        ([0, 9, 2, 0, 0], 10, "unknown hash algorithm"),
        ([0, 0, 3, 0, 0], 10, "unknown key identifier type"),
        ([0, 0, 2, 0, 0], 0, "signature length is 0"),
        ([0, 0, 2, 0, 0], 101, "signature longer than the file"),
        ([0, 0, 1, 0, 200], 10, "key identifier longer than the file"),
        ([0, 0, 1, 200, 0], 10, "signer name longer than the file"),
    ];
    for (fields, len, reason) in cases {
        match signature(&with_trailer(&body, *fields, *len)) {
            Err(Error::Signature { reason: r, offset }) => {
                assert_eq!(r, *reason);
                assert_eq!(offset, 100);
            }
            other => panic!("{reason}: got {other:?}"),
        }
    }
    // Magic alone, too short for the struct.
    assert!(matches!(
        signature(modkit_elf::SIGNATURE_MAGIC),
        Err(Error::Signature { .. })
    ));
}

#[test]
fn x509_trailer_reports_raw_fields() {
    // A pre-PKCS#7 (id type 1) trailer: signer, key id and signature are taken as they are.
    let mut body = b"ELF-ish module body".to_vec();
    body.extend_from_slice(b"Signer Name");
    body.extend_from_slice(&[0xAB, 0xCD]);
    body.extend_from_slice(&[1, 2, 3]);
    let file = with_trailer(&body, [1, 4, 1, 11, 2], 3);
    let sig = signature(&file).unwrap().unwrap();
    assert_eq!(sig.signer(), "Signer Name");
    assert_eq!(sig.key_id(), &[0xAB, 0xCD]);
    assert_eq!(sig.signature, vec![1, 2, 3]);
    assert_eq!((sig.id_type_name(), sig.algo_name()), ("X509", "RSA"));
    assert_eq!(sig.hash_algo_name(), "sha256");
    assert_eq!(sig.sig_key_hex(), "AB:CD");
    assert_eq!(sig.module_len, 19);
}

/// Every strict prefix of the PKCS#7 blob, declared as the whole signature, is a clean error;
/// so is every single-byte corruption (or it still parses).
#[test]
fn corrupt_pkcs7_blobs() {
    let signed = read(&format!("{FIXTURES}/6.12/signed/hello_api.ko"));
    let sig = signature(&signed).unwrap().unwrap();
    let blob_start = sig.module_len;
    let blob = &signed[blob_start..blob_start + sig.raw_len as usize];
    for len in 1..blob.len() {
        let file = with_trailer(&blob[..len], [0, 0, 2, 0, 0], len as u32);
        assert!(
            matches!(signature(&file), Err(Error::Der { .. })),
            "prefix of {len} bytes"
        );
    }
    let mut copy = blob.to_vec();
    for i in 0..blob.len() {
        for value in [0x00, 0xff, 0x80, 0x30] {
            copy[i] = value;
            let _ = signature(&with_trailer(&copy, [0, 0, 2, 0, 0], copy.len() as u32));
        }
        copy[i] = blob[i];
    }
}

#[test]
fn pkcs7_with_wrong_content_type() {
    // ContentInfo { OID 1.2.840.113549.1.7.1 (data) }.
    let der = [
        0x30, 0x0B, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01,
    ];
    let err = signature(&with_trailer(&der, [0, 0, 2, 0, 0], der.len() as u32)).unwrap_err();
    assert!(err.to_string().contains("signedData"), "{err}");
}

/// Deterministic pseudo-random multi-byte corruption (xorshift64), over headers and data alike.
#[test]
fn random_corruption_never_panics() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let inputs = [
        synthetic_module(false, true).build(),
        synthetic_module(true, false).build(),
        read(&format!("{FIXTURES}/6.1/hello_feature.ko")),
        read(&format!("{FIXTURES}/6.12/signed/hello_api.ko")),
    ];
    for file in &inputs {
        for _ in 0..1500 {
            let mut copy = file.clone();
            for _ in 0..1 + next() % 8 {
                let at = (next() % copy.len() as u64) as usize;
                copy[at] = next() as u8;
            }
            let _ = exercise(&copy);
        }
    }
    // Compressed inputs: corrupt, then decompress (and parse whatever comes out).
    for rel in [
        "6.12/hello_api.ko.xz",
        "6.12/hello_api.ko.zst",
        "6.12/hello_api.ko.gz",
    ] {
        let file = read(&format!("{FIXTURES}/{rel}"));
        for _ in 0..300 {
            let mut copy = file.clone();
            let at = (next() % copy.len() as u64) as usize;
            copy[at] ^= 1 << (next() % 8);
            if let Ok(bytes) = decompress(&copy, modkit_elf::DEFAULT_DECOMPRESS_LIMIT) {
                let _ = exercise(&bytes);
            }
        }
    }
}
