//! Minting JWTs and building Descope-shaped claims.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde_json::{json, Map, Value};

use crate::keys::SigningKey;

/// base64url without padding (RFC 7515 §2).
pub fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; `None` if invalid.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}

/// Seconds since the Unix epoch, now.
pub fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The standard header for `key`: `{"alg", "typ": "JWT", "kid"}`.
pub fn default_header(key: &SigningKey) -> Value {
    json!({ "alg": key.alg().as_str(), "typ": "JWT", "kid": key.kid() })
}

/// A compact JWS over `claims` with the header `{alg, typ: "JWT", kid}`.
pub fn mint(key: &SigningKey, claims: Value) -> String {
    mint_with_header(key, default_header(key), claims)
}

/// A compact JWS with an arbitrary header (no kid, `crit`, `jku`, a lying `alg`...). The
/// signature is always made with `key`'s own algorithm, whatever the header says.
pub fn mint_with_header(key: &SigningKey, header: Value, claims: Value) -> String {
    mint_raw_parts(key, header.to_string().as_bytes(), claims.to_string().as_bytes())
}

/// A compact JWS from raw header and payload bytes (for malformed-JSON or duplicate-member
/// tests): `b64url(header) . b64url(payload) . b64url(sig)`.
pub fn mint_raw_parts(key: &SigningKey, header: &[u8], payload: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64url(header), b64url(payload));
    let sig = sign_raw(key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64url(&sig))
}

/// The JWS signature bytes of `signing_input` (ECDSA as P1363 `r || s`; PSS salt = hash length).
pub fn sign_raw(key: &SigningKey, signing_input: &[u8]) -> Vec<u8> {
    key.sign(signing_input)
}

/// The same token with one bit of its signature flipped (still valid base64url, same length).
pub fn tamper_signature(token: &str) -> String {
    let Some((input, sig)) = token.rsplit_once('.') else {
        return format!("{token}x");
    };
    let mut bytes = b64url_decode(sig).unwrap_or_default();
    let mid = bytes.len() / 2;
    match bytes.get_mut(mid) {
        Some(b) => *b ^= 0x01,
        None => bytes.push(0),
    }
    format!("{input}.{}", b64url(&bytes))
}

/// The same token with its payload replaced by `claims` and the original signature kept.
pub fn tamper_payload(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    match parts.as_slice() {
        [h, _, s] => format!("{h}.{}.{s}", b64url(claims.to_string().as_bytes())),
        _ => token.to_string(),
    }
}

/// Decodes the header and payload of a compact JWS (no verification).
pub fn decode_unverified(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let header = serde_json::from_slice(&b64url_decode(parts.next()?)?).ok()?;
    let payload = serde_json::from_slice(&b64url_decode(parts.next()?)?).ok()?;
    Some((header, payload))
}

/// The issuer of a Descope project: `https://api.descope.com/<project_id>`.
pub fn descope_issuer(project_id: &str) -> String {
    format!("https://api.descope.com/{project_id}")
}

/// A tenant's roles and permissions in Descope claims: `(tenant_id, roles, permissions)`.
pub type TenantGrant<'a> = (&'a str, &'a [&'a str], &'a [&'a str]);

/// Claims shaped like a Descope session token:
/// `{sub, iss: "https://api.descope.com/<project_id>", aud: <project_id>, iat, exp: now + ttl,
///   tenants: {"<id>": {roles, permissions}}, roles: [], permissions: []}`.
/// A negative `ttl_secs` makes an expired token. For project-level roles, `dct` or extra
/// claims, use [`DescopeClaims`] (or edit the returned value).
pub fn descope_claims(project_id: &str, sub: &str, tenants: &[TenantGrant<'_>], ttl_secs: i64, now: i64) -> Value {
    let mut b = DescopeClaims::new(project_id, sub).ttl(ttl_secs).now(now);
    for (id, roles, perms) in tenants {
        b = b.tenant(id, roles, perms);
    }
    b.build()
}

/// Builder for Descope-shaped claims (see [`descope_claims`]).
#[derive(Clone, Debug)]
pub struct DescopeClaims {
    project_id: String,
    sub: String,
    tenants: Vec<(String, Vec<String>, Vec<String>)>,
    roles: Vec<String>,
    permissions: Vec<String>,
    dct: Option<String>,
    ttl: i64,
    now: Option<i64>,
    extra: Map<String, Value>,
    without: Vec<String>,
}

impl DescopeClaims {
    /// Defaults: ttl 3600 s, iat = now, no tenants, empty project-level roles and permissions.
    pub fn new(project_id: &str, sub: &str) -> DescopeClaims {
        DescopeClaims {
            project_id: project_id.to_string(),
            sub: sub.to_string(),
            tenants: Vec::new(),
            roles: Vec::new(),
            permissions: Vec::new(),
            dct: None,
            ttl: 3600,
            now: None,
            extra: Map::new(),
            without: Vec::new(),
        }
    }

    pub fn tenant(mut self, id: &str, roles: &[&str], permissions: &[&str]) -> Self {
        self.tenants.push((id.to_string(), strings(roles), strings(permissions)));
        self
    }

    /// Project-level roles (top-level `roles`).
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.roles = strings(roles);
        self
    }

    /// Project-level permissions (top-level `permissions`).
    pub fn permissions(mut self, permissions: &[&str]) -> Self {
        self.permissions = strings(permissions);
        self
    }

    /// The current tenant (`dct` claim).
    pub fn dct(mut self, tenant: &str) -> Self {
        self.dct = Some(tenant.to_string());
        self
    }

    pub fn ttl(mut self, ttl_secs: i64) -> Self {
        self.ttl = ttl_secs;
        self
    }

    pub fn now(mut self, now: i64) -> Self {
        self.now = Some(now);
        self
    }

    /// Any other claim (overrides the built ones of the same name).
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.extra.insert(name.to_string(), value);
        self
    }

    /// Leaves a built claim out (a token without `aud`, as Descope issues by default).
    pub fn without(mut self, name: &str) -> Self {
        self.without.push(name.to_string());
        self
    }

    pub fn build(self) -> Value {
        let now = self.now.unwrap_or_else(now_secs);
        let mut tenants = Map::new();
        for (id, roles, perms) in &self.tenants {
            tenants.insert(id.clone(), json!({ "roles": roles, "permissions": perms }));
        }
        let mut claims = json!({
            "sub": self.sub,
            "iss": descope_issuer(&self.project_id),
            "aud": self.project_id,
            "iat": now,
            "exp": now.saturating_add(self.ttl),
            "drn": "DS",
            "amr": ["email"],
            "tenants": tenants,
            "roles": self.roles,
            "permissions": self.permissions,
        });
        if let Some(obj) = claims.as_object_mut() {
            if let Some(dct) = self.dct {
                obj.insert("dct".to_string(), Value::String(dct));
            }
            for (k, v) in self.extra {
                obj.insert(k, v);
            }
            for k in &self.without {
                obj.remove(k);
            }
        }
        claims
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
