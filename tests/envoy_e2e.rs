//! End-to-end tests through a real Envoy 1.40 (installed by scripts/install-envoy.sh).
//!
//! `native_jwt_authn_*` run Envoy's own jwt_authn filter on the same topology: they prove the
//! infrastructure (Envoy, templates, demo IdP, echo upstream, client) independently of the
//! plugin. `wasm_filter_*` run the plugin built at target/wasm32-wasip1/release.

mod support;

use demo_idp::{jwks, mint, now_secs, tamper_signature, Alg, EchoServer, IdpServer, SigningKey};
use serde_json::{json, Value};
use support::{bearer, EnvoyProcess, JWT_AUTHN_TEMPLATE, WASM_TEMPLATE};

const ISSUER: &str = "https://idp.example.com";
const AUDIENCE: &str = "demo-api";

/// The demo provider with the fixed keys' JWKS inline (jwt_authn schema, valid for both).
fn local_jwks_config(jwks_json: &str) -> Value {
    json!({
        "providers": {
            "demo": {
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "local_jwks": { "inline_string": jwks_json },
                "claim_to_headers": [{ "header_name": "x-jwt-sub", "claim_name": "sub" }]
            }
        },
        "rules": [{ "match": { "prefix": "/" }, "requires": { "provider_name": "demo" } }]
    })
}

struct Rig {
    // Envoy first: dropped (killed) before the upstream goes away.
    envoy: EnvoyProcess,
    echo: EchoServer,
    key: SigningKey,
}

fn start_local_jwks(template: &str) -> Rig {
    let key = SigningKey::fixed(Alg::RS256);
    let es = SigningKey::fixed(Alg::ES256);
    let config = local_jwks_config(&jwks(&[&key, &es])).to_string();
    let echo = EchoServer::start("127.0.0.1:0");
    let envoy = EnvoyProcess::start_with(template, echo.address(), None, &config, 1);
    Rig { envoy, echo, key }
}

fn token(key: &SigningKey, sub: &str) -> String {
    let now = now_secs();
    mint(key, json!({ "iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300 }))
}

/// Valid → 200 with the identity header at the upstream; missing → 401 with a Bearer
/// challenge; tampered signature → 401. The upstream sees only the valid request.
fn three_checks(rig: &Rig) {
    let good = token(&rig.key, "alice");

    let r = rig.envoy.get("/hello?x=1", &[("authorization", &bearer(&good))]);
    assert_eq!(r.status, 200, "valid token: expected 200, got {} {}", r.status, r.text());
    let seen = r.json().unwrap_or_else(|e| panic!("valid token: upstream echo expected: {e}"));
    assert_eq!(seen["path"], "/hello?x=1", "{seen}");
    assert_eq!(seen["headers"]["x-jwt-sub"], "alice", "claim_to_headers header missing at the upstream: {seen}");
    assert_eq!(rig.echo.request_count(), 1);

    let r = rig.envoy.get("/hello", &[]);
    assert_eq!(r.status, 401, "missing token: expected 401, got {} {}", r.status, r.text());
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer realm="), "missing token: www-authenticate is {challenge:?}");

    let r = rig.envoy.get("/hello", &[("authorization", &bearer(&tamper_signature(&good)))]);
    assert_eq!(r.status, 401, "tampered signature: expected 401, got {} {}", r.status, r.text());

    assert_eq!(rig.echo.request_count(), 1, "a rejected request reached the upstream");
}

#[test]
fn native_jwt_authn_local_jwks_smoke() {
    let rig = start_local_jwks(JWT_AUTHN_TEMPLATE);
    three_checks(&rig);
    let stats = rig.envoy.admin_stats("jwt_authn\\.(allowed|denied)$");
    assert_eq!(stats.get("http.ingress.jwt_authn.allowed").map(String::as_str), Some("1"), "{stats:?}");
    assert_eq!(stats.get("http.ingress.jwt_authn.denied").map(String::as_str), Some("2"), "{stats:?}");
}

#[test]
fn wasm_filter_local_jwks_smoke() {
    let rig = start_local_jwks(WASM_TEMPLATE);
    three_checks(&rig);

    // Identity headers are the plugin's alone: two forged values give way to the token's one
    // (the plugin replaces instead of removing first; Envoy's replace drops every occurrence).
    let good = token(&rig.key, "dave");
    let forged = [("x-jwt-sub", "admin"), ("authorization", &bearer(&good)), ("x-jwt-sub", "root")];
    let r = rig.envoy.get("/hello", &forged);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json().unwrap_or_else(|e| panic!("upstream echo expected: {e}"));
    let subs: Vec<&str> = seen["header_list"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|pair| pair[0] == "x-jwt-sub")
        .filter_map(|pair| pair[1].as_str())
        .collect();
    assert_eq!(subs, ["dave"], "{seen}");
}

/// Envoy 1.40 offers BoringSSL through `verify_signature`: the start-up known-answer check
/// must pick it (gauge `crypto.host` = 1), and it must decide RS256 and ES256 both ways.
#[test]
fn wasm_filter_verifies_with_host_boringssl() {
    let rig = start_local_jwks(WASM_TEMPLATE);
    assert_eq!(rig.envoy.stat("wasmcustom.jwt_authn_wasm.crypto.host"), Some(1), "host crypto path not active");
    for key in [SigningKey::fixed(Alg::RS256), SigningKey::fixed(Alg::ES256)] {
        let good = token(&key, "carol");
        let r = rig.envoy.get("/", &[("authorization", &bearer(&good))]);
        assert_eq!(r.status, 200, "{:?}: {}", key.alg(), r.text());
        let r = rig.envoy.get("/", &[("authorization", &bearer(&tamper_signature(&good)))]);
        assert_eq!(r.status, 401, "{:?} tampered", key.alg());
        assert_eq!(r.json().unwrap()["code"], "jwt_signature_invalid");
    }
    // Each of the four signatures was decided by the host, none fell back to Rust.
    let stats = rig.envoy.admin_stats("jwt_authn_wasm.verify");
    let count = |path: &str| stats.get(&format!("wasmcustom.jwt_authn_wasm.verify.{path}")).cloned();
    assert_eq!((count("host").as_deref(), count("pure").as_deref()), (Some("4"), Some("0")), "{stats:?}");
}

/// The harness fails fast, with Envoy's own words, when Envoy rejects its configuration.
#[test]
fn native_jwt_authn_bad_config_fails_fast_with_log() {
    let config = json!({ "providers": { "demo": { "no_such_field": true } } }).to_string();
    let result = EnvoyProcess::try_start(
        JWT_AUTHN_TEMPLATE,
        &[("UPSTREAM_HOST", "127.0.0.1"), ("UPSTREAM_PORT", "1"), ("PLUGIN_CONFIG_JSON", &config)],
        1,
    );
    let Err(msg) = result else { panic!("Envoy accepted an invalid jwt_authn configuration") };
    assert!(msg.contains("Envoy exited early"), "{msg}");
    assert!(msg.contains("no_such_field"), "Envoy's log should name the bad field: {msg}");
}

/// The `idp` cluster and the demo IdP serve a remote JWKS to Envoy (native filter).
#[test]
fn native_jwt_authn_remote_jwks_smoke() {
    let idp = IdpServer::start("127.0.0.1:0");
    let echo = EchoServer::start("127.0.0.1:0");
    let config = json!({
        "providers": {
            "descope": {
                "issuer": idp.issuer(),
                "audiences": [idp.project_id()],
                "remote_jwks": {
                    "http_uri": { "uri": idp.jwks_uri(), "cluster": "idp", "timeout": "2s" },
                    "cache_duration": "300s"
                },
                "claim_to_headers": [{ "header_name": "x-jwt-sub", "claim_name": "sub" }]
            }
        },
        "rules": [{ "match": { "prefix": "/" }, "requires": { "provider_name": "descope" } }]
    })
    .to_string();
    let envoy = EnvoyProcess::start_with(JWT_AUTHN_TEMPLATE, echo.address(), Some(idp.address()), &config, 1);
    let token = idp.mint(idp.claims("alice", &[("T1", &["admin"], &[])], 300));
    let r = envoy.get("/", &[("authorization", &bearer(&token))]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().unwrap_or_default()["headers"]["x-jwt-sub"], "alice");
    assert!(idp.jwks_fetches() >= 1, "Envoy never fetched the JWKS");
    let es = idp.mint_alg(Alg::ES256, idp.claims("bob", &[], 300)).unwrap_or_default();
    assert_eq!(envoy.get("/", &[("authorization", &bearer(&es))]).status, 200);
    assert_eq!(envoy.get("/", &[("authorization", &bearer(&tamper_signature(&token)))]).status, 401);
}

/// tests/support `render` and scripts/render-envoy-config.sh render both templates identically.
#[test]
fn renderers_agree_on_wasm_and_jwt_authn_templates() {
    let keys = demo_idp::fixed_keys_all_algs();
    let refs: Vec<&SigningKey> = keys.iter().collect();
    let pretty_jwks = serde_json::to_string_pretty(&demo_idp::jwks_value(&refs)).unwrap_or_default();
    // serde_json sorts keys: give both renderers that order so the texts can be compared.
    let config = serde_json::to_string_pretty(&local_jwks_config(&pretty_jwks)).unwrap_or_default();
    let vars = [
        ("LISTEN_PORT", "10000"),
        ("ADMIN_PORT", "9901"),
        ("UPSTREAM_HOST", "upstream.local"),
        ("UPSTREAM_PORT", "8080"),
        ("IDP_HOST", "127.0.0.1"),
        ("IDP_PORT", "8081"),
        ("WASM_PATH", "/opt/plugin/jwt_authn_wasm.wasm"),
        ("PLUGIN_CONFIG_JSON", &config),
    ];
    let map: std::collections::BTreeMap<String, String> =
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    for template in [WASM_TEMPLATE, JWT_AUTHN_TEMPLATE] {
        let path = support::template_path(template);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ours = support::render(&text, &map).unwrap_or_else(|e| panic!("render {template}: {e}"));
        assert!(ours.contains("address: \"127.0.0.1\", port_value: 10000"), "default LISTEN_HOST: {ours}");
        let mut cmd = std::process::Command::new(support::repo_root().join("scripts/render-envoy-config.sh"));
        cmd.arg(&path).env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
        for (k, v) in vars {
            cmd.arg(format!("{k}={v}"));
        }
        let out = cmd.output().unwrap_or_else(|e| panic!("render-envoy-config.sh: {e}"));
        assert!(out.status.success(), "render-envoy-config.sh failed: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), ours, "renderers differ on {template}");
    }
    let mut missing = map.clone();
    missing.remove("UPSTREAM_PORT");
    let text = std::fs::read_to_string(support::template_path(WASM_TEMPLATE)).unwrap_or_default();
    let err = support::render(&text, &missing).err().unwrap_or_default();
    assert!(err.contains("UPSTREAM_PORT"), "{err}");
    missing.insert("UPSTREAM_PORT".into(), "1".into());
    missing.insert("PLUGIN_CONFIG_JSON".into(), "{not json".into());
    let err = support::render(&text, &missing).err().unwrap_or_default();
    assert!(err.contains("PLUGIN_CONFIG_JSON is not valid JSON"), "{err}");
    // Two members of one name: both renderers refuse, as the plugin would, rather than
    // hand it the last one.
    let dup = r#"{"providers": {"p": {"issuer": "a"}, "p": {"issuer": "b"}}}"#;
    missing.insert("PLUGIN_CONFIG_JSON".into(), dup.into());
    let err = support::render(&text, &missing).err().unwrap_or_default();
    assert!(err.contains("duplicate member"), "{err}");
    let out = std::process::Command::new(support::repo_root().join("scripts/render-envoy-config.sh"))
        .arg(support::template_path(WASM_TEMPLATE))
        .args(missing.iter().map(|(k, v)| format!("{k}={v}")))
        .output()
        .unwrap_or_else(|e| panic!("render-envoy-config.sh: {e}"));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("duplicate member 'p'"));
}

/// Issue: authorization and Descope. The preset (keys fetched through the `idp` cluster from
/// the demo IdP's Descope-style `/v2/keys/<project>`), tenant-scoped roles, and the stats a
/// scripted sequence leaves in Envoy's `/stats`.
#[test]
fn wasm_filter_descope_preset_authorization_and_stats() {
    use demo_idp::DescopeClaims;
    let idp = IdpServer::start("127.0.0.1:0");
    let echo = EchoServer::start("127.0.0.1:0");
    let project = idp.project_id().to_owned();
    let config = json!({
        "providers": {"descope": {"descope": {"project_id": project, "base_url": idp.base_url(), "cluster": "idp"}}},
        "rules": [
            {"match": {"path": "/healthz"}},
            {"match": {"prefix": "/tenants/"}, "requires": {"provider_name": "descope", "roles": ["admin"], "tenant": {"path_segment": 1}}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "descope"}}
        ]
    })
    .to_string();
    let envoy = EnvoyProcess::start_with(WASM_TEMPLATE, echo.address(), Some(idp.address()), &config, 2);
    let claims = DescopeClaims::new(&project, "U2alice")
        .tenant("T1", &["admin"], &["orders.read"])
        .tenant("T2", &["viewer"], &[])
        .dct("T1")
        .claim("iss", json!(project))
        .build();
    let token = idp.mint(claims);

    let r = envoy.get("/orders", &[("cookie", &format!("DS={token}"))]);
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = r.json().unwrap();
    assert_eq!(seen["headers"]["x-descope-user-id"], "U2alice");
    assert_eq!(seen["headers"]["x-descope-tenant-roles"], "admin");
    assert_eq!(seen["headers"]["x-descope-roles"], Value::Null, "no project-level roles");
    assert_eq!(seen["headers"]["x-descope-tenants"], "T1,T2");
    assert_eq!(envoy.get("/tenants/T1/orders", &[("authorization", &bearer(&token))]).status, 200);
    let r = envoy.get("/tenants/T2/orders", &[("authorization", &bearer(&token))]);
    assert_eq!(r.status, 403);
    assert_eq!(r.json().unwrap()["code"], "forbidden_roles");
    assert!(r.header("www-authenticate").unwrap_or_default().contains(r#"error="insufficient_scope""#));
    assert_eq!(envoy.get("/tenants/T9/orders", &[("authorization", &bearer(&token))]).status, 403);
    assert_eq!(envoy.get("/orders", &[]).status, 401);
    assert_eq!(envoy.get("/orders", &[("authorization", &bearer(&tamper_signature(&token)))]).status, 401);
    assert_eq!(envoy.get("/healthz", &[]).status, 200);
    // The public exact path cannot be borrowed by a protected one: dot segments are
    // normalised first, and an encoded slash is unescaped and redirected, never forwarded.
    assert_eq!(envoy.get("/healthz/../orders", &[]).status, 401);
    let r = envoy.get("/healthz%2F..%2Forders", &[]);
    assert_eq!(r.status, 307, "{}", r.text());

    let stats = envoy.admin_stats("jwt_authn_wasm");
    let stat = |name: &str| stats.get(&format!("wasmcustom.jwt_authn_wasm.{name}")).cloned().unwrap_or_default();
    assert_eq!(stat("allowed"), "3", "{stats:#?}");
    assert_eq!(stat("denied.forbidden_roles"), "1");
    assert_eq!(stat("denied.forbidden_tenant"), "1");
    assert_eq!(stat("denied.jwt_missing"), "2");
    assert_eq!(stat("denied.jwt_signature_invalid"), "1");
    assert_eq!(stat("jwks_fetch.ok"), "1");
    assert_eq!(stat("jwks.descope.keys"), idp.keys().len().to_string());
    assert_eq!(stat("crypto.host"), "1");
    assert_eq!(idp.jwks_fetches(), 1);
}
