//! Differential: the plugin's RSA verification (`jwt_authn_wasm::rsa`) against the `rsa`
//! crate, which must give the same verdict on every input. Random signatures almost never
//! open to a well-formed encoding, so the fuzzer mostly shapes the *encoding*, which is then
//! signed with the raw private key: near-valid PKCS#1 v1.5 and PSS encodings reach every
//! check of both verifiers.
//!
//! Input: byte 0 picks the key (1040, 1041 or 1045 bits: SHA-512 PSS only just fits, EM one
//! byte shorter than the modulus, unused top bits), byte 1 the padding (bit 0), the hash (bits
//! 1-2) and the mode (bits 3-4); the rest is the payload:
//! - mode 0: the payload is the signature itself (lengths, range);
//! - mode 1: the payload is the encoding (left-padded or cut to the modulus length);
//! - mode 2: `[message length][message][salt length][edits: position (2 bytes), xor]…` — the
//!   valid encoding of that message (PSS with that salt length), then the edits applied.
//!
//! One disagreement is known and checked instead: when modBits ≡ 1 (mod 8) the crate ignores
//! the byte above the PSS encoding, which RFC 8017 requires to be zero and we check.
#![no_main]

use jwt_authn_wasm::rsa::{Hash, RsaPublicKey};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use std::sync::OnceLock;

struct Key {
    private: RsaPrivateKey,
    public: rsa::RsaPublicKey,
    ours: RsaPublicKey,
}

/// Small keys keep an execution cheap; the arithmetic does not depend on the size, and the
/// unit and differential tests cover 2048-4096 bits.
fn keys() -> &'static [Key] {
    static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [(1u64, 1040usize), (2, 1041), (3, 1045)]
            .into_iter()
            .map(|(seed, bits)| {
                let mut rng = StdRng::seed_from_u64(seed);
                let private = RsaPrivateKey::new(&mut rng, bits).expect("keygen");
                let public = private.to_public_key();
                let ours = RsaPublicKey::new(&public.n().to_bytes_be(), 65537).expect("our key");
                Key { private, public, ours }
            })
            .collect()
    })
}

const HASHES: [Hash; 3] = [Hash::Sha256, Hash::Sha384, Hash::Sha512];

fn digest(hash: Hash, data: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha256 => Sha256::digest(data).to_vec(),
        Hash::Sha384 => Sha384::digest(data).to_vec(),
        Hash::Sha512 => Sha512::digest(data).to_vec(),
    }
}

fn digest_info_prefix(hash: Hash) -> Vec<u8> {
    let (len, id) = match hash {
        Hash::Sha256 => (0x20u8, 1u8),
        Hash::Sha384 => (0x30, 2),
        Hash::Sha512 => (0x40, 3),
    };
    vec![0x30, len + 0x11, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, id, 0x05, 0x00, 0x04, len]
}

/// The valid encoding of `msg` as a k-byte integer, or None when the parameters do not fit.
fn encode(key: &Key, pss: bool, hash: Hash, msg: &[u8], salt_len: usize) -> Option<Vec<u8>> {
    let k = key.public.size();
    let d = digest(hash, msg);
    if !pss {
        let prefix = digest_info_prefix(hash);
        let ps = k.checked_sub(3 + prefix.len() + d.len())?;
        let mut em = vec![0x00, 0x01];
        em.extend(std::iter::repeat(0xff).take(ps));
        em.push(0);
        em.extend(prefix);
        em.extend(d);
        return Some(em);
    }
    let h_len = d.len();
    let em_bits = key.ours.bits() - 1;
    let em_len = em_bits.div_ceil(8);
    let ps_len = em_len.checked_sub(salt_len + h_len + 2)?;
    let salt: Vec<u8> = (0..salt_len).map(|i| i as u8 ^ 0x5a).collect();
    let h = digest(hash, &[&[0u8; 8][..], &d, &salt].concat());
    let mut db = vec![0u8; ps_len];
    db.push(1);
    db.extend(&salt);
    let mut mask = Vec::new();
    for counter in 0u32.. {
        if mask.len() >= db.len() {
            break;
        }
        mask.extend(digest(hash, &[&h[..], &counter.to_be_bytes()].concat()));
    }
    let mut em: Vec<u8> = db.iter().zip(&mask).map(|(a, b)| a ^ b).collect();
    em[0] &= 0xff >> (8 * em_len - em_bits);
    em.extend(h);
    em.push(0xbc);
    Some([vec![0u8; k - em_len], em].concat())
}

/// The signature opening to `em`, if `em` is below n.
fn sign_raw(key: &Key, em: &[u8]) -> Option<Vec<u8>> {
    let m = BigUint::from_bytes_be(em);
    if m >= *key.public.n() {
        return None;
    }
    let s = rsa::hazmat::rsa_decrypt_and_check(&key.private, None::<&mut StdRng>, &m).ok()?.to_bytes_be();
    Some([vec![0u8; key.public.size() - s.len()], s].concat())
}

fn reference(key: &Key, pss: bool, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
    if sig.len() != key.public.size() || BigUint::from_bytes_be(sig) >= *key.public.n() {
        return false;
    }
    let d = digest(hash, msg);
    let scheme_ok = |r: rsa::Result<()>| r.is_ok();
    match (pss, hash) {
        (false, Hash::Sha256) => scheme_ok(key.public.verify(Pkcs1v15Sign::new::<Sha256>(), &d, sig)),
        (false, Hash::Sha384) => scheme_ok(key.public.verify(Pkcs1v15Sign::new::<Sha384>(), &d, sig)),
        (false, Hash::Sha512) => scheme_ok(key.public.verify(Pkcs1v15Sign::new::<Sha512>(), &d, sig)),
        (true, Hash::Sha256) => scheme_ok(key.public.verify(Pss::new::<Sha256>(), &d, sig)),
        (true, Hash::Sha384) => scheme_ok(key.public.verify(Pss::new::<Sha384>(), &d, sig)),
        (true, Hash::Sha512) => scheme_ok(key.public.verify(Pss::new::<Sha512>(), &d, sig)),
    }
}

fuzz_target!(|data: &[u8]| {
    let (Some(&pick), Some(&flags)) = (data.first(), data.get(1)) else { return };
    let payload = &data[2..];
    let keys = keys();
    let key = &keys[usize::from(pick) % keys.len()];
    let k = key.public.size();
    let pss = flags & 1 == 1;
    let hash = HASHES[usize::from((flags >> 1) & 3) % 3];
    let mut msg: Vec<u8> = b"fuzz".to_vec();
    let sig = match (flags >> 3) & 3 {
        0 => payload.to_vec(),
        1 => {
            let em: Vec<u8> = if payload.len() >= k {
                payload[..k].to_vec()
            } else {
                [vec![0u8; k - payload.len()], payload.to_vec()].concat()
            };
            let Some(sig) = sign_raw(key, &em) else { return };
            sig
        }
        _ => {
            let Some((&msg_len, rest)) = payload.split_first() else { return };
            let msg_len = usize::from(msg_len).min(rest.len());
            msg = rest[..msg_len].to_vec();
            let rest = &rest[msg_len..];
            let h_len = digest(hash, b"").len();
            let salt_len = rest.first().map_or(h_len, |b| usize::from(*b));
            let Some(mut em) = encode(key, pss, hash, &msg, salt_len) else { return };
            for edit in rest.get(1..).unwrap_or_default().chunks_exact(3) {
                let pos = usize::from(u16::from_be_bytes([edit[0], edit[1]])) % k;
                em[pos] ^= edit[2];
            }
            let Some(sig) = sign_raw(key, &em) else { return };
            sig
        }
    };
    let ours = if pss { key.ours.verify_pss(hash, &msg, &sig) } else { key.ours.verify_pkcs1v15(hash, &msg, &sig) };
    let theirs = reference(key, pss, hash, &msg, &sig);
    let top_byte_set = key.ours.public_op(&sig).is_some_and(|m| m[0] != 0);
    if pss && key.ours.bits() % 8 == 1 && top_byte_set {
        assert!(!ours, "a non-zero byte above the PSS encoding must be refused");
    } else {
        assert_eq!(ours, theirs, "key {} bits, pss {pss}, {hash:?}, signature {sig:02x?}", key.ours.bits());
    }
});
