//! Differential: the plugin's ECDSA verification (`jwt_authn_wasm::ecdsa`) against the p256
//! and p384 crates, which must give the same verdict on every input, and refuse the same points.
//!
//! Input: byte 0 picks the curve (bit 0), the key (bits 1-2) and the mode (bits 3-4); the rest is
//! the payload:
//! - mode 0: the payload is the signature itself over a fixed message (lengths, ranges);
//! - mode 1: `[message length][message][edits: position, xor]…` — a valid signature of that
//!   message, its high-s twin when the first edit byte is odd, then the edits applied;
//! - mode 2: the payload is x ‖ y of a public key (each the field length, zero-padded), which
//!   both must accept or refuse alike; an accepted one then checks the fixed signature;
//! - mode 3: r ‖ s built from the payload's small integers (0, 1, n − 1, n, n + k …).
#![no_main]

use jwt_authn_wasm::ecdsa::{P256PublicKey, P384PublicKey};
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::OnceLock;

const N256: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const N384: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Big-endian a + b on the same length, wrapping (fuzz-shaped values, not arithmetic under test).
fn add_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut carry = 0u16;
    for i in (0..a.len()).rev() {
        let v = u16::from(a[i]) + u16::from(b[i]) + carry;
        out[i] = v as u8;
        carry = v >> 8;
    }
    out
}

/// a − b (wrapping), big-endian, same length.
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let v = i16::from(a[i]) - i16::from(b[i]) - borrow;
        out[i] = v as u8;
        borrow = i16::from(v < 0);
    }
    out
}

fn small(v: u8, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    out[len - 1] = v;
    out
}

macro_rules! curve {
    ($module:ident, $krate:ident, $ours:ident, $field:expr, $n:expr) => {
        mod $module {
            use super::*;
            use $krate::ecdsa::signature::{Signer, Verifier};
            use $krate::ecdsa::{Signature, SigningKey, VerifyingKey};

            pub const FIELD: usize = $field;

            pub struct Key {
                signing: SigningKey,
                ours: $ours,
            }

            pub fn keys() -> &'static [Key] {
                static KEYS: OnceLock<Vec<Key>> = OnceLock::new();
                KEYS.get_or_init(|| {
                    (0..4u64)
                        .map(|seed| {
                            let signing = SigningKey::random(&mut StdRng::seed_from_u64(seed));
                            let point = signing.verifying_key().to_encoded_point(false);
                            let ours = $ours::from_coordinates(point.x().unwrap(), point.y().unwrap()).unwrap();
                            Key { signing, ours }
                        })
                        .collect()
                })
            }

            pub fn n() -> Vec<u8> {
                hex($n)
            }

            /// n − s: the high-s twin's s.
            pub fn sub_n(s: &[u8]) -> Vec<u8> {
                sub_be(&n(), s)
            }

            pub fn sign(key: &Key, msg: &[u8]) -> Vec<u8> {
                let sig: Signature = key.signing.sign(msg);
                sig.to_bytes().to_vec()
            }

            fn reference(vk: &VerifyingKey, msg: &[u8], sig: &[u8]) -> bool {
                Signature::from_slice(sig).is_ok_and(|s| vk.verify(msg, &s).is_ok())
            }

            pub fn check(key: &Key, msg: &[u8], sig: &[u8]) {
                let want = reference(key.signing.verifying_key(), msg, sig);
                assert_eq!(key.ours.verify(msg, sig), want, "msg {msg:02x?} sig {sig:02x?}");
                assert_eq!(key.ours.signature_in_range(sig), Signature::from_slice(sig).is_ok());
            }

            /// Both accept or refuse the point; an accepted one verifies like the crate.
            pub fn check_point(x: &[u8], y: &[u8], msg: &[u8], sig: &[u8]) {
                let theirs = VerifyingKey::from_sec1_bytes(&[&[4u8][..], x, y].concat());
                let ours = $ours::from_coordinates(x, y);
                assert_eq!(ours.is_ok(), theirs.is_ok(), "x {x:02x?} y {y:02x?}");
                if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
                    assert_eq!(ours.verify(msg, sig), reference(&theirs, msg, sig));
                }
            }
        }
    };
}

curve!(c256, p256, P256PublicKey, 32, N256);
curve!(c384, p384, P384PublicKey, 48, N384);

macro_rules! run {
    ($c:ident, $key_pick:expr, $mode:expr, $payload:expr) => {{
        let keys = $c::keys();
        let key = &keys[$key_pick % keys.len()];
        let f = $c::FIELD;
        let payload: &[u8] = $payload;
        let fixed_msg = b"fuzz";
        match $mode {
            0 => $c::check(key, fixed_msg, payload),
            1 => {
                let Some((&msg_len, rest)) = payload.split_first() else { return };
                let msg_len = usize::from(msg_len).min(rest.len());
                let (msg, edits) = rest.split_at(msg_len);
                let mut sig = $c::sign(key, msg);
                if edits.first().is_some_and(|b| b & 1 == 1) {
                    let s = $c::sub_n(&sig[f..]);
                    sig.truncate(f);
                    sig.extend(s);
                }
                for pair in edits.chunks_exact(2) {
                    let i = usize::from(pair[0]) % sig.len();
                    sig[i] ^= pair[1];
                }
                $c::check(key, msg, &sig);
            }
            2 => {
                let mut coords = payload.to_vec();
                coords.resize(2 * f, 0);
                let (x, y) = coords.split_at(f);
                let sig = $c::sign(key, fixed_msg);
                $c::check_point(x, y, fixed_msg, &sig);
            }
            _ => {
                // Two scalars from one byte each: 0..=3 → 0, 1, n − 1, n; else n + k or k.
                let n = $c::n();
                let scalar = |b: u8| match b {
                    0 => vec![0u8; f],
                    1 => small(1, f),
                    2 => sub_be(&n, &small(1, f)),
                    3 => n.clone(),
                    b if b & 0x80 != 0 => add_be(&n, &small(b & 0x7f, f)),
                    b => small(b, f),
                };
                let (a, b) = (payload.first().copied().unwrap_or(0), payload.get(1).copied().unwrap_or(0));
                $c::check(key, fixed_msg, &[scalar(a), scalar(b)].concat());
            }
        }
    }};
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, payload)) = data.split_first() else { return };
    let key_pick = usize::from((pick >> 1) & 3);
    let mode = (pick >> 3) & 3;
    if pick & 1 == 0 {
        run!(c256, key_pick, mode, payload);
    } else {
        run!(c384, key_pick, mode, payload);
    }
});
