//! The attack catalogue (RFC 8725, "JSON Web Token Best Current Practices", and the classic
//! JWT library CVEs): one module per attack, each case run twice and held to the same answer
//! —
//! - on the pure core: [`Authenticator::decide`] with the real `PureRust` verifier (counted,
//!   to prove which attacks are refused before any cryptography) and [`local_reply`];
//! - through the real filter on the native mock host (`tests/harness/`): the SDK's entry
//!   points, the local reply as Envoy would send it, the request headers as the upstream
//!   would see them, and the stats.
//!
//! Every case asserts the exact HTTP status and the body's `code` (README, "Decisions"), not
//! just "not 200". The high-risk ones also run through a real Envoy in
//! `tests/envoy_attacks.rs`.

mod common;
mod harness;

use base64::Engine;
use common::{AUDIENCE, ISSUER};
use demo_idp::{b64url, b64url_decode, jwks, mint, mint_raw_parts, mint_with_header, Alg, FixedKey, SigningKey};
use harness::{MockProxy, Vm};
use jwt_authn_wasm::config::{Config, JwksSource, ProviderId};
use jwt_authn_wasm::crypto::{PureRust, SignatureVerifier, VerifyError};
use jwt_authn_wasm::decision::{local_reply, mutations, Authenticator, KeyLookup, KeySource, Mutations, Verdict};
use jwt_authn_wasm::extract::RequestView;
use jwt_authn_wasm::jwk::{self, Jwk};
use serde_json::{json, Value};
use std::cell::Cell;

// ---- expectations ----------------------------------------------------------------------------

/// What a request must come to: forwarded upstream, or a local reply with this status and
/// body `code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Allow,
    Deny(u32, &'static str),
}

const ALLOW: Want = Want::Allow;
const MISSING: Want = Want::Deny(401, "jwt_missing");
const TOO_LARGE: Want = Want::Deny(401, "jwt_too_large");
const MALFORMED: Want = Want::Deny(401, "jwt_malformed");
const ALG_UNSUPPORTED: Want = Want::Deny(401, "jwt_alg_unsupported");
const CRIT_UNSUPPORTED: Want = Want::Deny(401, "jwt_crit_unsupported");
const HEADER_INVALID: Want = Want::Deny(401, "jwt_header_invalid");
const KEY_NOT_FOUND: Want = Want::Deny(401, "jwt_key_not_found");
const SIGNATURE_INVALID: Want = Want::Deny(401, "jwt_signature_invalid");
const EXPIRED: Want = Want::Deny(401, "jwt_expired");
const NOT_YET_VALID: Want = Want::Deny(401, "jwt_not_yet_valid");
const CLAIM_INVALID: Want = Want::Deny(401, "jwt_claim_invalid");
const ISSUER_NOT_ALLOWED: Want = Want::Deny(401, "jwt_issuer_not_allowed");
const AUDIENCE_NOT_ALLOWED: Want = Want::Deny(403, "jwt_audience_not_allowed");

impl Want {
    fn parts(self) -> (u32, Option<&'static str>) {
        match self {
            Want::Allow => (200, None),
            Want::Deny(status, code) => (status, Some(code)),
        }
    }
}

// ---- the pure core ---------------------------------------------------------------------------

type Headers = Vec<(String, String)>;

/// The request as the core reads it: the first value of a header, as Envoy's
/// `get_http_request_header` returns it.
struct CoreRequest(Headers);

impl RequestView for CoreRequest {
    fn header(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

/// The inline JWKS of each provider, as the filter's key state serves it.
struct LocalKeys<'a>(&'a Config);

impl KeySource for LocalKeys<'_> {
    fn lookup(&self, provider: ProviderId, _kid: Option<&str>) -> KeyLookup {
        match self.0.provider(provider).map(|p| &p.jwks) {
            Some(JwksSource::Local(set)) => KeyLookup::Ready(set.clone()),
            _ => KeyLookup::Unavailable,
        }
    }
}

/// The real verifier, counting how often it is asked.
#[derive(Default)]
struct Counting {
    calls: Cell<usize>,
}

impl SignatureVerifier for Counting {
    fn verify(&self, alg: jwk::Alg, key: &Jwk, input: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
        self.calls.set(self.calls.get() + 1);
        PureRust.verify(alg, key, input, sig)
    }
}

/// What the core decided for one request.
struct Core {
    status: u32,
    code: Option<String>,
    /// Signature verifications attempted.
    crypto_calls: usize,
    /// The header changes, when allowed.
    mutations: Option<Mutations>,
}

// ---- the rig: the same configuration in the core and in the filter on the mock host ----------

struct Rig {
    config: Config,
    proxy: MockProxy,
    vm: Vm,
}

impl Rig {
    fn new(config: &Value) -> Rig {
        let parsed = Config::parse(config.to_string().as_bytes()).expect("test configuration");
        let proxy = MockProxy::new();
        let vm = common::vm_with(&proxy, config);
        Rig { config: parsed, proxy, vm }
    }

    /// The mock host's clock (2025-01-01T00:00:00Z); the core is run at the same time.
    fn now(&self) -> i64 {
        common::now_secs(&self.proxy)
    }

    /// Standard claims valid now.
    fn claims(&self, sub: &str) -> Value {
        common::claims(&self.proxy, sub)
    }

    fn core(&self, headers: &Headers) -> Core {
        let req = CoreRequest(headers.clone());
        let crypto = Counting::default();
        let keys = LocalKeys(&self.config);
        let now = u64::try_from(self.now()).expect("clock after 1970");
        let verdict = Authenticator::new(&self.config, &keys, &crypto, now).decide(&req);
        let crypto_calls = crypto.calls.get();
        match verdict {
            Verdict::Allow(verified) => Core {
                status: 200,
                code: None,
                crypto_calls,
                mutations: Some(mutations(&self.config, &verified, &req)),
            },
            Verdict::Deny(rejection) => {
                let reply = local_reply(rejection, &req);
                assert_nothing_echoed(headers, &reply.body, &reply.headers);
                let body: Value = serde_json::from_str(&reply.body).expect("JSON body");
                Core {
                    status: reply.status,
                    code: body["code"].as_str().map(str::to_owned),
                    crypto_calls,
                    mutations: None,
                }
            }
            Verdict::Pending(p) => panic!("local keys never pend, got Pending({p:?})"),
        }
    }

    /// Runs `headers` through the core and through the filter on the mock host; both must come
    /// to `want`. Returns the core's view and the harness request (for header checks).
    fn check(&self, case: &str, headers: Headers, want: Want) -> (Core, harness::Request<'_>) {
        let core = self.core(&headers);
        assert_eq!((core.status, core.code.as_deref()), want.parts(), "core: {case}");

        let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let req = self.vm.request(&pairs);
        let status = req.status();
        let code = req.local_reply().map(|reply| {
            let reply_headers: Vec<(String, String)> = reply.headers.clone();
            assert_nothing_echoed(&headers, &reply.body_text(), &reply_headers);
            let body: Value = serde_json::from_str(&reply.body_text()).expect("JSON body");
            body["code"].as_str().map(str::to_owned).unwrap_or_default()
        });
        assert_eq!((status, code.as_deref()), want.parts(), "filter on the mock host: {case}");
        (core, req)
    }

    /// [`Rig::check`] for a token in `Authorization: Bearer` on `/api`.
    fn token(&self, case: &str, token: &str, want: Want) -> (Core, harness::Request<'_>) {
        self.check(case, bearer(token), want)
    }

    /// A token that must be refused before any signature is computed.
    fn refused_before_crypto(&self, case: &str, token: &str, want: Want) {
        let (core, _) = self.token(case, token, want);
        assert_eq!(core.crypto_calls, 0, "{case}: refused only after signature verification");
    }
}

/// No credential material comes back in a reply: no piece (16+ characters) of any request
/// header value appears in the body or in a reply header.
fn assert_nothing_echoed(request: &Headers, body: &str, reply_headers: &[(String, String)]) {
    let carried = request.iter().filter_map(|(k, v)| match k.as_str() {
        ":path" => v.split_once('?').map(|(_, q)| (k, q.to_string())),
        k2 if k2.starts_with(':') => None,
        _ => Some((k, v.clone())),
    });
    for (name, value) in carried {
        for piece in value.split([' ', '.', ';', '=', '&', '?']).filter(|p| p.len() >= 16) {
            assert!(!body.contains(piece), "reply body echoes request header {name}");
            for (k, v) in reply_headers {
                assert!(!v.contains(piece), "reply header {k} echoes request header {name}");
            }
        }
    }
}

fn get(path: &str) -> Headers {
    [(":method", "GET"), (":path", path), (":authority", "api.example.com"), (":scheme", "https")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn bearer(token: &str) -> Headers {
    let mut h = get("/api");
    h.push(("authorization".into(), format!("Bearer {token}")));
    h
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn without(mut claims: Value, name: &str) -> Value {
    claims.as_object_mut().expect("claims object").remove(name);
    claims
}

/// The keys of the standard rig: RS256 (RSA 2048 "a"), ES256 (P-256 "a"), ES384 (P-384 "a"),
/// each published with its own `kid` and `alg`.
struct Keys {
    rs: SigningKey,
    es: SigningKey,
    es384: SigningKey,
}

fn keys() -> Keys {
    Keys { rs: SigningKey::fixed(Alg::RS256), es: SigningKey::fixed(Alg::ES256), es384: SigningKey::fixed(Alg::ES384) }
}

/// Provider `demo` (issuer, audience, the three keys) with identity headers for `sub`,
/// `name`, `roles`, `tenants.T1.roles` and `meta`; required on every path but `/healthz`.
fn standard_provider(k: &Keys) -> Value {
    let mut p = common::local_provider(&[&k.rs, &k.es, &k.es384]);
    p["claim_to_headers"] = json!([
        {"header_name": "x-jwt-sub", "claim_name": "sub"},
        {"header_name": "x-jwt-name", "claim_name": "name"},
        {"header_name": "x-jwt-roles", "claim_name": "roles"},
        {"header_name": "x-jwt-tenant-roles", "claim_name": "tenants.T1.roles"},
        {"header_name": "x-jwt-meta", "claim_name": "meta"}
    ]);
    p
}

fn standard() -> (Rig, Keys) {
    let k = keys();
    (Rig::new(&common::config_with(standard_provider(&k))), k)
}

/// `header.payload.signature` of a compact token.
fn split(token: &str) -> (&str, &str, &str) {
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(h), Some(p), Some(s), None) => (h, p, s),
        _ => panic!("not three segments"),
    }
}

fn signature(token: &str) -> Vec<u8> {
    b64url_decode(split(token).2).expect("signature base64url")
}

/// The token with its signature replaced by `sig`.
fn resigned(token: &str, sig: &[u8]) -> String {
    let (h, p, _) = split(token);
    format!("{h}.{p}.{}", b64url(sig))
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

// ---- the attacks -----------------------------------------------------------------------------

/// RFC 8725 §2.1 / §3.1: `alg: none` (the unsecured JWS) in any spelling. `alg` is matched
/// against the allow-list exactly and case-sensitively before anything else, so every spelling
/// is `jwt_alg_unsupported`. Without a signature the token is already not a compact JWS (three
/// non-empty segments), which is checked first: `jwt_malformed`.
mod alg_none {
    use super::*;

    #[test]
    fn any_casing_with_or_without_signature() {
        let (rig, k) = standard();
        let claims = rig.claims("admin");
        for alg in ["none", "None", "NONE", "nOnE", "none ", " none", "none\u{0}"] {
            let header = json!({"alg": alg, "typ": "JWT"});
            let with_kid = json!({"alg": alg, "typ": "JWT", "kid": k.rs.kid()});
            let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
            // A real RS256 signature over the input, and a garbage one.
            let real_sig = b64url(&k.rs.sign(input.as_bytes()));
            rig.refused_before_crypto(
                &format!("{alg:?} real signature"),
                &format!("{input}.{real_sig}"),
                ALG_UNSUPPORTED,
            );
            rig.refused_before_crypto(&format!("{alg:?} garbage signature"), &format!("{input}.c2ln"), ALG_UNSUPPORTED);
            let kid_input =
                format!("{}.{}", b64url(with_kid.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
            rig.refused_before_crypto(&format!("{alg:?} with kid"), &format!("{kid_input}.c2ln"), ALG_UNSUPPORTED);
            // Unsecured JWS form: empty third segment, or none at all.
            rig.refused_before_crypto(&format!("{alg:?} empty signature"), &format!("{input}."), MALFORMED);
            rig.refused_before_crypto(&format!("{alg:?} two segments"), &input, MALFORMED);
        }
    }

    #[test]
    fn none_as_a_key_alg_is_never_loaded() {
        // A JWKS entry declaring alg "none" is skipped (unsupported alg), never a wildcard key.
        let k = keys();
        let mut bad = k.rs.public_jwk();
        bad["alg"] = json!("none");
        bad["kid"] = json!("none-key");
        let set = json!({"keys": [bad, k.es.public_jwk()]}).to_string();
        let mut provider = common::local_provider(&[&k.es]);
        provider["local_jwks"] = json!({"inline_string": set});
        let rig = Rig::new(&common::config_with(provider));
        assert!(rig.config.skipped_keys.iter().any(|(_, s)| s.reason.contains("unsupported alg")));
        let t = mint_with_header(&k.rs, json!({"alg": "RS256", "kid": "none-key"}), rig.claims("u"));
        rig.refused_before_crypto("RS256 token naming the alg-none key", &t, KEY_NOT_FOUND);
    }
}

/// RFC 8725 §2.1 / §3.1, CVE-2015-9235 and friends: algorithm confusion. An attacker signs an
/// HS256/384/512 token using the server's *public* key as the HMAC secret; a library that lets
/// the token's `alg` pick the algorithm would verify it with the RSA/EC public key bytes. HS*
/// is not on the allow-list: refused as `jwt_alg_unsupported` before any key is looked at.
mod hmac_confusion {
    use super::*;
    use demo_idp::{mint_hs, public_key_pem};
    use jwt_authn_wasm::hostsig::{ec_spki, rsa_spki, Curve};

    fn hs_token(alg: &str, kid: Option<&str>, claims: &Value, secret: &[u8]) -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        mint_hs(&header, claims, secret)
    }

    /// Every way an attacker may guess the server serialises its public key.
    fn public_key_encodings(key: &SigningKey) -> Vec<(String, Vec<u8>)> {
        let jwk = key.public_jwk();
        let field = |f: &str| b64url_decode(jwk[f].as_str().expect("jwk member")).expect("b64url");
        let (der, raw) = if jwk["kty"] == "RSA" {
            (rsa_spki(&field("n"), &field("e")), field("n"))
        } else {
            let point = [&[4u8][..], &field("x"), &field("y")].concat();
            let curve = if jwk["crv"] == "P-256" { Curve::P256 } else { Curve::P384 };
            (ec_spki(curve, &point), point)
        };
        let pem = public_key_pem(&der);
        vec![
            ("PEM (SPKI)".into(), pem.clone().into_bytes()),
            ("PEM without trailing newline".into(), pem.trim_end().as_bytes().to_vec()),
            ("PEM with CRLF".into(), pem.replace('\n', "\r\n").into_bytes()),
            ("DER (SPKI)".into(), der),
            ("JWK JSON".into(), jwk.to_string().into_bytes()),
            ("JWKS JSON as configured".into(), jwks(&[key]).into_bytes()),
            ("raw modulus / EC point".into(), raw),
        ]
    }

    #[test]
    fn hs_tokens_keyed_with_the_public_key_are_refused_before_crypto() {
        let (rig, k) = standard();
        let claims = rig.claims("admin");
        for key in [&k.rs, &k.es, &k.es384] {
            for (encoding, secret) in public_key_encodings(key) {
                for alg in ["HS256", "HS384", "HS512"] {
                    for kid in [Some(key.kid()), None] {
                        let t = hs_token(alg, kid, &claims, &secret);
                        let case = format!("{alg} keyed with {} {encoding}, kid {kid:?}", key.kid());
                        rig.refused_before_crypto(&case, &t, ALG_UNSUPPORTED);
                    }
                }
            }
        }
    }

    #[test]
    fn symmetric_keys_in_the_jwks_are_never_loaded() {
        // Even a JWKS that (wrongly) publishes an `oct` key cannot make HS* usable: the entry
        // is skipped at load time, and the alg is refused before key selection anyway.
        let k = keys();
        let secret = b"correct horse battery staple";
        let set =
            json!({"keys": [{"kty": "oct", "kid": "hs", "alg": "HS256", "k": b64url(secret)}, k.rs.public_jwk()]});
        let mut provider = common::local_provider(&[&k.rs]);
        provider["local_jwks"] = json!({"inline_string": set.to_string()});
        let rig = Rig::new(&common::config_with(provider));
        assert_eq!(rig.config.skipped_keys.len(), 1, "{:?}", rig.config.skipped_keys);
        let claims = rig.claims("admin");
        rig.refused_before_crypto(
            "HS256 with the oct key's secret",
            &hs_token("HS256", Some("hs"), &claims, secret),
            ALG_UNSUPPORTED,
        );
        let t = mint_with_header(&k.rs, json!({"alg": "RS256", "kid": "hs"}), claims);
        rig.refused_before_crypto("RS256 naming the skipped oct key", &t, KEY_NOT_FOUND);
    }
}

/// RFC 8725 §3.1: the key decides the algorithm, not the token. A token whose `alg` does not
/// fit the key its `kid` names — wrong key type, or another algorithm than the key's declared
/// `alg` — finds no key (`jwt_key_not_found`) and never reaches the math.
mod alg_key_mismatch {
    use super::*;

    #[test]
    fn token_alg_must_fit_the_key_type_and_declared_alg() {
        let (rig, k) = standard();
        let c = rig.claims("u");
        let ps256 = k.rs.clone().with_alg(Alg::PS256).expect("RSA key signs PS256");
        let cases: Vec<(&str, String)> = vec![
            (
                "RS256 token naming the ES256 key",
                mint_with_header(&k.rs, json!({"alg": "RS256", "kid": k.es.kid()}), c.clone()),
            ),
            (
                "ES256 token naming the RSA key",
                mint_with_header(&k.es, json!({"alg": "ES256", "kid": k.rs.kid()}), c.clone()),
            ),
            (
                "PS256 token naming the RS256-declared key",
                mint_with_header(&ps256, json!({"alg": "PS256", "kid": k.rs.kid()}), c.clone()),
            ),
            (
                "PS256 token without kid (the only RSA key declares RS256)",
                mint_with_header(&ps256, json!({"alg": "PS256"}), c.clone()),
            ),
            (
                "RS512 token naming the RS256-declared key",
                mint_with_header(
                    &k.rs.clone().with_alg(Alg::RS512).expect("RS512"),
                    json!({"alg": "RS512", "kid": k.rs.kid()}),
                    c.clone(),
                ),
            ),
            (
                "ES384 token naming the P-256 key",
                mint_with_header(&k.es384, json!({"alg": "ES384", "kid": k.es.kid()}), c.clone()),
            ),
            (
                "ES256 token naming the P-384 key",
                mint_with_header(&k.es, json!({"alg": "ES256", "kid": k.es384.kid()}), c.clone()),
            ),
        ];
        for (case, t) in cases {
            rig.refused_before_crypto(case, &t, KEY_NOT_FOUND);
        }
        // Control: the same keys with their own algorithms pass.
        for key in [&k.rs, &k.es, &k.es384] {
            rig.token(&format!("control {}", key.kid()), &mint(key, c.clone()), ALLOW);
        }
    }

    #[test]
    fn an_ec_signature_relabelled_as_rsa_or_the_other_curve() {
        // The signature bytes of a valid ES256 token under a header that claims another alg.
        let (rig, k) = standard();
        let es_token = mint(&k.es, rig.claims("u"));
        let sig = signature(&es_token);
        for (alg, kid) in [("RS256", k.rs.kid()), ("ES384", k.es384.kid())] {
            let relabelled = mint_with_header(&k.es, json!({"alg": alg, "kid": kid}), rig.claims("u"));
            let t = resigned(&relabelled, &sig);
            // The kid names a key of the claimed alg: key found, signature wrong for it.
            let (core, _) = rig.token(&format!("ES256 signature relabelled {alg}"), &t, SIGNATURE_INVALID);
            assert_eq!(core.crypto_calls, 1);
        }
    }
}

/// RFC 8725 §3.10 (and CVE-2018-0114): keys named by the token itself — an embedded `jwk`,
/// a `jku`/`x5u` URL, an `x5c` chain — are never used and never fetched. The attacker's own
/// key signs each token; only the configured JWKS counts.
mod token_supplied_keys {
    use super::*;

    fn attackers() -> Vec<(SigningKey, &'static str)> {
        vec![
            (SigningKey::fixed_key(FixedKey::Rsa2048B, Alg::RS256).with_kid("attacker-rsa"), "RS256"),
            (SigningKey::fixed_key(FixedKey::P256B, Alg::ES256).with_kid("attacker-ec"), "ES256"),
        ]
    }

    fn spki_b64(key: &SigningKey) -> String {
        use jwt_authn_wasm::hostsig::{ec_spki, rsa_spki, Curve};
        let jwk = key.public_jwk();
        let f = |n: &str| b64url_decode(jwk[n].as_str().expect("member")).expect("b64url");
        let der = if jwk["kty"] == "RSA" {
            rsa_spki(&f("n"), &f("e"))
        } else {
            ec_spki(Curve::P256, &[&[4u8][..], &f("x"), &f("y")].concat())
        };
        base64::engine::general_purpose::STANDARD.encode(der)
    }

    #[test]
    fn embedded_and_linked_keys_are_ignored() {
        let (rig, k) = standard();
        let c = rig.claims("admin");
        for (attacker, alg) in attackers() {
            let victim_kid = if alg == "RS256" { k.rs.kid() } else { k.es.kid() };
            let jwk = attacker.public_jwk();
            let url = "http://127.0.0.1:1/attacker/jwks.json";
            let cases: Vec<(&str, Value, Want)> = vec![
                ("jwk + victim kid", json!({"alg": alg, "kid": victim_kid, "jwk": jwk}), SIGNATURE_INVALID),
                ("jwk, no kid", json!({"alg": alg, "jwk": jwk}), SIGNATURE_INVALID),
                ("jwk + attacker kid", json!({"alg": alg, "kid": attacker.kid(), "jwk": jwk}), KEY_NOT_FOUND),
                ("jku + attacker kid", json!({"alg": alg, "kid": attacker.kid(), "jku": url}), KEY_NOT_FOUND),
                ("jku + victim kid", json!({"alg": alg, "kid": victim_kid, "jku": url}), SIGNATURE_INVALID),
                ("x5u + attacker kid", json!({"alg": alg, "kid": attacker.kid(), "x5u": url}), KEY_NOT_FOUND),
                (
                    "x5c + victim kid",
                    json!({"alg": alg, "kid": victim_kid, "x5c": [spki_b64(&attacker)]}),
                    SIGNATURE_INVALID,
                ),
                (
                    "x5c + x5t, no kid",
                    json!({"alg": alg, "x5c": [spki_b64(&attacker)], "x5t": "AAAA", "x5t#S256": "AAAA"}),
                    SIGNATURE_INVALID,
                ),
                (
                    "everything at once",
                    json!({"alg": alg, "kid": attacker.kid(), "jwk": jwk, "jku": url, "x5u": url, "x5c": [spki_b64(&attacker)]}),
                    KEY_NOT_FOUND,
                ),
            ];
            for (case, header, want) in cases {
                let t = mint_with_header(&attacker, header, c.clone());
                let (core, req) = rig.token(&format!("{alg} {case}"), &t, want);
                // Only configured keys were tried: one for a victim kid, none for the attacker's.
                assert!(core.crypto_calls <= 1, "{case}: {} verifications", core.crypto_calls);
                assert_eq!(req.header("x-jwt-sub"), None);
            }
        }
        // Nothing was fetched: no jku/x5u call left the filter.
        assert!(rig.vm.pending_calls().is_empty(), "{:?}", rig.vm.pending_calls());
    }

    #[test]
    fn control_the_attack_tokens_are_genuinely_signed() {
        // With the attacker's key configured, the very same kind of token verifies: the
        // refusals above come from key selection, not from a broken token.
        let k = keys();
        let (rsa, _) = attackers().remove(0);
        let rig = Rig::new(&common::config_with(common::local_provider(&[&k.rs, &rsa])));
        let t =
            mint_with_header(&rsa, json!({"alg": "RS256", "kid": rsa.kid(), "jwk": rsa.public_jwk()}), rig.claims("a"));
        rig.token("attacker key configured", &t, ALLOW);
    }
}

/// RFC 8725 §3.10: `kid` is an opaque label compared byte for byte with the JWKS, never a path,
/// a query or a pattern, and bounded in length (256 bytes: longer is `jwt_header_invalid`).
mod kid_injection {
    use super::*;

    #[test]
    fn path_sql_and_control_kids_find_no_key() {
        let (rig, k) = standard();
        let c = rig.claims("u");
        let real = k.rs.kid().to_string();
        let kids = [
            "../../etc/passwd".to_string(),
            "../../../../../../dev/null".to_string(),
            "/proc/self/environ".to_string(),
            "' OR 1=1 --".to_string(),
            "\" OR \"\"=\"".to_string(),
            "*".to_string(),
            "%".to_string(),
            ".*".to_string(),
            "\u{0}".to_string(),
            format!("{real}\u{0}"),
            format!("{real}\u{0}evil"),
            format!("{real} "),
            real.to_uppercase(),
            format!("{real}/../{real}"),
            "$(id)".to_string(),
            "http://127.0.0.1:1/key".to_string(),
        ];
        for kid in kids {
            let t = mint_with_header(&k.rs, json!({"alg": "RS256", "kid": kid}), c.clone());
            rig.refused_before_crypto(&format!("kid {kid:?}"), &t, KEY_NOT_FOUND);
        }
        for bad in [json!(""), json!(7), json!(null), json!(["a"]), json!({"$ne": ""})] {
            let t = mint_with_header(&k.rs, json!({"alg": "RS256", "kid": bad}), c.clone());
            rig.refused_before_crypto(&format!("kid {bad}"), &t, HEADER_INVALID);
        }
    }

    #[test]
    fn strange_kids_are_plain_labels() {
        // A JWKS whose keys carry such kids: exactly those strings select them, nothing else.
        let k = keys();
        let rs = k.rs.clone().with_kid("../../etc/passwd");
        let es = k.es.clone().with_kid("' OR 1=1 --");
        let rig = Rig::new(&common::config_with(common::local_provider(&[&rs, &es])));
        let c = rig.claims("u");
        rig.token("path kid, exact", &mint(&rs, c.clone()), ALLOW);
        rig.token("SQL kid, exact", &mint(&es, c.clone()), ALLOW);
        for kid in ["../../etc/../etc/passwd", "../../etc/passwd/", "/etc/passwd", "' OR 1=1 -- ", "' or 1=1 --"] {
            let t = mint_with_header(&rs, json!({"alg": "RS256", "kid": kid}), c.clone());
            rig.refused_before_crypto(&format!("near miss {kid:?}"), &t, KEY_NOT_FOUND);
        }
    }

    #[test]
    fn kid_length_is_bounded() {
        let (rig, k) = standard();
        let c = rig.claims("u");
        let token = |kid: &str| mint_with_header(&k.rs, json!({"alg": "RS256", "kid": kid}), c.clone());
        rig.refused_before_crypto("256-byte kid", &token(&"k".repeat(256)), KEY_NOT_FOUND);
        rig.refused_before_crypto("257-byte kid", &token(&"k".repeat(257)), HEADER_INVALID);
        // The limit is in bytes: 128 two-byte characters fit, 129 do not.
        rig.refused_before_crypto("256 bytes of é", &token(&"é".repeat(128)), KEY_NOT_FOUND);
        rig.refused_before_crypto("258 bytes of é", &token(&"é".repeat(129)), HEADER_INVALID);
        // 10 KB: beyond max_token_size (8192) the token is not even decoded.
        let ten_kb = token(&"k".repeat(10 * 1024));
        rig.refused_before_crypto("10 KB kid, default max_token_size", &ten_kb, TOO_LARGE);
        // With room for it, the kid limit itself refuses it.
        let mut config = common::config_with(standard_provider(&k));
        config["max_token_size"] = json!(65536);
        let big = Rig::new(&config);
        let t = mint_with_header(&k.rs, json!({"alg": "RS256", "kid": "k".repeat(10 * 1024)}), big.claims("u"));
        big.refused_before_crypto("10 KB kid, max_token_size 65536", &t, HEADER_INVALID);
    }
}

/// ECDSA signature values. CVE-2022-21449 ("psychic signatures", Java 15-18): r = s = 0
/// verified any message. r and s must lie in [1, n-1]; anything else is refused before the
/// curve math. High-s (s > n/2) signatures are *accepted*: ECDSA is malleable — (r, n - s) is
/// valid whenever (r, s) is — and neither RFC 7518 nor Envoy's jwt_authn demand low-s; a JWT's
/// identity is its claims, not its signature bytes, so malleability grants nothing (Wycheproof
/// marks such signatures valid too).
mod ecdsa_signature_values {
    use super::*;
    use rsa::BigUint;

    const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
    const P384_N: &str =
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";

    fn be(v: &BigUint, len: usize) -> Vec<u8> {
        let b = v.to_bytes_be();
        assert!(b.len() <= len);
        [vec![0u8; len - b.len()], b].concat()
    }

    #[test]
    fn zero_out_of_range_and_high_s() {
        let (rig, k) = standard();
        for (key, n_hex) in [(&k.es, P256_N), (&k.es384, P384_N)] {
            let good = mint(key, rig.claims("u"));
            let sig = signature(&good);
            let half = sig.len() / 2;
            let (r, s) = sig.split_at(half);
            let n = hex(n_hex);
            let zero = vec![0u8; half];
            let ones = vec![0xffu8; half];
            let n_plus_1 = be(&(BigUint::from_bytes_be(&n) + BigUint::from(1u32)), half);
            let one = be(&BigUint::from(1u32), half);
            let alg = format!("{:?}", key.alg());
            let cases: Vec<(&str, Vec<u8>)> = vec![
                ("r = s = 0 (psychic signature)", [&zero[..], &zero[..]].concat()),
                ("r = 0", [&zero[..], s].concat()),
                ("s = 0", [r, &zero[..]].concat()),
                ("r = s = n", [&n[..], &n[..]].concat()),
                ("r = n", [&n[..], s].concat()),
                ("s = n", [r, &n[..]].concat()),
                ("r = n + 1", [&n_plus_1[..], s].concat()),
                ("s = n + 1", [r, &n_plus_1[..]].concat()),
                ("r = s = 2^k - 1", [&ones[..], &ones[..]].concat()),
                ("r = s = 1", [&one[..], &one[..]].concat()),
            ];
            for (case, forged) in cases {
                rig.token(&format!("{alg} {case}"), &resigned(&good, &forged), SIGNATURE_INVALID);
            }
            // High-s: the other valid signature of the same message.
            let high_s = BigUint::from_bytes_be(&n) - BigUint::from_bytes_be(s);
            let flipped = [r.to_vec(), be(&high_s, half)].concat();
            rig.token(&format!("{alg} (r, n - s)"), &resigned(&good, &flipped), ALLOW);
            rig.token(&format!("{alg} original"), &good, ALLOW);
        }
    }
}

/// Signatures of the wrong shape: empty, one byte short or long, DER-encoded ECDSA
/// (`SEQUENCE {r, s}`) instead of JWS's fixed-width `r || s` (RFC 7518 §3.4). All refused;
/// an empty third segment is not a compact JWS at all.
mod signature_shape {
    use super::*;

    #[test]
    fn wrong_lengths_and_encodings() {
        let (rig, k) = standard();
        let ps = k.rs.clone().with_alg(Alg::PS256).expect("PS256").with_kid("ps");
        let rig_ps = Rig::new(&common::config_with(common::local_provider(&[&ps])));
        for (rig, key) in [(&rig, &k.rs), (&rig, &k.es), (&rig, &k.es384), (&rig_ps, &ps)] {
            let good = mint(key, rig.claims("u"));
            let sig = signature(&good);
            let alg = format!("{:?}", key.alg());
            rig.token(&format!("{alg} control"), &good, ALLOW);
            let (h, p, _) = split(&good);
            rig.refused_before_crypto(&format!("{alg} empty signature"), &format!("{h}.{p}."), MALFORMED);
            let mut cases: Vec<(&str, Vec<u8>)> = vec![
                ("one byte short (first dropped)", sig[1..].to_vec()),
                ("one byte short (last dropped)", sig[..sig.len() - 1].to_vec()),
                ("one byte long (leading zero)", [&[0u8][..], &sig].concat()),
                ("one byte long (trailing zero)", [&sig[..], &[0u8][..]].concat()),
                ("doubled", [&sig[..], &sig[..]].concat()),
                ("single byte", vec![0]),
            ];
            if !key.alg().is_rsa() {
                let der = jwt_authn_wasm::hostsig::ecdsa_p1363_to_der(&sig, sig.len() / 2).expect("DER");
                cases.push(("DER-encoded (r, s)", der));
            }
            for (case, bad) in cases {
                rig.token(&format!("{alg} {case}"), &resigned(&good, &bad), SIGNATURE_INVALID);
            }
        }
    }
}

/// RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` lists an extension it does
/// not implement (e.g. `b64: false`, RFC 7797, which changes what the signature covers). We
/// implement none: any well-formed `crit` is `jwt_crit_unsupported`, a malformed one
/// `jwt_header_invalid`; both before the signature.
mod crit_header {
    use super::*;

    #[test]
    fn unknown_or_malformed_crit_is_refused() {
        let (rig, k) = standard();
        let c = rig.claims("u");
        let kid = k.rs.kid();
        let cases = [
            (json!({"alg": "RS256", "kid": kid, "crit": ["exp"], "exp": 1}), CRIT_UNSUPPORTED),
            (json!({"alg": "RS256", "kid": kid, "crit": ["b64"], "b64": false}), CRIT_UNSUPPORTED),
            (json!({"alg": "RS256", "kid": kid, "crit": ["http://example.com/ext"]}), CRIT_UNSUPPORTED),
            (json!({"alg": "RS256", "kid": kid, "crit": ["alg"]}), CRIT_UNSUPPORTED),
            (json!({"alg": "RS256", "kid": kid, "crit": []}), HEADER_INVALID),
            (json!({"alg": "RS256", "kid": kid, "crit": "b64"}), HEADER_INVALID),
            (json!({"alg": "RS256", "kid": kid, "crit": [1]}), HEADER_INVALID),
            (json!({"alg": "RS256", "kid": kid, "crit": null}), HEADER_INVALID),
        ];
        for (header, want) in cases {
            rig.refused_before_crypto(&format!("{header}"), &mint_with_header(&k.rs, header.clone(), c.clone()), want);
        }
    }
}

/// RFC 7519 §5.2 / RFC 8725 §2.8: nested JWTs (`cty: JWT`) would need a second verification
/// with its own rules; refused (`jwt_header_invalid`) rather than forwarding an inner token
/// nobody checked. A payload that is itself a token is not a claims object: `jwt_malformed`.
mod nested_jwt {
    use super::*;

    #[test]
    fn nested_tokens_are_refused() {
        let (rig, k) = standard();
        let inner = mint(&k.es, rig.claims("admin"));
        let kid = k.rs.kid();
        for cty in ["JWT", "jwt", "Jwt"] {
            let t = mint_raw_parts(
                &k.rs,
                json!({"alg": "RS256", "kid": kid, "cty": cty}).to_string().as_bytes(),
                inner.as_bytes(),
            );
            rig.refused_before_crypto(&format!("cty {cty}, inner token payload"), &t, HEADER_INVALID);
            let t = mint_with_header(&k.rs, json!({"alg": "RS256", "kid": kid, "cty": cty}), rig.claims("u"));
            rig.refused_before_crypto(&format!("cty {cty}, claims payload"), &t, HEADER_INVALID);
        }
        let t = mint_with_header(&k.rs, json!({"alg": "RS256", "kid": kid, "cty": 1}), rig.claims("u"));
        rig.refused_before_crypto("cty not a string", &t, HEADER_INVALID);
        // Another content type with an inner token as payload: not a claims object.
        let t = mint_raw_parts(
            &k.rs,
            json!({"alg": "RS256", "kid": kid, "cty": "application/jose"}).to_string().as_bytes(),
            inner.as_bytes(),
        );
        rig.refused_before_crypto("inner token as payload", &t, MALFORMED);
        let quoted = Value::String(inner).to_string();
        let t = mint_raw_parts(&k.rs, json!({"alg": "RS256", "kid": kid}).to_string().as_bytes(), quoted.as_bytes());
        rig.refused_before_crypto("inner token as a JSON string payload", &t, MALFORMED);
    }
}

/// RFC 7515 §2 / RFC 8725 §3.x: exactly one encoding per token. base64url without padding, the
/// URL-safe alphabet only, no whitespace, and canonical trailing bits (a second spelling of the
/// same bytes lets two parties disagree about what "the same token" is, e.g. in caches and
/// deny-lists). Whitespace around the token in the header is trimmed (RFC 6750 `b64token`).
mod base64_encoding {
    use super::*;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;

    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    fn lenient() -> GeneralPurpose {
        let config = GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent);
        GeneralPurpose::new(&base64::alphabet::URL_SAFE, config)
    }

    /// The same bytes with non-zero unused trailing bits, if the segment has any.
    fn non_canonical(segment: &str) -> Option<String> {
        if segment.len() % 4 < 2 {
            return None;
        }
        let last = segment.chars().last()?;
        let value = ALPHABET.find(last)?;
        let twisted = ALPHABET.chars().nth(value | 1)?;
        let out = format!("{}{twisted}", &segment[..segment.len() - 1]);
        (out != segment).then_some(out)
    }

    #[test]
    fn padding_alphabet_and_trailing_bits() {
        let (rig, k) = standard();
        for key in [&k.rs, &k.es] {
            let good = mint(key, rig.claims("u"));
            let (h, p, s) = split(&good);
            let alg = format!("{:?}", key.alg());
            let mut cases: Vec<(String, String)> = vec![
                ("padded header".into(), format!("{h}=.{p}.{s}")),
                ("padded payload".into(), format!("{h}.{p}=.{s}")),
                ("padded signature".into(), format!("{h}.{p}.{s}=")),
                ("padded signature ==".into(), format!("{h}.{p}.{s}==")),
                ("standard alphabet '+'".into(), format!("{h}.{p}.+{}", &s[1..])),
                ("standard alphabet '/'".into(), format!("{h}.{p}.{}/", &s[..s.len() - 1])),
                ("percent-encoded".into(), format!("{h}.{p}.%2D{}", &s[1..])),
            ];
            let parts = [h, p, s];
            for (idx, segment) in ["header", "payload", "signature"].iter().enumerate() {
                if let Some(twisted) = non_canonical(parts[idx]) {
                    // Same bytes to a lenient decoder: a true second spelling.
                    assert_eq!(lenient().decode(&twisted).ok(), lenient().decode(parts[idx]).ok());
                    let mut new = parts.map(str::to_owned);
                    new[idx] = twisted;
                    cases.push((format!("non-canonical trailing bits in the {segment}"), new.join(".")));
                }
            }
            assert!(cases.len() > 7, "{alg}: no segment with trailing bits to twist");
            for (case, t) in &cases {
                rig.refused_before_crypto(&format!("{alg} {case}"), t, MALFORMED);
            }
            rig.token(&format!("{alg} control"), &good, ALLOW);
        }
    }

    #[test]
    fn whitespace_inside_and_around() {
        let (rig, k) = standard();
        let good = mint(&k.rs, rig.claims("u"));
        let (h, p, s) = split(&good);
        let mid = p.len() / 2;
        for ws in [" ", "\t", "\u{a0}", "\u{3000}"] {
            let inside = format!("{h}.{}{ws}{}.{s}", &p[..mid], &p[mid..]);
            rig.refused_before_crypto(&format!("{ws:?} inside the payload"), &inside, MALFORMED);
            let around_dot = format!("{h}{ws}.{p}.{s}");
            rig.refused_before_crypto(&format!("{ws:?} before a dot"), &around_dot, MALFORMED);
        }
        // CR/LF cannot be in a header value in Envoy; the core refuses them all the same.
        for ws in ["\n", "\r\n"] {
            let inside = format!("{h}.{}{ws}{}.{s}", &p[..mid], &p[mid..]);
            let core = rig.core(&bearer(&inside));
            assert_eq!((core.status, core.code.as_deref()), MALFORMED.parts(), "{ws:?} inside");
        }
        // Spaces and tabs around the token (after the scheme) are not part of it.
        let mut h2 = get("/api");
        h2.push(("authorization".into(), format!("Bearer  \t{good} \t")));
        rig.check("blanks around the token", h2, ALLOW);
    }
}

/// Compact serialization is exactly three non-empty segments (RFC 7515 §7.1): extra dots,
/// empty segments, leading or trailing dots and the five-segment JWE shape are `jwt_malformed`.
mod segment_structure {
    use super::*;

    #[test]
    fn dots_and_empty_segments() {
        let (rig, k) = standard();
        let good = mint(&k.rs, rig.claims("u"));
        let (h, p, s) = split(&good);
        let cases = [
            ("trailing dot", format!("{good}.")),
            ("leading dot", format!(".{good}")),
            ("fourth segment", format!("{good}.{s}")),
            ("five segments (JWE shape)", format!("{h}.{p}.{s}.{s}.{s}")),
            ("empty second segment", format!("{h}..{s}")),
            ("double dot after header", format!("{h}..{p}.{s}")),
            ("double dot before signature", format!("{h}.{p}..{s}")),
            ("empty header", format!(".{p}.{s}")),
            ("empty signature", format!("{h}.{p}.")),
            ("two segments", format!("{h}.{p}")),
            ("one segment", h.to_string()),
            ("only dots", "..".to_string()),
            ("three dots", "...".to_string()),
            ("one dot", ".".to_string()),
            ("unicode dot", format!("{h}\u{ff0e}{p}.{s}")),
        ];
        for (case, t) in cases {
            rig.refused_before_crypto(case, &t, MALFORMED);
        }
        // No token at all after the scheme: a missing credential, not a malformed one.
        for value in ["Bearer ", "Bearer", "Bearer \t "] {
            let mut h2 = get("/api");
            h2.push(("authorization".into(), value.into()));
            rig.check(&format!("authorization {value:?}"), h2, MISSING);
        }
    }
}

/// RFC 8725 §3.x / RFC 7515 §5.2: duplicate member names. JSON parsers disagree on which of
/// two `alg` (or `sub`) members wins; the strict parser refuses the whole token
/// (`jwt_malformed`), at any depth and however the name is escaped.
mod duplicate_json_members {
    use super::*;

    #[test]
    fn in_header_and_payload() {
        let (rig, k) = standard();
        let kid = k.rs.kid();
        let now = rig.now();
        let good_claims = format!(r#""iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{}"#, now + 600);
        let header = format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
        let cases: Vec<(&str, String, String)> = vec![
            (
                "alg twice (none last)",
                format!(r#"{{"alg":"RS256","kid":"{kid}","alg":"none"}}"#),
                format!("{{{good_claims}}}"),
            ),
            (
                "alg twice (none first)",
                format!(r#"{{"alg":"none","alg":"RS256","kid":"{kid}"}}"#),
                format!("{{{good_claims}}}"),
            ),
            ("kid twice", format!(r#"{{"alg":"RS256","kid":"x","kid":"{kid}"}}"#), format!("{{{good_claims}}}")),
            ("sub twice", header.clone(), format!(r#"{{{good_claims},"sub":"user","sub":"admin"}}"#)),
            (
                "exp twice",
                header.clone(),
                format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":1,"exp":{}}}"#, now + 600),
            ),
            (
                "iss twice",
                header.clone(),
                format!(r#"{{"iss":"https://evil","aud":"{AUDIENCE}","exp":{},"iss":"{ISSUER}"}}"#, now + 600),
            ),
            (
                "escaped duplicate \\u0073ub",
                header.clone(),
                format!(r#"{{{good_claims},"sub":"user","\u0073ub":"admin"}}"#),
            ),
            (
                "nested duplicate",
                header.clone(),
                format!(r#"{{{good_claims},"tenants":{{"T1":{{"roles":["user"],"roles":["admin"]}}}}}}"#),
            ),
        ];
        for (case, h, p) in cases {
            let t = mint_raw_parts(&k.rs, h.as_bytes(), p.as_bytes());
            rig.refused_before_crypto(case, &t, MALFORMED);
        }
        // Control: the same bytes without the duplicate verify.
        let t = mint_raw_parts(&k.rs, header.as_bytes(), format!(r#"{{{good_claims},"sub":"user"}}"#).as_bytes());
        rig.token("control", &t, ALLOW);
    }
}

/// Size: a token over `max_token_size` (default 8192 bytes) is refused before it is decoded
/// (`jwt_too_large`); the limit is inclusive.
mod oversized_token {
    use super::*;

    /// A valid RS256 token of exactly `len` bytes (a padding claim, with or without `typ`), if
    /// one exists. Lengths are computed first; only the match is signed.
    fn token_of_len(rig: &Rig, key: &SigningKey, len: usize) -> Option<String> {
        let b64_len = |bytes: usize| (bytes * 4).div_ceil(3);
        let sig_len = b64_len(256);
        let headers =
            [json!({"alg": "RS256", "kid": key.kid()}), json!({"alg": "RS256", "kid": key.kid(), "typ": "JWT"})];
        for n in 5000..6500 {
            let claims = with(rig.claims("u"), "pad", json!("x".repeat(n)));
            let payload = claims.to_string().len();
            for header in &headers {
                if b64_len(header.to_string().len()) + 1 + b64_len(payload) + 1 + sig_len == len {
                    let t = mint_with_header(key, header.clone(), claims);
                    assert_eq!(t.len(), len);
                    return Some(t);
                }
            }
        }
        None
    }

    #[test]
    fn the_limit_is_exact_and_checked_first() {
        let (rig, k) = standard();
        let at_limit = token_of_len(&rig, &k.rs, 8192).expect("an 8192-byte token");
        let over = token_of_len(&rig, &k.rs, 8193).or_else(|| token_of_len(&rig, &k.rs, 8194)).expect("over");
        rig.token("valid token of exactly 8192 bytes", &at_limit, ALLOW);
        rig.refused_before_crypto(&format!("valid token of {} bytes", over.len()), &over, TOO_LARGE);
        // Garbage: too large wins over malformed, so nothing of it is parsed.
        rig.refused_before_crypto("8192 bytes of garbage", &"a".repeat(8192), MALFORMED);
        rig.refused_before_crypto("8193 bytes of garbage", &"a".repeat(8193), TOO_LARGE);
        rig.refused_before_crypto("1 MiB of dots", &".".repeat(1 << 20), TOO_LARGE);
    }

    #[test]
    fn a_lower_configured_limit_applies() {
        let k = keys();
        let mut config = common::config_with(standard_provider(&k));
        config["max_token_size"] = json!(512);
        let rig = Rig::new(&config);
        rig.refused_before_crypto("RS256 token over 512 bytes", &mint(&k.rs, rig.claims("u")), TOO_LARGE);
        rig.token(
            "ES256 token under 512 bytes",
            &mint(&k.es, json!({"iss": ISSUER, "aud": AUDIENCE, "exp": rig.now() + 60})),
            ALLOW,
        );
    }
}

/// Deep JSON nesting (stack exhaustion in recursive parsers): at most `max_json_depth`
/// (default 16, the top-level object counting as 1) in the header and the payload; deeper is
/// `jwt_malformed`, and thousands of levels never reach a recursion limit.
mod json_nesting {
    use super::*;

    fn deep_claims(rig: &Rig, levels: usize, open: &str, close: &str) -> String {
        let base = rig.claims("u").to_string();
        let body = base.strip_suffix('}').expect("object");
        format!("{body},\"deep\":{}1{}}}", open.repeat(levels), close.repeat(levels))
    }

    #[test]
    fn depth_is_bounded() {
        let (rig, k) = standard();
        let header = json!({"alg": "RS256", "kid": k.rs.kid()}).to_string();
        let token = |payload: String| mint_raw_parts(&k.rs, header.as_bytes(), payload.as_bytes());
        rig.token("depth 16 (15 arrays)", &token(deep_claims(&rig, 15, "[", "]")), ALLOW);
        rig.refused_before_crypto("depth 17 (16 arrays)", &token(deep_claims(&rig, 16, "[", "]")), MALFORMED);
        rig.refused_before_crypto("depth 17 (objects)", &token(deep_claims(&rig, 16, "{\"a\":", "}")), MALFORMED);
        rig.refused_before_crypto("2000 levels", &token(deep_claims(&rig, 2000, "[", "]")), MALFORMED);
        let deep_header =
            format!(r#"{{"alg":"RS256","kid":"{}","x":{}1{}}}"#, k.rs.kid(), "[".repeat(16), "]".repeat(16));
        let t = mint_raw_parts(&k.rs, deep_header.as_bytes(), rig.claims("u").to_string().as_bytes());
        rig.refused_before_crypto("header depth 17", &t, MALFORMED);
    }
}

/// Numbers outside what a double holds (`1e400`) make the JSON invalid: `jwt_malformed`.
/// Integers beyond u64 parse as doubles; as dates they are out of range (`jwt_claim_invalid`),
/// in other claims they are just numbers.
mod huge_numbers {
    use super::*;

    fn raw(rig: &Rig, k: &Keys, extra: &str) -> String {
        let header = json!({"alg": "RS256", "kid": k.rs.kid()}).to_string();
        let base = rig.claims("u").to_string();
        let payload = format!("{},{extra}}}", base.strip_suffix('}').expect("object"));
        mint_raw_parts(&k.rs, header.as_bytes(), payload.as_bytes())
    }

    #[test]
    fn overflowing_numbers() {
        let (rig, k) = standard();
        let exp_payload = |exp: &str| {
            let header = json!({"alg": "RS256", "kid": k.rs.kid()}).to_string();
            let payload = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"u","exp":{exp}}}"#);
            mint_raw_parts(&k.rs, header.as_bytes(), payload.as_bytes())
        };
        rig.refused_before_crypto("exp 1e400", &exp_payload("1e400"), MALFORMED);
        rig.refused_before_crypto("exp -1e400", &exp_payload("-1e400"), MALFORMED);
        rig.refused_before_crypto("custom claim 1e400", &raw(&rig, &k, r#""n":1e400"#), MALFORMED);
        rig.refused_before_crypto("exp with leading zero", &exp_payload("01735690200"), MALFORMED);
        rig.refused_before_crypto("exp NaN", &exp_payload("NaN"), MALFORMED);
        rig.refused_before_crypto("exp Infinity", &exp_payload("Infinity"), MALFORMED);
        rig.token("exp 2^64", &exp_payload("18446744073709551616"), CLAIM_INVALID);
        rig.token("exp u64::MAX", &exp_payload("18446744073709551615"), CLAIM_INVALID);
        rig.token("exp 1e308", &exp_payload("1e308"), CLAIM_INVALID);
        rig.token("exp 300 digits", &exp_payload(&"9".repeat(300)), CLAIM_INVALID);
        // Exponent notation of a sane date is just a number.
        rig.token("exp in exponent notation", &exp_payload(&format!("{}e0", rig.now() + 600)), ALLOW);
        let (_, req) = rig.token("custom claim 2^64", &raw(&rig, &k, r#""n":18446744073709551616"#), ALLOW);
        assert_eq!(req.header("x-jwt-sub").as_deref(), Some("u"));
        rig.token("custom claim -1e308", &raw(&rig, &k, r#""n":-1e308"#), ALLOW);
    }
}

/// `exp`, `nbf` and `iat` are NumericDates (RFC 7519 §2): numbers, fractions allowed. A
/// string, boolean, null, negative or absurdly far value is `jwt_claim_invalid` (never "no
/// expiry"). Fractions round toward the stricter side: `exp` down, `nbf` up.
mod numeric_dates {
    use super::*;

    #[test]
    fn types_and_ranges() {
        let (rig, k) = standard();
        let now = rig.now();
        let c = rig.claims("u");
        for name in ["exp", "nbf", "iat"] {
            let bad = [
                json!((now + 600).to_string()),
                json!("soon"),
                json!(true),
                json!(null),
                json!([now + 600]),
                json!({"$date": now + 600}),
                json!(-1),
                json!(-0.5),
                json!(i64::MIN),
                json!(9_223_372_036_854_775_808u64), // 2^63, beyond i64
                json!(253_402_300_800i64),           // 10000-01-01
            ];
            for v in bad {
                rig.token(&format!("{name}: {v}"), &mint(&k.rs, with(c.clone(), name, v.clone())), CLAIM_INVALID);
            }
        }
        rig.token("exp 9999-12-31", &mint(&k.rs, with(c.clone(), "exp", json!(253_402_300_799i64))), ALLOW);
    }

    #[test]
    fn fractions_round_toward_the_stricter_side() {
        let (rig, k) = standard();
        let now = rig.now() as f64;
        let c = rig.claims("u");
        let t = |name: &str, v: f64| mint(&k.rs, with(c.clone(), name, json!(v)));
        // Clock skew is 60 s.
        rig.token("exp = now - 60.5 (floor: expired)", &t("exp", now - 60.5), EXPIRED);
        rig.token("exp = now - 59.5 (floor: now - 60, within skew)", &t("exp", now - 59.5), ALLOW);
        rig.token("exp = now - 60.000001", &t("exp", now - 60.000_001), EXPIRED);
        rig.token("nbf = now + 60.5 (ceil: not yet valid)", &t("nbf", now + 60.5), NOT_YET_VALID);
        rig.token("nbf = now + 59.5 (ceil: now + 60, within skew)", &t("nbf", now + 59.5), ALLOW);
        rig.token("nbf = now + 60.000001", &t("nbf", now + 60.000_001), NOT_YET_VALID);
        rig.token("iat fraction", &t("iat", now - 0.25), ALLOW);
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3). With audiences configured, an
/// empty array, an absent `aud` or no match is 403 `jwt_audience_not_allowed`; another type
/// is 401 `jwt_claim_invalid`. Comparison is exact.
mod audience {
    use super::*;

    #[test]
    fn empty_wrong_type_and_near_misses() {
        let (rig, k) = standard();
        let c = rig.claims("u");
        let t = |v: Value| mint(&k.rs, with(c.clone(), "aud", v));
        let cases = [
            (json!([]), AUDIENCE_NOT_ALLOWED),
            (json!(""), AUDIENCE_NOT_ALLOWED),
            (json!([""]), AUDIENCE_NOT_ALLOWED),
            (json!("DEMO-API"), AUDIENCE_NOT_ALLOWED),
            (json!("demo-api "), AUDIENCE_NOT_ALLOWED),
            (json!("demo-api,other"), AUDIENCE_NOT_ALLOWED),
            (json!("*"), AUDIENCE_NOT_ALLOWED),
            (json!(5), CLAIM_INVALID),
            (json!(null), CLAIM_INVALID),
            (json!(true), CLAIM_INVALID),
            (json!({"demo-api": true}), CLAIM_INVALID),
            (json!([["demo-api"]]), CLAIM_INVALID),
            (json!(["demo-api", 5]), CLAIM_INVALID),
            (json!(["other", "demo-api"]), ALLOW),
            (json!("demo-api"), ALLOW),
        ];
        for (aud, want) in cases {
            rig.token(&format!("aud {aud}"), &t(aud.clone()), want);
        }
        rig.token("no aud", &mint(&k.rs, without(c.clone(), "aud")), AUDIENCE_NOT_ALLOWED);
    }
}

/// `iss` is compared exactly with the provider's `issuer`: no case folding, no trailing-slash,
/// port or default-scheme normalisation. And a token cannot borrow another provider's trust:
/// whichever provider its `iss` selects, only that provider's keys verify it.
mod issuer {
    use super::*;

    #[test]
    fn variants_are_not_the_issuer() {
        let (rig, k) = standard();
        let c = rig.claims("u");
        let variants = [
            "https://idp.example.com/",
            "https://IDP.example.com",
            "HTTPS://idp.example.com",
            "https://idp.example.com.",
            "https://idp.example.com:443",
            "http://idp.example.com",
            " https://idp.example.com",
            "https://idp.example.com\u{0}",
            "https://idp.example.com/../",
            "https://idp.example.com.evil.com",
            "",
        ];
        for iss in variants {
            rig.token(&format!("iss {iss:?}"), &mint(&k.rs, with(c.clone(), "iss", json!(iss))), ISSUER_NOT_ALLOWED);
        }
        rig.token("no iss", &mint(&k.rs, without(c.clone(), "iss")), ISSUER_NOT_ALLOWED);
        rig.token("iss array", &mint(&k.rs, with(c.clone(), "iss", json!([ISSUER]))), CLAIM_INVALID);
        rig.token("iss number", &mint(&k.rs, with(c.clone(), "iss", json!(1))), CLAIM_INVALID);
    }

    #[test]
    fn a_token_cannot_borrow_another_providers_trust() {
        let k = keys();
        const OTHER: &str = "https://other.example.com";
        let mut a = common::local_provider(&[&k.rs]);
        a["audiences"] = json!([]);
        let b = json!({
            "issuer": OTHER,
            "local_jwks": {"inline_string": jwks(&[&k.es])},
            "from_headers": [{"name": "x-b-token"}]
        });
        let config = json!({
            "providers": {"a": a, "b": b},
            "rules": [
                {"match": {"prefix": "/opt"}, "requires": {"allow_missing": {}}},
                {"match": {"prefix": "/"}, "requires": {"provider_name": "a"}}
            ]
        });
        let rig = Rig::new(&config);
        let c = rig.claims("u");
        let on = |path: &str, header: &str, token: &str| {
            let mut h = get(path);
            let value = if header == "authorization" { format!("Bearer {token}") } else { token.to_string() };
            h.push((header.to_string(), value));
            h
        };
        let a_key_b_iss = mint(&k.rs, with(c.clone(), "iss", json!(OTHER)));
        // In A's location but naming B: B does not read that location.
        rig.check("A-signed, iss B, A's header", on("/opt", "authorization", &a_key_b_iss), ISSUER_NOT_ALLOWED);
        // In B's location naming B: B's keys do not include A's.
        rig.check("A-signed, iss B, B's header", on("/opt", "x-b-token", &a_key_b_iss), KEY_NOT_FOUND);
        let no_kid = mint_with_header(&k.rs, json!({"alg": "RS256"}), with(c.clone(), "iss", json!(OTHER)));
        rig.check("A-signed without kid, iss B, B's header", on("/opt", "x-b-token", &no_kid), KEY_NOT_FOUND);
        // B's key claiming A's issuer, on A's route.
        let b_key_a_iss = mint(&k.es, c.clone());
        rig.check("B-signed, iss A", on("/api", "authorization", &b_key_a_iss), KEY_NOT_FOUND);
        rig.check("control", on("/opt", "authorization", &mint(&k.rs, c.clone())), ALLOW);
    }
}

/// Tokens in several places at once. Precedence is the provider's order — headers as listed,
/// then cookies, then query parameters — and only the first token found is verified: a valid
/// token first wins whatever follows, an invalid token first fails whatever follows. A header
/// without the configured scheme prefix (`Basic ...`) carries no token.
mod token_locations {
    use super::*;

    fn rig() -> (Rig, Keys) {
        let k = keys();
        let mut p = standard_provider(&k);
        p["from_headers"] = json!([{"name": "authorization", "value_prefix": "Bearer "}]);
        p["from_cookies"] = json!(["DS"]);
        p["from_params"] = json!(["access_token"]);
        (Rig::new(&common::config_with(p)), k)
    }

    fn req(path: &str, auth: Option<&str>, cookie: Option<&str>) -> Headers {
        let mut h = get(path);
        if let Some(a) = auth {
            h.push(("authorization".into(), a.to_string()));
        }
        if let Some(c) = cookie {
            h.push(("cookie".into(), c.to_string()));
        }
        h
    }

    /// Every token in the provider's locations must verify, as in jwt_authn: a good token
    /// beside a bad one would otherwise pass, and the upstream might read the bad one as if
    /// it had been checked. The first one found is the identity; all are removed.
    #[test]
    fn every_token_must_verify() {
        let (rig, k) = rig();
        let good = mint(&k.rs, rig.claims("user-1"));
        let other = mint(&k.rs, rig.claims("user-2"));
        let expired = mint(&k.rs, with(rig.claims("u"), "exp", json!(rig.now() - 3600)));
        let bad = "not-a-jwt";

        for (case, path, auth, cookie, want) in [
            (
                "valid header + garbage cookie",
                "/api".to_owned(),
                Some(format!("Bearer {good}")),
                Some(format!("DS={bad}")),
                MALFORMED,
            ),
            (
                "garbage header + valid cookie",
                "/api".to_owned(),
                Some(format!("Bearer {bad}")),
                Some(format!("DS={good}")),
                MALFORMED,
            ),
            (
                "expired header + valid cookie",
                "/api".to_owned(),
                Some(format!("Bearer {expired}")),
                Some(format!("DS={good}")),
                EXPIRED,
            ),
            (
                "valid header + expired cookie",
                "/api".to_owned(),
                Some(format!("Bearer {good}")),
                Some(format!("DS={expired}")),
                EXPIRED,
            ),
            (
                "valid cookie + garbage param",
                format!("/api?access_token={bad}"),
                None,
                Some(format!("a=1; DS={good}")),
                MALFORMED,
            ),
            (
                "garbage cookie + valid param",
                format!("/api?access_token={good}"),
                None,
                Some(format!("DS={bad}")),
                MALFORMED,
            ),
            (
                "valid header + percent-encoded name of a garbage param",
                format!("/api?access%5Ftoken={bad}"),
                Some(format!("Bearer {good}")),
                None,
                MALFORMED,
            ),
            ("two DS cookies, garbage first", "/api".to_owned(), None, Some(format!("DS={bad}; DS={good}")), MALFORMED),
            (
                "two DS cookies, garbage second",
                "/api".to_owned(),
                None,
                Some(format!("DS={good}; DS={bad}")),
                MALFORMED,
            ),
            (
                "two params, garbage second",
                format!("/api?access_token={good}&access_token={bad}"),
                None,
                None,
                MALFORMED,
            ),
        ] {
            rig.check(case, req(&path, auth.as_deref(), cookie.as_deref()), want);
        }

        // All valid: passes, the first is the identity, and every one is taken out.
        let (_, r) = rig.check(
            "valid header + another valid cookie + valid param",
            req(
                &format!("/api?x=1&access_token={other}"),
                Some(&format!("Bearer {good}")),
                Some(&format!("a=1; DS={other}")),
            ),
            ALLOW,
        );
        assert_eq!(r.header("x-jwt-sub").as_deref(), Some("user-1"), "the first location's token is the identity");
        assert_eq!(r.header("authorization"), None);
        assert_eq!(r.header("cookie").as_deref(), Some("a=1"));
        assert_eq!(r.header(":path").as_deref(), Some("/api?x=1"));
        let (_, r) = rig.check(
            "the same token in header and cookie",
            req("/api", Some(&format!("Bearer {good}")), Some(&format!("DS={good}"))),
            ALLOW,
        );
        assert_eq!(r.header("cookie"), None);
        rig.check(
            "Basic credentials + valid cookie (no Bearer token in the header)",
            req("/api", Some("Basic dXNlcjpwYXNz"), Some(&format!("DS={good}"))),
            ALLOW,
        );
        rig.check("scheme matched case-insensitively", req("/api", Some(&format!("bEaReR {good}")), None), ALLOW);
        rig.check(
            "a percent-encoded valid token",
            req(&format!("/api?access%5Ftoken={}", good.replace('.', "%2E")), None, None),
            ALLOW,
        );
    }
}

/// Claims copied into request headers are attacker-influenced text. A value with CR, LF, NUL
/// or any other control character (C0, DEL, C1) — or longer than 8 KiB — is never written,
/// not even cleaned up: the header is left unset (the client's own copy was already stripped)
/// and the stat `jwt_authn_wasm.identity_header_skipped` counts it. The request still passes:
/// the token itself is valid.
mod header_injection {
    use super::*;

    fn assert_clean(req: &harness::Request<'_>) {
        for (k, v) in req.headers() {
            assert!(!v.chars().any(|c| c.is_control() && c != '\t'), "header {k} carries a control character");
            assert_ne!(k, "x-admin", "an injected header appeared");
        }
    }

    #[test]
    fn control_characters_are_never_forwarded() {
        let (rig, k) = standard();
        let evil = [
            "evil\r\nx-admin: true",
            "evil\nx-admin: true",
            "evil\rx-admin: true",
            "a\u{0}b",
            "\u{1}",
            "a\u{b}b",
            "a\u{c}b",
            "a\u{1b}[31mred",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{9b}b",
        ];
        let mut skipped = 0;
        for value in evil {
            let claims = with(rig.claims("user-1"), "name", json!(value));
            let mut h = bearer(&mint(&k.rs, claims));
            // The client tries to supply the header itself as well.
            h.push(("x-jwt-name".into(), "admin".into()));
            let (core, req) = rig.check(&format!("name {value:?}"), h, ALLOW);
            let m = core.mutations.expect("allowed");
            assert!(m.set.iter().all(|(k, _)| k != "x-jwt-name"), "{value:?}: {:?}", m.set);
            assert_eq!(m.unsafe_values, vec!["x-jwt-name".to_string()]);
            assert_eq!(req.header("x-jwt-name"), None, "{value:?}: neither the claim nor the client's value");
            assert_eq!(req.header("x-jwt-sub").as_deref(), Some("user-1"), "other identity headers still set");
            assert_clean(&req);
            skipped += 1;
            assert_eq!(rig.proxy.metric("jwt_authn_wasm.identity_header_skipped"), Some(skipped));
        }
        // Inside arrays and nested paths too.
        let cases = [
            ("roles", json!(["user", "admin\r\nx-admin: 1"]), "x-jwt-roles"),
            ("tenants", json!({"T1": {"roles": ["owner\u{0}"]}}), "x-jwt-tenant-roles"),
            ("sub", json!("user\n"), "x-jwt-sub"),
        ];
        for (claim, value, header) in cases {
            let t = mint(&k.rs, with(rig.claims("user-1"), claim, value.clone()));
            let (core, req) = rig.token(&format!("{claim} {value}"), &t, ALLOW);
            assert_eq!(core.mutations.expect("allowed").unsafe_values, vec![header.to_string()]);
            assert_eq!(req.header(header), None);
            assert_clean(&req);
            skipped += 1;
            assert_eq!(rig.proxy.metric("jwt_authn_wasm.identity_header_skipped"), Some(skipped));
        }
    }

    #[test]
    fn safe_values_pass_unchanged() {
        let (rig, k) = standard();
        let claims = json!({
            "iss": ISSUER, "aud": AUDIENCE, "exp": rig.now() + 600, "sub": "user-1",
            "name": "José\tMüller \u{2028} 日本",
            // An object is sent as JSON: its CR/LF are escaped as text (`\r\n`), no control bytes.
            "meta": {"note": "a\r\nb"}
        });
        let (_, req) = rig.token("tab, non-ASCII, U+2028, JSON-escaped object", &mint(&k.rs, claims), ALLOW);
        assert_eq!(req.header("x-jwt-name").as_deref(), Some("José\tMüller \u{2028} 日本"));
        assert_eq!(req.header("x-jwt-meta").as_deref(), Some(r#"{"note":"a\r\nb"}"#));
        assert_eq!(rig.proxy.metric("jwt_authn_wasm.identity_header_skipped"), Some(0));
    }

    #[test]
    fn oversized_values_are_skipped_not_truncated() {
        let k = keys();
        let mut config = common::config_with(standard_provider(&k));
        config["max_token_size"] = json!(65536);
        let rig = Rig::new(&config);
        let fits = mint(&k.rs, with(rig.claims("u"), "name", json!("x".repeat(8 * 1024))));
        let (_, req) = rig.token("8 KiB name", &fits, ALLOW);
        assert_eq!(req.header("x-jwt-name").map(|v| v.len()), Some(8 * 1024));
        let big = mint(&k.rs, with(rig.claims("u"), "name", json!("x".repeat(8 * 1024 + 1))));
        let (_, req) = rig.token("8 KiB + 1 name", &big, ALLOW);
        assert_eq!(req.header("x-jwt-name"), None);
        assert_eq!(rig.proxy.metric("jwt_authn_wasm.identity_header_skipped"), Some(1));
    }
}

/// The signature covers header and payload exactly: any change to either, a signature moved
/// from another token, or one made by another key under the same `kid`, is
/// `jwt_signature_invalid`.
mod tampering {
    use super::*;

    #[test]
    fn payload_header_and_signature_swaps() {
        let (rig, k) = standard();
        let good = mint(&k.rs, rig.claims("user-1"));
        let other = mint(&k.rs, rig.claims("admin"));
        let (h, p, s) = split(&good);
        let (_, p_admin, s_admin) = split(&other);
        let cases = [
            ("payload swapped, signature kept", format!("{h}.{p_admin}.{s}")),
            ("signature moved from another token", format!("{h}.{p}.{s_admin}")),
            ("tamper_payload", demo_idp::tamper_payload(&good, &rig.claims("admin"))),
            ("tamper_signature", demo_idp::tamper_signature(&good)),
            (
                "another key under the same kid",
                mint(&SigningKey::fixed_key(FixedKey::Rsa2048B, Alg::RS256).with_kid(k.rs.kid()), rig.claims("admin")),
            ),
            (
                "header changed (typ added)",
                format!(
                    "{}.{p}.{s}",
                    b64url(json!({"alg": "RS256", "kid": k.rs.kid(), "typ": "at+jwt"}).to_string().as_bytes())
                ),
            ),
        ];
        for (case, t) in cases {
            let (core, _) = rig.token(case, &t, SIGNATURE_INVALID);
            assert_eq!(core.crypto_calls, 1, "{case}");
        }
    }
}

/// The fuzzers' fixtures (fuzz/fixtures, fuzz/corpus) stay valid: the seed tokens verify
/// against the fixture configuration at the fuzzers' fixed clock, so the fuzzers start from
/// inputs that reach every stage. `regenerate` rewrites them (run by hand).
mod fuzz_fixtures {
    use super::*;
    use std::path::PathBuf;

    /// The fuzzers' clock: 2025-01-01T00:00:00Z, the mock host's too.
    const NOW: i64 = 1_735_689_600;
    const OTHER: &str = "https://other.example.com";

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
    }

    fn fixture_config() -> Value {
        let all = demo_idp::fixed_keys_all_algs();
        let refs: Vec<&SigningKey> = all.iter().collect();
        let other = SigningKey::fixed_key(FixedKey::P256B, Alg::ES256);
        json!({
            "providers": {
                "main": {
                    "issuer": ISSUER,
                    "audiences": [AUDIENCE],
                    "subjects": {"prefix": "user-"},
                    "require_expiration": true,
                    "max_lifetime": "86400s",
                    "local_jwks": {"inline_string": jwks(&refs)},
                    "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}, {"name": "x-token"}],
                    "from_cookies": ["DS"],
                    "from_params": ["access_token"],
                    "forward_payload_header": "x-jwt-payload",
                    "pad_forward_payload_header": true,
                    "claim_to_headers": [
                        {"header_name": "x-jwt-sub", "claim_name": "sub"},
                        {"header_name": "x-jwt-roles", "claim_name": "roles"},
                        {"header_name": "x-jwt-tenant-roles", "claim_name": "tenants.T1.roles"},
                        {"header_name": "x-jwt-ns-roles", "claim_name": "https://example.com/roles"},
                        {"header_name": "x-jwt-name", "claim_name": "name"}
                    ]
                },
                "other": {
                    "issuer": OTHER,
                    "local_jwks": {"inline_string": jwks(&[&other])},
                    "from_headers": [{"name": "x-other"}]
                }
            },
            "rules": [
                {"match": {"path": "/healthz"}},
                {"match": {"prefix": "/api"}, "requires": {"provider_name": "main"}},
                {"match": {"prefix": "/opt"}, "requires": {"allow_missing": {}}},
                {"match": {"prefix": "/any"}, "requires": {"allow_missing_or_failed": {}}},
                {"match": {"prefix": "/all"}, "requires": {"requires_all": {"requirements": [
                    {"provider_name": "main"}, {"provider_name": "other"}]}}},
                {"match": {"path_separated_prefix": "/either"}, "requires": {"requires_any": {"requirements": [
                    {"provider_name": "other"},
                    {"provider_and_audiences": {"provider_name": "main", "audiences": ["x", AUDIENCE]}}]}}}
            ],
            "bypass_cors_preflight": true
        })
    }

    fn seed_claims(sub: &str) -> Value {
        json!({
            "iss": ISSUER, "aud": [AUDIENCE, "other"], "sub": sub, "iat": NOW, "nbf": NOW - 5, "exp": NOW + 600,
            "name": "Jo", "roles": ["admin", "viewer"],
            "tenants": {"T1": {"roles": ["owner"], "permissions": ["read"]}},
            "https://example.com/roles": ["r"]
        })
    }

    /// (file name, token, allowed on /api at NOW).
    fn seed_tokens() -> Vec<(String, String, bool)> {
        let mut out: Vec<(String, String, bool)> = demo_idp::fixed_keys_all_algs()
            .iter()
            .map(|k| (format!("valid-{}", k.alg().as_str().to_ascii_lowercase()), mint(k, seed_claims("user-1")), true))
            .collect();
        let rs = SigningKey::fixed(Alg::RS256);
        let es = SigningKey::fixed(Alg::ES256);
        out.push(("valid-no-kid".into(), mint_with_header(&es, json!({"alg": "ES256"}), seed_claims("user-2")), true));
        out.push(("expired".into(), mint(&rs, with(seed_claims("user-1"), "exp", json!(NOW - 3600))), false));
        out.push(("float-dates".into(), mint(&rs, with(seed_claims("user-1"), "exp", json!(NOW as f64 + 0.5))), true));
        out.push((
            "alg-none".into(),
            format!("{}.{}.", b64url(br#"{"alg":"none"}"#), b64url(br#"{"sub":"a"}"#)),
            false,
        ));
        out.push((
            "crit".into(),
            mint_with_header(
                &rs,
                json!({"alg": "RS256", "kid": rs.kid(), "crit": ["b64"], "b64": false}),
                seed_claims("user-1"),
            ),
            false,
        ));
        out.push((
            "duplicate".into(),
            mint_raw_parts(&rs, br#"{"alg":"RS256","alg":"none"}"#, br#"{"sub":"a","sub":"b"}"#),
            false,
        ));
        let other = SigningKey::fixed_key(FixedKey::P256B, Alg::ES256);
        out.push(("other-provider".into(), mint(&other, with(seed_claims("user-3"), "iss", json!(OTHER))), false));
        out
    }

    fn seed_jwks() -> Vec<(String, String)> {
        let all = demo_idp::fixed_keys_all_algs();
        let refs: Vec<&SigningKey> = all.iter().collect();
        let rs = SigningKey::fixed(Alg::RS256);
        let mut private = rs.public_jwk();
        private["d"] = json!("AQAB");
        let mixed = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"},
            private,
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"},
            {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": "enc"},
            SigningKey::fixed(Alg::ES384).public_jwk(),
            {"kty": "RSA", "kid": "x5c", "n": rs.public_jwk()["n"], "e": "AQAB", "x5c": ["MIIB"], "key_ops": ["verify"]}
        ]});
        vec![
            ("all-algs".into(), jwks(&refs)),
            ("mixed".into(), mixed.to_string()),
            ("es256".into(), jwks(&[&SigningKey::fixed(Alg::ES256)])),
        ]
    }

    fn seed_configs() -> Vec<(String, String)> {
        let rs = SigningKey::fixed(Alg::RS256);
        let remote = json!({
            "providers": {"descope": {
                "issuer": "https://api.descope.com/P123", "audiences": ["P123"],
                "remote_jwks": {"http_uri": {"uri": "https://api.descope.com/v2/keys/P123", "cluster": "descope", "timeout": "1.5s"},
                                "cache_duration": "300s", "async_fetch": {"fast_listener": true}, "retry_policy": {"num_retries": 3}},
                "from_cookies": ["DS"], "forward": true, "clear_route_cache": true, "jwt_cache_config": {"jwt_cache_size": 100}
            }},
            "rules": [{"match": {"prefix": "/", "case_sensitive": false}, "requires": {"provider_name": "descope"}}]
        });
        let discovery = json!({
            "providers": {"oidc": {
                "issuer": "https://idp.example.com",
                "oidc_discovery": {"http_uri": {"uri": "https://idp.example.com/.well-known/openid-configuration", "cluster": "idp"}},
                "subjects": {"exact": "svc", "ignore_case": true}, "clock_skew_seconds": 5
            }},
            "rules": [{"match": {"path": "/x"}, "requires": {"provider_name": "oidc"}}],
            "max_token_size": 4096, "max_json_depth": 8, "stat_prefix": "x"
        });
        let minimal = json!({"providers": {"p": {"local_jwks": {"inline_string": jwks(&[&rs])}}}});
        vec![
            ("fixture".into(), fixture_config().to_string()),
            ("remote".into(), remote.to_string()),
            ("discovery".into(), discovery.to_string()),
            ("minimal".into(), minimal.to_string()),
            ("empty".into(), "{}".into()),
        ]
    }

    #[test]
    #[ignore = "rewrites fuzz/fixtures and fuzz/corpus; run by hand after changing the seeds"]
    fn regenerate() {
        let d = dir();
        let write = |rel: &str, text: &str| {
            let path = d.join(rel);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        };
        write("fixtures/config.json", &serde_json::to_string_pretty(&fixture_config()).expect("json"));
        let tokens = seed_tokens();
        write("fixtures/token.txt", &tokens[0].1);
        for (name, token, _) in &tokens {
            write(&format!("corpus/token/{name}"), token);
        }
        for (name, text) in seed_jwks() {
            write(&format!("corpus/jwks/{name}.json"), &text);
        }
        for (name, text) in seed_configs() {
            write(&format!("corpus/config/{name}.json"), &text);
        }
    }

    #[test]
    fn seeds_reach_every_stage() {
        let d = dir();
        let text = std::fs::read_to_string(d.join("fixtures/config.json")).expect("fuzz/fixtures/config.json");
        let config = Config::parse(text.as_bytes()).expect("fixture config parses");
        let keys = LocalKeys(&config);
        for (name, _, allowed) in seed_tokens() {
            let stored = std::fs::read_to_string(d.join("corpus/token").join(&name)).expect("seed file");
            let mut h = get("/api");
            h.push(("authorization".into(), format!("Bearer {stored}")));
            let req = CoreRequest(h);
            let verdict = Authenticator::new(&config, &keys, &PureRust, NOW as u64).decide(&req);
            assert_eq!(matches!(verdict, Verdict::Allow(_)), allowed, "seed {name}: {verdict:?}");
        }
        for (name, _) in seed_jwks() {
            let stored = std::fs::read(d.join("corpus/jwks").join(format!("{name}.json"))).expect("seed file");
            assert!(jwk::parse_jwks(&stored).is_ok(), "jwks seed {name}");
        }
        for (name, _) in seed_configs() {
            let stored = std::fs::read(d.join("corpus/config").join(format!("{name}.json"))).expect("seed file");
            assert!(Config::parse(&stored).is_ok(), "config seed {name}");
        }
        let token = std::fs::read_to_string(d.join("fixtures/token.txt")).expect("fixtures/token.txt");
        assert_eq!(token, seed_tokens()[0].1);
    }
}
