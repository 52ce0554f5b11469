//! Signature verification.
//!
//! RSA goes through our own [`crate::rsa`] (public-key operations only, so timing attacks on
//! private keys such as Marvin, RUSTSEC-2023-0071, have nothing to work on); ECDSA through our
//! own [`crate::ecdsa`]. Both are built on [`crate::montgomery`].

use crate::jwk::{Alg, Jwk, PublicKey};
use crate::rsa::{Hash, RsaPublicKey};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The key type cannot verify this algorithm (never reaches the math).
    KeyMismatch,
    /// Wrong length, out-of-range values, or the math says no.
    BadSignature,
}

/// What the filter needs from a verification backend: the pure-Rust one here, or the host's
/// BoringSSL through Envoy's `verify_signature` foreign function (`filter::crypto`).
pub trait SignatureVerifier {
    fn verify(&self, alg: Alg, key: &Jwk, signing_input: &[u8], signature: &[u8]) -> Result<(), VerifyError>;
}

/// Pure-Rust verification ([`crate::rsa`], [`crate::ecdsa`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct PureRust;

impl SignatureVerifier for PureRust {
    fn verify(&self, alg: Alg, key: &Jwk, signing_input: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        verify_key(alg, &key.key, signing_input, signature)
    }
}

/// Verifies `signature` over `signing_input` with `key` for `alg`, in pure Rust.
pub fn verify_key(alg: Alg, key: &PublicKey, signing_input: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
    if !key.supports(alg) {
        return Err(VerifyError::KeyMismatch);
    }
    let verified = match (alg, key) {
        // Both paddings first check that the signature is exactly the modulus length and
        // below the modulus (RFC 8017 §8.2.2 step 1, §5.2.2 step 1), so `s + n` never
        // passes for `s`.
        (Alg::RS256, PublicKey::Rsa(k)) => k.verify_pkcs1v15(Hash::Sha256, signing_input, signature),
        (Alg::RS384, PublicKey::Rsa(k)) => k.verify_pkcs1v15(Hash::Sha384, signing_input, signature),
        (Alg::RS512, PublicKey::Rsa(k)) => k.verify_pkcs1v15(Hash::Sha512, signing_input, signature),
        // The salt length is the hash length and the 0x01 separator must sit exactly
        // there, as RFC 7518 §3.5 requires: a signature made with any other salt length
        // fails rather than being auto-detected.
        (Alg::PS256, PublicKey::Rsa(k)) => k.verify_pss(Hash::Sha256, signing_input, signature),
        (Alg::PS384, PublicKey::Rsa(k)) => k.verify_pss(Hash::Sha384, signing_input, signature),
        (Alg::PS512, PublicKey::Rsa(k)) => k.verify_pss(Hash::Sha512, signing_input, signature),
        // Exactly 64 (96) bytes of r || s, r and s in [1, n-1] before any math (so r = s = 0,
        // CVE-2022-21449, never reaches it). High-s signatures are valid ECDSA (JWS does not
        // demand low-s, Wycheproof marks them valid), so they are accepted.
        (Alg::ES256, PublicKey::P256(k)) => k.verify(signing_input, signature),
        (Alg::ES384, PublicKey::P384(k)) => k.verify(signing_input, signature),
        _ => return Err(VerifyError::KeyMismatch),
    };
    if verified {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// The cheap RSA checks (length, below the modulus) that both paddings start with, also
/// applied before host verification.
pub fn rsa_signature_in_range(key: &RsaPublicKey, signature: &[u8]) -> bool {
    key.signature_in_range(signature)
}

/// The cheap ECDSA checks (exactly 2 × the field length, r and s in [1, n-1]) done before the
/// curve math, for the host path to apply too.
pub fn ecdsa_signature_in_range(key: &PublicKey, signature: &[u8]) -> bool {
    match key {
        PublicKey::P256(k) => k.signature_in_range(signature),
        PublicKey::P384(k) => k.signature_in_range(signature),
        PublicKey::Rsa(_) => false,
    }
}

/// Known answers, in their own file so that `bench/crypto-wasm` can include them by path.
#[path = "kat.rs"]
pub mod kat;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::test_keys::*;
    use ::rsa::BigUint;

    // Signatures over MSG by the `A` keys of `jwk::test_keys`, made with the openssl CLI
    // (`openssl dgst -sha256 -sign … [-sigopt rsa_padding_mode:pss -sigopt
    // rsa_pss_saltlen:digest|20|0 -sigopt rsa_mgf1_md:sha256]`; ECDSA converted DER → r || s).
    use super::kat::{MSG, SIG_ES256, SIG_ES384, SIG_PS256, SIG_RS256};
    const SIG_RS384: &str = "F-4VxGY7WL9GF9if7t1DFDSG1bbgPR6OL95WBip_85o4l0XoAZWx6BKX8xxd-VdM062mnuiEXi6VE46Xf9nX3AnAy808w3VOW42gGPnb2eRLwMt3yuKVhHJUVkcrhfz9rUx6XoFcUK9Kf-CpR-7Y7ZS2oZazm0QuW02hCmz7yXZUj1CmEU0PA0QVuovLO0EqJTHjUtafvRHR9Qnj0OmEfvCfqxf2AQho98zoDiTwdHqjIaq9LDSKanRRwqhRlsD1oAy4fHWP8h0AtThm29YmkH0fi456R8dpirFfAzfiSXyISfpAxI5AR3IorfVr8NvZsBL2C3Zyu8X-zk0mKArzqg";
    const SIG_RS512: &str = "KR4YOHUKUYEiodt5iG6CnZgQB7bjYcRty1qEljjs3B_hI27AN_qwSZI_e2AAdgyF3pKl8vFvrqcWrjIqD2HMbpGbkwFNkqxtRZb2bAnONWyFGNb_C2fs0q3LaIM3PaMMS10LSpKX0soWpZJHgQ8hF_kuSiOnj7wo0Hd8E5h2eoSLm_yvz88sF_390r3H9rofd0GMA8JJhUMoqHthUrg8x2kGXlFhjEmt5PGW72RhU97vfMM2uycaXD8Ue4J89AgISXVsi1xM60VNYZYSyJnJ1AeVnApX270zDVIz_4V6gCi3mD9DZyzn4hTJbJ6gpkr2LvOuKt5WrJeRodUAO9G8Nw";
    const SIG_PS384: &str = "ou9gPT3GI3aAa5gW5qZNotrraO8PpUVOtQMMPEkmxoCsXaNRkKCIK5o4pzWAyC60lcmHKlzorpcT6pe2-BrTg3DLwmRsoAhC8nve8DkRwjLVqOQFfGQ3TpncHTO2-IiOnTtLCB431lKM0sHKIXlLOoEIO4EJdUyps3riyqaeVUVtLYQWuKYpWWgws583XVxzMiQSzH3Ip1TDKoCFKdleoGePbk3JcduCrfZTilWTlRzAbHOO4i5vvAULHTyp3kIa66jV1ADGDug-0h0qxDDMEEY3b2ADCkpCmLhigxG_BJ5PrIEZ0o1GIZ_mwNmgZRi9_LVWu5htCBbrs4RGb7ySoA";
    const SIG_PS512: &str = "bpKYUzlwfDQhF8Oh7Ik7FInJAlWtW8XygZMunoPKBhZRYGkO7YLd9eLSSaFVsX15ZQ29IydyEOuBer2aSHX3bGXNSpMIy9JnMh01MYK0E8Jw4mtKS3m6Jzdc5Pkhc2RzRhnRH33FtcdN9eu-mk3sHMJu5Ldkut-i-ZL9pJas2F6aC9MFhynkeoec06e0owvuhub6H2uaVKwrWih7x69v_ZlloiVObDnVCPKLr8Bi9BDuSzu56TmhT9leMLGCaTGWh58_3ixv76Korf7-iXUz010IjjrxV4M2JW1U4HX_N1GOoF2OeHQ_Z9_LdbrvGhcp55KB7UmEWFJbUuquY6KmBg";
    const SIG_PS256_SALT20: &str = "N3e2zgK6FxoQzQdtWP4WFaVHiqyu6OlpaQDQXFMY_s_opAtmuh8ZjurD4zCCRmDrTpA1rf0PzWlOsL0tfd0Q5wBToth6kNFJyTZQN05TtkdK_Pg2CbdaOD_0JrfLD7A2aMVM0Wr7FlmGMlE7wsRo9bpc0XlcIR2OgNGCGwPuX7ZPKv9w_uASOGmgZ_j85rlp3KjsqCFqVCBfhhg0I5KSvMDRr681bIIVWMmOqU4N6E0BQqoUbikOSAWZsH-gtSVs0kwjtEr9PgLG1MjW4kQ0wVHILOKlk_FFDLIaas37jM4sj4cvHbCUXohOWdF9QfGG9J661wc9SBFeSVoDjjjfkQ";
    const SIG_PS256_SALT0: &str = "l3nBb4VM_G-uibSDxwqRd4oiSGvGHiyK8JmbAmYcHbAQxYpVagFFcwc4mb0XJW-3_HKcPIeF61gL0tR8RDqPoiKKWdjtjPli94SiEFTcxvP5h-oPnJKDTZA50D7O3GFgnjK847SDEb7u-BnsarkX9hYP1SZMYbgsiaWdvbjq9VDI0tBpnGQoSHag5Wu313LHWMpxCVVP2gdRxXB-VagZkBb9dzkdnhEV-uefN7E2N32fJnHhaHvO_78lhQxVChKUFc6seTyKGHEoAFqN6Uf5jSgAk0WSeas_wFDW31-0nhQqNOkBNU17bL2Y8RArtzcJ-U6AZxN5ejB8Oe9BixPk3w";

    fn verify(alg: Alg, key: &PublicKey, msg: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
        verify_key(alg, key, msg, sig)
    }

    fn cases() -> Vec<(Alg, &'static str, PublicKey, PublicKey)> {
        vec![
            (Alg::RS256, SIG_RS256, rsa_a(), rsa_b()),
            (Alg::RS384, SIG_RS384, rsa_a(), rsa_b()),
            (Alg::RS512, SIG_RS512, rsa_a(), rsa_b()),
            (Alg::PS256, SIG_PS256, rsa_a(), rsa_b()),
            (Alg::PS384, SIG_PS384, rsa_a(), rsa_b()),
            (Alg::PS512, SIG_PS512, rsa_a(), rsa_b()),
            (Alg::ES256, SIG_ES256, p256_a(), p256_b()),
            (Alg::ES384, SIG_ES384, p384_a(), p384_b()),
        ]
    }

    #[test]
    fn every_algorithm_verifies_and_rejects_tampering() {
        for (alg, sig, key, other_key) in cases() {
            let sig = b64(sig);
            let msg = MSG.as_bytes();
            assert_eq!(verify(alg, &key, msg, &sig), Ok(()), "{alg:?} valid");
            for i in [0, sig.len() / 2, sig.len() - 1] {
                let mut bad = sig.clone();
                bad[i] ^= 0x01;
                assert_eq!(verify(alg, &key, msg, &bad), Err(VerifyError::BadSignature), "{alg:?} sig byte {i}");
            }
            let mut bad_msg = msg.to_vec();
            *bad_msg.last_mut().unwrap() ^= 0x01;
            assert_eq!(verify(alg, &key, &bad_msg, &sig), Err(VerifyError::BadSignature), "{alg:?} message");
            assert_eq!(verify(alg, &key, b"", &sig), Err(VerifyError::BadSignature), "{alg:?} empty message");
            assert_eq!(verify(alg, &other_key, msg, &sig), Err(VerifyError::BadSignature), "{alg:?} wrong key");
            assert_eq!(verify(alg, &key, msg, &[]), Err(VerifyError::BadSignature), "{alg:?} empty signature");
        }
    }

    #[test]
    fn signature_is_bound_to_its_algorithm() {
        for (alg, sig, key, _) in cases() {
            let sig = b64(sig);
            for other in Alg::ALL.into_iter().filter(|a| *a != alg) {
                let expected = if key.supports(other) { VerifyError::BadSignature } else { VerifyError::KeyMismatch };
                assert_eq!(verify(other, &key, MSG.as_bytes(), &sig), Err(expected), "{alg:?} sig as {other:?}");
            }
        }
    }

    #[test]
    fn key_mismatch_is_decided_before_any_math() {
        let (rsa, p256, p384) = (rsa_a(), p256_a(), p384_a());
        for alg in [Alg::ES256, Alg::ES384] {
            assert_eq!(verify(alg, &rsa, b"x", b""), Err(VerifyError::KeyMismatch));
        }
        for alg in Alg::ALL.into_iter().filter(|a| *a != Alg::ES256) {
            assert_eq!(verify(alg, &p256, b"x", b""), Err(VerifyError::KeyMismatch));
        }
        for alg in Alg::ALL.into_iter().filter(|a| *a != Alg::ES384) {
            assert_eq!(verify(alg, &p384, b"x", b""), Err(VerifyError::KeyMismatch));
        }
    }

    #[test]
    fn rsa_signature_length_must_equal_modulus_length() {
        let key = rsa_a();
        for (alg, sig) in [(Alg::RS256, SIG_RS256), (Alg::PS256, SIG_PS256)] {
            let sig = b64(sig);
            // Same integer, one byte longer: still refused.
            let mut longer = vec![0u8];
            longer.extend(&sig);
            assert_eq!(verify(alg, &key, MSG.as_bytes(), &longer), Err(VerifyError::BadSignature));
            assert_eq!(verify(alg, &key, MSG.as_bytes(), &sig[1..]), Err(VerifyError::BadSignature));
            assert_eq!(verify(alg, &key, MSG.as_bytes(), &sig[..255]), Err(VerifyError::BadSignature));
        }
    }

    #[test]
    fn rsa_signature_must_be_below_the_modulus() {
        let key = rsa_a();
        let PublicKey::Rsa(rsa) = &key else { unreachable!() };
        let n = BigUint::from_bytes_be(rsa.n_be());
        for (alg, sig) in [(Alg::RS256, SIG_RS256), (Alg::PS256, SIG_PS256)] {
            // s + n is congruent to s, so without the range check it would verify.
            let shifted = (BigUint::from_bytes_be(&b64(sig)) + &n).to_bytes_be();
            assert_eq!(shifted.len(), 256, "fixture chosen so that s + n fits");
            assert_eq!(verify(alg, &key, MSG.as_bytes(), &shifted), Err(VerifyError::BadSignature), "{alg:?}");
            assert_eq!(verify(alg, &key, MSG.as_bytes(), &n.to_bytes_be()), Err(VerifyError::BadSignature));
            assert_eq!(verify(alg, &key, MSG.as_bytes(), &[0u8; 256]), Err(VerifyError::BadSignature));
            assert_eq!(verify(alg, &key, MSG.as_bytes(), &[0xffu8; 256]), Err(VerifyError::BadSignature));
        }
    }

    #[test]
    fn pss_salt_length_must_equal_hash_length() {
        let key = rsa_a();
        // Both are valid PSS signatures with SHA-256/MGF1-SHA-256, but salts of 20 and 0 bytes.
        assert_eq!(verify(Alg::PS256, &key, MSG.as_bytes(), &b64(SIG_PS256_SALT20)), Err(VerifyError::BadSignature));
        assert_eq!(verify(Alg::PS256, &key, MSG.as_bytes(), &b64(SIG_PS256_SALT0)), Err(VerifyError::BadSignature));
    }

    /// Group orders of P-256 and P-384.
    const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    const P384_N: &str =
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn be(v: &BigUint, len: usize) -> Vec<u8> {
        let b = v.to_bytes_be();
        let mut out = vec![0u8; len - b.len()];
        out.extend(b);
        out
    }

    #[test]
    fn ecdsa_rejects_out_of_range_and_wrong_length() {
        for (alg, sig, key, n_hex) in
            [(Alg::ES256, SIG_ES256, p256_a(), P256_N), (Alg::ES384, SIG_ES384, p384_a(), P384_N)]
        {
            let sig = b64(sig);
            let half = sig.len() / 2;
            let (r, s) = sig.split_at(half);
            let n = hex(n_hex);
            let msg = MSG.as_bytes();
            // CVE-2022-21449: r = s = 0.
            assert_eq!(verify(alg, &key, msg, &vec![0u8; sig.len()]), Err(VerifyError::BadSignature));
            assert_eq!(verify(alg, &key, msg, &[r, &vec![0u8; half][..]].concat()), Err(VerifyError::BadSignature));
            assert_eq!(verify(alg, &key, msg, &[&vec![0u8; half][..], s].concat()), Err(VerifyError::BadSignature));
            assert_eq!(verify(alg, &key, msg, &[&n[..], &n[..]].concat()), Err(VerifyError::BadSignature));
            // r + n (when it fits) is congruent to r but out of range.
            let r_plus_n = BigUint::from_bytes_be(r) + BigUint::from_bytes_be(&n);
            if r_plus_n.bits() <= half * 8 {
                let forged = [be(&r_plus_n, half), s.to_vec()].concat();
                assert_eq!(verify(alg, &key, msg, &forged), Err(VerifyError::BadSignature));
            }
            // Lengths: one byte short or long, a leading zero, and DER instead of r || s.
            assert_eq!(verify(alg, &key, msg, &sig[1..]), Err(VerifyError::BadSignature));
            assert_eq!(verify(alg, &key, msg, &[&[0u8][..], &sig].concat()), Err(VerifyError::BadSignature));
            assert_eq!(verify(alg, &key, msg, &[&sig[..], &[0u8][..]].concat()), Err(VerifyError::BadSignature));
            let der = crate::hostsig::ecdsa_p1363_to_der(&sig, half).unwrap();
            assert_eq!(verify(alg, &key, msg, &der), Err(VerifyError::BadSignature));
        }
    }

    #[test]
    fn ecdsa_high_s_is_accepted() {
        // (r, n - s) is the other valid signature of the same message: ECDSA is malleable and
        // JWS does not require low-s, so both verify.
        for (alg, sig, key, n_hex) in
            [(Alg::ES256, SIG_ES256, p256_a(), P256_N), (Alg::ES384, SIG_ES384, p384_a(), P384_N)]
        {
            let sig = b64(sig);
            let half = sig.len() / 2;
            let (r, s) = sig.split_at(half);
            let flipped = BigUint::from_bytes_be(&hex(n_hex)) - BigUint::from_bytes_be(s);
            let other = [r.to_vec(), be(&flipped, half)].concat();
            assert_eq!(verify(alg, &key, MSG.as_bytes(), &other), Ok(()), "{alg:?}");
        }
    }
}
