//! The verified-token cache through the real filter: hits skip verification but never the
//! claims, a cached token still expires, and new keys empty the cache.

mod common;
mod harness;

use common::*;
use demo_idp::{jwks, mint, Alg, FixedKey, SigningKey};
use harness::{MockProxy, Outcome};
use serde_json::json;
use std::time::Duration;

fn send(vm: &harness::Vm, token: &str) -> u32 {
    let mut h = get("/api");
    h.push(bearer(token));
    vm.request(&headers(&h)).status()
}

#[test]
fn repeated_token_hits_and_still_gets_identity() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = vm_with(&proxy, &config_with(local_provider(&[&key])));
    let token = mint(&key, claims(&proxy, "u1"));
    for _ in 0..3 {
        let mut h = get("/api");
        h.push(bearer(&token));
        let req = vm.request(&headers(&h));
        assert_eq!(req.status(), 200);
        assert_eq!(req.header("x-jwt-sub").as_deref(), Some("u1"));
    }
    vm.tick(); // request counters are flushed on the tick
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.miss"), Some(1));
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.hit"), Some(2));
}

#[test]
fn a_cached_token_expires_like_any_other() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = vm_with(&proxy, &config_with(local_provider(&[&key])));
    let token = mint(&key, claims(&proxy, "u1")); // exp = now + 600, skew 60
    assert_eq!(send(&vm, &token), 200);
    proxy.advance(Duration::from_secs(660));
    assert_eq!(send(&vm, &token), 200, "within the clock skew");
    proxy.advance(Duration::from_secs(1));
    assert_eq!(send(&vm, &token), 401, "expired on a cache hit");
    vm.tick();
    assert_eq!(proxy.metric("jwt_authn_wasm.denied.jwt_expired"), Some(1));
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.hit"), Some(2));
    // The expired entry was dropped: the next try is a miss (and expired again).
    assert_eq!(send(&vm, &token), 401);
    vm.tick();
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.miss"), Some(2));
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.hit"), Some(2));
}

#[test]
fn audience_override_is_checked_on_hits() {
    let proxy = MockProxy::new();
    let key = rs256();
    let config = json!({
        "providers": {"demo": local_provider(&[&key])},
        "rules": [
            {"match": {"prefix": "/web"}, "requires": {"provider_and_audiences": {"provider_name": "demo", "audiences": ["web"]}}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "demo"}}
        ]
    });
    let vm = vm_with(&proxy, &config);
    let token = mint(&key, claims(&proxy, "u1"));
    assert_eq!(send(&vm, &token), 200);
    let mut h = get("/web/x");
    h.push(bearer(&token));
    assert_eq!(vm.request(&headers(&h)).status(), 403, "a cached token is still checked against this rule's audiences");
    // ... and stays cached for the routes whose audiences it has.
    assert_eq!(send(&vm, &token), 200);
    vm.tick();
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.miss"), Some(1));
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.hit"), Some(2));
}

#[test]
fn new_keys_empty_the_cache() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let a = SigningKey::fixed_key(FixedKey::Rsa2048A, Alg::RS256);
    let b = SigningKey::fixed_key(FixedKey::Rsa2048B, Alg::RS256);
    let config = config_with(json!({
        "issuer": ISSUER,
        "remote_jwks": {"http_uri": {"uri": "https://idp.example.com/jwks", "cluster": "idp", "timeout": "2s"}, "cache_duration": "60s"},
    }));
    let vm = vm_with(&proxy, &config);
    let token = mint(&a, claims(&proxy, "u1"));
    let mut h = get("/api");
    h.push(bearer(&token));
    let first = vm.request(&headers(&h));
    vm.tick();
    let call = vm.pending_calls().remove(0);
    vm.respond(call.token, 200, &[], jwks(&[&a]).as_bytes());
    assert_eq!(first.outcome(), Outcome::Continued);
    assert_eq!(send(&vm, &token), 200);
    vm.tick();
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.hit"), Some(1));

    // The IdP drops key A at the next refresh: its tokens stop passing at once.
    proxy.advance(Duration::from_secs(54));
    vm.tick();
    let call = vm.pending_calls().remove(0);
    vm.respond(call.token, 200, &[], jwks(&[&b]).as_bytes());
    let mut h = get("/api");
    h.push(bearer(&token));
    let req = vm.request(&headers(&h));
    // Not served from the cache: its kid is now unknown, so it waits for one refetch...
    assert_eq!(req.outcome(), Outcome::Paused);
    vm.tick();
    let call = vm.pending_calls().remove(0);
    vm.respond(call.token, 200, &[], jwks(&[&b]).as_bytes());
    // ...and is refused when the key is still gone.
    assert_eq!(req.status(), 401);
}

#[test]
fn jwt_cache_config_sizes_the_cache() {
    let proxy = MockProxy::new();
    let key = rs256();
    let mut provider = local_provider(&[&key]);
    provider["jwt_cache_config"] = json!({"jwt_cache_size": 1});
    let vm = vm_with(&proxy, &config_with(provider));
    let t1 = mint(&key, claims(&proxy, "u1"));
    let t2 = mint(&key, claims(&proxy, "u2"));
    for _ in 0..2 {
        assert_eq!(send(&vm, &t1), 200);
        assert_eq!(send(&vm, &t2), 200);
    }
    vm.tick();
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.hit").unwrap_or(0), 0);
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.miss"), Some(4), "one entry: alternating tokens always miss");
    let mut provider = local_provider(&[&key]);
    provider["jwt_cache_config"] = json!({"jwt_max_token_size": 16});
    let vm = vm_with(&MockProxy::new(), &config_with(provider));
    assert_eq!(send(&vm, &t1), 200);
    assert_eq!(send(&vm, &t1), 200);
    vm.tick();
    assert_eq!(
        vm.proxy().metric("jwt_authn_wasm.token_cache.hit").unwrap_or(0),
        0,
        "tokens over jwt_max_token_size are not cached"
    );
}
