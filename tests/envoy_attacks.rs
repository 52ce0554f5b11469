//! The high-risk attacks of `tests/attacks.rs` through a real Envoy 1.40 running the plugin
//! built at target/wasm32-wasip1/release (see tests/support): `alg: none`, HMAC keyed with the
//! public key, keys named by the token (with a live attacker JWKS server that must never be
//! contacted), ECDSA psychic signatures, oversized tokens, and header injection through
//! claims. One Envoy start, many requests; each answer is checked for its exact status and
//! body `code`, and the upstream must see exactly the allowed requests. Envoy 1.40 offers the
//! `verify_signature` foreign function, so RS256/ES256 signatures here are checked by the
//! host's BoringSSL, the path production takes.

mod support;

use base64::Engine;
use demo_idp::{
    b64url, b64url_decode, jwks, mint, mint_hs, mint_with_header, now_secs, public_key_pem, Alg, EchoServer, FixedKey,
    IdpConfig, IdpServer, SigningKey,
};
use jwt_authn_wasm::hostsig::{ec_spki, ecdsa_p1363_to_der, rsa_spki, Curve};
use serde_json::{json, Value};
use support::{bearer, EnvoyProcess, Timeouts, WASM_TEMPLATE};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "demo-api";

const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn spki(key: &SigningKey) -> Vec<u8> {
    let jwk = key.public_jwk();
    let f = |n: &str| b64url_decode(jwk[n].as_str().expect("member")).expect("b64url");
    if jwk["kty"] == "RSA" {
        rsa_spki(&f("n"), &f("e"))
    } else {
        ec_spki(Curve::P256, &[&[4u8][..], &f("x"), &f("y")].concat())
    }
}

fn split(token: &str) -> (&str, &str, &str) {
    let mut it = token.split('.');
    match (it.next(), it.next(), it.next()) {
        (Some(h), Some(p), Some(s)) => (h, p, s),
        _ => panic!("not a compact token"),
    }
}

fn resigned(token: &str, sig: &[u8]) -> String {
    let (h, p, _) = split(token);
    format!("{h}.{p}.{}", b64url(sig))
}

fn claims(sub: &str) -> Value {
    let now = now_secs();
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600})
}

struct Rig {
    // Envoy first: stopped before the servers it talks to.
    envoy: EnvoyProcess,
    echo: EchoServer,
    /// Serves the attacker's keys behind Envoy's `idp` cluster: a `jku`/`x5u` that were
    /// followed would reach it.
    attacker_idp: IdpServer,
    rs: SigningKey,
    es: SigningKey,
    attacker_rs: SigningKey,
    attacker_es: SigningKey,
}

fn start() -> Rig {
    start_with(json!({}))
}

/// The rig with these members added to the provider's configuration.
fn start_with(provider_extra: Value) -> Rig {
    let rs = SigningKey::fixed(Alg::RS256);
    let es = SigningKey::fixed(Alg::ES256);
    let attacker_rs = SigningKey::fixed_key(FixedKey::Rsa2048B, Alg::RS256).with_kid("attacker-rsa");
    let attacker_es = SigningKey::fixed_key(FixedKey::P256B, Alg::ES256).with_kid("attacker-ec");
    let attacker_idp =
        IdpServer::start_with("127.0.0.1:0", IdpConfig::default().keys(vec![attacker_rs.clone(), attacker_es.clone()]));
    let mut provider = json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": {"inline_string": jwks(&[&rs, &es])},
        "claim_to_headers": [
            {"header_name": "x-jwt-sub", "claim_name": "sub"},
            {"header_name": "x-jwt-name", "claim_name": "name"}
        ]
    });
    if let (Some(p), Some(extra)) = (provider.as_object_mut(), provider_extra.as_object()) {
        p.extend(extra.clone());
    }
    let config =
        json!({"providers": {"demo": provider}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "demo"}}]})
            .to_string();
    let echo = EchoServer::start("127.0.0.1:0");
    let (echo_port, idp_port) = (echo.address().port().to_string(), attacker_idp.address().port().to_string());
    let envoy = EnvoyProcess::start(
        WASM_TEMPLATE,
        &[
            ("UPSTREAM_HOST", "127.0.0.1"),
            ("UPSTREAM_PORT", &echo_port),
            ("IDP_HOST", "127.0.0.1"),
            ("IDP_PORT", &idp_port),
            ("PLUGIN_CONFIG_JSON", &config),
        ],
        1,
    );
    Rig { envoy, echo, attacker_idp, rs, es, attacker_rs, attacker_es }
}

impl Rig {
    /// Sends `token` as a Bearer token; asserts the status and, for a refusal, the body's code.
    /// Returns the upstream's echo for allowed requests.
    fn expect(&self, case: &str, token: &str, status: u16, code: Option<&str>) -> Option<Value> {
        let r = self.envoy.get("/api/attack", &[("authorization", &bearer(token))]);
        assert_eq!(r.status, status, "{case}: {}", r.text());
        if status == 200 {
            return Some(r.json().unwrap_or_else(|e| panic!("{case}: upstream echo expected: {e}")));
        }
        let body: Value = r.json().unwrap_or_else(|e| panic!("{case}: JSON body expected: {e}"));
        assert_eq!(body["code"].as_str(), code, "{case}");
        assert!(!r.text().contains(split_or_all(token)), "{case}: reply echoes the token");
        None
    }

    fn deny(&self, case: &str, token: &str, code: &str) {
        self.expect(case, token, 401, Some(code));
    }

    /// A plugin counter (Envoy files it under a `wasmcustom` prefix).
    fn counter(&self, suffix: &str) -> u64 {
        let stats = self.envoy.admin_stats("jwt_authn_wasm");
        stats
            .iter()
            .find(|(k, _)| k.ends_with(suffix))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no stat {suffix} in {stats:?}"))
    }
}

/// The longest segment of a token (what must never be echoed).
fn split_or_all(token: &str) -> &str {
    token.split('.').max_by_key(|s| s.len()).unwrap_or(token)
}

#[test]
fn high_risk_attacks_through_envoy() {
    let rig = start();
    let mut allowed = 0;

    // Controls: the rig lets genuine tokens through.
    for key in [&rig.rs, &rig.es] {
        rig.expect(&format!("valid {}", key.kid()), &mint(key, claims("user-1")), 200, None);
        allowed += 1;
    }

    // alg: none in any casing, with a real signature, a garbage one, or none.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let input = format!(
            "{}.{}",
            b64url(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes()),
            b64url(claims("admin").to_string().as_bytes())
        );
        let real = b64url(&rig.rs.sign(input.as_bytes()));
        rig.deny(&format!("{alg} real signature"), &format!("{input}.{real}"), "jwt_alg_unsupported");
        rig.deny(&format!("{alg} garbage signature"), &format!("{input}.c2ln"), "jwt_alg_unsupported");
        rig.deny(&format!("{alg} empty signature"), &format!("{input}."), "jwt_malformed");
    }

    // RS/ES → HS confusion: HMAC keyed with the public key in every usual encoding.
    for key in [&rig.rs, &rig.es] {
        let der = spki(key);
        let secrets: Vec<(&str, Vec<u8>)> = vec![
            ("PEM", public_key_pem(&der).into_bytes()),
            ("DER", der.clone()),
            ("JWK", key.public_jwk().to_string().into_bytes()),
            ("JWKS", jwks(&[key]).into_bytes()),
        ];
        for (encoding, secret) in secrets {
            for alg in ["HS256", "HS384", "HS512"] {
                let header = json!({"alg": alg, "typ": "JWT", "kid": key.kid()});
                let t = mint_hs(&header, &claims("admin"), &secret);
                rig.deny(&format!("{alg} keyed with {} {encoding}", key.kid()), &t, "jwt_alg_unsupported");
            }
        }
    }

    // Keys named by the token: embedded jwk, jku/x5u at a live server, x5c. Signed by the
    // attacker's own keys.
    let jku = rig.attacker_idp.jwks_uri();
    let x5u = format!("{}/cert.pem", rig.attacker_idp.base_url());
    for (attacker, victim, alg) in [(&rig.attacker_rs, &rig.rs, "RS256"), (&rig.attacker_es, &rig.es, "ES256")] {
        let jwk = attacker.public_jwk();
        let x5c = base64::engine::general_purpose::STANDARD.encode(spki(attacker));
        let cases = [
            ("jwk + victim kid", json!({"alg": alg, "kid": victim.kid(), "jwk": jwk}), "jwt_signature_invalid"),
            ("jwk, no kid", json!({"alg": alg, "jwk": jwk}), "jwt_signature_invalid"),
            ("jwk + own kid", json!({"alg": alg, "kid": attacker.kid(), "jwk": jwk}), "jwt_key_not_found"),
            ("jku + own kid", json!({"alg": alg, "kid": attacker.kid(), "jku": jku}), "jwt_key_not_found"),
            ("jku + victim kid", json!({"alg": alg, "kid": victim.kid(), "jku": jku}), "jwt_signature_invalid"),
            ("x5u + own kid", json!({"alg": alg, "kid": attacker.kid(), "x5u": x5u}), "jwt_key_not_found"),
            ("x5c + victim kid", json!({"alg": alg, "kid": victim.kid(), "x5c": [x5c]}), "jwt_signature_invalid"),
        ];
        for (case, header, code) in cases {
            rig.deny(&format!("{alg} {case}"), &mint_with_header(attacker, header, claims("admin")), code);
        }
    }

    // ECDSA: r = s = 0 (CVE-2022-21449), r = s = n, DER instead of r || s; high-s is valid.
    let good = mint(&rig.es, claims("user-2"));
    let sig = b64url_decode(split(&good).2).expect("signature");
    let n = hex(P256_N);
    rig.deny("ES256 r = s = 0", &resigned(&good, &[0u8; 64]), "jwt_signature_invalid");
    rig.deny("ES256 r = s = n", &resigned(&good, &[&n[..], &n[..]].concat()), "jwt_signature_invalid");
    let der = ecdsa_p1363_to_der(&sig, 32).expect("DER");
    rig.deny("ES256 DER signature", &resigned(&good, &der), "jwt_signature_invalid");
    let s_high = rsa::BigUint::from_bytes_be(&n) - rsa::BigUint::from_bytes_be(&sig[32..]);
    let mut high = sig[..32].to_vec();
    let s_bytes = s_high.to_bytes_be();
    high.extend(std::iter::repeat(0u8).take(32 - s_bytes.len()));
    high.extend(s_bytes);
    rig.expect("ES256 high-s (r, n - s)", &resigned(&good, &high), 200, None);
    allowed += 1;

    // Oversized tokens: the plugin refuses anything over max_token_size (8192) before parsing;
    // beyond Envoy's own header limit (60 KiB by default) Envoy answers 431 itself.
    rig.deny("8193 bytes of garbage", &"a".repeat(8193), "jwt_too_large");
    let padded = mint(&rig.rs, {
        let mut c = claims("user-1");
        c["pad"] = json!("x".repeat(7000));
        c
    });
    assert!(padded.len() > 8192);
    rig.deny("valid token of 9.7 KB", &padded, "jwt_too_large");
    rig.deny("40 KB token", &format!("{}.{}.{}", "A".repeat(20_000), "B".repeat(20_000), "C"), "jwt_too_large");
    let huge = format!("Bearer {}", "a".repeat(100 * 1024));
    let timeouts = Timeouts::default();
    match support::try_http_request(rig.envoy.addr(), "GET", "/api/attack", &[("authorization", &huge)], b"", timeouts)
    {
        Ok(r) => assert_eq!(r.status, 431, "100 KiB header: {}", r.text()),
        // Envoy may close the connection while the request is still being written; any other
        // failure (refused, timed out) means the request was not refused by Envoy.
        Err(e) => {
            use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
            assert!(
                matches!(e.kind(), BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof),
                "100 KiB header: {e} ({:?})",
                e.kind()
            );
        }
    }

    // Header injection through claims copied to headers: never forwarded, counted.
    let evil = ["evil\r\nx-admin: true", "evil\nx-admin: true", "a\u{0}b", "a\u{1}b", "a\u{7f}b", "a\u{85}b"];
    for value in evil {
        let mut c = claims("user-3");
        c["name"] = json!(value);
        let r =
            rig.envoy.get("/api/attack", &[("authorization", &bearer(&mint(&rig.rs, c))), ("x-jwt-name", "spoofed")]);
        assert_eq!(r.status, 200, "name {value:?}: {}", r.text());
        allowed += 1;
        let seen = r.json().unwrap_or_else(|e| panic!("name {value:?}: upstream echo expected: {e}"));
        assert_eq!(seen["headers"]["x-jwt-sub"], "user-3", "{seen}");
        let list = seen["header_list"].as_array().cloned().unwrap_or_default();
        for pair in &list {
            let (name, v) = (pair[0].as_str().unwrap_or_default(), pair[1].as_str().unwrap_or_default());
            assert_ne!(name, "x-jwt-name", "name {value:?}: header set from an unsafe claim or the client: {seen}");
            assert_ne!(name, "x-admin", "name {value:?}: injected header reached the upstream: {seen}");
            assert!(!v.chars().any(|c| c.is_control() && c != '\t'), "control character upstream: {seen}");
        }
    }
    assert_eq!(rig.counter("jwt_authn_wasm.identity_header_skipped"), evil.len() as u64);

    // Only the allowed requests reached the upstream; nothing reached the attacker's server.
    assert_eq!(rig.echo.request_count(), allowed, "a refused request reached the upstream");
    assert_eq!(rig.attacker_idp.requests(), 0, "the plugin contacted a URL named by a token");
    assert_eq!(rig.counter("jwt_authn_wasm.allowed"), allowed as u64);
    assert_eq!(rig.counter("jwt_authn_wasm.denied.jwt_alg_unsupported"), 4 * 2 + 2 * 4 * 3);
    // RS256 and ES256 were decided on the host path here, none in Rust (the pure-Rust path is
    // covered by tests/attacks.rs). r = s = 0, r = s = n and DER signatures are refused by the
    // range checks the plugin runs before the host call; the high-s case reached BoringSSL.
    assert_eq!(rig.counter("jwt_authn_wasm.crypto.host"), 1, "host verification not in use");
    assert!(rig.counter("jwt_authn_wasm.verify.host") > 0);
    assert_eq!(rig.counter("jwt_authn_wasm.verify.pure"), 0, "verifications fell back to Rust");
}

/// Envoy shows a wasm filter only the first of repeated headers. A second `Authorization` or
/// `Cookie` line was never checked, so it must not reach the upstream beside the one that
/// was, even with `forward: true`: the plugin leaves each token header holding the value it
/// read (Envoy 1.40's replace drops every other value of the name).
#[test]
fn repeated_token_headers_reach_the_upstream_only_as_checked() {
    let rig = start_with(json!({
        "forward": true,
        "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
        "from_cookies": ["DS"]
    }));
    let good = bearer(&mint(&rig.rs, claims("user-1")));
    let forged = bearer(&mint(&rig.attacker_rs, claims("admin")));
    let lines = |echo: &Value, name: &str| -> Vec<String> {
        let list = echo["header_list"].as_array().cloned().unwrap_or_default();
        list.iter().filter(|p| p[0] == name).filter_map(|p| p[1].as_str().map(str::to_owned)).collect()
    };
    let pass = |case: &str, headers: &[(&str, &str)]| -> Value {
        let r = rig.envoy.get("/api/repeated", headers);
        assert_eq!(r.status, 200, "{case}: {}", r.text());
        r.json().unwrap_or_else(|e| panic!("{case}: upstream echo expected: {e}"))
    };

    // Envoy's header map joins repeated `Authorization` lines with `,` (an inline header),
    // so the plugin sees `Bearer <good>,Bearer <forged>`: not a token.
    let r = rig.envoy.get("/api/repeated", &[("authorization", &good), ("authorization", &forged)]);
    assert_eq!(
        (r.status, r.json().ok().map(|b| b["code"].clone())),
        (401, Some(json!("jwt_malformed"))),
        "{}",
        r.text()
    );

    let forged_cookie = format!("DS={}", mint(&rig.attacker_rs, claims("admin")));
    let seen = pass(
        "a token cookie on a second Cookie line",
        &[("authorization", &good), ("cookie", "a=1"), ("cookie", &forged_cookie)],
    );
    assert_eq!(lines(&seen, "cookie"), ["a=1"], "{seen}");
    assert_eq!(lines(&seen, "authorization"), std::slice::from_ref(&good), "{seen}");

    // The first line is the one checked: a forged token there is refused.
    let r = rig.envoy.get("/api/repeated", &[("authorization", &forged), ("authorization", &good)]);
    assert_eq!(r.status, 401, "{}", r.text());
}
