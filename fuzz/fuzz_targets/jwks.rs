//! Arbitrary bytes as a JWKS document (`jwk::parse_jwks`): whatever parses must be usable —
//! key selection for every algorithm, and a verification with each selected key.
#![no_main]

use jwt_authn_wasm::crypto::{PureRust, SignatureVerifier};
use jwt_authn_wasm::jwk::{parse_jwks, Alg};
use libfuzzer_sys::fuzz_target;

const MSG: &[u8] = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9";

fuzz_target!(|data: &[u8]| {
    let parsed = match parse_jwks(data) {
        Ok(p) => p,
        Err(e) => {
            std::hint::black_box(e.to_string());
            return;
        }
    };
    for s in &parsed.skipped {
        std::hint::black_box(format!("{s:?}"));
    }
    let first_kid = parsed.set.keys.iter().find_map(|k| k.kid.as_deref());
    for alg in Alg::ALL {
        for kid in [None, first_kid, Some("k1")] {
            std::hint::black_box(parsed.set.candidates(kid, alg).take(4).count());
        }
    }
    // One verification per input (an 8192-bit key is slow), with the first key, as the first
    // algorithm it accepts.
    if let Some((key, alg)) =
        parsed.set.keys.first().and_then(|k| Alg::ALL.into_iter().find(|a| k.accepts(*a)).map(|a| (k, a)))
    {
        let sig = match alg {
            Alg::ES256 => vec![1u8; 64],
            Alg::ES384 => vec![1u8; 96],
            _ => vec![1u8; key.key.bits().div_ceil(8)],
        };
        let _ = PureRust.verify(alg, key, MSG, &sig);
    }
    for k in &parsed.set.keys {
        std::hint::black_box(format!("{k:?}"));
        if let Some(kid) = &k.kid {
            assert!(parsed.set.has_kid(kid));
        }
    }
});
