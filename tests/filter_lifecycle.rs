//! The real filter driven through the proxy-wasm SDK entry points on the native mock host:
//! configuration, decisions, local replies and header mutations (issue: the filter core).

mod common;
mod harness;

use common::*;
use demo_idp::{mint, mint_with_header, tamper_signature, Alg, SigningKey};
use harness::{LogLevel, MockProxy, Outcome, Status};
use serde_json::{json, Value};

#[test]
fn valid_token_continues_with_identity_and_without_the_token() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = vm_with(&proxy, &config_with(local_provider(&[&key])));
    let token = mint(&key, claims(&proxy, "user-1"));
    let mut h = get("/api/orders");
    h.push(bearer(&token));
    let req = vm.request(&headers(&h));
    assert_eq!(req.status(), 200, "{:?}", req.local_reply());
    assert_eq!(req.header("x-jwt-sub").as_deref(), Some("user-1"));
    // forward: false (the default) removes the token, as jwt_authn does.
    assert_eq!(req.header("authorization"), None);
    // Request counters reach Envoy on the VM's tick, not as a host call per request.
    assert_eq!(proxy.metric("jwt_authn_wasm.allowed"), Some(0));
    vm.tick();
    assert_eq!(proxy.metric("jwt_authn_wasm.allowed"), Some(1));
    assert!(req.finish());
}

#[test]
fn missing_token_gets_a_bearer_challenge_without_error() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, &config_with(local_provider(&[&rs256()])));
    let req = vm.request(&headers(&get("/api/orders?x=1")));
    assert_eq!(req.status(), 401);
    let reply = req.local_reply().expect("local reply");
    assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="https://api.example.com/api/orders""#));
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_str(&reply.body_text()).expect("JSON body");
    assert_eq!(body["code"], "jwt_missing");
    vm.tick();
    assert_eq!(proxy.metric("jwt_authn_wasm.denied.jwt_missing"), Some(1));
}

#[test]
fn each_algorithm_valid_and_tampered() {
    let proxy = MockProxy::new();
    let keys: Vec<SigningKey> = Alg::ALL.iter().map(|a| SigningKey::fixed(*a)).collect();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let vm = vm_with(&proxy, &config_with(local_provider(&refs)));
    for key in &keys {
        let token = mint(key, claims(&proxy, "u"));
        let mut h = get("/api");
        h.push(bearer(&token));
        assert_eq!(vm.request(&headers(&h)).status(), 200, "{:?} valid", key.alg());
        let mut h = get("/api");
        h.push(bearer(&tamper_signature(&token)));
        let req = vm.request(&headers(&h));
        assert_eq!(req.status(), 401, "{:?} tampered", key.alg());
        let www = req.local_reply().unwrap().header("www-authenticate").unwrap().to_string();
        assert!(www.ends_with(r#"error="invalid_token""#), "{www}");
    }
}

#[test]
fn rejection_reasons_map_to_status_and_code() {
    let proxy = MockProxy::new();
    let key = rs256();
    let mut provider = local_provider(&[&key]);
    provider["require_expiration"] = json!(true);
    provider["max_lifetime"] = json!("3600s");
    provider["subjects"] = json!({"prefix": "u"});
    let vm = vm_with(&proxy, &config_with(provider));
    let now = now_secs(&proxy);
    let with = |c: Value| mint(&key, c);
    let base = claims(&proxy, "u");
    let set = |k: &str, v: Value| {
        let mut c = base.clone();
        c[k] = v;
        c
    };
    let mut without_exp = base.clone();
    without_exp.as_object_mut().map(|c| c.remove("exp"));
    let other = SigningKey::fixed(Alg::ES256);
    let cases: Vec<(String, u32, &str)> = vec![
        (with(set("exp", json!(now - 120))), 401, "jwt_expired"),
        (with(set("nbf", json!(now + 120))), 401, "jwt_not_yet_valid"),
        (with(set("iss", json!("https://evil.example.com"))), 401, "jwt_issuer_not_allowed"),
        (with(set("aud", json!("other-api"))), 403, "jwt_audience_not_allowed"),
        (with(set("exp", json!("soon"))), 401, "jwt_claim_invalid"),
        (with(without_exp), 401, "jwt_exp_required"),
        (with(set("exp", json!(now + 7200))), 401, "jwt_lifetime_too_long"),
        (with(set("sub", json!("admin"))), 401, "jwt_subject_not_allowed"),
        (mint(&other, base.clone()), 401, "jwt_key_not_found"),
        (
            mint_with_header(&key, json!({"alg": "RS256", "kid": key.kid(), "crit": ["exp"]}), base.clone()),
            401,
            "jwt_crit_unsupported",
        ),
        (format!("{}.{}.", "eyJhbGciOiJub25lIn0", "e30"), 401, "jwt_malformed"),
        (format!("eyJhbGciOiJub25lIn0.{}.c2ln", "e30"), 401, "jwt_alg_unsupported"),
        ("a".repeat(9000), 401, "jwt_too_large"),
    ];
    for (token, status, code) in cases {
        let mut h = get("/api");
        h.push(bearer(&token));
        let req = vm.request(&headers(&h));
        assert_eq!(req.status(), status, "{code}");
        let reply = req.local_reply().unwrap();
        let body: Value = serde_json::from_str(&reply.body_text()).unwrap();
        assert_eq!(body["code"], code);
        // Nothing of the token is echoed back.
        assert!(!reply.body_text().contains(&token) && !reply.header("www-authenticate").unwrap().contains(&token));
        vm.tick();
        assert_eq!(proxy.metric(&format!("jwt_authn_wasm.denied.{code}")), Some(1), "{code}");
    }
}

#[test]
fn identity_headers_are_stripped_on_every_route() {
    let proxy = MockProxy::new();
    let key = rs256();
    let mut provider = local_provider(&[&key]);
    provider["forward_payload_header"] = json!("x-jwt-payload");
    let config = json!({
        "providers": {"demo": provider},
        "rules": [
            {"match": {"path": "/healthz"}},
            {"match": {"prefix": "/opt"}, "requires": {"allow_missing": {}}},
            {"match": {"prefix": "/api"}, "requires": {"provider_name": "demo"}}
        ]
    });
    let vm = vm_with(&proxy, &config);
    let spoof = [("x-jwt-sub", "admin".to_string()), ("x-jwt-payload", "eyJzdWIiOiJhZG1pbiJ9".to_string())];
    // A public rule, a rule a request without a token passes, and a path no rule matches.
    for path in ["/healthz", "/opt/x", "/unmatched-is-still-stripped"] {
        let mut h = get(path);
        h.extend(spoof.iter().cloned());
        let req = vm.request(&headers(&h));
        assert_eq!(req.status(), 200, "{path}");
        assert_eq!(req.header("x-jwt-sub"), None, "{path}");
        assert_eq!(req.header("x-jwt-payload"), None, "{path}");
    }
    // With a valid token, the values are the token's, never the client's.
    let token = mint(&key, claims(&proxy, "user-7"));
    let mut h = get("/api");
    h.extend(spoof.iter().cloned());
    h.push(bearer(&token));
    let req = vm.request(&headers(&h));
    assert_eq!(req.status(), 200);
    assert_eq!(req.header_values("x-jwt-sub"), vec!["user-7".to_string()]);
    assert_eq!(req.header("x-jwt-payload").as_deref(), token.split('.').nth(1));
}

#[test]
fn forward_false_removes_cookie_and_param_tokens() {
    let proxy = MockProxy::new();
    let key = rs256();
    let mut provider = local_provider(&[&key]);
    provider["from_cookies"] = json!(["DS"]);
    provider["from_params"] = json!(["token"]);
    let vm = vm_with(&proxy, &config_with(provider));
    let token = mint(&key, claims(&proxy, "u"));
    let mut h = get("/api");
    h.push(("cookie", format!("theme=dark; DS={token}; lang=en")));
    let req = vm.request(&headers(&h));
    assert_eq!(req.status(), 200);
    assert_eq!(req.header("cookie").as_deref(), Some("theme=dark; lang=en"));
    let req = vm.request(&headers(&get(&format!("/api?a=1&token={token}&b=2"))));
    assert_eq!(req.status(), 200);
    assert_eq!(req.header(":path").as_deref(), Some("/api?a=1&b=2"));
}

#[test]
fn claim_values_with_control_characters_are_not_forwarded() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = vm_with(&proxy, &config_with(local_provider(&[&key])));
    let token = mint(&key, claims(&proxy, "evil\r\nx-admin: true"));
    let mut h = get("/api");
    h.push(bearer(&token));
    let req = vm.request(&headers(&h));
    assert_eq!(req.status(), 200);
    assert_eq!(req.header("x-jwt-sub"), None);
    assert_eq!(req.header("x-admin"), None);
    assert_eq!(proxy.metric("jwt_authn_wasm.identity_header_skipped"), Some(1));
}

#[test]
fn invalid_configuration_refuses_to_start_with_one_clear_line() {
    let proxy = MockProxy::new();
    let cases = [
        (json!({"providers": {"p": {"isuer": "x"}}}).to_string(), "unknown field `isuer`"),
        (
            json!({"providers": {"p": {"local_jwks": {"filename": "/etc/jwks"}}}}).to_string(),
            "providers.p.local_jwks.filename",
        ),
        (json!({"providers": {"p": {"local_jwks": {"inline_string": "{}"}}}}).to_string(), "unusable JWKS"),
        ("not json".to_string(), "must be a JSON object in a google.protobuf.StringValue"),
        (String::new(), "configuration is empty"),
    ];
    for (config, needle) in cases {
        let vm = proxy.vm();
        vm.start(|| jwt_authn_wasm::_initialize());
        assert!(!vm.configure(&config), "{config} must be refused");
        let errors: Vec<_> = vm.logs().into_iter().filter(|l| l.level == LogLevel::Error).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains(needle), "{:?} should mention {needle}", errors[0].message);
        // Envoy refuses such a plugin; were a request to reach it anyway, it fails closed.
        let req = vm.request(&headers(&get("/api")));
        assert_eq!(req.status(), 503);
    }
}

/// A configuration whose rules require nothing loads (jwt_authn's meaning), but says at
/// `warn` — what Istio logs by default — that it protects nothing.
#[test]
fn a_configuration_that_protects_nothing_says_so() {
    let proxy = MockProxy::new();
    let key = rs256();
    let warns = |rules: serde_json::Value| {
        let vm = proxy.vm();
        vm.start(|| jwt_authn_wasm::_initialize());
        let config = json!({"providers": {"descope": local_provider(&[&key])}, "rules": rules});
        assert!(vm.configure(&config.to_string()));
        vm.logs().into_iter().filter(|l| l.level == LogLevel::Warn).map(|l| l.message).collect::<Vec<_>>()
    };
    for rules in [json!([]), json!([{"match": {"prefix": "/"}}])] {
        let lines = warns(rules);
        assert!(
            lines
                .iter()
                .any(|l| l.contains("every request passes unauthenticated")
                    && l.contains(r#""provider_name": "descope""#)),
            "{lines:?}"
        );
    }
    assert!(warns(json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "descope"}}])).is_empty());
}

#[test]
fn a_cookie_token_is_taken_out_leaving_other_cookies_byte_for_byte() {
    let proxy = MockProxy::new();
    let key = rs256();
    let mut provider = local_provider(&[&key]);
    provider["from_cookies"] = json!(["DS"]);
    let vm = vm_with(&proxy, &config_with(provider));
    let token = mint(&key, claims(&proxy, "u"));
    let cookie = [&b"n=Jos\xe9; DS="[..], token.as_bytes(), b";  theme=dark"].concat();
    let req = vm.request_bytes(&[(":method", b"GET"), (":path", b"/api"), (":authority", b"api"), ("cookie", &cookie)]);
    assert_eq!(req.status(), 200);
    assert_eq!(req.header_bytes("cookie").as_deref(), Some(&b"n=Jos\xe9; theme=dark"[..]));
}

#[test]
fn many_unusable_jwks_entries_are_logged_with_a_bound() {
    let proxy = MockProxy::new();
    let key = rs256();
    let mut keys: Vec<Value> =
        (0..15).map(|i| json!({"kty": "oct", "kid": format!("h{i}"), "k": "c2VjcmV0"})).collect();
    keys.extend(
        serde_json::from_str::<Value>(&demo_idp::jwks(&[&key])).unwrap()["keys"].as_array().unwrap().iter().cloned(),
    );
    let mut provider = local_provider(&[&key]);
    provider["local_jwks"] = json!({"inline_string": json!({"keys": keys}).to_string()});
    let vm = vm_with(&proxy, &config_with(provider));
    let warnings: Vec<String> =
        vm.logs().into_iter().filter(|l| l.level == LogLevel::Warn).map(|l| l.message).collect();
    assert_eq!(warnings.iter().filter(|m| m.contains("skipped: ")).count(), 10, "{warnings:#?}");
    assert!(warnings.iter().any(|m| m.ends_with("provider demo: 5 more JWKS keys skipped")), "{warnings:#?}");
    let mut h = get("/api");
    h.push(bearer(&mint(&key, claims(&proxy, "u"))));
    assert_eq!(vm.request(&headers(&h)).status(), 200, "the usable key is in use");
}

#[test]
fn non_utf8_header_bytes_do_not_panic() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, &config_with(local_provider(&[&rs256()])));
    let req = vm.request_bytes(&[
        (":method", b"GET"),
        (":path", b"/api/\xff\xfe"),
        (":authority", b"api.example.com"),
        ("authorization", b"Bearer \xff\xfe.\x80.\x00"),
        ("cookie", b"DS=\xc3\x28"),
    ]);
    assert_eq!(req.status(), 401);
    let body: Value = serde_json::from_str(&req.local_reply().unwrap().body_text()).unwrap();
    assert_eq!(body["code"], "jwt_malformed");
}

#[test]
fn public_route_and_cors_preflight() {
    let proxy = MockProxy::new();
    let mut config = config_with(local_provider(&[&rs256()]));
    config["bypass_cors_preflight"] = json!(true);
    let vm = vm_with(&proxy, &config);
    assert_eq!(vm.request(&headers(&get("/healthz"))).status(), 200);
    let mut h = get("/api");
    h[0].1 = "OPTIONS".into();
    h.push(("origin", "https://app.example.com".into()));
    h.push(("access-control-request-method", "POST".into()));
    assert_eq!(vm.request(&headers(&h)).status(), 200);
}

/// A host that refuses a header read or write the decision needs (Envoy does not for a live
/// request; the SDK would panic and take the VM down): the request is answered 500
/// `filter_error`, never passed on half-checked or with the client's identity header, and
/// the VM goes on deciding. A refused local reply is logged and the stream reset.
#[test]
fn refused_host_calls_fail_closed_without_a_panic() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = vm_with(&proxy, &config_with(local_provider(&[&key])));
    let mut h = get("/api/orders");
    h.push(bearer(&mint(&key, claims(&proxy, "user-1"))));
    h.push(("x-jwt-sub", "spoofed".to_owned()));
    // Reads (the token, the path), the token's removal, the identity header's replacement.
    let calls = ["proxy_get_header_map_value", "proxy_remove_header_map_value", "proxy_replace_header_map_value"];
    for call in calls {
        vm.refuse(call, Some(Status::InternalFailure));
        let req = vm.request(&headers(&h));
        let reply = req.local_reply().unwrap_or_else(|| panic!("{call}: no local reply"));
        assert_eq!(reply.status, 500, "{call}");
        assert_eq!(reply.header("www-authenticate"), None, "{call}");
        let body: Value = serde_json::from_str(&reply.body_text()).expect("JSON body");
        assert_eq!(body["code"], "filter_error", "{call}");
        assert!(vm.logged(&format!("the host refused {call} (status 10)")), "{call}: {:?}", vm.logs());
        vm.refuse(call, None);
        let req = vm.request(&headers(&h));
        assert_eq!(req.status(), 200, "{call}: the VM after the refusal");
        assert_eq!(req.header("x-jwt-sub").as_deref(), Some("user-1"));
    }
    vm.tick();
    assert_eq!(proxy.metric("jwt_authn_wasm.denied.filter_error"), Some(calls.len() as u64));
    assert_eq!(proxy.metric("jwt_authn_wasm.allowed"), Some(calls.len() as u64));

    // One withheld header, on a route that lets a missing token through: without the token
    // header the request would pass anonymously with the token still in it.
    let mut config = config_with(local_provider(&[&key]));
    config["rules"] = json!([{"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}]);
    let open = vm_with(&proxy, &config);
    open.refuse_read("authorization", Some(Status::BadArgument));
    let mut forged = get("/api/orders");
    forged.push(bearer(&tamper_signature(&mint(&key, claims(&proxy, "user-1")))));
    let req = open.request(&headers(&forged));
    assert_eq!(req.status(), 500, "{:?}", req.local_reply());
    open.refuse_read("authorization", None);
    assert_eq!(open.request(&headers(&forged)).status(), 401);

    // A CORS preflight is let through without a decision on tokens, but what sits where
    // tokens are read is taken out first: with that header withheld, it cannot be.
    let mut config = config_with(local_provider(&[&key]));
    config["bypass_cors_preflight"] = json!(true);
    let cors = vm_with(&proxy, &config);
    cors.refuse_read("authorization", Some(Status::BadArgument));
    let mut preflight: Vec<(&str, String)> = get("/api/orders").into_iter().filter(|(k, _)| *k != ":method").collect();
    preflight.extend([
        (":method", "OPTIONS".to_owned()),
        ("origin", "https://app.example.com".to_owned()),
        ("access-control-request-method", "GET".to_owned()),
        bearer("forged"),
    ]);
    let req = cors.request(&headers(&preflight));
    assert_eq!(req.status(), 500, "{:?}", req.local_reply());
    cors.refuse_read("authorization", None);
    let req = cors.request(&headers(&preflight));
    assert_eq!((req.status(), req.header("authorization")), (200, None));

    vm.refuse("proxy_send_local_response", Some(Status::InternalFailure));
    let req = vm.request(&headers(&get("/api/orders")));
    assert!(matches!(req.outcome(), Outcome::Reset), "reset, not left paused: {:?}", req.local_reply());
    assert!(vm.logged("could not send the local reply: the host refused proxy_send_local_response"));
    vm.refuse("proxy_send_local_response", None);
    assert_eq!(vm.request(&headers(&get("/api/orders"))).status(), 401);
}
