//! The module-signature trailer (`~Module signature appended~`) and its PKCS#7 contents.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::der::{self, Reader};
use crate::{Endian, Error};

/// The magic that ends a signed module (kernel `include/linux/module_signature.h`).
pub const SIGNATURE_MAGIC: &[u8] = b"~Module signature appended~\n";

/// `sizeof(struct module_signature)`: algo, hash, id_type, signer_len, key_id_len, pad[3], be32 sig_len.
const MODSIG_SIZE: usize = 12;

/// `enum pkey_algo` names (kmod `libkmod-signature.c`).
const ALGO_NAMES: [&str; 2] = ["DSA", "RSA"];
/// `enum pkey_hash_algo` names (kmod 30 `libkmod-signature.c`).
const HASH_NAMES: [&str; 9] = [
    "md4", "md5", "sha1", "rmd160", "sha256", "sha384", "sha512", "sha224", "sm3",
];
/// `enum pkey_id_type` names (kmod `libkmod-signature.c`).
const ID_TYPE_NAMES: [&str; 3] = ["PGP", "X509", "PKCS#7"];

/// `PKEY_ID_PKCS7`: the signature is a PKCS#7 message (every kernel since 4.3).
pub const ID_TYPE_PKCS7: u8 = 2;

/// pkcs7-signedData, RFC 2315 §14.
const OID_SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
/// id-at-commonName, X.520.
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// What a module's signature trailer says, as kmod's `modinfo` reports it.
///
/// For PKCS#7 signatures (id type 2) the trailer's own signer and key id are empty; like kmod
/// built with OpenSSL, [`signature`] then reads them from the PKCS#7 message: `signer` is the
/// issuer's common name, `key_id` the serial number of the signing certificate (big-endian
/// magnitude without leading zeros), `signature` the signer's encrypted digest, and
/// `digest_algorithm` the digest OID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `enum pkey_algo` from the trailer (0 DSA, 1 RSA; 0 for PKCS#7).
    pub algo: u8,
    /// `enum pkey_hash_algo` from the trailer (0 for PKCS#7; see [`Signature::hash_algo_name`]).
    pub hash_algo: u8,
    /// `enum pkey_id_type` from the trailer: 0 PGP, 1 X509, 2 PKCS#7.
    pub id_type: u8,
    /// Signer name (PKCS#7: issuer common name).
    pub signer: Vec<u8>,
    /// Key identifier (PKCS#7: certificate serial number).
    pub key_id: Vec<u8>,
    /// The signature bytes (PKCS#7: the encrypted digest).
    pub signature: Vec<u8>,
    /// PKCS#7 only: the digest algorithm OID, dotted (`2.16.840.1.101.3.4.2.1`).
    pub digest_algorithm: Option<String>,
    /// Length of the module proper: where the signer name starts, before the signature data.
    pub module_len: usize,
    /// Length of the raw signature data in the trailer (`sig_len`).
    pub raw_len: u32,
}

impl Signature {
    /// kmod's `sig_id`: `PGP`, `X509` or `PKCS#7`.
    pub fn id_type_name(&self) -> &'static str {
        ID_TYPE_NAMES
            .get(usize::from(self.id_type))
            .copied()
            .unwrap_or("unknown")
    }

    /// The public-key algorithm name: `DSA` or `RSA` (kmod does not print it).
    pub fn algo_name(&self) -> &'static str {
        ALGO_NAMES
            .get(usize::from(self.algo))
            .copied()
            .unwrap_or("unknown")
    }

    /// kmod 30's `sig_hashalgo`: for PKCS#7 the digest algorithm's name (`sha256`, `sha512`,
    /// ...; OpenSSL's long name or the dotted OID for algorithms kmod 30 does not know), else
    /// the trailer's hash field.
    pub fn hash_algo_name(&self) -> Cow<'static, str> {
        match &self.digest_algorithm {
            Some(oid) => digest_name(oid),
            None => Cow::Borrowed(
                HASH_NAMES
                    .get(usize::from(self.hash_algo))
                    .copied()
                    .unwrap_or("unknown"),
            ),
        }
    }

    /// kmod's `signer`: the signer name as text (lossy).
    pub fn signer(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.signer)
    }

    /// The key identifier bytes (kmod prints them as `sig_key`, see [`kmod_hex`]).
    pub fn key_id(&self) -> &[u8] {
        &self.key_id
    }

    /// kmod's `sig_key` value: [`kmod_hex`] of the key id.
    pub fn sig_key_hex(&self) -> String {
        kmod_hex(&self.key_id)
    }

    /// kmod's `signature` value: [`kmod_hex`] of the signature.
    pub fn signature_hex(&self) -> String {
        kmod_hex(&self.signature)
    }
}

/// Format bytes as kmod's `modinfo` does (`kmod_module_hex_to_str`): uppercase hex pairs joined
/// by `:`, with `:\n\t\t` after every 20th byte except the last. Empty input gives `""`.
pub fn kmod_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3 + bytes.len() / 20 * 3);
    for (i, b) in bytes.iter().enumerate() {
        let _ = write!(out, "{b:02X}");
        if i + 1 < bytes.len() {
            out.push(':');
            if (i + 1) % 20 == 0 {
                out.push_str("\n\t\t");
            }
        }
    }
    out
}

/// Names for digest OIDs: kmod 30's table where it knows the algorithm, OpenSSL's long names
/// (what kmod >= 32 prints) for others, the dotted OID otherwise.
fn digest_name(oid: &str) -> Cow<'static, str> {
    let name = match oid {
        "1.2.840.113549.2.4" => "md4",
        "1.2.840.113549.2.5" => "md5",
        "1.3.14.3.2.26" => "sha1",
        "1.3.36.3.2.1" => "rmd160",
        "2.16.840.1.101.3.4.2.1" => "sha256",
        "2.16.840.1.101.3.4.2.2" => "sha384",
        "2.16.840.1.101.3.4.2.3" => "sha512",
        "2.16.840.1.101.3.4.2.4" => "sha224",
        "1.2.156.10197.1.401" => "sm3",
        "2.16.840.1.101.3.4.2.5" => "sha512-224",
        "2.16.840.1.101.3.4.2.6" => "sha512-256",
        "2.16.840.1.101.3.4.2.7" => "sha3-224",
        "2.16.840.1.101.3.4.2.8" => "sha3-256",
        "2.16.840.1.101.3.4.2.9" => "sha3-384",
        "2.16.840.1.101.3.4.2.10" => "sha3-512",
        _ => return Cow::Owned(oid.to_owned()),
    };
    Cow::Borrowed(name)
}

/// Read the signature trailer at the end of `file` (the decompressed module bytes).
///
/// `Ok(None)` when the file does not end with the magic (an unsigned module). When it does but
/// kmod would report no signature (a trailer field out of range, lengths past the start of the
/// file, a PKCS#7 message it cannot read), this is an error saying why; kmod's `modinfo` then
/// prints no `sig_*` lines.
pub fn signature(file: &[u8]) -> Result<Option<Signature>, Error> {
    let Some(before_magic) = file.len().checked_sub(SIGNATURE_MAGIC.len()) else {
        return Ok(None);
    };
    if file.get(before_magic..) != Some(SIGNATURE_MAGIC) {
        return Ok(None);
    }
    let trailer_err = |offset: usize, reason: &'static str| Error::Signature {
        offset: offset as u64,
        reason,
    };
    let modsig_at = before_magic
        .checked_sub(MODSIG_SIZE)
        .ok_or_else(|| trailer_err(before_magic, "file too short for struct module_signature"))?;
    let too_short = || trailer_err(modsig_at, "file too short for struct module_signature");
    let modsig = file.get(modsig_at..before_magic).ok_or_else(too_short)?;
    let &[algo, hash_algo, id_type, signer_len, key_id_len, ..] = modsig else {
        return Err(too_short());
    };
    let (signer_len, key_id_len) = (usize::from(signer_len), usize::from(key_id_len));
    let raw_len = Endian::Big.u32(modsig, 8).ok_or_else(too_short)?;
    if usize::from(algo) >= ALGO_NAMES.len() {
        return Err(trailer_err(modsig_at, "unknown public-key algorithm"));
    }
    if usize::from(hash_algo) >= HASH_NAMES.len() {
        return Err(trailer_err(modsig_at, "unknown hash algorithm"));
    }
    if usize::from(id_type) >= ID_TYPE_NAMES.len() {
        return Err(trailer_err(modsig_at, "unknown key identifier type"));
    }
    if raw_len == 0 {
        return Err(trailer_err(modsig_at, "signature length is 0"));
    }
    let sig_len = usize::try_from(raw_len).unwrap_or(usize::MAX);
    let sig_at = modsig_at
        .checked_sub(sig_len)
        .ok_or_else(|| trailer_err(modsig_at, "signature longer than the file"))?;
    let key_at = sig_at
        .checked_sub(key_id_len)
        .ok_or_else(|| trailer_err(modsig_at, "key identifier longer than the file"))?;
    let signer_at = key_at
        .checked_sub(signer_len)
        .ok_or_else(|| trailer_err(modsig_at, "signer name longer than the file"))?;
    // In range by the subtractions above; checked all the same.
    let slice = |from: usize, to: usize| file.get(from..to).ok_or_else(too_short);
    let raw = slice(sig_at, modsig_at)?;

    let mut sig = Signature {
        algo,
        hash_algo,
        id_type,
        signer: slice(signer_at, key_at)?.to_vec(),
        key_id: slice(key_at, sig_at)?.to_vec(),
        signature: raw.to_vec(),
        digest_algorithm: None,
        module_len: signer_at,
        raw_len,
    };
    if id_type == ID_TYPE_PKCS7 {
        let info = parse_pkcs7(raw)?;
        sig.signer = info.signer;
        sig.key_id = info.serial;
        sig.signature = info.encrypted_digest.to_vec();
        sig.digest_algorithm = Some(info.digest_oid);
    }
    Ok(Some(sig))
}

/// What kmod takes from the first SignerInfo of a PKCS#7 SignedData.
#[derive(Debug)]
struct Pkcs7Info<'a> {
    signer: Vec<u8>,
    serial: Vec<u8>,
    digest_oid: String,
    encrypted_digest: &'a [u8],
}

/// Walk ContentInfo -> SignedData -> first SignerInfo (RFC 2315 §7, §9.1, §9.2).
fn parse_pkcs7(blob: &[u8]) -> Result<Pkcs7Info<'_>, Error> {
    let mut top = Reader::new(blob);
    let content_info = top.read(der::TAG_SEQUENCE, "a ContentInfo SEQUENCE")?;
    let mut ci = content_info.children();
    let content_type = ci.read(der::TAG_OID, "the contentType OBJECT IDENTIFIER")?;
    if content_type.content != OID_SIGNED_DATA {
        return Err(Error::Der {
            offset: content_type.offset as u64,
            expected: "contentType signedData (1.2.840.113549.1.7.2)",
        });
    }
    let explicit = ci.read(der::TAG_CONTEXT_0, "the [0] EXPLICIT content")?;
    let signed_data = explicit
        .children()
        .read(der::TAG_SEQUENCE, "a SignedData SEQUENCE")?;
    let mut sd = signed_data.children();
    sd.read(der::TAG_INTEGER, "the SignedData version INTEGER")?;
    sd.read(der::TAG_SET, "the digestAlgorithms SET")?;
    sd.read(der::TAG_SEQUENCE, "the contentInfo SEQUENCE")?;
    sd.read_optional(der::TAG_CONTEXT_0)?; // certificates
    sd.read_optional(der::TAG_CONTEXT_1)?; // crls
    let signer_infos = sd.read(der::TAG_SET, "the signerInfos SET")?;
    let mut infos = signer_infos.children();
    if infos.is_empty() {
        return Err(Error::Der {
            offset: infos.offset() as u64,
            expected: "at least one SignerInfo",
        });
    }
    let signer_info = infos.read(der::TAG_SEQUENCE, "a SignerInfo SEQUENCE")?;
    let mut si = signer_info.children();
    si.read(der::TAG_INTEGER, "the SignerInfo version INTEGER")?;
    let issuer_and_serial = si.read(
        der::TAG_SEQUENCE,
        "an IssuerAndSerialNumber SEQUENCE (a subjectKeyIdentifier is not PKCS#7)",
    )?;
    let mut ias = issuer_and_serial.children();
    let issuer = ias.read(der::TAG_SEQUENCE, "the issuer Name SEQUENCE")?;
    let serial = ias.read(der::TAG_INTEGER, "the serialNumber INTEGER")?;
    let digest_alg = si.read(der::TAG_SEQUENCE, "the digestAlgorithm SEQUENCE")?;
    let digest_oid = digest_alg
        .children()
        .read(der::TAG_OID, "the digest algorithm OBJECT IDENTIFIER")?;
    si.read_optional(der::TAG_CONTEXT_0)?; // authenticatedAttributes
    si.read(der::TAG_SEQUENCE, "the digestEncryptionAlgorithm SEQUENCE")?;
    let encrypted_digest = si.read(der::TAG_OCTET_STRING, "the encryptedDigest OCTET STRING")?;

    let digest_oid_text = der::oid_to_string(digest_oid.content).ok_or(Error::Der {
        offset: digest_oid.offset as u64,
        expected: "a well-formed OBJECT IDENTIFIER",
    })?;
    Ok(Pkcs7Info {
        signer: issuer_common_name(issuer)?,
        serial: integer_magnitude(serial.content),
        digest_oid: digest_oid_text,
        encrypted_digest: encrypted_digest.content,
    })
}

/// kmod's `x509_name_to_str`: the first commonName attribute of the Name; if there is none, the
/// last attribute (kmod's loop leaves it there); empty for an empty Name. The value is the
/// string's raw content up to any NUL, as `strlen` sees it.
fn issuer_common_name(name: der::Tlv<'_>) -> Result<Vec<u8>, Error> {
    let mut last: Option<&[u8]> = None;
    let mut rdns = name.children();
    while !rdns.is_empty() {
        let rdn = rdns.read(der::TAG_SET, "a RelativeDistinguishedName SET")?;
        let mut attrs = rdn.children();
        while !attrs.is_empty() {
            let attr = attrs.read(der::TAG_SEQUENCE, "an AttributeTypeAndValue SEQUENCE")?;
            let mut parts = attr.children();
            let oid = parts.read(der::TAG_OID, "an attribute type OBJECT IDENTIFIER")?;
            let value = parts.read_any()?;
            if oid.content == OID_COMMON_NAME {
                return Ok(until_nul(value.content).to_vec());
            }
            last = Some(value.content);
        }
    }
    Ok(last.map(|v| until_nul(v).to_vec()).unwrap_or_default())
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

/// `BN_bn2bin(ASN1_INTEGER_to_BN(x))`: the magnitude of a two's-complement INTEGER, big-endian,
/// without leading zero bytes (empty for zero).
fn integer_magnitude(content: &[u8]) -> Vec<u8> {
    let negative = content.first().is_some_and(|&b| b & 0x80 != 0);
    let mut bytes = content.to_vec();
    if negative {
        // Two's-complement negation: invert, then add one.
        for b in &mut bytes {
            *b = !*b;
        }
        for b in bytes.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
    }
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.split_off(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_like_kmod() {
        assert_eq!(kmod_hex(&[]), "");
        assert_eq!(kmod_hex(&[0x0a]), "0A");
        assert_eq!(kmod_hex(&[0xde, 0xad]), "DE:AD");
        let twenty: Vec<u8> = (0..20).collect();
        // Exactly 20 bytes: no line break after the last one.
        assert!(!kmod_hex(&twenty).contains('\n'));
        let twenty_one: Vec<u8> = (0..21).collect();
        assert_eq!(
            kmod_hex(&twenty_one),
            "00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:\n\t\t14"
        );
    }

    #[test]
    fn serial_numbers_as_openssl_bignums() {
        assert_eq!(integer_magnitude(&[0x00, 0x80, 0x01]), vec![0x80, 0x01]);
        assert_eq!(integer_magnitude(&[0x01, 0x02]), vec![0x01, 0x02]);
        assert_eq!(integer_magnitude(&[0x00]), Vec::<u8>::new());
        assert_eq!(integer_magnitude(&[]), Vec::<u8>::new());
        // -1 and -256: magnitudes 1 and 0x0100.
        assert_eq!(integer_magnitude(&[0xff]), vec![0x01]);
        assert_eq!(integer_magnitude(&[0xff, 0x00]), vec![0x01, 0x00]);
    }

    #[test]
    fn digest_names() {
        assert_eq!(digest_name("2.16.840.1.101.3.4.2.3"), "sha512");
        assert_eq!(digest_name("1.3.36.3.2.1"), "rmd160");
        assert_eq!(digest_name("2.16.840.1.101.3.4.2.8"), "sha3-256");
        assert_eq!(digest_name("1.2.3.4"), "1.2.3.4");
    }

    /// A minimal SignedData whose issuer has no commonName: kmod reports the last attribute.
    #[test]
    fn issuer_without_common_name() {
        // Name: SEQUENCE { SET { SEQUENCE { OID 2.5.4.10 (O), UTF8String "Org" } },
        //                  SET { SEQUENCE { OID 2.5.4.11 (OU), UTF8String "Unit\0x" } } }
        let name = [
            0x30, 0x1E, 0x31, 0x0C, 0x30, 0x0A, 0x06, 0x03, 0x55, 0x04, 0x0A, 0x0C, 0x03, b'O',
            b'r', b'g', 0x31, 0x0E, 0x30, 0x0C, 0x06, 0x03, 0x55, 0x04, 0x0B, 0x0C, 0x05, b'U',
            b'n', b'i', b't', 0x00,
        ];
        let tlv = Reader::new(&name).read(der::TAG_SEQUENCE, "name").unwrap();
        assert_eq!(issuer_common_name(tlv).unwrap(), b"Unit");
        let empty = [0x30, 0x00];
        let tlv = Reader::new(&empty).read(der::TAG_SEQUENCE, "name").unwrap();
        assert_eq!(issuer_common_name(tlv).unwrap(), b"");
    }
}
