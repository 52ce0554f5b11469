//! Counters, visible in Envoy's `/stats` (Envoy files wasm metrics under `wasmcustom.`).
//!
//! The counters every request bumps (allowed, denied, token cache) are counted inside the VM
//! and handed to Envoy on the root context's tick ([`Stats::flush`]): each host call costs a
//! few µs inside V8, and a request should spend them on its headers, not on its stats. They
//! lag by at most one tick (200 ms). Rare events (fetches, skipped headers) go at once.

use crate::config::Config;
use crate::status::Rejection;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;
use std::cell::Cell;

pub const PREFIX: &str = "jwt_authn_wasm";

/// A request-path counter: counted here, added to Envoy's on the next flush.
struct Batched {
    id: Option<u32>,
    pending: Cell<u64>,
}

impl Batched {
    fn new(name: &str) -> Batched {
        Batched { id: counter(name), pending: Cell::new(0) }
    }

    fn add(&self, n: u64) {
        self.pending.set(self.pending.get().saturating_add(n));
    }

    fn flush(&self) {
        add(self.id, self.pending.replace(0));
    }
}

pub struct Stats {
    allowed: Batched,
    denied: Vec<(Rejection, Batched)>,
    identity_header_skipped: Option<u32>,
    jwks_fetch_ok: Option<u32>,
    jwks_fetch_failed: Option<u32>,
    crypto_host: Option<u32>,
    cache_hit: Batched,
    cache_miss: Batched,
    verify_host: Batched,
    verify_pure: Batched,
    /// Gauge per provider: usable keys, and the value last recorded (set only on a change).
    keys: Vec<(Option<u32>, Cell<Option<usize>>)>,
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
            allowed: Batched::new("allowed"),
            denied: Rejection::ALL.iter().map(|r| (*r, Batched::new(&format!("denied.{}", r.code())))).collect(),
            identity_header_skipped: counter("identity_header_skipped"),
            jwks_fetch_ok: counter("jwks_fetch.ok"),
            jwks_fetch_failed: counter("jwks_fetch.failed"),
            crypto_host: define(MetricType::Gauge, "crypto.host"),
            cache_hit: Batched::new("token_cache.hit"),
            cache_miss: Batched::new("token_cache.miss"),
            verify_host: Batched::new("verify.host"),
            verify_pure: Batched::new("verify.pure"),
            keys: config
                .providers
                .iter()
                .map(|p| (define(MetricType::Gauge, &format!("jwks.{}.keys", p.name)), Cell::new(None)))
                .collect(),
        }
    }

    pub fn allowed(&self) {
        self.allowed.add(1);
    }

    pub fn denied(&self, r: Rejection) {
        if let Some((_, c)) = self.denied.iter().find(|(k, _)| *k == r) {
            c.add(1);
        }
    }

    /// Hands the request-path counters to Envoy (on every tick).
    pub fn flush(&self) {
        self.allowed.flush();
        self.cache_hit.flush();
        self.cache_miss.flush();
        self.verify_host.flush();
        self.verify_pure.flush();
        for (_, c) in &self.denied {
            c.flush();
        }
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
        self.cache_hit.add(hits);
        self.cache_miss.add(misses);
    }

    /// Signature verifications by the host's BoringSSL and in Rust.
    pub fn verifications(&self, by_host: u64, by_rust: u64) {
        self.verify_host.add(by_host);
        self.verify_pure.add(by_rust);
    }

    /// Records a provider's usable keys; a host call only when the count changed.
    pub fn keys_in_use(&self, provider: usize, keys: usize) {
        if let Some((Some(id), last)) = self.keys.get(provider) {
            if last.replace(Some(keys)) != Some(keys) {
                let _ = hostcalls::record_metric(*id, u64::try_from(keys).unwrap_or(u64::MAX));
            }
        }
    }
}
