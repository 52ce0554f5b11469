//! Wycheproof vectors (C2SP/wycheproof, see tests/vectors/wycheproof/SOURCE and LICENSE)
//! against `parse_jwks` and both verification paths: `PureRust`, and the host path
//! (`filter::crypto::Crypto` on its host path, which hands RS*/ES* to Envoy's `verify_signature`) on the
//! native mock host, whose `verify_signature` is implemented here independently: it decodes
//! our protobuf arguments, DER SubjectPublicKeyInfo and DER ECDSA signature itself.
//!
//! Every key goes through `parse_jwks` as a JWK built from the vector's public key, so the
//! JWK decoding is exercised with the signatures. Results must match the vector exactly:
//! `valid` verifies, `invalid` fails. The only `acceptable` cases in these files are the
//! PKCS#1 v1.5 `MissingNull` ones (DigestInfo without the NULL parameters, a legacy
//! encoding): we REJECT them, since RFC 8017 §9.2 fixes the encoding and the verifier compares
//! it byte for byte.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_authn_wasm::crypto::{PureRust, SignatureVerifier, VerifyError};
use jwt_authn_wasm::jwk::{parse_jwks, Alg, JwkSet, JwksError};
use serde_json::{json, Value};

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/wycheproof/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn str_of<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("missing {name}"))
}

/// Key refusals that are our documented policy (see `jwk::parse_jwks`), not bugs.
const POLICY_REASONS: [&str; 4] = ["is below 2048", "is above 8192", "is even", "is below 3"];

#[derive(Default)]
struct Tally {
    valid: usize,
    invalid: usize,
    acceptable: usize,
    key_refused_by_policy: usize,
}

/// The JWK for one test group: from the raw key (hex), so that it is ours, not the vector's
/// own JWK. RSA moduli keep the DER sign byte (a leading 0x00) to exercise its tolerance.
fn group_jwk(group: &Value, alg: Alg) -> Value {
    let pk = &group["publicKey"];
    match alg {
        Alg::ES256 | Alg::ES384 => {
            let point = hex(str_of(pk, "uncompressed"));
            assert_eq!(point[0], 4);
            let (x, y) = point[1..].split_at((point.len() - 1) / 2);
            let crv = if alg == Alg::ES256 { "P-256" } else { "P-384" };
            json!({ "kty": "EC", "crv": crv, "x": b64(x), "y": b64(y), "alg": alg.name(), "use": "sig" })
        }
        _ => json!({
            "kty": "RSA",
            "n": b64(&hex(str_of(pk, "modulus"))),
            "e": b64(&hex(str_of(pk, "publicExponent"))),
            "alg": alg.name(),
            "use": "sig",
        }),
    }
}

fn run_signature_file(name: &str, alg: Alg, verifier: &dyn SignatureVerifier) {
    let doc = load(name);
    let mut tally = Tally::default();
    let mut groups = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        groups += 1;
        let tests = group["tests"].as_array().unwrap();
        // The vector's own JWK, when it has one, must get the same decision as ours.
        let own_ok = group
            .get("publicKeyJwk")
            .or_else(|| group.get("keyJwk"))
            .map(|own| parse_jwks(&serde_json::to_vec(&json!({ "keys": [own] })).unwrap()).is_ok());

        let jwks = json!({ "keys": [group_jwk(group, alg)] });
        let set = match parse_jwks(&serde_json::to_vec(&jwks).unwrap()) {
            Ok(parsed) => {
                assert_ne!(own_ok, Some(false), "{name}: vector JWK refused but ours accepted");
                parsed.set
            }
            Err(JwksError::NoUsableKey(skipped)) => {
                let reason = &skipped[0].reason;
                assert!(POLICY_REASONS.iter().any(|p| reason.contains(p)), "{name}: key refused: {reason}");
                assert_ne!(own_ok, Some(true));
                tally.key_refused_by_policy += tests.len();
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        assert_eq!(set.keys.len(), 1);
        let key = &set.keys[0];
        assert!(key.accepts(alg));

        for t in tests {
            let id = &t["tcId"];
            let msg = hex(str_of(t, "msg"));
            let sig = hex(str_of(t, "sig"));
            let result = verifier.verify(alg, key, &msg, &sig);
            assert_ne!(result, Err(VerifyError::KeyMismatch), "{name} #{id}");
            let flags: Vec<&str> = t["flags"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
            match str_of(t, "result") {
                "valid" => {
                    assert_eq!(result, Ok(()), "{name} #{id} {flags:?} must verify: {}", t["comment"]);
                    tally.valid += 1;
                }
                "invalid" => {
                    assert_eq!(
                        result,
                        Err(VerifyError::BadSignature),
                        "{name} #{id} {flags:?} must fail: {}",
                        t["comment"]
                    );
                    tally.invalid += 1;
                }
                "acceptable" => {
                    // Our decision (see the module comment): legacy MissingNull is refused.
                    assert_eq!(flags, ["MissingNull"], "{name} #{id}: undocumented acceptable case");
                    assert_eq!(result, Err(VerifyError::BadSignature), "{name} #{id}");
                    tally.acceptable += 1;
                }
                other => panic!("{name} #{id}: result {other}"),
            }
        }
    }
    let total = tally.valid + tally.invalid + tally.acceptable + tally.key_refused_by_policy;
    assert_eq!(total as u64, doc["numberOfTests"].as_u64().unwrap(), "{name}: every test case ran");
    assert_eq!(tally.key_refused_by_policy, 0, "{name}: no key of these files is outside policy");
    println!(
        "{name} ({} via {groups} JWKs): {} valid verified, {} invalid rejected, {} acceptable (MissingNull) rejected, {} skipped: key refused by policy",
        alg.name(),
        tally.valid,
        tally.invalid,
        tally.acceptable,
        tally.key_refused_by_policy
    );
}

#[test]
fn rsa_pkcs1_2048_sha256() {
    run_signature_file("rsa_signature_2048_sha256_test.json", Alg::RS256, &PureRust);
}

#[test]
fn rsa_pkcs1_2048_sha384() {
    run_signature_file("rsa_signature_2048_sha384_test.json", Alg::RS384, &PureRust);
}

#[test]
fn rsa_pkcs1_2048_sha512() {
    run_signature_file("rsa_signature_2048_sha512_test.json", Alg::RS512, &PureRust);
}

#[test]
fn rsa_pkcs1_3072_sha256() {
    run_signature_file("rsa_signature_3072_sha256_test.json", Alg::RS256, &PureRust);
}

#[test]
fn rsa_pkcs1_4096_sha256() {
    run_signature_file("rsa_signature_4096_sha256_test.json", Alg::RS256, &PureRust);
}

#[test]
fn rsa_pss_2048_sha256_mgf1_32() {
    let doc = load("rsa_pss_2048_sha256_mgf1_32_test.json");
    for g in doc["testGroups"].as_array().unwrap() {
        // PS256 is exactly this parameter set (RFC 7518 §3.5).
        assert_eq!(
            (str_of(g, "sha"), str_of(g, "mgf"), str_of(g, "mgfSha"), g["sLen"].as_u64()),
            ("SHA-256", "MGF1", "SHA-256", Some(32))
        );
    }
    run_signature_file("rsa_pss_2048_sha256_mgf1_32_test.json", Alg::PS256, &PureRust);
}

#[test]
fn ecdsa_p256_sha256_p1363() {
    run_signature_file("ecdsa_secp256r1_sha256_p1363_test.json", Alg::ES256, &PureRust);
}

#[test]
fn ecdsa_p384_sha384_p1363() {
    run_signature_file("ecdsa_secp384r1_sha384_p1363_test.json", Alg::ES384, &PureRust);
}

/// Members only a private key has; removed to get the public JWKS an IdP would publish.
const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

/// Verifies a compact JWS the way the filter picks keys (kid + alg → candidates), with only
/// `parse_jwks`, `JwkSet::candidates` and `PureRust` (the full token pipeline is tested
/// elsewhere).
fn jws_accepted(set: &JwkSet, jws: &str) -> bool {
    let parts: Vec<&str> = jws.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let Some(alg) = header["alg"].as_str().and_then(Alg::from_name) else {
        return false;
    };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(parts[2]) else {
        return false;
    };
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let accepted = set
        .candidates(header["kid"].as_str(), alg)
        .any(|k| PureRust.verify(alg, k, signing_input.as_bytes(), &sig).is_ok());
    accepted
}

/// json_web_key_test.json: keysets given as private JWKs plus a compact JWS. What we use:
/// - the keyset as published (with private members) must yield no key from an entry that has
///   private members: we refuse private keys published by mistake;
/// - the public part of the keyset (private members removed) through `parse_jwks` and the
///   token through `candidates` + `PureRust`: `invalid` must be rejected; `valid` must be
///   accepted, except the HMAC ones (tcId 2, 13, 14, 15) which we reject by policy (no
///   symmetric keys, no HS* algorithms).
///
/// What the vectors expect that we do differently: `MixedKeySet` and `DuplicateKid` want the
/// whole keyset refused; we skip unusable entries and keep the rest, and keys sharing a kid
/// are all candidates (Envoy jwt_authn semantics). In these vectors the outcome for the token
/// is still "rejected" because the keys involved are HMAC ones.
#[test]
fn json_web_key_sets() {
    let doc = load("json_web_key_test.json");
    let hmac_valid = [2, 13, 14, 15];
    let (mut valid, mut invalid, mut hmac, mut private_refused) = (0, 0, 0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        let published = &group["private"];
        let public_keys: Vec<Value> = published["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let mut k = k.clone();
                for m in PRIVATE_MEMBERS {
                    k.as_object_mut().unwrap().remove(m);
                }
                k
            })
            .collect();

        // As published: an entry with private members never becomes a key, and says why.
        let skipped = match parse_jwks(&serde_json::to_vec(published).unwrap()) {
            Ok(parsed) => parsed.skipped,
            Err(JwksError::NoUsableKey(skipped)) => skipped,
            Err(e) => panic!("{e}"),
        };
        for (index, entry) in published["keys"].as_array().unwrap().iter().enumerate() {
            if PRIVATE_MEMBERS.iter().any(|m| entry.get(*m).is_some()) {
                assert!(
                    skipped.iter().any(|s| s.index == index && s.reason.contains("private")),
                    "private entry {index} of {published} not flagged: {skipped:?}"
                );
                private_refused += 1;
            }
        }

        let set = match parse_jwks(&serde_json::to_vec(&json!({ "keys": public_keys })).unwrap()) {
            Ok(parsed) => parsed.set,
            Err(JwksError::NoUsableKey(_)) => JwkSet::default(),
            Err(e) => panic!("{e}"),
        };
        for t in group["tests"].as_array().unwrap() {
            let id = t["tcId"].as_u64().unwrap();
            let accepted = jws_accepted(&set, str_of(t, "jws"));
            match str_of(t, "result") {
                "invalid" => {
                    assert!(!accepted, "json_web_key #{id} must be rejected: {}", t["comment"]);
                    invalid += 1;
                }
                "valid" if hmac_valid.contains(&id) => {
                    assert!(!accepted, "json_web_key #{id}: HMAC is refused by policy");
                    hmac += 1;
                }
                "valid" => {
                    assert!(accepted, "json_web_key #{id} must be accepted: {}", t["comment"]);
                    valid += 1;
                }
                other => panic!("#{id}: {other}"),
            }
        }
    }
    assert_eq!((valid + invalid + hmac) as u64, doc["numberOfTests"].as_u64().unwrap());
    println!(
        "json_web_key_test.json: {valid} valid accepted, {invalid} invalid rejected, {hmac} valid HMAC cases rejected by policy; {private_refused} published private JWKs refused"
    );
}

// ---- the host path -----------------------------------------------------------------------

mod harness;

use harness::{ForeignFn, MockProxy, Status};
use jwt_authn_wasm::filter::crypto::{Crypto, Path, HOST_FUNCTION};

/// Protobuf length-delimited fields of `VerifySignatureArguments` (1 hash, 2 key, 3 sig, 4 text).
fn fields(mut b: &[u8]) -> Option<[Vec<u8>; 4]> {
    let mut out: [Vec<u8>; 4] = Default::default();
    let varint = |b: &mut &[u8]| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (x, rest) = b.split_first()?;
            *b = rest;
            v |= u64::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    while !b.is_empty() {
        let key = varint(&mut b)?;
        let len = usize::try_from(varint(&mut b)?).ok()?;
        let (value, rest) = (b.get(..len)?, b.get(len..)?);
        *out.get_mut(usize::try_from(key >> 3).ok()?.checked_sub(1)?)? = value.to_vec();
        b = rest;
    }
    Some(out)
}

thread_local! {
    /// Calls of the stand-in host function on this thread (each VM runs on its own).
    static HOST_CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// `VerifySignatureResult { result: false, error }`, as Envoy serializes it.
fn refused(error: &str) -> Vec<u8> {
    [&[0x12, u8::try_from(error.len()).unwrap()][..], error.as_bytes()].concat()
}

/// A stand-in for Envoy's BoringSSL `verify_signature`, built from other code than ours, and
/// answering as Envoy does: an unparsable request or key is `BadArgument`, an unknown hash a
/// refusal (so a wrong hash name would fail valid tokens here too, not fall back to Rust).
fn native_verify_signature(args: &[u8]) -> Result<Vec<u8>, Status> {
    use p256::pkcs8::DecodePublicKey;
    use sha2::Digest;
    HOST_CALLS.with(|c| c.set(c.get() + 1));
    let [hash, spki, sig, text] = fields(args).ok_or(Status::BadArgument)?;
    if !matches!(hash.as_slice(), b"sha256" | b"sha384" | b"sha512") {
        return Ok(refused(&format!("{} is not supported.", String::from_utf8_lossy(&hash))));
    }
    let ok = if let Ok(k) = rsa::RsaPublicKey::from_public_key_der(&spki) {
        let scheme_ok = |scheme, digest: Vec<u8>| k.verify(scheme, &digest, &sig).is_ok();
        match hash.as_slice() {
            b"sha256" => scheme_ok(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), sha2::Sha256::digest(&text).to_vec()),
            b"sha384" => scheme_ok(rsa::Pkcs1v15Sign::new::<sha2::Sha384>(), sha2::Sha384::digest(&text).to_vec()),
            _ => scheme_ok(rsa::Pkcs1v15Sign::new::<sha2::Sha512>(), sha2::Sha512::digest(&text).to_vec()),
        }
    } else if let Ok(k) = p256::ecdsa::VerifyingKey::from_public_key_der(&spki) {
        use p256::ecdsa::signature::Verifier;
        hash == b"sha256" && p256::ecdsa::Signature::from_der(&sig).is_ok_and(|s| k.verify(&text, &s).is_ok())
    } else if let Ok(k) = p384::ecdsa::VerifyingKey::from_public_key_der(&spki) {
        use p384::ecdsa::signature::Verifier;
        hash == b"sha384" && p384::ecdsa::Signature::from_der(&sig).is_ok_and(|s| k.verify(&text, &s).is_ok())
    } else {
        return Err(Status::BadArgument);
    };
    Ok(if ok { vec![0x08, 0x01] } else { refused("bad") })
}

/// Runs a vector file through the host path on a VM whose host offers `verify_signature`.
fn run_on_host(name: &'static str, alg: Alg) {
    let proxy = MockProxy::new();
    let vm = proxy.vm();
    vm.start(|| {});
    vm.set_foreign_function(HOST_FUNCTION, native_verify_signature);
    let (path, by_host, by_rust, calls) = vm.run(move || {
        let crypto = Crypto::detect();
        let before = HOST_CALLS.with(std::cell::Cell::get);
        if crypto.path == Path::Host {
            run_signature_file(name, alg, &crypto);
        }
        let (by_host, by_rust) = crypto.take_counts();
        (crypto.path, by_host, by_rust, HOST_CALLS.with(std::cell::Cell::get) - before)
    });
    assert_eq!(path, Path::Host, "the known-answer check must pick the host");
    // Every verdict came from the host path: a host answer it could not use would have
    // fallen back to Rust and, the verdicts being the same, gone unnoticed otherwise. Those
    // the range checks refuse never reach the host function; the others all do.
    assert_eq!(by_rust, 0, "verifications that fell back to Rust");
    assert!(calls > 100 && calls as u64 <= by_host, "{calls} host calls for {by_host} verifications");
}

#[test]
fn host_rsa_pkcs1_2048_sha256() {
    run_on_host("rsa_signature_2048_sha256_test.json", Alg::RS256);
}

#[test]
fn host_rsa_pkcs1_2048_sha512() {
    run_on_host("rsa_signature_2048_sha512_test.json", Alg::RS512);
}

#[test]
fn host_rsa_pkcs1_3072_sha256() {
    run_on_host("rsa_signature_3072_sha256_test.json", Alg::RS256);
}

#[test]
fn host_ecdsa_p256_sha256_p1363() {
    run_on_host("ecdsa_secp256r1_sha256_p1363_test.json", Alg::ES256);
}

#[test]
fn host_ecdsa_p384_sha384_p1363() {
    run_on_host("ecdsa_secp384r1_sha384_p1363_test.json", Alg::ES384);
}

#[test]
fn a_host_that_lies_or_breaks_is_not_trusted() {
    let hosts: [(&str, ForeignFn); 4] = [
        ("answers yes to everything", |_| Ok(vec![0x08, 0x01])),
        ("answers no to everything", |_| Ok(refused("bad"))),
        ("answers garbage", |_| Ok(vec![0xff, 0xff, 0xff])),
        ("fails", |_| Err(Status::InternalFailure)),
    ];
    for (what, host) in hosts {
        let vm = MockProxy::new().vm();
        vm.start(|| {});
        vm.set_foreign_function(HOST_FUNCTION, host);
        assert_eq!(vm.run(|| Crypto::detect().path), Path::Pure, "a host that {what}");
    }
}

#[test]
fn a_host_that_breaks_after_start_up_falls_back_to_rust() {
    use jwt_authn_wasm::crypto::kat;
    use jwt_authn_wasm::jwk::{Jwk, PublicKey};
    let vm = MockProxy::new().vm();
    vm.start(|| {});
    vm.set_foreign_function(HOST_FUNCTION, native_verify_signature);
    let crypto = vm.run(Crypto::detect);
    assert_eq!(crypto.path, Path::Host);
    vm.set_foreign_function(HOST_FUNCTION, |_| Ok(vec![0xff]));
    let (good, bad, counts) = vm.run(move || {
        crypto.take_counts();
        let raw = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap();
        let key = Jwk::new(None, None, PublicKey::rsa_from_components(&raw(kat::RSA_N), &raw(kat::RSA_E)).unwrap());
        let sig = raw(kat::SIG_RS256);
        let mut tampered = sig.clone();
        tampered[0] ^= 1;
        let good = crypto.verify(Alg::RS256, &key, kat::MSG.as_bytes(), &sig).is_ok();
        let bad = crypto.verify(Alg::RS256, &key, kat::MSG.as_bytes(), &tampered).is_ok();
        (good, bad, crypto.take_counts())
    });
    assert_eq!((good, bad), (true, false), "Rust decides when the host answers garbage");
    assert_eq!(counts, (0, 2), "both went to Rust");
}

#[test]
fn without_the_host_function_the_pure_path_is_chosen() {
    let vm = MockProxy::new().vm();
    vm.start(|| {});
    assert_eq!(vm.run(|| Crypto::detect().path), Path::Pure);
}
