//! Fixtures shared by the native-harness test binaries.
#![allow(dead_code)]

use crate::harness::{MockProxy, Vm};
use demo_idp::{jwks, Alg, SigningKey};
use serde_json::{json, Value};
use std::time::UNIX_EPOCH;

pub const ISSUER: &str = "https://idp.example.com";
pub const AUDIENCE: &str = "demo-api";

/// A VM of `proxy` running the real filter, configured with `config`.
pub fn vm_with(proxy: &MockProxy, config: &Value) -> Vm {
    let vm = proxy.vm();
    vm.start(|| jwt_authn_wasm::_initialize());
    assert!(vm.configure(&config.to_string()), "configuration refused: {:?}", vm.logs());
    vm
}

pub fn now_secs(proxy: &MockProxy) -> i64 {
    proxy.now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Standard claims valid at the proxy's current time.
pub fn claims(proxy: &MockProxy, sub: &str) -> Value {
    let now = now_secs(proxy);
    json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600})
}

/// A provider verifying against an inline JWKS of `keys`.
pub fn local_provider(keys: &[&SigningKey]) -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "local_jwks": {"inline_string": jwks(keys)},
        "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
    })
}

/// One provider `demo`, required on every path but `/healthz`.
pub fn config_with(provider: Value) -> Value {
    json!({
        "providers": {"demo": provider},
        "rules": [
            {"match": {"path": "/healthz"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "demo"}}
        ]
    })
}

pub fn rs256() -> SigningKey {
    SigningKey::fixed(Alg::RS256)
}

pub fn get(path: &str) -> Vec<(&'static str, String)> {
    vec![
        (":method", "GET".into()),
        (":path", path.into()),
        (":authority", "api.example.com".into()),
        (":scheme", "https".into()),
    ]
}

pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

pub fn headers<'a>(h: &'a [(&'static str, String)]) -> Vec<(&'a str, &'a str)> {
    h.iter().map(|(k, v)| (*k, v.as_str())).collect()
}
