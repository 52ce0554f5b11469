//! Signature verification inside wasm: the plugin's own RSA (src/rsa.rs, compiled in from the
//! plugin's source) against the `rsa` crate it replaced and other candidates, on one 2048-bit
//! key (e = 65537) and one message, all in one run.
//!
//! Built for wasm32-wasip1 and run by `bench/crypto.sh` under Node.js, whose V8 is the engine
//! Envoy embeds. Every candidate is called on the valid signature and on a tampered one, and
//! every verdict is checked (the run fails on a wrong one); timings are never asserted.
//!
//! Output: a table on stderr and JSON on stdout. Arguments: `--smoke` (a few calls each).

/// The plugin's ECDSA (ES256/ES384), also on the Montgomery core.
#[path = "../../../src/ecdsa.rs"]
#[allow(dead_code)]
mod ecdsa;
mod mont;
/// The plugin's Montgomery arithmetic, which its RSA and ECDSA are built on.
#[path = "../../../src/montgomery.rs"]
#[allow(dead_code)]
mod montgomery;
/// The plugin's file itself, so what is measured is what the plugin runs: `crypto::verify_key`
/// calls exactly these functions for RS*/PS*.
#[path = "../../../src/rsa.rs"]
#[allow(dead_code)] // the benchmark uses only part of it
mod rsa;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use std::hint::black_box;
use std::time::Instant;

/// The plugin's known answers (src/kat.rs): RSA, P-256 and P-384 keys and signatures over `MSG`.
#[path = "../../../src/kat.rs"]
mod kat;

fn b64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url constant")
}

/// A verification to time: called with the valid signature (`true` expected) or a tampered one.
struct Candidate {
    name: &'static str,
    /// What the number covers, for the table and the JSON.
    note: &'static str,
    run: Box<dyn Fn(bool) -> bool>,
}

struct Measured {
    name: &'static str,
    note: &'static str,
    median_us: f64,
    min_us: f64,
    max_us: f64,
    calls_per_batch: u32,
    batches: usize,
}

/// The EMSA-PKCS1-v1_5 encoding an RS256 signature of `msg` must open to (what the raw
/// modular exponentiations below are compared with, so that they decide like a verifier).
fn pkcs1_sha256_em(msg: &[u8], k: usize) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let prefix = [
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04,
        0x20,
    ];
    let digest = Sha256::digest(msg);
    let mut em = vec![0x00, 0x01];
    em.resize(k - prefix.len() - digest.len() - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(&prefix);
    em.extend_from_slice(&digest);
    em
}

fn candidates() -> Vec<Candidate> {
    use sha2::{Digest, Sha256};
    let msg: &'static [u8] = kat::MSG.as_bytes();
    let n = b64(kat::RSA_N);
    let e = b64(kat::RSA_E);
    let rs256 = b64(kat::SIG_RS256);
    let ps256 = b64(kat::SIG_PS256);
    let es256 = b64(kat::SIG_ES256);
    let tamper = |sig: &[u8]| {
        let mut bad = sig.to_vec();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x10;
        bad
    };
    let pick = |good: &Vec<u8>| {
        let (good, bad) = (good.clone(), tamper(good));
        move |valid: bool| if valid { good.clone() } else { bad.clone() }
    };
    let em = pkcs1_sha256_em(msg, n.len());
    let mut out: Vec<Candidate> = Vec::new();

    // The plugin: keys prepared once, as when a JWKS is parsed.
    let ours = rsa::RsaPublicKey::new(&n, 65537).expect("kat RSA key");
    let sig = pick(&rs256);
    out.push(Candidate {
        name: "ours RS256",
        note: "src/rsa.rs verify_pkcs1v15 (SHA-256 included), key prepared once: 32-bit limbs, Montgomery",
        run: Box::new(move |v| ours.verify_pkcs1v15(rsa::Hash::Sha256, msg, &sig(v))),
    });
    let ours = rsa::RsaPublicKey::new(&n, 65537).expect("kat RSA key");
    let sig = pick(&ps256);
    out.push(Candidate {
        name: "ours PS256",
        note: "src/rsa.rs verify_pss: MGF1-SHA-256, 32-byte salt",
        run: Box::new(move |v| ours.verify_pss(rsa::Hash::Sha256, msg, &sig(v))),
    });
    let n2 = n.clone();
    let sig = pick(&rs256);
    out.push(Candidate {
        name: "ours RS256 + key prep",
        note: "RsaPublicKey::new (limbs, -1/n mod 2^32, R^2 mod n) then verify: the first token after a JWKS load",
        run: Box::new(move |v| {
            let key = rsa::RsaPublicKey::new(&n2, 65537).expect("kat RSA key");
            key.verify_pkcs1v15(rsa::Hash::Sha256, msg, &sig(v))
        }),
    });
    // ECDSA: ours (src/ecdsa.rs, as crypto::verify_key calls it) and the crates it replaced.
    let es384 = b64(kat::SIG_ES384);
    let (x256, y256, x384, y384) = (b64(kat::P256_X), b64(kat::P256_Y), b64(kat::P384_X), b64(kat::P384_Y));
    let ours256 = ecdsa::P256PublicKey::from_coordinates(&x256, &y256).expect("kat P-256 key");
    let sig = pick(&es256);
    out.push(Candidate {
        name: "ours ES256",
        note: "src/ecdsa.rs P256PublicKey::verify (SHA-256 included), key prepared once (1..15·Q)",
        run: Box::new(move |v| ours256.verify(msg, &sig(v))),
    });
    let sig = pick(&es256);
    let (x, y) = (x256.clone(), y256.clone());
    out.push(Candidate {
        name: "ours ES256 + key prep",
        note:
            "P256PublicKey::from_coordinates (on-curve check, 1..15·Q) then verify: the first token after a JWKS load",
        run: Box::new(move |v| {
            ecdsa::P256PublicKey::from_coordinates(&x, &y).expect("kat P-256 key").verify(msg, &sig(v))
        }),
    });
    let ours384 = ecdsa::P384PublicKey::from_coordinates(&x384, &y384).expect("kat P-384 key");
    let sig = pick(&es384);
    out.push(Candidate {
        name: "ours ES384",
        note: "src/ecdsa.rs P384PublicKey::verify (SHA-384 included), key prepared once",
        run: Box::new(move |v| ours384.verify(msg, &sig(v))),
    });
    let point = [&[0x04u8][..], &x256, &y256].concat();
    let ec = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).expect("kat P-256 key");
    let sig = pick(&es256);
    out.push(Candidate {
        name: "ES256 (p256 0.13)",
        note: "p256 VerifyingKey, as src/crypto.rs used it before src/ecdsa.rs",
        run: Box::new(move |v| {
            use p256::ecdsa::signature::Verifier;
            p256::ecdsa::Signature::from_slice(&sig(v)).is_ok_and(|s| ec.verify(msg, &s).is_ok())
        }),
    });
    let point = [&[0x04u8][..], &x384, &y384].concat();
    let ec = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).expect("kat P-384 key");
    let sig = pick(&es384);
    out.push(Candidate {
        name: "ES384 (p384 0.13)",
        note: "p384 VerifyingKey, as src/crypto.rs used it before src/ecdsa.rs",
        run: Box::new(move |v| {
            use p384::ecdsa::signature::Verifier;
            p384::ecdsa::Signature::from_slice(&sig(v)).is_ok_and(|s| ec.verify(msg, &s).is_ok())
        }),
    });

    // The rsa crate as the plugin used it before (0.9), and its next version.
    let key09 = rsa09::RsaPublicKey::new(rsa09::BigUint::from_bytes_be(&n), rsa09::BigUint::from_bytes_be(&e))
        .expect("rsa 0.9 key");
    let sig = pick(&rs256);
    let k09 = key09.clone();
    out.push(Candidate {
        name: "rsa 0.9 RS256",
        note: "rsa 0.9.10 RsaPublicKey (num-bigint-dig), SHA-256 + Pkcs1v15Sign, key prepared once",
        run: Box::new(move |v| k09.verify(rsa09::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), &sig(v)).is_ok()),
    });
    let sig = pick(&ps256);
    out.push(Candidate {
        name: "rsa 0.9 PS256",
        note: "rsa 0.9.10, Pss::new::<Sha256>()",
        run: Box::new(move |v| key09.verify(rsa09::Pss::new::<Sha256>(), &Sha256::digest(msg), &sig(v)).is_ok()),
    });
    let key010 = {
        use rsa010::BoxedUint;
        let bits = u32::try_from(n.len() * 8).expect("small");
        let n = BoxedUint::from_be_slice(&n, bits).expect("n");
        let e = BoxedUint::from_be_slice(&e, 32).expect("e");
        rsa010::RsaPublicKey::new(n, e).expect("rsa 0.10 key")
    };
    let sig = pick(&rs256);
    out.push(Candidate {
        name: "rsa 0.10.0-rc.20 RS256",
        note: "rsa 0.10.0-rc.20 (crypto-bigint 0.7 BoxedUint, Montgomery params in the key), SHA-256 (sha2 0.11)",
        run: Box::new(move |v| {
            use sha2_011::Digest as _;
            let digest = sha2_011::Sha256::digest(msg);
            key010.verify(rsa010::Pkcs1v15Sign::new::<sha2_011::Sha256>(), &digest, &sig(v)).is_ok()
        }),
    });

    // Raw s^65537 mod n, compared with the expected encoding: the big-integer work alone.
    let raw = rsa::RsaPublicKey::new(&n, 65537).expect("key");
    let (sig, want) = (pick(&rs256), em.clone());
    out.push(Candidate {
        name: "ours s^e mod n only",
        note: "src/rsa.rs RsaPublicKey::public_op + compare (no hashing, no padding code)",
        run: Box::new(move |v| raw.public_op(&sig(v)).is_some_and(|m| m == want)),
    });
    let m32 = mont::limb32::Key::new(&n);
    let (sig, want) = (pick(&rs256), em.clone());
    out.push(Candidate {
        name: "experiment: 32-bit limbs s^e",
        note: "bench-only Montgomery, 32-bit limbs, no special squaring (src/mont.rs)",
        run: Box::new(move |v| m32.pow65537(&sig(v)) == want),
    });
    let m64 = mont::limb64::Key::new(&n);
    let (sig, want) = (pick(&rs256), em.clone());
    out.push(Candidate {
        name: "experiment: 64-bit limbs s^e",
        note: "the same code with 64-bit limbs and u128 products (src/mont.rs)",
        run: Box::new(move |v| m64.pow65537(&sig(v)) == want),
    });
    let ring = dashu_int::fast_div::ConstDivisor::new(dashu_int::UBig::from_be_bytes(&n));
    let exp = dashu_int::UBig::from(65537u32);
    let (sig, want) = (pick(&rs256), dashu_int::UBig::from_be_bytes(&em));
    out.push(Candidate {
        name: "dashu-int 0.6 s^e",
        note: "dashu-int 0.6.2 ConstDivisor (prepared once) reduce + pow + compare",
        run: Box::new(move |v| ring.reduce(dashu_int::UBig::from_be_bytes(&sig(v))).pow(&exp).residue() == want),
    });
    out
}

/// Calls per batch so that a batch takes about `target_ms`.
fn calibrate(c: &Candidate, target_ms: f64) -> u32 {
    let start = Instant::now();
    let mut calls = 0u32;
    while start.elapsed().as_secs_f64() < 0.05 || calls < 3 {
        black_box((c.run)(black_box(true)));
        calls += 1;
    }
    let per_call_ms = start.elapsed().as_secs_f64() * 1e3 / f64::from(calls);
    ((target_ms / per_call_ms) as u32).clamp(1, 100_000)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let (warmup, batches, target_ms) = if smoke { (0, 2, 0.0) } else { (3, 15, 60.0) };
    let mut failures = Vec::new();
    let mut results = Vec::new();
    for c in candidates() {
        // Verdicts first, and on every timed call below.
        if !(c.run)(true) {
            failures.push(format!("{}: the valid signature was refused", c.name));
        }
        if (c.run)(false) {
            failures.push(format!("{}: the tampered signature was accepted", c.name));
        }
        let calls = if smoke { 2 } else { calibrate(&c, target_ms) };
        let mut per_call = Vec::new();
        for batch in 0..warmup + batches {
            let start = Instant::now();
            let mut ok = true;
            for _ in 0..calls {
                ok &= black_box((c.run)(black_box(true)));
            }
            let us = start.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
            if !ok {
                failures.push(format!("{}: a valid signature was refused in a timed batch", c.name));
            }
            if batch >= warmup {
                per_call.push(us);
            }
        }
        per_call.sort_by(f64::total_cmp);
        results.push(Measured {
            name: c.name,
            note: c.note,
            median_us: per_call[per_call.len() / 2],
            min_us: per_call[0],
            max_us: per_call[per_call.len() - 1],
            calls_per_batch: calls,
            batches,
        });
    }

    let baseline = results.iter().find(|r| r.name == "rsa 0.9 RS256").map_or(f64::NAN, |r| r.median_us);
    eprintln!("{:<30} {:>12} {:>10} {:>10} {:>12}", "candidate", "median µs", "min µs", "max µs", "÷ rsa 0.9");
    for r in &results {
        eprintln!(
            "{:<30} {:>12.1} {:>10.1} {:>10.1} {:>11.3}×",
            r.name,
            r.median_us,
            r.min_us,
            r.max_us,
            r.median_us / baseline
        );
    }
    let ours = results.iter().find(|r| r.name == "ours RS256").map_or(f64::NAN, |r| r.median_us);
    eprintln!("ours RS256 is {:.1}x faster than rsa 0.9 RS256 (the issue's target: at least 3x)", baseline / ours);
    for f in &failures {
        eprintln!("WRONG VERDICT: {f}");
    }

    let rows: Vec<String> = results
        .iter()
        .map(|r| {
            format!(
                "    {{\"name\": {:?}, \"median_us\": {:.2}, \"min_us\": {:.2}, \"max_us\": {:.2}, \"ratio_to_rsa_0_9_rs256\": {:.4}, \"calls_per_batch\": {}, \"batches\": {}, \"note\": {:?}}}",
                r.name, r.median_us, r.min_us, r.max_us, r.median_us / baseline, r.calls_per_batch, r.batches, r.note
            )
        })
        .collect();
    println!(
        "{{\n  \"smoke\": {smoke},\n  \"verdicts_ok\": {},\n  \"speedup_ours_rs256_vs_rsa_0_9\": {:.2},\n  \"key\": \"RSA 2048-bit, e = 65537 (crypto::kat); P-256 and P-384 keys for ES256/ES384\",\n  \"results\": [\n{}\n  ]\n}}",
        failures.is_empty(),
        baseline / ours,
        rows.join(",\n")
    );
    if !failures.is_empty() {
        std::process::exit(1);
    }
}
