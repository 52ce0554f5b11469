//! Arbitrary bytes as a token, through the whole pure path: `jws::parse`, key selection,
//! `claims::validate` under every provider's policy, and the authenticator — `verify_signature`
//! with `crypto::PureRust` against the fixture JWKS, and with a verifier that accepts any
//! signature so claims, identity headers and the token cache are reached too — with the input
//! where a client would put it (Authorization header, cookie, query parameter, a provider's
//! own header, the path) on every rule.
#![no_main]

mod common;

use common::{decide_all, Req, CONFIG, NOW};
use jwt_authn_wasm::claims::{self, ClaimPolicy};
use jwt_authn_wasm::config::{Config, JwksSource};
use jwt_authn_wasm::identity;
use jwt_authn_wasm::jws::{self, Limits};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static FIXTURE: Config = Config::parse(CONFIG.as_bytes()).expect("fuzz/fixtures/config.json");
}

const PATHS: [&str; 7] = ["/api", "/opt", "/any", "/all", "/either/x", "/healthz", "/unmatched"];

fn run(config: &Config, token: &str) {
    let limits = Limits { max_token_size: config.max_token_size, max_json_depth: config.max_json_depth };
    let _ = jws::parse_jws(token, &limits);
    if let Ok(jwt) = jws::parse(token, &limits) {
        for p in &config.providers {
            // Key selection only: the signature itself is verified once, by the authenticator
            // on /api below (verification dominates the cost of an input).
            if let JwksSource::Local(set) = &p.jwks {
                std::hint::black_box(set.candidates(jwt.jws.header.kid.as_deref(), jwt.jws.header.alg).count());
            }
            // Claims are checked whatever the signature said, so they get fuzzed too.
            let _ = claims::validate(&jwt.claims, &ClaimPolicy::for_provider(p, None), NOW);
            for c in &p.claim_to_headers {
                let _ = identity::claim_header_value(&jwt.claims, &c.claim);
            }
        }
    }

    let auth = format!("Bearer {token}");
    let cookie = format!("a=1; DS={token}; b=2");
    // Every rule once; the costlier variants on one rule, picked by the input itself.
    let picked = token.bytes().fold(0usize, |a, b| a.wrapping_add(usize::from(b))) % PATHS.len();
    for (i, path) in PATHS.into_iter().enumerate() {
        let req = Req::new("GET", path, &[("authorization", &auth), ("cookie", &cookie)]);
        decide_all(config, &req, path == "/api", i == picked);
    }
    decide_all(config, &Req::new("GET", PATHS[picked], &[("x-token", token), ("x-other", token)]), false, false);
    // The input as a query parameter, as a whole Cookie header, as a path.
    decide_all(config, &Req::new("GET", &format!("/api?x=1&access_token={token}"), &[]), false, false);
    decide_all(config, &Req::new("POST", "/api", &[("cookie", token)]), false, false);
    decide_all(config, &Req::new("GET", token, &[("authorization", token)]), false, false);
    let preflight = [("origin", token), ("access-control-request-method", "GET")];
    decide_all(config, &Req::new("OPTIONS", "/api", &preflight), false, false);
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    FIXTURE.with(|config| run(config, &token));
});
