//! Remote JWKS through a real Envoy with two workers (`--concurrency 2`) against the demo
//! IdP, which the tests control: first fetch, rotation through an unknown `kid`, an IdP
//! outage, a hanging IdP, and the number of fetches.

mod support;

use demo_idp::{mint, now_secs, Alg, EchoServer, Fault, FixedKey, IdpServer, SigningKey};
use serde_json::json;
use std::time::Duration;
use support::{bearer, EnvoyProcess, WASM_TEMPLATE};

struct Rig {
    envoy: EnvoyProcess,
    _echo: EchoServer,
    idp: IdpServer,
}

fn start(timeout: &str) -> Rig {
    let idp = IdpServer::start("127.0.0.1:0");
    let echo = EchoServer::start("127.0.0.1:0");
    let config = json!({
        "providers": {"descope": {
            "issuer": idp.issuer(),
            "remote_jwks": {
                "http_uri": {"uri": idp.jwks_uri(), "cluster": "idp", "timeout": timeout},
                "cache_duration": "300s"
            },
            "claim_to_headers": [{"header_name": "x-user-id", "claim_name": "sub"}]
        }},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "descope"}}]
    })
    .to_string();
    let envoy = EnvoyProcess::start_with(WASM_TEMPLATE, echo.address(), Some(idp.address()), &config, 2);
    Rig { envoy, _echo: echo, idp }
}

fn token(rig: &Rig, key: &SigningKey, sub: &str) -> String {
    let now = now_secs();
    mint(key, json!({"iss": rig.idp.issuer(), "sub": sub, "iat": now, "exp": now + 300}))
}

fn status(rig: &Rig, token: &str) -> u16 {
    rig.envoy.get("/api", &[("authorization", &bearer(token))]).status
}

#[test]
fn first_fetch_rotation_outage_and_fetch_bound() {
    let rig = start("2s");
    let original = rig.idp.signing_key();
    let good = token(&rig, &original, "alice");

    // First requests wait for the first fetch, then pass; both workers share that one fetch.
    for i in 0..20 {
        let r = rig.envoy.get("/api", &[("authorization", &bearer(&good))]);
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        assert_eq!(r.json().unwrap()["headers"]["x-user-id"], "alice");
    }
    assert_eq!(rig.idp.jwks_fetches(), 1, "two workers, one fetch");

    // Rotation: a token signed with a newly published key passes on its first request.
    let rotated = SigningKey::fixed_key(FixedKey::Rsa2048B, Alg::RS256).with_kid("rotated-key");
    rig.idp.rotate_to(rotated.clone());
    assert_eq!(status(&rig, &token(&rig, &rotated, "bob")), 200, "new key accepted at once");
    assert_eq!(rig.idp.jwks_fetches(), 2, "one refetch for the unknown kid");
    for _ in 0..10 {
        assert_eq!(status(&rig, &token(&rig, &rotated, "bob")), 200);
    }

    // Outage: tokens of known keys keep passing; an unknown kid is refused without a
    // refetch storm (rate limited to one per 30 s).
    rig.idp.set_fault(Fault::Status500);
    for _ in 0..10 {
        assert_eq!(status(&rig, &good), 200);
        assert_eq!(status(&rig, &token(&rig, &rotated, "bob")), 200);
    }
    let stranger = SigningKey::fixed_key(FixedKey::Rsa3072, Alg::RS256).with_kid("never-published");
    for _ in 0..5 {
        assert_eq!(status(&rig, &token(&rig, &stranger, "mallory")), 401);
    }
    assert_eq!(rig.idp.jwks_fetches(), 2, "no fetch within the refetch interval");

    let stats = rig.envoy.admin_stats("jwt_authn_wasm");
    let stat =
        |suffix: &str| stats.iter().find(|(k, _)| k.ends_with(suffix)).map(|(_, v)| v.parse::<u64>().unwrap_or(0));
    assert_eq!(stat("jwt_authn_wasm.allowed"), Some(51), "{stats:?}");
    assert_eq!(stat("jwt_authn_wasm.denied.jwt_key_not_found"), Some(5), "{stats:?}");
    assert_eq!(stat("jwt_authn_wasm.jwks_fetch.ok"), Some(2), "{stats:?}");
}

#[test]
fn hanging_idp_gives_503_after_the_fetch_timeout() {
    let rig = start("1s");
    rig.idp.set_fault(Fault::Hang);
    let good = token(&rig, &rig.idp.signing_key(), "alice");
    let started = std::time::Instant::now();
    let r = rig.envoy.get("/api", &[("authorization", &bearer(&good))]);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json().unwrap()["code"], "jwks_unavailable");
    assert!(r.header("www-authenticate").is_none());
    // It waited for the fetch (never answered at once); how long beyond is the machine's load.
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900), "waited {waited:?}");

    // The IdP recovers: the next attempt (after backoff) brings keys.
    rig.idp.set_fault(Fault::Ok);
    let mut ok = false;
    for _ in 0..50 {
        if status(&rig, &good) == 200 {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ok, "keys never arrived after the IdP recovered");
}
