//! Authorization and the Descope preset through the real filter on the native host: each
//! requirement type passing and failing, tenant sources, methods, the preset's expansion,
//! default identity headers and override, and the stats a scripted sequence leaves.

mod common;
mod harness;

use common::*;
use demo_idp::{jwks, mint, DescopeClaims, SigningKey};
use harness::{MockProxy, Vm};
use serde_json::{json, Value};

const PROJECT: &str = "P2demo";

fn descope_token(proxy: &MockProxy, key: &SigningKey, build: impl FnOnce(DescopeClaims) -> DescopeClaims) -> String {
    let claims = build(DescopeClaims::new(PROJECT, "U2alice").now(now_secs(proxy)).ttl(600)).build();
    mint(key, claims)
}

/// The Descope preset, keys inline (explicit `local_jwks` wins over the preset's remote JWKS).
fn descope_vm(proxy: &MockProxy, key: &SigningKey, rules: Value) -> Vm {
    let config = json!({
        "providers": {"descope": {"descope": {"project_id": PROJECT}, "local_jwks": {"inline_string": jwks(&[key])}}},
        "rules": rules
    });
    vm_with(proxy, &config)
}

fn call(
    vm: &Vm,
    method: &str,
    path: &str,
    token: &str,
    extra: &[(&'static str, &str)],
) -> (u32, Option<Value>, Option<String>) {
    let mut h = get(path);
    h[0].1 = method.into();
    h.push(bearer(token));
    h.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let req = vm.request(&headers(&h));
    let reply = req.local_reply();
    let body = reply.as_ref().and_then(|r| serde_json::from_str(&r.body_text()).ok());
    let www = reply.and_then(|r| r.header("www-authenticate").map(str::to_owned));
    (req.status(), body, www)
}

fn code(r: &(u32, Option<Value>, Option<String>)) -> String {
    r.1.as_ref().and_then(|b| b["code"].as_str()).unwrap_or_default().to_owned()
}

#[test]
fn preset_identity_headers_for_the_current_tenant() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = descope_vm(&proxy, &key, json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "descope"}}]));
    let token = descope_token(&proxy, &key, |c| {
        c.tenant("T1", &["admin"], &["orders.read"]).tenant("T2", &["viewer"], &[]).dct("T1").roles(&["support"])
    });
    let mut h = get("/api");
    h.push(("cookie", format!("DS={token}")));
    let req = vm.request(&headers(&h));
    assert_eq!(req.status(), 200);
    assert_eq!(req.header("x-descope-user-id").as_deref(), Some("U2alice"));
    assert_eq!(req.header("x-descope-tenants").as_deref(), Some("T1,T2"));
    assert_eq!(req.header("x-descope-current-tenant").as_deref(), Some("T1"));
    assert_eq!(req.header("x-descope-tenant-roles").as_deref(), Some("admin"));
    assert_eq!(req.header("x-descope-tenant-permissions").as_deref(), Some("orders.read"));
    // Project-level roles are their own headers, as the SDKs' validateRoles reads them; a
    // tenant admin is not a project admin.
    assert_eq!(req.header("x-descope-roles").as_deref(), Some("support"));
    assert_eq!(req.header("x-descope-permissions"), None, "no project-level permissions");
    // Any issuer form Descope's SDKs accept; anything else is refused.
    for iss in [PROJECT.to_string(), format!("https://api.descope.com/v1/apps/{PROJECT}")] {
        let t = descope_token(&proxy, &key, |c| c.claim("iss", json!(iss)));
        assert_eq!(call(&vm, "GET", "/api", &t, &[]).0, 200, "{iss}");
    }
    let t = descope_token(&proxy, &key, |c| c.claim("iss", json!("https://api.descope.com/P2other")));
    assert_eq!(code(&call(&vm, "GET", "/api", &t, &[])), "jwt_issuer_not_allowed");
}

#[test]
fn preset_fetches_descope_jwks_through_its_cluster() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["descope"]);
    let config = json!({"providers": {"descope": {"descope": {"project_id": PROJECT}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "descope"}}]});
    let vm = vm_with(&proxy, &config);
    let key = rs256();
    let mut h = get("/api");
    h.push(bearer(&descope_token(&proxy, &key, |c| c)));
    let req = vm.request(&headers(&h));
    vm.tick();
    let calls = vm.pending_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        (calls[0].cluster.as_str(), calls[0].authority(), calls[0].path()),
        ("descope", "api.descope.com", "/v2/keys/P2demo")
    );
    vm.respond(calls[0].token, 200, &[], jwks(&[&key]).as_bytes());
    assert_eq!(req.status(), 200);
}

#[test]
fn each_requirement_type_passes_and_fails_with_insufficient_scope() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = descope_vm(
        &proxy,
        &key,
        json!([
            {"match": {"prefix": "/roles"}, "requires": {"provider_name": "descope", "roles": ["admin", "billing"]}},
            {"match": {"prefix": "/perms"}, "requires": {"provider_name": "descope", "permissions": ["orders.write"]}},
            {"match": {"prefix": "/anyroles"}, "requires": {"provider_name": "descope", "any_roles": ["admin", "owner"]}},
            {"match": {"prefix": "/anyperms"}, "requires": {"provider_name": "descope", "any_permissions": ["x", "orders.write"]}},
            {"match": {"prefix": "/header"}, "requires": {"provider_name": "descope", "roles": ["admin"], "tenant": {"header": "x-tenant-id"}}},
            {"match": {"prefix": "/t/"}, "requires": {"provider_name": "descope", "permissions": ["orders.read"], "tenant": {"path_segment": 1}}},
            {"match": {"prefix": "/current"}, "requires": {"provider_name": "descope", "roles": ["admin"], "tenant": {"claim": "dct"}}},
            {"match": {"prefix": "/fixed"}, "requires": {"provider_name": "descope", "roles": ["viewer"], "tenant": {"value": "T2"}}},
            {"match": {"prefix": "/claims"}, "requires": {"provider_name": "descope", "claims": [
                {"name": "email", "prefix": "alice@"}, {"name": "amr", "contains": "otp"}, {"name": "dct", "present": true}]}}
        ]),
    );
    let full = descope_token(&proxy, &key, |c| {
        c.roles(&["admin", "billing"])
            .permissions(&["orders.write"])
            .tenant("T1", &["admin"], &["orders.read"])
            .tenant("T2", &["viewer"], &[])
            .dct("T1")
            .claim("email", json!("alice@example.com"))
            .claim("amr", json!(["pwd", "otp"]))
    });
    let thin = descope_token(&proxy, &key, |c| c.roles(&["admin"]).tenant("T2", &["viewer"], &[]).dct("T2"));
    // (path, extra headers, the code the thin token gets; empty: it passes too)
    type Case<'a> = (&'a str, &'a [(&'static str, &'a str)], &'a str);
    let cases: Vec<Case> = vec![
        ("/roles", &[], "forbidden_roles"),
        ("/perms", &[], "forbidden_permissions"),
        ("/anyroles", &[], ""),
        ("/anyperms", &[], "forbidden_permissions"),
        ("/header", &[("x-tenant-id", "T1")], "forbidden_tenant"),
        ("/t/T1/orders", &[], "forbidden_tenant"),
        ("/current", &[], "forbidden_roles"),
        ("/fixed", &[], ""),
        ("/claims", &[], "forbidden_claim"),
    ];
    for (path, extra, thin_code) in cases {
        assert_eq!(call(&vm, "GET", path, &full, extra).0, 200, "{path} with every grant");
        let r = call(&vm, "GET", path, &thin, extra);
        if thin_code.is_empty() {
            assert_eq!(r.0, 200, "{path}");
            continue;
        }
        assert_eq!((r.0, code(&r).as_str()), (403, thin_code), "{path}");
        let www = r.2.unwrap_or_default();
        assert!(www.ends_with(r#"error="insufficient_scope""#), "{path}: {www}");
    }
    // A tenant header naming a tenant the token lacks; no header at all.
    assert_eq!(code(&call(&vm, "GET", "/header", &full, &[("x-tenant-id", "T9")])), "forbidden_tenant");
    assert_eq!(code(&call(&vm, "GET", "/header", &full, &[])), "forbidden_tenant");
    // Repeated: Envoy shows the filter the first value only; the upstream gets exactly the
    // tenant that was authorized, not a second value nobody checked.
    let repeated = |token: &str, tenants: [&str; 2]| {
        let mut h = get("/header");
        h.push(bearer(token));
        h.extend(tenants.map(|t| ("x-tenant-id", t.to_string())));
        let req = vm.request(&headers(&h));
        (req.status(), req.header_values("x-tenant-id"))
    };
    assert_eq!(repeated(&full, ["T1", "T2"]), (200, vec!["T1".to_string()]));
    assert_eq!(repeated(&thin, ["T2", "T1"]).0, 403, "T2 is checked, where the thin token is no admin");
    assert_eq!(repeated(&thin, ["T1", "T2"]).0, 403, "the thin token has no T1");
    // Authentication failures stay 401 on authorized routes.
    let r = call(&vm, "GET", "/roles", "garbage", &[]);
    assert_eq!((r.0, code(&r).as_str()), (401, "jwt_malformed"));
}

#[test]
fn methods_select_the_rule() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = descope_vm(
        &proxy,
        &key,
        json!([
            {"match": {"prefix": "/orders", "methods": ["POST", "DELETE"]}, "requires": {"provider_name": "descope", "roles": ["editor"]}},
            {"match": {"prefix": "/orders", "methods": ["GET"]}, "requires": {"provider_name": "descope"}},
            {"match": {"path": "/healthz"}}
        ]),
    );
    let viewer = descope_token(&proxy, &key, |c| c.roles(&["viewer"]));
    assert_eq!(call(&vm, "GET", "/orders", &viewer, &[]).0, 200);
    assert_eq!(code(&call(&vm, "POST", "/orders", &viewer, &[])), "forbidden_roles");
    assert_eq!(
        call(&vm, "PUT", "/orders", &viewer, &[]).0,
        200,
        "no rule for PUT: unauthenticated pass-through, as jwt_authn"
    );
    assert_eq!(vm.request(&headers(&get("/healthz"))).status(), 200);
}

#[test]
fn stats_after_a_scripted_sequence() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = descope_vm(
        &proxy,
        &key,
        json!([{"match": {"prefix": "/admin"}, "requires": {"provider_name": "descope", "roles": ["admin"]}},
               {"match": {"prefix": "/"}, "requires": {"provider_name": "descope"}}]),
    );
    let user = descope_token(&proxy, &key, |c| c.roles(&["viewer"]));
    for _ in 0..3 {
        call(&vm, "GET", "/api", &user, &[]);
    }
    call(&vm, "GET", "/admin", &user, &[]);
    vm.request(&headers(&get("/api")));
    call(&vm, "GET", "/api", "x.y.z", &[]);
    vm.tick(); // request counters are flushed on the tick
    let m = |n: &str| proxy.metric(&format!("jwt_authn_wasm.{n}")).unwrap_or(0);
    assert_eq!(m("allowed"), 3);
    assert_eq!(m("denied.forbidden_roles"), 1);
    assert_eq!(m("denied.jwt_missing"), 1);
    assert_eq!(m("denied.jwt_malformed"), 1);
    // Misses: the first /api and the malformed token; hits: two /api and the /admin request.
    assert_eq!((m("token_cache.miss"), m("token_cache.hit")), (2, 3));
    assert_eq!(m("jwks.descope.keys"), 1);
    assert_eq!(m("crypto.host"), 0, "the mock host offers no verify_signature");
    assert!(vm.logged("denied: forbidden_roles (unverified sub \"U2alice\", kid "), "{:?}", vm.logs());
    assert!(!vm.logs().iter().any(|l| l.message.contains(&user)), "a token was logged");
}

/// What Descope's SDKs check beyond jwt_authn, and what Descope issues by default: a token
/// with the bare project id as `iss` and no `aud` passes; a refresh token (`drn: DSR`) is
/// not a session token wherever it is sent; an `aud` must name the project; 5 s of clock
/// skew; no `iat` ahead of the clock; a DPoP-bound token (`cnf`) is refused, its proof
/// being something this filter does not check.
#[test]
fn preset_takes_session_tokens_only_as_the_sdks_do() {
    let proxy = MockProxy::new();
    let key = rs256();
    let vm = descope_vm(&proxy, &key, json!([{"match": {"prefix": "/"}, "requires": {"provider_name": "descope"}}]));
    let now = now_secs(&proxy);
    let default_shape = descope_token(&proxy, &key, |c| c.claim("iss", json!(PROJECT)).without("aud"));
    assert_eq!(call(&vm, "GET", "/api", &default_shape, &[]).0, 200);

    let refresh = descope_token(&proxy, &key, |c| c.claim("drn", json!("DSR")).ttl(28 * 24 * 3600));
    let r = call(&vm, "GET", "/api", &refresh, &[]);
    assert_eq!((r.0, code(&r).as_str()), (401, "jwt_token_type_not_allowed"));
    assert!(r.2.as_deref().is_some_and(|w| w.contains(r#"error="invalid_token""#)), "{:?}", r.2);
    let mut h = get("/api");
    h.push(("cookie", format!("DS={refresh}")));
    let req = vm.request(&headers(&h));
    assert_eq!(req.status(), 401, "a refresh token in the DS cookie");

    for (case, token, status, want) in [
        (
            "aud of another audience",
            descope_token(&proxy, &key, |c| c.claim("aud", json!("some-client"))),
            403,
            "jwt_audience_not_allowed",
        ),
        ("expired 30 s ago", descope_token(&proxy, &key, |c| c.claim("exp", json!(now - 30))), 401, "jwt_expired"),
        (
            "iat an hour ahead",
            descope_token(&proxy, &key, |c| c.claim("iat", json!(now + 3600))),
            401,
            "jwt_not_yet_valid",
        ),
        (
            "DPoP-bound",
            descope_token(&proxy, &key, |c| {
                c.claim("cnf", json!({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}))
            }),
            401,
            "jwt_sender_constrained",
        ),
    ] {
        let r = call(&vm, "GET", "/api", &token, &[]);
        assert_eq!((r.0, code(&r).as_str()), (status, want), "{case}");
    }
    let t = descope_token(&proxy, &key, |c| c.claim("exp", json!(now - 4)));
    assert_eq!(call(&vm, "GET", "/api", &t, &[]).0, 200, "within the 5 s skew");
}

/// A regional project id (32+ characters) names its region, and the SDKs fetch its keys from
/// that region's API host; so does the preset, and its issuers follow.
#[test]
fn preset_uses_the_projects_region() {
    let proxy = MockProxy::new();
    proxy.set_clusters(&["descope"]);
    let pid = "Peuc12vbXo1wQSQdsA8OgRW2dJUzGTwm";
    let config = json!({"providers": {"descope": {"descope": {"project_id": pid}}},
        "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "descope"}}]});
    let vm = vm_with(&proxy, &config);
    let key = rs256();
    let claims = DescopeClaims::new(pid, "U2alice").now(now_secs(&proxy)).ttl(600);
    let token = mint(&key, claims.claim("iss", json!(format!("https://api.euc1.descope.com/{pid}"))).build());
    let mut h = get("/api");
    h.push(bearer(&token));
    let req = vm.request(&headers(&h));
    vm.tick();
    let calls = vm.pending_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].authority(), calls[0].path()), ("api.euc1.descope.com", format!("/v2/keys/{pid}").as_str()));
    vm.respond(calls[0].token, 200, &[], jwks(&[&key]).as_bytes());
    assert_eq!(req.status(), 200);
}
