//! ECDSA signature verification: P-256 with SHA-256 (ES256) and P-384 with SHA-384 (ES384),
//! SEC 1 v2 §4.1.4 and FIPS 186-5 §6.4.2, public-key operations only.
//!
//! Our own rather than the `p256`/`p384` crates: those were most of the plugin's remaining
//! code size (p384's fiat-crypto field code alone ~133 KB of wasm, and V8's memory grows with
//! the module's code) and an ES256 verification cost ~2 ms in V8. Here the field and scalar
//! arithmetic is the Montgomery core RSA uses ([`crate::montgomery`]), points are Jacobian with
//! a = −3, the public key's multiples 1..15 are computed once when the JWK is parsed, and
//! u1·G + u2·Q is one pass of 4-bit windows over both scalars (Shamir's trick).
//!
//! Only public values are handled, so nothing here needs to be constant-time. No input may
//! panic: lengths are checked and every access is bounded.

use crate::montgomery::{be_into_limbs, is_zero, less_than, sub_in_place, Modulus, Work};
use sha2::{Digest, Sha256, Sha384};
use std::fmt;
use std::sync::OnceLock;

/// Domain parameters, big-endian hex, from SEC 2 v2 §2.4.2 (secp256r1) and §2.5.1
/// (secp384r1), identical to P-256 and P-384 of NIST SP 800-186 §3.2.1.3–4 (FIPS 186-5).
/// a = p − 3 for both, which the doubling formula builds in.
struct Params {
    p: &'static str,
    b: &'static str,
    n: &'static str,
    gx: &'static str,
    gy: &'static str,
}

const P256: Params = Params {
    p: "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff",
    b: "5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b",
    n: "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551",
    gx: "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
    gy: "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5",
};

const P384: Params = Params {
    p: "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    b: "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    n: "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    gx: "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
    gy: "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
};

/// Why coordinates are not a public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointError {
    /// x and y must each be exactly the field length (32 or 48 bytes).
    WrongLength,
    /// A coordinate is not below p.
    NotInField,
    /// y² ≠ x³ − 3x + b.
    NotOnCurve,
}

impl fmt::Display for PointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PointError::WrongLength => "coordinates of the wrong length",
            PointError::NotInField => "coordinate not below the field prime",
            PointError::NotOnCurve => "point not on the curve",
        })
    }
}

/// A point in Jacobian coordinates (x = X/Z², y = Y/Z³), each in Montgomery form mod p.
/// Z = 0 is the point at infinity.
#[derive(Clone, Copy)]
struct Point<const N: usize> {
    x: [u32; N],
    y: [u32; N],
    z: [u32; N],
}

impl<const N: usize> Point<N> {
    const INFINITY: Point<N> = Point { x: [0; N], y: [0; N], z: [0; N] };

    fn is_infinity(&self) -> bool {
        is_zero(&self.z)
    }
}

/// Multiples 1·P … 15·P of a point, for 4-bit windows.
type Table<const N: usize> = [Point<N>; 15];

/// A curve with its moduli prepared, N 32-bit limbs per value (8 for P-256, 12 for P-384).
/// Public only as the bound of [`EcPublicKey`]; its contents stay private.
pub struct Curve<const N: usize> {
    /// The field prime.
    p: Modulus,
    /// The group order.
    n: Modulus,
    /// b in Montgomery form.
    b: [u32; N],
    /// n − 2: s⁻¹ = s^(n−2) mod n (Fermat; n is prime).
    n_minus_2: [u32; N],
    g_table: Table<N>,
}

fn hex(s: &str) -> Option<Vec<u8>> {
    s.as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).ok().and_then(|d| u8::from_str_radix(d, 16).ok()))
        .collect()
}

/// A slice of limbs as an array (zero-padded or cut, never a panic).
fn array<const N: usize>(limbs: &[u32]) -> [u32; N] {
    let mut out = [0u32; N];
    for (o, l) in out.iter_mut().zip(limbs) {
        *o = *l;
    }
    out
}

fn from_be<const N: usize>(be: &[u8]) -> [u32; N] {
    let mut out = [0u32; N];
    be_into_limbs(be, &mut out);
    out
}

impl<const N: usize> Curve<N> {
    /// `None` only if the constants above were broken (the unit tests check they are not).
    fn new(params: &Params) -> Option<Curve<N>> {
        let p = Modulus::new(&hex(params.p)?)?;
        let n = Modulus::new(&hex(params.n)?)?;
        if p.limbs() != N || n.limbs() != N {
            return None;
        }
        let b = array(&p.to_mont(&from_be::<N>(&hex(params.b)?)));
        let mut n_minus_2: [u32; N] = array(n.value());
        let mut two = [0u32; N];
        if let Some(low) = two.first_mut() {
            *low = 2;
        }
        sub_in_place(&mut n_minus_2, &two);
        let mut curve = Curve { p, n, b, n_minus_2, g_table: [Point::INFINITY; 15] };
        let mut w = Work::new(N);
        let g = curve.affine(&from_be(&hex(params.gx)?), &from_be(&hex(params.gy)?), &mut w).ok()?;
        curve.g_table = curve.table(&g, &mut w);
        Some(curve)
    }

    fn mul(&self, a: &[u32; N], b: &[u32; N], w: &mut Work) -> [u32; N] {
        let mut out = [0u32; N];
        self.p.mul(a, b, &mut out, w);
        out
    }

    fn add(&self, a: &[u32; N], b: &[u32; N]) -> [u32; N] {
        let mut out = [0u32; N];
        self.p.add(a, b, &mut out);
        out
    }

    fn sub(&self, a: &[u32; N], b: &[u32; N]) -> [u32; N] {
        let mut out = [0u32; N];
        self.p.sub(a, b, &mut out);
        out
    }

    /// The point (x, y) (plain coordinates) after checking it: both below p and on the curve,
    /// y² = x³ − 3x + b (SEC 1 v2 §3.2.2.1). An affine point is never the point at infinity,
    /// and both curves have prime order (cofactor 1), so nothing else is needed.
    fn affine(&self, x: &[u32; N], y: &[u32; N], w: &mut Work) -> Result<Point<N>, PointError> {
        if !less_than(x, self.p.value()) || !less_than(y, self.p.value()) {
            return Err(PointError::NotInField);
        }
        let (x, y): ([u32; N], [u32; N]) = (array(&self.p.to_mont(x)), array(&self.p.to_mont(y)));
        let x2 = self.mul(&x, &x, w);
        let three_x = self.add(&self.add(&x, &x), &x);
        let rhs = self.add(&self.sub(&self.mul(&x2, &x, w), &three_x), &self.b);
        if self.mul(&y, &y, w) != rhs {
            return Err(PointError::NotOnCurve);
        }
        Ok(Point { x, y, z: array(self.p.one()) })
    }

    /// 2P, "dbl-2001-b" of the Explicit-Formulas Database for a = −3 (3M + 5S):
    /// δ = Z², γ = Y², β = Xγ, α = 3(X − δ)(X + δ), X' = α² − 8β, Z' = (Y + Z)² − γ − δ,
    /// Y' = α(4β − X') − 8γ². Infinity (Z = 0) gives Z' = 0; so would Y = 0, which no point of
    /// a prime-order curve has.
    fn double(&self, pt: &Point<N>, w: &mut Work) -> Point<N> {
        let delta = self.mul(&pt.z, &pt.z, w);
        let gamma = self.mul(&pt.y, &pt.y, w);
        let beta = self.mul(&pt.x, &gamma, w);
        let t = self.mul(&self.sub(&pt.x, &delta), &self.add(&pt.x, &delta), w);
        let alpha = self.add(&self.add(&t, &t), &t);
        let beta2 = self.add(&beta, &beta);
        let beta4 = self.add(&beta2, &beta2);
        let beta8 = self.add(&beta4, &beta4);
        let x = self.sub(&self.mul(&alpha, &alpha, w), &beta8);
        let yz = self.add(&pt.y, &pt.z);
        let z = self.sub(&self.sub(&self.mul(&yz, &yz, w), &gamma), &delta);
        let gamma_sq = self.mul(&gamma, &gamma, w);
        let gamma_sq2 = self.add(&gamma_sq, &gamma_sq);
        let gamma_sq4 = self.add(&gamma_sq2, &gamma_sq2);
        let gamma_sq8 = self.add(&gamma_sq4, &gamma_sq4);
        let y = self.sub(&self.mul(&alpha, &self.sub(&beta4, &x), w), &gamma_sq8);
        Point { x, y, z }
    }

    /// P + Q for any P, Q ("add-1998-cmo-2", 12M + 4S), with the cases the formula cannot
    /// take: either operand at infinity, P = Q (doubling) and P = −Q (infinity). Equal
    /// x (U1 = U2) means Q = ±P; equal y then means Q = P.
    fn add_points(&self, p1: &Point<N>, p2: &Point<N>, w: &mut Work) -> Point<N> {
        if p1.is_infinity() {
            return *p2;
        }
        if p2.is_infinity() {
            return *p1;
        }
        let z1z1 = self.mul(&p1.z, &p1.z, w);
        let z2z2 = self.mul(&p2.z, &p2.z, w);
        let u1 = self.mul(&p1.x, &z2z2, w);
        let u2 = self.mul(&p2.x, &z1z1, w);
        let s1 = self.mul(&p1.y, &self.mul(&p2.z, &z2z2, w), w);
        let s2 = self.mul(&p2.y, &self.mul(&p1.z, &z1z1, w), w);
        let h = self.sub(&u2, &u1);
        let r = self.sub(&s2, &s1);
        if is_zero(&h) {
            return if is_zero(&r) { self.double(p1, w) } else { Point::INFINITY };
        }
        let hh = self.mul(&h, &h, w);
        let hhh = self.mul(&h, &hh, w);
        let v = self.mul(&u1, &hh, w);
        let x = self.sub(&self.sub(&self.mul(&r, &r, w), &hhh), &self.add(&v, &v));
        let y = self.sub(&self.mul(&r, &self.sub(&v, &x), w), &self.mul(&s1, &hhh, w));
        let z = self.mul(&self.mul(&p1.z, &p2.z, w), &h, w);
        Point { x, y, z }
    }

    /// 1·P … 15·P.
    fn table(&self, pt: &Point<N>, w: &mut Work) -> Table<N> {
        let mut table = [*pt; 15];
        let mut acc = *pt;
        for (k, entry) in table.iter_mut().enumerate().skip(1) {
            acc = if k == 1 { self.double(pt, w) } else { self.add_points(&acc, pt, w) };
            *entry = acc;
        }
        table
    }

    /// u1·G + u2·Q (u1, u2 plain integers of N limbs), one pass over both scalars from the top,
    /// 4 bits at a time: four doublings, then the table entries for the two digits.
    fn mul_add(&self, u1: &[u32; N], u2: &[u32; N], q_table: &Table<N>, w: &mut Work) -> Point<N> {
        let mut acc = Point::INFINITY;
        for i in (0..N.saturating_mul(8)).rev() {
            if !acc.is_infinity() {
                for _ in 0..4 {
                    acc = self.double(&acc, w);
                }
            }
            // Digit 0 gives index usize::MAX: no entry, nothing added.
            if let Some(pt) = self.g_table.get(nibble(u1, i).wrapping_sub(1)) {
                acc = self.add_points(&acc, pt, w);
            }
            if let Some(pt) = q_table.get(nibble(u2, i).wrapping_sub(1)) {
                acc = self.add_points(&acc, pt, w);
            }
        }
        acc
    }
}

/// The i-th 4-bit digit of x, from the least significant.
fn nibble<const N: usize>(x: &[u32; N], i: usize) -> usize {
    x.get(i / 8).map_or(0, |limb| ((limb >> ((i % 8) << 2)) & 0xf) as usize)
}

/// A public key on a curve of N limbs, checked and prepared for repeated verification.
#[derive(Clone)]
struct Key<const N: usize> {
    curve: &'static Curve<N>,
    /// 1·Q … 15·Q, computed once (boxed: 1.4–2.2 KB would bloat every `jwk::PublicKey`).
    table: Box<Table<N>>,
    /// 04 ‖ x ‖ y (SEC 1 v2 §2.3.3, uncompressed), what a host verifier's SPKI carries.
    sec1: Vec<u8>,
}

impl<const N: usize> Key<N> {
    const FIELD_BYTES: usize = N * 4;

    fn new(curve: Option<&'static Curve<N>>, x: &[u8], y: &[u8]) -> Result<Key<N>, PointError> {
        // Constants that failed to load leave the curve unusable: refuse every key.
        let curve = curve.ok_or(PointError::NotOnCurve)?;
        if x.len() != Self::FIELD_BYTES || y.len() != Self::FIELD_BYTES {
            return Err(PointError::WrongLength);
        }
        let mut w = Work::new(N);
        let q = curve.affine(&from_be(x), &from_be(y), &mut w)?;
        let sec1 = [&[0x04u8][..], x, y].concat();
        Ok(Key { curve, table: Box::new(curve.table(&q, &mut w)), sec1 })
    }

    /// SEC 1 v2 §4.1.4 step 1 on an IEEE P1363 signature (r ‖ s, each the field length, as
    /// JWS uses): r and s in [1, n − 1]. This refuses r = s = 0 (CVE-2022-21449).
    fn scalars(&self, signature: &[u8]) -> Option<([u32; N], [u32; N])> {
        if signature.len() != Self::FIELD_BYTES.saturating_mul(2) {
            return None;
        }
        let (r, s) = signature.split_at_checked(Self::FIELD_BYTES)?;
        let (r, s) = (from_be::<N>(r), from_be::<N>(s));
        let n = self.curve.n.value();
        let in_range = |v: &[u32; N]| !is_zero(v) && less_than(v, n);
        (in_range(&r) && in_range(&s)).then_some((r, s))
    }

    /// SEC 1 v2 §4.1.4 steps 2–8 with the message's hash `digest`, which must be as long as
    /// the order (SHA-256 for P-256, SHA-384 for P-384, so no truncation applies).
    fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> bool {
        let Some((r, s)) = self.scalars(signature) else { return false };
        if digest.len() != Self::FIELD_BYTES {
            return false;
        }
        let c = self.curve;
        let n = c.n.value();
        // e < 2^bits(n) < 2n: one subtraction reduces it.
        let mut e: [u32; N] = from_be(digest);
        if !less_than(&e, n) {
            sub_in_place(&mut e, n);
        }
        // w = s⁻¹ in Montgomery form; a product of it with a plain value is plain.
        let w = c.n.pow(&c.n.to_mont(&s), &c.n_minus_2);
        let (mut u1, mut u2, mut work) = ([0u32; N], [0u32; N], Work::new(N));
        c.n.mul(&e, &w, &mut u1, &mut work);
        c.n.mul(&r, &w, &mut u2, &mut work);
        let point = c.mul_add(&u1, &u2, &self.table, &mut work);
        if point.is_infinity() {
            return false;
        }
        // Accept iff x mod n = r, x = X/Z² < p. As n < p < 2n, that is x = r or x = r + n
        // (when r + n < p), checked as X = x'·Z² without inverting Z.
        let zz = c.mul(&point.z, &point.z, &mut work);
        let mut matches = |candidate: &[u32; N]| c.mul(&array(&c.p.to_mont(candidate)), &zz, &mut work) == point.x;
        if matches(&r) {
            return true;
        }
        let mut r_plus_n = [0u32; N];
        let mut carry = 0u64;
        for ((o, &a), &b) in r_plus_n.iter_mut().zip(&r).zip(n) {
            let v = u64::from(a).wrapping_add(u64::from(b)).wrapping_add(carry);
            *o = v as u32;
            carry = v >> 32;
        }
        carry == 0 && less_than(&r_plus_n, c.p.value()) && matches(&r_plus_n)
    }
}

/// The curves JWS uses, each with the hash of its own length (RFC 7518 §3.4: ES256 is P-256
/// with SHA-256, ES384 P-384 with SHA-384), so no digest is ever truncated.
pub trait JwsCurve {
    const NAME: &'static str;
    fn get() -> Option<&'static Self>;
    fn digest(message: &[u8]) -> Vec<u8>;
}

impl JwsCurve for Curve<8> {
    const NAME: &'static str = "P256";
    fn get() -> Option<&'static Self> {
        static CURVE: OnceLock<Option<Curve<8>>> = OnceLock::new();
        CURVE.get_or_init(|| Curve::new(&P256)).as_ref()
    }
    fn digest(message: &[u8]) -> Vec<u8> {
        Sha256::digest(message).to_vec()
    }
}

impl JwsCurve for Curve<12> {
    const NAME: &'static str = "P384";
    fn get() -> Option<&'static Self> {
        static CURVE: OnceLock<Option<Curve<12>>> = OnceLock::new();
        CURVE.get_or_init(|| Curve::new(&P384)).as_ref()
    }
    fn digest(message: &[u8]) -> Vec<u8> {
        Sha384::digest(message).to_vec()
    }
}

/// An ECDSA public key of a JWS curve of N limbs, checked and prepared.
#[derive(Clone)]
pub struct EcPublicKey<const N: usize>(Key<N>);

/// For ES256.
pub type P256PublicKey = EcPublicKey<8>;
/// For ES384.
pub type P384PublicKey = EcPublicKey<12>;

impl<const N: usize> EcPublicKey<N>
where
    Curve<N>: JwsCurve,
{
    /// The key from its big-endian affine coordinates, each exactly the field length (32 or
    /// 48 bytes), checked to be a point of the curve.
    pub fn from_coordinates(x: &[u8], y: &[u8]) -> Result<Self, PointError> {
        Key::new(Curve::<N>::get(), x, y).map(EcPublicKey)
    }

    /// ECDSA with the curve's hash over `message`; `signature` is r ‖ s (64 or 96 bytes).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.verify_digest(&Curve::<N>::digest(message), signature)
    }

    /// Whether `signature` is r ‖ s of the right length with r and s in [1, n − 1]: the cheap
    /// checks done before any math, also by the host path.
    pub fn signature_in_range(&self, signature: &[u8]) -> bool {
        self.0.scalars(signature).is_some()
    }

    /// 04 ‖ x ‖ y.
    pub fn uncompressed_point(&self) -> &[u8] {
        &self.0.sec1
    }
}

/// The coordinates stay out of logs.
impl<const N: usize> fmt::Debug for EcPublicKey<N>
where
    Curve<N>: JwsCurve,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}PublicKey", Curve::<N>::NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator_checks<const N: usize>(curve: &Curve<N>, params: &Params) {
        let (gx, gy) = (hex(params.gx).unwrap(), hex(params.gy).unwrap());
        // G is on the curve (Curve::new checked it too) and n·G = ∞, (n − 1)·G = −G.
        let w = &mut Work::new(N);
        let g = curve.affine(&from_be(&gx), &from_be(&gy), w).unwrap();
        let n: [u32; N] = array(curve.n.value());
        let zero = [0u32; N];
        let no_q = curve.table(&g, w);
        assert!(curve.mul_add(&n, &zero, &no_q, w).is_infinity());
        assert!(curve.mul_add(&zero, &n, &no_q, w).is_infinity());
        let mut n_minus_1 = n;
        n_minus_1[0] -= 1;
        let minus_g = curve.mul_add(&n_minus_1, &zero, &no_q, w);
        assert!(!minus_g.is_infinity());
        let zz = curve.mul(&minus_g.z, &minus_g.z, w);
        assert_eq!(minus_g.x, curve.mul(&g.x, &zz, w), "x of (n-1)G is x of G");
        let zzz = curve.mul(&zz, &minus_g.z, w);
        assert_eq!(curve.add(&minus_g.y, &curve.mul(&g.y, &zzz, w)), [0; N], "y of (n-1)G is -y of G");
        // G + (−G) = ∞ and G + G = 2G through the addition's special cases.
        let neg_g = Point { y: curve.sub(&[0; N], &g.y), ..g };
        assert!(curve.add_points(&g, &neg_g, w).is_infinity());
        let two_g = curve.double(&g, w);
        let sum = curve.add_points(&g, &g, w);
        assert_eq!((sum.x, sum.y, sum.z), (two_g.x, two_g.y, two_g.z));
        // 1·G + 1·G through the windows (the doubling case of the addition) equals 2·G.
        let mut one = [0u32; N];
        one[0] = 1;
        let via_windows = curve.mul_add(&one, &one, &no_q, w);
        let two: [u32; N] = {
            let mut t = [0u32; N];
            t[0] = 2;
            t
        };
        let direct = curve.mul_add(&two, &zero, &no_q, w);
        let (a, b) = (curve.mul(&via_windows.z, &via_windows.z, w), curve.mul(&direct.z, &direct.z, w));
        assert_eq!(curve.mul(&via_windows.x, &b, w), curve.mul(&direct.x, &a, w));
        // A point off the curve and coordinates not below p are refused.
        let mut bad_y = gy.clone();
        *bad_y.last_mut().unwrap() ^= 1;
        assert_eq!(curve.affine(&from_be(&gx), &from_be(&bad_y), w).err(), Some(PointError::NotOnCurve));
        let p: [u32; N] = array(curve.p.value());
        assert_eq!(curve.affine(&p, &from_be(&gy), w).err(), Some(PointError::NotInField));
        assert_eq!(curve.affine(&from_be(&gx), &p, w).err(), Some(PointError::NotInField));
        assert_eq!(curve.affine(&zero, &zero, w).err(), Some(PointError::NotOnCurve));
    }

    #[test]
    fn p256_constants() {
        let curve = <Curve<8>>::get().unwrap();
        assert_eq!((curve.p.bits(), curve.n.bits()), (256, 256));
        generator_checks(curve, &P256);
    }

    #[test]
    fn p384_constants() {
        let curve = <Curve<12>>::get().unwrap();
        assert_eq!((curve.p.bits(), curve.n.bits()), (384, 384));
        generator_checks(curve, &P384);
    }

    #[test]
    fn key_encoding_and_lengths() {
        let curve = <Curve<8>>::get().unwrap();
        let (gx, gy) = (hex(P256.gx).unwrap(), hex(P256.gy).unwrap());
        let key = P256PublicKey::from_coordinates(&gx, &gy).unwrap();
        assert_eq!(key.uncompressed_point(), [&[4u8][..], &gx, &gy].concat());
        assert_eq!(format!("{key:?}"), "P256PublicKey");
        assert_eq!(P256PublicKey::from_coordinates(&gx[1..], &gy).unwrap_err(), PointError::WrongLength);
        assert_eq!(P384PublicKey::from_coordinates(&gx, &gy).unwrap_err(), PointError::WrongLength);
        // Range: exactly 64 bytes, r and s in [1, n − 1].
        let n = hex(P256.n).unwrap();
        let one = {
            let mut v = vec![0u8; 32];
            v[31] = 1;
            v
        };
        let mut n_minus_1 = n.clone();
        n_minus_1[31] -= 1;
        assert!(key.signature_in_range(&[one.clone(), n_minus_1.clone()].concat()));
        assert!(!key.signature_in_range(&[n.clone(), one.clone()].concat()));
        assert!(!key.signature_in_range(&[one.clone(), n.clone()].concat()));
        assert!(!key.signature_in_range(&[0u8; 64]));
        assert!(!key.signature_in_range(&[vec![0u8; 32], one.clone()].concat()));
        assert!(!key.signature_in_range(&[0xffu8; 64]));
        assert!(!key.signature_in_range(&[1u8; 63]));
        assert!(!key.signature_in_range(&[1u8; 65]));
        assert!(!key.verify(b"m", &[0u8; 64]));
        assert!(!key.verify(b"m", &[]));
        assert!(curve.n.bits() == 256);
    }
}
