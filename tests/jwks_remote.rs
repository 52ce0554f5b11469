//! Remote JWKS on the native mock host, with simulated time, ticks and dispatched calls:
//! first fetch with requests waiting, refresh, failure with backoff and stale keys kept,
//! maximum staleness, rotation through an unknown `kid`, the refetch rate limit, two VMs
//! sharing one fetch, OIDC discovery.

mod common;
mod harness;

use common::*;
use demo_idp::{jwks, mint, Alg, FixedKey, SigningKey};
use harness::{HttpCall, MockProxy, Outcome, Request, Status, Vm};
use serde_json::{json, Value};
use std::time::Duration;

const JWKS_PATH: &str = "/.well-known/jwks.json";

fn key_a() -> SigningKey {
    SigningKey::fixed_key(FixedKey::Rsa2048A, Alg::RS256)
}
fn key_b() -> SigningKey {
    SigningKey::fixed_key(FixedKey::Rsa2048B, Alg::RS256)
}

fn remote_config() -> Value {
    config_with(json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "remote_jwks": {
            "http_uri": {"uri": format!("https://idp.example.com{JWKS_PATH}"), "cluster": "idp", "timeout": "2s"},
            "cache_duration": "600s"
        },
        "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
    }))
}

fn setup() -> (MockProxy, Vm) {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let vm = vm_with(&proxy, &remote_config());
    (proxy, vm)
}

fn send<'a>(vm: &'a Vm, token: &str) -> Request<'a> {
    let mut h = get("/api");
    h.push(bearer(token));
    vm.request(&headers(&h))
}

/// The one fetch in flight, after the tick that starts fetches requests asked for.
fn only_call(vm: &Vm) -> HttpCall {
    if vm.tick_period() == Some(Duration::from_millis(1)) {
        vm.tick();
    }
    let calls = vm.pending_calls();
    assert_eq!(calls.len(), 1, "expected exactly one fetch in flight: {calls:?}");
    calls.into_iter().next().unwrap()
}

fn serve(vm: &Vm, call: &HttpCall, keys: &[&SigningKey]) {
    vm.respond(call.token, 200, &[("content-type", "application/json")], jwks(keys).as_bytes());
}

fn code(req: &Request<'_>) -> String {
    let body: Value = serde_json::from_str(&req.local_reply().expect("local reply").body_text()).unwrap();
    body["code"].as_str().unwrap_or_default().to_owned()
}

/// Fetches keys once so the VM has them.
fn warm(vm: &Vm, proxy: &MockProxy, keys: &[&SigningKey]) {
    let req = send(vm, &mint(&key_a(), claims(proxy, "warm")));
    serve(vm, &only_call(vm), keys);
    assert_eq!(req.outcome(), Outcome::Continued);
}

#[test]
fn first_fetch_holds_requests_then_resumes_them() {
    let (proxy, vm) = setup();
    assert_eq!(vm.tick_period(), Some(Duration::from_millis(200)));
    let token = mint(&key_a(), claims(&proxy, "user-1"));
    let first = send(&vm, &token);
    let second = send(&vm, &token);
    assert_eq!(first.outcome(), Outcome::Paused, "a request waits for keys, never a 401");
    assert_eq!(second.outcome(), Outcome::Paused);
    assert_eq!(vm.tick_period(), Some(Duration::from_millis(1)), "a prompt tick starts the fetch");
    let call = only_call(&vm);
    assert_eq!(
        vm.tick_period(),
        Some(Duration::from_millis(200)),
        "the requests still waiting do not keep the tick short"
    );
    assert_eq!(call.context_id, vm.root_id().unwrap(), "fetches belong to the root context");
    assert_eq!(
        (call.cluster.as_str(), call.method(), call.path(), call.authority()),
        ("idp", "GET", JWKS_PATH, "idp.example.com")
    );
    assert_eq!(call.timeout, Duration::from_secs(2));

    serve(&vm, &call, &[&key_a()]);
    for req in [&first, &second] {
        assert_eq!(req.outcome(), Outcome::Continued);
        assert_eq!(req.header("x-jwt-sub").as_deref(), Some("user-1"));
    }
    assert_eq!(send(&vm, &token).status(), 200, "later requests need no fetch");
    vm.tick();
    // A paused request's lookups count once, when it is decided: one verification, two hits.
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.miss"), Some(1));
    assert_eq!(proxy.metric("jwt_authn_wasm.token_cache.hit"), Some(2));
    assert!(vm.pending_calls().is_empty());
    assert_eq!(vm.tick_period(), Some(Duration::from_millis(200)), "back to the normal tick");
    assert_eq!(proxy.metric("jwt_authn_wasm.jwks_fetch.ok"), Some(1));
}

/// The host refusing a call for a request resumed when keys come (the SDK would panic): a
/// refused header change answers it 500 instead of letting it through; a refused resume
/// is logged and the stream reset. The VM goes on either way.
#[test]
fn refused_calls_on_resume_fail_closed() {
    for (call, code_wanted) in
        [("proxy_replace_header_map_value", Some("filter_error")), ("proxy_continue_stream", None)]
    {
        let (proxy, vm) = setup();
        let token = mint(&key_a(), claims(&proxy, "user-1"));
        let req = send(&vm, &token);
        let fetch = only_call(&vm);
        vm.refuse(call, Some(Status::InternalFailure));
        serve(&vm, &fetch, &[&key_a()]);
        match code_wanted {
            Some(wanted) => assert_eq!(code(&req), wanted, "{call}"),
            None => assert_eq!(req.outcome(), Outcome::Reset, "{call}"),
        }
        assert!(vm.logged(&format!("the host refused {call} (status 10)")), "{call}: {:?}", vm.logs());
        vm.refuse(call, None);
        assert_eq!(send(&vm, &token).status(), 200, "{call}: the VM after the refusal");
    }
}

/// While keys are being fetched, every new waiting request brings the next tick forward
/// (1 ms) so its fetch can start. Those ticks must not decide every paused request again
/// when nothing they wait on changed: with R new requests a second each waiting T seconds,
/// that was R x R x T decisions a second, a worker's CPU at a few hundred requests.
#[test]
fn waiting_requests_are_not_all_decided_again_on_every_tick() {
    let (proxy, vm) = setup();
    let token = mint(&key_a(), claims(&proxy, "u"));
    let mut waiting = Vec::new();
    for _ in 0..50 {
        waiting.push(send(&vm, &token));
        vm.advance_ticking(Duration::from_millis(2));
    }
    // Each request is decided once on arrival (one read of the token's header each) and at
    // most once more when the fetch was claimed; not once per tick.
    let reads = vm.host_calls("proxy_get_header_map_value");
    let per_decision = {
        let before = vm.host_calls("proxy_get_header_map_value");
        let r = send(&vm, &token);
        let n = vm.host_calls("proxy_get_header_map_value") - before;
        waiting.push(r);
        n
    };
    assert!(per_decision > 0);
    assert!(
        reads <= 3 * 50 * per_decision,
        "{reads} header reads for 50 waiting requests ({per_decision} per decision): they were decided again on every tick"
    );
    assert!(waiting.iter().all(|r| r.outcome() == Outcome::Paused));
    // The keys arrive: all of them go on.
    let call = only_call(&vm);
    serve(&vm, &call, &[&key_a()]);
    assert!(waiting.iter().all(|r| r.outcome() == Outcome::Continued));
}

#[test]
fn no_keys_in_time_is_503_not_401() {
    let (proxy, vm) = setup();
    let req = send(&vm, &mint(&key_a(), claims(&proxy, "u")));
    assert_eq!(req.outcome(), Outcome::Paused);
    // One prompt tick starts the fetch; then the normal period, not one tick per millisecond
    // re-deciding the waiting request.
    let ticks = vm.advance_ticking(Duration::from_millis(1800));
    assert!(ticks <= 10, "{ticks} ticks in 1.8 s while a request waited");
    assert_eq!(req.outcome(), Outcome::Paused, "still within the fetch timeout");
    vm.advance_ticking(Duration::from_millis(400));
    assert_eq!(req.status(), 503);
    assert_eq!(code(&req), "jwks_unavailable");
    assert_eq!(req.local_reply().unwrap().header("www-authenticate"), None);
    // The fetch finally times out: counted, and retried after a backoff.
    vm.timeout_call(only_call(&vm).token);
    assert_eq!(proxy.metric("jwt_authn_wasm.jwks_fetch.failed"), Some(1));
    assert!(vm.pending_calls().is_empty());
    vm.advance_ticking(Duration::from_millis(1200));
    assert_eq!(vm.pending_calls().len(), 1, "retried after the backoff");
}

#[test]
fn refresh_before_cache_duration_ends() {
    let (proxy, vm) = setup();
    warm(&vm, &proxy, &[&key_a()]);
    // Refresh at 90% of 600 s; tick in coarse steps, as Envoy's timer would fire meanwhile.
    proxy.advance(Duration::from_secs(539));
    vm.tick();
    assert!(vm.pending_calls().is_empty());
    proxy.advance(Duration::from_secs(1));
    vm.tick();
    let call = only_call(&vm);
    serve(&vm, &call, &[&key_a(), &key_b()]);
    assert_eq!(send(&vm, &mint(&key_b(), claims(&proxy, "u"))).status(), 200, "refreshed keys in use");
}

#[test]
fn failures_keep_last_good_keys_and_back_off() {
    let (proxy, vm) = setup();
    warm(&vm, &proxy, &[&key_a()]);
    proxy.advance(Duration::from_secs(540));
    vm.tick();
    let mut backoffs = Vec::new();
    for round in 0..4 {
        let call = only_call(&vm);
        match round {
            0 => vm.respond(call.token, 500, &[], b"oops"),
            1 => vm.fail_call(call.token),
            2 => vm.respond(call.token, 200, &[], b"<html>not a jwks</html>"),
            _ => vm.respond(call.token, 200, &[], br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#),
        }
        // Valid tokens of known keys are still accepted through the outage.
        assert_eq!(send(&vm, &mint(&key_a(), claims(&proxy, "u"))).status(), 200, "round {round}");
        let mut waited = Duration::ZERO;
        while vm.pending_calls().is_empty() {
            proxy.advance(Duration::from_millis(100));
            vm.tick();
            waited += Duration::from_millis(100);
            assert!(waited < Duration::from_secs(120), "no retry");
        }
        backoffs.push(waited);
    }
    assert_eq!(proxy.metric("jwt_authn_wasm.jwks_fetch.failed"), Some(4));
    assert!(backoffs.windows(2).all(|w| w[1] > w[0]), "backoff grows: {backoffs:?}");
    assert!(backoffs[0] >= Duration::from_millis(500) && backoffs[0] <= Duration::from_millis(1100), "{backoffs:?}");
    assert!(vm.logged(r#"HTTP status 500: "oops""#), "the answer's body says why: {:?}", vm.logs());
}

/// A fetch that cannot even start (the cluster does not exist: Envoy refuses the call at
/// once) or fails must not leave every protected request waiting out the fetch timeout: they
/// are answered 503 when the failure is known, and later ones at once until the retry.
#[test]
fn a_failed_first_fetch_answers_the_waiting_requests_at_once() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["another"]);
    let vm = vm_with(&proxy, &remote_config());
    let token = mint(&key_a(), claims(&proxy, "u"));
    let first = send(&vm, &token);
    assert_eq!(first.outcome(), Outcome::Paused, "the first fetch is worth waiting for");
    vm.tick();
    assert!(vm.pending_calls().is_empty(), "no such cluster: the dispatch failed");
    assert!(vm.logged("Envoy has no cluster named `idp`"), "the log says what is missing: {:?}", vm.logs());
    assert_eq!(first.status(), 503);
    assert_eq!(code(&first), "jwks_unavailable");
    assert_eq!(send(&vm, &token).status(), 503, "until the retry, nothing to wait for");
    assert_eq!(proxy.metric("jwt_authn_wasm.jwks_fetch.failed"), Some(1));
}

/// A request that needs several providers' keys (`requires_all`) waits as long as the
/// slowest of them may take, even once the quicker one's keys are in.
#[test]
fn a_request_needing_two_providers_waits_the_longer_limit() {
    let (proxy, fast, slow) = fast_and_slow();
    let config = json!({
        "providers": {"fast": fast, "slow": slow},
        "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [
            {"provider_name": "fast"}, {"provider_name": "slow"}]}}}]
    });
    let vm = vm_with(&proxy, &config);
    let mut slow_claims = claims(&proxy, "u");
    slow_claims["iss"] = json!("https://slow.example.com");
    let mut h = get("/both");
    h.push(bearer(&mint(&key_a(), claims(&proxy, "u"))));
    h.push(("x-slow-token", mint(&key_a(), slow_claims)));
    let req = vm.request(&headers(&h));
    assert_eq!(req.outcome(), Outcome::Paused);
    vm.tick();
    let call = |cluster: &str| vm.pending_calls().into_iter().find(|c| c.cluster == cluster).expect(cluster);
    serve(&vm, &call("idp"), &[&key_a()]);
    vm.advance_ticking(Duration::from_millis(1_500));
    assert_eq!(req.outcome(), Outcome::Paused, "past the fast provider's 1 s, within the slow one's 8 s");
    serve(&vm, &call("slow"), &[&key_a()]);
    assert_eq!(req.outcome(), Outcome::Continued);
}

/// A VM started (or reconfigured) after keys were fetched uses them from its first request.
#[test]
fn a_new_vm_starts_with_the_keys_in_shared_data() {
    let (proxy, vm) = setup();
    warm(&vm, &proxy, &[&key_a()]);
    let later = vm_with(&proxy, &remote_config());
    let req = send(&later, &mint(&key_a(), claims(&proxy, "u")));
    assert_eq!(req.outcome(), Outcome::Continued, "no wait for a tick");
    assert!(later.pending_calls().is_empty() && vm.pending_calls().is_empty());
}

/// The refresh time in shared data is set by whoever fetched last, under its own policy. A
/// configuration reloaded with a shorter `cache_duration` (a new VM on the same shared data)
/// refreshes on its own period, not the longer one stored: shortening it to push a revoked
/// key out sooner works.
#[test]
fn a_shorter_cache_duration_after_a_reload_takes_effect() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let mut long = remote_config();
    long["providers"]["demo"]["remote_jwks"]["cache_duration"] = json!("3600s");
    let old = vm_with(&proxy, &long);
    warm(&old, &proxy, &[&key_a()]);
    assert!(old.stop());
    let reloaded = vm_with(&proxy, &remote_config());
    proxy.advance(Duration::from_secs(541));
    reloaded.tick();
    let call = only_call(&reloaded);
    serve(&reloaded, &call, &[&key_b()]);
    assert_eq!(send(&reloaded, &mint(&key_b(), claims(&proxy, "u"))).status(), 200, "the new key, at 540 s not 3240 s");
}

/// A request waits for the keys it needs, as long as their provider allows: another
/// provider's longer timeout does not hold it.
/// Two remote providers: `fast` (1 s fetch timeout, the `idp` cluster, Bearer tokens) and
/// `slow` (8 s, the `slow` cluster, `x-slow-token`, its own issuer).
fn fast_and_slow() -> (MockProxy, Value, Value) {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp", "slow"]);
    let mut fast = remote_config()["providers"]["demo"].clone();
    fast["remote_jwks"]["http_uri"]["timeout"] = json!("1s");
    let mut slow = fast.clone();
    slow["issuer"] = json!("https://slow.example.com");
    slow["remote_jwks"]["http_uri"] =
        json!({"uri": "https://slow.example.com/keys", "cluster": "slow", "timeout": "8s"});
    slow["from_headers"] = json!([{"name": "x-slow-token"}]);
    (proxy, fast, slow)
}

#[test]
fn a_request_waits_its_own_providers_limit() {
    let (proxy, fast, slow) = fast_and_slow();
    let config = json!({
        "providers": {"fast": fast, "slow": slow},
        "rules": [
            {"match": {"prefix": "/slow"}, "requires": {"provider_name": "slow"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "fast"}}
        ]
    });
    let vm = vm_with(&proxy, &config);
    let req = send(&vm, &mint(&key_a(), claims(&proxy, "u")));
    assert_eq!(req.outcome(), Outcome::Paused);
    vm.advance_ticking(Duration::from_millis(900));
    assert_eq!(req.outcome(), Outcome::Paused);
    vm.advance_ticking(Duration::from_millis(400));
    assert_eq!(req.status(), 503, "1 s is this provider's limit, not the other's 8 s");
}

#[test]
fn keys_older_than_max_staleness_stop_being_used() {
    let (proxy, vm) = setup();
    warm(&vm, &proxy, &[&key_a()]);
    // A long-lived token, verified (and cached) while the keys were fresh.
    let mut long = claims(&proxy, "long");
    long["exp"] = json!(now_secs(&proxy) + 3 * 24 * 3600);
    let long = mint(&key_a(), long);
    assert_eq!(send(&vm, &long).status(), 200);
    // A day later with every refresh failing (only the last one simulated).
    proxy.advance(Duration::from_secs(24 * 3600 + 1));
    vm.tick();
    vm.respond(only_call(&vm).token, 503, &[], b"");
    // Stale keys are not used, and with the refresh failed and its retry not yet due there is
    // nothing to wait for: 503 at once, not after the fetch timeout.
    let req = send(&vm, &mint(&key_a(), claims(&proxy, "u")));
    assert_eq!(req.status(), 503, "stale keys are not used");
    assert_eq!(code(&req), "jwks_unavailable");
    let req = send(&vm, &long);
    assert_eq!(req.status(), 503, "nor is a token verified with them, from the cache");
    assert_eq!(proxy.metric("jwt_authn_wasm.jwks.demo.keys"), Some(0), "the gauge counts usable keys");
    // Without usable keys the retry comes within seconds (at most 5 s), not the minute a
    // refresh of good keys may back off to; a request meanwhile waits for it.
    vm.advance_ticking(Duration::from_millis(5100));
    let call = only_call(&vm);
    let req = send(&vm, &mint(&key_a(), claims(&proxy, "u")));
    assert_eq!(req.outcome(), Outcome::Paused, "a retry is under way: worth waiting for");
    serve(&vm, &call, &[&key_a()]);
    assert_eq!(req.status(), 200);
    assert_eq!(proxy.metric("jwt_authn_wasm.jwks.demo.keys"), Some(1));
}

/// While the IdP fails, a token with a `kid` the held keys lack may be signed by a newly
/// published key: 503 (retry), not 401 (sign in again). Known kids are decided as before,
/// and once a fetch succeeds an unknown kid is 401 again.
#[test]
fn an_unknown_kid_while_fetches_fail_is_503() {
    let (proxy, vm) = setup();
    warm(&vm, &proxy, &[&key_a()]);
    proxy.advance(Duration::from_secs(541));
    vm.tick();
    vm.respond(only_call(&vm).token, 500, &[], b"");
    let stranger = mint(&key_b(), claims(&proxy, "u"));
    let req = send(&vm, &stranger);
    assert_eq!(req.outcome(), Outcome::Paused, "a refetch may still bring it");
    vm.respond(only_call(&vm).token, 500, &[], b"");
    assert_eq!((req.status(), code(&req)), (503, "jwks_unavailable".to_owned()));
    assert_eq!(send(&vm, &mint(&key_a(), claims(&proxy, "u"))).status(), 200);
    vm.advance_ticking(Duration::from_secs(3));
    serve(&vm, &only_call(&vm), &[&key_a()]);
    assert_eq!(code(&send(&vm, &stranger)), "jwt_key_not_found");
}

#[test]
fn unknown_kid_refetches_at_once_and_is_rate_limited() {
    let (proxy, vm) = setup();
    warm(&vm, &proxy, &[&key_a()]);
    // The IdP rotated to key B: its first token triggers one refetch, concurrent ones share it.
    let rotated = mint(&key_b(), claims(&proxy, "rotated"));
    let r1 = send(&vm, &rotated);
    let r2 = send(&vm, &rotated);
    assert_eq!((r1.outcome(), r2.outcome()), (Outcome::Paused, Outcome::Paused));
    serve(&vm, &only_call(&vm), &[&key_a(), &key_b()]);
    assert_eq!(r1.status(), 200);
    assert_eq!(r2.header("x-jwt-sub").as_deref(), Some("rotated"));

    // Another unknown kid within 30 s: no refetch, 401 at once.
    let unknown = mint(&SigningKey::fixed_key(FixedKey::Rsa3072, Alg::RS256), claims(&proxy, "u"));
    let req = send(&vm, &unknown);
    assert_eq!(req.status(), 401);
    assert_eq!(code(&req), "jwt_key_not_found");
    vm.tick();
    assert!(vm.pending_calls().is_empty());

    // After the interval it may refetch again; still unknown after it → 401.
    proxy.advance(Duration::from_secs(30));
    let req = send(&vm, &unknown);
    assert_eq!(req.outcome(), Outcome::Paused);
    serve(&vm, &only_call(&vm), &[&key_a(), &key_b()]);
    assert_eq!(req.status(), 401);
    assert_eq!(code(&req), "jwt_key_not_found");
}

/// A refetch for an unknown `kid` that does not answer in time: the request is decided
/// with the keys there are (401, the key is unknown), not held until the fetch ends.
#[test]
fn an_unknown_kid_waits_no_longer_than_the_fetch_timeout() {
    let (proxy, vm) = setup();
    warm(&vm, &proxy, &[&key_a()]);
    let req = send(&vm, &mint(&key_b(), claims(&proxy, "rotated")));
    assert_eq!(req.outcome(), Outcome::Paused);
    let _hanging = only_call(&vm);
    vm.advance_ticking(Duration::from_millis(1_800));
    assert_eq!(req.outcome(), Outcome::Paused);
    vm.advance_ticking(Duration::from_millis(400));
    assert_eq!(req.status(), 401, "2 s is the fetch timeout");
    assert_eq!(code(&req), "jwt_key_not_found");
}

#[test]
fn two_vms_share_one_fetch() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let vm1 = vm_with(&proxy, &remote_config());
    let vm2 = vm_with(&proxy, &remote_config());
    let token = mint(&key_a(), claims(&proxy, "u"));
    let on1 = send(&vm1, &token);
    let on2 = send(&vm2, &token);
    assert_eq!((on1.outcome(), on2.outcome()), (Outcome::Paused, Outcome::Paused));
    let call = only_call(&vm1);
    vm2.tick();
    assert!(vm2.pending_calls().is_empty(), "the second worker waits for the first one's fetch");
    serve(&vm1, &call, &[&key_a()]);
    assert_eq!(on1.outcome(), Outcome::Continued);
    vm2.tick();
    assert_eq!(on2.outcome(), Outcome::Continued, "picked up from shared data on the next tick");
    assert_eq!(send(&vm2, &token).status(), 200);

    // One refresh for both.
    proxy.advance(Duration::from_secs(540));
    vm2.tick();
    vm1.tick();
    let total = vm1.pending_calls().len() + vm2.pending_calls().len();
    assert_eq!(total, 1, "N workers, one fetch per refresh");
    assert_eq!(proxy.metric("jwt_authn_wasm.jwks_fetch.ok"), Some(1));
}

fn discovery(issuer: &str) -> Value {
    config_with(json!({
        "issuer": issuer,
        "oidc_discovery": {"http_uri": {"uri": "https://idp.example.com/.well-known/openid-configuration", "cluster": "idp", "timeout": "2s"}},
        "claim_to_headers": [{"header_name": "x-jwt-sub", "claim_name": "sub"}]
    }))
}

#[test]
fn oidc_discovery_finds_the_jwks_and_checks_the_issuer() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let vm = vm_with(&proxy, &discovery(ISSUER));
    let req = send(&vm, &mint(&key_a(), claims(&proxy, "u")));
    let call = only_call(&vm);
    assert_eq!(call.path(), "/.well-known/openid-configuration");
    let doc = json!({"issuer": ISSUER, "jwks_uri": "https://keys.example.com/v2/keys/P1"}).to_string();
    vm.respond(call.token, 200, &[], doc.as_bytes());
    let call = only_call(&vm);
    assert_eq!((call.cluster.as_str(), call.authority(), call.path()), ("idp", "keys.example.com", "/v2/keys/P1"));
    serve(&vm, &call, &[&key_a()]);
    assert_eq!(req.status(), 200);

    // A document naming another issuer is refused.
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let vm = vm_with(&proxy, &discovery(ISSUER));
    let req = send(&vm, &mint(&key_a(), claims(&proxy, "u")));
    let doc = json!({"issuer": "https://evil.example.com", "jwks_uri": "https://evil.example.com/keys"}).to_string();
    vm.respond(only_call(&vm).token, 200, &[], doc.as_bytes());
    vm.tick();
    assert!(vm.pending_calls().is_empty(), "no JWKS fetched from an unverified document");
    assert_eq!(req.status(), 503, "the fetch failed: answered at once");
    assert!(vm.logged("names issuer"));

    // With discovery a request may wait for two calls' timeouts (the document, then the JWKS).
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let vm = vm_with(&proxy, &discovery(ISSUER));
    let req = send(&vm, &mint(&key_a(), claims(&proxy, "u")));
    assert_eq!(only_call(&vm).path(), "/.well-known/openid-configuration");
    vm.advance_ticking(Duration::from_millis(3900));
    assert_eq!(req.outcome(), Outcome::Paused);
    vm.advance_ticking(Duration::from_millis(300));
    assert_eq!(req.status(), 503);
}

/// The discovery document is read again on every scheduled refresh (an IdP may move its
/// keys and keep the old URI answering with the old ones) and after a failed fetch; an
/// unknown-`kid` refetch, which a request waits on, goes straight to the JWKS it named.
#[test]
fn discovery_is_read_again_on_refresh_and_after_a_failure() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let vm = vm_with(&proxy, &discovery(ISSUER));
    let req = send(&vm, &mint(&key_a(), claims(&proxy, "u")));
    let doc =
        |n: u8| json!({"issuer": ISSUER, "jwks_uri": format!("https://keys.example.com/v2/keys/P{n}")}).to_string();
    vm.respond(only_call(&vm).token, 200, &[], doc(1).as_bytes());
    serve(&vm, &only_call(&vm), &[&key_a()]);
    assert_eq!(req.status(), 200);

    let waiting = send(&vm, &mint(&key_b(), claims(&proxy, "u")));
    let refetch = only_call(&vm);
    assert_eq!(refetch.path(), "/v2/keys/P1", "an unknown kid's refetch: one call");
    serve(&vm, &refetch, &[&key_a()]);
    assert_eq!(code(&waiting), "jwt_key_not_found");

    // The scheduled refresh (90 % of 600 s) finds the keys moved to P2.
    proxy.advance(Duration::from_secs(541));
    vm.tick();
    let refresh = only_call(&vm);
    assert_eq!(refresh.path(), "/.well-known/openid-configuration");
    vm.respond(refresh.token, 200, &[], doc(2).as_bytes());
    let moved = only_call(&vm);
    assert_eq!(moved.path(), "/v2/keys/P2");
    serve(&vm, &moved, &[&key_b()]);
    assert_eq!(send(&vm, &mint(&key_b(), claims(&proxy, "u"))).status(), 200);

    // The document cannot be read at the next refresh: the keys are refreshed from the URI
    // it named last (the failed call counted), also after a failed fetch.
    for jwks_fails_once in [true, false] {
        proxy.advance(Duration::from_secs(541));
        vm.tick();
        vm.respond(only_call(&vm).token, 503, &[], b"down");
        let fallback = only_call(&vm);
        assert_eq!(fallback.path(), "/v2/keys/P2");
        if jwks_fails_once {
            // The retry reads the document first; still down, it falls back again.
            vm.respond(fallback.token, 500, &[], b"");
            vm.advance_ticking(Duration::from_secs(2));
            vm.respond(only_call(&vm).token, 503, &[], b"still down");
            serve(&vm, &only_call(&vm), &[&key_b()]);
        } else {
            serve(&vm, &fallback, &[&key_b()]);
        }
        assert!(vm.logged("fetching the jwks_uri it named before"));
    }
    vm.tick();
    assert_eq!(proxy.metric("jwt_authn_wasm.jwks_fetch.failed"), Some(4));

    // A failed JWKS fetch: the retry starts from the document again.
    proxy.advance(Duration::from_secs(541));
    vm.tick();
    vm.respond(only_call(&vm).token, 200, &[], doc(2).as_bytes());
    vm.respond(only_call(&vm).token, 404, &[], b"moved");
    let mut waited = 0;
    while vm.pending_calls().is_empty() && waited < 120 {
        proxy.advance(Duration::from_secs(1));
        vm.tick();
        waited += 1;
    }
    assert_eq!(only_call(&vm).path(), "/.well-known/openid-configuration", "after {waited} s");
}

/// Two providers discovering through one document URL but expecting different issuers keep
/// separate records: a document accepted for one must not serve the other.
#[test]
fn discovery_records_are_kept_apart_by_issuer() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let mut a = discovery(ISSUER)["providers"]["demo"].clone();
    a["from_headers"] = json!([{"name": "x-a-token"}]);
    let mut b = a.clone();
    b["issuer"] = json!("https://other.example.com");
    b["from_headers"] = json!([{"name": "x-b-token"}]);
    let config = json!({"providers": {"a": a, "b": b}, "rules": [
        {"match": {"prefix": "/a"}, "requires": {"provider_name": "a"}},
        {"match": {"prefix": "/b"}, "requires": {"provider_name": "b"}}
    ]});
    let vm = vm_with(&proxy, &config);
    let mut other = claims(&proxy, "u");
    other["iss"] = json!("https://other.example.com");
    let ra = vm.request(&headers(&[get("/a"), vec![("x-a-token", mint(&key_a(), claims(&proxy, "u")))]].concat()));
    let rb = vm.request(&headers(&[get("/b"), vec![("x-b-token", mint(&key_a(), other))]].concat()));
    assert_eq!((ra.outcome(), rb.outcome()), (Outcome::Paused, Outcome::Paused));
    vm.tick();
    let calls = vm.pending_calls();
    assert_eq!(calls.len(), 2, "one discovery per issuer: {calls:?}");
    assert!(calls.iter().all(|c| c.path() == "/.well-known/openid-configuration"));
}

#[test]
fn a_slow_discovery_and_jwks_fetch_is_still_one_fetch_across_workers() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["idp"]);
    let (one, two) = (vm_with(&proxy, &discovery(ISSUER)), vm_with(&proxy, &discovery(ISSUER)));
    let token = mint(&key_a(), claims(&proxy, "u"));
    let first = send(&one, &token);
    let call = only_call(&one);
    proxy.advance(Duration::from_millis(1500));
    let doc = json!({"issuer": ISSUER, "jwks_uri": "https://keys.example.com/v2/keys/P1"}).to_string();
    one.respond(call.token, 200, &[], doc.as_bytes());
    let jwks_call = only_call(&one);
    // Past the first call's claim (2 s timeout + 1 s), within the second's.
    proxy.advance(Duration::from_millis(2000));
    let second = send(&two, &token);
    two.tick();
    assert!(two.pending_calls().is_empty(), "the first worker's JWKS call is still under way");
    serve(&one, &jwks_call, &[&key_a()]);
    assert_eq!(first.status(), 200);
    two.tick();
    assert_eq!(second.status(), 200, "picked up from shared data");
    assert_eq!(proxy.metric("jwt_authn_wasm.jwks_fetch.ok"), Some(1));
}

#[test]
fn a_request_that_goes_away_while_waiting_is_forgotten() {
    let (proxy, vm) = setup();
    let req = send(&vm, &mint(&key_a(), claims(&proxy, "u")));
    assert!(req.finish());
    serve(&vm, &only_call(&vm), &[&key_a()]);
    assert_eq!(send(&vm, &mint(&key_a(), claims(&proxy, "u"))).status(), 200);
}
