//! Our RSA verification (`jwt_authn_wasm::rsa`) against the `rsa` crate it replaced, on keys
//! generated here from a fixed seed: 2048/3072/4096 bits, moduli whose bit length is not a
//! multiple of 8, and public exponents other than 65537. Both must give the same verdict on
//! valid signatures, bit flips, out-of-range and wrongly sized values, signatures checked under
//! the wrong hash or padding, and hand-made encodings (signed with the raw private key) that
//! break one rule of the padding at a time.
//!
//! The reference verdict is the crate's verify behind the same range check the plugin applied
//! before (length = modulus length, s < n): the crate's PSS path skips the latter.

use jwt_authn_wasm::rsa::{Hash, RsaPublicKey};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey};
use sha2::{Digest, Sha256, Sha384, Sha512};

const HASHES: [Hash; 3] = [Hash::Sha256, Hash::Sha384, Hash::Sha512];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Padding {
    Pkcs1,
    Pss,
}

fn digest(hash: Hash, msg: &[u8]) -> Vec<u8> {
    match hash {
        Hash::Sha256 => Sha256::digest(msg).to_vec(),
        Hash::Sha384 => Sha384::digest(msg).to_vec(),
        Hash::Sha512 => Sha512::digest(msg).to_vec(),
    }
}

struct Pair {
    private: RsaPrivateKey,
    reference: rsa::RsaPublicKey,
    ours: RsaPublicKey,
}

impl Pair {
    fn generate(rng: &mut StdRng, bits: usize, e: u32) -> Pair {
        let private = RsaPrivateKey::new_with_exp(rng, bits, &BigUint::from(e)).expect("keygen");
        let reference = private.to_public_key();
        assert_eq!(reference.n().bits(), bits);
        let ours = RsaPublicKey::new(&reference.n().to_bytes_be(), e).expect("our key");
        assert_eq!((ours.bits(), ours.size()), (bits, reference.size()));
        assert_eq!(ours.n_be(), reference.n().to_bytes_be());
        assert_eq!(BigUint::from_bytes_be(&ours.e_be()), *reference.e());
        Pair { private, reference, ours }
    }

    fn k(&self) -> usize {
        self.reference.size()
    }

    fn sign(&self, rng: &mut StdRng, padding: Padding, hash: Hash, msg: &[u8]) -> Vec<u8> {
        let d = digest(hash, msg);
        let sig = match padding {
            Padding::Pkcs1 => self.private.sign(pkcs1(hash), &d),
            Padding::Pss => self.private.sign_with_rng(rng, pss(hash), &d),
        };
        sig.expect("sign")
    }

    /// The signature whose public operation gives exactly `em` (k bytes, below n).
    fn raw_sign(&self, em: &[u8]) -> Vec<u8> {
        let m = BigUint::from_bytes_be(em);
        let s = rsa::hazmat::rsa_decrypt_and_check(&self.private, None::<&mut StdRng>, &m).expect("m < n");
        let s = s.to_bytes_be();
        [vec![0u8; self.k() - s.len()], s].concat()
    }

    fn ours(&self, padding: Padding, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        match padding {
            Padding::Pkcs1 => self.ours.verify_pkcs1v15(hash, msg, sig),
            Padding::Pss => self.ours.verify_pss(hash, msg, sig),
        }
    }

    fn reference(&self, padding: Padding, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
        let key = &self.reference;
        if sig.len() != key.size() || BigUint::from_bytes_be(sig) >= *key.n() {
            return false;
        }
        let d = digest(hash, msg);
        match padding {
            Padding::Pkcs1 => key.verify(pkcs1(hash), &d, sig).is_ok(),
            Padding::Pss => key.verify(pss(hash), &d, sig).is_ok(),
        }
    }

    /// Both verdicts, asserted equal; returns it.
    fn same(&self, padding: Padding, hash: Hash, msg: &[u8], sig: &[u8], what: &str) -> bool {
        let ours = self.ours(padding, hash, msg, sig);
        let reference = self.reference(padding, hash, msg, sig);
        assert_eq!(ours, reference, "{} bits, e = {}, {padding:?} {hash:?}: {what}", self.ours.bits(), self.ours.e());
        ours
    }
}

fn pkcs1(hash: Hash) -> Pkcs1v15Sign {
    match hash {
        Hash::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
        Hash::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
        Hash::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
    }
}

/// Salt length = hash length, as in the plugin.
fn pss(hash: Hash) -> Pss {
    match hash {
        Hash::Sha256 => Pss::new::<Sha256>(),
        Hash::Sha384 => Pss::new::<Sha384>(),
        Hash::Sha512 => Pss::new::<Sha512>(),
    }
}

/// Signatures made by the crate, then broken in the ways an attacker or a buggy IdP would.
fn signatures_agree(pair: &Pair, rng: &mut StdRng, messages: usize) {
    let k = pair.k();
    let n = pair.reference.n().to_bytes_be();
    for padding in [Padding::Pkcs1, Padding::Pss] {
        for hash in HASHES {
            for _ in 0..messages {
                let len = rng.gen_range(0..300);
                let msg: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
                let sig = pair.sign(rng, padding, hash, &msg);
                assert!(pair.same(padding, hash, &msg, &sig, "valid signature"));
                for _ in 0..3 {
                    let mut bad = sig.clone();
                    let bit = rng.gen_range(0..k * 8);
                    bad[bit / 8] ^= 1 << (bit % 8);
                    assert!(!pair.same(padding, hash, &msg, &bad, &format!("bit {bit} flipped")));
                }
                let mut other_msg = msg.clone();
                other_msg.push(0);
                assert!(!pair.same(padding, hash, &other_msg, &sig, "other message"));
                // Range: s + n when it fits (congruent, so the math alone would accept it), n,
                // all ones, zero, one, n − 1.
                let s_plus_n = (BigUint::from_bytes_be(&sig) + pair.reference.n()).to_bytes_be();
                if s_plus_n.len() == k {
                    assert!(!pair.same(padding, hash, &msg, &s_plus_n, "s + n"));
                }
                let one = [vec![0u8; k - 1], vec![1]].concat();
                let n_minus_1 = (pair.reference.n() - BigUint::from(1u8)).to_bytes_be();
                for (what, value) in [
                    ("n", n.clone()),
                    ("all ones", vec![0xff; k]),
                    ("zero", vec![0; k]),
                    ("one", one),
                    ("n - 1", n_minus_1),
                ] {
                    assert!(!pair.same(padding, hash, &msg, &value, what));
                }
                // Lengths: the same integer with a leading zero, and one byte short or long.
                let longer = [&[0u8][..], &sig].concat();
                assert!(!pair.same(padding, hash, &msg, &longer, "leading zero byte"));
                assert!(!pair.same(padding, hash, &msg, &sig[1..], "first byte dropped"));
                assert!(!pair.same(padding, hash, &msg, &sig[..k - 1], "last byte dropped"));
                assert!(!pair.same(padding, hash, &msg, &[&sig[..], &[0u8][..]].concat(), "trailing zero byte"));
                assert!(!pair.same(padding, hash, &msg, &[], "empty"));
                // The right signature under another hash or the other padding.
                for other_hash in HASHES.into_iter().filter(|h| *h != hash) {
                    assert!(!pair.same(padding, other_hash, &msg, &sig, &format!("verified as {other_hash:?}")));
                }
                let other_padding = if padding == Padding::Pkcs1 { Padding::Pss } else { Padding::Pkcs1 };
                for h in HASHES {
                    assert!(!pair.same(other_padding, h, &msg, &sig, &format!("verified as {other_padding:?} {h:?}")));
                }
                // Garbage below n.
                let garbage =
                    BigUint::from_bytes_be(&(0..k).map(|_| rng.gen()).collect::<Vec<u8>>()) % pair.reference.n();
                let garbage = garbage.to_bytes_be();
                let garbage = [vec![0u8; k - garbage.len()], garbage].concat();
                assert!(!pair.same(padding, hash, &msg, &garbage, "random value below n"));
            }
        }
    }
}

fn digest_info_prefix(hash: Hash) -> Vec<u8> {
    let (len, id) = match hash {
        Hash::Sha256 => (0x20u8, 1u8),
        Hash::Sha384 => (0x30, 2),
        Hash::Sha512 => (0x40, 3),
    };
    vec![
        0x30,
        len + 0x11,
        0x30,
        0x0d,
        0x06,
        0x09,
        0x60,
        0x86,
        0x48,
        0x01,
        0x65,
        0x03,
        0x04,
        0x02,
        id,
        0x05,
        0x00,
        0x04,
        len,
    ]
}

/// EMSA-PKCS1-v1_5 with the parts given: `00 01 FF… 00 prefix digest`, `ps_len` bytes of FF.
fn pkcs1_em(k: usize, block_type: u8, ps_len: usize, prefix: &[u8], digest: &[u8]) -> Vec<u8> {
    let mut em = vec![0x00, block_type];
    em.extend(std::iter::repeat(0xff).take(ps_len));
    em.push(0x00);
    em.extend(prefix);
    em.extend(digest);
    assert!(em.len() <= k);
    em
}

/// Hand-made PKCS#1 v1.5 encodings: the correct one, then one broken rule each.
fn pkcs1_encodings_agree(pair: &Pair) {
    let k = pair.k();
    let msg = b"hand-made encodings";
    for hash in HASHES {
        let d = digest(hash, msg);
        let prefix = digest_info_prefix(hash);
        let ps = k - 3 - prefix.len() - d.len();
        let good = pkcs1_em(k, 1, ps, &prefix, &d);
        assert_eq!(good.len(), k);
        assert!(pair.same(Padding::Pkcs1, hash, msg, &pair.raw_sign(&good), "hand-made valid encoding"));
        // The DigestInfo without its NULL parameter (legal in old encoders, refused here).
        let mut no_null = prefix.clone();
        no_null.drain(15..17);
        no_null[1] -= 2;
        no_null[3] -= 2;
        let mut broken: Vec<(&str, Vec<u8>)> = vec![
            ("block type 2", pkcs1_em(k, 2, ps, &prefix, &d)),
            ("DigestInfo without NULL", pkcs1_em(k, 1, ps + 2, &no_null, &d)),
            ("digest of another message", pkcs1_em(k, 1, ps, &prefix, &digest(hash, b"other"))),
        ];
        let mut last = good.clone();
        *last.last_mut().unwrap() ^= 1;
        broken.push(("last digest byte", last));
        let mut hole = good.clone();
        hole[2 + ps / 2] = 0xfe;
        broken.push(("a padding byte not FF", hole));
        let mut separator = good.clone();
        separator[2 + ps] = 0x01;
        broken.push(("separator not zero", separator));
        // Padding shortened by one byte, the digest shifted right into a trailing zero.
        let mut shifted = pkcs1_em(k, 1, ps - 1, &prefix, &d);
        shifted.push(0);
        broken.push(("garbage after the digest", shifted));
        for (what, em) in broken {
            assert_eq!(em.len(), k, "{what}");
            assert!(!pair.same(Padding::Pkcs1, hash, msg, &pair.raw_sign(&em), what));
        }
    }
}

/// MGF1 (RFC 8017 §B.2.1), for the hand-made PSS encodings.
fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counter = 0u32;
    while out.len() < len {
        out.extend(digest(hash, &[seed, &counter.to_be_bytes()].concat()));
        counter += 1;
    }
    out.truncate(len);
    out
}

/// Knobs for a hand-made EMSA-PSS encoding; the default is the valid one.
#[derive(Clone, Copy)]
struct PssEm {
    salt_len: usize,
    separator: u8,
    trailer: u8,
    /// OR-ed into the top byte of maskedDB after its unused bits are cleared.
    top_bits: u8,
    /// The byte before EM when EM is one byte shorter than the modulus.
    lead: u8,
    /// XOR-ed into the first byte of the zero padding PS.
    ps_flip: u8,
}

const PSS_VALID: PssEm = PssEm { salt_len: usize::MAX, separator: 1, trailer: 0xbc, top_bits: 0, lead: 0, ps_flip: 0 };

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with knobs, as the k-byte integer to sign.
fn pss_em(pair: &Pair, hash: Hash, msg: &[u8], knobs: PssEm) -> Vec<u8> {
    let h_len = digest(hash, b"").len();
    let salt_len = if knobs.salt_len == usize::MAX { h_len } else { knobs.salt_len };
    let em_bits = pair.ours.bits() - 1;
    let em_len = em_bits.div_ceil(8);
    let salt: Vec<u8> = (0..salt_len).map(|i| (i * 7 + 1) as u8).collect();
    let m_prime = [&[0u8; 8][..], &digest(hash, msg), &salt].concat();
    let h = digest(hash, &m_prime);
    let ps_len = em_len - salt_len - h_len - 2;
    let mut db = vec![0u8; ps_len];
    if let Some(first) = db.first_mut() {
        *first ^= knobs.ps_flip;
    }
    db.push(knobs.separator);
    db.extend(&salt);
    let mask = mgf1(hash, &h, db.len());
    let mut masked: Vec<u8> = db.iter().zip(&mask).map(|(a, b)| a ^ b).collect();
    masked[0] &= 0xff >> (8 * em_len - em_bits);
    masked[0] |= knobs.top_bits;
    let mut em = masked;
    em.extend(&h);
    em.push(knobs.trailer);
    let lead = vec![knobs.lead; pair.k() - em_len];
    [lead, em].concat()
}

/// Hand-made PSS encodings: valid, then one broken rule each. One disagreement is expected
/// and checked: when modBits − 1 is a multiple of 8, EM is one byte shorter than the modulus
/// and RFC 8017 (§8.1.2 step 2c, I2OSP) requires the byte before it to be zero; the crate
/// drops that byte unchecked, we refuse it.
fn pss_encodings_agree(pair: &Pair) {
    let msg = b"hand-made PSS encodings";
    let rem = pair.ours.bits() % 8;
    let n = pair.reference.n();
    for hash in HASHES {
        let h_len = digest(hash, b"").len();
        // None when the encoding, as an integer, is not below n: no signature gives it.
        let sign = |knobs| {
            let em = pss_em(pair, hash, msg, knobs);
            (BigUint::from_bytes_be(&em) < *n).then(|| pair.raw_sign(&em))
        };
        let valid = sign(PSS_VALID).expect("a valid encoding is below n");
        assert!(pair.same(Padding::Pss, hash, msg, &valid, "hand-made valid encoding"));
        let mut broken = vec![
            ("empty salt", PssEm { salt_len: 0, ..PSS_VALID }),
            ("20-byte salt", PssEm { salt_len: 20, ..PSS_VALID }),
            ("salt one byte longer", PssEm { salt_len: h_len + 1, ..PSS_VALID }),
            ("salt one byte shorter", PssEm { salt_len: h_len - 1, ..PSS_VALID }),
            ("separator 0x02", PssEm { separator: 2, ..PSS_VALID }),
            ("separator 0x00", PssEm { separator: 0, ..PSS_VALID }),
            ("trailer 0xbd", PssEm { trailer: 0xbd, ..PSS_VALID }),
            ("trailer 0x00", PssEm { trailer: 0, ..PSS_VALID }),
            ("non-zero padding", PssEm { ps_flip: 0x01, ..PSS_VALID }),
        ];
        if rem != 1 {
            // maskedDB has 8·emLen − emBits unused top bits (1 when modBits ≡ 0 mod 8, else
            // 9 − modBits mod 8): set the lowest of them.
            let unused = if rem == 0 { 1 } else { 9 - rem };
            broken.push(("an unused top bit set", PssEm { top_bits: 0x80 >> (unused - 1), ..PSS_VALID }));
        }
        for (what, knobs) in broken {
            if let Some(sig) = sign(knobs) {
                assert!(!pair.same(Padding::Pss, hash, msg, &sig, what));
            }
        }
        if rem == 1 {
            // modBits ≡ 1 (mod 8): the top byte of n is 0x01, so the byte before EM can be 1
            // for messages whose EM is below the rest of n (about half of them).
            let (msg, sig) = (0u32..64)
                .find_map(|i| {
                    let msg = format!("lead byte {i}").into_bytes();
                    let em = pss_em(pair, hash, &msg, PssEm { lead: 1, ..PSS_VALID });
                    (BigUint::from_bytes_be(&em) < *n).then(|| (msg, pair.raw_sign(&em)))
                })
                .expect("one of 64 messages fits");
            assert!(!pair.ours(Padding::Pss, hash, &msg, &sig), "non-zero byte before EM must be refused");
            assert!(pair.reference(Padding::Pss, hash, &msg, &sig), "the crate ignores that byte (known leniency)");
        }
    }
}

fn run(seed: u64, bits: usize, e: u32, messages: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let pair = Pair::generate(&mut rng, bits, e);
    signatures_agree(&pair, &mut rng, messages);
    pkcs1_encodings_agree(&pair);
    pss_encodings_agree(&pair);
}

#[test]
fn rsa_2048_e65537() {
    run(1, 2048, 65537, 3);
}

#[test]
fn rsa_2048_other_exponents() {
    let e_random = StdRng::seed_from_u64(99).gen::<u32>() | 1;
    for (seed, e) in [(2, 3), (3, 5), (4, 17), (5, 0xffff_ffff), (6, e_random)] {
        run(seed, 2048, e, 1);
    }
}

#[test]
fn rsa_bit_lengths_not_multiples_of_8() {
    // 2049: EM one byte shorter than the modulus; 2050 and 2055: unused top bits in EM.
    for (seed, bits) in [(7, 2049), (8, 2050), (9, 2055), (10, 2057)] {
        run(seed, bits, 65537, 1);
    }
}

#[test]
fn rsa_3072() {
    run(11, 3072, 65537, 1);
}

#[test]
fn rsa_4096() {
    run(13, 4096, 65537, 1);
}
