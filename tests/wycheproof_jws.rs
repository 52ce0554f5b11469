//! Wycheproof's JSON Web Signature vectors through the whole token path: strict JWS parsing,
//! the key from the group's JWK through `parse_jwks`, key selection and verification.
//!
//! Every `invalid` case must be rejected. A `valid` case must verify unless one of our
//! documented policies refuses it: an algorithm outside the allow-list (HS*, ES512), a key
//! type we never use (`oct`), a token `alg` other than the key's own, an empty payload. The vectors' payloads are not JSON ("foo"), which a JWT must
//! be: each valid one that verifies is also checked to be refused as a JWT for that reason.

use jwt_authn_wasm::crypto::PureRust;
use jwt_authn_wasm::decision::verify_signature;
use jwt_authn_wasm::jwk::parse_jwks;
use jwt_authn_wasm::jws::{self, Limits};
use jwt_authn_wasm::status::Rejection;
use serde_json::{json, Value};

const LIMITS: Limits = Limits { max_token_size: 64 * 1024, max_json_depth: 16 };

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/wycheproof/json_web_signature_test.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("vector file")).expect("vector JSON")
}

/// The public half of a group's key: its `public` JWK, or the `private` one without its
/// secret members.
fn public_jwk(group: &Value) -> Value {
    let key = group.get("public").or_else(|| group.get("private")).cloned().unwrap_or(Value::Null);
    let mut key = key.as_object().cloned().unwrap_or_default();
    for secret in ["d", "p", "q", "dp", "dq", "qi", "k"] {
        key.remove(secret);
    }
    Value::Object(key)
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Accepted,
    Rejected(Rejection),
    /// The key itself is never usable by this filter.
    KeyRefused,
}

fn run(token: &str, jwk: &Value) -> Outcome {
    let jws = match jws::parse_jws(token, &LIMITS) {
        Ok(jws) => jws,
        Err(r) => return Outcome::Rejected(r),
    };
    let Ok(parsed) = parse_jwks(json!({ "keys": [jwk] }).to_string().as_bytes()) else {
        return Outcome::KeyRefused;
    };
    match verify_signature(&jws, &parsed.set, &PureRust) {
        Ok(()) => Outcome::Accepted,
        Err(r) => Outcome::Rejected(r),
    }
}

/// A documented reason for refusing a token Wycheproof calls valid:
/// - an empty payload segment is a valid JWS but never a JWT (which always has a claims
///   object), and the parser refuses empty segments outright;
/// - segments must be strict base64url: some "valid" cases insert characters that lenient
///   decoders skip;
/// - a key that names its `alg` verifies only that algorithm (RFC 7520's examples reuse a
///   PS256 key for PS384; we do not).
fn policy_refusal(token: &str, jwk: &Value, outcome: &Outcome) -> bool {
    let empty_payload = token.split('.').nth(1) == Some("");
    let lenient_base64 = !token.split('.').all(|seg| jws::decode_segment(seg).is_ok());
    let token_alg = jws::parse_jws(token, &LIMITS).ok().map(|j| j.header.alg.name());
    let key_alg_differs = jwk["alg"].as_str().is_some_and(|a| Some(a) != token_alg);
    // Only what the allow-list leaves out: HMAC and ES512 tokens, `oct` and P-521 keys.
    let header_alg = token
        .split('.')
        .next()
        .and_then(|h| jws::decode_segment(h).ok())
        .and_then(|h| serde_json::from_slice::<Value>(&h).ok())
        .and_then(|h| h["alg"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let outside_allow_list = header_alg.starts_with("HS") || header_alg == "ES512";
    let unusable_key = jwk["kty"] == "oct" || jwk["crv"] == "P-521";
    match outcome {
        Outcome::Rejected(Rejection::AlgorithmUnsupported) => outside_allow_list,
        Outcome::KeyRefused => unusable_key,
        Outcome::Rejected(Rejection::TokenMalformed) => empty_payload || lenient_base64,
        Outcome::Rejected(Rejection::KeyNotFound) => key_alg_differs,
        _ => false,
    }
}

/// As a JWT, a token whose payload is not a JSON object is malformed.
fn jwt_verdict(token: &str) -> Result<(), Rejection> {
    let payload_is_object = token
        .split('.')
        .nth(1)
        .and_then(|p| jws::decode_segment(p).ok())
        .and_then(|p| serde_json::from_slice::<Value>(&p).ok())
        .is_some_and(|v| v.is_object());
    match jws::parse(token, &LIMITS) {
        Ok(_) => Ok(()),
        Err(Rejection::TokenMalformed) if !payload_is_object => Err(Rejection::TokenMalformed),
        Err(e) => panic!("unexpected JWT verdict {e:?} (payload is an object: {payload_is_object})"),
    }
}

#[test]
fn json_web_signature_vectors() {
    let v = vectors();
    let (mut valid_ok, mut valid_policy, mut invalid_rejected, mut skipped) = (0u64, 0, 0, 0);
    for group in v["testGroups"].as_array().expect("groups") {
        let jwk = public_jwk(group);
        for case in group["tests"].as_array().expect("tests") {
            let id = &case["tcId"];
            // JSON serialization (not compact) is outside what a bearer token can be.
            let Some(token) = case["jws"].as_str() else {
                skipped += 1;
                continue;
            };
            let outcome = run(token, &jwk);
            match case["result"].as_str() {
                Some("valid") if outcome == Outcome::Accepted => {
                    assert_eq!(jwt_verdict(token), Err(Rejection::TokenMalformed), "tcId {id}");
                    valid_ok += 1;
                }
                Some("valid") => {
                    assert!(
                        policy_refusal(token, &jwk, &outcome),
                        "tcId {id}: valid token refused without a policy reason: {outcome:?}"
                    );
                    valid_policy += 1;
                }
                Some("invalid") => {
                    assert_ne!(outcome, Outcome::Accepted, "tcId {id} ({}) must be rejected", case["comment"]);
                    invalid_rejected += 1;
                }
                other => panic!("tcId {id}: unexpected result {other:?}"),
            }
        }
    }
    println!(
        "json_web_signature: {valid_ok} valid verified, {valid_policy} valid refused by policy, {invalid_rejected} invalid rejected, {skipped} JSON-serialization cases skipped"
    );
    // Exact, for the committed file: a change that stops one valid case verifying (or starts
    // refusing one by policy) shows here.
    assert_eq!(valid_ok + valid_policy + invalid_rejected + skipped, v["numberOfTests"].as_u64().unwrap());
    assert_eq!((valid_ok, valid_policy, invalid_rejected, skipped), (26, 20, 355, 0));
}
