//! Verifying a module's signature as the kernel does (kernel/module/signing.c,
//! crypto/asymmetric_keys/pkcs7_*.c): the trailer's PKCS#7 (CMS) SignedData names its signer by
//! issuer and serial; the certificate with that issuer and serial among the trusted ones gives
//! the key (RSA, or ECDSA on P-256 or P-384), and the signature (PKCS#1 v1.5 or ECDSA) covers the module without its trailer, or, when
//! the signer added signed attributes, those attributes, whose messageDigest is the module's
//! digest (RFC 5652 §5.4).
//!
//! The kernel's trusted certificates are DER X.509, compiled into its image
//! (`system_certificate_list`); [`certificates_in_image`] finds them in a vmlinux.

use std::fmt::Write as _;
use std::sync::Arc;

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::{Decode, Encode};
use ecdsa::elliptic_curve::generic_array::ArrayLength;
use ecdsa::elliptic_curve::{CurveArithmetic, FieldBytesSize};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use sha2::Digest as _;
use x509_cert::der::asn1::ObjectIdentifier;

use crate::SIGNATURE_MAGIC;
use crate::comb::{self, Comb};
use crate::prepared::Prepared;
use crate::rsa_pub::RsaKey;

/// `sizeof(struct module_signature)` (include/linux/module_signature.h).
const MODSIG_SIZE: usize = 12;
/// `PKEY_ID_PKCS7` (include/linux/module_signature.h).
const PKEY_ID_PKCS7: u8 = 2;

/// id-signedData, RFC 5652 §5.1.
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
/// id-data, RFC 5652 §4, and Microsoft's SPC_INDIRECT_DATA: the content types the kernel's
/// PKCS#7 parser accepts (`pkcs7_check_content_type`).
const OID_DATA: [ObjectIdentifier; 2] = [
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1"),
    ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.2.1.4"),
];
/// id-messageDigest, RFC 5652 §11.2.
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// rsaEncryption (RFC 8017 A.1), what scripts/sign-file writes as the signature algorithm.
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-ecPublicKey and the named curves prime256v1 and secp384r1 (RFC 5480 §2.1.1).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// ecdsa-with-SHA224/256/384/512 (RFC 5758 §3.2), what sign-file writes for an EC key.
const OID_ECDSA_WITH: [ObjectIdentifier; 4] = [
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.1"),
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2"),
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3"),
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4"),
];
/// sha256/384/512/224WithRSAEncryption (RFC 8017 A.2.4), which other signers write.
const OID_RSA_WITH: [ObjectIdentifier; 4] = [
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11"),
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12"),
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13"),
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.14"),
];

/// A trusted X.509 certificate: what the kernel would add to its keyring.
#[derive(Debug, Clone)]
pub struct Certificate {
    der: Vec<u8>,
    issuer: Vec<u8>,
    serial: Vec<u8>,
    subject: String,
    issuer_text: String,
    key: PublicKey,
}

/// The public keys the kernel's module signatures use.
#[derive(Debug, Clone)]
enum PublicKey {
    /// With its Montgomery parameters once it has verified enough signatures ([`RsaKey`]).
    Rsa(RsaPublicKey, Arc<Prepared<Option<RsaKey>>>),
    /// With the key's fixed-base table once it has verified enough signatures
    /// ([`comb`](crate::comb)); clones share it.
    P256(
        p256::ecdsa::VerifyingKey,
        Arc<Prepared<Comb<p256::NistP256>>>,
    ),
    P384(
        p384::ecdsa::VerifyingKey,
        Arc<Prepared<Comb<p384::NistP384>>>,
    ),
    /// Another algorithm (its OID, with the curve's for EC keys): not verified here.
    Other(String),
}

impl Certificate {
    /// Parse one DER certificate (exactly: no bytes after it).
    pub fn from_der(der: &[u8]) -> Result<Certificate, CertificateError> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| CertificateError {
            offset: 0,
            what: format!("not a DER X.509 certificate: {e}"),
        })?;
        Certificate::from_parsed(&cert)
    }

    fn from_parsed(cert: &x509_cert::Certificate) -> Result<Certificate, CertificateError> {
        let tbs = &cert.tbs_certificate;
        let bad = |e: der::Error| CertificateError {
            offset: 0,
            what: format!("cannot re-encode the certificate: {e}"),
        };
        let spki = &tbs.subject_public_key_info;
        let der = spki.to_der().map_err(bad)?;
        let unusable = |e: &dyn std::fmt::Display| CertificateError {
            offset: 0,
            what: format!("unusable public key: {e}"),
        };
        let key = if spki.algorithm.oid == OID_RSA_ENCRYPTION {
            PublicKey::Rsa(
                RsaPublicKey::from_public_key_der(&der).map_err(|e| unusable(&e))?,
                Arc::default(),
            )
        } else if spki.algorithm.oid == OID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            match curve {
                Some(OID_P256) => PublicKey::P256(
                    p256::ecdsa::VerifyingKey::from_public_key_der(&der)
                        .map_err(|e| unusable(&e))?,
                    Arc::default(),
                ),
                Some(OID_P384) => PublicKey::P384(
                    p384::ecdsa::VerifyingKey::from_public_key_der(&der)
                        .map_err(|e| unusable(&e))?,
                    Arc::default(),
                ),
                Some(other) => PublicKey::Other(format!("EC key on curve {other}")),
                None => PublicKey::Other("EC key without a named curve".into()),
            }
        } else {
            PublicKey::Other(format!("{} key", spki.algorithm.oid))
        };
        Ok(Certificate {
            der: cert.to_der().map_err(bad)?,
            issuer: tbs.issuer.to_der().map_err(bad)?,
            serial: tbs.serial_number.as_bytes().to_vec(),
            subject: tbs.subject.to_string(),
            issuer_text: tbs.issuer.to_string(),
            key,
        })
    }

    /// The certificate's DER encoding (as the kernel's `system_certificate_list` holds it).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject, as RFC 4514 text (`CN=...,O=...`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The issuer, as RFC 4514 text.
    pub fn issuer(&self) -> &str {
        &self.issuer_text
    }

    /// The serial number's bytes as encoded (big-endian two's complement).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// The serial number in hex, as `openssl x509 -serial` prints it.
    pub fn serial_hex(&self) -> String {
        hex(&self.serial)
    }
}

/// A certificate (or a list of them) that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("certificate at offset {offset:#x}: {what}")]
#[non_exhaustive]
pub struct CertificateError {
    /// Where the certificate starts in the data given.
    pub offset: u64,
    /// What is wrong, with the parser's own words.
    pub what: String,
}

/// The certificates of a `--certs` file: PEM (`-----BEGIN CERTIFICATE-----` blocks, other
/// blocks and text between them ignored) or DER (one certificate or several concatenated, as
/// the kernel's `system_certificate_list` holds them). An empty list is not an error.
pub fn parse_certificates(data: &[u8]) -> Result<Vec<Certificate>, CertificateError> {
    if let Some(start) = find(data, b"-----BEGIN CERTIFICATE-----") {
        return parse_pem(data, start);
    }
    let mut certs = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let rest = data.get(at..).unwrap_or_default();
        let len = der_length(rest).ok_or_else(|| CertificateError {
            offset: at as u64,
            what: "expected a DER SEQUENCE (30 82 ...) or a PEM certificate".into(),
        })?;
        let der = rest.get(..len).ok_or_else(|| CertificateError {
            offset: at as u64,
            what: format!("the certificate says {len} bytes, {} are left", rest.len()),
        })?;
        let cert = Certificate::from_der(der).map_err(|e| CertificateError {
            offset: at as u64,
            what: e.what,
        })?;
        certs.push(cert);
        at += len;
    }
    Ok(certs)
}

fn parse_pem(data: &[u8], mut start: usize) -> Result<Vec<Certificate>, CertificateError> {
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let mut certs = Vec::new();
    loop {
        let rest = data.get(start..).unwrap_or_default();
        let end = find(rest, END)
            .map(|at| at + END.len())
            .ok_or_else(|| CertificateError {
                offset: start as u64,
                what: "a PEM certificate without its -----END CERTIFICATE----- line".into(),
            })?;
        let block = rest.get(..end).unwrap_or_default();
        let (_, der) = der::pem::decode_vec(block).map_err(|e| CertificateError {
            offset: start as u64,
            what: format!("malformed PEM: {e}"),
        })?;
        let cert = Certificate::from_der(&der).map_err(|e| CertificateError {
            offset: start as u64,
            what: e.what,
        })?;
        certs.push(cert);
        let next = start + end;
        match data
            .get(next..)
            .and_then(|rest| find(rest, b"-----BEGIN CERTIFICATE-----"))
        {
            Some(at) => start = next + at,
            None => return Ok(certs),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The whole length of a DER SEQUENCE with a two-byte length (`30 82 HI LO`), as every
/// certificate of more than 255 bytes starts.
fn der_length(data: &[u8]) -> Option<usize> {
    match data {
        [0x30, 0x82, hi, lo, ..] => Some(4 + (usize::from(*hi) << 8 | usize::from(*lo))),
        _ => None,
    }
}

/// The X.509 certificates in a kernel image (the ELF vmlinux, decompressed): every
/// `30 82 HI LO 30 82` (a SEQUENCE holding a SEQUENCE, as a certificate and its TBSCertificate
/// start) that parses as a whole certificate, in image order, each once.
///
/// Debian's vmlinux has no symbol table, so `system_certificate_list` cannot be looked up by
/// name; its certificates are there as plain DER. The result is a superset of the kernel's
/// built-in keyring when the image carries certificates for other purposes too.
pub fn certificates_in_image(image: &[u8]) -> Vec<Certificate> {
    let mut certs: Vec<Certificate> = Vec::new();
    let mut at = 0;
    while let Some(found) = image.get(at..).and_then(find_candidate) {
        let start = at + found;
        let rest = image.get(start..).unwrap_or_default();
        let parsed = der_length(rest)
            .and_then(|len| rest.get(..len))
            .and_then(|der| Some((der.len(), Certificate::from_der(der).ok()?)));
        match parsed {
            Some((len, cert)) => {
                if !certs
                    .iter()
                    .any(|c| c.issuer == cert.issuer && c.serial == cert.serial)
                {
                    certs.push(cert);
                }
                at = start + len;
            }
            None => at = start + 1,
        }
    }
    certs
}

/// The offset of the next `30 82 .. .. 30 82`.
fn find_candidate(data: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let rest = data.get(at..)?;
        let i = rest.iter().position(|&b| b == 0x30)?;
        if let Some([0x30, 0x82, _, _, 0x30, 0x82]) = rest.get(i..i + 6) {
            return Some(at + i);
        }
        at += i + 1;
    }
}

/// Why the kernel would not accept a module's signature, in the classes of
/// kernel/module/signing.c (`module_sig_check`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// No `~Module signature appended~` (the kernel's `-ENODATA`: "unsigned module").
    #[error("the module is not signed")]
    Unsigned,
    /// Signed in a way the kernel or this crate cannot check (`-ENOPKG`: "module with
    /// unsupported crypto").
    #[error("unsupported signature: {what}")]
    Unsupported {
        /// What is not supported.
        what: String,
    },
    /// No trusted certificate has the signer's issuer and serial (`-ENOKEY`: "module with
    /// unavailable key").
    #[error("no trusted certificate has the signer's issuer '{issuer}' and serial {serial}")]
    UnavailableKey {
        /// The signer's issuer, as RFC 4514 text.
        issuer: String,
        /// The signer's serial number, in hex.
        serial: String,
    },
    /// The trailer or the PKCS#7 message cannot be read (`-EBADMSG`; fatal even when
    /// signatures are not enforced).
    #[error("malformed signature: {what}")]
    Malformed {
        /// What is wrong.
        what: String,
    },
    /// The signed attributes' messageDigest is not the module's digest (`-EKEYREJECTED`:
    /// "Message digest doesn't match"; fatal even when signatures are not enforced).
    #[error("the module's {hash} digest does not match the signature's messageDigest")]
    DigestMismatch {
        /// The digest algorithm.
        hash: &'static str,
    },
    /// The signature does not verify with the signer's certificate (`-EKEYREJECTED`; fatal
    /// even when signatures are not enforced).
    #[error(
        "the {hash} {algorithm} signature does not verify with the certificate '{subject}' (serial {serial}): the module was changed after signing, or signed by another key"
    )]
    BadSignature {
        /// The digest algorithm.
        hash: &'static str,
        /// The certificate's key algorithm: `RSA` or `ECDSA`.
        algorithm: &'static str,
        /// The certificate's subject.
        subject: String,
        /// The certificate's serial number, in hex.
        serial: String,
    },
}

/// A signature the kernel would accept: which certificate it verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The index of the certificate in the trusted list given.
    pub certificate: usize,
    /// The digest algorithm (`sha256`, ...).
    pub hash: &'static str,
    /// Whether the signature covers signed attributes rather than the module itself.
    pub signed_attributes: bool,
}

/// The digests the kernel's module signatures use, by OID.
#[derive(Debug, Clone, Copy)]
enum Hash {
    Sha224,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: &ObjectIdentifier) -> Option<Hash> {
        Some(match oid.to_string().as_str() {
            "2.16.840.1.101.3.4.2.4" => Hash::Sha224,
            "2.16.840.1.101.3.4.2.1" => Hash::Sha256,
            "2.16.840.1.101.3.4.2.2" => Hash::Sha384,
            "2.16.840.1.101.3.4.2.3" => Hash::Sha512,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Hash::Sha224 => "sha224",
            Hash::Sha256 => "sha256",
            Hash::Sha384 => "sha384",
            Hash::Sha512 => "sha512",
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha224 => sha2::Sha224::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }

    fn scheme(self) -> rsa::Pkcs1v15Sign {
        match self {
            Hash::Sha224 => rsa::Pkcs1v15Sign::new::<sha2::Sha224>(),
            Hash::Sha256 => rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            Hash::Sha384 => rsa::Pkcs1v15Sign::new::<sha2::Sha384>(),
            Hash::Sha512 => rsa::Pkcs1v15Sign::new::<sha2::Sha512>(),
        }
    }
}

fn malformed(what: impl Into<String>) -> SignatureError {
    SignatureError::Malformed { what: what.into() }
}

/// The trailer as the kernel's `mod_check_sig` reads it: the module proper and the PKCS#7
/// message.
fn split_trailer(file: &[u8]) -> Result<(&[u8], &[u8]), SignatureError> {
    let Some(len) = file.len().checked_sub(SIGNATURE_MAGIC.len()) else {
        return Err(SignatureError::Unsigned);
    };
    if file.get(len..) != Some(SIGNATURE_MAGIC) {
        return Err(SignatureError::Unsigned);
    }
    let Some(modsig_at) = len.checked_sub(MODSIG_SIZE).filter(|_| len > MODSIG_SIZE) else {
        return Err(malformed("file too short for struct module_signature"));
    };
    let modsig = file.get(modsig_at..len).unwrap_or_default();
    let &[
        algo,
        hash,
        id_type,
        signer_len,
        key_id_len,
        pad0,
        pad1,
        pad2,
        a,
        b,
        c,
        d,
    ] = modsig
    else {
        return Err(malformed("file too short for struct module_signature"));
    };
    let sig_len = u32::from_be_bytes([a, b, c, d]) as usize;
    if sig_len >= len - MODSIG_SIZE {
        return Err(malformed(format!(
            "sig_len {sig_len} is longer than the {} bytes before the trailer",
            len - MODSIG_SIZE
        )));
    }
    if id_type != PKEY_ID_PKCS7 {
        return Err(SignatureError::Unsupported {
            what: format!("not signed with expected PKCS#7 message (id_type {id_type})"),
        });
    }
    if [algo, hash, signer_len, key_id_len, pad0, pad1, pad2] != [0; 7] {
        return Err(malformed(
            "PKCS#7 signature info has unexpected non-zero params",
        ));
    }
    let sig_at = modsig_at - sig_len;
    Ok((
        file.get(..sig_at).unwrap_or_default(),
        file.get(sig_at..modsig_at).unwrap_or_default(),
    ))
}

/// Verify the signature of `file` (the decompressed module, trailer included) against
/// `trusted`, as the kernel's `mod_verify_sig` does with its keyring.
pub fn verify(file: &[u8], trusted: &[Certificate]) -> Result<Verified, SignatureError> {
    let (content, pkcs7) = split_trailer(file)?;
    let info =
        ContentInfo::from_der(pkcs7).map_err(|e| malformed(format!("PKCS#7 ContentInfo: {e}")))?;
    if info.content_type != OID_SIGNED_DATA {
        return Err(malformed(format!(
            "PKCS#7 content type {} is not signedData",
            info.content_type
        )));
    }
    let signed: SignedData = info
        .content
        .decode_as()
        .map_err(|e| malformed(format!("PKCS#7 SignedData: {e}")))?;
    let content_type = signed.encap_content_info.econtent_type;
    if !OID_DATA.contains(&content_type) {
        return Err(malformed(format!(
            "unsupported PKCS#7 data type {content_type}"
        )));
    }
    if signed.encap_content_info.econtent.is_some() {
        return Err(malformed(
            "the PKCS#7 message carries its content; a module signature is detached",
        ));
    }
    // The kernel accepts a message whose every signer verifies; sign-file writes one.
    let mut signers = signed.signer_infos.0.iter();
    let (Some(signer), None) = (signers.next(), signers.next()) else {
        return Err(SignatureError::Unsupported {
            what: format!(
                "{} signers in the PKCS#7 message; modkit checks exactly one",
                signed.signer_infos.0.len()
            ),
        });
    };
    let hash =
        Hash::from_oid(&signer.digest_alg.oid).ok_or_else(|| SignatureError::Unsupported {
            what: format!("digest algorithm {}", signer.digest_alg.oid),
        })?;
    let sig_oid = signer.signature_algorithm.oid;
    let rsa = sig_oid == OID_RSA_ENCRYPTION || OID_RSA_WITH.contains(&sig_oid);
    if !rsa && !OID_ECDSA_WITH.contains(&sig_oid) {
        return Err(SignatureError::Unsupported {
            what: format!("signature algorithm {sig_oid} (modkit verifies RSA and ECDSA)"),
        });
    }
    let SignerIdentifier::IssuerAndSerialNumber(id) = &signer.sid else {
        return Err(SignatureError::Unsupported {
            what: "a signer named by subjectKeyIdentifier (modkit matches issuer and serial)"
                .into(),
        });
    };
    let issuer = id
        .issuer
        .to_der()
        .map_err(|e| malformed(format!("the signer's issuer: {e}")))?;
    let serial = id.serial_number.as_bytes();
    let Some((index, cert)) = trusted
        .iter()
        .enumerate()
        .find(|(_, c)| c.issuer == issuer && c.serial == serial)
    else {
        return Err(SignatureError::UnavailableKey {
            issuer: id.issuer.to_string(),
            serial: hex(serial),
        });
    };
    if let PublicKey::Other(what) = &cert.key {
        return Err(SignatureError::Unsupported {
            what: format!(
                "the certificate '{}' has a {what} (modkit verifies RSA, P-256 and P-384)",
                cert.subject
            ),
        });
    }

    let digest = hash.digest(content);
    let (hashed, signed_attributes) = match &signer.signed_attrs {
        None => (digest, false),
        Some(attrs) => {
            let message_digest = attrs
                .iter()
                .find(|attr| attr.oid == OID_MESSAGE_DIGEST)
                .and_then(|attr| attr.values.iter().next())
                .ok_or_else(|| malformed("signed attributes without a messageDigest"))?;
            let value = message_digest
                .decode_as::<der::asn1::OctetString>()
                .map_err(|e| malformed(format!("the messageDigest attribute: {e}")))?;
            if value.as_bytes() != digest.as_slice() {
                return Err(SignatureError::DigestMismatch { hash: hash.name() });
            }
            // The signature covers the attributes' DER as a SET (RFC 5652 §5.4).
            let der = attrs
                .to_der()
                .map_err(|e| malformed(format!("the signed attributes: {e}")))?;
            (hash.digest(&der), true)
        }
    };
    let signature = signer.signature.as_bytes();
    // The kernel's public_key_verify_signature refuses a signature of another algorithm than
    // the key's (EKEYREJECTED), as it refuses one that does not verify.
    let (algorithm, ok) = match &cert.key {
        PublicKey::Rsa(key, prepared) => (
            "RSA",
            rsa && match prepared.get(|| RsaKey::new(key)) {
                Some(Some(fast)) => fast.verify(&hash.scheme(), &hashed, signature),
                _ => key.verify(hash.scheme(), &hashed, signature).is_ok(),
            },
        ),
        PublicKey::P256(key, prepared) => (
            "ECDSA",
            !rsa && verify_ecdsa(
                prepared,
                comb::p256_generator,
                || key.as_affine().into(),
                |sig| key.verify_prehash(&hashed, sig).is_ok(),
                &hashed,
                signature,
            ),
        ),
        PublicKey::P384(key, prepared) => (
            "ECDSA",
            !rsa && verify_ecdsa(
                prepared,
                comb::p384_generator,
                || key.as_affine().into(),
                |sig| key.verify_prehash(&hashed, sig).is_ok(),
                &hashed,
                signature,
            ),
        ),
        PublicKey::Other(_) => ("?", false),
    };
    if !ok {
        return Err(SignatureError::BadSignature {
            hash: hash.name(),
            algorithm,
            subject: cert.subject.clone(),
            serial: cert.serial_hex(),
        });
    }
    Ok(Verified {
        certificate: index,
        hash: hash.name(),
        signed_attributes,
    })
}

/// An ECDSA signature (DER) of `prehash` by a key: `plain`, the `ecdsa` crate's verification,
/// or the same equation over fixed-base tables once the key (`point`) has verified enough
/// signatures.
fn verify_ecdsa<C>(
    prepared: &Prepared<Comb<C>>,
    generator: fn() -> &'static Comb<C>,
    point: impl FnOnce() -> C::ProjectivePoint,
    plain: impl FnOnce(&ecdsa::Signature<C>) -> bool,
    prehash: &[u8],
    signature: &[u8],
) -> bool
where
    C: ecdsa::PrimeCurve + CurveArithmetic,
    ecdsa::SignatureSize<C>: ArrayLength<u8>,
    ecdsa::der::MaxSize<C>: ArrayLength<u8>,
    <FieldBytesSize<C> as std::ops::Add>::Output:
        std::ops::Add<ecdsa::der::MaxOverhead> + ArrayLength<u8>,
{
    let Ok(signature) = ecdsa::Signature::<C>::from_der(signature) else {
        return false;
    };
    match prepared.get(|| Comb::new(point())) {
        Some(table) => {
            let Ok(z) = ecdsa::hazmat::bits2field::<C>(prehash) else {
                return false;
            };
            let (r, s) = signature.split_scalars();
            comb::verify(generator(), table, &z, *r, *s)
        }
        None => plain(&signature),
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02X}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_and_lengths() {
        assert_eq!(der_length(&[0x30, 0x82, 0x05, 0x28]), Some(0x52c));
        assert_eq!(der_length(&[0x30, 0x81, 0x05]), None);
        assert_eq!(find_candidate(b"xx0\x30\x82\x01\x02\x30\x82"), Some(3));
        assert_eq!(find_candidate(b"\x30\x82\x01\x02\x30"), None);
    }

    #[test]
    fn trailer_fields_as_mod_check_sig() {
        let mut file = vec![0u8; 64];
        file.extend_from_slice(&[0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 4]);
        file.extend_from_slice(SIGNATURE_MAGIC);
        assert!(matches!(
            split_trailer(&file),
            Err(SignatureError::Unsupported { .. })
        ));
        let at = file.len() - SIGNATURE_MAGIC.len() - MODSIG_SIZE;
        file[at + 2] = 2;
        file[at] = 1;
        assert_eq!(
            split_trailer(&file),
            Err(malformed(
                "PKCS#7 signature info has unexpected non-zero params"
            ))
        );
        file[at] = 0;
        let (content, pkcs7) = split_trailer(&file).unwrap();
        assert_eq!((content.len(), pkcs7.len()), (60, 4));
        assert_eq!(split_trailer(b"no trailer"), Err(SignatureError::Unsigned));
    }
}
