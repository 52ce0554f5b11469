//! The authenticator: given a request, the keys and the time, decide. Pure: it reads the
//! request through [`RequestView`], keys through [`KeySource`], verifies through a
//! [`SignatureVerifier`], and returns a [`Verdict`] plus the header changes that go with it.
//!
//! Order per token (RFC 8725): size, structure and the `alg` allow-list, then key
//! selection, then the signature, and only then the claims.

use crate::authz::{authorize, TenantHeader};
use crate::claims::{self, ClaimPolicy};
use crate::config::{Config, Provider, ProviderId};
use crate::crypto::SignatureVerifier;
use crate::extract::{self, Found, Location, RequestView};
use crate::identity::{self, Skip};
use crate::jwk::JwkSet;
use crate::jws::{self, Jws, Limits};
use crate::rules::{is_cors_preflight, select_rules, Requirement};
use crate::status::Rejection;
use crate::token_cache::{Entry, TokenCache};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::rc::Rc;

/// Most keys tried for one token: a token without `kid` against a JWKS of many keys of the
/// same type must not turn into many RSA operations.
pub const MAX_KEYS_TRIED: usize = 4;

/// What the key store can say about a provider's keys.
pub enum KeyLookup {
    Ready(Rc<JwkSet>),
    /// Not yet available (first fetch, or a refetch for an unknown `kid` under way): wait.
    Pending,
    /// Could not be obtained in time.
    Unavailable,
}

pub trait KeySource {
    /// Keys of `provider` for a token with this `kid`. A remote source answers `Pending`
    /// when it is fetching, including a refetch it starts because `kid` is unknown.
    fn lookup(&self, provider: ProviderId, kid: Option<&str>) -> KeyLookup;
}

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub provider: ProviderId,
    /// Where this provider's tokens were found (all of them verified; the claims are the
    /// first one's).
    pub locations: Vec<Location>,
    /// Its claims and payload, shared with the verified-token cache.
    pub token: Entry,
    /// Tenant headers its authorization read, sent upstream as the values authorized.
    pub tenant_headers: Vec<TenantHeader>,
}

impl Verified {
    fn new(provider: ProviderId, location: Location, token: Entry) -> Verified {
        Verified { provider, locations: vec![location], token, tenant_headers: Vec::new() }
    }

    /// `sub`.
    #[cfg(test)]
    pub fn subject(&self) -> Option<&str> {
        self.token.claims.get("sub").and_then(Value::as_str)
    }
}

#[derive(Debug)]
pub enum Verdict {
    Allow(Allowed),
    Deny(Rejection),
    /// Keys of these providers are being fetched; decide again when they arrive.
    Pending(Vec<ProviderId>),
}

/// Why a request may go on.
#[derive(Debug)]
pub enum Allowed {
    /// A CORS preflight let through by `bypass_cors_preflight`: no token was looked at.
    Preflight,
    /// The rules that applied (indices into [`Config::rules`]; none on a public route) were
    /// met by these tokens (none when no token was required).
    Checked { verified: Vec<Verified>, rules: Vec<usize> },
}

impl Allowed {
    /// The tokens that verified.
    pub fn verified(&self) -> &[Verified] {
        match self {
            Allowed::Preflight => &[],
            Allowed::Checked { verified, .. } => verified,
        }
    }
}

/// What a log line may say about the last token looked at: never the token itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFacts {
    pub kid: Option<String>,
    /// From the payload; not yet verified if the failure came before the signature.
    pub sub: Option<String>,
}

pub struct Authenticator<'a> {
    pub config: &'a Config,
    /// Verified-token caches by provider index; empty for none.
    pub caches: &'a [TokenCache],
    pub keys: &'a dyn KeySource,
    pub crypto: &'a dyn SignatureVerifier,
    /// Unix time in seconds.
    pub now: u64,
    /// Facts about the last token examined, for the denial log.
    pub facts: RefCell<TokenFacts>,
}

enum Outcome {
    Ok(Vec<Verified>),
    Fail(Rejection),
    Pending(Vec<ProviderId>),
}

impl<'a> Authenticator<'a> {
    /// An authenticator without a token cache.
    pub fn new(config: &'a Config, keys: &'a dyn KeySource, crypto: &'a dyn SignatureVerifier, now: u64) -> Self {
        Authenticator { config, caches: &[], keys, crypto, now, facts: RefCell::default() }
    }

    pub fn decide(&self, req: &dyn RequestView) -> Verdict {
        if self.config.bypass_cors_preflight && is_cors_preflight(req) {
            return Verdict::Allow(Allowed::Preflight);
        }
        let path = req.header(":path");
        let rules = select_rules(&self.config.rules, path.as_deref().unwrap_or_default(), req);
        // No `:path` (CONNECT, where a listener allows it): only a rule that matches the empty
        // path covers it (`prefix: ""`). With none, a filter that protects anything refuses
        // it rather than let it by, as jwt_authn would (its `connect_matcher` is not offered).
        if rules.is_empty() && path.is_none() && self.config.rules.iter().any(|r| r.requirement.is_some()) {
            return Verdict::Deny(Rejection::TokenMissing);
        }
        // Usually one rule; more only under a method override (see `select_rules`), when
        // each one's requirement must be met, as in `requires_all`.
        let mut all = AllOf::default();
        let mut applied = Vec::with_capacity(1);
        for i in rules {
            let Some(requirement) = self.config.rules.get(i).and_then(|r| r.requirement.as_ref()) else {
                continue;
            };
            if let Err(r) = all.add(self.eval(requirement, req)) {
                return Verdict::Deny(r);
            }
            applied.push(i);
        }
        match all.finish() {
            Outcome::Pending(p) => Verdict::Pending(p),
            Outcome::Fail(r) => Verdict::Deny(r),
            Outcome::Ok(verified) => Verdict::Allow(Allowed::Checked { verified, rules: applied }),
        }
    }

    fn eval(&self, requirement: &Requirement, req: &dyn RequestView) -> Outcome {
        match requirement {
            Requirement::Provider { provider, audiences } => {
                let Some(p) = self.config.provider(*provider) else {
                    return Outcome::Fail(Rejection::KeyNotFound);
                };
                let found = extract::extract_all(&p.locations, req);
                if found.is_empty() {
                    return Outcome::Fail(Rejection::TokenMissing);
                }
                self.verify_each(found, |_| Ok((*provider, p)), audiences.as_deref())
            }
            Requirement::Any(list) => self.any(list, req),
            Requirement::All(list) => {
                let mut all = AllOf::default();
                for r in list {
                    if let Err(e) = all.add(self.eval(r, req)) {
                        return Outcome::Fail(e);
                    }
                }
                all.finish()
            }
            Requirement::Authorized(inner, authz) => match self.eval(inner, req) {
                // Anonymous requests cannot be authorized: no token is a 401, not a 403.
                Outcome::Ok(verified) if verified.is_empty() => Outcome::Fail(Rejection::TokenMissing),
                Outcome::Ok(mut verified) => {
                    let mut refusal = Some(Rejection::TokenMissing);
                    for v in &mut verified {
                        match authorize(authz, &v.token.claims, req) {
                            Ok(pin) => {
                                v.tenant_headers.extend(pin);
                                refusal = None;
                                break;
                            }
                            Err(e) => refusal = Some(e),
                        }
                    }
                    match refusal {
                        None => Outcome::Ok(verified),
                        Some(e) => Outcome::Fail(e),
                    }
                }
                other => other,
            },
            Requirement::AllowMissing => self.any_issuer(req),
            Requirement::AllowMissingOrFailed => match self.any_issuer(req) {
                Outcome::Fail(_) => Outcome::Ok(Vec::new()),
                other => other,
            },
        }
    }

    /// `requires_any`. As in jwt_authn, `allow_missing` and `allow_missing_or_failed` among
    /// the alternatives are not alternatives themselves but say when the list may pass
    /// without a token: when every other alternative found none (`allow_missing`), or
    /// whatever they found (`allow_missing_or_failed`). So no provider outside the list is
    /// consulted, and a token that fails an alternative (a missing role included) is not
    /// let through by the bypass. Alone in the list, they mean what they mean on their own.
    fn any(&self, list: &[Requirement], req: &dyn RequestView) -> Outcome {
        let or_failed = list.iter().any(|r| matches!(r, Requirement::AllowMissingOrFailed));
        let missing = or_failed || list.iter().any(|r| matches!(r, Requirement::AllowMissing));
        let regular = || list.iter().filter(|r| !r.is_bypass());
        if regular().next().is_none() {
            let alone = if or_failed { Requirement::AllowMissingOrFailed } else { Requirement::AllowMissing };
            return if missing { self.eval(&alone, req) } else { Outcome::Fail(Rejection::TokenMissing) };
        }
        let mut failure: Option<Rejection> = None;
        let mut pending = Vec::new();
        for r in regular() {
            match self.eval(r, req) {
                ok @ Outcome::Ok(_) => return ok,
                Outcome::Pending(p) => pending.extend(p),
                Outcome::Fail(e) => failure = Some(worse(failure, e)),
            }
        }
        // Waiting may still turn into a success; a known failure cannot.
        if !pending.is_empty() {
            return Outcome::Pending(pending);
        }
        match failure {
            _ if or_failed => Outcome::Ok(Vec::new()),
            // `worse` ranks every real failure above a missing token.
            Some(Rejection::TokenMissing) | None if missing => Outcome::Ok(Vec::new()),
            f => Outcome::Fail(f.unwrap_or(Rejection::TokenMissing)),
        }
    }

    /// jwt_authn's allow_missing on its own: every token in any provider's locations,
    /// each verified by the provider whose `issuer` its (unverified) `iss` names — an exact
    /// issuer first, then a provider without one, as jwt_authn picks; no token at all passes.
    fn any_issuer(&self, req: &dyn RequestView) -> Outcome {
        let found = extract::extract_all(&self.config.all_locations, req);
        if found.is_empty() {
            return Outcome::Ok(Vec::new());
        }
        let limits = self.limits();
        self.verify_each(
            found,
            |f| {
                // What the token says is the same in any provider's cache (they hold verified
                // tokens by their exact text): a cached one need not be parsed to be placed.
                let claims = match self.caches.iter().find_map(|c| c.peek(&f.token)) {
                    Some(entry) => entry.claims.clone(),
                    None => Rc::new(jws::parse(&f.token, &limits)?.claims),
                };
                let iss = claims.get("iss").and_then(Value::as_str);
                let reads = |p: &&Provider| p.locations.contains(&f.location);
                let exact = self
                    .config
                    .provider_ids()
                    .find(|(_, p)| reads(p) && iss.is_some_and(|i| p.issuers.iter().any(|x| x == i)));
                exact
                    .or_else(|| self.config.provider_ids().find(|(_, p)| reads(p) && p.issuers.is_empty()))
                    .ok_or(Rejection::IssuerNotAllowed)
            },
            None,
        )
    }

    /// Verifies every token found; all must pass (jwt_authn: a good token beside a bad one
    /// must not let the request through, as the upstream may read the bad one). A token
    /// seen twice for the same provider is verified once.
    fn verify_each<'p>(
        &self,
        found: Vec<Found>,
        provider_of: impl Fn(&Found) -> Result<(ProviderId, &'p Provider), Rejection>,
        audiences: Option<&[String]>,
    ) -> Outcome {
        let mut all = AllOf::default();
        for (i, f) in found.iter().enumerate() {
            let (id, p) = match provider_of(f) {
                Ok(chosen) => chosen,
                Err(e) => return Outcome::Fail(e),
            };
            // A token seen before and verified for this provider: only its place is new.
            let seen = found.get(..i).unwrap_or_default().iter().any(|g| g.token == f.token);
            if seen && all.also_at(id, &f.location) {
                continue;
            }
            if let Err(e) = all.add(self.verify(id, p, f, audiences)) {
                return Outcome::Fail(e);
            }
        }
        all.finish()
    }

    fn note(&self, kid: Option<String>, claims: &Map<String, Value>) {
        let sub = claims.get("sub").and_then(Value::as_str).map(|s| s.chars().take(128).collect());
        if let Ok(mut f) = self.facts.try_borrow_mut() {
            *f = TokenFacts { kid, sub };
        }
    }

    fn limits(&self) -> Limits {
        Limits { max_token_size: self.config.max_token_size, max_json_depth: self.config.max_json_depth }
    }

    fn verify(&self, id: ProviderId, p: &Provider, found: &Found, audiences: Option<&[String]>) -> Outcome {
        let policy = ClaimPolicy::for_provider(p, audiences);
        let cache = self.caches.get(id.index());
        // A hit skips parsing and the signature, never the claims; and it is used only while
        // the provider has usable keys (the cache is cleared whenever they change).
        if let Some(hit) = cache.and_then(|c| c.get(&found.token)) {
            if matches!(self.keys.lookup(id, None), KeyLookup::Ready(_)) {
                self.note(None, &hit.claims);
                return match claims::validate(&hit.claims, &policy, self.now) {
                    Ok(()) => Outcome::Ok(vec![Verified::new(id, found.location.clone(), hit)]),
                    Err(e) => {
                        // Expired for good; any other failure here is this route's
                        // audiences, and the token stays good for the others.
                        if let (Some(c), Rejection::Expired) = (cache, e) {
                            c.remove(&found.token);
                        }
                        Outcome::Fail(e)
                    }
                };
            }
        }
        let limits = self.limits();
        let jwt = match jws::parse(&found.token, &limits) {
            Ok(jwt) => jwt,
            Err(e) => return Outcome::Fail(e),
        };
        self.note(jwt.jws.header.kid.clone(), &jwt.claims);
        let set = match self.keys.lookup(id, jwt.jws.header.kid.as_deref()) {
            KeyLookup::Ready(set) => set,
            KeyLookup::Pending => return Outcome::Pending(vec![id]),
            KeyLookup::Unavailable => return Outcome::Fail(Rejection::JwksUnavailable),
        };
        if let Err(e) = verify_signature(&jwt.jws, &set, self.crypto) {
            return Outcome::Fail(e);
        }
        if let Err(e) = claims::validate(&jwt.claims, &policy, self.now) {
            return Outcome::Fail(e);
        }
        let entry = Entry::of(jwt);
        if let Some(c) = cache {
            c.insert(&found.token, entry.clone());
        }
        Outcome::Ok(vec![Verified::new(id, found.location.clone(), entry)])
    }
}

/// Checks the signature of a parsed token against the keys that fit its `kid` and `alg`
/// (at most [`MAX_KEYS_TRIED`] of them).
pub fn verify_signature(jws: &Jws<'_>, set: &JwkSet, crypto: &dyn SignatureVerifier) -> Result<(), Rejection> {
    let mut tried = 0usize;
    for jwk in set.candidates(jws.header.kid.as_deref(), jws.header.alg).take(MAX_KEYS_TRIED) {
        tried = tried.saturating_add(1);
        if crypto.verify(jws.header.alg, jwk, jws.signing_input.as_bytes(), &jws.signature).is_ok() {
            return Ok(());
        }
    }
    Err(if tried == 0 { Rejection::KeyNotFound } else { Rejection::SignatureInvalid })
}

/// Outcomes that must all pass (`requires_all`, every token found, every rule that
/// applies): the first failure ends it; else the providers still awaited, or what verified,
/// one entry per provider.
#[derive(Default)]
struct AllOf {
    verified: Vec<Verified>,
    pending: Vec<ProviderId>,
}

impl AllOf {
    /// Takes one outcome in; a failure is handed back for the caller to end on.
    fn add(&mut self, outcome: Outcome) -> Result<(), Rejection> {
        match outcome {
            Outcome::Fail(e) => return Err(e),
            Outcome::Pending(p) => self.pending.extend(p),
            Outcome::Ok(verified) => {
                for v in verified {
                    match self.verified.iter_mut().find(|w| w.provider == v.provider) {
                        Some(w) => {
                            v.locations.into_iter().for_each(|l| push_once(&mut w.locations, l));
                            w.tenant_headers.extend(v.tenant_headers);
                        }
                        None => self.verified.push(v),
                    }
                }
            }
        }
        Ok(())
    }

    /// Records that `provider`'s verified token was also found at `location`; false if
    /// nothing of that provider verified yet.
    fn also_at(&mut self, provider: ProviderId, location: &Location) -> bool {
        let Some(w) = self.verified.iter_mut().find(|w| w.provider == provider) else { return false };
        push_once(&mut w.locations, location.clone());
        true
    }

    fn finish(self) -> Outcome {
        if self.pending.is_empty() {
            Outcome::Ok(self.verified)
        } else {
            Outcome::Pending(self.pending)
        }
    }
}

fn push_once(locations: &mut Vec<Location>, location: Location) {
    if !locations.contains(&location) {
        locations.push(location);
    }
}

fn worse(current: Option<Rejection>, new: Rejection) -> Rejection {
    match current {
        Some(c) if c.priority() >= new.priority() => c,
        _ => new,
    }
}

/// Request changes that follow an allowed decision.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mutations {
    /// Headers to set, replacing every value the client sent: identity headers, and tenant
    /// headers as authorized.
    pub set: Vec<(String, String)>,
    /// Headers to remove (tokens not forwarded).
    pub remove: Vec<String>,
    /// New `Cookie` header: `Some(None)` removes it.
    pub cookie: Option<Option<Vec<u8>>>,
    /// New `:path` without a consumed query parameter.
    pub path: Option<Vec<u8>>,
    /// Token headers set to the one value the filter read (see [`crate::rules::Rule::token_headers`]).
    pub pin: Vec<(String, Vec<u8>)>,
    /// Identity headers left unset because the claim value was unsafe.
    pub unsafe_values: Vec<String>,
}

impl Mutations {
    /// Sets `name` unless an earlier token (or rule) already did: the first one found
    /// gives the identity headers, whichever providers and rules verified more.
    fn set_once(&mut self, name: &str, value: String) {
        if !self.set.iter().any(|(n, _)| n == name) {
            self.set.push((name.to_owned(), value));
        }
    }
}

/// The header changes for an allowed request.
pub fn mutations(config: &Config, allowed: &Allowed, req: &dyn RequestView) -> Mutations {
    let mut m = Mutations::default();
    let (verified, rules) = match allowed {
        Allowed::Checked { verified, rules } => (verified, rules),
        // A preflight carries no credentials from a browser: whatever is where tokens are
        // read was never checked, and must not reach the upstream as if it had been.
        Allowed::Preflight => {
            for found in extract::extract_all(&config.all_locations, req) {
                take_out(&mut m, &found.location, req);
            }
            pin(&mut m, config.all_locations.iter().filter_map(Location::header), req);
            return m;
        }
    };
    for v in verified {
        let Some(p) = config.provider(v.provider) else { continue };
        for c in &p.claim_to_headers {
            match identity::claim_header_value(&v.token.claims, &c.claim) {
                Ok(value) => m.set_once(&c.header, value),
                Err(Skip::Unsafe) => m.unsafe_values.push(c.header.clone()),
                Err(Skip::Absent) => {}
            }
        }
        if let Some(h) = &p.forward_payload_header {
            let mut value = v.token.payload_b64.to_string();
            if p.pad_forward_payload_header {
                value.push_str(match value.len() % 4 {
                    2 => "==",
                    3 => "=",
                    _ => "",
                });
            }
            m.set_once(h, value);
        }
        for t in &v.tenant_headers {
            m.set_once(&t.name, t.value.clone());
        }
        if !p.forward {
            for location in &v.locations {
                take_out(&mut m, location, req);
            }
        }
    }
    let rules = rules.iter().filter_map(|&i| config.rules.get(i));
    pin(&mut m, rules.flat_map(|r| &r.token_headers).map(String::as_str), req);
    m
}

/// Leaves each of these token headers holding the one value the filter read (see
/// [`crate::rules::Rule::token_headers`]), unless it is removed or rewritten already.
fn pin<'n>(m: &mut Mutations, names: impl Iterator<Item = &'n str>, req: &dyn RequestView) {
    for name in names {
        if m.remove.iter().any(|r| r == name) || m.pin.iter().any(|(n, _)| n == name) {
            continue;
        }
        if name == "cookie" {
            if m.cookie.is_none() {
                m.cookie = req.header_bytes(name).map(Some);
            }
        } else if let Some(value) = req.header_bytes(name) {
            m.pin.push((name.to_owned(), value));
        }
    }
}

/// Takes the tokens at `location` out of the request: the header, the cookies or the query
/// parameters of that name, each change starting from the previous one.
fn take_out(m: &mut Mutations, location: &Location, req: &dyn RequestView) {
    match location {
        Location::Header { name, .. } => {
            if !m.remove.contains(name) {
                m.remove.push(name.clone());
            }
        }
        Location::Cookie(name) => {
            let current = match &m.cookie {
                Some(c) => c.clone(),
                None => req.header_bytes("cookie"),
            };
            m.cookie = Some(current.and_then(|c| extract::remove_cookie(&c, name)));
        }
        Location::Param(name) => {
            let current = m.path.clone().or_else(|| req.header_bytes(":path")).unwrap_or_default();
            m.path = Some(extract::remove_param(&current, name));
        }
    }
}

/// A local reply in the style of jwt_authn and RFC 6750.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// The reply for `rejection`: a JSON body with a stable `code`, and for 401/403 a
/// `WWW-Authenticate: Bearer realm="<scheme>://<host><path>"` challenge. The realm leaves out
/// the query string, which may hold the token itself.
pub fn local_reply(rejection: Rejection, req: &dyn RequestView) -> LocalReply {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if rejection.challenges() {
        let scheme = req.header(":scheme").unwrap_or_else(|| "http".to_owned());
        let host = req.header(":authority").unwrap_or_default();
        let path = req.header(":path").unwrap_or_default();
        let realm = quoted_safe(&format!("{scheme}://{host}{}", extract::path_only(&path)));
        let mut challenge = format!("Bearer realm=\"{realm}\"");
        if let Some(error) = rejection.bearer_error() {
            challenge.push_str(&format!(", error=\"{error}\""));
        }
        headers.push(("www-authenticate".to_owned(), challenge));
    }
    // Codes and messages are fixed ASCII without quotes or backslashes (tested in `status`),
    // so the body needs no JSON encoder.
    let body = format!(r#"{{"code":"{}","message":"{}"}}"#, rejection.code(), rejection.message());
    LocalReply { status: rejection.http_status(), headers, body }
}

/// Drops what could end the quoted-string or the header: quotes, backslashes, controls.
fn quoted_safe(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() && *c != '"' && *c != '\\').take(512).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::VerifyError;
    use crate::jwk::{Alg, Jwk};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::json;
    use std::cell::Cell;
    use std::collections::HashMap;

    const NOW: u64 = 1_700_000_000;
    const RSA_N: &str = "tLPtDisqC0on7MmXqQvf44m9Ied-UyPHiQNmkb5zSiKaW7RiloChvLnXHib5XUzNVMUCBmIIKGPgD4WImr6D5QtMwKiVQTwYVTDaMUzYkK3yvCmR_BHP7My5t_F2miYZjRbRfuROc147iMTQh84XsNCmBfcipMKH_x4jLF7AoxDNbbnw1N-QKKdORnYUzvD36Ivxl8iMiIjBoI1vWnsxU32otVXS6b3OWuT0tuuNMaUa6Q37XIuGizJt8P4r8jzbUyutmVD5i7BDgXFUj4HpZH9LdIjRRj-Av6oFg_Y6n60pelz3OjKjznoUaCtLaHkzl99Qg0Emwn1X-EjnDHay8w";
    const EC_X: &str = "9xpFevF_hENe2nh_0U40c7bgbRZiY1WsZf_B3xv5udw";
    const EC_Y: &str = "rl7VLs1TeNmRNnFNFc_ik_1oxXgJqCu07zs9dbZnkz0";

    /// Accepts exactly the signature `ok` from a key that fits the algorithm; the real
    /// primitives are tested in `crypto` and against Wycheproof.
    struct FakeCrypto {
        calls: Cell<usize>,
    }
    impl SignatureVerifier for FakeCrypto {
        fn verify(&self, alg: Alg, key: &Jwk, _: &[u8], sig: &[u8]) -> Result<(), VerifyError> {
            self.calls.set(self.calls.get() + 1);
            if !key.key.supports(alg) {
                return Err(VerifyError::KeyMismatch);
            }
            if sig == b"ok" {
                Ok(())
            } else {
                Err(VerifyError::BadSignature)
            }
        }
    }

    struct Keys<'a>(&'a Config, KeyMode);
    #[derive(Clone, Copy)]
    enum KeyMode {
        Ready,
        Pending,
        Unavailable,
    }
    impl KeySource for Keys<'_> {
        fn lookup(&self, provider: ProviderId, _kid: Option<&str>) -> KeyLookup {
            match (self.1, &self.0.provider(provider).unwrap().jwks) {
                (KeyMode::Ready, crate::config::JwksSource::Local(set)) => KeyLookup::Ready(set.clone()),
                (KeyMode::Pending, _) => KeyLookup::Pending,
                _ => KeyLookup::Unavailable,
            }
        }
    }

    struct Req(HashMap<String, String>);
    impl RequestView for Req {
        fn header(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }
    fn req(path: &str, extra: &[(&str, &str)]) -> Req {
        let mut m: HashMap<String, String> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        m.insert(":path".into(), path.into());
        m.insert(":method".into(), m.get(":method").cloned().unwrap_or_else(|| "GET".into()));
        m.insert(":authority".into(), "api.example.com".into());
        m.insert(":scheme".into(), "https".into());
        Req(m)
    }

    fn jwks() -> String {
        json!({"keys": [
            {"kty": "RSA", "kid": "k1", "n": RSA_N, "e": "AQAB", "alg": "RS256", "use": "sig"},
            {"kty": "EC", "kid": "e1", "crv": "P-256", "x": EC_X, "y": EC_Y}
        ]})
        .to_string()
    }

    fn config(rules: serde_json::Value, provider_extra: serde_json::Value) -> Config {
        let mut provider = json!({
            "issuer": "https://idp.example.com",
            "audiences": ["api"],
            "local_jwks": {"inline_string": jwks()},
            "claim_to_headers": [{"header_name": "x-user", "claim_name": "sub"}]
        });
        for (k, v) in provider_extra.as_object().unwrap() {
            provider[k] = v.clone();
        }
        let other = json!({
            "issuer": "https://other.example.com",
            "local_jwks": {"inline_string": jwks()},
            "from_headers": [{"name": "x-other-token"}]
        });
        let cfg =
            json!({"providers": {"main": provider, "other": other}, "rules": rules, "bypass_cors_preflight": true});
        Config::parse(cfg.to_string().as_bytes()).unwrap()
    }
    fn main_rules() -> serde_json::Value {
        json!([
            {"match": {"path": "/healthz"}},
            {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}
        ])
    }

    fn token(header: serde_json::Value, claims: serde_json::Value, sig: &[u8]) -> String {
        let e = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.{}", e(&header), e(&claims), URL_SAFE_NO_PAD.encode(sig))
    }
    fn claims() -> serde_json::Value {
        json!({"iss": "https://idp.example.com", "aud": "api", "sub": "user-1", "exp": NOW + 600, "iat": NOW})
    }
    fn good() -> String {
        token(json!({"alg": "RS256", "kid": "k1"}), claims(), b"ok")
    }
    /// A token of the `other` provider (its issuer), with this header and signature.
    fn other_token(header: serde_json::Value, sig: &[u8]) -> String {
        let mut c = claims();
        c["iss"] = json!("https://other.example.com");
        token(header, c, sig)
    }
    fn bearer(t: &str) -> (String, String) {
        ("authorization".into(), format!("Bearer {t}"))
    }

    fn run(cfg: &Config, r: &Req, mode: KeyMode) -> Verdict {
        let crypto = FakeCrypto { calls: Cell::new(0) };
        let keys = Keys(cfg, mode);
        Authenticator::new(cfg, &keys, &crypto, NOW).decide(r)
    }
    fn verdict(cfg: &Config, path: &str, headers: &[(String, String)]) -> Verdict {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run(cfg, &req(path, &h), KeyMode::Ready)
    }
    fn denied(v: Verdict) -> Rejection {
        match v {
            Verdict::Deny(r) => r,
            other => panic!("expected a denial, got {other:?}"),
        }
    }
    fn allowed_as(v: Verdict) -> Allowed {
        match v {
            Verdict::Allow(a) => a,
            other => panic!("expected allow, got {other:?}"),
        }
    }
    fn allowed(v: Verdict) -> Vec<Verified> {
        allowed_as(v).verified().to_vec()
    }

    #[test]
    fn valid_token_is_allowed_and_projected() {
        let cfg = config(main_rules(), json!({}));
        let r = req("/api", &[("authorization", &format!("Bearer {}", good()))]);
        let a = allowed_as(run(&cfg, &r, KeyMode::Ready));
        assert_eq!(a.verified().len(), 1);
        assert_eq!(a.verified()[0].subject(), Some("user-1"));
        let m = mutations(&cfg, &a, &r);
        assert_eq!(m.set, vec![("x-user".to_string(), "user-1".to_string())]);
        // forward defaults to false, as in jwt_authn: the token does not reach the service.
        assert_eq!(m.remove, vec!["authorization".to_string()]);
    }

    #[test]
    fn a_request_without_path_needs_a_rule_for_the_empty_path() {
        let mut r = req("/", &[("authorization", &format!("Bearer {}", good()))]);
        r.0.remove(":path");
        // `/healthz` public, `/` protected: neither covers it, and it is refused.
        let cfg = config(main_rules(), json!({}));
        assert_eq!(denied(run(&cfg, &r, KeyMode::Ready)), Rejection::TokenMissing);
        // A public exact `/` does not make it public either.
        let rules =
            json!([{"match": {"path": "/"}}, {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}]);
        let cfg = config(rules, json!({}));
        assert_eq!(denied(run(&cfg, &r, KeyMode::Ready)), Rejection::TokenMissing);
        // `prefix: ""` covers it: with a valid token it passes, without one it is refused.
        let cfg = config(json!([{"match": {"prefix": ""}, "requires": {"provider_name": "main"}}]), json!({}));
        assert_eq!(allowed(run(&cfg, &r, KeyMode::Ready)).len(), 1);
        r.0.remove("authorization");
        assert_eq!(denied(run(&cfg, &r, KeyMode::Ready)), Rejection::TokenMissing);
        // A filter that protects nothing lets it by.
        let cfg = config(json!([{"match": {"prefix": "/"}}]), json!({}));
        assert!(allowed(run(&cfg, &r, KeyMode::Ready)).is_empty());
    }

    #[test]
    fn every_rejection_reason_from_a_token() {
        let cfg = config(main_rules(), json!({"require_expiration": true, "max_lifetime": "3600s"}));
        let with = |h: serde_json::Value, c: serde_json::Value, sig: &[u8]| {
            denied(verdict(&cfg, "/api", &[bearer(&token(h, c, sig))]))
        };
        let rs = || json!({"alg": "RS256", "kid": "k1"});
        let claim = |k: &str, v: serde_json::Value| {
            let mut c = claims();
            c[k] = v;
            c
        };
        assert_eq!(denied(verdict(&cfg, "/api", &[])), Rejection::TokenMissing);
        assert_eq!(with(rs(), claims(), b"bad"), Rejection::SignatureInvalid);
        assert_eq!(with(json!({"alg": "RS256", "kid": "nope"}), claims(), b"ok"), Rejection::KeyNotFound);
        assert_eq!(with(json!({"alg": "ES256", "kid": "k1"}), claims(), b"ok"), Rejection::KeyNotFound);
        assert_eq!(with(json!({"alg": "RS384", "kid": "k1"}), claims(), b"ok"), Rejection::KeyNotFound);
        assert_eq!(with(json!({"alg": "HS256", "kid": "k1"}), claims(), b"ok"), Rejection::AlgorithmUnsupported);
        assert_eq!(with(json!({"alg": "none"}), claims(), b"ok"), Rejection::AlgorithmUnsupported);
        assert_eq!(with(json!({"alg": "RS256", "crit": ["zip"]}), claims(), b"ok"), Rejection::CritUnsupported);
        assert_eq!(with(rs(), claim("exp", json!(NOW - 61)), b"ok"), Rejection::Expired);
        assert_eq!(with(rs(), claim("nbf", json!(NOW + 61)), b"ok"), Rejection::NotYetValid);
        assert_eq!(with(rs(), claim("exp", json!(NOW + 7200)), b"ok"), Rejection::LifetimeTooLong);
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(with(rs(), no_exp, b"ok"), Rejection::ExpirationRequired);
        assert_eq!(with(rs(), claim("exp", json!("1700000600")), b"ok"), Rejection::ClaimInvalid);
        assert_eq!(with(rs(), claim("iss", json!("https://idp.example.com/")), b"ok"), Rejection::IssuerNotAllowed);
        assert_eq!(with(rs(), claim("aud", json!("web")), b"ok"), Rejection::AudienceNotAllowed);
        let r = req("/api", &[("authorization", "Bearer not-a-jwt")]);
        assert_eq!(denied(run(&cfg, &r, KeyMode::Ready)), Rejection::TokenMalformed);
        let huge = format!("Bearer {}", "a".repeat(9000));
        assert_eq!(
            denied(run(&cfg, &req("/api", &[("authorization", &huge)]), KeyMode::Ready)),
            Rejection::TokenTooLarge
        );
    }

    #[test]
    fn token_without_kid_tries_keys_of_the_right_type() {
        let cfg = config(main_rules(), json!({}));
        let t = token(json!({"alg": "RS256"}), claims(), b"ok");
        assert_eq!(allowed(verdict(&cfg, "/", &[bearer(&t)])).len(), 1);
        let t = token(json!({"alg": "ES256"}), claims(), b"ok");
        assert_eq!(allowed(verdict(&cfg, "/", &[bearer(&t)])).len(), 1);
        let t = token(json!({"alg": "ES384"}), claims(), b"ok");
        assert_eq!(denied(verdict(&cfg, "/", &[bearer(&t)])), Rejection::KeyNotFound);
    }

    #[test]
    fn public_routes_and_unmatched_paths_pass() {
        let cfg = config(main_rules(), json!({}));
        assert!(allowed(verdict(&cfg, "/healthz", &[])).is_empty());
        let only_api = config(json!([{"match": {"prefix": "/api"}, "requires": {"provider_name": "main"}}]), json!({}));
        assert!(allowed(verdict(&only_api, "/other", &[])).is_empty());
        assert_eq!(denied(verdict(&only_api, "/api/x", &[])), Rejection::TokenMissing);
    }

    #[test]
    fn cors_preflight_bypass() {
        let cfg = config(main_rules(), json!({}));
        let pre =
            req("/api", &[(":method", "OPTIONS"), ("origin", "https://app"), ("access-control-request-method", "GET")]);
        assert!(allowed(run(&cfg, &pre, KeyMode::Ready)).is_empty());
        let plain_options = req("/api", &[(":method", "OPTIONS")]);
        assert_eq!(denied(run(&cfg, &plain_options, KeyMode::Ready)), Rejection::TokenMissing);
        // Nothing where tokens are read reaches the upstream unchecked: a browser sends no
        // credentials on a preflight, so whatever is there is taken out.
        let cfg = config(
            main_rules(),
            json!({"from_headers": [{"name": "authorization", "value_prefix": "Bearer "}], "from_cookies": ["DS"], "from_params": ["token"]}),
        );
        let forged = token(json!({"alg": "RS256", "kid": "k1"}), claims(), b"bad");
        let pre = req(
            &format!("/api?a=1&token={forged}"),
            &[
                (":method", "OPTIONS"),
                ("origin", "https://app"),
                ("access-control-request-method", "DELETE"),
                ("authorization", &format!("Bearer {forged}")),
                ("cookie", &format!("DS={forged}; theme=dark")),
            ],
        );
        let a = allowed_as(run(&cfg, &pre, KeyMode::Ready));
        assert!(matches!(a, Allowed::Preflight));
        let m = mutations(&cfg, &a, &pre);
        assert_eq!(m.remove, ["authorization"]);
        assert_eq!(m.cookie, Some(Some(b"theme=dark".to_vec())));
        assert_eq!(m.path.as_deref(), Some(&b"/api?a=1"[..]));
        assert!(m.set.is_empty() && m.pin.is_empty());
        // A cookie header without a token keeps only the line that was read.
        let cookie_only = req(
            "/api",
            &[
                (":method", "OPTIONS"),
                ("origin", "https://app"),
                ("access-control-request-method", "GET"),
                ("cookie", "theme=dark"),
            ],
        );
        let m = mutations(&cfg, &allowed_as(run(&cfg, &cookie_only, KeyMode::Ready)), &cookie_only);
        assert_eq!((m.cookie, m.remove.is_empty()), (Some(Some(b"theme=dark".to_vec())), true));
        // A preflight without tokens is left as it came.
        let clean =
            req("/api", &[(":method", "OPTIONS"), ("origin", "https://app"), ("access-control-request-method", "GET")]);
        assert_eq!(mutations(&cfg, &allowed_as(run(&cfg, &clean, KeyMode::Ready)), &clean), Mutations::default());
    }

    /// Frameworks run `POST` + `X-HTTP-Method-Override: DELETE` (or `_method=DELETE`) as a
    /// DELETE: the rule DELETE selects applies too, and each selected rule must pass.
    #[test]
    fn method_overrides_cannot_route_around_a_method_rule() {
        let cfg = config(
            json!([
                {"match": {"prefix": "/items", "methods": ["DELETE"]}, "requires": {"provider_name": "main", "roles": ["admin"]}},
                {"match": {"prefix": "/items", "methods": ["GET"]}},
                {"match": {"prefix": "/"}, "requires": {"provider_name": "main"}}
            ]),
            json!({}),
        );
        let post = |path: &str, extra: &[(&str, &str)]| {
            let mut h = vec![(":method", "POST")];
            h.extend_from_slice(extra);
            run(&cfg, &req(path, &h), KeyMode::Ready)
        };
        let user = format!("Bearer {}", good());
        // The plain POST: the catch-all asks for a login, which the user has.
        assert_eq!(allowed(post("/items/1", &[("authorization", &user)])).len(), 1);
        for (case, path, header) in [
            ("x-http-method-override", "/items/1", Some(("x-http-method-override", "DELETE"))),
            ("x-http-method", "/items/1", Some(("x-http-method", "delete"))),
            ("x-method-override", "/items/1", Some(("x-method-override", " DELETE "))),
            ("a list (Express takes the first)", "/items/1", Some(("x-http-method-override", "DELETE, x"))),
            ("_method", "/items/1?_method=DELETE", None),
            ("_method encoded", "/items/1?%5Fmethod=DELETE", None),
            ("PHP's .method", "/items/1?.method=DELETE", None),
            ("PHP's +method", "/items/1?a=1&+method=DELETE", None),
            ("qs's _method[]", "/items/1?_method[]=DELETE", None),
        ] {
            let mut h = vec![("authorization", user.as_str())];
            h.extend(header);
            assert_eq!(denied(post(path, &h)), Rejection::RolesMissing, "{case}");
            h.remove(0);
            assert_eq!(denied(post(path, &h)), Rejection::TokenMissing, "{case}");
        }
        // An override to a public method's rule does not open the real method's.
        assert_eq!(denied(post("/items/1", &[("x-http-method-override", "GET")])), Rejection::TokenMissing);
        assert!(allowed(post("/items/1?method=DELETE&_methods=DELETE", &[("authorization", &user)])).len() == 1);
        // Without method rules no method is read (each read is a host call).
        struct Reads<'a>(&'a Req, RefCell<Vec<String>>);
        impl RequestView for Reads<'_> {
            fn header(&self, name: &str) -> Option<String> {
                self.1.borrow_mut().push(name.to_owned());
                self.0.header(name)
            }
        }
        let plain = config(main_rules(), json!({}));
        let r = req("/healthz", &[(":method", "POST"), ("x-http-method-override", "DELETE")]);
        let reads = Reads(&r, RefCell::default());
        assert_eq!(select_rules(&plain.rules, "/healthz", &reads), [0]);
        assert!(reads.1.borrow().is_empty(), "{:?}", reads.1.borrow());
        let reads = Reads(&r, RefCell::default());
        select_rules(&cfg.rules, "/items/1", &reads);
        assert!(reads.1.borrow().contains(&"x-http-method-override".to_owned()));
    }

    #[test]
    fn allow_missing_and_allow_missing_or_failed() {
        let cfg = config(
            json!([
                {"match": {"prefix": "/opt"}, "requires": {"allow_missing": {}}},
                {"match": {"prefix": "/any"}, "requires": {"allow_missing_or_failed": {}}}
            ]),
            json!({}),
        );
        assert!(allowed(verdict(&cfg, "/opt", &[])).is_empty());
        assert_eq!(allowed(verdict(&cfg, "/opt", &[bearer(&good())])).len(), 1);
        let bad = token(json!({"alg": "RS256", "kid": "k1"}), claims(), b"bad");
        assert_eq!(denied(verdict(&cfg, "/opt", &[bearer(&bad)])), Rejection::SignatureInvalid);
        let mut foreign = claims();
        foreign["iss"] = json!("https://unknown.example.com");
        let foreign = token(json!({"alg": "RS256", "kid": "k1"}), foreign, b"ok");
        assert_eq!(denied(verdict(&cfg, "/opt", &[bearer(&foreign)])), Rejection::IssuerNotAllowed);
        assert!(allowed(verdict(&cfg, "/any", &[bearer(&bad)])).is_empty());
        assert_eq!(allowed(verdict(&cfg, "/any", &[bearer(&good())])).len(), 1);
        // A token in the other provider's header is verified by the provider its iss names.
        let other = other_token(json!({"alg": "RS256", "kid": "k1"}), b"ok");
        let v = allowed(verdict(&cfg, "/opt", &[("x-other-token".into(), other)]));
        assert_eq!(v[0].provider, cfg.provider_id("other").unwrap());
    }

    /// jwt_authn's Example 7, "A is optional": `allow_missing` inside `requires_any` is a
    /// bypass for when the listed providers found no token, not an alternative that
    /// verifies a token with any provider.
    #[test]
    fn allow_missing_inside_requires_any_only_bypasses_a_missing_token() {
        let cfg = config(
            json!([
                {"match": {"prefix": "/opt"}, "requires": {"requires_any": {"requirements": [{"provider_name": "main"}, {"allow_missing": {}}]}}},
                {"match": {"prefix": "/admin"}, "requires": {"requires_any": {"requirements": [{"provider_name": "main", "roles": ["admin"]}, {"allow_missing": {}}]}}},
                {"match": {"prefix": "/soft"}, "requires": {"requires_any": {"requirements": [{"provider_name": "main"}, {"allow_missing_or_failed": {}}, {"allow_missing": {}}]}}},
                {"match": {"prefix": "/only"}, "requires": {"requires_any": {"requirements": [{"allow_missing": {}}]}}}
            ]),
            json!({}),
        );
        let other = other_token(json!({"alg": "RS256", "kid": "k1"}), b"ok");
        let bad = token(json!({"alg": "RS256", "kid": "k1"}), claims(), b"bad");
        // No token for `main`: passes, anonymous.
        assert!(allowed(verdict(&cfg, "/opt", &[])).is_empty());
        assert!(allowed(verdict(&cfg, "/opt", &[("x-other-token".into(), other.clone())])).is_empty());
        // A valid `main` token: its identity.
        assert_eq!(allowed(verdict(&cfg, "/opt", &[bearer(&good())]))[0].subject(), Some("user-1"));
        // Another provider's valid token where `main` reads: refused, not verified by `other`.
        assert_eq!(denied(verdict(&cfg, "/opt", &[bearer(&other)])), Rejection::IssuerNotAllowed);
        assert_eq!(denied(verdict(&cfg, "/opt", &[bearer(&bad)])), Rejection::SignatureInvalid);
        // A token that fails the alternative's authorization is not let through anonymously.
        assert_eq!(denied(verdict(&cfg, "/admin", &[bearer(&good())])), Rejection::RolesMissing);
        assert!(allowed(verdict(&cfg, "/admin", &[])).is_empty());
        // allow_missing_or_failed wins over allow_missing: anything passes, a valid token
        // still yields its identity.
        assert!(allowed(verdict(&cfg, "/soft", &[bearer(&bad)])).is_empty());
        assert_eq!(allowed(verdict(&cfg, "/soft", &[bearer(&good())])).len(), 1);
        // Alone in the list, allow_missing means what it means on its own.
        assert_eq!(
            allowed(verdict(&cfg, "/only", &[("x-other-token".into(), other)]))[0].provider,
            cfg.provider_id("other").unwrap()
        );
        assert_eq!(denied(verdict(&cfg, "/only", &[bearer(&bad)])), Rejection::SignatureInvalid);
    }

    /// jwt_authn's `findByIssuer`: the provider whose issuer is the token's comes first; one
    /// without an issuer only when none has it, whatever the names' order.
    #[test]
    fn allow_missing_prefers_the_exact_issuer() {
        let provider = |iss: Option<&str>, header: &str| {
            let mut p = json!({
                "local_jwks": {"inline_string": jwks()},
                "from_headers": [{"name": header}],
                "claim_to_headers": [{"header_name": format!("x-{header}"), "claim_name": "sub"}]
            });
            if let Some(i) = iss {
                p["issuer"] = json!(i);
            }
            p
        };
        let cfg = Config::parse(
            json!({
                "providers": {"a0": provider(None, "tok"), "b": provider(Some("https://b.example"), "tok")},
                "rules": [{"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let b = token(json!({"alg": "RS256", "kid": "k1"}), json!({"iss": "https://b.example", "sub": "bob"}), b"ok");
        let v = allowed(verdict(&cfg, "/", &[("tok".into(), b)]));
        assert_eq!(v[0].provider, cfg.provider_id("b").unwrap());
        let c = token(json!({"alg": "RS256", "kid": "k1"}), json!({"iss": "https://c.example", "sub": "carol"}), b"ok");
        assert_eq!(allowed(verdict(&cfg, "/", &[("tok".into(), c)]))[0].provider, cfg.provider_id("a0").unwrap());

        // With token caches: b's token, verified and cached by the issuer-less a0 on a route
        // that names a0, still goes to b (its issuer) under allow_missing; the cache tells
        // what the token says, not which provider to use.
        let cfg = Config::parse(
            json!({
                "providers": {"a0": provider(None, "tok"), "b": provider(Some("https://b.example"), "tok")},
                "rules": [{"match": {"prefix": "/a0"}, "requires": {"provider_name": "a0"}},
                          {"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let caches: Vec<TokenCache> = cfg.providers.iter().map(|_| TokenCache::new(8, 16 * 1024)).collect();
        let crypto = FakeCrypto { calls: Cell::new(0) };
        let keys = Keys(&cfg, KeyMode::Ready);
        let auth = Authenticator { caches: &caches, ..Authenticator::new(&cfg, &keys, &crypto, NOW) };
        let b = token(json!({"alg": "RS256", "kid": "k1"}), json!({"iss": "https://b.example", "sub": "bob"}), b"ok");
        let on = |path: &str| allowed(auth.decide(&req(path, &[("tok", b.as_str())])));
        assert_eq!(on("/a0")[0].provider, cfg.provider_id("a0").unwrap());
        assert_eq!(on("/x")[0].provider, cfg.provider_id("b").unwrap());
        assert_eq!(on("/x")[0].provider, cfg.provider_id("b").unwrap());
        assert_eq!(crypto.calls.get(), 2, "once per provider, then from b's cache");
        // The issuer comes from the cache when the token is there: a (test-made) entry for
        // text that would not even parse is placed by its cached `iss`.
        let mut claims = Map::new();
        claims.insert("iss".into(), json!("https://b.example"));
        let entry = Entry { claims: Rc::new(claims), payload_b64: "".into() };
        caches.iter().for_each(|c| c.insert("not-a-jwt", entry.clone()));
        assert_eq!(
            allowed(auth.decide(&req("/x", &[("tok", "not-a-jwt")])))[0].provider,
            cfg.provider_id("b").unwrap()
        );
    }

    #[test]
    fn requires_any_and_all() {
        let cfg = config(
            json!([
                {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [{"provider_name": "other"}, {"provider_name": "main"}]}}},
                {"match": {"prefix": "/all"}, "requires": {"requires_all": {"requirements": [{"provider_name": "main"}, {"provider_name": "other"}]}}},
                {"match": {"prefix": "/aud"}, "requires": {"provider_and_audiences": {"provider_name": "main", "audiences": ["web"]}}}
            ]),
            json!({}),
        );
        assert_eq!(allowed(verdict(&cfg, "/any", &[bearer(&good())])).len(), 1);
        // The informative failure wins over "missing" from the other branch.
        let expired = token(
            json!({"alg": "RS256", "kid": "k1"}),
            json!({"iss": "https://idp.example.com", "aud": "api", "exp": 1}),
            b"ok",
        );
        assert_eq!(denied(verdict(&cfg, "/any", &[bearer(&expired)])), Rejection::Expired);
        assert_eq!(denied(verdict(&cfg, "/any", &[])), Rejection::TokenMissing);
        assert_eq!(denied(verdict(&cfg, "/all", &[bearer(&good())])), Rejection::TokenMissing);
        let other = other_token(json!({"alg": "ES256", "kid": "e1"}), b"ok");
        let both = allowed(verdict(&cfg, "/all", &[bearer(&good()), ("x-other-token".into(), other)]));
        assert_eq!(both.len(), 2);
        assert_eq!(denied(verdict(&cfg, "/aud", &[bearer(&good())])), Rejection::AudienceNotAllowed);

        // Two providers writing one identity header: the first verified gives it.
        let mut cfg_json = json!({
            "providers": {
                "main": {"issuer": "https://idp.example.com", "local_jwks": {"inline_string": jwks()},
                         "claim_to_headers": [{"header_name": "x-user", "claim_name": "sub"}]},
                "other": {"issuer": "https://other.example.com", "local_jwks": {"inline_string": jwks()},
                          "from_headers": [{"name": "x-other-token"}],
                          "claim_to_headers": [{"header_name": "x-user", "claim_name": "sub"}]}
            },
            "rules": [{"match": {"prefix": "/"}, "requires": {"requires_all": {"requirements": [
                {"provider_name": "main"}, {"provider_name": "other"}]}}}]
        });
        let both_write = Config::parse(cfg_json.to_string().as_bytes()).unwrap();
        let mut c = claims();
        c["iss"] = json!("https://other.example.com");
        c["sub"] = json!("o-1");
        let o = token(json!({"alg": "ES256", "kid": "e1"}), c, b"ok");
        let r = req("/", &[("authorization", &format!("Bearer {}", good())), ("x-other-token", &o)]);
        let m = mutations(&both_write, &allowed_as(run(&both_write, &r, KeyMode::Ready)), &r);
        assert_eq!(m.set, [("x-user".to_string(), "user-1".to_string())]);
        cfg_json["rules"][0]["requires"]["requires_all"]["requirements"] =
            json!([{"provider_name": "other"}, {"provider_name": "main"}]);
        let reversed = Config::parse(cfg_json.to_string().as_bytes()).unwrap();
        let m = mutations(&reversed, &allowed_as(run(&reversed, &r, KeyMode::Ready)), &r);
        assert_eq!(m.set, [("x-user".to_string(), "o-1".to_string())]);
    }

    #[test]
    fn pending_and_unavailable_keys() {
        let cfg = config(main_rules(), json!({}));
        let r = req("/api", &[("authorization", &format!("Bearer {}", good()))]);
        assert!(
            matches!(run(&cfg, &r, KeyMode::Pending), Verdict::Pending(p) if p == vec![cfg.provider_id("main").unwrap()])
        );
        assert_eq!(denied(run(&cfg, &r, KeyMode::Unavailable)), Rejection::JwksUnavailable);
        // A malformed token is refused without waiting for keys.
        let bad = req("/api", &[("authorization", "Bearer x.y")]);
        assert_eq!(denied(run(&cfg, &bad, KeyMode::Pending)), Rejection::TokenMalformed);
    }

    #[test]
    fn no_more_than_max_keys_are_tried() {
        let keys: Vec<_> = (0..10).map(|_| json!({"kty": "RSA", "n": RSA_N, "e": "AQAB"})).collect();
        let cfg_json = json!({"providers": {"p": {"local_jwks": {"inline_string": json!({"keys": keys}).to_string()}}},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "p"}}]});
        let cfg = Config::parse(cfg_json.to_string().as_bytes()).unwrap();
        let crypto = FakeCrypto { calls: Cell::new(0) };
        let keys = Keys(&cfg, KeyMode::Ready);
        let t = token(json!({"alg": "RS256"}), json!({}), b"bad");
        let r = req("/", &[("authorization", &format!("Bearer {t}"))]);
        let v = Authenticator::new(&cfg, &keys, &crypto, NOW).decide(&r);
        assert_eq!(denied(v), Rejection::SignatureInvalid);
        assert_eq!(crypto.calls.get(), MAX_KEYS_TRIED);
    }

    #[test]
    fn forward_false_removes_the_token_where_it_was_found() {
        let cfg = config(
            main_rules(),
            json!({"from_cookies": ["DS"], "from_params": ["token"], "forward_payload_header": "x-payload", "pad_forward_payload_header": true}),
        );
        let t = good();
        let r = req(&format!("/api?a=1&token={t}"), &[("cookie", "x=1")]);
        let m = mutations(&cfg, &allowed_as(run(&cfg, &r, KeyMode::Ready)), &r);
        assert_eq!(m.path.as_deref(), Some(&b"/api?a=1"[..]));
        assert!(m.remove.is_empty());
        // The cookie header, a token location without a token, keeps the value that was read.
        assert_eq!(m.cookie, Some(Some(b"x=1".to_vec())));
        let payload = t.split('.').nth(1).unwrap();
        let (_, value) = m.set.iter().find(|(k, _)| k == "x-payload").unwrap();
        assert!(value.starts_with(payload) && value.len() % 4 == 0);

        let r = req("/api", &[("cookie", &format!("a=1; DS={t}; b=2"))]);
        let m = mutations(&cfg, &allowed_as(run(&cfg, &r, KeyMode::Ready)), &r);
        assert_eq!(m.cookie, Some(Some(b"a=1; b=2".to_vec())));
        // Another cookie's bytes that are not UTF-8 reach the upstream as sent.
        struct Latin1<'a>(&'a Req);
        impl RequestView for Latin1<'_> {
            fn header(&self, name: &str) -> Option<String> {
                self.0.header(name)
            }
            fn header_bytes(&self, name: &str) -> Option<Vec<u8>> {
                let raw = self.0.header_bytes(name)?;
                Some(if name == "cookie" { [&raw[..], b"; n=Jos\xe9"].concat() } else { raw })
            }
        }
        let latin1 = Latin1(&r);
        let m = mutations(&cfg, &allowed_as(run(&cfg, &r, KeyMode::Ready)), &latin1);
        assert_eq!(m.cookie, Some(Some(b"a=1; b=2; n=Jos\xe9".to_vec())));

        let fwd = config(main_rules(), json!({"forward": true}));
        let r = req("/api", &[("authorization", &format!("Bearer {t}"))]);
        let m = mutations(&fwd, &allowed_as(run(&fwd, &r, KeyMode::Ready)), &r);
        assert!(m.remove.is_empty());

        // Tokens in two cookies: both come out, the second removal starting from the first's.
        let two = config(main_rules(), json!({"from_cookies": ["DS", "DS2"]}));
        let r = req("/api", &[("cookie", &format!("DS={t}; a=1; DS2={t}; b=2"))]);
        let m = mutations(&two, &allowed_as(run(&two, &r, KeyMode::Ready)), &r);
        assert_eq!(m.cookie, Some(Some(b"a=1; b=2".to_vec())));
    }

    /// The host shows the filter only the first value of a repeated header: every token
    /// header a protected route reads is left holding exactly that value, so a second
    /// `Authorization` or `Cookie` line, never checked, cannot reach the upstream.
    #[test]
    fn token_headers_keep_only_the_value_that_was_read() {
        let t = good();
        let pins = |cfg: &Config, path: &str, headers: &[(&str, &str)]| {
            let r = req(path, headers);
            let m = mutations(cfg, &allowed_as(run(cfg, &r, KeyMode::Ready)), &r);
            (m.pin, m.cookie, m.remove)
        };
        let bearer_and_ds =
            json!({"from_headers": [{"name": "authorization", "value_prefix": "Bearer "}], "from_cookies": ["DS"]});
        let mut extra = bearer_and_ds.clone();
        extra["forward"] = json!(true);
        let fwd = config(main_rules(), extra);
        let auth = format!("Bearer {t}");
        let (pin, cookie, remove) = pins(&fwd, "/api", &[("authorization", &auth), ("cookie", "a=1")]);
        assert_eq!(pin, vec![("authorization".to_string(), auth.clone().into_bytes())]);
        assert_eq!(cookie, Some(Some(b"a=1".to_vec())));
        assert!(remove.is_empty());
        // Not forwarded: the token's header is removed (every value), the rest pinned.
        let cfg = config(main_rules(), bearer_and_ds);
        let (pin, cookie, remove) =
            pins(&cfg, "/api", &[("authorization", "Basic eDp5"), ("cookie", &format!("DS={t}"))]);
        assert_eq!(pin, vec![("authorization".to_string(), b"Basic eDp5".to_vec())]);
        assert_eq!(cookie, Some(None));
        assert!(remove.is_empty());
        let (pin, _, remove) = pins(&cfg, "/api", &[("authorization", &auth)]);
        assert!(pin.is_empty());
        assert_eq!(remove, vec!["authorization".to_string()]);
        // A header named `cookie` in from_headers whose token is removed stays removed.
        let cookie_header = config(main_rules(), json!({"from_headers": [{"name": "cookie"}]}));
        let (pin, cookie, remove) = pins(&cookie_header, "/api", &[("cookie", &t)]);
        assert_eq!((pin, cookie, remove), (vec![], None, vec!["cookie".to_string()]));
        // A public route reads no token, so it leaves them alone (as jwt_authn does).
        assert_eq!(pins(&fwd, "/healthz", &[("authorization", &auth), ("cookie", "a=1")]), (vec![], None, vec![]));
        // The rule's providers only; a standalone allow_missing reads every provider's.
        let rules = json!([
            {"match": {"prefix": "/main"}, "requires": {"provider_name": "main"}},
            {"match": {"prefix": "/any"}, "requires": {"requires_any": {"requirements": [
                {"provider_name": "other"}, {"allow_missing": {}}]}}},
            {"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}
        ]);
        let cfg = config(rules, json!({"forward": true}));
        let headers: Vec<Vec<String>> = cfg.rules.iter().map(|r| r.token_headers.clone()).collect();
        assert_eq!(headers, [vec!["authorization"], vec!["x-other-token"], vec!["authorization", "x-other-token"]]);
        let (pin, _, _) = pins(&cfg, "/main", &[("authorization", &auth), ("x-other-token", "x")]);
        assert_eq!(pin, vec![("authorization".to_string(), auth.clone().into_bytes())]);
        let (pin, _, _) = pins(&cfg, "/", &[("authorization", &auth), ("x-other-token", "")]);
        assert_eq!(pin.len(), 2);
    }

    /// Keys ready for `main`; for `other`, as `KeyMode` says.
    struct MainReady<'a>(&'a Config, KeyMode);
    impl KeySource for MainReady<'_> {
        fn lookup(&self, provider: ProviderId, kid: Option<&str>) -> KeyLookup {
            let mode = match self.0.provider(provider).map(|p| p.name.as_str()) {
                Some("main") => KeyMode::Ready,
                _ => self.1,
            };
            Keys(self.0, mode).lookup(provider, kid)
        }
    }

    /// Every path: `main` or `other`.
    fn main_or_other() -> Config {
        config(
            json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [{"provider_name": "main"}, {"provider_name": "other"}]}}}]),
            json!({}),
        )
    }

    #[test]
    fn requires_any_waits_while_an_alternative_may_still_pass() {
        let cfg = main_or_other();
        let other = other_token(json!({"alg": "RS256", "kid": "k1"}), b"ok");
        let bad = token(json!({"alg": "RS256", "kid": "k1"}), claims(), b"bad");
        let r = req("/", &[("authorization", &format!("Bearer {bad}")), ("x-other-token", &other)]);
        let crypto = FakeCrypto { calls: Cell::new(0) };
        let keys = MainReady(&cfg, KeyMode::Pending);
        // `main` failed, `other` waits for its keys: the request waits too, it may still pass.
        let v = Authenticator::new(&cfg, &keys, &crypto, NOW).decide(&r);
        assert!(matches!(v, Verdict::Pending(ref p) if *p == vec![cfg.provider_id("other").unwrap()]), "{v:?}");
    }

    /// When one alternative cannot be checked (keys unavailable) and another fails, the
    /// answer is 503: the client should retry, and the token may well be fine.
    #[test]
    fn unavailable_keys_outrank_other_failures() {
        let other = other_token(json!({"alg": "RS256", "kid": "k1"}), b"ok");
        let bad = token(json!({"alg": "RS256", "kid": "k1"}), claims(), b"bad");
        let r = req("/", &[("authorization", &format!("Bearer {bad}")), ("x-other-token", &other)]);
        let crypto = FakeCrypto { calls: Cell::new(0) };
        for order in [["main", "other"], ["other", "main"]] {
            let list: Vec<_> = order.iter().map(|p| json!({"provider_name": p})).collect();
            let cfg = config(
                json!([{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": list}}}]),
                json!({}),
            );
            let keys = MainReady(&cfg, KeyMode::Unavailable);
            let v = Authenticator::new(&cfg, &keys, &crypto, NOW).decide(&r);
            assert_eq!(denied(v), Rejection::JwksUnavailable, "{order:?}");
        }
    }

    /// Among failures of the same rank, the first alternative's is reported (a stable answer,
    /// and it can be 401 or 403).
    #[test]
    fn the_first_of_equal_failures_is_reported() {
        let cfg = main_or_other();
        let other_bad = other_token(json!({"alg": "RS256", "kid": "k1"}), b"bad");
        let mut wrong_aud = claims();
        wrong_aud["aud"] = json!("not-api");
        let main_403 = token(json!({"alg": "RS256", "kid": "k1"}), wrong_aud, b"ok");
        let v = verdict(&cfg, "/", &[bearer(&main_403), ("x-other-token".into(), other_bad)]);
        assert_eq!(denied(v), Rejection::AudienceNotAllowed);
    }

    #[test]
    fn anonymous_requests_cannot_be_authorized_and_malformed_tokens_are_not_anonymous() {
        let cfg = config(
            json!([
                {"match": {"prefix": "/admin"}, "requires": {"allow_missing": {}, "roles": ["admin"]}},
                {"match": {"prefix": "/"}, "requires": {"allow_missing": {}}}
            ]),
            json!({}),
        );
        // allow_missing passes a request without a token, but roles need a token: 401.
        assert_eq!(denied(verdict(&cfg, "/admin", &[])), Rejection::TokenMissing);
        assert!(allowed(verdict(&cfg, "/", &[])).is_empty());
        // A token that is present but not even a JWS is not "no token".
        assert_eq!(denied(verdict(&cfg, "/", &[bearer("not-a-jwt")])), Rejection::TokenMalformed);
    }

    #[test]
    fn unsafe_claim_values_are_not_written() {
        let cfg = config(main_rules(), json!({}));
        let mut c = claims();
        c["sub"] = json!("evil\r\nx-admin: true");
        let t = token(json!({"alg": "RS256", "kid": "k1"}), c, b"ok");
        let r = req("/api", &[("authorization", &format!("Bearer {t}"))]);
        let m = mutations(&cfg, &allowed_as(run(&cfg, &r, KeyMode::Ready)), &r);
        assert!(m.set.is_empty());
        assert_eq!(m.unsafe_values, vec!["x-user".to_string()]);
    }

    #[test]
    fn replies_follow_rfc6750_and_echo_nothing() {
        let t = good();
        let r = req(&format!("/api/x?access_token={t}"), &[]);
        let reply = local_reply(Rejection::Expired, &r);
        assert_eq!(reply.status, 401);
        let www = &reply.headers.iter().find(|(k, _)| k == "www-authenticate").unwrap().1;
        assert_eq!(www, r#"Bearer realm="https://api.example.com/api/x", error="invalid_token""#);
        assert!(!reply.body.contains(&t) && !www.contains(&t));
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["code"], "jwt_expired");

        let missing = local_reply(Rejection::TokenMissing, &r);
        let www = &missing.headers.iter().find(|(k, _)| k == "www-authenticate").unwrap().1;
        assert_eq!(www, r#"Bearer realm="https://api.example.com/api/x""#);
        assert_eq!(local_reply(Rejection::AudienceNotAllowed, &r).status, 403);
        let unavailable = local_reply(Rejection::JwksUnavailable, &r);
        assert_eq!(unavailable.status, 503);
        assert!(unavailable.headers.iter().all(|(k, _)| k != "www-authenticate"));

        let evil = req("/a\"b\\c", &[]);
        let www = local_reply(Rejection::Expired, &evil).headers[1].1.clone();
        assert!(www.starts_with(r#"Bearer realm="https://api.example.com/abc""#), "{www}");
    }
}
