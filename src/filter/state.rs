//! What every request of one VM shares: the configuration, keys, stats, in-flight JWKS
//! fetches and the requests paused while keys are fetched. Owned by the root context and
//! lent to HTTP contexts (single-threaded within a VM, hence `Rc`/`RefCell`).

use super::crypto::{Crypto, Path};
use super::keys::{self, ProviderKeys, Remote, RequestKeys};
use super::stats::Stats;
use crate::config::{split_uri, Config, ProviderId};
use crate::decision::{local_reply, mutations, Allowed, Authenticator, Verdict};
use crate::extract::{path_only, RequestView};
use crate::host::{self, HostRequest, HostStore};
use crate::jwks_cache::{self, MAX_JWKS_BYTES};
use crate::status::Rejection;
use crate::token_cache::TokenCache;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};
use std::cell::{Cell, RefCell};
use std::time::Duration;

pub struct Filter {
    pub config: Config,
    pub crypto: Crypto,
    pub stats: Stats,
    keys: Vec<RefCell<ProviderKeys>>,
    /// Verified-token cache per provider.
    caches: Vec<TokenCache>,
    /// Dispatched fetches of this VM.
    calls: RefCell<Vec<Call>>,
    waiters: RefCell<Vec<Waiter>>,
    /// Fetches requests asked for (provider, unknown-`kid` refetch), started by the root
    /// context on its next tick: dispatched calls belong to the root, so a fetch survives
    /// the request that wanted it.
    wanted: RefCell<Vec<(ProviderId, bool)>>,
    /// The tick period is shortened to [`PROMPT_TICK`] until that tick comes.
    prompt: Cell<bool>,
}

/// How often a VM looks at shared JWKS state: also how soon keys fetched by another worker
/// are picked up, how late past its deadline a waiting request may be answered, and how
/// late the request counters reach Envoy's stats.
pub const TICK: Duration = Duration::from_millis(200);
/// The tick that follows a request's need for keys, so the fetch starts at once.
pub const PROMPT_TICK: Duration = Duration::from_millis(1);

struct Call {
    token: u32,
    provider: ProviderId,
    stage: Stage,
    /// The shared record's claim this fetch runs under.
    claim: u64,
}

/// With OIDC discovery a fetch is two calls: the document, then the JWKS it names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Discovery,
    Jwks,
}

/// Which paused requests a tick or a fetch answer decides again.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Resume {
    All,
    Expired,
}

/// A request paused until keys arrive, or until `deadline_ms`.
struct Waiter {
    context_id: u32,
    deadline_ms: u64,
}

/// Whether a decision is a request's first or a paused request looked at again.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// From `on_http_request_headers`: keys it needs are fetched on a prompt tick.
    First,
    /// On a tick or a fetch's answer; `give_up` once its deadline has passed. It never
    /// shortens the tick: else every waiting request would be decided again, and shared data
    /// read, every millisecond until the keys come. A fetch it newly needs (an unknown `kid`
    /// once the first keys came) starts on the next regular tick.
    Again { give_up: bool },
}

/// What became of a request.
pub enum Step {
    Continue,
    Replied,
    /// Paused for keys of these providers.
    Wait(Vec<ProviderId>),
}

impl Filter {
    pub fn new(config: Config) -> Filter {
        let keys = keys::build(&config);
        let crypto = Crypto::detect();
        log::info!("jwt_authn_wasm: signature verification: {}", crypto.describe());
        let stats = Stats::define(&config);
        stats.crypto_path(crypto.path == Path::Host);
        let caches = config.providers.iter().map(|p| TokenCache::new(p.cache_size, p.cache_max_token_size)).collect();
        for (i, k) in keys.iter().enumerate() {
            match &mut *k.borrow_mut() {
                ProviderKeys::Local(set) => stats.keys_in_use(i, set.keys.len()),
                // Keys another VM (or this configuration's predecessor) already fetched: used
                // from the first request, which otherwise waits for the first tick.
                ProviderKeys::Remote(r) => {
                    r.sync(&HostStore);
                    stats.keys_in_use(i, r.usable_count(host::now_ms()));
                }
            }
        }
        Filter {
            config,
            crypto,
            stats,
            keys,
            caches,
            calls: RefCell::new(Vec::new()),
            waiters: RefCell::new(Vec::new()),
            wanted: RefCell::new(Vec::new()),
            prompt: Cell::new(false),
        }
    }

    /// Decides for the current (effective) request and applies the outcome.
    pub fn process(&self, context_id: u32, attempt: Attempt) -> Step {
        let now_ms = host::now_ms();
        let give_up = attempt == Attempt::Again { give_up: true };
        let keys = RequestKeys { keys: &self.keys, now_ms, give_up, refetch: RefCell::new(Vec::new()) };
        let auth = Authenticator {
            config: &self.config,
            caches: &self.caches,
            keys: &keys,
            crypto: &self.crypto,
            now: now_ms / 1000,
            facts: Default::default(),
        };
        let req = HostRequest::default();
        let mut verdict = auth.decide(&req);
        if let Some(refused) = req.refused() {
            // Decided without a header the host would not give: not to be applied.
            log::error!("jwt_authn_wasm: request {context_id}: {refused}");
            verdict = Verdict::Deny(Rejection::HostRefused);
        }
        // A request paused for keys is decided again when they come: its lookups count then.
        let pending = matches!(verdict, Verdict::Pending(_));
        for c in &self.caches {
            let (hits, misses) = c.take_counts();
            if !pending {
                self.stats.cache(hits, misses);
            }
        }
        let (by_host, by_rust) = self.crypto.take_counts();
        self.stats.verifications(by_host, by_rust);
        match verdict {
            Verdict::Allow(allowed) => match self.allow(&allowed, &req) {
                Ok(()) => Step::Continue,
                Err(refused) => {
                    // A token left in, or a client's identity header not replaced: the
                    // request must not reach the upstream.
                    log::error!("jwt_authn_wasm: request {context_id}: {refused}");
                    self.stats.denied(Rejection::HostRefused);
                    send_reply(Rejection::HostRefused, &req);
                    Step::Replied
                }
            },
            Verdict::Deny(r) => {
                // The path is read only when the line will be written.
                if log::log_enabled!(log::Level::Debug) {
                    let facts = auth.facts.take();
                    let path = req.header(":path").unwrap_or_default();
                    // Quoted and escaped (they come from the token), `-` when absent.
                    let quoted = |v: Option<String>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:?}"));
                    log::debug!(
                        "jwt_authn_wasm: request {context_id} to {:?} denied: {} (unverified sub {}, kid {})",
                        path_only(&path),
                        r.code(),
                        quoted(facts.sub),
                        quoted(facts.kid)
                    );
                }
                self.stats.denied(r);
                send_reply(r, &req);
                Step::Replied
            }
            Verdict::Pending(providers) => {
                let refetch = keys.refetch.take();
                let mut wanted = self.wanted.borrow_mut();
                for &p in &providers {
                    let r = refetch.contains(&p);
                    match wanted.iter_mut().find(|(q, _)| *q == p) {
                        Some(w) => w.1 |= r,
                        None => wanted.push((p, r)),
                    }
                }
                drop(wanted);
                if attempt == Attempt::First && !self.prompt.replace(true) {
                    set_tick(PROMPT_TICK);
                }
                Step::Wait(providers)
            }
        }
    }

    /// Pauses the current request until keys arrive or its wait limit passes.
    pub fn wait(&self, context_id: u32, providers: &[ProviderId]) {
        let timeout = self.wait_limit_ms(providers);
        let deadline_ms = host::now_ms().saturating_add(timeout);
        self.waiters.borrow_mut().push(Waiter { context_id, deadline_ms });
    }

    pub fn forget(&self, context_id: u32) {
        self.waiters.borrow_mut().retain(|w| w.context_id != context_id);
    }

    /// How long a request may wait for the keys of `providers`: the longest of their wait
    /// limits ([`Remote::wait_limit_ms`]), not of every provider's.
    fn wait_limit_ms(&self, providers: &[ProviderId]) -> u64 {
        providers
            .iter()
            .filter_map(|p| self.keys.get(p.index()))
            .filter_map(|k| match &*k.borrow() {
                ProviderKeys::Remote(r) => Some(r.wait_limit_ms()),
                ProviderKeys::Local(_) => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// Applies an allowed request's header changes; the first the host refuses stops it.
    fn allow(&self, allowed: &Allowed, req: &HostRequest) -> Result<(), host::Refused> {
        let m = mutations(&self.config, allowed, req);
        // The rewrite reads the cookie and query it edits: a refused read would drop them.
        if let Some(refused) = req.refused() {
            return Err(refused);
        }
        for name in &m.remove {
            host::set_request_header(name, None)?;
        }
        for (name, value) in &m.pin {
            host::set_request_header_bytes(name, Some(value))?;
        }
        if let Some(cookie) = &m.cookie {
            host::set_request_header_bytes("cookie", cookie.as_deref())?;
        }
        if let Some(path) = &m.path {
            host::set_request_header_bytes(":path", Some(path))?;
        }
        // Identity headers are ours alone, on every route: each is replaced by the value set
        // here (replacing drops every value the client sent) or removed. Only an allowed
        // request reaches the upstream, so this is the one place it has to happen.
        for name in &self.config.identity_headers {
            if !m.set.iter().any(|(set, _)| set == name) {
                host::set_request_header(name, None)?;
            }
        }
        for (name, value) in &m.set {
            host::set_request_header(name, Some(value))?;
        }
        for name in &m.unsafe_values {
            self.stats.identity_header_skipped();
            log::warn!(
                "jwt_authn_wasm: identity header {name} not set: claim value has control characters, is over 8 KiB, or is an array with a comma inside an element"
            );
        }
        self.stats.allowed();
        Ok(())
    }

    /// Starts a fetch for `provider` if shared data says this VM may: the scheduled one when
    /// due, or an unknown-`kid` refetch within the rate limit.
    fn kick(&self, provider: ProviderId, refetch: bool) {
        if self.calls.borrow().iter().any(|c| c.provider == provider) {
            return;
        }
        let Some(cell) = self.keys.get(provider.index()) else { return };
        let keys = cell.borrow();
        let ProviderKeys::Remote(r) = &*keys else { return };
        let now = host::now_ms();
        let Some(jwks_cache::Claimed { record, refetch }) =
            jwks_cache::try_claim(&HostStore, &r.key, now, &r.policy, refetch)
        else {
            return;
        };
        let claim = record.claim;
        let discovered = record.discovered_jwks_uri(refetch);
        match (&r.source.discovery, discovered) {
            (Some(_), None) => self.dispatch(provider, r, claim, Stage::Discovery, &r.source.authority, &r.source.path),
            (Some(_), Some(uri)) => match split_jwks_uri(uri) {
                Ok((authority, path)) => self.dispatch(provider, r, claim, Stage::Jwks, &authority, &path),
                Err(e) => self.record_failure(r, claim, now, e),
            },
            (None, _) => self.dispatch(provider, r, claim, Stage::Jwks, &r.source.authority, &r.source.path),
        }
        log::debug!("jwt_authn_wasm: provider {}: fetching keys (unknown-kid refetch: {refetch})", r.provider);
    }

    fn dispatch(&self, provider: ProviderId, r: &Remote, claim: u64, stage: Stage, authority: &str, path: &str) {
        let headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", authority),
            ("accept", "application/json"),
            ("user-agent", "jwt-authn-wasm"),
        ];
        match hostcalls::dispatch_http_call(&r.source.cluster, headers, None, vec![], r.source.timeout) {
            Ok(token) => self.calls.borrow_mut().push(Call { token, provider, stage, claim }),
            Err(status) => {
                let cluster = &r.source.cluster;
                // Envoy answers BadArgument to a call with method, path, host and a timeout
                // only when it has no such cluster.
                let reason = match status {
                    Status::BadArgument => {
                        format!("Envoy has no cluster named `{cluster}` (define it, or set the provider's `cluster`)")
                    }
                    _ => format!("dispatch to cluster {cluster} failed: {status:?}"),
                };
                self.record_failure(r, claim, host::now_ms(), reason);
            }
        }
    }

    fn record_failure(&self, r: &Remote, claim: u64, now: u64, reason: String) {
        let jitter = host::jitter();
        let applied =
            jwks_cache::update_if(&HostStore, &r.key, |rec| rec.fail(claim, now, reason.clone(), &r.policy, jitter));
        if applied.is_some() {
            log::warn!("jwt_authn_wasm: provider {}: JWKS fetch failed: {reason}", r.provider);
            self.stats.jwks_fetch_failed();
        } else {
            log::debug!("jwt_authn_wasm: provider {}: late fetch failure dropped ({reason})", r.provider);
        }
    }

    /// A dispatched call answered (or failed). Returns false if the token is not ours.
    pub fn on_http_call_response(&self, token: u32, num_headers: usize, body_size: usize) -> bool {
        let call = {
            let mut calls = self.calls.borrow_mut();
            let Some(i) = calls.iter().position(|c| c.token == token) else { return false };
            calls.swap_remove(i)
        };
        // A failed call (reset, no connection) has no response map at all: reading from it
        // makes the SDK panic, so only read what the host said is there.
        let status = if num_headers == 0 {
            None
        } else {
            hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
                .ok()
                .flatten()
                .and_then(|s| std::str::from_utf8(&s).ok().and_then(|s| s.parse::<u32>().ok()))
        };
        let body = if body_size == 0 || body_size > MAX_JWKS_BYTES {
            None
        } else {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size).ok().flatten()
        };
        if let Some(cell) = self.keys.get(call.provider.index()) {
            let mut keys = cell.borrow_mut();
            if let ProviderKeys::Remote(r) = &mut *keys {
                let now = host::now_ms();
                match call.stage {
                    Stage::Discovery => self.on_discovery(&call, r, now, status, body.as_deref()),
                    Stage::Jwks => match keys::validate_body(status, body_size, body.as_deref()) {
                        Ok(text) => {
                            let policy = r.policy;
                            let applied = jwks_cache::update_if(&HostStore, &r.key, |rec| {
                                rec.succeed(call.claim, now, text.clone(), &policy)
                            });
                            if applied.is_some() {
                                self.stats.jwks_fetch_ok();
                            } else {
                                log::debug!("jwt_authn_wasm: provider {}: late JWKS answer dropped", r.provider);
                            }
                        }
                        Err(reason) => self.record_failure(r, call.claim, now, reason),
                    },
                }
                self.sync(call.provider, r, now);
            }
        }
        self.resume_waiters(Resume::All);
        true
    }

    /// The discovery document arrived: remember its `jwks_uri` and fetch that, still under
    /// the same claim.
    fn on_discovery(&self, call: &Call, r: &Remote, now: u64, status: Option<u32>, body: Option<&[u8]>) {
        let Some(discovery) = &r.source.discovery else { return };
        let uri = keys::answered(status, body)
            .map_err(|e| format!("discovery: {e}"))
            .and_then(|doc| jwks_cache::parse_discovery(doc, &discovery.issuer));
        let target = uri
            .and_then(|uri| {
                let parts = split_jwks_uri(&uri)?;
                Ok((uri, parts))
            })
            .or_else(|reason| {
                // The document could not be read or used, but the JWKS it named last may still
                // answer: a discovery outage alone must not stop refreshes (and if the keys
                // moved away from it, that fetch fails too). Counted, as a failed call.
                let (stored, _) = jwks_cache::load(&HostStore, &r.key);
                let uri = stored.jwks_uri.ok_or_else(|| reason.clone())?;
                let parts = split_jwks_uri(&uri).map_err(|_| reason.clone())?;
                log::warn!("jwt_authn_wasm: provider {}: {reason}; fetching the jwks_uri it named before", r.provider);
                self.stats.jwks_fetch_failed();
                Ok((uri, parts))
            });
        match target {
            Ok((uri, (authority, path))) => {
                let ours = jwks_cache::update_if(&HostStore, &r.key, |rec| {
                    rec.discovered(call.claim, now, uri.clone(), &r.policy)
                });
                // Another VM claimed meanwhile: its fetch stands, this one ends here.
                if ours.is_some() {
                    self.dispatch(call.provider, r, call.claim, Stage::Jwks, &authority, &path);
                }
            }
            Err(reason) => self.record_failure(r, call.claim, now, reason),
        }
    }

    /// Background work: hand the request counters to Envoy, pick up keys other workers
    /// fetched, start due refreshes, resume or time out paused requests.
    pub fn on_tick(&self) {
        self.stats.flush();
        if self.prompt.replace(false) {
            set_tick(TICK);
        }
        for (p, refetch) in self.wanted.take() {
            self.kick(p, refetch);
        }
        let now = host::now_ms();
        let mut due = Vec::new();
        let mut settled = false;
        for ((id, _), cell) in self.config.provider_ids().zip(&self.keys) {
            if let ProviderKeys::Remote(r) = &mut *cell.borrow_mut() {
                let synced = self.sync(id, r, now);
                settled |= synced.record;
                if r.record.due(now, &r.policy) {
                    due.push(id);
                }
            }
        }
        for p in due {
            self.kick(p, false);
        }
        self.resume_waiters(if settled { Resume::All } else { Resume::Expired });
    }

    /// Re-reads a remote provider's shared record. New keys: tokens verified with the old
    /// ones are verified again. The gauge follows the usable keys (none once past the
    /// staleness bound, though still held).
    fn sync(&self, provider: ProviderId, r: &mut Remote, now: u64) -> keys::Synced {
        let synced = r.sync(&HostStore);
        if synced.keys {
            if let Some(c) = self.caches.get(provider.index()) {
                c.clear();
            }
        }
        self.stats.keys_in_use(provider.index(), r.usable_count(now));
        synced
    }

    /// Decides paused requests again. Only when something they wait on may have changed
    /// ([`Resume::All`]) is each one decided again; otherwise only those past their deadline
    /// are (to give up), so that a stream of waiting requests, each making the next tick
    /// come early, does not re-decide all the others on every tick.
    fn resume_waiters(&self, which: Resume) {
        let waiting = self.waiters.take();
        if waiting.is_empty() {
            return;
        }
        let now = host::now_ms();
        let mut still = Vec::new();
        for w in waiting {
            if which == Resume::Expired && now < w.deadline_ms {
                still.push(w);
                continue;
            }
            // The client may have gone away meanwhile.
            if hostcalls::set_effective_context(w.context_id).is_err() {
                continue;
            }
            match self.process(w.context_id, Attempt::Again { give_up: now >= w.deadline_ms }) {
                Step::Continue => {
                    if let Err(refused) = host::resume_request() {
                        log::error!("jwt_authn_wasm: request {}: {refused}", w.context_id);
                        reset_or_log();
                    }
                }
                Step::Replied => {}
                Step::Wait(_) => still.push(w),
            }
        }
        self.waiters.borrow_mut().extend(still);
    }
}

fn set_tick(period: Duration) {
    if let Err(status) = hostcalls::set_tick_period(period) {
        log::error!("jwt_authn_wasm: could not set the tick period: {status:?}");
    }
}

/// The `jwks_uri` a discovery document named, as authority and path. Its errors describe
/// the remote document, not the configuration.
fn split_jwks_uri(uri: &str) -> Result<(String, String), String> {
    split_uri("jwks_uri", uri).map_err(|e| format!("discovered jwks_uri {uri:?}: {}", e.reason))
}

/// Sends the local reply for `rejection` on the current request.
pub fn send_reply(rejection: Rejection, req: &HostRequest) {
    let reply = local_reply(rejection, req);
    if let Err(refused) = host::send_local_response(reply.status, &reply.headers, reply.body.as_bytes()) {
        log::error!("jwt_authn_wasm: could not send the local reply: {refused}");
        reset_or_log();
    }
}

/// A request that can be neither answered nor resumed is reset, not left paused.
fn reset_or_log() {
    if let Err(refused) = host::reset_request() {
        log::error!("jwt_authn_wasm: could not reset the request either: {refused}");
    }
}
