//! ECDSA verification with fixed-base tables, for a key that verifies many signatures (every
//! module of a tree is signed by the same key): `u1·G + u2·Q` as a sum of precomputed
//! multiples, no doublings.
//!
//! A [`Comb`] holds `j·16^i·P` for every 4-bit digit position `i` of a scalar and `j` in 1..=15,
//! so `k·P` is one addition per non-zero digit (at most 96 on P-384, against the ~384
//! doublings and ~100 additions of a windowed multiplication). Building it costs ~1,800 point
//! operations, a few verifications' worth, and it takes 15 points per digit (207 KB on P-384),
//! so a key builds its table only once it has verified a few signatures the plain way
//! ([`Prepared`](crate::prepared::Prepared)): a single-module check pays nothing. The equation
//! and its checks are the `ecdsa` crate's `verify_prehashed` (which the tests compare this
//! with), with the same `bits2field`; only how the point is computed differs. Verification handles public data only, so variable time is
//! fine.

use std::fmt;
use std::sync::OnceLock;

use p384::elliptic_curve::group::{Curve as _, Group as _};
use p384::elliptic_curve::ops::{Invert as _, Reduce};
use p384::elliptic_curve::point::AffineCoordinates as _;
use p384::elliptic_curve::{CurveArithmetic, FieldBytes, PrimeField as _};

/// `j·16^i·P` for every digit position `i` (least significant first) and `j` in 1..=15.
pub(crate) struct Comb<C: CurveArithmetic> {
    rows: Vec<[C::ProjectivePoint; 15]>,
}

impl<C: CurveArithmetic> fmt::Debug for Comb<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Comb")
            .field("digits", &self.rows.len())
            .finish()
    }
}

impl<C: CurveArithmetic> Comb<C> {
    pub(crate) fn new(point: C::ProjectivePoint) -> Comb<C> {
        let digits = 2 * FieldBytes::<C>::default().len();
        let mut rows = Vec::with_capacity(digits);
        let mut base = point;
        for _ in 0..digits {
            let mut row = [base; 15];
            for j in 1..15 {
                row[j] = row[j - 1] + base;
            }
            // 16·base: the next digit's unit.
            base = row[7].double();
            rows.push(row);
        }
        Comb { rows }
    }

    /// `k·P`, from the big-endian bytes of `k`.
    fn mul(&self, k: &C::Scalar) -> C::ProjectivePoint {
        let bytes = k.to_repr();
        let mut sum = C::ProjectivePoint::identity();
        for (at, byte) in bytes.iter().rev().enumerate() {
            for (digit, row) in [(byte & 0xf, 2 * at), (byte >> 4, 2 * at + 1)] {
                if digit != 0 {
                    sum += self.rows[row][usize::from(digit) - 1];
                }
            }
        }
        sum
    }
}

/// ECDSA's verification equation over the tables of the generator and of the key: `z` is the
/// digest as `bits2field` gives it, `(r, s)` the signature's non-zero scalars.
pub(crate) fn verify<C: CurveArithmetic>(
    generator: &Comb<C>,
    key: &Comb<C>,
    z: &FieldBytes<C>,
    r: C::Scalar,
    s: C::Scalar,
) -> bool {
    let z = <C::Scalar as Reduce<C::Uint>>::reduce_bytes(z);
    let Some(s_inv) = Option::<C::Scalar>::from(s.invert()) else {
        return false;
    };
    let x = (generator.mul(&(z * s_inv)) + key.mul(&(r * s_inv)))
        .to_affine()
        .x();
    r == <C::Scalar as Reduce<C::Uint>>::reduce_bytes(&x)
}

/// The generator's table of P-256, built once.
pub(crate) fn p256_generator() -> &'static Comb<p256::NistP256> {
    static COMB: OnceLock<Comb<p256::NistP256>> = OnceLock::new();
    COMB.get_or_init(|| Comb::new(p256::ProjectivePoint::GENERATOR))
}

/// The generator's table of P-384, built once.
pub(crate) fn p384_generator() -> &'static Comb<p384::NistP384> {
    static COMB: OnceLock<Comb<p384::NistP384>> = OnceLock::new();
    COMB.get_or_init(|| Comb::new(p384::ProjectivePoint::GENERATOR))
}

#[cfg(test)]
mod tests {
    use ecdsa::hazmat::bits2field;
    use ecdsa::signature::hazmat::{PrehashSigner as _, PrehashVerifier as _};

    use super::*;
    use crate::seeded::Seeded;

    /// The tables' verdict against the `ecdsa` crate's, on good signatures of digests of every
    /// length the kernel's hashes give (shorter and longer than the curve), on changed digests,
    /// on the other key's signatures, on swapped and negated scalars: every case both ways, and
    /// each kind of case seen at least once.
    macro_rules! agrees_with_the_ecdsa_crate {
        ($name:ident, $curve:ident, $point_curve:ident) => {
            #[test]
            fn $name() {
                use $curve::ecdsa::{Signature, SigningKey};
                let mut rng = Seeded(7);
                let keys: Vec<SigningKey> = (0..4)
                    .map(|_| {
                        loop {
                            let secret =
                                rng.bytes(FieldBytes::<$curve::$point_curve>::default().len());
                            if let Ok(key) = SigningKey::from_slice(&secret) {
                                break key;
                            }
                        }
                    })
                    .collect();
                let generator =
                    Comb::<$curve::$point_curve>::new($curve::ProjectivePoint::GENERATOR);
                let (mut accepted, mut refused) = (0, 0);
                for (k, signer) in keys.iter().enumerate() {
                    let other = keys[(k + 1) % keys.len()].verifying_key();
                    let key = signer.verifying_key();
                    let table = Comb::<$curve::$point_curve>::new(key.as_affine().into());
                    let other_table = Comb::<$curve::$point_curve>::new(other.as_affine().into());
                    for len in [28, 32, 48, 64] {
                        let digest = rng.bytes(len);
                        let good: Signature = signer.sign_prehash(&digest).unwrap();
                        let (r, s) = good.split_scalars();
                        let mut changed = digest.clone();
                        changed[0] ^= 0x10;
                        let negated = Signature::from_scalars(*r, -*s).unwrap();
                        let swapped = Signature::from_scalars(*s, *r).unwrap();
                        for (digest, sig, table, key) in [
                            (&digest, &good, &table, key),
                            (&changed, &good, &table, key),
                            (&digest, &good, &other_table, other),
                            (&digest, &negated, &table, key),
                            (&digest, &swapped, &table, key),
                        ] {
                            let z = bits2field::<$curve::$point_curve>(digest).unwrap();
                            let (r, s) = sig.split_scalars();
                            let mine = verify(&generator, table, &z, *r, *s);
                            let theirs = key.verify_prehash(digest, sig).is_ok();
                            assert_eq!(mine, theirs, "key {k}, digest of {len} bytes");
                            if mine {
                                accepted += 1;
                            } else {
                                refused += 1;
                            }
                        }
                    }
                }
                // Good and negated signatures verify; the rest do not.
                assert_eq!((accepted, refused), (2 * 4 * 4, 3 * 4 * 4));
            }
        };
    }

    agrees_with_the_ecdsa_crate!(p256_agrees_with_the_ecdsa_crate, p256, NistP256);
    agrees_with_the_ecdsa_crate!(p384_agrees_with_the_ecdsa_crate, p384, NistP384);
}
