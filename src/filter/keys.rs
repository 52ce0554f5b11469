//! Per-VM key state: local JWKS as configured, remote JWKS as last read from shared data
//! (parsed once per version), and the fetches this VM has in flight.

use crate::config::{Config, JwksSource, ProviderId, RemoteJwks};
use crate::decision::{KeyLookup, KeySource};
use crate::jwk::{parse_jwks, JwkSet, SkippedKey};
use crate::jwks_cache::{self, KeysFor, Policy, Record, SharedStore, MAX_JWKS_BYTES};
use std::cell::RefCell;
use std::rc::Rc;

pub enum ProviderKeys {
    Local(Rc<JwkSet>),
    Remote(Box<Remote>),
}

pub struct Remote {
    pub provider: String,
    pub source: RemoteJwks,
    /// Shared-data key, see [`jwks_cache::record_key`].
    pub key: String,
    pub policy: Policy,
    /// The record as last read (its `jwks` body dropped once parsed).
    pub record: Record,
    pub version: u64,
    pub set: Option<Rc<JwkSet>>,
}

impl Remote {
    /// How long a request may wait for this provider's first keys: one call's timeout, two
    /// with OIDC discovery (the document, then the JWKS it names).
    pub fn wait_limit_ms(&self) -> u64 {
        let calls = if self.source.discovery.is_some() { 2 } else { 1 };
        self.policy.fetch_timeout_ms.saturating_mul(calls)
    }

    /// Keys a request may use now: none once past the staleness bound.
    pub fn usable_count(&self, now_ms: u64) -> usize {
        self.usable_set(now_ms).map_or(0, |s| s.keys.len())
    }

    fn usable_set(&self, now_ms: u64) -> Option<Rc<JwkSet>> {
        self.set.clone().filter(|_| self.record.fresh(now_ms, &self.policy))
    }

    /// Re-reads the shared record; parses the document only when its version changed.
    pub fn sync(&mut self, store: &dyn SharedStore) -> Synced {
        let (mut rec, _) = jwks_cache::load(store, &self.key);
        let mut keys = false;
        if rec.version != self.version {
            match rec.jwks.as_deref().map(|b| parse_jwks(b.as_bytes())) {
                Some(Ok(parsed)) => {
                    log_skipped(&self.provider, &parsed.skipped);
                    self.set = Some(Rc::new(parsed.set));
                    keys = true;
                }
                Some(Err(e)) => log::error!("jwt_authn_wasm: provider {}: stored JWKS unusable: {e}", self.provider),
                None => {}
            }
            self.version = rec.version;
        }
        rec.jwks = None;
        let record = rec != self.record;
        self.record = rec;
        Synced { keys, record }
    }
}

/// What [`Remote::sync`] saw change.
pub struct Synced {
    /// The usable keys.
    pub keys: bool,
    /// Anything in the shared record (a claim, a failure, new keys): what a paused request
    /// is waiting on may have been settled.
    pub record: bool,
}

/// Most skipped JWKS entries logged one by one; a hostile or broken JWKS of many bad entries
/// gets a count for the rest, not a line each.
const MAX_SKIPPED_LOGGED: usize = 10;

/// Logs JWKS entries that were not usable (at `warn`), at most [`MAX_SKIPPED_LOGGED`] of them.
pub fn log_skipped<'a>(provider: &str, skipped: impl IntoIterator<Item = &'a SkippedKey>) {
    let mut rest = 0usize;
    for (i, s) in skipped.into_iter().enumerate() {
        if i < MAX_SKIPPED_LOGGED {
            log::warn!("jwt_authn_wasm: provider {provider}: {s}");
        } else {
            rest = rest.saturating_add(1);
        }
    }
    if rest > 0 {
        log::warn!("jwt_authn_wasm: provider {provider}: {rest} more JWKS keys skipped");
    }
}

pub fn build(config: &Config) -> Vec<RefCell<ProviderKeys>> {
    config
        .providers
        .iter()
        .map(|p| {
            RefCell::new(match &p.jwks {
                JwksSource::Local(set) => ProviderKeys::Local(set.clone()),
                JwksSource::Remote(r) => ProviderKeys::Remote(Box::new(Remote {
                    provider: p.name.clone(),
                    key: jwks_cache::record_key(r),
                    policy: Policy::new(r.cache_duration, r.timeout),
                    source: r.clone(),
                    record: Record::default(),
                    version: 0,
                    set: None,
                })),
            })
        })
        .collect()
}

/// Checks a fetched JWKS; the error text is logged and kept in the record.
pub fn validate_body(status: Option<u32>, body_size: usize, body: Option<&[u8]>) -> Result<String, String> {
    let body = answered(status, body)?;
    if body_size > MAX_JWKS_BYTES || body.len() > MAX_JWKS_BYTES {
        return Err(format!("response larger than {MAX_JWKS_BYTES} bytes"));
    }
    let text = std::str::from_utf8(body).map_err(|_| "response is not UTF-8".to_string())?;
    parse_jwks(body).map_err(|e| format!("unusable JWKS: {e}"))?;
    Ok(text.to_owned())
}

/// The body of a `200` answer to a fetch (JWKS or discovery document); otherwise why not,
/// with the start of the body: Envoy's own local replies say why (`upstream connect error
/// ... reset reason: connection failure`, a TLS error).
pub fn answered(status: Option<u32>, body: Option<&[u8]>) -> Result<&[u8], String> {
    match status {
        Some(200) => Ok(body.unwrap_or_default()),
        Some(s) => Err(format!("HTTP status {s}{}", body_excerpt(body))),
        None => Err("no response (connect failure, reset, timeout, or a body over Envoy's buffer limit)".into()),
    }
}

/// The start of a failed answer's body, escaped, for the log.
fn body_excerpt(body: Option<&[u8]>) -> String {
    match body {
        Some(b) if !b.is_empty() => {
            let text: String = String::from_utf8_lossy(b).chars().take(160).collect();
            format!(": {text:?}")
        }
        _ => String::new(),
    }
}

/// The keys one request sees. `give_up` is set once the request has waited its limit: keys
/// still missing are then unavailable rather than pending.
pub struct RequestKeys<'a> {
    pub keys: &'a [RefCell<ProviderKeys>],
    pub now_ms: u64,
    pub give_up: bool,
    /// Providers whose unknown `kid` asks for a refetch.
    pub refetch: RefCell<Vec<ProviderId>>,
}

impl KeySource for RequestKeys<'_> {
    fn lookup(&self, provider: ProviderId, kid: Option<&str>) -> KeyLookup {
        let Some(cell) = self.keys.get(provider.index()) else {
            return KeyLookup::Unavailable;
        };
        let Ok(keys) = cell.try_borrow() else {
            return KeyLookup::Unavailable;
        };
        let remote = match &*keys {
            ProviderKeys::Local(set) => return KeyLookup::Ready(set.clone()),
            ProviderKeys::Remote(r) => r,
        };
        let set = remote.usable_set(self.now_ms);
        let kid_unknown = match (&set, kid) {
            (Some(set), Some(k)) => !set.has_kid(k),
            _ => false,
        };
        let choice =
            jwks_cache::keys_for(&remote.record, set.is_some(), kid_unknown, self.now_ms, &remote.policy, self.give_up);
        match (choice, set) {
            (KeysFor::Use, Some(set)) => KeyLookup::Ready(set),
            (KeysFor::Wait { refetch }, _) => {
                if refetch {
                    self.refetch.borrow_mut().push(provider);
                }
                KeyLookup::Pending
            }
            (KeysFor::Unavailable | KeysFor::Use, _) => KeyLookup::Unavailable,
        }
    }
}
