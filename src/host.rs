//! The few host calls the filter makes, wrapped so that no request input can panic them.
//!
//! The SDK's `get_http_request_header` panics on a header value that is not UTF-8; a client
//! controls those bytes, so headers are read as bytes and converted lossily (a token with
//! invalid bytes then fails to parse, as it should).

use crate::extract::RequestView;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;
use std::cell::RefCell;
use std::time::UNIX_EPOCH;

/// The current request's headers, read one at a time on demand and remembered: rules,
/// token locations and the reply's realm ask for the same few (`:path` three times), and
/// every read is a host call. Only for reads; writes go through [`set_request_header`].
#[derive(Default)]
pub struct HostRequest {
    seen: RefCell<Vec<(String, Option<Vec<u8>>)>>,
}

impl RequestView for HostRequest {
    fn header(&self, name: &str) -> Option<String> {
        self.header_bytes(name).map(|bytes| {
            String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        })
    }

    fn header_bytes(&self, name: &str) -> Option<Vec<u8>> {
        if let Some((_, v)) = self.seen.borrow().iter().find(|(k, _)| k == name) {
            return v.clone();
        }
        let value = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name).ok().flatten();
        self.seen.borrow_mut().push((name.to_owned(), value.clone()));
        value
    }
}

pub fn set_request_header(name: &str, value: Option<&str>) {
    set_request_header_bytes(name, value.map(str::as_bytes));
}

pub fn set_request_header_bytes(name: &str, value: Option<&[u8]>) {
    // proxy-wasm 0.2.5 panics instead of returning an error here, as it does for the local
    // reply, the resume and the tick period: a host that refused one of these calls (none of
    // Envoy's does for a live request) would cost the VM, which FAIL_RELOAD replaces.
    // SDKs that return the status get it logged.
    if let Err(status) = hostcalls::set_map_value_bytes(MapType::HttpRequestHeaders, name, value) {
        log::warn!("could not set request header {name}: {status:?}");
    }
}

/// Envoy's shared data, one store per VM id across all workers.
pub struct HostStore;

impl crate::jwks_cache::SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(bytes), Some(cas))) => Some((bytes, cas)),
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> bool {
        hostcalls::set_shared_data(key, Some(value), cas).is_ok()
    }
}

/// Unix time in milliseconds from the host clock.
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Sub-millisecond clock noise in [0, 1000): jitter for retry backoff. Not a secret.
pub fn jitter() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| u64::from(d.subsec_micros() % 1000))
}
