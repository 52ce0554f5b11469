//! Strict JSON for untrusted input (token headers and payloads, JWKS documents).
//!
//! `serde_json::Value` silently keeps the last of duplicate keys, which lets two parsers
//! disagree about what a token says (RFC 8725 §3.x). This parser rejects duplicates and
//! bounds nesting depth before anything else looks at the data.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON, or trailing bytes after the value.
    Syntax(String),
    /// The same member name twice in one object.
    DuplicateKey(String),
    /// Objects/arrays nested deeper than allowed.
    TooDeep,
    /// Valid JSON, but the top level is not an object.
    NotAnObject,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax(e) => write!(f, "invalid JSON: {e}"),
            JsonError::DuplicateKey(k) => write!(f, "duplicate member {k:?}"),
            JsonError::TooDeep => f.write_str("JSON nested too deeply"),
            JsonError::NotAnObject => f.write_str("JSON top level is not an object"),
        }
    }
}

const DUPLICATE_MARK: &str = "\u{0}duplicate:";
const DEPTH_MARK: &str = "\u{0}too-deep";

/// Parses `input` as a JSON object, refusing duplicate keys and nesting beyond `max_depth`
/// (the top-level object counts as depth 1).
pub fn parse_object(input: &[u8], max_depth: usize) -> Result<Map<String, Value>, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(input);
    let value = StrictSeed { depth_left: max_depth }.deserialize(&mut de).map_err(classify)?;
    de.end().map_err(classify)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(JsonError::NotAnObject),
    }
}

fn classify(e: serde_json::Error) -> JsonError {
    let text = e.to_string();
    if let Some(rest) = text.strip_prefix(DUPLICATE_MARK) {
        // serde_json appends " at line X column Y"; keep only the key.
        let key = rest.rsplit_once(" at line ").map_or(rest, |(k, _)| k);
        JsonError::DuplicateKey(key.to_owned())
    } else if text.starts_with(DEPTH_MARK) || text.starts_with("recursion limit exceeded") {
        JsonError::TooDeep
    } else {
        JsonError::Syntax(text)
    }
}

struct StrictSeed {
    depth_left: usize,
}

impl StrictSeed {
    fn nested<E: de::Error>(&self) -> Result<StrictSeed, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(StrictSeed { depth_left }),
            None => Err(E::custom(DEPTH_MARK)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never yields non-finite floats, so this never becomes null.
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.nested()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed { depth_left: child.depth_left })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.nested()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARK}{key}")));
            }
            let v = map.next_value_seed(StrictSeed { depth_left: child.depth_left })?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_object() {
        let m = parse_object(br#"{"a":1,"b":[1,{"c":null}],"d":"x"}"#, 4).unwrap();
        assert_eq!(m["a"], 1);
        assert_eq!(m["b"][1]["c"], Value::Null);
    }

    #[test]
    fn rejects_duplicate_keys_at_any_depth() {
        assert_eq!(parse_object(br#"{"alg":"RS256","alg":"none"}"#, 4), Err(JsonError::DuplicateKey("alg".into())));
        assert_eq!(parse_object(br#"{"a":{"x":1,"x":2}}"#, 4), Err(JsonError::DuplicateKey("x".into())));
    }

    #[test]
    fn depth_limit_counts_top_level() {
        assert!(parse_object(br#"{"a":{"b":1}}"#, 2).is_ok());
        assert_eq!(parse_object(br#"{"a":{"b":{}}}"#, 2), Err(JsonError::TooDeep));
        assert_eq!(parse_object(br#"{"a":[[1]]}"#, 2), Err(JsonError::TooDeep));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(parse_object(deep.as_bytes(), 64), Err(JsonError::TooDeep));
    }

    #[test]
    fn rejects_non_objects_and_trailing_data() {
        assert_eq!(parse_object(b"[1]", 4), Err(JsonError::NotAnObject));
        assert!(matches!(parse_object(b"{} x", 4), Err(JsonError::Syntax(_))));
        assert!(matches!(parse_object(b"{\"a\":1e400}", 4), Err(JsonError::Syntax(_))));
        assert!(matches!(parse_object(b"", 4), Err(JsonError::Syntax(_))));
    }
}
