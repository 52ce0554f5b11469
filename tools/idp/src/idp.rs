//! The demo identity provider: a JWKS server with minting, key rotation and fault injection.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http::{lock, Handler, HttpServer, Reply, Request, Response};
use crate::keys::{fixed_keys_all_algs, jwks_value, Alg, SigningKey};
use crate::token::{descope_issuer, mint, DescopeClaims};

/// The project id used when none is given.
pub const DEFAULT_PROJECT_ID: &str = "P2demoproject";

/// How the JWKS endpoints misbehave. Only the JWKS endpoints (`/.well-known/jwks.json`,
/// `/v2/keys/<project>`) are affected; `/mint`, `/admin/*` and discovery always answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fault {
    /// Serve the JWKS normally.
    #[default]
    Ok,
    /// Answer `500 Internal Server Error`.
    Status500,
    /// Accept the request and never answer, until the fault changes (then answer according to
    /// the new mode) or the server stops (then close the connection).
    Hang,
    /// Answer `200` with a body that is not a JWKS (truncated JSON).
    BadBody,
    /// Answer normally after this delay.
    Delay(Duration),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Ok => f.write_str("ok"),
            Fault::Status500 => f.write_str("500"),
            Fault::Hang => f.write_str("hang"),
            Fault::BadBody => f.write_str("bad-body"),
            Fault::Delay(d) => write!(f, "delay:{}", d.as_millis()),
        }
    }
}

impl FromStr for Fault {
    type Err = String;

    /// `ok`, `500`, `hang`, `bad-body`, `delay:<ms>`.
    fn from_str(s: &str) -> Result<Fault, String> {
        match s {
            "ok" | "none" => Ok(Fault::Ok),
            "500" | "status500" => Ok(Fault::Status500),
            "hang" => Ok(Fault::Hang),
            "bad-body" | "bad_body" | "badbody" => Ok(Fault::BadBody),
            other => match other.strip_prefix("delay:") {
                Some(ms) => ms.parse().map(|ms| Fault::Delay(Duration::from_millis(ms))).map_err(|_| bad_fault(s)),
                None => Err(bad_fault(s)),
            },
        }
    }
}

fn bad_fault(s: &str) -> String {
    format!("unknown fault mode {s:?} (ok | 500 | hang | bad-body | delay:<ms>)")
}

/// How to start an [`IdpServer`].
#[derive(Clone, Debug)]
pub struct IdpConfig {
    /// Served at `/v2/keys/<project_id>`; also the `aud` of minted Descope-shaped tokens.
    pub project_id: String,
    /// The `iss` of minted tokens and of the discovery document; default
    /// `https://api.descope.com/<project_id>`.
    pub issuer: Option<String>,
    /// The keys published in the JWKS. The first is the signing key. Default: one fixed key per
    /// algorithm, RS256 first.
    pub keys: Vec<SigningKey>,
}

impl Default for IdpConfig {
    fn default() -> IdpConfig {
        IdpConfig { project_id: DEFAULT_PROJECT_ID.to_string(), issuer: None, keys: fixed_keys_all_algs() }
    }
}

impl IdpConfig {
    pub fn project_id(mut self, project_id: &str) -> Self {
        self.project_id = project_id.to_string();
        self
    }

    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = Some(issuer.to_string());
        self
    }

    pub fn keys(mut self, keys: Vec<SigningKey>) -> Self {
        self.keys = keys;
        self
    }
}

struct KeyState {
    keys: Vec<SigningKey>,
    /// kid of the key that signs by default.
    signing_kid: String,
}

struct Shared {
    project_id: String,
    issuer: String,
    keys: Mutex<KeyState>,
    fault: Mutex<Fault>,
    jwks_fetches: AtomicU64,
    requests: AtomicU64,
}

impl Shared {
    fn fault(&self) -> Fault {
        *lock(&self.fault)
    }

    fn jwks_text(&self) -> String {
        let ks = lock(&self.keys);
        let refs: Vec<&SigningKey> = ks.keys.iter().collect();
        jwks_value(&refs).to_string()
    }

    fn signing_key(&self) -> Option<SigningKey> {
        let ks = lock(&self.keys);
        ks.keys.iter().find(|k| k.kid() == ks.signing_kid).cloned()
    }

    /// The signing key if it has `alg`, else the newest key with `alg`.
    fn key_for_alg(&self, alg: Alg) -> Option<SigningKey> {
        let ks = lock(&self.keys);
        ks.keys
            .iter()
            .find(|k| k.kid() == ks.signing_kid && k.alg() == alg)
            .or_else(|| ks.keys.iter().rev().find(|k| k.alg() == alg))
            .cloned()
    }

    fn rotate_to(&self, key: SigningKey) {
        let mut ks = lock(&self.keys);
        ks.keys.retain(|k| k.kid() != key.kid());
        ks.signing_kid = key.kid().to_string();
        ks.keys.push(key);
    }
}

/// A running demo IdP on loopback. Stops on drop.
///
/// Endpoints:
/// - `GET /.well-known/jwks.json`, `GET /v2/keys/<project_id>`: the JWKS (counted, faultable);
/// - `GET /.well-known/openid-configuration`: `{issuer, jwks_uri, ...}`;
/// - `GET /mint?sub=&tenant=&roles=a,b&permissions=&ttl=&alg=`: a Descope-shaped token
///   (text/plain). Without `tenant`, roles/permissions are project-level;
/// - `POST /admin/rotate`: new signing key (same alg), old keys stay published → `{"kid"}`;
/// - `POST /admin/fault?mode=ok|500|hang|bad-body|delay&ms=N` → `{"fault"}`;
/// - `GET /admin/stats` → `{jwks_fetches, requests, fault, signing_kid, kids}`;
/// - `GET /healthz` → `ok`.
pub struct IdpServer {
    http: HttpServer,
    shared: Arc<Shared>,
}

impl IdpServer {
    /// Starts with [`IdpConfig::default`] on `addr` (e.g. `"127.0.0.1:0"`).
    ///
    /// # Panics
    /// If the address cannot be bound (use [`IdpServer::try_start`] to handle that).
    pub fn start(addr: &str) -> IdpServer {
        IdpServer::start_with(addr, IdpConfig::default())
    }

    /// Starts with `config`; panics if the address cannot be bound.
    pub fn start_with(addr: &str, config: IdpConfig) -> IdpServer {
        match IdpServer::try_start(addr, config) {
            Ok(s) => s,
            Err(e) => panic!("demo IdP cannot listen on {addr}: {e}"),
        }
    }

    pub fn try_start(addr: &str, config: IdpConfig) -> io::Result<IdpServer> {
        let signing_kid = config.keys.first().map(|k| k.kid().to_string()).unwrap_or_default();
        let shared = Arc::new(Shared {
            issuer: config.issuer.clone().unwrap_or_else(|| descope_issuer(&config.project_id)),
            project_id: config.project_id,
            keys: Mutex::new(KeyState { keys: config.keys, signing_kid }),
            fault: Mutex::new(Fault::Ok),
            jwks_fetches: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        let handler: Handler = {
            let shared = shared.clone();
            Arc::new(move |req: &Request, stop: &AtomicBool| handle(&shared, req, stop))
        };
        let http = HttpServer::start(addr, handler)?;
        Ok(IdpServer { http, shared })
    }

    pub fn address(&self) -> SocketAddr {
        self.http.address()
    }

    /// `http://<address>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address())
    }

    pub fn project_id(&self) -> &str {
        &self.shared.project_id
    }

    /// The `iss` of minted tokens.
    pub fn issuer(&self) -> &str {
        &self.shared.issuer
    }

    /// `/v2/keys/<project_id>`.
    pub fn jwks_path(&self) -> String {
        format!("/v2/keys/{}", self.shared.project_id)
    }

    /// `http://<address>/v2/keys/<project_id>`.
    pub fn jwks_uri(&self) -> String {
        format!("{}{}", self.base_url(), self.jwks_path())
    }

    /// The JWKS currently served (ignores faults, does not count as a fetch).
    pub fn jwks(&self) -> String {
        self.shared.jwks_text()
    }

    /// Every published key, oldest first.
    pub fn keys(&self) -> Vec<SigningKey> {
        lock(&self.shared.keys).keys.clone()
    }

    /// The current signing key.
    ///
    /// # Panics
    /// If the server has no keys.
    pub fn signing_key(&self) -> SigningKey {
        match self.shared.signing_key() {
            Some(k) => k,
            None => panic!("the demo IdP has no signing key"),
        }
    }

    /// A token over `claims` signed by the current signing key.
    pub fn mint(&self, claims: Value) -> String {
        mint(&self.signing_key(), claims)
    }

    /// A token over `claims` signed by the published key for `alg` (the signing key if it has
    /// that alg, else the newest such key); `None` if no published key has `alg`.
    pub fn mint_alg(&self, alg: Alg, claims: Value) -> Option<String> {
        self.shared.key_for_alg(alg).map(|k| mint(&k, claims))
    }

    /// Descope-shaped claims for this server's project and issuer, valid for `ttl_secs` from now.
    pub fn claims(&self, sub: &str, tenants: &[crate::TenantGrant<'_>], ttl_secs: i64) -> Value {
        let mut b =
            DescopeClaims::new(&self.shared.project_id, sub).ttl(ttl_secs).claim("iss", json!(self.shared.issuer));
        for (id, roles, perms) in tenants {
            b = b.tenant(id, roles, perms);
        }
        b.build()
    }

    /// Generates a new key with the current signing key's algorithm (RSA 2048 for RS*/PS*,
    /// slow-ish), makes it the signing key and keeps the old keys published. Returns it.
    pub fn rotate(&self) -> SigningKey {
        let alg = self.shared.signing_key().map(|k| k.alg()).unwrap_or(Alg::RS256);
        let key = SigningKey::generate(alg);
        self.shared.rotate_to(key.clone());
        key
    }

    /// Publishes `key` (replacing a key with the same kid) and makes it the signing key. Fast
    /// with fixed keys, e.g. `SigningKey::fixed_key(FixedKey::Rsa2048B, Alg::RS256)`.
    pub fn rotate_to(&self, key: SigningKey) {
        self.shared.rotate_to(key);
    }

    /// Stops publishing the key `kid`; returns whether it was there. If it was the signing key,
    /// the newest remaining key signs.
    pub fn remove_key(&self, kid: &str) -> bool {
        let mut ks = lock(&self.shared.keys);
        let before = ks.keys.len();
        ks.keys.retain(|k| k.kid() != kid);
        if ks.signing_kid == kid {
            ks.signing_kid = ks.keys.last().map(|k| k.kid().to_string()).unwrap_or_default();
        }
        ks.keys.len() != before
    }

    /// Replaces every published key; the first signs.
    pub fn set_keys(&self, keys: Vec<SigningKey>) {
        let mut ks = lock(&self.shared.keys);
        ks.signing_kid = keys.first().map(|k| k.kid().to_string()).unwrap_or_default();
        ks.keys = keys;
    }

    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    pub fn fault(&self) -> Fault {
        self.shared.fault()
    }

    /// How many JWKS requests arrived (faulted ones included).
    pub fn jwks_fetches(&self) -> u64 {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` JWKS fetches arrived; `false` on timeout.
    pub fn wait_for_jwks_fetches(&self, n: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.jwks_fetches() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Every request received, on any endpoint.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Stops the server and closes every connection (also done on drop).
    pub fn stop(mut self) {
        self.http.stop();
    }
}

fn handle(shared: &Shared, req: &Request, stop: &AtomicBool) -> Reply {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let jwks_project_path = format!("/v2/keys/{}", shared.project_id);
    let method = req.method.as_str();
    match req.path.as_str() {
        "/.well-known/jwks.json" | "/.well-known/jwks" => jwks_reply(shared, req, stop),
        p if p == jwks_project_path => jwks_reply(shared, req, stop),
        p if p.starts_with("/v2/keys/") => Reply::Respond(Response::json(404, &json!({"error": "unknown project"}))),
        "/.well-known/openid-configuration" if method == "GET" => {
            let host = req.header("host").unwrap_or("127.0.0.1").to_string();
            Reply::Respond(Response::json(
                200,
                &json!({
                    "issuer": shared.issuer,
                    "jwks_uri": format!("http://{host}{jwks_project_path}"),
                    "id_token_signing_alg_values_supported": Alg::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                }),
            ))
        }
        "/mint" if method == "GET" || method == "POST" => Reply::Respond(mint_reply(shared, req)),
        "/admin/rotate" if method == "POST" => {
            let alg = shared.signing_key().map(|k| k.alg()).unwrap_or(Alg::RS256);
            let alg = match req.param("alg").map(Alg::from_str) {
                Some(Ok(a)) => a,
                Some(Err(e)) => return Reply::Respond(Response::json(400, &json!({ "error": e }))),
                None => alg,
            };
            let key = SigningKey::generate(alg);
            let kid = key.kid().to_string();
            shared.rotate_to(key);
            Reply::Respond(Response::json(200, &json!({ "kid": kid, "alg": alg.as_str() })))
        }
        "/admin/fault" if method == "POST" => {
            let mode = req.param("mode").unwrap_or("ok");
            let parsed = if mode == "delay" {
                req.param("ms")
                    .and_then(|ms| ms.parse().ok())
                    .map(|ms| Fault::Delay(Duration::from_millis(ms)))
                    .ok_or_else(|| "mode=delay needs ms=<milliseconds>".to_string())
            } else {
                Fault::from_str(mode)
            };
            match parsed {
                Ok(f) => {
                    *lock(&shared.fault) = f;
                    Reply::Respond(Response::json(200, &json!({ "fault": f.to_string() })))
                }
                Err(e) => Reply::Respond(Response::json(400, &json!({ "error": e }))),
            }
        }
        "/admin/stats" if method == "GET" => {
            let ks = lock(&shared.keys);
            Reply::Respond(Response::json(
                200,
                &json!({
                    "jwks_fetches": shared.jwks_fetches.load(Ordering::SeqCst),
                    "requests": shared.requests.load(Ordering::SeqCst),
                    "fault": shared.fault().to_string(),
                    "signing_kid": ks.signing_kid,
                    "kids": ks.keys.iter().map(|k| k.kid()).collect::<Vec<_>>(),
                }),
            ))
        }
        "/healthz" => Reply::Respond(Response::text(200, "ok\n")),
        "/mint" | "/admin/rotate" | "/admin/fault" | "/admin/stats" | "/.well-known/openid-configuration" => {
            Reply::Respond(Response::json(405, &json!({"error": "method not allowed"})))
        }
        _ => Reply::Respond(Response::json(404, &json!({"error": "not found"}))),
    }
}

fn jwks_reply(shared: &Shared, req: &Request, stop: &AtomicBool) -> Reply {
    if req.method != "GET" && req.method != "HEAD" {
        return Reply::Respond(Response::json(405, &json!({"error": "method not allowed"})));
    }
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    loop {
        match shared.fault() {
            Fault::Ok => return Reply::Respond(Response::new(200, "application/json", shared.jwks_text())),
            Fault::Status500 => {
                return Reply::Respond(Response::json(500, &json!({"error": "injected fault: status 500"})))
            }
            Fault::BadBody => return Reply::Respond(Response::new(200, "application/json", "{\"keys\": [{\"kty\": ")),
            Fault::Delay(d) => {
                let until = Instant::now() + d;
                while Instant::now() < until {
                    if stop.load(Ordering::SeqCst) {
                        return Reply::Close;
                    }
                    std::thread::sleep(Duration::from_millis(5).min(until.saturating_duration_since(Instant::now())));
                }
                return Reply::Respond(Response::new(200, "application/json", shared.jwks_text()));
            }
            Fault::Hang => {
                if stop.load(Ordering::SeqCst) {
                    return Reply::Close;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn list(param: Option<&str>) -> Vec<&str> {
    param.map(|s| s.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

fn mint_reply(shared: &Shared, req: &Request) -> Response {
    let key = match req.param("alg") {
        None | Some("") => shared.signing_key(),
        Some(a) => match Alg::from_str(a) {
            Ok(alg) => match shared.key_for_alg(alg) {
                Some(k) => Some(k),
                None => return Response::json(400, &json!({ "error": format!("no published key for {alg}") })),
            },
            Err(e) => return Response::json(400, &json!({ "error": e })),
        },
    };
    let Some(key) = key else {
        return Response::json(500, &json!({"error": "no signing key"}));
    };
    let ttl: i64 = match req.param("ttl").map(str::parse) {
        None => 3600,
        Some(Ok(t)) => t,
        Some(Err(_)) => return Response::json(400, &json!({"error": "ttl must be an integer (seconds)"})),
    };
    let sub = req.param("sub").unwrap_or("demo-user");
    let roles = list(req.param("roles"));
    let perms = list(req.param("permissions"));
    let mut b = DescopeClaims::new(&shared.project_id, sub).ttl(ttl).claim("iss", json!(shared.issuer));
    match req.param("tenant").filter(|t| !t.is_empty()) {
        Some(t) => b = b.tenant(t, &roles, &perms).dct(t),
        None => b = b.roles(&roles).permissions(&perms),
    }
    Response::new(200, "text/plain; charset=utf-8", mint(&key, b.build()))
}
