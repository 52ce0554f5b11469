//! Unit tests: tokens verify with independent code (the rsa, p256 and p384 crates fed only
//! the published JWK), the JWKS has the right shape, the servers answer.

use std::time::Duration;

use rsa::signature::Verifier;
use serde_json::{json, Value};

use crate::http::{self, Timeouts};
use crate::*;

fn b64(v: &Value, field: &str) -> Vec<u8> {
    let s = v[field].as_str().unwrap_or_else(|| panic!("JWK field {field} missing in {v}"));
    assert!(!s.contains('='), "padding in {field}");
    b64url_decode(s).unwrap_or_else(|| panic!("{field} not base64url"))
}

/// Verifies `token` using only the public JWK (never the private key object).
fn verify_with_jwk(token: &str, jwk: &Value) -> bool {
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    let sig = b64url_decode(sig).expect("signature base64url");
    let input = input.as_bytes();
    let alg = jwk["alg"].as_str().expect("alg");
    match jwk["kty"].as_str().expect("kty") {
        "RSA" => {
            let n = rsa::BigUint::from_bytes_be(&b64(jwk, "n"));
            let e = rsa::BigUint::from_bytes_be(&b64(jwk, "e"));
            let pk = rsa::RsaPublicKey::new(n, e).expect("RSA public key");
            macro_rules! check {
                ($m:ident, $h:ty) => {{
                    let Ok(s) = rsa::$m::Signature::try_from(sig.as_slice()) else { return false };
                    rsa::$m::VerifyingKey::<$h>::new(pk).verify(input, &s).is_ok()
                }};
            }
            match alg {
                "RS256" => check!(pkcs1v15, sha2::Sha256),
                "RS384" => check!(pkcs1v15, sha2::Sha384),
                "RS512" => check!(pkcs1v15, sha2::Sha512),
                "PS256" => check!(pss, sha2::Sha256),
                "PS384" => check!(pss, sha2::Sha384),
                "PS512" => check!(pss, sha2::Sha512),
                other => panic!("unexpected alg {other}"),
            }
        }
        "EC" => match (alg, jwk["crv"].as_str()) {
            ("ES256", Some("P-256")) => {
                let (x, y) = (b64(jwk, "x"), b64(jwk, "y"));
                assert_eq!((x.len(), y.len()), (32, 32));
                let point =
                    p256::EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
                let vk = p256::ecdsa::VerifyingKey::from_encoded_point(&point).expect("P-256 point");
                let Ok(s) = p256::ecdsa::Signature::from_slice(&sig) else { return false };
                sig.len() == 64 && vk.verify(input, &s).is_ok()
            }
            ("ES384", Some("P-384")) => {
                let (x, y) = (b64(jwk, "x"), b64(jwk, "y"));
                assert_eq!((x.len(), y.len()), (48, 48));
                let point =
                    p384::EncodedPoint::from_affine_coordinates(x.as_slice().into(), y.as_slice().into(), false);
                let vk = p384::ecdsa::VerifyingKey::from_encoded_point(&point).expect("P-384 point");
                let Ok(s) = p384::ecdsa::Signature::from_slice(&sig) else { return false };
                sig.len() == 96 && vk.verify(input, &s).is_ok()
            }
            other => panic!("unexpected EC alg/crv {other:?}"),
        },
        other => panic!("unexpected kty {other}"),
    }
}

fn find_jwk(jwks_text: &str, kid: &str) -> Value {
    let v: Value = serde_json::from_str(jwks_text).expect("JWKS is JSON");
    v["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .find(|k| k["kid"] == kid)
        .cloned()
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks_text}"))
}

#[test]
fn fixed_keys_mint_tokens_that_verify_independently() {
    for alg in Alg::ALL {
        let key = SigningKey::fixed(alg);
        let token = mint(&key, json!({"sub": "u1", "n": 1}));
        let jwk = find_jwk(&jwks(&[&key]), key.kid());
        assert!(verify_with_jwk(&token, &jwk), "{alg} token does not verify");
        assert!(!verify_with_jwk(&tamper_signature(&token), &jwk), "{alg} tampered token verifies");
        let (header, payload) = decode_unverified(&token).expect("decodes");
        assert_eq!(header, json!({"alg": alg.as_str(), "typ": "JWT", "kid": key.kid()}));
        assert_eq!(payload, json!({"sub": "u1", "n": 1}));
    }
}

#[test]
fn every_fixed_key_loads_with_its_size() {
    let cases = [
        (FixedKey::Rsa2048A, Alg::RS256, Some(2048)),
        (FixedKey::Rsa2048B, Alg::PS256, Some(2048)),
        (FixedKey::Rsa3072, Alg::RS384, Some(3072)),
        (FixedKey::Rsa4096, Alg::PS512, Some(4096)),
        (FixedKey::P256A, Alg::ES256, None),
        (FixedKey::P256B, Alg::ES256, None),
        (FixedKey::P384A, Alg::ES384, None),
        (FixedKey::P384B, Alg::ES384, None),
    ];
    for (fk, alg, bits) in cases {
        let key = SigningKey::fixed_key(fk, alg);
        assert_eq!(key.rsa_bits(), bits, "{fk:?}");
        let sig = sign_raw(&key, b"a.b");
        let expected_len = bits.map(|b| b / 8).unwrap_or(if alg == Alg::ES256 { 64 } else { 96 });
        assert_eq!(sig.len(), expected_len, "{fk:?}");
        let token = mint(&key, json!({"sub": "x"}));
        assert!(verify_with_jwk(&token, &key.public_jwk()), "{fk:?}");
    }
    // Distinct keys are distinct.
    let a = SigningKey::fixed_key(FixedKey::P256A, Alg::ES256).public_jwk();
    let b = SigningKey::fixed_key(FixedKey::P256B, Alg::ES256).public_jwk();
    assert_ne!(a["x"], b["x"]);
}

#[test]
fn pss_uses_salt_length_equal_to_hash_length() {
    let key = SigningKey::fixed(Alg::PS256);
    let pk = key.rsa_public_key().expect("rsa");
    let sig = sign_raw(&key, b"input");
    let s = rsa::pss::Signature::try_from(sig.as_slice()).expect("sig");
    assert!(rsa::pss::VerifyingKey::<sha2::Sha256>::new_with_salt_len(pk.clone(), 32).verify(b"input", &s).is_ok());
    assert!(rsa::pss::VerifyingKey::<sha2::Sha256>::new_with_salt_len(pk, 20).verify(b"input", &s).is_err());
    // PSS is randomised: two signatures differ.
    assert_ne!(sign_raw(&key, b"input"), sign_raw(&key, b"input"));
}

#[test]
fn ecdsa_signatures_are_p1363_and_verify_with_the_key_accessors() {
    let k = SigningKey::fixed(Alg::ES256);
    let sig = sign_raw(&k, b"hello");
    let s = p256::ecdsa::Signature::from_slice(&sig).expect("r||s");
    assert!(k.p256_verifying_key().expect("p256").verify(b"hello", &s).is_ok());
    let k = SigningKey::fixed(Alg::ES384);
    let sig = sign_raw(&k, b"hello");
    let s = p384::ecdsa::Signature::from_slice(&sig).expect("r||s");
    assert!(k.p384_verifying_key().expect("p384").verify(b"hello", &s).is_ok());
}

#[test]
fn jwks_shape() {
    let keys = fixed_keys_all_algs();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let v: Value = serde_json::from_str(&jwks(&refs)).expect("JSON");
    let arr = v["keys"].as_array().expect("keys");
    assert_eq!(arr.len(), 8);
    let mut kids = std::collections::HashSet::new();
    for k in arr {
        assert!(kids.insert(k["kid"].as_str().expect("kid").to_string()), "duplicate kid");
        assert_eq!(k["use"], "sig");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "private member {private} published");
        }
        match k["kty"].as_str() {
            Some("RSA") => {
                assert_eq!(b64(k, "e"), vec![1, 0, 1]);
                assert_eq!(b64(k, "n").len(), 256);
                assert_eq!(b64(k, "n")[0] & 0x80, 0x80, "n has no leading zero byte");
            }
            Some("EC") => assert!(k["crv"] == "P-256" || k["crv"] == "P-384"),
            other => panic!("kty {other:?}"),
        }
    }
    assert!(kids.contains("rs256-rsa2048-a") && kids.contains("es256-p256-a") && kids.contains("es384-p384-a"));
}

#[test]
fn generated_keys_work() {
    for alg in [Alg::ES256, Alg::ES384, Alg::PS256] {
        let k = SigningKey::generate(alg);
        assert!(k.kid().starts_with("gen-"));
        assert!(verify_with_jwk(&mint(&k, json!({})), &k.public_jwk()), "{alg}");
    }
    assert_ne!(SigningKey::generate(Alg::ES256).kid(), SigningKey::generate(Alg::ES256).kid());
}

#[test]
fn arbitrary_headers_and_helpers() {
    let k = SigningKey::fixed(Alg::RS256);
    let t = mint_with_header(&k, json!({"alg": "RS256", "crit": ["exp"], "jku": "http://evil"}), json!({"a": 1}));
    let (h, _) = decode_unverified(&t).expect("decodes");
    assert_eq!(h, json!({"alg": "RS256", "crit": ["exp"], "jku": "http://evil"}));
    assert!(verify_with_jwk(&t, &k.public_jwk()));
    let raw = mint_raw_parts(&k, br#"{"alg":"RS256","alg":"none"}"#, b"{}");
    assert!(raw.starts_with(&b64url(br#"{"alg":"RS256","alg":"none"}"#)));
    let changed = tamper_payload(&t, &json!({"a": 2}));
    assert!(!verify_with_jwk(&changed, &k.public_jwk()));
    assert!(k.clone().with_alg(Alg::ES256).is_err());
    let ps = k.with_alg(Alg::PS384).expect("rsa as PS384").with_kid("x");
    assert_eq!((ps.alg(), ps.kid()), (Alg::PS384, "x"));
    assert_eq!("es256".parse::<Alg>(), Ok(Alg::ES256));
    assert!("HS256".parse::<Alg>().is_err());
}

#[test]
fn descope_claims_shape() {
    let c = descope_claims("P2abc", "U1", &[("T1", &["admin", "viewer"], &["read"]), ("T2", &[], &[])], 600, 1_000);
    assert_eq!(
        c,
        json!({
            "sub": "U1",
            "iss": "https://api.descope.com/P2abc",
            "aud": "P2abc",
            "iat": 1000,
            "exp": 1600,
            "drn": "DS",
            "amr": ["email"],
            "tenants": {"T1": {"roles": ["admin", "viewer"], "permissions": ["read"]}, "T2": {"roles": [], "permissions": []}},
            "roles": [],
            "permissions": [],
        })
    );
    let c = DescopeClaims::new("P", "U").roles(&["r"]).dct("T1").ttl(-5).now(100).claim("amr", json!(["pwd"])).build();
    assert_eq!((c["exp"].as_i64(), c["dct"].as_str(), c["roles"][0].as_str()), (Some(95), Some("T1"), Some("r")));
    assert_eq!(c["amr"], json!(["pwd"]));
    let c = DescopeClaims::new("P", "U").without("aud").without("drn").build();
    assert!(c.get("aud").is_none() && c.get("drn").is_none() && c["sub"] == "U");
}

fn get(addr: std::net::SocketAddr, path: &str) -> http::ClientResponse {
    http::get(addr, path, &[]).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn post(addr: std::net::SocketAddr, path: &str) -> http::ClientResponse {
    http::request(addr, "POST", path, &[], b"", Timeouts::default()).unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

#[test]
fn idp_server_serves_jwks_discovery_and_mint() {
    let idp = IdpServer::start("127.0.0.1:0");
    let a = idp.address();
    let r = get(a, "/.well-known/jwks.json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.text(), idp.jwks());
    let r = get(a, &idp.jwks_path());
    assert_eq!(r.status, 200);
    assert_eq!(get(a, "/v2/keys/other").status, 404);
    assert_eq!(idp.jwks_fetches(), 2);

    let d = get(a, "/.well-known/openid-configuration").json().expect("json");
    assert_eq!(d["issuer"], idp.issuer());
    assert_eq!(d["jwks_uri"], idp.jwks_uri());

    let t = get(a, "/mint?sub=alice&tenant=T1&roles=admin,viewer&permissions=read&ttl=120&alg=ES256");
    assert_eq!(t.status, 200);
    let token = t.text();
    let (h, p) = decode_unverified(&token).expect("token");
    assert_eq!(h["alg"], "ES256");
    assert_eq!(p["sub"], "alice");
    assert_eq!(p["tenants"]["T1"]["roles"], json!(["admin", "viewer"]));
    assert_eq!(p["dct"], "T1");
    assert_eq!(p["iss"], idp.issuer());
    assert_eq!(p["aud"], idp.project_id());
    assert_eq!(p["exp"].as_i64().unwrap_or(0) - p["iat"].as_i64().unwrap_or(0), 120);
    let kid = h["kid"].as_str().expect("kid");
    assert!(verify_with_jwk(&token, &find_jwk(&idp.jwks(), kid)));
    assert_eq!(get(a, "/mint?alg=HS256").status, 400);

    let token = idp.mint(idp.claims("bob", &[], 60));
    let (h, p) = decode_unverified(&token).expect("token");
    assert_eq!((h["alg"].as_str(), p["sub"].as_str()), (Some("RS256"), Some("bob")));
    assert!(idp.mint_alg(Alg::PS512, json!({})).is_some());
    assert_eq!(get(a, "/nope").status, 404);
    assert_eq!(get(a, "/admin/rotate").status, 405);
    assert_eq!(idp.jwks_fetches(), 2);
}

#[test]
fn idp_rotation_keeps_old_keys() {
    let idp = IdpServer::start_with("127.0.0.1:0", IdpConfig::default().keys(vec![SigningKey::fixed(Alg::ES256)]));
    let old = idp.signing_key();
    idp.rotate_to(SigningKey::fixed_key(FixedKey::P256B, Alg::ES256));
    assert_eq!(idp.signing_key().kid(), "es256-p256-b");
    assert_eq!(idp.keys().len(), 2);
    let token = idp.mint(json!({"sub": "x"}));
    assert!(verify_with_jwk(&token, &find_jwk(&idp.jwks(), "es256-p256-b")));
    let rotated = idp.rotate();
    assert!(rotated.kid().starts_with("gen-es256-"));
    let r = post(idp.address(), "/admin/rotate").json().expect("json");
    let new_kid = r["kid"].as_str().expect("kid").to_string();
    let stats = get(idp.address(), "/admin/stats").json().expect("json");
    assert_eq!(stats["signing_kid"], new_kid.as_str());
    assert_eq!(stats["kids"].as_array().map(|a| a.len()), Some(4));
    assert!(idp.remove_key(old.kid()));
    assert!(!idp.jwks().contains(old.kid()));
}

#[test]
fn idp_faults() {
    let idp = IdpServer::start("127.0.0.1:0");
    let a = idp.address();
    idp.set_fault(Fault::Status500);
    assert_eq!(get(a, "/.well-known/jwks.json").status, 500);
    idp.set_fault(Fault::BadBody);
    let r = get(a, "/.well-known/jwks.json");
    assert_eq!(r.status, 200);
    assert!(r.json().is_err());
    assert_eq!(post(a, "/admin/fault?mode=500").status, 200);
    assert_eq!(idp.fault(), Fault::Status500);
    assert_eq!(post(a, "/admin/fault?mode=delay&ms=50").status, 200);
    assert_eq!(idp.fault(), Fault::Delay(Duration::from_millis(50)));
    assert_eq!(post(a, "/admin/fault?mode=weird").status, 400);

    idp.set_fault(Fault::Hang);
    let short = Timeouts { connect: Duration::from_secs(2), io: Duration::from_millis(300) };
    assert!(http::request(a, "GET", "/.well-known/jwks.json", &[], b"", short).is_err(), "hang answered");
    // Discovery and admin still answer while the JWKS hangs.
    assert_eq!(get(a, "/admin/stats").json().expect("json")["fault"], "hang");
    // A hanging request is answered once the fault is cleared.
    let waiter = std::thread::spawn(move || http::get(a, "/.well-known/jwks.json", &[]).map(|r| r.status));
    std::thread::sleep(Duration::from_millis(200));
    idp.set_fault(Fault::Ok);
    assert_eq!(waiter.join().expect("thread").expect("answered"), 200);
    assert_eq!(idp.jwks_fetches(), 4);
    assert_eq!(get(a, "/admin/stats").json().expect("json")["jwks_fetches"], 4);
    assert!(idp.wait_for_jwks_fetches(4, Duration::from_millis(10)));
    assert!(!idp.wait_for_jwks_fetches(5, Duration::from_millis(50)));
}

#[test]
fn hanging_request_is_closed_on_stop() {
    let idp = IdpServer::start("127.0.0.1:0");
    let a = idp.address();
    idp.set_fault(Fault::Hang);
    let waiter = std::thread::spawn(move || http::get(a, "/.well-known/jwks.json", &[]));
    assert!(idp.wait_for_jwks_fetches(1, Duration::from_secs(5)));
    let started = std::time::Instant::now();
    idp.stop();
    assert!(waiter.join().expect("thread").is_err(), "no answer expected");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_err(), "still listening");
}

#[test]
fn echo_server_echoes() {
    let echo = EchoServer::start("127.0.0.1:0");
    let r = http::request(
        echo.address(),
        "POST",
        "/a/b?x=1",
        &[("X-Jwt-Sub", "alice"), ("x-multi", "1"), ("x-multi", "2")],
        b"hi",
        Timeouts::default(),
    )
    .expect("echo");
    assert_eq!(r.status, 200);
    let v = r.json().expect("json");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/a/b?x=1");
    assert_eq!(v["headers"]["x-jwt-sub"], "alice");
    assert_eq!(v["headers"]["x-multi"], "1, 2");
    assert_eq!(v["body"], "hi");
    assert_eq!(echo.request_count(), 1);
    assert_eq!(echo.last_request().and_then(|r| r.header("x-jwt-sub").map(str::to_string)), Some("alice".into()));
}

#[test]
fn keep_alive_connections_serve_several_requests() {
    use std::io::{Read, Write};
    let echo = EchoServer::start("127.0.0.1:0");
    let mut s = std::net::TcpStream::connect(echo.address()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(b"GET /1 HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    assert_eq!(out.matches("HTTP/1.1 200 OK").count(), 2, "{out}");
    assert_eq!(echo.request_count(), 2);
}

#[test]
fn hmac_matches_rfc4231() {
    // Test case 2 of RFC 4231 (all three hashes), so the attack tests' HS tokens carry real HMACs.
    let hex =
        |s: &str| (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect::<Vec<u8>>();
    let (key, msg) = (b"Jefe", b"what do ya want for nothing?");
    assert_eq!(hmac_sha2("HS256", key, msg), hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"));
    assert_eq!(
        hmac_sha2("HS384", key, msg),
        hex("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649")
    );
    assert_eq!(
        hmac_sha2("HS512", key, msg),
        hex("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737")
    );
}

#[test]
fn public_key_pem_wraps_at_64() {
    let pem = public_key_pem(&[0u8; 100]);
    let lines: Vec<&str> = pem.lines().collect();
    assert_eq!(lines.first(), Some(&"-----BEGIN PUBLIC KEY-----"));
    assert_eq!(lines.last(), Some(&"-----END PUBLIC KEY-----"));
    assert!(lines[1..lines.len() - 1].iter().all(|l| l.len() <= 64) && lines[1].len() == 64);
    assert!(pem.ends_with("-----\n"));
}
