//! Our ECDSA verification (`jwt_authn_wasm::ecdsa`, through `crypto::verify_key`) against the
//! p256/p384 crates it replaced, on keys generated here from a fixed seed. Both must give the
//! same verdict on valid signatures and their high-s twins, bit flips, r or s set to 0, 1,
//! n − 1, n or r + n, wrong lengths, swapped or random halves and signatures of other messages;
//! and both must refuse the same points (off the curve, coordinates not below p) at parse time.

use jwt_authn_wasm::crypto::verify_key;
use jwt_authn_wasm::jwk::{Alg, PublicKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsa::BigUint;

const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P256_P: &str = "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff";
const P384_N: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
const P384_P: &str = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff";

fn big(hex: &str) -> BigUint {
    BigUint::parse_bytes(hex.as_bytes(), 16).unwrap()
}

/// `v` big-endian on exactly `len` bytes, or None if it does not fit.
fn fixed(v: &BigUint, len: usize) -> Option<Vec<u8>> {
    let b = v.to_bytes_be();
    (b.len() <= len).then(|| [vec![0u8; len - b.len()], b].concat())
}

/// One curve: key generation, signing and the reference verdict, from the crate.
trait Reference {
    const ALG: Alg;
    const FIELD: usize;
    const N: &'static str;
    const P: &'static str;
    fn generate(rng: &mut StdRng) -> Self;
    fn coordinates(&self) -> (Vec<u8>, Vec<u8>);
    fn sign(&self, msg: &[u8]) -> Vec<u8>;
    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool;
    fn point_accepted(x: &[u8], y: &[u8]) -> bool;
    fn ours(x: &[u8], y: &[u8]) -> Result<PublicKey, String>;
}

macro_rules! reference {
    ($name:ident, $krate:ident, $alg:expr, $field:expr, $n:expr, $p:expr, $ours:path) => {
        struct $name($krate::ecdsa::SigningKey);
        impl Reference for $name {
            const ALG: Alg = $alg;
            const FIELD: usize = $field;
            const N: &'static str = $n;
            const P: &'static str = $p;
            fn generate(rng: &mut StdRng) -> Self {
                $name($krate::ecdsa::SigningKey::random(rng))
            }
            fn coordinates(&self) -> (Vec<u8>, Vec<u8>) {
                let point = self.0.verifying_key().to_encoded_point(false);
                (point.x().unwrap().to_vec(), point.y().unwrap().to_vec())
            }
            fn sign(&self, msg: &[u8]) -> Vec<u8> {
                use $krate::ecdsa::signature::Signer;
                let sig: $krate::ecdsa::Signature = self.0.sign(msg);
                sig.to_bytes().to_vec()
            }
            fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
                use $krate::ecdsa::signature::Verifier;
                $krate::ecdsa::Signature::from_slice(sig).is_ok_and(|s| self.0.verifying_key().verify(msg, &s).is_ok())
            }
            fn point_accepted(x: &[u8], y: &[u8]) -> bool {
                let point = [&[4u8][..], x, y].concat();
                $krate::ecdsa::VerifyingKey::from_sec1_bytes(&point).is_ok()
            }
            fn ours(x: &[u8], y: &[u8]) -> Result<PublicKey, String> {
                $ours(x, y)
            }
        }
    };
}

reference!(P256, p256, Alg::ES256, 32, P256_N, P256_P, PublicKey::p256_from_coordinates);
reference!(P384, p384, Alg::ES384, 48, P384_N, P384_P, PublicKey::p384_from_coordinates);

/// Signatures derived from a valid `sig` of `msg`: every one must get the crate's verdict.
fn variants<R: Reference>(rng: &mut StdRng, sig: &[u8]) -> Vec<Vec<u8>> {
    let f = R::FIELD;
    let n = big(R::N);
    let (r, s) = sig.split_at(f);
    let (rb, sb) = (BigUint::from_bytes_be(r), BigUint::from_bytes_be(s));
    let one = BigUint::from(1u8);
    let mut out = vec![sig.to_vec()];
    // High-s twin (valid) and the swapped halves.
    out.push([r.to_vec(), fixed(&(&n - &sb), f).unwrap()].concat());
    out.push([s, r].concat());
    // Bit flips anywhere.
    for _ in 0..12 {
        let mut bad = sig.to_vec();
        let i = rng.gen_range(0..bad.len());
        bad[i] ^= 1 << rng.gen_range(0..8);
        out.push(bad);
    }
    // Out-of-range and boundary scalars in either half.
    let specials = [BigUint::from(0u8), one.clone(), &n - &one, n.clone(), &rb + &n, &sb + &n, big(R::P)];
    for v in &specials {
        if let Some(v) = fixed(v, f) {
            out.push([v.clone(), s.to_vec()].concat());
            out.push([r.to_vec(), v].concat());
        }
    }
    out.push(vec![0u8; 2 * f]);
    out.push(vec![0xffu8; 2 * f]);
    // Wrong lengths: one byte short or long, a zero byte in front, DER-sized, empty.
    out.push(sig[1..].to_vec());
    out.push(sig[..sig.len() - 1].to_vec());
    out.push([&[0u8][..], sig].concat());
    out.push([sig, &[0u8][..]].concat());
    out.push([&sig[..f], &[0u8][..], &sig[f..]].concat());
    out.push(Vec::new());
    // Random halves.
    out.push((0..2 * f).map(|_| rng.gen()).collect());
    out
}

fn run<R: Reference>(keys: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut checked, mut accepted) = (0usize, 0usize);
    for _ in 0..keys {
        let reference = R::generate(&mut rng);
        let (x, y) = reference.coordinates();
        let ours = R::ours(&x, &y).expect("a generated key is a valid point");
        let other = R::generate(&mut rng);
        for _ in 0..3 {
            let msg: Vec<u8> = (0..rng.gen_range(0..200)).map(|_| rng.gen()).collect();
            let sig = reference.sign(&msg);
            let mut cases: Vec<(Vec<u8>, Vec<u8>)> =
                variants::<R>(&mut rng, &sig).into_iter().map(|s| (msg.clone(), s)).collect();
            // Another message, and another key's signature of this one.
            cases.push((b"another message".to_vec(), sig.clone()));
            cases.push((msg.clone(), other.sign(&msg)));
            for (m, s) in cases {
                let want = reference.verify(&m, &s);
                let got = verify_key(R::ALG, &ours, &m, &s).is_ok();
                assert_eq!(got, want, "{:?}: msg {:02x?} sig {:02x?}", R::ALG, m, s);
                checked += 1;
                accepted += usize::from(got);
            }
        }
    }
    // Each message has its valid signature and the high-s twin.
    assert!(accepted >= keys * 3 * 2, "{accepted} accepted of {checked}");
}

#[test]
fn p256_verdicts_match_the_crate() {
    run::<P256>(6, 1);
}

#[test]
fn p384_verdicts_match_the_crate() {
    run::<P384>(4, 2);
}

fn points<R: Reference>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let f = R::FIELD;
    let p = big(R::P);
    let mut cases: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for _ in 0..10 {
        let (x, y) = R::generate(&mut rng).coordinates();
        cases.push((x.clone(), y.clone()));
        // y flipped: off the curve; −y: on it; y + p and x + p do not fit or exceed p.
        let mut bad = y.clone();
        bad[f - 1] ^= 1;
        cases.push((x.clone(), bad));
        let yb = BigUint::from_bytes_be(&y);
        cases.push((x.clone(), fixed(&(&p - &yb), f).unwrap()));
        if let Some(v) = fixed(&(&yb + &p), f) {
            cases.push((x.clone(), v));
        }
        if let Some(v) = fixed(&(BigUint::from_bytes_be(&x) + &p), f) {
            cases.push((v, y.clone()));
        }
        cases.push(((0..f).map(|_| rng.gen()).collect(), (0..f).map(|_| rng.gen()).collect()));
    }
    let zero = vec![0u8; f];
    let pb = fixed(&p, f).unwrap();
    let pm1 = fixed(&(&p - BigUint::from(1u8)), f).unwrap();
    for (a, b) in [(&zero, &zero), (&pb, &zero), (&zero, &pb), (&pb, &pb), (&pm1, &pm1), (&zero, &pm1)] {
        cases.push((a.clone(), b.clone()));
    }
    let mut valid = 0;
    for (x, y) in cases {
        let want = R::point_accepted(&x, &y);
        let got = R::ours(&x, &y);
        assert_eq!(got.is_ok(), want, "{:?} x {:02x?} y {:02x?}: {:?}", R::ALG, x, y, got.err());
        if let Err(reason) = got {
            assert!(reason.contains("not on curve"), "{reason}");
        }
        valid += usize::from(want);
    }
    assert!(valid >= 20, "both valid points and their negations");
}

#[test]
fn p256_points_refused_like_the_crate() {
    points::<P256>(3);
}

#[test]
fn p384_points_refused_like_the_crate() {
    points::<P384>(4);
}
