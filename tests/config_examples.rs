//! Every plugin configuration shipped in the repository is accepted by the plugin's own
//! parser, so examples cannot drift from the code.

use jwt_authn_wasm::config::{Config, JwksSource};
use std::path::Path;

fn parse_file(rel: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    Config::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn demo_configuration_is_valid() {
    let c = parse_file("envoy/demo-plugin-config.json");
    let p = &c.providers[0];
    assert_eq!(p.issuers, vec!["https://api.descope.com/P2demoproject"]);
    let JwksSource::Remote(r) = &p.jwks else { panic!("the demo fetches its keys") };
    assert_eq!((r.cluster.as_str(), r.path.as_str()), ("idp", "/v2/keys/P2demoproject"));
    assert_eq!(c.identity_headers, vec!["x-user-id", "x-tenant-id", "x-tenants"]);
}

#[test]
fn descope_example_is_valid() {
    use jwt_authn_wasm::extract::Location;
    let c = parse_file("examples/descope.json");
    let p = &c.providers[0];
    assert_eq!(p.name, "descope");
    // The preset: every issuer form Descope uses; an `aud`, where present, must name the
    // project (no configured audiences).
    assert_eq!(
        p.issuers,
        vec![
            "P2abcYourProjectId",
            "https://api.descope.com/P2abcYourProjectId",
            "https://api.descope.com/v1/apps/P2abcYourProjectId"
        ]
    );
    assert!(p.audiences.is_empty());
    assert_eq!(p.descope_project.as_deref(), Some("P2abcYourProjectId"));
    assert!(p.require_expiration);
    assert_eq!(p.clock_skew_seconds, 5);
    assert_eq!(
        p.locations,
        vec![
            Location::Header { name: "authorization".into(), prefix: Some("Bearer ".into()) },
            Location::Cookie("DS".into()),
        ]
    );
    let JwksSource::Remote(r) = &p.jwks else { panic!("Descope keys are fetched") };
    assert_eq!(r.uri, "https://api.descope.com/v2/keys/P2abcYourProjectId");
    assert_eq!((r.authority.as_str(), r.path.as_str()), ("api.descope.com", "/v2/keys/P2abcYourProjectId"));
    assert_eq!(r.cluster, "descope");
    assert_eq!(
        c.identity_headers,
        vec![
            "x-descope-user-id",
            "x-descope-tenants",
            "x-descope-current-tenant",
            "x-descope-roles",
            "x-descope-permissions",
            "x-descope-tenant-roles",
            "x-descope-tenant-permissions"
        ]
    );
    assert!(c.rules[0].matches("/healthz", "GET") && c.rules[0].requirement.is_none(), "/healthz is public");
    assert!(c.rules[1].matches("/api/orders", "GET") && c.rules[1].requirement.is_some());
}
