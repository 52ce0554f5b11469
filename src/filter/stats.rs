//! Counters, visible in Envoy's `/stats` (Envoy files wasm metrics under `wasmcustom.`).

use crate::config::Config;
use crate::status::Rejection;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

pub const PREFIX: &str = "jwt_authn_wasm";

pub struct Stats {
    allowed: Option<u32>,
    denied: Vec<(Rejection, Option<u32>)>,
    identity_header_skipped: Option<u32>,
    jwks_fetch_ok: Option<u32>,
    jwks_fetch_failed: Option<u32>,
    crypto_host: Option<u32>,
    cache_hit: Option<u32>,
    cache_miss: Option<u32>,
    /// Gauge per provider: usable keys.
    keys: Vec<Option<u32>>,
}

fn counter(name: &str) -> Option<u32> {
    define(MetricType::Counter, name)
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    match hostcalls::define_metric(kind, &format!("{PREFIX}.{name}")) {
        Ok(id) => Some(id),
        Err(status) => {
            log::warn!("could not define metric {name}: {status:?}");
            None
        }
    }
}

fn bump(id: Option<u32>) {
    add(id, 1);
}

fn add(id: Option<u32>, n: u64) {
    if let (Some(id), Ok(n)) = (id, i64::try_from(n)) {
        if n > 0 {
            // A stats failure must never affect the request.
            let _ = hostcalls::increment_metric(id, n);
        }
    }
}

impl Stats {
    pub fn define(config: &Config) -> Stats {
        Stats {
            allowed: counter("allowed"),
            denied: Rejection::ALL.iter().map(|r| (*r, counter(&format!("denied.{}", r.code())))).collect(),
            identity_header_skipped: counter("identity_header_skipped"),
            jwks_fetch_ok: counter("jwks_fetch.ok"),
            jwks_fetch_failed: counter("jwks_fetch.failed"),
            crypto_host: define(MetricType::Gauge, "crypto.host"),
            cache_hit: counter("token_cache.hit"),
            cache_miss: counter("token_cache.miss"),
            keys: config
                .providers
                .iter()
                .map(|p| define(MetricType::Gauge, &format!("jwks.{}.keys", p.name)))
                .collect(),
        }
    }

    pub fn allowed(&self) {
        bump(self.allowed);
    }

    pub fn denied(&self, r: Rejection) {
        bump(self.denied.iter().find(|(k, _)| *k == r).and_then(|(_, id)| *id));
    }

    pub fn identity_header_skipped(&self) {
        bump(self.identity_header_skipped);
    }

    pub fn jwks_fetch_ok(&self) {
        bump(self.jwks_fetch_ok);
    }

    pub fn jwks_fetch_failed(&self) {
        bump(self.jwks_fetch_failed);
    }

    /// 1 when signatures are verified by the host's BoringSSL, 0 for pure Rust.
    pub fn crypto_path(&self, host: bool) {
        if let Some(id) = self.crypto_host {
            let _ = hostcalls::record_metric(id, u64::from(host));
        }
    }

    pub fn cache(&self, hits: u64, misses: u64) {
        add(self.cache_hit, hits);
        add(self.cache_miss, misses);
    }

    pub fn keys_in_use(&self, provider: usize, keys: usize) {
        if let Some(Some(id)) = self.keys.get(provider) {
            let _ = hostcalls::record_metric(*id, u64::try_from(keys).unwrap_or(u64::MAX));
        }
    }
}
