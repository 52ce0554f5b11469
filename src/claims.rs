//! Registered-claim validation (RFC 7519 §4.1), run only after the signature verified.
//!
//! Types are checked whether or not a rule uses the claim: an `exp` that is a string is an
//! invalid token, not a token without expiry.

use crate::config::{Provider, StringMatcher};
use crate::status::Rejection;
use serde_json::{Map, Value};

/// Largest NumericDate accepted: 9999-12-31T23:59:59Z. Beyond it (or negative) the value is
/// nonsense, and treating it as "far future" would make such a token never expire.
pub const MAX_NUMERIC_DATE: f64 = 253_402_300_799.0;

/// What a provider (or a rule's audience override) asks of the claims.
pub struct ClaimPolicy<'a> {
    /// Accepted issuers; empty skips the check.
    pub issuers: &'a [String],
    pub audiences: &'a [String],
    pub subjects: Option<&'a StringMatcher>,
    pub require_expiration: bool,
    pub max_lifetime_secs: Option<u64>,
    pub clock_skew_secs: u64,
    /// The `descope` preset's project: its session tokens only (`drn` is `DS` where
    /// present), an `aud` that names the project where present and no audiences are
    /// configured, and no `iat` in the future — what Descope's SDKs check.
    pub descope_project: Option<&'a str>,
}

impl<'a> ClaimPolicy<'a> {
    pub fn for_provider(p: &'a Provider, audiences: Option<&'a [String]>) -> ClaimPolicy<'a> {
        ClaimPolicy {
            issuers: &p.issuers,
            audiences: audiences.unwrap_or(&p.audiences),
            subjects: p.subjects.as_ref(),
            require_expiration: p.require_expiration,
            max_lifetime_secs: p.max_lifetime.map(|d| d.as_secs()),
            clock_skew_secs: p.clock_skew_seconds,
            descope_project: p.descope_project.as_deref(),
        }
    }
}

/// Validates `claims` at unix time `now` (seconds).
pub fn validate(claims: &Map<String, Value>, policy: &ClaimPolicy<'_>, now: u64) -> Result<(), Rejection> {
    // Fractions are allowed (RFC 7519 §2); round towards the stricter side.
    let exp = numeric_date(claims, "exp")?.map(|v| v.floor() as u64);
    let nbf = numeric_date(claims, "nbf")?.map(|v| v.ceil() as u64);
    let iat = numeric_date(claims, "iat")?.map(|v| v.ceil() as u64);
    let iss = string_claim(claims, "iss")?;
    let sub = string_claim(claims, "sub")?;
    // Not checked against anything, but an upstream doing replay detection on it must get
    // the string RFC 7519 §4.1.7 promises (jwt_authn refuses a non-string `jti` too).
    string_claim(claims, "jti")?;
    let aud = audiences(claims)?;

    if policy.descope_project.is_some() {
        // A refresh token (`DSR`) is signed by the same key and names the same user, but it
        // lives for weeks and survives logout at the gateway; only session tokens open APIs.
        match claims.get("drn") {
            None => {}
            Some(Value::String(d)) if d == "DS" => {}
            Some(_) => return Err(Rejection::TokenTypeNotAllowed),
        }
        if iat.is_some_and(|iat| now.saturating_add(policy.clock_skew_secs) < iat) {
            return Err(Rejection::NotYetValid);
        }
    }
    match exp {
        Some(exp) => {
            if now > exp.saturating_add(policy.clock_skew_secs) {
                return Err(Rejection::Expired);
            }
            if let Some(max) = policy.max_lifetime_secs {
                if exp.saturating_sub(now) > max {
                    return Err(Rejection::LifetimeTooLong);
                }
            }
        }
        None if policy.require_expiration || policy.max_lifetime_secs.is_some() => {
            return Err(Rejection::ExpirationRequired)
        }
        None => {}
    }
    if let Some(nbf) = nbf {
        if now.saturating_add(policy.clock_skew_secs) < nbf {
            return Err(Rejection::NotYetValid);
        }
    }
    // Exact comparison: no case folding, no trailing-slash normalisation.
    if !policy.issuers.is_empty() && !iss.is_some_and(|i| policy.issuers.iter().any(|w| w == i)) {
        return Err(Rejection::IssuerNotAllowed);
    }
    if let Some(m) = policy.subjects {
        if !sub.is_some_and(|s| m.matches(s)) {
            return Err(Rejection::SubjectNotAllowed);
        }
    }
    // RFC 7800 confirmation: the token is bound to a key (DPoP's `jkt`, mTLS's `x5t#S256`)
    // whose proof of possession this filter does not check. Taken as a bearer token, a
    // stolen copy would work; refused instead.
    if claims.contains_key("cnf") {
        return Err(Rejection::TokenBound);
    }
    if !policy.audiences.is_empty() {
        if !aud.iter().any(|a| policy.audiences.iter().any(|w| w == a)) {
            return Err(Rejection::AudienceNotAllowed);
        }
    } else if let Some(project) = policy.descope_project {
        // Descope's Python SDK: an `aud` that is there must name the project.
        if !aud.is_empty() && !aud.contains(&project) {
            return Err(Rejection::AudienceNotAllowed);
        }
    }
    Ok(())
}

fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if (0.0..=MAX_NUMERIC_DATE).contains(&v) => Ok(Some(v)),
            _ => Err(Rejection::ClaimInvalid),
        },
        Some(_) => Err(Rejection::ClaimInvalid),
    }
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Rejection::ClaimInvalid),
    }
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
fn audiences(claims: &Map<String, Value>) -> Result<Vec<&str>, Rejection> {
    match claims.get("aud") {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.as_str()]),
        Some(Value::Array(items)) => items.iter().map(|v| v.as_str().ok_or(Rejection::ClaimInvalid)).collect(),
        Some(_) => Err(Rejection::ClaimInvalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MatchKind;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn policy() -> ClaimPolicy<'static> {
        ClaimPolicy {
            issuers: &[],
            audiences: &[],
            subjects: None,
            require_expiration: false,
            max_lifetime_secs: None,
            clock_skew_secs: 60,
            descope_project: None,
        }
    }
    fn check(claims: Value, p: &ClaimPolicy<'_>) -> Result<(), Rejection> {
        validate(claims.as_object().unwrap(), p, NOW)
    }

    #[test]
    fn sender_constrained_tokens_are_refused() {
        let p = policy();
        assert_eq!(
            check(json!({"cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}}), &p),
            Err(Rejection::TokenBound)
        );
        assert_eq!(
            check(json!({"cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}), &p),
            Err(Rejection::TokenBound)
        );
        assert_eq!(check(json!({"sub": "u"}), &p), Ok(()));
    }

    #[test]
    fn descope_preset_checks() {
        let mut p = policy();
        // Without the preset none of these are looked at.
        assert_eq!(check(json!({"drn": "DSR", "aud": "other", "iat": NOW + 3600}), &p), Ok(()));
        p.descope_project = Some("P2abc");
        p.clock_skew_secs = 5;
        assert_eq!(check(json!({"drn": "DS"}), &p), Ok(()));
        assert_eq!(check(json!({}), &p), Ok(()));
        for drn in [json!("DSR"), json!("ds"), json!(""), json!(null), json!(["DS"])] {
            assert_eq!(check(json!({ "drn": drn }), &p), Err(Rejection::TokenTypeNotAllowed), "{drn}");
        }
        // `aud`, where present, must name the project; configured audiences replace that.
        assert_eq!(check(json!({"aud": "P2abc"}), &p), Ok(()));
        assert_eq!(check(json!({"aud": ["x", "P2abc"]}), &p), Ok(()));
        assert_eq!(check(json!({"aud": "P2abcd"}), &p), Err(Rejection::AudienceNotAllowed));
        assert_eq!(check(json!({"aud": []}), &p), Ok(()));
        let configured = ["api".to_owned()];
        p.audiences = &configured;
        assert_eq!(check(json!({"aud": "api"}), &p), Ok(()));
        assert_eq!(check(json!({"aud": "P2abc"}), &p), Err(Rejection::AudienceNotAllowed));
        assert_eq!(check(json!({}), &p), Err(Rejection::AudienceNotAllowed));
        p.audiences = &[];
        // `iat` ahead of the clock beyond the skew.
        assert_eq!(check(json!({"iat": NOW + 5}), &p), Ok(()));
        assert_eq!(check(json!({"iat": NOW + 6}), &p), Err(Rejection::NotYetValid));
        assert_eq!(check(json!({"iat": (NOW + 5) as f64 + 0.1}), &p), Err(Rejection::NotYetValid));
    }

    #[test]
    fn expiry_with_skew() {
        let p = policy();
        assert_eq!(check(json!({"exp": NOW - 60}), &p), Ok(()));
        assert_eq!(check(json!({"exp": NOW - 61}), &p), Err(Rejection::Expired));
        assert_eq!(check(json!({"exp": (NOW - 61) as f64 + 0.9}), &p), Err(Rejection::Expired));
        assert_eq!(check(json!({"nbf": NOW + 60}), &p), Ok(()));
        assert_eq!(check(json!({"nbf": NOW + 61}), &p), Err(Rejection::NotYetValid));
        assert_eq!(check(json!({"nbf": (NOW + 60) as f64 + 0.1}), &p), Err(Rejection::NotYetValid));
        assert_eq!(check(json!({}), &p), Ok(()));
    }

    #[test]
    fn numeric_dates_must_be_sane_numbers() {
        let p = policy();
        for bad in [json!("1700000000"), json!(-1), json!(1e300), json!(true), json!(null), json!([1]), json!(u64::MAX)]
        {
            assert_eq!(check(json!({"exp": bad}), &p), Err(Rejection::ClaimInvalid), "{bad}");
            assert_eq!(check(json!({"nbf": bad}), &p), Err(Rejection::ClaimInvalid), "{bad}");
            assert_eq!(check(json!({"iat": bad}), &p), Err(Rejection::ClaimInvalid), "{bad}");
        }
    }

    #[test]
    fn jti_must_be_a_string() {
        let p = policy();
        assert_eq!(check(json!({"jti": "a-1"}), &p), Ok(()));
        for bad in [json!(5), json!(null), json!(["a"]), json!({"a": 1}), json!(true)] {
            assert_eq!(check(json!({"jti": bad}), &p), Err(Rejection::ClaimInvalid), "jti {bad}");
        }
    }

    #[test]
    fn expiration_and_lifetime_requirements() {
        let mut p = policy();
        p.require_expiration = true;
        assert_eq!(check(json!({}), &p), Err(Rejection::ExpirationRequired));
        assert_eq!(check(json!({"exp": NOW + 10}), &p), Ok(()));
        let mut p = policy();
        p.max_lifetime_secs = Some(3600);
        assert_eq!(check(json!({}), &p), Err(Rejection::ExpirationRequired));
        assert_eq!(check(json!({"exp": NOW + 3600}), &p), Ok(()));
        assert_eq!(check(json!({"exp": NOW + 3601}), &p), Err(Rejection::LifetimeTooLong));
    }

    #[test]
    fn issuer_is_exact() {
        let issuers = vec!["https://idp.example.com".to_string()];
        let mut p = policy();
        p.issuers = &issuers;
        assert_eq!(check(json!({"iss": "https://idp.example.com"}), &p), Ok(()));
        for bad in ["https://idp.example.com/", "https://IDP.example.com", "https://idp.example.co", ""] {
            assert_eq!(check(json!({"iss": bad}), &p), Err(Rejection::IssuerNotAllowed), "{bad}");
        }
        assert_eq!(check(json!({}), &p), Err(Rejection::IssuerNotAllowed));
        assert_eq!(check(json!({"iss": ["https://idp.example.com"]}), &p), Err(Rejection::ClaimInvalid));
    }

    #[test]
    fn audience_any_match() {
        let auds = vec!["api".to_string(), "web".to_string()];
        let mut p = policy();
        p.audiences = &auds;
        assert_eq!(check(json!({"aud": "web"}), &p), Ok(()));
        assert_eq!(check(json!({"aud": ["x", "api"]}), &p), Ok(()));
        assert_eq!(check(json!({"aud": "x"}), &p), Err(Rejection::AudienceNotAllowed));
        assert_eq!(check(json!({"aud": []}), &p), Err(Rejection::AudienceNotAllowed));
        assert_eq!(check(json!({}), &p), Err(Rejection::AudienceNotAllowed));
        assert_eq!(check(json!({"aud": 5}), &p), Err(Rejection::ClaimInvalid));
        assert_eq!(check(json!({"aud": ["api", 5]}), &p), Err(Rejection::ClaimInvalid));
        // Without configured audiences, aud is only type-checked.
        assert_eq!(check(json!({"aud": "anything"}), &policy()), Ok(()));
    }

    #[test]
    fn subjects_matcher() {
        let m = StringMatcher { kind: MatchKind::Prefix("spiffe://example.com/".into()), ignore_case: false };
        let mut p = policy();
        p.subjects = Some(&m);
        assert_eq!(check(json!({"sub": "spiffe://example.com/ns/a"}), &p), Ok(()));
        assert_eq!(check(json!({"sub": "spiffe://evil.com/"}), &p), Err(Rejection::SubjectNotAllowed));
        assert_eq!(check(json!({}), &p), Err(Rejection::SubjectNotAllowed));
        assert_eq!(check(json!({"sub": 1}), &p), Err(Rejection::ClaimInvalid));
    }
}
