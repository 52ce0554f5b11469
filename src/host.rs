//! The few host calls the filter makes, wrapped so that no request input can panic them.
//!
//! The SDK (proxy-wasm 0.2.5) panics on any status it does not expect: a header read that
//! is not Ok or NotFound, a header write, local reply or resume that is not Ok. A panic aborts
//! the VM and every request it holds. The calls that act on a request (header reads and
//! writes, the local reply, the resume, the reset) are therefore bound here directly
//! ([`abi`]), and a refusal becomes an error the filter answers, failing closed: a request
//! whose headers could not be read or rewritten gets a 500, never the upstream. The others
//! (shared data, clock, metrics, dispatch, foreign function, effective context) still go
//! through the SDK; Envoy answers them as the SDK expects.
//! Headers are read as bytes (the SDK's `get_http_request_header` panics on a value that is
//! not UTF-8, and a client controls those bytes) and converted lossily: a token with invalid
//! bytes then fails to parse, as it should.

use crate::extract::RequestView;
use proxy_wasm::hostcalls;
use std::cell::{Cell, RefCell};
use std::ptr::{null, null_mut};
use std::time::UNIX_EPOCH;

/// The imports the request path calls, with the status as the plain number the host sends
/// (the SDK's `Status` enum cannot hold every value Envoy can answer, e.g. Unimplemented).
mod abi {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_get_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            return_value_data: *mut *mut u8,
            return_value_size: *mut usize,
        ) -> u32;
        pub fn proxy_replace_header_map_value(
            map_type: u32,
            key_data: *const u8,
            key_size: usize,
            value_data: *const u8,
            value_size: usize,
        ) -> u32;
        pub fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
        #[allow(clippy::too_many_arguments)]
        pub fn proxy_send_local_response(
            status_code: u32,
            status_code_details_data: *const u8,
            status_code_details_size: usize,
            body_data: *const u8,
            body_size: usize,
            headers_data: *const u8,
            headers_size: usize,
            grpc_status: i32,
        ) -> u32;
        pub fn proxy_continue_stream(stream_type: u32) -> u32;
        pub fn proxy_close_stream(stream_type: u32) -> u32;
    }
}

/// proxy-wasm's `MapType::HttpRequestHeaders` and `StreamType::HttpRequest`.
const REQUEST_HEADERS: u32 = 0;
const HTTP_REQUEST: u32 = 0;
const STATUS_OK: u32 = 0;
const STATUS_NOT_FOUND: u32 = 1;

/// A host call answered with a status other than the ones its caller expects: the call's
/// name and the proxy-wasm status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub call: &'static str,
    pub status: u32,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the host refused {} (status {})", self.call, self.status)
    }
}

fn checked(call: &'static str, status: u32) -> Result<(), Refused> {
    if status == STATUS_OK {
        Ok(())
    } else {
        Err(Refused { call, status })
    }
}

/// The current request's headers, read one at a time on demand and remembered: rules,
/// token locations and the reply's realm ask for the same few (`:path` three times), and
/// every read is a host call. Only for reads; writes go through [`set_request_header`].
/// A read the host refuses reads as absent and is remembered in [`HostRequest::refused`]:
/// the decision made without that header must not be applied.
#[derive(Default)]
pub struct HostRequest {
    seen: RefCell<Vec<(String, Option<Vec<u8>>)>>,
    refused: Cell<Option<Refused>>,
}

impl HostRequest {
    /// The first header read the host refused, if any.
    pub fn refused(&self) -> Option<Refused> {
        self.refused.get()
    }
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
        let value = match read_request_header(name) {
            Ok(value) => value,
            Err(refused) => {
                if self.refused.get().is_none() {
                    self.refused.set(Some(refused));
                }
                None
            }
        };
        self.seen.borrow_mut().push((name.to_owned(), value.clone()));
        value
    }
}

fn read_request_header(name: &str) -> Result<Option<Vec<u8>>, Refused> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the key is a live slice; the host writes a buffer it allocated through this
    // module's `proxy_on_memory_allocate` (the SDK's, a `Vec<u8>` of exactly `size` bytes)
    // and hands its ownership to us, which `from_raw_parts` takes back.
    let status =
        unsafe { abi::proxy_get_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len(), &mut data, &mut size) };
    match status {
        STATUS_OK if data.is_null() => Ok(Some(Vec::new())),
        // SAFETY: see above.
        STATUS_OK => Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) })),
        STATUS_NOT_FOUND => Ok(None),
        status => Err(Refused { call: "proxy_get_header_map_value", status }),
    }
}

pub fn set_request_header(name: &str, value: Option<&str>) -> Result<(), Refused> {
    set_request_header_bytes(name, value.map(str::as_bytes))
}

/// Replaces every value of the request header `name` with `value`, or removes it.
pub fn set_request_header_bytes(name: &str, value: Option<&[u8]>) -> Result<(), Refused> {
    // SAFETY: key and value are live slices the host only reads during the call.
    match value {
        Some(v) => checked("proxy_replace_header_map_value", unsafe {
            abi::proxy_replace_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len(), v.as_ptr(), v.len())
        }),
        None => checked("proxy_remove_header_map_value", unsafe {
            abi::proxy_remove_header_map_value(REQUEST_HEADERS, name.as_ptr(), name.len())
        }),
    }
}

/// Answers the current request with a local reply.
pub fn send_local_response(status: u32, headers: &[(String, String)], body: &[u8]) -> Result<(), Refused> {
    let headers = serialize_pairs(headers);
    // SAFETY: body and headers are live slices the host only reads during the call.
    checked("proxy_send_local_response", unsafe {
        abi::proxy_send_local_response(
            status,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Lets the current (paused) request go on.
pub fn resume_request() -> Result<(), Refused> {
    // SAFETY: no pointers.
    checked("proxy_continue_stream", unsafe { abi::proxy_continue_stream(HTTP_REQUEST) })
}

/// Resets the current request's stream: the last resort when it can be neither answered
/// nor resumed, rather than leave it paused until Envoy's idle timeout.
pub fn reset_request() -> Result<(), Refused> {
    // SAFETY: no pointers.
    checked("proxy_close_stream", unsafe { abi::proxy_close_stream(HTTP_REQUEST) })
}

/// The ABI's header list: the count, each name's and value's length (u32, little-endian),
/// then each name and value followed by a NUL.
fn serialize_pairs(pairs: &[(String, String)]) -> Vec<u8> {
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = Vec::new();
    out.extend_from_slice(&len(pairs.len()));
    for (name, value) in pairs {
        out.extend_from_slice(&len(name.len()));
        out.extend_from_slice(&len(value.len()));
    }
    for (name, value) in pairs {
        for part in [name, value] {
            out.extend_from_slice(part.as_bytes());
            out.push(0);
        }
    }
    out
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
