//! The configuration's JSON read field by field into the raw structs of [`super`].
//!
//! As strict as serde's `deny_unknown_fields`, with one reader instead of a generated
//! deserializer per struct (those cost the plugin ~60 KB): a member no reader asked for is an
//! error that names it and lists the known ones, and every error carries the field's path.
//! `null` counts as unset, as in proto3's JSON mapping.

use super::ConfigError;
use serde_json::{Map, Value};
use std::time::Duration;

/// A struct the configuration contains, read from one JSON object.
pub(super) trait Read: Sized {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError>;
}

/// One JSON object being read, with the member names asked for so far.
pub(super) struct Obj<'a> {
    path: String,
    map: &'a Map<String, Value>,
    known: Vec<&'static str>,
    /// Members recognised only to be refused: not unknown, but not offered as "expected".
    refused: Vec<&'static str>,
}

/// Reads `T` from `value`, which must be an object with no members `T` does not know.
pub(super) fn read<T: Read>(path: String, value: &Value) -> Result<T, ConfigError> {
    let Some(map) = value.as_object() else { return Err(invalid_type(path, "an object", value)) };
    let mut o = Obj { path, map, known: Vec::new(), refused: Vec::new() };
    let t = T::read(&mut o)?;
    o.finish()?;
    Ok(t)
}

impl<'a> Obj<'a> {
    fn get(&mut self, key: &'static str) -> Option<&'a Value> {
        self.known.push(key);
        self.value(key)
    }

    /// The member, `null` counting as unset (proto3 JSON).
    fn value(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn string(&mut self, key: &'static str) -> Result<Option<String>, ConfigError> {
        self.get(key).map(|v| as_string(self.path_of(key), v)).transpose()
    }

    pub fn required_string(&mut self, key: &'static str) -> Result<String, ConfigError> {
        self.string(key)?.ok_or_else(|| self.missing(key))
    }

    pub fn bool(&mut self, key: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(invalid_type(self.path_of(key), "true or false", v)),
        }
    }

    /// A flag: absent means false.
    pub fn flag(&mut self, key: &'static str) -> Result<bool, ConfigError> {
        Ok(self.bool(key)?.unwrap_or(false))
    }

    /// A proto `uint32`: an integer from 0 to 4294967295.
    pub fn uint32(&mut self, key: &'static str) -> Result<Option<u64>, ConfigError> {
        self.integer(key, u64::from(u32::MAX))
    }

    /// An integer from 0 to `max`. Written `1.0` or `5e0` too: Istio hands `pluginConfig`
    /// through a protobuf `Struct`, where every number is a double.
    fn integer(&mut self, key: &'static str, max: u64) -> Result<Option<u64>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        // Every integer up to 2^53 is exact as a double; larger ones go through as_u64.
        let whole = |f: f64| (f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f)).then_some(f as u64);
        match v.as_u64().or_else(|| v.as_f64().and_then(whole)) {
            Some(n) if n <= max => Ok(Some(n)),
            _ if v.is_number() => Err(self.out_of_range(key, v, max)),
            _ => Err(invalid_type(self.path_of(key), "an integer", v)),
        }
    }

    /// A proto `int64`, which proto3 JSON writes as a string of digits; a configuration
    /// converted from YAML writes a number, taken as [`Obj::integer`] takes it.
    fn integer_or_digits(&mut self, key: &'static str, max: u64) -> Result<Option<u64>, ConfigError> {
        let Some(v @ Value::String(text)) = self.value(key) else { return self.integer(key, max) };
        self.known.push(key);
        let n = text.bytes().all(|b| b.is_ascii_digit()).then(|| text.parse::<u64>().ok()).flatten();
        n.filter(|n| *n <= max).map(Some).ok_or_else(|| self.out_of_range(key, v, max))
    }

    fn out_of_range(&self, key: &str, v: &Value, max: u64) -> ConfigError {
        ConfigError::new(self.path_of(key), format!("invalid value: {v}, expected an integer from 0 to {max}"))
    }

    /// A `google.protobuf.Duration`: proto-JSON's string (`"300s"`), or the `{seconds,
    /// nanos}` object that Envoy's YAML accepts and its documentation uses.
    pub fn duration(&mut self, key: &'static str) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let path = self.path_of(key);
        match v {
            Value::String(text) => super::parse_duration(&path, text).map(Some),
            Value::Object(_) => read::<DurationObject>(path, v).map(|d| Some(d.0)),
            _ => Err(invalid_type(path, "a duration like \"300s\" or {\"seconds\": 300}", v)),
        }
    }

    /// A list of strings: absent means empty.
    pub fn strings(&mut self, key: &'static str) -> Result<Vec<String>, ConfigError> {
        self.list(key, "a list of strings", as_string)
    }

    pub fn object<T: Read>(&mut self, key: &'static str) -> Result<Option<T>, ConfigError> {
        self.get(key).map(|v| read(self.path_of(key), v)).transpose()
    }

    pub fn required_object<T: Read>(&mut self, key: &'static str) -> Result<T, ConfigError> {
        self.object(key)?.ok_or_else(|| self.missing(key))
    }

    /// A list of objects: absent means empty.
    pub fn objects<T: Read>(&mut self, key: &'static str) -> Result<Vec<T>, ConfigError> {
        self.list(key, "a list of objects", read)
    }

    /// An object whose member names are the user's (e.g. provider names), in name order.
    pub fn named<T: Read>(&mut self, key: &'static str) -> Result<Vec<(String, T)>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(Vec::new()) };
        let path = self.path_of(key);
        let Some(map) = v.as_object() else { return Err(invalid_type(path, "an object", v)) };
        map.iter().map(|(name, v)| Ok((name.clone(), read(format!("{path}.{name}"), v)?))).collect()
    }

    /// Whether a member the filter recognises only to refuse (or ignore) is set.
    pub fn present(&mut self, key: &'static str) -> bool {
        self.refused.push(key);
        self.value(key).is_some()
    }

    fn list<T>(
        &mut self,
        key: &'static str,
        expected: &str,
        item: impl Fn(String, &Value) -> Result<T, ConfigError>,
    ) -> Result<Vec<T>, ConfigError> {
        let Some(v) = self.get(key) else { return Ok(Vec::new()) };
        let path = self.path_of(key);
        let Some(items) = v.as_array() else { return Err(invalid_type(path, expected, v)) };
        items.iter().enumerate().map(|(i, v)| item(format!("{path}[{i}]"), v)).collect()
    }

    fn missing(&self, key: &str) -> ConfigError {
        ConfigError::new(self.path.clone(), format!("missing field `{key}`"))
    }

    fn finish(self) -> Result<(), ConfigError> {
        let is_read = |k: &str| self.known.contains(&k) || self.refused.contains(&k);
        let Some(unknown) = self.map.keys().find(|k| !is_read(k)) else { return Ok(()) };
        let known: Vec<String> = self.known.iter().map(|k| format!("`{k}`")).collect();
        let expected = if known.is_empty() { "no fields".to_owned() } else { format!("one of {}", known.join(", ")) };
        Err(ConfigError::new(self.path, format!("unknown field `{unknown}`, expected {expected}")))
    }
}

struct DurationObject(Duration);

impl Read for DurationObject {
    fn read(o: &mut Obj<'_>) -> Result<Self, ConfigError> {
        let seconds = o.integer_or_digits("seconds", super::MAX_DURATION_SECONDS)?.unwrap_or(0);
        let nanos = o.integer("nanos", 999_999_999)?.unwrap_or(0);
        Ok(DurationObject(Duration::from_secs(seconds).saturating_add(Duration::from_nanos(nanos))))
    }
}

fn as_string(path: String, v: &Value) -> Result<String, ConfigError> {
    v.as_str().map(str::to_owned).ok_or_else(|| invalid_type(path, "a string", v))
}

fn invalid_type(path: String, expected: &str, found: &Value) -> ConfigError {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    ConfigError::new(path, format!("invalid type: expected {expected}, found {found}"))
}
