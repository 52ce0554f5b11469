//! Projection of verified claims into request headers (`claim_to_headers`).
//!
//! Claims are attacker-influenced text (a user may pick their own display name). A value is
//! only ever written whole and clean: one with control characters (CR, LF, NUL, ...) is not
//! written at all rather than altered, so a service never sees a forged or truncated value.

use serde_json::{Map, Value};

/// Longest identity header value written; larger ones are skipped, not truncated.
pub const MAX_HEADER_VALUE: usize = 8 * 1024;

/// Why a configured identity header was not set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The claim is absent or `null`.
    Absent,
    /// The value holds control characters or is too long.
    Unsafe,
}

/// The claim at `path`: the dotted path walked through nested objects (`tenants.T1.roles`),
/// as jwt_authn walks it; only when there is no such path, a top-level member of that exact
/// name (namespaced claims such as `https://example.com/roles` contain dots). So a top-level
/// claim named `org.role` cannot stand in for the nested `org.role` the configuration means.
/// A segment `{name}` stands for the string value of the top-level claim `name`
/// (`tenants.{dct}.roles`: the current tenant's roles); a final `@keys` gives an object's
/// member names (`tenants.@keys`: the tenant ids).
pub fn lookup(claims: &Map<String, Value>, path: &str) -> Option<Value> {
    walk(claims, path).or_else(|| claims.get(path).cloned())
}

fn walk(claims: &Map<String, Value>, path: &str) -> Option<Value> {
    let mut current: Option<&Value> = None;
    for seg in path.split('.') {
        if seg == "@keys" {
            let keys = current?.as_object()?.keys().map(|k| Value::String(k.clone())).collect();
            return Some(Value::Array(keys));
        }
        let name = match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(claim) => claims.get(claim)?.as_str()?,
            None => seg,
        };
        current = Some(match current {
            None => claims.get(name)?,
            Some(v) => v.as_object()?.get(name)?,
        });
    }
    current.cloned()
}

/// Header text for a claim value: strings as they are, numbers and booleans as JSON,
/// arrays as their elements joined with commas, objects as compact JSON. An array with an
/// element that itself holds a comma (a group named "Admins, EMEA") is not written: joined,
/// it would read as two elements the token never granted.
pub fn render(value: &Value) -> Result<String, Skip> {
    match value {
        Value::Null => Err(Skip::Absent),
        Value::String(s) => Ok(s.clone()),
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            if parts.iter().any(|p| p.contains(',')) {
                return Err(Skip::Unsafe);
            }
            Ok(parts.join(","))
        }
        other => Ok(other.to_string()),
    }
}

/// Whether `value` can be a header value as is: no control characters except tab, and not
/// too long.
pub fn header_safe(value: &str) -> bool {
    value.len() <= MAX_HEADER_VALUE && !value.chars().any(|c| c.is_control() && c != '\t')
}

/// The header value for claim `path`, or why there is none.
pub fn claim_header_value(claims: &Map<String, Value>, path: &str) -> Result<String, Skip> {
    let text = render(&lookup(claims, path).ok_or(Skip::Absent)?)?;
    // An empty string or list: no header, as jwt_authn writes none for an empty string, so
    // that "present but empty" and "absent" do not mean two things upstream.
    if text.is_empty() {
        Err(Skip::Absent)
    } else if header_safe(&text) {
        Ok(text)
    } else {
        Err(Skip::Unsafe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> Map<String, Value> {
        json!({
            "sub": "U1",
            "n": 42,
            "ok": true,
            "roles": ["admin", "viewer"],
            "mixed": ["a", 1, {"b": 2}],
            "groups": ["Admins, EMEA", "Staff"],
            "nested": [[1, 2]],
            "tenants": {"T1": {"roles": ["owner"], "meta": {"x": 1}}},
            "https://example.com/roles": ["r"],
            "evil": "a\r\nx-injected: 1",
            "nul": "a\u{0}b",
            "tab": "a\tb",
            "nothing": null,
            "utf": "José",
            "dct": "T1",
            "bad_dct": 5
        })
        .as_object()
        .unwrap()
        .clone()
    }

    #[test]
    fn a_path_wins_over_a_dotted_top_level_name() {
        // As jwt_authn walks it: a top-level claim literally named `org.role` (which a user
        // might be able to set) does not stand in for the nested one.
        let c = json!({"org": {"role": "member"}, "org.role": "admin", "https://x.example/roles": ["a"]});
        let c = c.as_object().unwrap();
        assert_eq!(lookup(c, "org.role"), Some(json!("member")));
        // Namespaced claims with dots are still reachable when no such path exists.
        assert_eq!(lookup(c, "https://x.example/roles"), Some(json!(["a"])));
    }

    #[test]
    fn renders_each_type() {
        let c = claims();
        assert_eq!(claim_header_value(&c, "sub").unwrap(), "U1");
        assert_eq!(claim_header_value(&c, "n").unwrap(), "42");
        assert_eq!(claim_header_value(&c, "ok").unwrap(), "true");
        assert_eq!(claim_header_value(&c, "roles").unwrap(), "admin,viewer");
        assert_eq!(claim_header_value(&c, "mixed").unwrap(), r#"a,1,{"b":2}"#);
        assert_eq!(claim_header_value(&c, "tenants.T1.roles").unwrap(), "owner");
        assert_eq!(claim_header_value(&c, "tenants.T1.meta").unwrap(), r#"{"x":1}"#);
        assert_eq!(claim_header_value(&c, "https://example.com/roles").unwrap(), "r");
        assert_eq!(claim_header_value(&c, "utf").unwrap(), "José");
        assert_eq!(claim_header_value(&c, "tab").unwrap(), "a\tb");
        assert_eq!(claim_header_value(&c, "tenants.{dct}.roles").unwrap(), "owner");
        assert_eq!(claim_header_value(&c, "tenants.@keys").unwrap(), "T1");
        assert_eq!(claim_header_value(&c, "tenants.{bad_dct}.roles"), Err(Skip::Absent));
        assert_eq!(claim_header_value(&c, "tenants.{nope}.roles"), Err(Skip::Absent));
        assert_eq!(claim_header_value(&c, "sub.@keys"), Err(Skip::Absent));
    }

    #[test]
    fn absent_and_unsafe() {
        let c = claims();
        assert_eq!(claim_header_value(&c, "missing"), Err(Skip::Absent));
        assert_eq!(claim_header_value(&c, "tenants.T2.roles"), Err(Skip::Absent));
        assert_eq!(claim_header_value(&c, "sub.x"), Err(Skip::Absent));
        assert_eq!(claim_header_value(&c, "nothing"), Err(Skip::Absent));
        let empty = json!({"e": "", "el": []});
        assert_eq!(claim_header_value(empty.as_object().unwrap(), "e"), Err(Skip::Absent));
        assert_eq!(claim_header_value(empty.as_object().unwrap(), "el"), Err(Skip::Absent));
        assert_eq!(claim_header_value(&c, "evil"), Err(Skip::Unsafe));
        assert_eq!(claim_header_value(&c, "nul"), Err(Skip::Unsafe));
        // Joined, these would read as elements the token does not hold.
        assert_eq!(claim_header_value(&c, "groups"), Err(Skip::Unsafe));
        assert_eq!(claim_header_value(&c, "nested"), Err(Skip::Unsafe));
        let mut big = Map::new();
        big.insert("b".into(), Value::String("x".repeat(MAX_HEADER_VALUE + 1)));
        assert_eq!(claim_header_value(&big, "b"), Err(Skip::Unsafe));
    }
}
