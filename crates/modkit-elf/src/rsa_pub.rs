//! RSA PKCS#1 v1.5 verification for a key that verifies many signatures: `s^e mod n` in
//! Montgomery form over fixed-size integers (`crypto-bigint`), the key's Montgomery parameters
//! computed once, where the `rsa` crate's `BigUint::modpow` computes them again for every
//! signature over heap-allocated digits (three quarters of a `check --all` over Debian 6.1's
//! 4,023 RSA-signed modules went there). The verdict is the `rsa` crate's `Pkcs1v15Sign::verify`,
//! step for step: the signature as long as the modulus and below it, then the encoded message
//! `00 01 FF.. 00 || DigestInfo prefix || digest` compared whole (RFC 8017 §8.2.2); the tests
//! compare the two. Public data only, so variable time is fine.

use crypto_bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use crypto_bigint::{Encoding, U2048, U3072, U4096, Uint};
use rsa::Pkcs1v15Sign;
use rsa::RsaPublicKey;
use rsa::traits::PublicKeyParts as _;

/// A public key's Montgomery parameters, in the smallest width its modulus fits.
#[derive(Debug)]
pub(crate) struct RsaKey {
    /// The modulus's length in bytes: a signature's length.
    k: usize,
    e: u64,
    width: Width,
}

/// Boxed: the parameters are three integers of the width (up to 1.5 KB).
#[derive(Debug)]
enum Width {
    W2048(Box<DynResidueParams<{ U2048::LIMBS }>>),
    W3072(Box<DynResidueParams<{ U3072::LIMBS }>>),
    W4096(Box<DynResidueParams<{ U4096::LIMBS }>>),
}

impl RsaKey {
    /// `None` for a key this does not speed up (a modulus above 4,096 bits, an even one, an
    /// exponent wider than 64 bits): the `rsa` crate verifies those.
    pub(crate) fn new(key: &RsaPublicKey) -> Option<RsaKey> {
        let e_bytes = key.e().to_bytes_be();
        if e_bytes.len() > 8 {
            return None;
        }
        let e = e_bytes.iter().fold(0u64, |e, &b| (e << 8) | u64::from(b));
        let k = key.size();
        let n = key.n().to_bytes_be();
        let width = if k <= 256 {
            Width::W2048(Box::new(params(&n)?))
        } else if k <= 384 {
            Width::W3072(Box::new(params(&n)?))
        } else if k <= 512 {
            Width::W4096(Box::new(params(&n)?))
        } else {
            return None;
        };
        (e > 0).then_some(RsaKey { k, e, width })
    }

    /// Whether `signature` is `scheme`'s PKCS#1 v1.5 signature of `hashed` by this key.
    pub(crate) fn verify(&self, scheme: &Pkcs1v15Sign, hashed: &[u8], signature: &[u8]) -> bool {
        if scheme.hash_len.is_some_and(|len| hashed.len() != len) || signature.len() != self.k {
            return false;
        }
        let em = match &self.width {
            Width::W2048(p) => public_op(p, signature, self.e, self.k),
            Width::W3072(p) => public_op(p, signature, self.e, self.k),
            Width::W4096(p) => public_op(p, signature, self.e, self.k),
        };
        let Some(em) = em else {
            return false;
        };
        let prefix = &scheme.prefix[..];
        let t_len = prefix.len() + hashed.len();
        if self.k < t_len + 11 {
            return false;
        }
        let ps = self.k - t_len - 3;
        em[0] == 0
            && em[1] == 1
            && em[2..2 + ps].iter().all(|&b| b == 0xff)
            && em[2 + ps] == 0
            && em[3 + ps..3 + ps + prefix.len()] == *prefix
            && em[self.k - hashed.len()..] == *hashed
    }
}

/// The Montgomery parameters of the modulus `n` (big-endian), `None` when it is even.
fn params<const L: usize>(n: &[u8]) -> Option<DynResidueParams<L>>
where
    Uint<L>: Encoding,
{
    let odd = n.last().is_some_and(|b| b & 1 == 1);
    odd.then(|| from_be(n).map(|n| DynResidueParams::new(&n)))
        .flatten()
}

/// The big-endian `bytes` as an integer of `L` limbs; `None` when they do not fit.
fn from_be<const L: usize>(bytes: &[u8]) -> Option<Uint<L>>
where
    Uint<L>: Encoding,
{
    let width = Uint::<L>::BYTES;
    let mut padded = vec![0u8; width];
    padded
        .get_mut(width.checked_sub(bytes.len())?..)?
        .copy_from_slice(bytes);
    Some(Uint::from_be_slice(&padded))
}

/// RSAVP1: `signature^e mod n` as `k` big-endian bytes; `None` when the signature is not below
/// the modulus.
fn public_op<const L: usize>(
    params: &DynResidueParams<L>,
    signature: &[u8],
    e: u64,
    k: usize,
) -> Option<Vec<u8>>
where
    Uint<L>: Encoding,
{
    let s = from_be::<L>(signature)?;
    if s >= *params.modulus() {
        return None;
    }
    let base = DynResidue::new(&s, *params);
    let mut acc = base;
    for bit in (0..63 - e.leading_zeros()).rev() {
        acc = acc.square();
        if (e >> bit) & 1 == 1 {
            acc = acc.mul(&base);
        }
    }
    let bytes = acc.retrieve().to_be_bytes();
    let bytes = bytes.as_ref();
    Some(bytes[bytes.len() - k..].to_vec())
}

#[cfg(test)]
mod tests {
    use rsa::RsaPrivateKey;
    use rsa::traits::PublicKeyParts as _;

    use super::*;
    use crate::seeded::Seeded;

    /// The verdict against the `rsa` crate's on good signatures, on changed digests,
    /// signatures and lengths, on the signature plus the modulus and on a scheme of another
    /// hash; every case both ways, and each kind seen.
    #[test]
    fn agrees_with_the_rsa_crate() {
        let mut rng = Seeded(11);
        let (mut accepted, mut refused) = (0, 0);
        // 1,024 and 1,536 bits in a 2,048-bit width (the debug build makes larger keys slow).
        for bits in [1024, 1536] {
            let private = RsaPrivateKey::new(&mut rng, bits).unwrap();
            let public = private.to_public_key();
            let fast = RsaKey::new(&public).unwrap();
            for _ in 0..3 {
                let digest = rng.bytes(32);
                let scheme = || Pkcs1v15Sign::new::<sha2::Sha256>();
                let good = private.sign(scheme(), &digest).unwrap();
                let mut changed_digest = digest.clone();
                changed_digest[5] ^= 1;
                let mut changed_sig = good.clone();
                changed_sig[40] ^= 0x80;
                // The modulus itself: as long as a signature, not below the modulus.
                let above = public.n().to_bytes_be();
                let cases: [(Pkcs1v15Sign, &[u8], &[u8]); 6] = [
                    (scheme(), &digest, &good),
                    (scheme(), &changed_digest, &good),
                    (scheme(), &digest, &changed_sig),
                    (scheme(), &digest, &good[1..]),
                    (scheme(), &digest, &above),
                    (Pkcs1v15Sign::new::<sha2::Sha384>(), &digest, &good),
                ];
                for (scheme, digest, sig) in cases {
                    let mine = fast.verify(&scheme, digest, sig);
                    let theirs = public.verify(scheme, digest, sig).is_ok();
                    assert_eq!(mine, theirs, "{bits} bits");
                    if mine {
                        accepted += 1;
                    } else {
                        refused += 1;
                    }
                }
            }
        }
        assert_eq!((accepted, refused), (2 * 3, 2 * 3 * 5));
    }

    #[test]
    fn widths_and_what_is_left_to_the_rsa_crate() {
        let mut rng = Seeded(3);
        let private = RsaPrivateKey::new(&mut rng, 1024).unwrap();
        let key = RsaKey::new(&private.to_public_key()).unwrap();
        assert!(matches!(key.width, Width::W2048(_)));
        assert_eq!((key.k, key.e), (128, 65537));
        // An even modulus has no Montgomery form.
        let even = RsaPublicKey::new_unchecked(
            rsa::BigUint::from_bytes_be(&[0x80; 300]),
            rsa::BigUint::from(65537u32),
        );
        assert!(RsaKey::new(&even).is_none());
        let odd = |len: usize| {
            let mut n = vec![0xc3; len];
            n[len - 1] = 0x01;
            RsaPublicKey::new_unchecked(rsa::BigUint::from_bytes_be(&n), rsa::BigUint::from(3u32))
        };
        assert!(matches!(
            RsaKey::new(&odd(384)).unwrap().width,
            Width::W3072(_)
        ));
        assert!(matches!(
            RsaKey::new(&odd(512)).unwrap().width,
            Width::W4096(_)
        ));
        assert!(RsaKey::new(&odd(513)).is_none());
    }
}
