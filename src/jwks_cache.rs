//! Remote JWKS state, shared by every worker VM of one Envoy through proxy-wasm shared data.
//!
//! One [`Record`] per JWKS source (cluster and URI, and with discovery the issuer) holds the
//! last good document and the fetch schedule. A VM that wants to fetch first claims the fetch
//! by writing the record with compare-and-swap, so N workers make one fetch per refresh, and
//! concurrent unknown-`kid` tokens one refetch. Every decision here is a pure function of the
//! record, the time and the policy.

use crate::config::RemoteJwks;
use serde_json::{Map, Value};
use std::time::Duration;

/// Refetch for an unknown `kid` at most this often per JWKS, across all workers.
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Keys older than this are no longer used, even if every refresh since failed.
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(24 * 3600);
pub const DEFAULT_BACKOFF_BASE: Duration = Duration::from_secs(1);
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Longest retry delay while a source has no usable keys (none yet, or past the staleness
/// bound): every protected request is refused until it has, so those are retried more
/// eagerly than a refresh.
pub const FIRST_KEYS_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Largest JWKS response accepted.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Timing of fetches, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub cache_duration_ms: u64,
    pub fetch_timeout_ms: u64,
    pub max_staleness_ms: u64,
    pub refetch_interval_ms: u64,
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    pub first_keys_backoff_max_ms: u64,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Policy {
    pub fn new(cache_duration: Duration, fetch_timeout: Duration) -> Policy {
        Policy {
            // Capped by the staleness bound: keys are refreshed before they stop being used,
            // else a longer duration (as pasted jwt_authn configurations may carry) would leave
            // no usable keys between the bound and the refresh.
            cache_duration_ms: ms(cache_duration.min(DEFAULT_MAX_STALENESS)),
            fetch_timeout_ms: ms(fetch_timeout),
            max_staleness_ms: ms(DEFAULT_MAX_STALENESS),
            refetch_interval_ms: ms(DEFAULT_REFETCH_INTERVAL),
            backoff_base_ms: ms(DEFAULT_BACKOFF_BASE),
            backoff_max_ms: ms(DEFAULT_BACKOFF_MAX),
            first_keys_backoff_max_ms: ms(FIRST_KEYS_BACKOFF_MAX),
        }
    }

    /// Refresh at 90% of the cache duration, so fresh keys are in place before it ends.
    fn refresh_after_ms(&self) -> u64 {
        self.cache_duration_ms.saturating_sub(self.cache_duration_ms / 10).max(1)
    }

    /// Capped exponential backoff with "equal jitter": half the delay fixed, half random, so
    /// workers of many Envoys do not retry an IdP in lockstep. `jitter` is in [0, 1000).
    pub fn backoff_ms(&self, failures: u32, jitter: u64) -> u64 {
        let exp = failures.saturating_sub(1).min(32);
        let delay = self.backoff_base_ms.saturating_mul(1u64 << exp).min(self.backoff_max_ms);
        let half = delay / 2;
        half.saturating_add(half.saturating_mul(jitter.min(999)) / 1000)
    }
}

/// What shared data holds per JWKS source. Times are unix milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    /// Bumped whenever a different good document is stored; VMs re-parse only then.
    pub version: u64,
    /// The last good JWKS document.
    pub jwks: Option<String>,
    pub fetched_at: u64,
    /// When the next refresh (or retry after a failure) is due.
    pub next_fetch_at: u64,
    pub failures: u32,
    /// A fetch is under way until this time; nobody else starts one before.
    pub in_flight_until: u64,
    /// When the last unknown-`kid` refetch started.
    pub last_refetch_at: Option<u64>,
    /// Fetches completed, good or failed. Read by nothing in this build, but kept in the
    /// shared record (as `last_error` is, for a look at shared data while debugging): a VM of
    /// an earlier build, running until a configuration update replaces it, requires it.
    pub completed: u64,
    /// Why the last fetch failed, for logs.
    pub last_error: Option<String>,
    /// With OIDC discovery: the `jwks_uri` the discovery document named.
    pub jwks_uri: Option<String>,
    /// The latest claim, numbered: only its own fetch's answer may complete it. An answer
    /// arriving after its claim expired and another VM claimed is dropped, so it can neither
    /// end the newer fetch early nor record a failure over its success.
    pub claim: u64,
}

impl Record {
    /// `None` for anything this version did not write; the caller then starts afresh.
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        let m = crate::json::parse_object(bytes, 2).ok()?;
        let number = |k: &str| m.get(k).and_then(Value::as_u64);
        let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Record {
            version: number("version")?,
            jwks: text("jwks"),
            fetched_at: number("fetched_at")?,
            next_fetch_at: number("next_fetch_at")?,
            failures: u32::try_from(number("failures")?).ok()?,
            in_flight_until: number("in_flight_until")?,
            last_refetch_at: number("last_refetch_at"),
            completed: number("completed")?,
            last_error: text("last_error"),
            jwks_uri: text("jwks_uri"),
            // Absent in records of earlier versions of the plugin.
            claim: number("claim").unwrap_or(0),
        })
    }

    /// JSON, so that the shared data can be read when debugging.
    pub fn encode(&self) -> Vec<u8> {
        let mut m = Map::new();
        let numbers = [
            ("version", Some(self.version)),
            ("fetched_at", Some(self.fetched_at)),
            ("next_fetch_at", Some(self.next_fetch_at)),
            ("failures", Some(u64::from(self.failures))),
            ("in_flight_until", Some(self.in_flight_until)),
            ("last_refetch_at", self.last_refetch_at),
            ("completed", Some(self.completed)),
            ("claim", Some(self.claim)),
        ];
        for (k, v) in numbers {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v));
            }
        }
        for (k, v) in [("jwks", &self.jwks), ("last_error", &self.last_error), ("jwks_uri", &self.jwks_uri)] {
            if let Some(v) = v {
                m.insert(k.into(), Value::from(v.as_str()));
            }
        }
        Value::Object(m).to_string().into_bytes()
    }

    pub fn in_flight(&self, now: u64) -> bool {
        now < self.in_flight_until
    }

    /// A scheduled fetch (first, refresh or retry) is due for a reader with `policy`.
    /// `next_fetch_at` was set by whoever fetched last, under its own policy; after good
    /// keys a reader's own refresh period counts too, so the shortest `cache_duration` wins:
    /// a reloaded configuration that shortened it (to push a revoked key out sooner), or one
    /// of two providers naming one JWKS, is not held to a longer period another wrote.
    /// Retries after a failure keep the stored backoff.
    pub fn due(&self, now: u64, policy: &Policy) -> bool {
        let own_refresh = self.failures == 0 && now >= self.fetched_at.saturating_add(policy.refresh_after_ms());
        !self.in_flight(now) && (now >= self.next_fetch_at || own_refresh)
    }

    /// The last fetch failed, none is under way and the next is not due: nothing will change
    /// before `next_fetch_at`, so a request without keys has nothing to wait for.
    pub fn failed_and_idle(&self, now: u64) -> bool {
        self.failures > 0 && !self.in_flight(now) && now < self.next_fetch_at
    }

    /// An unknown-`kid` refetch may start now (rate limited across workers).
    pub fn may_refetch(&self, now: u64, policy: &Policy) -> bool {
        !self.in_flight(now)
            && self.last_refetch_at.map_or(true, |t| now >= t.saturating_add(policy.refetch_interval_ms))
    }

    /// The stored document may still be used.
    pub fn usable(&self, now: u64, policy: &Policy) -> bool {
        self.jwks.is_some() && self.fresh(now, policy)
    }

    /// The last good document is within the staleness bound (whether or not this copy of the
    /// record still carries its text: a VM keeps only the parsed keys).
    pub fn fresh(&self, now: u64, policy: &Policy) -> bool {
        now <= self.fetched_at.saturating_add(policy.max_staleness_ms)
    }

    /// Claims the fetch for one call: slightly longer than its timeout, so a VM that dies
    /// mid-fetch only delays the next one.
    pub fn begin(&mut self, now: u64, policy: &Policy, refetch: bool) {
        self.claim = self.claim.wrapping_add(1);
        self.extend(now, policy);
        if refetch {
            self.last_refetch_at = Some(now);
        }
    }

    fn extend(&mut self, now: u64, policy: &Policy) {
        self.in_flight_until = now.saturating_add(policy.fetch_timeout_ms).saturating_add(1000);
    }

    /// Whether `claim` is still the latest: nobody claimed after it (its own expiry alone
    /// does not matter, the answer is then still the newest there is).
    fn holds(&self, claim: u64) -> bool {
        self.claim == claim
    }

    /// OIDC discovery named the JWKS: remembered, and the claim extended for the second call.
    /// `false` (nothing changed) if the claim is no longer this fetch's.
    pub fn discovered(&mut self, claim: u64, now: u64, jwks_uri: String, policy: &Policy) -> bool {
        if !self.holds(claim) {
            return false;
        }
        self.jwks_uri = Some(jwks_uri);
        self.extend(now, policy);
        true
    }

    /// A good document arrived (already checked to hold at least one usable key). `false`
    /// (nothing changed) if the claim is no longer this fetch's.
    pub fn succeed(&mut self, claim: u64, now: u64, body: String, policy: &Policy) -> bool {
        if !self.holds(claim) {
            return false;
        }
        if self.jwks.as_deref() != Some(body.as_str()) {
            self.version = self.version.saturating_add(1);
            self.jwks = Some(body);
        }
        self.fetched_at = now;
        self.failures = 0;
        self.next_fetch_at = now.saturating_add(policy.refresh_after_ms());
        self.finish();
        self.last_error = None;
        true
    }

    /// The fetch failed: keep the last good document and retry after a backoff. `false`
    /// (nothing changed) if the claim is no longer this fetch's.
    pub fn fail(&mut self, claim: u64, now: u64, reason: String, policy: &Policy, jitter: u64) -> bool {
        if !self.holds(claim) {
            return false;
        }
        self.failures = self.failures.saturating_add(1);
        let mut delay = policy.backoff_ms(self.failures, jitter);
        if !self.usable(now, policy) {
            delay = delay.min(policy.first_keys_backoff_max_ms);
        }
        self.next_fetch_at = now.saturating_add(delay);
        self.finish();
        self.last_error = Some(reason);
        true
    }

    fn finish(&mut self) {
        self.in_flight_until = 0;
        self.completed = self.completed.saturating_add(1);
    }

    /// The JWKS URI discovered earlier, for an unknown-`kid` refetch (one call, while a
    /// request waits), unless the last fetch failed. A scheduled fetch reads the discovery
    /// document again, as does any fetch after a failure: the JWKS may have moved, and the
    /// old URI may still answer with the old keys.
    pub fn discovered_jwks_uri(&self, refetch: bool) -> Option<&str> {
        self.jwks_uri.as_deref().filter(|_| refetch && self.failures == 0)
    }
}

/// The shared-data key of a remote source's record: one per JWKS source, so providers
/// naming the same one share it. With OIDC discovery the expected issuer is part of it: a
/// document accepted for one issuer must not serve a provider expecting another.
pub fn record_key(source: &RemoteJwks) -> String {
    match &source.discovery {
        None => format!("jwt_authn_wasm.jwks|{}|{}", source.cluster, source.uri),
        Some(d) => format!("jwt_authn_wasm.jwks|{}|{}|{}", source.cluster, source.uri, d.issuer),
    }
}

/// What a request that needs a remote provider's keys does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeysFor {
    /// Decide with the keys this VM holds.
    Use,
    /// Wait for a fetch; `refetch` when the request's unknown `kid` asks for one.
    Wait { refetch: bool },
    /// Answer now: the keys cannot be had in time.
    Unavailable,
}

/// The choice for a request, from the shared record: whether this VM holds usable keys,
/// whether the token's `kid` is among them, and whether the request has waited its limit.
pub fn keys_for(record: &Record, usable: bool, kid_unknown: bool, now: u64, policy: &Policy, give_up: bool) -> KeysFor {
    if !usable {
        // After a failed fetch, until the retry, there is nothing to wait for (jwt_authn
        // also answers a failed fetch at once); the retry is due within seconds.
        return if give_up || record.failed_and_idle(now) {
            KeysFor::Unavailable
        } else {
            KeysFor::Wait { refetch: false }
        };
    }
    // An unknown `kid` waits for a fetch that may bring it, never past the request's limit.
    let may_wait = record.in_flight(now) || record.may_refetch(now, policy);
    if kid_unknown && may_wait && !give_up {
        KeysFor::Wait { refetch: true }
    } else if kid_unknown && record.failures > 0 {
        // The keys could not be brought up to date (the last fetch failed): the `kid` may be
        // newly published. Ours to answer (503, retry), not the token's (401, sign in again).
        KeysFor::Unavailable
    } else {
        KeysFor::Use
    }
}

/// Reads an OpenID Provider configuration document (OIDC Discovery 1.0 §3): its `issuer`
/// must equal `expected_issuer` exactly (§4.3), and its `jwks_uri` must be an http(s) URI.
pub fn parse_discovery(body: &[u8], expected_issuer: &str) -> Result<String, String> {
    let doc = crate::json::parse_object(body, 8).map_err(|e| format!("discovery document: {e}"))?;
    match doc.get("issuer").and_then(|v| v.as_str()) {
        Some(iss) if iss == expected_issuer => {}
        Some(iss) => return Err(format!("discovery document names issuer {iss:?}, not {expected_issuer:?}")),
        None => return Err("discovery document has no issuer".into()),
    }
    match doc.get("jwks_uri").and_then(|v| v.as_str()) {
        Some(uri) if uri.starts_with("https://") || uri.starts_with("http://") => Ok(uri.to_owned()),
        Some(_) => Err("discovery document's jwks_uri is not an http(s) URI".into()),
        None => Err("discovery document has no jwks_uri".into()),
    }
}

/// Shared data as the cache needs it: get with a version, set with compare-and-swap.
pub trait SharedStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// `cas` is the version read; `None` writes unconditionally. `false` if someone else
    /// wrote first.
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool;
}

/// Reads the record (a missing or unreadable one is a fresh record).
pub fn load(store: &dyn SharedStore, key: &str) -> (Record, Option<u32>) {
    match store.get(key) {
        Some((bytes, cas)) => (Record::decode(&bytes).unwrap_or_default(), Some(cas)),
        None => (Record::default(), None),
    }
}

/// Read-modify-write under CAS, retried a few times against concurrent writers. `change`
/// returns whether it changed anything; the record as stored is returned.
pub fn update(store: &dyn SharedStore, key: &str, mut change: impl FnMut(&mut Record) -> bool) -> Option<Record> {
    for _ in 0..4 {
        let (mut rec, cas) = load(store, key);
        if !change(&mut rec) {
            return Some(rec);
        }
        // An absent key is written with cas 0, which Envoy treats as unconditional: two VMs
        // that both read "absent" may both write (and both fetch once); see README.
        if store.set(key, &rec.encode(), Some(cas.unwrap_or(0))) {
            return Some(rec);
        }
    }
    None
}

/// [`update`] for a change that may not apply: the record as stored when `change` applied
/// and the write landed, `None` when it did not apply or could not be written.
pub fn update_if(store: &dyn SharedStore, key: &str, mut change: impl FnMut(&mut Record) -> bool) -> Option<Record> {
    let mut applied = false;
    let stored = update(store, key, |rec| {
        applied = change(rec);
        applied
    });
    stored.filter(|_| applied)
}

/// A fetch this caller claimed and must make now.
pub struct Claimed {
    pub record: Record,
    /// An unknown-`kid` refetch; `false` for a scheduled fetch, also when one was due as a
    /// refetch was asked for: it takes the refetch's place (and, with OIDC discovery, reads
    /// the document again), so unknown-`kid` tokens cannot keep a refresh from happening.
    pub refetch: bool,
}

/// Tries to claim a fetch: the scheduled one when due, else (if `refetch` is asked) an
/// unknown-`kid` refetch when the rate limit allows.
pub fn try_claim(store: &dyn SharedStore, key: &str, now: u64, policy: &Policy, refetch: bool) -> Option<Claimed> {
    let mut as_refetch = false;
    let record = update_if(store, key, |rec| {
        let scheduled = rec.due(now, policy);
        as_refetch = !scheduled && refetch && rec.may_refetch(now, policy);
        if scheduled || as_refetch {
            rec.begin(now, policy, as_refetch);
        }
        scheduled || as_refetch
    })?;
    Some(Claimed { record, refetch: as_refetch })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Store(RefCell<HashMap<String, (Vec<u8>, u32)>>);
    impl SharedStore for Store {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.0.borrow().get(key).cloned()
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
            let mut m = self.0.borrow_mut();
            let current = m.get(key).map_or(0, |(_, c)| *c);
            if matches!(cas, Some(c) if c != 0 && c != current) {
                return false;
            }
            m.insert(key.to_owned(), (value.to_vec(), current + 1));
            true
        }
    }

    fn claim(s: &Store, key: &str, now: u64, p: &Policy, refetch: bool) -> bool {
        try_claim(s, key, now, p, refetch).is_some()
    }

    fn policy() -> Policy {
        Policy::new(Duration::from_secs(600), Duration::from_secs(2))
    }

    /// A request's choice: wait for keys while a fetch may bring them, never past its own
    /// limit, and not at all after a failed fetch until the retry is due.
    #[test]
    fn what_a_request_does_about_remote_keys() {
        use KeysFor::{Unavailable, Use, Wait};
        let p = policy();
        let first = Record::default();
        assert_eq!(keys_for(&first, false, false, 0, &p, false), Wait { refetch: false });
        assert_eq!(keys_for(&first, false, false, 0, &p, true), Unavailable, "waited its limit");
        let mut failed = Record::default();
        failed.fail(failed.claim, 0, "boom".into(), &p, 0);
        assert_eq!(keys_for(&failed, false, false, 1, &p, false), Unavailable, "nothing to wait for");
        assert_eq!(keys_for(&failed, false, false, failed.next_fetch_at, &p, false), Wait { refetch: false });

        let mut held = Record::default();
        held.succeed(held.claim, 0, "{}".into(), &p);
        assert_eq!(keys_for(&held, true, false, 1, &p, false), Use);
        assert_eq!(keys_for(&held, true, true, 1, &p, false), Wait { refetch: true }, "an unknown kid may refetch");
        assert_eq!(keys_for(&held, true, true, 1, &p, true), Use, "but not past the request's limit");
        held.begin(1, &p, true);
        assert_eq!(keys_for(&held, true, true, 2, &p, false), Wait { refetch: true }, "a refetch under way");
        held.in_flight_until = 0;
        assert_eq!(keys_for(&held, true, true, 3, &p, false), Use, "rate limited: decide with what there is");
        held.fail(held.claim, 3, "timeout".into(), &p, 0);
        assert_eq!(keys_for(&held, true, true, 4, &p, false), Unavailable, "the keys could not be refreshed: 503");
        assert_eq!(keys_for(&held, true, false, 4, &p, false), Use, "known kids are still decided");
    }

    #[test]
    fn record_keys_and_rediscovery() {
        use crate::config::Discovery;
        let source = |issuer: Option<&str>| RemoteJwks {
            uri: "https://idp/.well-known/openid-configuration".into(),
            discovery: issuer.map(|i| Discovery { issuer: i.into() }),
            authority: "idp".into(),
            path: "/.well-known/openid-configuration".into(),
            cluster: "idp".into(),
            timeout: Duration::from_secs(1),
            cache_duration: Duration::from_secs(600),
        };
        let (a, b) = (record_key(&source(Some("https://a"))), record_key(&source(Some("https://b"))));
        assert_ne!(a, b, "one document URL, two expected issuers: two records");
        assert_eq!(record_key(&source(None)), record_key(&source(None)));
        assert_ne!(record_key(&source(None)), a);

        let p = policy();
        let mut r = Record::default();
        assert_eq!(r.discovered_jwks_uri(true), None);
        assert!(r.discovered(r.claim, 0, "https://keys/jwks".into(), &p));
        assert_eq!(r.discovered_jwks_uri(true), Some("https://keys/jwks"), "a refetch goes straight to the keys");
        assert_eq!(r.discovered_jwks_uri(false), None, "a refresh reads the document again: the keys may have moved");
        r.fail(r.claim, 1, "404".into(), &p, 0);
        assert_eq!(r.discovered_jwks_uri(true), None, "after a failed fetch, discover again");
    }

    #[test]
    fn record_round_trips_and_foreign_bytes_start_afresh() {
        let full = Record {
            version: 3,
            jwks: Some("{\"keys\":[]}".into()),
            fetched_at: 1,
            next_fetch_at: u64::MAX,
            failures: 2,
            in_flight_until: 4,
            last_refetch_at: Some(5),
            completed: 6,
            last_error: Some("status 503 \"x\"".into()),
            jwks_uri: Some("https://idp/keys".into()),
            claim: 7,
        };
        for rec in [full, Record::default()] {
            assert_eq!(Record::decode(&rec.encode()), Some(rec));
        }
        for bad in [
            &b""[..],
            b"[]",
            b"{}",
            b"{\"version\":1}",
            br#"{"version":-1,"fetched_at":0,"next_fetch_at":0,"failures":0,"in_flight_until":0,"completed":0}"#,
        ] {
            assert_eq!(Record::decode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    /// A refetch asked for while the scheduled refresh is due is claimed as that refresh
    /// (so, with discovery, the document is read again) and spends no refetch budget.
    #[test]
    fn a_due_refresh_takes_a_refetchs_place() {
        let s = Store::default();
        let p = policy();
        let first = try_claim(&s, "k", 0, &p, true).unwrap();
        assert!(!first.refetch, "the first fetch is the scheduled one");
        update(&s, "k", |r| r.succeed(first.record.claim, 0, "{}".into(), &p));
        let refetch = try_claim(&s, "k", 1_000, &p, true).unwrap();
        assert!(refetch.refetch);
        assert_eq!(refetch.record.last_refetch_at, Some(1_000));
        update(&s, "k", |r| r.succeed(refetch.record.claim, 1_000, "{}".into(), &p));
        assert!(try_claim(&s, "k", 2_000, &p, true).is_none(), "rate limited");
        let due = try_claim(&s, "k", 541_000, &p, true).unwrap();
        assert!(!due.refetch, "the refresh was due: it is the fetch made");
        assert_eq!(due.record.last_refetch_at, Some(1_000), "no refetch budget spent");
    }

    #[test]
    fn a_cache_duration_beyond_the_staleness_bound_still_refreshes_in_time() {
        let p = Policy::new(Duration::from_secs(48 * 3600), Duration::from_secs(2));
        let mut rec = Record::default();
        rec.succeed(rec.claim, 0, "{}".into(), &p);
        let day = 24 * 3600 * 1000;
        assert!(rec.usable(day, &p) && !rec.usable(day + 1, &p));
        assert!(rec.due(day * 9 / 10, &p), "refreshed while the keys are still in use");
        assert!(!rec.due(day * 9 / 10 - 1, &p));
    }

    /// The refresh time stored by whoever fetched last does not hold a reader with a shorter
    /// `cache_duration` (a reloaded configuration, or a second provider of the same JWKS);
    /// a retry's backoff holds everyone.
    #[test]
    fn the_shortest_refresh_period_wins() {
        let (long, short) = (Policy::new(Duration::from_secs(3600), Duration::from_secs(2)), policy());
        let mut rec = Record::default();
        rec.succeed(rec.claim, 0, "{}".into(), &long);
        assert!(!rec.due(540_000 - 1, &short) && rec.due(540_000, &short), "600 s: refreshed at 540 s");
        assert!(!rec.due(540_000, &long) && rec.due(3_240_000, &long), "3600 s: refreshed at 3240 s");
        rec.succeed(rec.claim, 540_000, "{}".into(), &short);
        assert!(rec.due(1_080_000, &long), "a longer period is refreshed sooner when another asks");
        rec.fail(rec.claim, 1_080_000, "503".into(), &long, 0);
        assert!(!rec.due(1_080_000, &short), "backoff after a failure holds every reader");
        assert!(rec.due(rec.next_fetch_at, &short));
    }

    #[test]
    fn an_answer_after_another_claim_changes_nothing() {
        let s = Store::default();
        let p = policy();
        let a = try_claim(&s, "k", 0, &p, false).unwrap().record.claim;
        // A's call outlived its claim (2 s timeout + 1 s): B claims and fetches.
        let b = try_claim(&s, "k", 3_000, &p, false).unwrap().record.claim;
        assert_ne!(a, b);
        let before = load(&s, "k").0;
        // A's late failure neither ends B's claim nor records a failure.
        let rec = update(&s, "k", |r| r.fail(a, 3_500, "late".into(), &p, 0)).unwrap();
        assert_eq!(rec, before);
        assert!(!claim(&s, "k", 3_500, &p, false), "B's fetch is still under way");
        assert!(update(&s, "k", |r| r.succeed(b, 4_000, "{\"keys\":[1]}".into(), &p)).unwrap().usable(4_000, &p));
        // A's late success after B's: dropped, B's document stays.
        let rec = update(&s, "k", |r| r.succeed(a, 4_100, "{\"keys\":[2]}".into(), &p)).unwrap();
        assert_eq!(rec.jwks.as_deref(), Some("{\"keys\":[1]}"));
        assert_eq!((rec.version, rec.fetched_at), (1, 4_000));
    }

    #[test]
    fn discovery_extends_the_claim_for_the_second_call() {
        let s = Store::default();
        let p = policy();
        let a = try_claim(&s, "k", 0, &p, false).unwrap().record.claim;
        let rec = update(&s, "k", |r| r.discovered(a, 2_500, "https://idp/keys".into(), &p)).unwrap();
        assert_eq!((rec.in_flight_until, rec.jwks_uri.as_deref()), (5_500, Some("https://idp/keys")));
        assert!(!claim(&s, "k", 5_499, &p, false));
        // A claim that lost its place does not get it back.
        let b = try_claim(&s, "k", 5_500, &p, false).unwrap().record.claim;
        let rec = update(&s, "k", |r| r.discovered(a, 5_600, "https://elsewhere/keys".into(), &p)).unwrap();
        assert_eq!((rec.claim, rec.in_flight_until), (b, 8_500));
    }

    #[test]
    fn first_fetch_is_claimed_once() {
        let s = Store::default();
        let p = policy();
        assert!(claim(&s, "k", 1_000, &p, false));
        // A second worker, same moment: the fetch is in flight.
        assert!(!claim(&s, "k", 1_000, &p, false));
        assert!(!claim(&s, "k", 3_999, &p, false));
        // The claimant vanished: after timeout + 1s another may claim.
        assert!(claim(&s, "k", 4_000, &p, false));
    }

    #[test]
    fn success_schedules_refresh_before_expiry_and_versions_only_on_change() {
        let s = Store::default();
        let p = policy();
        assert!(claim(&s, "k", 0, &p, false));
        let rec = update(&s, "k", |r| {
            r.succeed(r.claim, 10, "{\"keys\":[1]}".into(), &p);
            true
        })
        .unwrap();
        assert_eq!((rec.version, rec.next_fetch_at, rec.completed), (1, 10 + 540_000, 1));
        assert!(!claim(&s, "k", 500_000, &p, false));
        assert!(claim(&s, "k", 540_010, &p, false));
        let rec = update(&s, "k", |r| {
            r.succeed(r.claim, 540_020, "{\"keys\":[1]}".into(), &p);
            true
        })
        .unwrap();
        assert_eq!(rec.version, 1, "same document: no re-parse anywhere");
        let rec = update(&s, "k", |r| {
            r.succeed(r.claim, 540_030, "{\"keys\":[2]}".into(), &p);
            true
        })
        .unwrap();
        assert_eq!(rec.version, 2);
    }

    #[test]
    fn failure_backs_off_exponentially_keeps_keys_until_max_staleness() {
        let p = policy();
        let mut r = Record::default();
        r.succeed(r.claim, 0, "{}".into(), &p);
        let mut delays = Vec::new();
        for i in 0..10 {
            r.fail(r.claim, 1_000 * i, "boom".into(), &p, 0);
            delays.push(r.next_fetch_at - 1_000 * i);
        }
        assert_eq!(delays, vec![500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000]);
        assert_eq!(r.jwks.as_deref(), Some("{}"));
        assert!(r.usable(p.max_staleness_ms, &p));
        assert!(!r.usable(p.max_staleness_ms + 1, &p));
        // Jitter spreads the second half of the delay.
        assert_eq!(p.backoff_ms(1, 999), 999);
        assert_eq!(p.backoff_ms(100, 500), 45_000);
        r.succeed(r.claim, 5, "{}".into(), &p);
        assert_eq!(r.failures, 0);

        // Without usable keys every protected request is refused: retried within 5 s, and
        // between a failure and its retry there is nothing to wait for.
        let mut r = Record::default();
        assert!(!r.failed_and_idle(0), "nothing failed yet");
        let mut delays = Vec::new();
        for i in 0..6 {
            r.fail(r.claim, 1_000 * i, "boom".into(), &p, 0);
            delays.push(r.next_fetch_at - 1_000 * i);
            assert!(r.failed_and_idle(1_000 * i));
            assert!(!r.failed_and_idle(r.next_fetch_at), "the retry is due");
        }
        assert_eq!(delays, vec![500, 1_000, 2_000, 4_000, 5_000, 5_000]);
        assert!(!Record::default().failed_and_idle(0), "before the first attempt: wait for it");
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited() {
        let s = Store::default();
        let p = policy();
        update(&s, "k", |r| {
            r.succeed(r.claim, 0, "{}".into(), &p);
            true
        });
        assert!(claim(&s, "k", 1_000, &p, true));
        assert!(!claim(&s, "k", 1_001, &p, true), "in flight");
        update(&s, "k", |r| {
            r.succeed(r.claim, 1_500, "{}".into(), &p);
            true
        });
        assert!(!claim(&s, "k", 30_999, &p, true), "rate limited");
        assert!(claim(&s, "k", 31_000, &p, true));
    }

    #[test]
    fn discovery_document_checks() {
        let doc = br#"{"issuer":"https://idp","jwks_uri":"https://idp/keys","other":1}"#;
        assert_eq!(parse_discovery(doc, "https://idp").unwrap(), "https://idp/keys");
        assert!(parse_discovery(doc, "https://idp/").unwrap_err().contains("names issuer"));
        assert!(parse_discovery(br#"{"issuer":"https://idp"}"#, "https://idp").unwrap_err().contains("no jwks_uri"));
        assert!(parse_discovery(br#"{"issuer":"https://idp","jwks_uri":"file:///x"}"#, "https://idp").is_err());
        assert!(parse_discovery(
            br#"{"issuer":"https://idp","issuer":"https://evil","jwks_uri":"https://x"}"#,
            "https://evil"
        )
        .is_err());
        assert!(parse_discovery(b"<html>", "https://idp").is_err());
    }

    #[test]
    fn garbage_in_shared_data_is_a_fresh_record() {
        let s = Store::default();
        s.set("k", b"not json", None);
        let (rec, cas) = load(&s, "k");
        assert_eq!(rec, Record::default());
        assert_eq!(cas, Some(1));
        assert!(claim(&s, "k", 0, &policy(), false));
    }
}
