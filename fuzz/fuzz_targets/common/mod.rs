//! What the fuzz targets share: the fixture configuration and token (fuzz/fixtures, written
//! by `tests/attacks.rs` `fuzz_fixtures::regenerate`), a request view, key sources and
//! verifiers, and one function that drives the authenticator end to end.
#![allow(dead_code)]

use jwt_authn_wasm::config::{Config, JwksSource, ProviderId};
use jwt_authn_wasm::crypto::{PureRust, SignatureVerifier, VerifyError};
use jwt_authn_wasm::decision::{local_reply, mutations, Authenticator, KeyLookup, KeySource, Verdict};
use jwt_authn_wasm::extract::RequestView;
use jwt_authn_wasm::jwk::{Alg, Jwk};
use jwt_authn_wasm::token_cache::TokenCache;

/// The fuzzers' clock: 2025-01-01T00:00:00Z (the seed tokens are valid then).
pub const NOW: u64 = 1_735_689_600;

/// The plugin configuration the `token` target runs against.
pub const CONFIG: &str = include_str!("../../fixtures/config.json");
/// A valid RS256 token for `CONFIG` at `NOW` (the `config` target's request carries it).
pub const TOKEN: &str = include_str!("../../fixtures/token.txt");

/// A request: the first value of a header, as Envoy returns it.
pub struct Req(pub Vec<(String, String)>);

impl RequestView for Req {
    fn header(&self, name: &str) -> Option<String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }
}

impl Req {
    pub fn new(method: &str, path: &str, extra: &[(&str, &str)]) -> Req {
        let mut h = vec![
            (":method".to_string(), method.to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), "api.example.com".to_string()),
            (":scheme".to_string(), "https".to_string()),
        ];
        h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Req(h)
    }
}

/// Inline keys as configured; remote providers answer `remote` (pending or unavailable).
pub struct Keys<'a> {
    pub config: &'a Config,
    pub remote: fn() -> KeyLookup,
}

impl KeySource for Keys<'_> {
    fn lookup(&self, provider: ProviderId, _kid: Option<&str>) -> KeyLookup {
        match self.config.provider(provider).map(|p| &p.jwks) {
            Some(JwksSource::Local(set)) => KeyLookup::Ready(set.clone()),
            _ => (self.remote)(),
        }
    }
}

/// A verifier that accepts every signature of a fitting key: lets random tokens past the
/// signature so claims, authorization, identity headers and the cache get fuzzed too.
pub struct AcceptAll;

impl SignatureVerifier for AcceptAll {
    fn verify(&self, alg: Alg, key: &Jwk, _input: &[u8], _sig: &[u8]) -> Result<(), VerifyError> {
        if key.accepts(alg) {
            Ok(())
        } else {
            Err(VerifyError::KeyMismatch)
        }
    }
}

/// Decides `req` with `AcceptAll`, which lets random tokens past the signature; with
/// `real_crypto` also with the real verifier; with `extras` also with remote keys pending and
/// twice with a token cache (the second run takes the cache path). Builds whatever follows
/// each verdict: the header mutations or the local reply. Real verification is the slow part
/// (bignum arithmetic under coverage instrumentation) and random inputs never carry a valid
/// signature, so callers ask for it, and for the extras, once per input.
pub fn decide_all(config: &Config, req: &Req, real_crypto: bool, extras: bool) {
    let keys = Keys { config, remote: || KeyLookup::Unavailable };
    follow(config, req, Authenticator::new(config, &keys, &AcceptAll, NOW).decide(req));
    if real_crypto {
        follow(config, req, Authenticator::new(config, &keys, &PureRust, NOW).decide(req));
    }
    if extras {
        let pending = Keys { config, remote: || KeyLookup::Pending };
        follow(config, req, Authenticator::new(config, &pending, &AcceptAll, NOW).decide(req));
        let caches: Vec<TokenCache> = config.providers.iter().map(|_| TokenCache::new(4, 16 * 1024)).collect();
        for _ in 0..2 {
            let auth = Authenticator { caches: &caches, ..Authenticator::new(config, &keys, &AcceptAll, NOW) };
            follow(config, req, auth.decide(req));
        }
    }
}

fn follow(config: &Config, req: &Req, verdict: Verdict) {
    match verdict {
        Verdict::Allow(allowed) => {
            let m = mutations(config, &allowed, req);
            std::hint::black_box((m, allowed));
        }
        Verdict::Deny(rejection) => {
            let reply = local_reply(rejection, req);
            std::hint::black_box(reply);
        }
        Verdict::Pending(p) => {
            std::hint::black_box(p);
        }
    }
}
