//! RSA signature verification: RSASSA-PKCS1-v1_5 and RSASSA-PSS (RFC 8017 §8), public-key
//! operations only.
//!
//! Our own rather than the `rsa` crate's: its general-purpose bignum (num-bigint-dig) made an
//! RS256 verification cost ~1 ms in V8 and was a large share of the plugin's wasm. Here the
//! key is prepared once, when the JWK is parsed (the [`crate::montgomery`] constants), and a
//! verification with e = 65537 is 18 Montgomery products, ~6x faster (`bench/crypto.sh`).
//!
//! Only public values are handled, so nothing here needs to be constant-time. No input may
//! panic: every length is checked and every slice access is bounded.

use crate::montgomery::{be_to_limbs, limbs_to_be, Modulus, Work};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::fmt;

pub use crate::montgomery::be_bits;

/// Largest modulus this module prepares (16384 bits): a bound on the work per key and per
/// verification whatever the caller's policy (`jwk` allows 8192).
pub const MAX_MODULUS_BYTES: usize = 2048;

/// The hash of a signature scheme (RS256/PS256 → SHA-256, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(message).to_vec(),
            Hash::Sha384 => Sha384::digest(message).to_vec(),
            Hash::Sha512 => Sha512::digest(message).to_vec(),
        }
    }

    /// DER of `DigestInfo` up to the digest itself (RFC 8017 §9.2, note 1): the algorithm
    /// identifier with its NULL parameter, then the OCTET STRING header.
    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => &[
                0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
                0x04, 0x20,
            ],
            Hash::Sha384 => &[
                0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00,
                0x04, 0x30,
            ],
            Hash::Sha512 => &[
                0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00,
                0x04, 0x40,
            ],
        }
    }
}

/// Why a modulus/exponent pair is not a usable public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    ModulusTooLarge,
    EvenModulus,
    ExponentTooSmall,
    EvenExponent,
    ExponentNotBelowModulus,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyError::ModulusTooLarge => "modulus too large",
            KeyError::EvenModulus => "modulus is even",
            KeyError::ExponentTooSmall => "exponent below 3",
            KeyError::EvenExponent => "exponent is even",
            KeyError::ExponentNotBelowModulus => "exponent not below the modulus",
        })
    }
}

/// An RSA public key prepared for repeated verification.
#[derive(Clone)]
pub struct RsaPublicKey {
    /// The modulus, big-endian without leading zeros: its length is the signature length.
    n_be: Vec<u8>,
    e: u32,
    /// The modulus prepared for Montgomery products.
    n: Modulus,
}

/// Only the size is shown: key material stays out of logs.
impl fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.bits())
    }
}

impl RsaPublicKey {
    /// A key from its big-endian modulus (leading zeros ignored) and exponent. The modulus
    /// must be odd and above the exponent, the exponent odd and at least 3. Size policy is the
    /// caller's (`jwk::PublicKey::rsa_from_components`).
    pub fn new(n: &[u8], e: u32) -> Result<RsaPublicKey, KeyError> {
        let zeros = n.iter().take_while(|b| **b == 0).count();
        let n_be = n.get(zeros..).unwrap_or_default();
        if n_be.len() > MAX_MODULUS_BYTES {
            return Err(KeyError::ModulusTooLarge);
        }
        if e < 3 {
            return Err(KeyError::ExponentTooSmall);
        }
        if e & 1 == 0 {
            return Err(KeyError::EvenExponent);
        }
        // An empty modulus is zero, and even.
        if n_be.last().map_or(true, |b| b & 1 == 0) {
            return Err(KeyError::EvenModulus);
        }
        // Up to 4 bytes fit a u64 exactly; anything longer is above any u32 exponent.
        if n_be.len() <= 4 && n_be.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) <= u64::from(e) {
            return Err(KeyError::ExponentNotBelowModulus);
        }
        let n = Modulus::new(n_be).ok_or(KeyError::EvenModulus)?;
        Ok(RsaPublicKey { n_be: n_be.to_vec(), e, n })
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        be_bits(&self.n_be)
    }

    /// Modulus size in bytes: the length of every signature.
    pub fn size(&self) -> usize {
        self.n_be.len()
    }

    /// The modulus, big-endian without leading zeros.
    pub fn n_be(&self) -> &[u8] {
        &self.n_be
    }

    pub fn e(&self) -> u32 {
        self.e
    }

    /// The exponent, big-endian without leading zeros.
    pub fn e_be(&self) -> Vec<u8> {
        let bytes = self.e.to_be_bytes();
        let zeros = bytes.iter().take_while(|b| **b == 0).count();
        bytes.get(zeros..).unwrap_or_default().to_vec()
    }

    /// RFC 8017 §8.2.2 step 1 and §5.2.2 step 1: the signature is exactly the modulus length
    /// and, as an integer, below the modulus (otherwise `s + n` would pass for `s`).
    pub fn signature_in_range(&self, signature: &[u8]) -> bool {
        // Big-endian byte strings of equal length compare like the integers they encode.
        signature.len() == self.n_be.len() && signature < self.n_be.as_slice()
    }

    /// RSASSA-PKCS1-V1_5-VERIFY (RFC 8017 §8.2.2) of `message` hashed with `hash`.
    pub fn verify_pkcs1v15(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let Some(em) = self.public_op(signature) else { return false };
        // EM = 0x00 || 0x01 || PS || 0x00 || DigestInfo, PS at least 8 bytes of 0xff
        // (§9.2); comparing with the one valid encoding leaves no parsing to get wrong.
        let prefix = hash.digest_info_prefix();
        let digest = hash.digest(message);
        let t_len = prefix.len().saturating_add(digest.len());
        let Some(ps_len) = em.len().checked_sub(t_len.saturating_add(3)) else { return false };
        if ps_len < 8 {
            return false;
        }
        let expected = [0x00u8, 0x01]
            .iter()
            .chain(std::iter::repeat(&0xffu8).take(ps_len))
            .chain(&[0x00u8])
            .chain(prefix)
            .chain(&digest);
        em.iter().eq(expected)
    }

    /// RSASSA-PSS-VERIFY (RFC 8017 §8.1.2) with MGF1 over the same hash and a salt exactly
    /// as long as the hash, as RFC 7518 §3.5 requires of PS256/384/512.
    pub fn verify_pss(&self, hash: Hash, message: &[u8], signature: &[u8]) -> bool {
        let Some(em) = self.public_op(signature) else { return false };
        let mod_bits = self.bits();
        match hash {
            Hash::Sha256 => emsa_pss_verify::<Sha256>(message, &em, mod_bits),
            Hash::Sha384 => emsa_pss_verify::<Sha384>(message, &em, mod_bits),
            Hash::Sha512 => emsa_pss_verify::<Sha512>(message, &em, mod_bits),
        }
    }

    /// RSAVP1 (RFC 8017 §5.2.2): s^e mod n as big-endian bytes of the modulus length, or
    /// `None` when the signature is out of range.
    pub fn public_op(&self, signature: &[u8]) -> Option<Vec<u8>> {
        if !self.signature_in_range(signature) {
            return None;
        }
        let m = self.pow_e(&be_to_limbs(signature, self.n.limbs()));
        Some(limbs_to_be(&m, self.n_be.len()))
    }

    /// s^e mod n for s < n. With e = 2k + 1: (s^k)² · s. s^k is computed in Montgomery form;
    /// the last product takes the plain s, which cancels the form's factor R, so no conversion
    /// back is needed (e = 65537: 18 products in all).
    fn pow_e(&self, s: &[u32]) -> Vec<u32> {
        let len = self.n.limbs();
        let s_mont = self.n.to_mont(s);
        let k = self.e >> 1;
        let acc = self.n.pow(&s_mont, &[k]);
        let (mut sq, mut out, mut work) = (vec![0u32; len], vec![0u32; len], Work::new(len));
        self.n.mul(&acc, &acc, &mut sq, &mut work);
        self.n.mul(&sq, s, &mut out, &mut work);
        out
    }
}

/// EMSA-PSS-VERIFY (RFC 8017 §9.1.2) of `em_full` (the k-byte integer s^e mod n) with
/// sLen = hLen. Checks are in the RFC's order; its step numbers are in the comments.
fn emsa_pss_verify<D: Digest>(message: &[u8], em_full: &[u8], mod_bits: usize) -> bool {
    let h_len = <D as Digest>::output_size();
    let em_bits = mod_bits.saturating_sub(1);
    let em_len = em_bits.div_ceil(8);
    // §8.1.2 step 2c, I2OSP(m, emLen): when modBits - 1 is a multiple of 8, EM is one byte
    // shorter than the modulus and the integer's top byte must be zero.
    let Some((lead, em)) = em_full.len().checked_sub(em_len).and_then(|extra| em_full.split_at_checked(extra)) else {
        return false;
    };
    if lead.iter().any(|b| *b != 0) {
        return false;
    }
    // 3: emLen >= hLen + sLen + 2.
    if em_len < h_len.saturating_mul(2).saturating_add(2) {
        return false;
    }
    // 4: the last byte is 0xbc.
    let Some((&0xbc, rest)) = em.split_last() else { return false };
    // 5: maskedDB || H.
    let db_len = em_len.saturating_sub(h_len).saturating_sub(1);
    let Some((masked_db, h)) = rest.split_at_checked(db_len) else { return false };
    // 6: the 8·emLen − emBits leftmost bits of maskedDB are zero.
    let unused_bits = em_len.saturating_mul(8).saturating_sub(em_bits);
    let top_mask = 0xffu8.checked_shr(u32::try_from(unused_bits).unwrap_or(8)).unwrap_or(0);
    if masked_db.first().map_or(true, |b| b & !top_mask != 0) {
        return false;
    }
    // 7-8: DB = maskedDB xor MGF1(H).
    let mut db = masked_db.to_vec();
    mgf1_xor::<D>(h, &mut db);
    // 9: clear those bits.
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }
    // 10: DB = PS (zeros) || 0x01 || salt, with salt exactly hLen bytes.
    let ps_len = db_len.saturating_sub(h_len).saturating_sub(1);
    let Some((ps, rest)) = db.split_at_checked(ps_len) else { return false };
    let Some((&0x01, salt)) = rest.split_first() else { return false };
    if ps.iter().any(|b| *b != 0) || salt.len() != h_len {
        return false;
    }
    // 12-14: H = Hash(0x00 × 8 || mHash || salt).
    let m_hash = D::digest(message);
    let expected = D::new().chain_update([0u8; 8]).chain_update(m_hash).chain_update(salt).finalize();
    h.iter().eq(expected.iter())
}

/// out ^= MGF1(seed) (RFC 8017 §B.2.1) over the whole of `out`.
fn mgf1_xor<D: Digest>(seed: &[u8], out: &mut [u8]) {
    let h_len = <D as Digest>::output_size().max(1);
    for (counter, chunk) in (0u32..).zip(out.chunks_mut(h_len)) {
        let block = D::new().chain_update(seed).chain_update(counter.to_be_bytes()).finalize();
        for (o, b) in chunk.iter_mut().zip(block.iter()) {
            *o ^= b;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rsa::BigUint;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
        (0..len).map(|_| rng.gen()).collect()
    }

    /// A random odd modulus of exactly `len` bytes (top byte non-zero), as a prepared key.
    fn random_key(rng: &mut StdRng, len: usize, e: u32) -> (RsaPublicKey, BigUint) {
        let mut n = random_bytes(rng, len);
        n[0] |= 1 << rng.gen_range(0..8);
        *n.last_mut().unwrap() |= 1;
        let key = RsaPublicKey::new(&n, e).unwrap();
        (key, BigUint::from_bytes_be(&n))
    }

    /// Byte lengths from one limb to 8192 bits, with lengths that leave the top limb partial.
    const LENGTHS: [usize; 12] = [1, 3, 4, 5, 8, 31, 64, 129, 255, 256, 384, 1024];

    #[test]
    fn public_op_matches_bignum_for_any_odd_exponent() {
        let mut rng = StdRng::seed_from_u64(4);
        let exponents =
            [3u32, 5, 17, 65537, 0xffff_ffff, 0x8000_0001, rng.gen::<u32>() | 1, rng.gen::<u32>() >> 16 | 1];
        for len in LENGTHS.into_iter().filter(|l| *l >= 5) {
            // Debug builds are slow: 8192 bits with small exponents only.
            for e in exponents.into_iter().filter(|e| len <= 256 || *e <= 65537) {
                let (key, n) = random_key(&mut rng, len, e);
                for s in [BigUint::from(0u8), BigUint::from(1u8), &n - BigUint::from(1u8)]
                    .into_iter()
                    .chain((0..3).map(|_| BigUint::from_bytes_be(&random_bytes(&mut rng, len)) % &n))
                {
                    let mut sig = s.to_bytes_be();
                    sig = [vec![0u8; len - sig.len().min(len)], sig].concat();
                    if s == BigUint::from(0u8) {
                        sig = vec![0u8; len];
                    }
                    let m = key.public_op(&sig).unwrap();
                    assert_eq!(m.len(), len);
                    assert_eq!(BigUint::from_bytes_be(&m), s.modpow(&BigUint::from(e), &n), "{len} bytes, e = {e}");
                }
            }
        }
    }

    #[test]
    fn keys_outside_the_math_are_refused() {
        let n = [0xc5u8; 256];
        assert!(RsaPublicKey::new(&n, 65537).is_ok());
        assert_eq!(RsaPublicKey::new(&[0xc4; 256], 65537).unwrap_err(), KeyError::EvenModulus);
        assert_eq!(RsaPublicKey::new(&[], 65537).unwrap_err(), KeyError::EvenModulus);
        assert_eq!(RsaPublicKey::new(&[0, 0], 3).unwrap_err(), KeyError::EvenModulus);
        assert_eq!(RsaPublicKey::new(&n, 65536).unwrap_err(), KeyError::EvenExponent);
        assert_eq!(RsaPublicKey::new(&n, 1).unwrap_err(), KeyError::ExponentTooSmall);
        assert_eq!(RsaPublicKey::new(&n, 0).unwrap_err(), KeyError::ExponentTooSmall);
        assert_eq!(RsaPublicKey::new(&[0x01, 0x00, 0x01], 65537).unwrap_err(), KeyError::ExponentNotBelowModulus);
        assert_eq!(RsaPublicKey::new(&[0, 0, 0x01, 0x00, 0x03], 65537).unwrap().size(), 3);
        assert_eq!(RsaPublicKey::new(&[0xff; 4], u32::MAX).unwrap_err(), KeyError::ExponentNotBelowModulus);
        assert!(RsaPublicKey::new(&[0x01, 0, 0, 0, 1], u32::MAX).is_ok());
        assert!(RsaPublicKey::new(&vec![0xc5; MAX_MODULUS_BYTES], 3).is_ok());
        assert_eq!(RsaPublicKey::new(&vec![0xc5; MAX_MODULUS_BYTES + 1], 3).unwrap_err(), KeyError::ModulusTooLarge);
    }

    #[test]
    fn sizes_and_encodings() {
        let mut n = vec![0u8, 0x01];
        n.extend([0x23u8; 255]);
        let key = RsaPublicKey::new(&n, 65537).unwrap();
        assert_eq!((key.bits(), key.size()), (2041, 256));
        assert_eq!(key.n_be(), &n[1..]);
        assert_eq!(key.e_be(), [1, 0, 1]);
        assert_eq!(RsaPublicKey::new(&n, 3).unwrap().e_be(), [3]);
        assert_eq!(RsaPublicKey::new(&n, u32::MAX).unwrap().e_be(), [0xff; 4]);
        assert_eq!(format!("{key:?}"), "RsaPublicKey(2041 bits)");
        assert_eq!(be_bits(&[]), 0);
        assert_eq!(be_bits(&[0, 0]), 0);
        assert_eq!(be_bits(&[0, 1]), 1);
        assert_eq!(be_bits(&[0x80, 0]), 16);
    }

    #[test]
    fn signature_range_and_length() {
        let n = [0xc5u8; 256];
        let key = RsaPublicKey::new(&n, 65537).unwrap();
        assert!(key.signature_in_range(&[0u8; 256]));
        let mut below = n;
        below[255] -= 1;
        assert!(key.signature_in_range(&below));
        assert!(!key.signature_in_range(&n));
        assert!(!key.signature_in_range(&[0xff; 256]));
        assert!(!key.signature_in_range(&[0u8; 255]));
        assert!(!key.signature_in_range(&[0u8; 257]));
        assert!(!key.signature_in_range(&[]));
        assert_eq!(key.public_op(&n), None);
        for hash in [Hash::Sha256, Hash::Sha384, Hash::Sha512] {
            assert!(!key.verify_pkcs1v15(hash, b"m", &n));
            assert!(!key.verify_pss(hash, b"m", &n));
            assert!(!key.verify_pkcs1v15(hash, b"m", &[]));
            assert!(!key.verify_pss(hash, b"m", &[]));
        }
    }

    #[test]
    fn tiny_moduli_refuse_every_signature_without_panicking() {
        // Too short for any encoding: both paddings say no for every signature.
        for n in [&[0x05u8][..], &[0x01, 0x01], &[0xff; 40], &[0xff; 64]] {
            let key = RsaPublicKey::new(n, 3).unwrap();
            for s in 0..=255u8 {
                let mut sig = vec![0u8; n.len()];
                *sig.last_mut().unwrap() = s;
                for hash in [Hash::Sha256, Hash::Sha384, Hash::Sha512] {
                    assert!(!key.verify_pkcs1v15(hash, b"m", &sig));
                    assert!(!key.verify_pss(hash, b"m", &sig));
                }
            }
        }
    }
}
