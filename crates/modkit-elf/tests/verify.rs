//! Signature verification on modules signed as scripts/sign-file does, with throwaway keys
//! (`testdata/sig/make.sh`): good, tampered, signed by an impostor or a stranger, unsigned,
//! with a broken trailer; certificate files in DER and PEM.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use modkit_elf::{Certificate, SignatureError, parse_certificates, verify};

fn sig(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/sig")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn trusted() -> Vec<Certificate> {
    parse_certificates(&sig("trusted.x509")).unwrap()
}

#[test]
fn a_module_signed_with_a_trusted_key_verifies() {
    let verified = verify(&sig("hello_api.sha256.ko"), &trusted()).unwrap();
    assert_eq!(
        (
            verified.certificate,
            verified.hash,
            verified.signed_attributes
        ),
        (0, "sha256", false)
    );
}

#[test]
fn signed_attributes_and_sha512_verify_as_cms_says() {
    let verified = verify(&sig("hello_api.sha512-attrs.ko"), &trusted()).unwrap();
    assert_eq!(
        (verified.hash, verified.signed_attributes),
        ("sha512", true)
    );
}

/// ECDSA, as Debian 6.12 signs (a P-384 build key, sha256), and P-256; a changed module fails.
/// Twenty rounds with the same certificates: a key verifies its first signatures the plain way
/// and the rest over its fixed-base table (after 8), and the verdicts stay.
#[test]
fn ecdsa_signatures_verify() {
    for curve in ["p384", "p256"] {
        let certs = parse_certificates(&sig(&format!("{curve}.x509"))).unwrap();
        let module = sig(&format!("hello_api.{curve}.ko"));
        let mut changed = module.clone();
        changed[2000] ^= 1;
        for round in 0..20 {
            let verified = verify(&module, &certs).unwrap();
            assert_eq!(
                (verified.hash, verified.signed_attributes),
                ("sha256", false)
            );
            let err = verify(&changed, &certs).unwrap_err();
            assert!(
                matches!(
                    err,
                    SignatureError::BadSignature {
                        algorithm: "ECDSA",
                        ..
                    }
                ),
                "{curve}, round {round}: {err:?}"
            );
        }
    }
}

#[test]
fn the_matching_certificate_is_found_among_several() {
    let mut certs = parse_certificates(&sig("stranger.x509")).unwrap();
    certs.extend(trusted());
    assert_eq!(
        verify(&sig("hello_api.sha256.ko"), &certs)
            .unwrap()
            .certificate,
        1
    );
}

#[test]
fn a_changed_module_is_rejected() {
    let err = verify(&sig("hello_api.tampered.ko"), &trusted()).unwrap_err();
    assert!(
        matches!(&err, SignatureError::BadSignature { hash: "sha256", .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the sha256 RSA signature does not verify with the certificate \
         'CN=modkit test signing key,O=modkit' (serial 4D4F444B4954): the module was changed \
         after signing, or signed by another key"
    );
    // With signed attributes the messageDigest catches it first.
    let mut changed = sig("hello_api.sha512-attrs.ko");
    changed[100] ^= 1;
    assert_eq!(
        verify(&changed, &trusted()),
        Err(SignatureError::DigestMismatch { hash: "sha512" })
    );
}

/// One RSA certificate over twenty rounds: a key verifies its first signatures the plain way
/// and the rest with its Montgomery parameters kept (after 8), and every verdict stays.
#[test]
fn rsa_verdicts_stay_over_many_verifications() {
    let certs = trusted();
    let (good, attrs, tampered, impostor) = (
        sig("hello_api.sha256.ko"),
        sig("hello_api.sha512-attrs.ko"),
        sig("hello_api.tampered.ko"),
        sig("hello_api.impostor.ko"),
    );
    for round in 0..20 {
        assert_eq!(
            verify(&good, &certs).unwrap().hash,
            "sha256",
            "round {round}"
        );
        assert_eq!(
            verify(&attrs, &certs).unwrap().hash,
            "sha512",
            "round {round}"
        );
        for bad in [&tampered, &impostor] {
            let err = verify(bad, &certs).unwrap_err();
            assert!(
                matches!(
                    err,
                    SignatureError::BadSignature {
                        algorithm: "RSA",
                        ..
                    }
                ),
                "round {round}: {err:?}"
            );
        }
    }
}

#[test]
fn another_key_with_the_same_issuer_and_serial_is_rejected() {
    let err = verify(&sig("hello_api.impostor.ko"), &trusted()).unwrap_err();
    assert!(
        matches!(err, SignatureError::BadSignature { .. }),
        "{err:?}"
    );
    // And the impostor's own certificate verifies it: the fixture is sound.
    let impostor = parse_certificates(&sig("impostor.x509")).unwrap();
    verify(&sig("hello_api.impostor.ko"), &impostor).unwrap();
}

#[test]
fn a_key_the_target_lacks_is_unavailable() {
    let err = verify(&sig("hello_api.stranger.ko"), &trusted()).unwrap_err();
    assert_eq!(
        err,
        SignatureError::UnavailableKey {
            issuer: "CN=another signing key,O=elsewhere".into(),
            serial: "02".into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "no trusted certificate has the signer's issuer 'CN=another signing key,O=elsewhere' \
         and serial 02"
    );
    assert_eq!(
        verify(&sig("hello_api.sha256.ko"), &[]),
        Err(SignatureError::UnavailableKey {
            issuer: "CN=modkit test signing key,O=modkit".into(),
            serial: "4D4F444B4954".into(),
        })
    );
}

#[test]
fn unsigned_and_malformed() {
    let unsigned = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../kmods/fixtures/6.1/hello_api.ko"),
    )
    .unwrap();
    assert_eq!(verify(&unsigned, &trusted()), Err(SignatureError::Unsigned));
    let err = verify(&sig("hello_api.bad-trailer.ko"), &trusted()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "malformed signature: sig_len 2130706432 is longer than the 7672 bytes before the trailer"
    );
    // A PKCS#7 message of the right length that is not DER.
    let mut garbage = sig("hello_api.sha256.ko");
    let end = garbage.len() - 28 - 12;
    garbage[end - 400..end].fill(0x55);
    let err = verify(&garbage, &trusted()).unwrap_err();
    assert!(
        matches!(&err, SignatureError::Malformed { what } if what.starts_with("PKCS#7 ContentInfo")),
        "{err:?}"
    );
}

/// Every truncation of a signed module fails cleanly: without the magic it is unsigned.
#[test]
fn truncated_signed_modules_fail_cleanly() {
    let file = sig("hello_api.sha512-attrs.ko");
    let certs = trusted();
    for len in 0..file.len() {
        assert!(verify(&file[..len], &certs).is_err(), "prefix {len}");
    }
    // Each byte of the PKCS#7 message changed gives an error, never a panic, except what
    // nobody signs and the kernel's parser ignores too: the SignedData's digestAlgorithms
    // (the sha512 OID at 32..41 of the 556-byte message; the signer's own is used) and the
    // tag of the signature algorithm's parameters (ANY OPTIONAL; a NULL at 294).
    let pkcs7_end = file.len() - 28 - 12;
    let pkcs7_start = pkcs7_end - 556;
    let accepted: Vec<usize> = (pkcs7_start..pkcs7_end)
        .filter(|&at| {
            let mut changed = file.clone();
            changed[at] ^= 0x80;
            verify(&changed, &certs).is_ok()
        })
        .map(|at| at - pkcs7_start)
        .collect();
    assert_eq!(accepted, [33, 34, 35, 36, 37, 38, 39, 294]);
}

#[test]
fn certificate_files_in_der_and_pem() {
    let der = parse_certificates(&sig("trusted.x509")).unwrap();
    let pem = parse_certificates(&sig("trusted.pem")).unwrap();
    assert_eq!(der.len(), 1);
    assert_eq!(pem.len(), 1);
    assert_eq!(pem[0].subject(), "CN=modkit test signing key,O=modkit");
    assert_eq!(pem[0].serial_hex(), der[0].serial_hex());
    // Each gives back the DER it was read from (PEM's base64 decoded), what a keyring file holds.
    assert_eq!(der[0].der(), sig("trusted.x509"));
    assert_eq!(pem[0].der(), der[0].der());
    // Concatenated DER, as the kernel's system_certificate_list, and PEM with text around.
    let mut both = sig("trusted.x509");
    both.extend(sig("stranger.x509"));
    assert_eq!(parse_certificates(&both).unwrap().len(), 2);
    let mut text = b"a comment\n".to_vec();
    text.extend(sig("trusted.pem"));
    text.extend(b"between\n");
    text.extend(sig("trusted.pem"));
    assert_eq!(parse_certificates(&text).unwrap().len(), 2);
    assert!(parse_certificates(b"").unwrap().is_empty());

    let err = parse_certificates(b"hello").unwrap_err();
    assert_eq!(
        err.to_string(),
        "certificate at offset 0x0: expected a DER SEQUENCE (30 82 ...) or a PEM certificate"
    );
    let mut cut = sig("trusted.x509");
    cut.extend(&sig("stranger.x509")[..100]);
    let err = parse_certificates(&cut).unwrap_err();
    assert_eq!(err.offset, 831, "{err}");
    let pem = String::from_utf8(sig("trusted.pem")).unwrap();
    let err =
        parse_certificates(pem.replace("-----END CERTIFICATE-----", "").as_bytes()).unwrap_err();
    assert!(err.to_string().contains("without its -----END"), "{err}");
}

#[test]
fn certificates_are_found_inside_other_bytes() {
    let mut image = vec![0x30u8; 5000];
    image.extend([0x30, 0x82, 0x00, 0x10, 0x30, 0x82, 0x00]); // a candidate that is no certificate
    image.extend(sig("trusted.x509"));
    image.extend(vec![0u8; 300]);
    image.extend(sig("stranger.x509"));
    image.extend(sig("trusted.x509")); // twice: kept once
    let found = modkit_elf::certificates_in_image(&image);
    let subjects: Vec<&str> = found.iter().map(|c| c.subject()).collect();
    assert_eq!(
        subjects,
        [
            "CN=modkit test signing key,O=modkit",
            "CN=another signing key,O=elsewhere"
        ]
    );
}
