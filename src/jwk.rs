//! JSON Web Keys: parsing a JWKS document into keys prepared once for verification.
//!
//! A JWKS comes from the network or from config, so every entry is untrusted: an entry that is
//! not a usable public verification key is skipped with a reason (for the logs) instead of
//! failing the whole set, so that one exotic key cannot take an IdP's other keys down with it.

use crate::ecdsa::{P256PublicKey, P384PublicKey};
use crate::hostsig;
use crate::rsa::RsaPublicKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use std::fmt;

/// The JWS algorithms the filter accepts. `none`, every HMAC algorithm, EdDSA and anything
/// unknown have no variant, so they cannot be configured or selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
}

impl Alg {
    pub const ALL: [Alg; 8] =
        [Alg::RS256, Alg::RS384, Alg::RS512, Alg::PS256, Alg::PS384, Alg::PS512, Alg::ES256, Alg::ES384];

    /// Exact, case-sensitive JWA name ("RS256"); `None` for anything we do not accept.
    pub fn from_name(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
        }
    }
}

/// Smallest RSA modulus we accept (NIST SP 800-131A; RFC 7518 §3.3 requires 2048 too).
pub const RSA_MIN_BITS: usize = 2048;
/// Largest RSA modulus we accept: bounds the cost of one verification.
pub const RSA_MAX_BITS: usize = 8192;
/// Longest `kid` kept; anything longer is not an identifier an IdP would publish.
pub const MAX_KID_BYTES: usize = 256;

/// A public key, parsed and validated once per JWKS version.
pub enum PublicKey {
    Rsa(RsaPublicKey),
    P256(P256PublicKey),
    P384(P384PublicKey),
}

impl PublicKey {
    /// Whether this key type can verify `alg` (RSA: RS*/PS*; P-256: ES256; P-384: ES384).
    pub fn supports(&self, alg: Alg) -> bool {
        match self {
            PublicKey::Rsa(_) => {
                matches!(alg, Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512)
            }
            PublicKey::P256(_) => alg == Alg::ES256,
            PublicKey::P384(_) => alg == Alg::ES384,
        }
    }

    /// DER SubjectPublicKeyInfo, the form a host verifier (BoringSSL) takes.
    pub fn spki_der(&self) -> Vec<u8> {
        match self {
            PublicKey::Rsa(k) => hostsig::rsa_spki(k.n_be(), &k.e_be()),
            PublicKey::P256(k) => hostsig::ec_spki(hostsig::Curve::P256, k.uncompressed_point()),
            PublicKey::P384(k) => hostsig::ec_spki(hostsig::Curve::P384, k.uncompressed_point()),
        }
    }

    /// Key size in bits (modulus for RSA, field for EC), for logs.
    pub fn bits(&self) -> usize {
        match self {
            PublicKey::Rsa(k) => k.bits(),
            PublicKey::P256(_) => 256,
            PublicKey::P384(_) => 384,
        }
    }

    /// An RSA key from big-endian modulus and exponent, under our policy: 2048..=8192-bit
    /// modulus (leading zero bytes tolerated), odd exponent in 3..=2^32-1, no ROCA fingerprint.
    /// The error is a human reason.
    pub fn rsa_from_components(n: &[u8], e: &[u8]) -> Result<PublicKey, String> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        // Cheap length bounds first so a huge `n` never reaches the bignum code.
        let max_bytes = RSA_MAX_BITS.div_ceil(8);
        if n.len() > max_bytes {
            return Err(format!("RSA modulus longer than {RSA_MAX_BITS} bits"));
        }
        if e.len() > 4 {
            return Err("RSA exponent larger than 2^32-1".to_owned());
        }
        // At most 4 bytes, so the u32 cannot overflow.
        let e_value = e.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b));
        if e_value < 3 {
            return Err(format!("RSA exponent {e_value} is below 3"));
        }
        if e_value & 1 == 0 {
            return Err(format!("RSA exponent {e_value} is even"));
        }
        let bits = crate::rsa::be_bits(n);
        if bits < RSA_MIN_BITS {
            return Err(format!("RSA modulus of {bits} bits is below {RSA_MIN_BITS}"));
        }
        if bits > RSA_MAX_BITS {
            return Err(format!("RSA modulus of {bits} bits is above {RSA_MAX_BITS}"));
        }
        if has_roca_fingerprint(n) {
            return Err(
                "RSA modulus has the ROCA fingerprint (CVE-2017-15361): its private key can be recovered".to_owned()
            );
        }
        // The key adds what the math needs: odd modulus, e < n.
        RsaPublicKey::new(n, e_value).map(PublicKey::Rsa).map_err(|err| format!("RSA key refused: {err}"))
    }

    /// A P-256 key from its affine coordinates (exactly 32 bytes each, each below p, point on
    /// the curve), prepared for verification.
    pub fn p256_from_coordinates(x: &[u8], y: &[u8]) -> Result<PublicKey, String> {
        check_coordinate_lengths(x, y, 32, "P-256")?;
        P256PublicKey::from_coordinates(x, y)
            .map(PublicKey::P256)
            .map_err(|err| format!("EC point is not on curve P-256 ({err})"))
    }

    /// A P-384 key from its affine coordinates (exactly 48 bytes each, each below p, point on
    /// the curve), prepared for verification.
    pub fn p384_from_coordinates(x: &[u8], y: &[u8]) -> Result<PublicKey, String> {
        check_coordinate_lengths(x, y, 48, "P-384")?;
        P384PublicKey::from_coordinates(x, y)
            .map(PublicKey::P384)
            .map_err(|err| format!("EC point is not on curve P-384 ({err})"))
    }
}

/// Key material stays out of logs: only the type and size are shown.
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublicKey::Rsa(_) => write!(f, "PublicKey::Rsa({} bits)", self.bits()),
            PublicKey::P256(_) => f.write_str("PublicKey::P256"),
            PublicKey::P384(_) => f.write_str("PublicKey::P384"),
        }
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.get(zeros..).unwrap_or_default()
}

/// SEC1 `04 || x || y`. Coordinates must have the exact field length: RFC 7518 §6.2.1.2
/// forbids shortened or padded encodings, and accepting them would give one key two JWKs.
fn check_coordinate_lengths(x: &[u8], y: &[u8], len: usize, curve: &str) -> Result<(), String> {
    if x.len() != len || y.len() != len {
        return Err(format!("EC coordinates must be {len} bytes each for {curve} (x: {}, y: {})", x.len(), y.len()));
    }
    Ok(())
}

/// The small primes of the ROCA detector (Nemec et al., CCS 2017).
const ROCA_PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109,
    113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// Infineon RSALib moduli (ROCA) can be factored. Their primes are `k·M + 65537^a mod M`, so
/// for every small prime p, `n mod p` lies in the subgroup generated by 65537. A random
/// modulus passes all 38 tests with probability about 2^-30.
fn has_roca_fingerprint(n: &[u8]) -> bool {
    ROCA_PRIMES.iter().all(|p| {
        // acc < p <= 167, so acc * 256 + 255 fits a u32 comfortably.
        let residue = n
            .iter()
            .fold(0u32, |acc, b| acc.wrapping_mul(256).wrapping_add(u32::from(*b)).checked_rem(*p).unwrap_or(0));
        let generator = 65537u32.checked_rem(*p).unwrap_or(0);
        let mut power = 1u32;
        // The subgroup has at most p - 1 elements; walk it once.
        for _ in 0..*p {
            if power == residue {
                return true;
            }
            power = power.wrapping_mul(generator).checked_rem(*p).unwrap_or(0);
            if power == 1 {
                break;
            }
        }
        false
    })
}

/// One usable key of a JWKS, prepared once per JWKS version.
pub struct Jwk {
    pub kid: Option<String>,
    /// The key's own `alg`, if the JWKS named one: the token must then use exactly it.
    pub alg: Option<Alg>,
    pub key: PublicKey,
    /// `key` as DER SubjectPublicKeyInfo, for host verification.
    pub spki: Vec<u8>,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `key` prints redacted; `spki` is the same material in DER and is left out.
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    pub fn new(kid: Option<String>, alg: Option<Alg>, key: PublicKey) -> Jwk {
        let spki = key.spki_der();
        Jwk { kid, alg, key, spki }
    }

    /// The algorithm comes from the key: a token's `alg` must fit the key type and, when the
    /// key names an `alg`, equal it.
    pub fn accepts(&self, alg: Alg) -> bool {
        self.key.supports(alg) && self.alg.map_or(true, |a| a == alg)
    }
}

#[derive(Debug, Default)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// The keys to try for a token, as Envoy's jwt_authn picks them: the key must accept
    /// `alg`; with a token `kid`, keys with that kid and keys without any kid qualify. Exact
    /// kid matches come first so a cap on attempts never cuts off the key that was named.
    pub fn candidates<'a>(&'a self, kid: Option<&'a str>, alg: Alg) -> impl Iterator<Item = &'a Jwk> + 'a {
        let named =
            self.keys.iter().filter(move |k| k.accepts(alg) && kid.map_or(true, |want| k.kid.as_deref() == Some(want)));
        let unnamed = self.keys.iter().filter(move |k| kid.is_some() && k.kid.is_none() && k.accepts(alg));
        named.chain(unnamed)
    }

    /// Whether some key carries exactly this kid (an unknown kid may mean the IdP rotated keys).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }
}

/// A JWKS entry that was left out, and why (logged by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    pub index: usize,
    pub kid: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "JWKS key #{} (kid {kid:?}) skipped: {}", self.index, self.reason),
            None => write!(f, "JWKS key #{} (no kid) skipped: {}", self.index, self.reason),
        }
    }
}

#[derive(Debug)]
pub struct ParsedJwks {
    pub set: JwkSet,
    pub skipped: Vec<SkippedKey>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    Json(String),
    NoKeysArray,
    NoUsableKey(Vec<SkippedKey>),
}

/// Most skipped keys a [`JwksError::NoUsableKey`] names; a hostile JWKS of thousands of bad
/// entries must not become a log line (and a shared record) of hundreds of KB.
const MAX_SKIPPED_NAMED: usize = 3;

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksError::Json(e) => write!(f, "{}", e.chars().take(200).collect::<String>()),
            JwksError::NoKeysArray => f.write_str("no \"keys\" array"),
            JwksError::NoUsableKey(skipped) => {
                write!(f, "no usable key ({} skipped", skipped.len())?;
                for s in skipped.iter().take(MAX_SKIPPED_NAMED) {
                    write!(
                        f,
                        "; #{} kid {:?}: {}",
                        s.index,
                        s.kid.as_deref().map(|k| k.chars().take(64).collect::<String>()),
                        s.reason
                    )?;
                }
                if skipped.len() > MAX_SKIPPED_NAMED {
                    f.write_str("; ...")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// JWKS nesting: the document, the `keys` array, a key, `key_ops`/`x5c`; a little headroom.
const MAX_JSON_DEPTH: usize = 16;

/// Members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

pub fn parse_jwks(input: &[u8]) -> Result<ParsedJwks, JwksError> {
    let doc = crate::json::parse_object(input, MAX_JSON_DEPTH).map_err(|e| JwksError::Json(e.to_string()))?;
    let entries = match doc.get("keys") {
        Some(Value::Array(entries)) => entries,
        _ => return Err(JwksError::NoKeysArray),
    };
    let mut set = JwkSet::default();
    let mut skipped = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let member = entry.as_object();
        // The kid is recorded for the log even when the entry is refused, if it is sane.
        let kid = member
            .and_then(|m| m.get("kid"))
            .and_then(Value::as_str)
            .filter(|k| k.len() <= MAX_KID_BYTES)
            .map(str::to_owned);
        match member.ok_or_else(|| "entry is not a JSON object".to_owned()).and_then(parse_key) {
            Ok(jwk) => set.keys.push(jwk),
            Err(reason) => skipped.push(SkippedKey { index, kid, reason }),
        }
    }
    if set.keys.is_empty() {
        return Err(JwksError::NoUsableKey(skipped));
    }
    Ok(ParsedJwks { set, skipped })
}

/// One JWKS entry to a usable key, or the reason it is not one.
fn parse_key(m: &Map<String, Value>) -> Result<Jwk, String> {
    let kid = match m.get("kid") {
        None => None,
        Some(Value::String(k)) if k.len() <= MAX_KID_BYTES => Some(k.clone()),
        Some(Value::String(k)) => return Err(format!("kid is {} bytes, over {MAX_KID_BYTES}", k.len())),
        Some(_) => return Err("kid is not a string".to_owned()),
    };
    let private: Vec<&str> = PRIVATE_MEMBERS.into_iter().filter(|p| m.contains_key(*p)).collect();
    if !private.is_empty() {
        return Err(format!(
            "contains private or secret key material ({}): a JWKS must publish public keys only",
            private.join(", ")
        ));
    }
    let kty = string_member(m, "kty")?.ok_or_else(|| "missing kty".to_owned())?;
    if kty != "RSA" && kty != "EC" {
        return Err(format!("unsupported kty {kty:?} (only RSA and EC)"));
    }
    if let Some(usage) = string_member(m, "use")? {
        if usage != "sig" {
            return Err(format!("use is {usage:?}, not \"sig\""));
        }
    }
    if let Some(ops) = m.get("key_ops") {
        let ops = ops.as_array().ok_or_else(|| "key_ops is not an array".to_owned())?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err("key_ops does not include \"verify\"".to_owned());
        }
    }
    let alg = match string_member(m, "alg")? {
        None => None,
        Some(name) => Some(Alg::from_name(name).ok_or_else(|| format!("unsupported alg {name:?}"))?),
    };
    let key = if kty == "RSA" {
        PublicKey::rsa_from_components(&b64_member(m, "n")?, &b64_member(m, "e")?)?
    } else {
        let crv = string_member(m, "crv")?.ok_or_else(|| "missing crv".to_owned())?;
        match crv {
            "P-256" => PublicKey::p256_from_coordinates(&coordinate(m, "x", 32)?, &coordinate(m, "y", 32)?)?,
            "P-384" => PublicKey::p384_from_coordinates(&coordinate(m, "x", 48)?, &coordinate(m, "y", 48)?)?,
            other => return Err(format!("unsupported crv {other:?} (only P-256 and P-384)")),
        }
    };
    if let Some(alg) = alg {
        if !key.supports(alg) {
            return Err(format!("alg {} does not fit this key ({key:?})", alg.name()));
        }
    }
    Ok(Jwk::new(kid, alg, key))
}

/// An optional member that must be a string when present.
fn string_member<'m>(m: &'m Map<String, Value>, name: &str) -> Result<Option<&'m str>, String> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

/// A required base64url member. Trailing `=` padding is tolerated (some IdPs pad, and
/// jwt_authn takes it: key material from the provider's own JWKS has no second meaning to
/// hide); otherwise the engine refuses the standard alphabet and non-zero trailing bits.
fn b64_member(m: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = string_member(m, name)?.ok_or_else(|| format!("missing {name}"))?;
    // Padding only where it belongs: to a multiple of four characters.
    let unpadded = text.trim_end_matches('=');
    let pad = text.len().saturating_sub(unpadded.len());
    if pad > 0 && (pad > 2 || text.len() % 4 != 0) {
        return Err(format!("{name} is not base64url: wrong padding"));
    }
    URL_SAFE_NO_PAD.decode(unpadded).map_err(|e| format!("{name} is not base64url: {e}"))
}

/// An EC coordinate, left-padded to the field's `len` bytes: RFC 7518 §6.2.1.2 asks for the
/// full length, but an IdP that drops leading zero bytes (one key in 256) would otherwise
/// lose every token, and jwt_authn takes the shorter form; the number is the same. Longer
/// values are refused by the key's own length check.
fn coordinate(m: &Map<String, Value>, name: &str, len: usize) -> Result<Vec<u8>, String> {
    let value = b64_member(m, name)?;
    let mut padded = vec![0u8; len.saturating_sub(value.len())];
    padded.extend(value);
    Ok(padded)
}

/// Keys shared by the unit tests of this module and of `crypto` (made with `openssl genpkey`).
#[cfg(test)]
pub(crate) mod test_keys {
    use super::*;

    pub const RSA_A_N: &str = crate::crypto::kat::RSA_N;
    pub const RSA_E: &str = "AQAB";
    pub const RSA_B_N: &str = "tXJq6glWdMj_2ehpDX8Uz7JTcu2I55SvA4ZMIaHSvoZIl4scEKTDXfm90NIt2AK-LljTNpv8MsP0P4ZphWmJ8etewEoHlwM9JJbXkTkbv5f59fm1Ek4H-_5Ur4VfurDZtVmZBQl51fXc6OJd7fe8PaS3sdQSxAdTwFQYv8j7eWojbzGh3WzUkm3lrLGZgnOO3hZiIagyC3DurB1uJz1WBrX2f6gGne0uEdwWEs7Afwv-zuHfaQKsIcczlbMcnw-dZzOZcaCHOzyqVwH_NFru81JDNLw-GepzDWDKKmC8EOk739Nfrya3we01sC6GO8ordGgxIXcK5J9BqVElU99CKQ";
    pub const RSA_1024_N: &str = "whnmTSx_TNieGudec6Gy3bjrvW4620zE2770VUz97tBG3o0T1r7Cwx43Cx4Orqy3prCTEP4vZvrnTF0YhCh6aKk8p6tzeVyWkRyrD1BPfWyUixUM4MA7HNhzSSa8QdRa1k4gIJVnzF75t5qDvOSiOtfcyGgwXSCypy3t5Ti6ooc";
    pub const P256_A_X: &str = crate::crypto::kat::P256_X;
    pub const P256_A_Y: &str = crate::crypto::kat::P256_Y;
    pub const P256_B_X: &str = "u3IYE29fP_5rn1THiqRuQjtf9ubumfriS9lh47qJ80c";
    pub const P256_B_Y: &str = "C2chc1Q6YktkNsGNCAg_0Qv7139LltqjgbWNoJSDcYw";
    pub const P384_A_X: &str = crate::crypto::kat::P384_X;
    pub const P384_A_Y: &str = crate::crypto::kat::P384_Y;
    pub const P384_B_X: &str = "m35TxBBa0dJNPsFSDclMpiz5-QEYEs1JgaZOaeT0kMlu4yK0lL5HSz-2pFbN2KlT";
    pub const P384_B_Y: &str = "ka80w4rDySEZLxxTv0R-KcEZMkcBKBUcBaOuyTQB4-XROXFgyWfuu_6seJK4HqEl";

    pub fn b64(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }
    pub fn rsa_a() -> PublicKey {
        PublicKey::rsa_from_components(&b64(RSA_A_N), &b64(RSA_E)).unwrap()
    }
    pub fn rsa_b() -> PublicKey {
        PublicKey::rsa_from_components(&b64(RSA_B_N), &b64(RSA_E)).unwrap()
    }
    pub fn p256_a() -> PublicKey {
        PublicKey::p256_from_coordinates(&b64(P256_A_X), &b64(P256_A_Y)).unwrap()
    }
    pub fn p256_b() -> PublicKey {
        PublicKey::p256_from_coordinates(&b64(P256_B_X), &b64(P256_B_Y)).unwrap()
    }
    pub fn p384_a() -> PublicKey {
        PublicKey::p384_from_coordinates(&b64(P384_A_X), &b64(P384_A_Y)).unwrap()
    }
    pub fn p384_b() -> PublicKey {
        PublicKey::p384_from_coordinates(&b64(P384_B_X), &b64(P384_B_Y)).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_keys::*;
    use super::*;
    use serde_json::json;

    fn parse(doc: Value) -> Result<ParsedJwks, JwksError> {
        parse_jwks(&serde_json::to_vec(&doc).unwrap())
    }

    /// The reason a single-key JWKS is refused, or `None` when the key is kept.
    fn reason(key: Value) -> Option<String> {
        match parse(json!({ "keys": [key] })) {
            Ok(parsed) => {
                assert_eq!(parsed.set.keys.len(), 1);
                None
            }
            Err(JwksError::NoUsableKey(skipped)) => {
                assert_eq!(skipped.len(), 1);
                Some(skipped[0].reason.clone())
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    fn assert_skipped(key: Value, needle: &str) {
        let why = reason(key.clone()).unwrap_or_else(|| panic!("{key} was accepted"));
        assert!(why.contains(needle), "reason {why:?} lacks {needle:?}");
    }

    fn rsa_jwk() -> Value {
        json!({ "kty": "RSA", "n": RSA_A_N, "e": RSA_E, "kid": "r1", "alg": "RS256", "use": "sig" })
    }
    fn p256_jwk() -> Value {
        json!({ "kty": "EC", "crv": "P-256", "x": P256_A_X, "y": P256_A_Y, "kid": "e1" })
    }
    fn p384_jwk() -> Value {
        json!({ "kty": "EC", "crv": "P-384", "x": P384_A_X, "y": P384_A_Y, "kid": "e2" })
    }
    fn with(mut key: Value, name: &str, value: Value) -> Value {
        key[name] = value;
        key
    }
    fn without(mut key: Value, name: &str) -> Value {
        key.as_object_mut().unwrap().remove(name);
        key
    }
    fn enc(bytes: &[u8]) -> Value {
        Value::String(URL_SAFE_NO_PAD.encode(bytes))
    }

    #[test]
    fn accepts_rsa_and_ec_keys() {
        let parsed = parse(json!({ "keys": [rsa_jwk(), p256_jwk(), p384_jwk()] })).unwrap();
        assert!(parsed.skipped.is_empty());
        let keys = &parsed.set.keys;
        assert_eq!(keys.len(), 3);
        assert!(matches!(keys[0].key, PublicKey::Rsa(_)));
        assert_eq!(keys[0].alg, Some(Alg::RS256));
        assert_eq!(keys[0].kid.as_deref(), Some("r1"));
        assert!(matches!(keys[1].key, PublicKey::P256(_)));
        assert_eq!(keys[1].alg, None);
        assert!(matches!(keys[2].key, PublicKey::P384(_)));
    }

    #[test]
    fn key_type_supports_its_algorithms_only() {
        use Alg::*;
        let rsa = rsa_a();
        for alg in [RS256, RS384, RS512, PS256, PS384, PS512] {
            assert!(rsa.supports(alg));
        }
        assert!(!rsa.supports(ES256) && !rsa.supports(ES384));
        assert_eq!(Alg::ALL.iter().filter(|a| p256_a().supports(**a)).collect::<Vec<_>>(), [&ES256]);
        assert_eq!(Alg::ALL.iter().filter(|a| p384_a().supports(**a)).collect::<Vec<_>>(), [&ES384]);
    }

    #[test]
    fn key_alg_pins_the_token_alg() {
        let parsed = parse(json!({ "keys": [rsa_jwk(), without(rsa_jwk(), "alg")] })).unwrap();
        assert!(parsed.set.keys[0].accepts(Alg::RS256));
        assert!(!parsed.set.keys[0].accepts(Alg::PS256));
        assert!(parsed.set.keys[1].accepts(Alg::PS256));
        assert!(!parsed.set.keys[1].accepts(Alg::ES256));
    }

    #[test]
    fn optional_members_that_allow_verification() {
        assert_eq!(reason(with(rsa_jwk(), "key_ops", json!(["verify"]))), None);
        assert_eq!(reason(with(rsa_jwk(), "key_ops", json!(["sign", "verify"]))), None);
        assert_eq!(reason(without(without(rsa_jwk(), "use"), "kid")), None);
        // Certificates and thumbprints are not used (the key itself is), so they are ignored.
        assert_eq!(reason(with(with(rsa_jwk(), "x5c", json!(["MIIB"])), "x5t", json!("abc"))), None);
        assert_eq!(reason(with(rsa_jwk(), "kid", json!("k".repeat(MAX_KID_BYTES)))), None);
    }

    #[test]
    fn leading_zero_bytes_are_tolerated() {
        let mut n = vec![0u8, 0];
        n.extend(b64(RSA_A_N));
        assert_eq!(reason(with(rsa_jwk(), "n", enc(&n))), None);
        assert_eq!(reason(with(rsa_jwk(), "e", enc(&[0, 1, 0, 1]))), None);
    }

    #[test]
    fn skips_entries_that_are_not_objects_or_have_bad_kid() {
        assert_skipped(json!(1), "not a JSON object");
        assert_skipped(json!("RSA"), "not a JSON object");
        assert_skipped(with(rsa_jwk(), "kid", json!(7)), "kid is not a string");
        assert_skipped(with(rsa_jwk(), "kid", json!("k".repeat(MAX_KID_BYTES + 1))), "kid is 257 bytes");
    }

    #[test]
    fn skips_private_and_secret_keys() {
        assert_skipped(with(rsa_jwk(), "d", json!("AQAB")), "private or secret key material (d)");
        for member in ["p", "q", "dp", "dq", "qi", "oth"] {
            assert_skipped(with(rsa_jwk(), member, json!("AQAB")), member);
        }
        assert_skipped(with(p256_jwk(), "d", json!("AQAB")), "private");
        assert_skipped(json!({ "kty": "oct", "k": "c2VjcmV0", "alg": "HS256" }), "secret key material (k)");
    }

    #[test]
    fn skips_unsupported_key_types() {
        assert_skipped(without(rsa_jwk(), "kty"), "missing kty");
        assert_skipped(with(rsa_jwk(), "kty", json!(1)), "kty is not a string");
        assert_skipped(with(rsa_jwk(), "kty", json!("rsa")), "unsupported kty \"rsa\"");
        assert_skipped(json!({ "kty": "oct", "alg": "HS256" }), "unsupported kty \"oct\"");
        assert_skipped(json!({ "kty": "OKP", "crv": "Ed25519", "x": P256_A_X }), "unsupported kty \"OKP\"");
    }

    #[test]
    fn skips_keys_not_meant_for_verification() {
        assert_skipped(with(rsa_jwk(), "use", json!("enc")), "use is \"enc\"");
        assert_skipped(with(rsa_jwk(), "use", json!(["sig"])), "use is not a string");
        assert_skipped(with(rsa_jwk(), "key_ops", json!(["sign"])), "key_ops does not include \"verify\"");
        assert_skipped(with(rsa_jwk(), "key_ops", json!([])), "key_ops does not include");
        assert_skipped(with(rsa_jwk(), "key_ops", json!("verify")), "key_ops is not an array");
    }

    #[test]
    fn skips_unsupported_or_mismatched_alg() {
        for alg in ["HS256", "none", "EdDSA", "ES512", "RSA1_5", "rs256", ""] {
            assert_skipped(with(rsa_jwk(), "alg", json!(alg)), &format!("unsupported alg {alg:?}"));
        }
        assert_skipped(with(rsa_jwk(), "alg", json!(256)), "alg is not a string");
        assert_skipped(with(rsa_jwk(), "alg", json!("ES256")), "alg ES256 does not fit");
        assert_skipped(with(p256_jwk(), "alg", json!("RS256")), "alg RS256 does not fit");
        assert_skipped(with(p256_jwk(), "alg", json!("ES384")), "alg ES384 does not fit");
        assert_skipped(with(p384_jwk(), "alg", json!("ES256")), "alg ES256 does not fit");
        assert_eq!(reason(with(p256_jwk(), "alg", json!("ES256"))), None);
        assert_eq!(reason(with(p384_jwk(), "alg", json!("ES384"))), None);
        assert_eq!(reason(with(rsa_jwk(), "alg", json!("PS512"))), None);
    }

    #[test]
    fn skips_rsa_keys_outside_policy() {
        assert_skipped(with(rsa_jwk(), "n", json!(RSA_1024_N)), "RSA modulus of 1024 bits is below 2048");
        // The bound is exact: 2047 bits out, 2048 in (structure only).
        let mut short = vec![0xffu8; RSA_MIN_BITS / 8];
        short[0] = 0x7f;
        assert_skipped(with(rsa_jwk(), "n", enc(&short)), "RSA modulus of 2047 bits is below 2048");
        short[0] = 0xff;
        assert_eq!(reason(with(rsa_jwk(), "n", enc(&short))), None);
        // Odd 8192-bit modulus: the largest accepted (structure only, no one knows its factors).
        let mut big = vec![0xffu8; RSA_MAX_BITS / 8];
        assert_eq!(reason(with(rsa_jwk(), "n", enc(&big))), None);
        big.insert(0, 1);
        assert_skipped(with(rsa_jwk(), "n", enc(&big)), "RSA modulus longer than 8192 bits");
        let mut just_over = vec![0xffu8; RSA_MAX_BITS / 8 - 1];
        just_over.insert(0, 0x01);
        just_over.insert(0, 0x00);
        assert_eq!(reason(with(rsa_jwk(), "n", enc(&just_over))), None, "8185 bits is fine");
        let mut even = b64(RSA_A_N);
        *even.last_mut().unwrap() &= 0xfe;
        assert_skipped(with(rsa_jwk(), "n", enc(&even)), "RSA key refused");
        assert_skipped(with(rsa_jwk(), "n", json!("")), "RSA modulus of 0 bits");
        assert_skipped(with(rsa_jwk(), "e", json!("AQAA")), "RSA exponent 65536 is even");
        assert_skipped(with(rsa_jwk(), "e", json!("AQ")), "RSA exponent 1 is below 3");
        assert_skipped(with(rsa_jwk(), "e", json!("")), "RSA exponent 0 is below 3");
        assert_skipped(with(rsa_jwk(), "e", json!("AAAA")), "RSA exponent 0 is below 3");
        assert_skipped(with(rsa_jwk(), "e", enc(&[1, 0, 0, 0, 1])), "larger than 2^32-1");
        assert_eq!(reason(with(rsa_jwk(), "e", enc(&[0xff, 0xff, 0xff, 0xff]))), None);
        assert_eq!(reason(with(rsa_jwk(), "e", json!("Aw"))), None, "e = 3 is allowed");
    }

    #[test]
    fn skips_rsa_keys_with_the_roca_fingerprint() {
        // The ROCA key of Wycheproof's json_web_key_test.json (kid-rsa-roca-sign).
        const ROCA_N: &str = "AanFpofbj7KjD4Lf-N2hVMKR7yewSyXhhbirIMTGpfYEhZ_lnt5UoK98DnKIgArXGTu3MaW_HhFw16HGaTDUHqPrId7fe4r11CqRw09yBFuW79V8sYIwHdzCaWflUI6auImYbVfoN9_nD5n8N8SY9DwXw7mwZM9wREPXoDPgOoIWl6q_MPsp7n0zs3Z5ZaiQWOOzl1S9OhwAfSiiOwz6efnXEaxuTEtPd7BjSx7NaFka8Dx9U7YqXy2RFj1O9PjyaDGuRh7YXsX3iMUSP_wSyHQg_c_qHRtKUsNSGCT7OZg0hzm2KphtjnayKJvC64vAbROBR4Ubg6Bxg9IQVZ-QYyE";
        assert_skipped(with(rsa_jwk(), "n", json!(ROCA_N)), "ROCA");
        assert!(!has_roca_fingerprint(&b64(RSA_A_N)));
        assert!(!has_roca_fingerprint(&b64(RSA_B_N)));
    }

    #[test]
    fn skips_ec_keys_outside_policy() {
        assert_skipped(without(p256_jwk(), "crv"), "missing crv");
        assert_skipped(with(p256_jwk(), "crv", json!("P-521")), "unsupported crv \"P-521\"");
        assert_skipped(with(p256_jwk(), "crv", json!("secp256k1")), "unsupported crv");
        let x = b64(P256_A_X);
        let mut padded = vec![0u8];
        padded.extend(&x);
        assert_skipped(with(p256_jwk(), "x", enc(&padded)), "(x: 33, y: 32)");
        assert_skipped(with(p256_jwk(), "crv", json!("P-384")), "not on curve P-384");
        assert_skipped(with(p384_jwk(), "crv", json!("P-256")), "32 bytes each for P-256");
        let mut y = b64(P256_A_Y);
        *y.last_mut().unwrap() ^= 1;
        assert_skipped(with(p256_jwk(), "y", enc(&y)), "not on curve P-256");
        let mut y = b64(P384_A_Y);
        *y.last_mut().unwrap() ^= 1;
        assert_skipped(with(p384_jwk(), "y", enc(&y)), "not on curve P-384");
        assert_skipped(with(p256_jwk(), "x", enc(&[0; 32])), "not on curve");
    }

    /// A coordinate with its leading zero byte dropped (what some IdPs publish for one key
    /// in 256; jwt_authn takes it) is the same number: the key verifies its signatures.
    #[test]
    fn ec_coordinates_without_their_leading_zeros_are_the_same_key() {
        use p256::ecdsa::signature::Signer;
        let (signer, point) = (1u64..)
            .find_map(|k| {
                let mut scalar = [0u8; 32];
                scalar[24..].copy_from_slice(&k.to_be_bytes());
                let signer = p256::ecdsa::SigningKey::from_slice(&scalar).ok()?;
                let point = signer.verifying_key().to_encoded_point(false);
                (point.x()?[0] == 0).then_some((signer, point))
            })
            .unwrap();
        let (x, y) = (point.x().unwrap(), point.y().unwrap());
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": enc(&x[1..]), "y": enc(y)});
        let set = parse(json!({"keys": [jwk]})).unwrap().set;
        let sig: p256::ecdsa::Signature = signer.sign(b"input");
        assert_eq!(crate::crypto::verify_key(Alg::ES256, &set.keys[0].key, b"input", &sig.to_bytes()), Ok(()));
        assert!(reason(json!({"kty": "EC", "crv": "P-256", "x": enc(&[]), "y": enc(y)}))
            .unwrap()
            .contains("not on curve"));
    }

    #[test]
    fn skips_missing_or_malformed_key_material() {
        assert_skipped(without(rsa_jwk(), "n"), "missing n");
        assert_skipped(without(rsa_jwk(), "e"), "missing e");
        assert_skipped(without(p256_jwk(), "x"), "missing x");
        assert_skipped(without(p384_jwk(), "y"), "missing y");
        assert_skipped(with(rsa_jwk(), "n", json!(12345)), "n is not a string");
        // Padding is tolerated (some IdPs pad; jwt_authn takes it), nothing else is.
        assert_eq!(RSA_A_N.len() % 4, 2);
        assert_eq!(reason(with(rsa_jwk(), "n", json!(format!("{RSA_A_N}==")))), None);
        assert_skipped(with(rsa_jwk(), "n", json!(format!("{RSA_A_N}="))), "n is not base64url: wrong padding");
        assert_skipped(with(rsa_jwk(), "e", json!("AQAB=")), "e is not base64url: wrong padding");
        assert_skipped(with(rsa_jwk(), "n", json!(format!("{RSA_A_N}==="))), "n is not base64url");
        let standard = RSA_A_N.replace('-', "+").replace('_', "/");
        assert_ne!(standard, RSA_A_N);
        assert_skipped(with(rsa_jwk(), "n", json!(standard)), "n is not base64url");
        assert_skipped(with(rsa_jwk(), "n", json!(format!(" {RSA_A_N}"))), "n is not base64url");
        // 342 + 3 characters: a length no byte string encodes to.
        assert_skipped(with(rsa_jwk(), "n", json!(format!("{RSA_A_N}AAA"))), "n is not base64url");
        // 43 characters carry 258 bits: the last 2 must be zero. "…XKE" is canonical, "…XKF" not.
        assert!(P256_A_X.ends_with('E'));
        let noncanonical = format!("{}F", &P256_A_X[..42]);
        assert_skipped(with(p256_jwk(), "x", json!(noncanonical)), "x is not base64url");
    }

    #[test]
    fn keeps_good_keys_beside_skipped_ones() {
        let doc = json!({ "keys": [
            { "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" },
            rsa_jwk(),
            with(p256_jwk(), "use", json!("enc")),
            p384_jwk(),
        ]});
        let parsed = parse(doc).unwrap();
        assert_eq!(parsed.set.keys.len(), 2);
        assert_eq!(parsed.skipped.len(), 2);
        assert_eq!(parsed.skipped[0].index, 0);
        assert_eq!(parsed.skipped[0].kid.as_deref(), Some("hmac"));
        assert_eq!(parsed.skipped[1].index, 2);
        assert_eq!(parsed.skipped[1].kid.as_deref(), Some("e1"));
    }

    #[test]
    fn document_level_errors() {
        assert!(matches!(parse_jwks(b"not json"), Err(JwksError::Json(_))));
        assert!(matches!(parse_jwks(b"[]"), Err(JwksError::Json(_))));
        assert!(matches!(parse_jwks(b""), Err(JwksError::Json(_))));
        assert!(matches!(parse_jwks(br#"{"keys":[]} x"#), Err(JwksError::Json(_))));
        // Two `n` in one key would let two parsers see two keys.
        let dup = format!(r#"{{"keys":[{{"kty":"RSA","n":"{RSA_A_N}","n":"{RSA_B_N}","e":"AQAB"}}]}}"#);
        assert!(matches!(parse_jwks(dup.as_bytes()), Err(JwksError::Json(m)) if m.contains("duplicate")));
        assert_eq!(parse(json!({})).unwrap_err(), JwksError::NoKeysArray);
        assert_eq!(parse(json!({ "keys": {} })).unwrap_err(), JwksError::NoKeysArray);
        assert_eq!(parse(json!({ "keys": rsa_jwk() })).unwrap_err(), JwksError::NoKeysArray);
        assert_eq!(parse(json!({ "keys": [] })).unwrap_err(), JwksError::NoUsableKey(vec![]));
        let err = parse(json!({ "keys": [with(rsa_jwk(), "use", json!("enc"))] })).unwrap_err();
        assert_eq!(
            err,
            JwksError::NoUsableKey(vec![SkippedKey {
                index: 0,
                kid: Some("r1".into()),
                reason: "use is \"enc\", not \"sig\"".into()
            }])
        );
        // A single key entry is a JWK, not a JWKS.
        assert_eq!(parse(rsa_jwk()).unwrap_err(), JwksError::NoKeysArray);
        assert_eq!(err.to_string(), r#"no usable key (1 skipped; #0 kid Some("r1"): use is "enc", not "sig")"#);
        // Thousands of bad entries make a bounded message (it is logged and kept in the
        // shared record).
        let many: Vec<_> = (0..5000)
            .map(|i| with(rsa_jwk(), "kid", json!(format!("{i}{}", "x".repeat(100)))))
            .map(|k| with(k, "use", json!("enc")))
            .collect();
        let text = parse(json!({ "keys": many })).unwrap_err().to_string();
        assert!(
            text.starts_with("no usable key (5000 skipped; #0 kid") && text.ends_with("; ...)") && text.len() < 600,
            "{text}"
        );
    }

    #[test]
    fn debug_never_prints_key_material() {
        let parsed = parse(json!({ "keys": [rsa_jwk(), p256_jwk(), p384_jwk()] })).unwrap();
        let text = format!("{parsed:?}");
        assert!(text.contains("PublicKey::Rsa(2048 bits)"), "{text}");
        assert!(text.contains("PublicKey::P256") && text.contains("PublicKey::P384"), "{text}");
        for secret in [&RSA_A_N[..16], &P256_A_X[..16], &P384_A_Y[..16]] {
            assert!(!text.contains(secret));
        }
        // Neither the modulus nor coordinates appear in any form: no long digit/hex runs.
        assert!(text.len() < 400, "{text}");
        assert_eq!(format!("{:?}", rsa_a()), "PublicKey::Rsa(2048 bits)");
    }

    fn set(keys: Vec<(Option<&str>, Option<Alg>, PublicKey)>) -> JwkSet {
        JwkSet { keys: keys.into_iter().map(|(kid, alg, key)| Jwk::new(kid.map(str::to_owned), alg, key)).collect() }
    }

    fn kids<'a>(it: impl Iterator<Item = &'a Jwk>) -> Vec<Option<&'a str>> {
        it.map(|k| k.kid.as_deref()).collect()
    }

    #[test]
    fn candidates_follow_jwt_authn() {
        let s = set(vec![
            (None, None, rsa_b()),
            (Some("a"), None, rsa_a()),
            (Some("b"), Some(Alg::PS256), rsa_b()),
            (Some("a"), None, p256_a()),
            (Some("c"), None, rsa_a()),
        ]);
        // Named key first, then keys without a kid.
        assert_eq!(kids(s.candidates(Some("a"), Alg::RS256)), [Some("a"), None]);
        assert_eq!(kids(s.candidates(Some("a"), Alg::ES256)), [Some("a")]);
        assert_eq!(kids(s.candidates(Some("b"), Alg::RS256)), [None], "b only takes PS256");
        assert_eq!(kids(s.candidates(Some("b"), Alg::PS256)), [Some("b"), None]);
        assert_eq!(kids(s.candidates(Some("zz"), Alg::RS256)), [None]);
        assert_eq!(kids(s.candidates(Some("zz"), Alg::ES384)), Vec::<Option<&str>>::new());
        // No kid in the token: every key that accepts the algorithm, in order.
        assert_eq!(kids(s.candidates(None, Alg::RS256)), [None, Some("a"), Some("c")]);
        assert_eq!(kids(s.candidates(None, Alg::PS256)), [None, Some("a"), Some("b"), Some("c")]);
        assert!(s.has_kid("a") && s.has_kid("c"));
        assert!(!s.has_kid("zz") && !s.has_kid(""));
    }
}
