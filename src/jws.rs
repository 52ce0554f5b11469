//! Compact JWS parsing (RFC 7515 §7.1), strict: exactly three non-empty base64url segments
//! without padding, JSON objects without duplicate members, size and depth bounded before
//! any of it is decoded.

use crate::json::{parse_object, JsonError};
use crate::jwk::Alg;
use crate::status::Rejection;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value};
use std::fmt;

/// Longest `kid` we look up; a key id is an opaque short label, never a path or a query.
pub const MAX_KID_LEN: usize = 256;

/// The protected header members the filter acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Alg,
    pub kid: Option<String>,
}

/// A parsed, not yet verified, compact JWS.
pub struct Jws<'a> {
    pub header: Header,
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`: what the signature covers.
    pub signing_input: &'a str,
    /// The payload segment as sent, forwarded by `forward_payload_header`.
    pub payload_b64: &'a str,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// A JWS whose payload is a JWT claims set (a JSON object).
pub struct Jwt<'a> {
    pub jws: Jws<'a>,
    pub claims: Map<String, Value>,
}

impl fmt::Debug for Jws<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payload and signature are credentials; only the routing facts are printed.
        f.debug_struct("Jws").field("header", &self.header).finish_non_exhaustive()
    }
}

impl fmt::Debug for Jwt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwt").field("header", &self.jws.header).finish_non_exhaustive()
    }
}

pub struct Limits {
    pub max_token_size: usize,
    pub max_json_depth: usize,
}

/// Parses a compact JWS whose payload is a JSON object (a JWT).
pub fn parse<'a>(token: &'a str, limits: &Limits) -> Result<Jwt<'a>, Rejection> {
    let jws = parse_jws(token, limits)?;
    let claims = parse_object(&jws.payload, limits.max_json_depth).map_err(json_rejection)?;
    Ok(Jwt { jws, claims })
}

/// Parses a compact JWS, payload left as bytes.
pub fn parse_jws<'a>(token: &'a str, limits: &Limits) -> Result<Jws<'a>, Rejection> {
    if token.len() > limits.max_token_size {
        return Err(Rejection::TokenTooLarge);
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(Rejection::TokenMalformed);
    };
    if h64.is_empty() || p64.is_empty() || s64.is_empty() {
        return Err(Rejection::TokenMalformed);
    }
    let signing_input =
        token.get(..h64.len().saturating_add(1).saturating_add(p64.len())).ok_or(Rejection::TokenMalformed)?;

    let header_json = decode_segment(h64)?;
    let header_map = parse_object(&header_json, limits.max_json_depth).map_err(json_rejection)?;
    let header = parse_header(&header_map)?;
    let payload = decode_segment(p64)?;
    let signature = decode_segment(s64)?;
    Ok(Jws { header, signing_input, payload_b64: p64, payload, signature })
}

/// Strict base64url: the URL-safe alphabet, no padding, no non-canonical trailing bits.
pub fn decode_segment(segment: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| Rejection::TokenMalformed)
}

fn json_rejection(_: JsonError) -> Rejection {
    Rejection::TokenMalformed
}

fn parse_header(h: &Map<String, Value>) -> Result<Header, Rejection> {
    // The allow-list is checked before anything else: `none` and HS* never get further.
    let alg = match h.get("alg") {
        Some(Value::String(name)) => Alg::from_name(name).ok_or(Rejection::AlgorithmUnsupported)?,
        Some(_) => return Err(Rejection::HeaderInvalid),
        None => return Err(Rejection::TokenMalformed),
    };
    match h.get("crit") {
        None => {}
        // RFC 7515 §4.1.11: an empty list is malformed; we understand no extension at all.
        Some(Value::Array(list)) if !list.is_empty() && list.iter().all(Value::is_string) => {
            return Err(Rejection::CritUnsupported)
        }
        Some(_) => return Err(Rejection::HeaderInvalid),
    }
    // A nested JWT would need a second verification with its own rules; refuse it rather
    // than forward an inner token nobody checked.
    if let Some(cty) = h.get("cty") {
        match cty.as_str() {
            Some(c) if c.eq_ignore_ascii_case("JWT") => return Err(Rejection::HeaderInvalid),
            Some(_) => {}
            None => return Err(Rejection::HeaderInvalid),
        }
    }
    let kid = match h.get("kid") {
        None => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID_LEN => Some(k.clone()),
        Some(_) => return Err(Rejection::HeaderInvalid),
    };
    // `jwk`, `jku`, `x5u`, `x5c`, `x5t`: keys named by the token are never used, so they
    // are not even read.
    Ok(Header { alg, kid })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }
    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", b64(header), b64(payload))
    }
    const LIMITS: Limits = Limits { max_token_size: 8192, max_json_depth: 16 };
    fn err(t: &str) -> Rejection {
        parse(t, &LIMITS).unwrap_err()
    }

    #[test]
    fn parses_a_well_formed_token() {
        let t = token(r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#, r#"{"sub":"u"}"#);
        let jwt = parse(&t, &LIMITS).unwrap();
        assert_eq!(jwt.jws.header, Header { alg: Alg::ES256, kid: Some("k1".into()) });
        assert_eq!(jwt.claims["sub"], "u");
        assert_eq!(jwt.jws.signature, b"sig");
        assert_eq!(jwt.jws.signing_input, t.rsplit_once('.').unwrap().0);
        assert!(!format!("{jwt:?}").contains("sub"));
    }

    #[test]
    fn structure_errors() {
        let good = token(r#"{"alg":"RS256"}"#, "{}");
        assert_eq!(err(&format!("{good}.x")), Rejection::TokenMalformed);
        assert_eq!(err(good.rsplit_once('.').unwrap().0), Rejection::TokenMalformed);
        assert_eq!(err(&format!("{}.", good.rsplit_once('.').unwrap().0)), Rejection::TokenMalformed);
        assert_eq!(err(&format!(".{}", b64("{}"))), Rejection::TokenMalformed);
        assert_eq!(err(""), Rejection::TokenMalformed);
        assert_eq!(err(".."), Rejection::TokenMalformed);
    }

    #[test]
    fn base64_must_be_canonical_unpadded_urlsafe() {
        let h = b64(r#"{"alg":"RS256"}"#);
        assert_eq!(err(&format!("{h}=.e30.c2ln")), Rejection::TokenMalformed);
        assert_eq!(err(&format!("{h}.e30=.c2ln")), Rejection::TokenMalformed);
        assert_eq!(err(&format!("{h}.e30.c2ln=")), Rejection::TokenMalformed);
        assert_eq!(err(&format!("{h}.e3 0.c2ln")), Rejection::TokenMalformed);
        assert_eq!(err(&format!("{h}.e30.c2l+")), Rejection::TokenMalformed);
        // "e31" decodes to the same byte as "e30" with non-zero trailing bits.
        assert_eq!(err(&format!("{h}.e31.c2ln")), Rejection::TokenMalformed);
        assert!(parse(&format!("{h}.e30.c2ln"), &LIMITS).is_ok());
    }

    #[test]
    fn algorithm_allow_list_comes_first() {
        for alg in ["none", "None", "NONE", "HS256", "HS384", "HS512", "EdDSA", "rs256", "RS256 ", ""] {
            let t = token(&format!(r#"{{"alg":"{alg}","crit":["x"]}}"#), "{}");
            assert_eq!(err(&t), Rejection::AlgorithmUnsupported, "{alg}");
        }
        assert_eq!(err(&token(r#"{"alg":5}"#, "{}")), Rejection::HeaderInvalid);
        assert_eq!(err(&token(r#"{"kid":"a"}"#, "{}")), Rejection::TokenMalformed);
    }

    #[test]
    fn header_members() {
        assert_eq!(err(&token(r#"{"alg":"RS256","crit":["exp"],"exp":1}"#, "{}")), Rejection::CritUnsupported);
        assert_eq!(err(&token(r#"{"alg":"RS256","crit":[]}"#, "{}")), Rejection::HeaderInvalid);
        assert_eq!(err(&token(r#"{"alg":"RS256","crit":"b64"}"#, "{}")), Rejection::HeaderInvalid);
        assert_eq!(err(&token(r#"{"alg":"RS256","cty":"JWT"}"#, "{}")), Rejection::HeaderInvalid);
        assert_eq!(err(&token(r#"{"alg":"RS256","cty":"jwt"}"#, "{}")), Rejection::HeaderInvalid);
        assert!(parse(&token(r#"{"alg":"RS256","cty":"json"}"#, "{}"), &LIMITS).is_ok());
        assert_eq!(err(&token(r#"{"alg":"RS256","kid":7}"#, "{}")), Rejection::HeaderInvalid);
        assert_eq!(err(&token(r#"{"alg":"RS256","kid":""}"#, "{}")), Rejection::HeaderInvalid);
        let long = "a".repeat(MAX_KID_LEN + 1);
        assert_eq!(err(&token(&format!(r#"{{"alg":"RS256","kid":"{long}"}}"#), "{}")), Rejection::HeaderInvalid);
        let odd = r#"{"alg":"RS256","kid":"../../etc/passwd' OR 1=1 --"}"#;
        assert_eq!(parse(&token(odd, "{}"), &LIMITS).unwrap().jws.header.kid.unwrap(), "../../etc/passwd' OR 1=1 --");
        // Key material named by the token is ignored, not trusted and not an error.
        let named = r#"{"alg":"RS256","jku":"https://evil/jwks","jwk":{"kty":"oct","k":"AA"},"x5u":"u","x5c":["x"]}"#;
        assert_eq!(parse(&token(named, "{}"), &LIMITS).unwrap().jws.header, Header { alg: Alg::RS256, kid: None });
    }

    #[test]
    fn json_is_strict() {
        assert_eq!(err(&token(r#"{"alg":"RS256","alg":"none"}"#, "{}")), Rejection::TokenMalformed);
        assert_eq!(err(&token(r#"{"alg":"RS256"}"#, r#"{"sub":"a","sub":"b"}"#)), Rejection::TokenMalformed);
        assert_eq!(err(&token(r#"{"alg":"RS256"}"#, "[1]")), Rejection::TokenMalformed);
        // A JWS may carry any payload; a JWT's must be a claims object.
        let foo = format!("{}.{}.c2ln", b64(r#"{"alg":"RS256"}"#), b64("foo"));
        assert_eq!(parse_jws(&foo, &LIMITS).unwrap().payload, b"foo");
        assert_eq!(err(&foo), Rejection::TokenMalformed);
        assert_eq!(err(&token(r#"{"alg":"RS256"}"#, "not json")), Rejection::TokenMalformed);
        let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(20), "]".repeat(20));
        assert_eq!(err(&token(r#"{"alg":"RS256"}"#, &deep)), Rejection::TokenMalformed);
    }

    #[test]
    fn size_limit_applies_before_decoding() {
        let big = format!("{}.{}.c2ln", "A".repeat(9000), "A");
        assert_eq!(err(&big), Rejection::TokenTooLarge);
    }
}
