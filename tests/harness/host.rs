//! The host side of the ABI: every `proxy_*` function the SDK imports, implemented over the
//! state of the VM whose thread is calling (a thread-local, since the SDK's dispatcher is one).
//!
//! Statuses follow Envoy 1.40 (`source/extensions/common/wasm/context.cc` and
//! proxy-wasm-cpp-host `src/exports.cc`), including the ones the SDK turns into panics: that is
//! what the filter would hit in production.
//!
//! These are `extern "C"` functions, and a panic unwinding out of one aborts the whole test
//! binary. So nothing here unwraps or indexes: problems become statuses. (A panic would still
//! not abort on a VM thread: the harness's panic hook parks the thread first.)

// The SDK declares these with raw pointers and calls them with pointers to its own live
// buffers; every dereference goes through `wire`, which checks for null.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use super::shared::{Kind, Shared};
use super::wire::{self, Pairs};
use super::{HttpCall, LocalReply, LogLine, Resumed};
use proxy_wasm::types::{LogLevel, Status};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

thread_local! {
    static HOST: RefCell<Option<VmHost>> = const { RefCell::new(None) };
}

/// A foreign function the test registers: arguments in, result or status out.
pub type ForeignFn = fn(&[u8]) -> Result<Vec<u8>, Status>;

/// Envoy's `WasmResult::BrokenConnection`, what `get_status` reports during a failed call.
pub const BROKEN_CONNECTION: u32 = 11;

/// One VM's host state.
pub struct VmHost {
    /// True while `_initialize` runs: Envoy then refuses every host call but logging
    /// ("restricted_callback") and the plugin fails to load.
    pub initializing: bool,
    pub shared: Arc<Shared>,
    pub name: String,
    pub vm_id: String,
    pub vm_config: Vec<u8>,
    /// Some only while `on_configure` runs, as Envoy's `temp_plugin_`.
    pub plugin_config: Option<Vec<u8>>,
    pub root_id: Option<u32>,
    next_context_id: u32,
    pub contexts: HashMap<u32, Ctx>,
    /// The context whose callback is running (0: none), the one set by
    /// `proxy_set_effective_context` (0: none), and the callback's name for reports.
    pub current: u32,
    pub effective: u32,
    pub callback: &'static str,
    /// The answer of the call being delivered; None outside `on_http_call_response` and during
    /// a failed call, when Envoy has no response message either.
    pub call_response: Option<CallResponse>,
    pub call_data: Vec<u8>,
    pub pending: BTreeMap<u32, HttpCall>,
    next_token: u32,
    pub dispatch_failure: Option<Status>,
    /// Host calls answered with this status instead of being carried out (a host that
    /// refuses them; the SDK panics on most such statuses).
    pub refused: HashMap<&'static str, Status>,
    /// Request header reads answered with this status, by header name (Envoy answers one
    /// map for all; this lets a test withhold the one header a decision hinges on).
    pub refused_reads: HashMap<String, Status>,
    pub tick_period: Option<Duration>,
    pub logs: Vec<LogLine>,
    pub log_level: LogLevel,
    pub foreign: HashMap<String, ForeignFn>,
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    pub done_calls: u32,
    /// Host calls made, by ABI function name.
    pub host_calls: HashMap<&'static str, u64>,
    echo_logs: bool,
}

pub struct CallResponse {
    pub headers: Pairs,
    pub body: Vec<u8>,
    pub trailers: Pairs,
}

/// A context as the host tracks it (root or HTTP stream).
#[derive(Default)]
pub struct Ctx {
    pub is_root: bool,
    pub request_headers: Pairs,
    /// Envoy keeps `request_headers_` reachable while the filter holds the request: during
    /// `on_request_headers` and while paused, until it continues.
    pub request_open: bool,
    pub response_headers: Pairs,
    pub response_open: bool,
    /// In `on_log`, Envoy serves the final header maps read-only (access-log phase).
    pub logging: bool,
    pub local_replies: Vec<LocalReply>,
    pub resumed: Option<Resumed>,
    pub response_resumed: Option<Resumed>,
    pub reset: bool,
    pub status: (u32, String),
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
}

impl VmHost {
    pub fn new(shared: Arc<Shared>, name: String) -> VmHost {
        let echo_logs = std::env::var("HARNESS_LOG").is_ok_and(|v| v == "1");
        VmHost {
            initializing: false,
            shared,
            name,
            vm_id: String::new(),
            vm_config: Vec::new(),
            plugin_config: None,
            root_id: None,
            next_context_id: 1,
            contexts: HashMap::new(),
            current: 0,
            effective: 0,
            callback: "",
            call_response: None,
            call_data: Vec::new(),
            pending: BTreeMap::new(),
            next_token: 1,
            dispatch_failure: None,
            refused: HashMap::new(),
            refused_reads: HashMap::new(),
            tick_period: None,
            logs: Vec::new(),
            log_level: LogLevel::Trace,
            foreign: HashMap::new(),
            properties: HashMap::new(),
            done_calls: 0,
            host_calls: HashMap::new(),
            echo_logs,
        }
    }

    pub fn new_context_id(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id = self.next_context_id.wrapping_add(1);
        id
    }

    /// The context host calls act on: Envoy's `ContextOrEffectiveContext`, which falls back to
    /// the callback's own context when the effective one has gone away.
    fn target(&self) -> Option<u32> {
        [self.effective, self.current].into_iter().find(|id| *id != 0 && self.contexts.contains_key(id))
    }

    fn target_ctx(&mut self) -> Option<&mut Ctx> {
        let id = self.target()?;
        self.contexts.get_mut(&id)
    }

    /// Resolves a `MapType`. `Err(BadArgument)` for an unknown type; `Ok(None)` when Envoy has
    /// no such map right now (its `getMap`/`getConstMap` return null).
    fn header_map(&mut self, map_type: u32, write: bool) -> Result<Option<&mut Pairs>, Status> {
        match map_type {
            // Request / response headers of the effective stream.
            0 | 2 => {
                let Some(ctx) = self.target_ctx() else { return Ok(None) };
                let (open, logging) = (if map_type == 0 { ctx.request_open } else { ctx.response_open }, ctx.logging);
                let map = if map_type == 0 { &mut ctx.request_headers } else { &mut ctx.response_headers };
                Ok((open || (logging && !write)).then_some(map))
            }
            // Request / response trailers and gRPC metadata: not simulated, never present.
            1 | 3 | 4 | 5 => Ok(None),
            // The call response: read-only, and only while a successful one is delivered.
            6 | 7 => {
                if write {
                    return Ok(None);
                }
                Ok(self.call_response.as_mut().map(|r| if map_type == 6 { &mut r.headers } else { &mut r.trailers }))
            }
            _ => Err(Status::BadArgument),
        }
    }

    fn log(&mut self, level: LogLevel, message: String) {
        if self.echo_logs {
            eprintln!("[{} ctx {} {:?}] {}", self.name, self.target().unwrap_or(0), level, message);
        }
        self.logs.push(LogLine { level, message, context_id: self.target().unwrap_or(0) });
    }

    fn resumed_now(&self) -> Resumed {
        Resumed {
            at: UNIX_EPOCH + Duration::from_nanos(self.shared.now_nanos()),
            during: self.callback,
            by_context: self.current,
        }
    }
}

// Access for the harness itself (on the VM thread, outside host calls).

pub fn install(host: VmHost) {
    HOST.with(|h| *h.borrow_mut() = Some(host));
}

/// Runs `f` on this thread's VM state. Harness code only: panics without a VM.
pub fn with<R>(f: impl FnOnce(&mut VmHost) -> R) -> R {
    HOST.with(|cell| {
        let mut guard = cell.borrow_mut();
        f(guard.as_mut().expect("harness: no VM on this thread"))
    })
}

/// Runs an SDK entry point as the callback `callback` of `context_id`: host calls made from it
/// act on that context until the filter calls `proxy_set_effective_context`; the effective
/// context does not outlive the callback (proxy-wasm-cpp-host resets it per call).
pub fn enter<R>(context_id: u32, callback: &'static str, f: impl FnOnce() -> R) -> R {
    with(|h| {
        h.current = context_id;
        h.effective = 0;
        h.callback = callback;
    });
    let result = f();
    with(|h| {
        h.current = 0;
        h.effective = 0;
        h.callback = "";
    });
    result
}

/// Forgets any effective context a `Vm::run` job set outside a callback, so it cannot leak
/// into the next job.
pub fn end_job() {
    let _ = HOST.try_with(|cell| {
        if let Some(h) = cell.try_borrow_mut().ok().as_mut().and_then(|g| g.as_mut()) {
            h.current = 0;
            h.effective = 0;
            h.callback = "";
        }
    });
}

/// Runs a host call on this thread's VM state. A host call from a thread without a VM (a test
/// calling filter code directly) gets `InternalFailure`, which the SDK turns into a panic in
/// its own, unwindable frame.
fn host_call(name: &'static str, f: impl FnOnce(&mut VmHost) -> Status) -> Status {
    let result = HOST.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut guard) => guard.as_mut().map(|h| {
            if h.initializing && name != "proxy_log" {
                panic!("harness: {name} during _initialize: Envoy refuses it (restricted_callback) and the plugin fails to load");
            }
            *h.host_calls.entry(name).or_default() += 1;
            match h.refused.get(name) {
                Some(&status) => status,
                None => f(h),
            }
        }),
        Err(_) => None,
    });
    match result {
        Ok(Some(status)) => status,
        _ => {
            eprintln!("harness: {name} called on a thread without a running VM: returning InternalFailure");
            Status::InternalFailure
        }
    }
}

fn lower(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Envoy's `HeaderMapImpl` keeps pseudo-headers ahead of the others; otherwise insertion order.
pub fn insert_header(map: &mut Pairs, name: String, value: Vec<u8>) {
    if name.starts_with(':') {
        let at = map.iter().position(|(k, _)| !k.starts_with(':')).unwrap_or(map.len());
        map.insert(at, (name, value));
    } else {
        map.push((name, value));
    }
}

fn log_level(level: u32) -> Option<LogLevel> {
    Some(match level {
        0 => LogLevel::Trace,
        1 => LogLevel::Debug,
        2 => LogLevel::Info,
        3 => LogLevel::Warn,
        4 => LogLevel::Error,
        5 => LogLevel::Critical,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Logging, time, ticks.

#[no_mangle]
pub extern "C" fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> Status {
    // SAFETY: the SDK passes its own message slice.
    let message = unsafe { wire::text(message_data, message_size) };
    let Some(level) = log_level(level) else { return Status::BadArgument };
    let logged = HOST.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut guard) => guard.as_mut().map(|h| h.log(level, message.clone())).is_some(),
        Err(_) => false,
    });
    if logged != Ok(true) {
        // Not on a VM thread (e.g. the SDK's panic hook reporting a test thread's panic), or
        // re-entered while the host state is borrowed: never lose the line.
        eprintln!("[no vm {level:?}] {message}");
    }
    Status::Ok
}

#[no_mangle]
pub extern "C" fn proxy_get_log_level(return_level: *mut LogLevel) -> Status {
    host_call("proxy_get_log_level", |h| {
        // SAFETY: the SDK passes a pointer to its local.
        unsafe { wire::put(return_level, h.log_level) };
        Status::Ok
    })
}

#[no_mangle]
pub extern "C" fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> Status {
    host_call("proxy_get_current_time_nanoseconds", |h| {
        // SAFETY: the SDK passes a pointer to its local.
        unsafe { wire::put(return_time, h.shared.now_nanos()) };
        Status::Ok
    })
}

#[no_mangle]
pub extern "C" fn proxy_set_tick_period_milliseconds(period: u32) -> Status {
    host_call("proxy_set_tick_period_milliseconds", |h| {
        h.tick_period = (period > 0).then(|| Duration::from_millis(u64::from(period)));
        Status::Ok
    })
}

// ---------------------------------------------------------------------------------------------
// Buffers.

#[no_mangle]
pub extern "C" fn proxy_get_buffer_bytes(
    buffer_type: u32,
    start: usize,
    max_size: usize,
    return_buffer_data: *mut *mut u8,
    return_buffer_size: *mut usize,
) -> Status {
    host_call("proxy_get_buffer_bytes", |h| {
        let buffer: &[u8] = match buffer_type {
            // Bodies and network data are not simulated: Envoy serves an empty buffer.
            0..=3 | 5 => &[],
            4 => match &h.call_response {
                Some(r) => &r.body,
                None => return Status::NotFound,
            },
            6 => &h.vm_config,
            7 => match &h.plugin_config {
                Some(c) => c,
                None => return Status::NotFound,
            },
            8 => &h.call_data,
            _ => return Status::BadArgument,
        };
        // Envoy clamps the length to what is there and returns nothing (Ok, null) when empty.
        // (Its overflow check on start + length, done in 64 bits, cannot trip for a wasm32
        // caller, so a native caller's huge `max_size` saturates instead.)
        let end = start.saturating_add(max_size).min(buffer.len());
        let chunk = buffer.get(start..end).unwrap_or_default().to_vec();
        // SAFETY: the SDK passes pointers to its locals.
        unsafe { wire::give(chunk, return_buffer_data, return_buffer_size) };
        Status::Ok
    })
}

#[no_mangle]
pub extern "C" fn proxy_set_buffer_bytes(
    buffer_type: u32,
    _start: usize,
    _size: usize,
    _buffer_data: *const u8,
    _buffer_size: usize,
) -> Status {
    host_call("proxy_set_buffer_bytes", |_| match buffer_type {
        // Bodies are not simulated; accept and drop, like writing into an absent body.
        0..=3 | 5 => Status::Ok,
        // Configuration, call response and call data buffers are read-only in Envoy; other
        // types do not exist.
        _ => Status::BadArgument,
    })
}

// ---------------------------------------------------------------------------------------------
// Header maps.

#[no_mangle]
pub extern "C" fn proxy_get_header_map_pairs(
    map_type: u32,
    return_map_data: *mut *mut u8,
    return_map_size: *mut usize,
) -> Status {
    host_call("proxy_get_header_map_pairs", |h| {
        // Envoy serves an absent map as an empty one here (`headerMapToPairs(nullptr)`).
        let bytes = match h.header_map(map_type, false) {
            Err(status) => return status,
            Ok(Some(map)) if !map.is_empty() => wire::serialize_pairs(map),
            Ok(_) => Vec::new(),
        };
        // SAFETY: the SDK passes pointers to its locals.
        unsafe { wire::give(bytes, return_map_data, return_map_size) };
        Status::Ok
    })
}

#[no_mangle]
pub extern "C" fn proxy_set_header_map_pairs(map_type: u32, map_data: *const u8, map_size: usize) -> Status {
    // SAFETY: the SDK passes its serialized map.
    let pairs = wire::deserialize_pairs(unsafe { wire::input(map_data, map_size) });
    host_call("proxy_set_header_map_pairs", |h| match h.header_map(map_type, true) {
        Err(status) => status,
        Ok(None) => Status::BadArgument,
        Ok(Some(map)) => {
            map.clear();
            for (k, v) in pairs {
                insert_header(map, lower(&k), v);
            }
            Status::Ok
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_get_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> Status {
    // SAFETY: the SDK passes its key.
    let key = lower(&unsafe { wire::text(key_data, key_size) });
    host_call("proxy_get_header_map_value", |h| match h.refused_reads.get(&key).filter(|_| map_type == 0) {
        Some(&status) => status,
        None => match h.header_map(map_type, false) {
            Err(status) => status,
            // "Requested map type is not currently available" (SDK: panics).
            Ok(None) => Status::BadArgument,
            Ok(Some(map)) => match map.iter().find(|(k, _)| *k == key) {
                None => Status::NotFound,
                // Envoy returns the first of repeated headers.
                Some((_, value)) => {
                    // SAFETY: the SDK passes pointers to its locals.
                    unsafe { wire::give(value.clone(), return_value_data, return_value_size) };
                    Status::Ok
                }
            },
        },
    })
}

#[no_mangle]
pub extern "C" fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> Status {
    // SAFETY: the SDK passes its key.
    let key = lower(&unsafe { wire::text(key_data, key_size) });
    host_call("proxy_remove_header_map_value", |h| match h.header_map(map_type, true) {
        Err(status) => status,
        Ok(None) => Status::BadArgument,
        Ok(Some(map)) => {
            map.retain(|(k, _)| *k != key);
            Status::Ok
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_replace_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    // SAFETY: the SDK passes its key and value.
    let (key, value) =
        unsafe { (lower(&wire::text(key_data, key_size)), wire::input(value_data, value_size).to_vec()) };
    host_call("proxy_replace_header_map_value", |h| match h.header_map(map_type, true) {
        Err(status) => status,
        Ok(None) => Status::BadArgument,
        Ok(Some(map)) => {
            // Envoy's `setCopy`: every occurrence goes, then one is added (at the end).
            map.retain(|(k, _)| *k != key);
            insert_header(map, key, value);
            Status::Ok
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_add_header_map_value(
    map_type: u32,
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    // SAFETY: the SDK passes its key and value.
    let (key, value) =
        unsafe { (lower(&wire::text(key_data, key_size)), wire::input(value_data, value_size).to_vec()) };
    host_call("proxy_add_header_map_value", |h| match h.header_map(map_type, true) {
        Err(status) => status,
        Ok(None) => Status::BadArgument,
        Ok(Some(map)) => {
            insert_header(map, key, value);
            Status::Ok
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Properties.

#[no_mangle]
pub extern "C" fn proxy_get_property(
    path_data: *const u8,
    path_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> Status {
    // SAFETY: the SDK passes its NUL-joined path.
    let path = unsafe { wire::input(path_data, path_size) }.to_vec();
    host_call("proxy_get_property", |h| {
        // What the filter stored on this stream first (Envoy's filter state), then the test's.
        let from_stream = h.target_ctx().and_then(|c| c.properties.get(&path).cloned());
        match from_stream.or_else(|| h.properties.get(&path).cloned()) {
            None => Status::NotFound,
            Some(value) => {
                // SAFETY: the SDK passes pointers to its locals.
                unsafe { wire::give(value, return_value_data, return_value_size) };
                Status::Ok
            }
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_set_property(
    path_data: *const u8,
    path_size: usize,
    value_data: *const u8,
    value_size: usize,
) -> Status {
    // SAFETY: the SDK passes its path and value.
    let (path, value) =
        unsafe { (wire::input(path_data, path_size).to_vec(), wire::input(value_data, value_size).to_vec()) };
    host_call("proxy_set_property", |h| match h.target_ctx() {
        // Envoy stores it in the stream's filter state; a root context has no stream.
        Some(ctx) if !ctx.is_root => {
            ctx.properties.insert(path, value);
            Status::Ok
        }
        _ => Status::NotFound,
    })
}

// ---------------------------------------------------------------------------------------------
// Shared data and queues.

#[no_mangle]
pub extern "C" fn proxy_get_shared_data(
    key_data: *const u8,
    key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
    return_cas: *mut u32,
) -> Status {
    // SAFETY: the SDK passes its key.
    let key = unsafe { wire::text(key_data, key_size) };
    host_call("proxy_get_shared_data", |h| match h.shared.get_data(&key) {
        None => Status::NotFound,
        Some((value, cas)) => {
            // SAFETY: the SDK passes pointers to its locals.
            unsafe {
                wire::give(value, return_value_data, return_value_size);
                wire::put(return_cas, cas);
            }
            Status::Ok
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_set_shared_data(
    key_data: *const u8,
    key_size: usize,
    value_data: *const u8,
    value_size: usize,
    cas: u32,
) -> Status {
    // SAFETY: the SDK passes its key and value.
    let (key, value) = unsafe { (wire::text(key_data, key_size), wire::input(value_data, value_size)) };
    host_call("proxy_set_shared_data", |h| h.shared.set_data(&key, value, cas))
}

#[no_mangle]
pub extern "C" fn proxy_register_shared_queue(name_data: *const u8, name_size: usize, return_id: *mut u32) -> Status {
    // SAFETY: the SDK passes its name.
    let name = unsafe { wire::text(name_data, name_size) };
    host_call("proxy_register_shared_queue", |h| {
        let id = h.shared.queues().register(&h.vm_id, &name);
        // SAFETY: the SDK passes a pointer to its local.
        unsafe { wire::put(return_id, id) };
        Status::Ok
    })
}

#[no_mangle]
pub extern "C" fn proxy_resolve_shared_queue(
    vm_id_data: *const u8,
    vm_id_size: usize,
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> Status {
    // SAFETY: the SDK passes its strings.
    let (vm_id, name) = unsafe { (wire::text(vm_id_data, vm_id_size), wire::text(name_data, name_size)) };
    host_call("proxy_resolve_shared_queue", |h| match h.shared.queues().resolve(&vm_id, &name) {
        None => Status::NotFound,
        Some(id) => {
            // SAFETY: the SDK passes a pointer to its local.
            unsafe { wire::put(return_id, id) };
            Status::Ok
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_dequeue_shared_queue(
    queue_id: u32,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> Status {
    host_call("proxy_dequeue_shared_queue", |h| match h.shared.queues().dequeue(queue_id) {
        Err(status) => status,
        Ok(value) => {
            // SAFETY: the SDK passes pointers to its locals.
            unsafe { wire::give(value, return_value_data, return_value_size) };
            Status::Ok
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> Status {
    // SAFETY: the SDK passes its value.
    let value = unsafe { wire::input(value_data, value_size) };
    host_call("proxy_enqueue_shared_queue", |h| h.shared.queues().enqueue(queue_id, value))
}

// ---------------------------------------------------------------------------------------------
// Stream control.

#[no_mangle]
pub extern "C" fn proxy_continue_stream(stream_type: u32) -> Status {
    host_call("proxy_continue_stream", |h| {
        let resumed = h.resumed_now();
        let Some(ctx) = h.target_ctx() else { return Status::Ok };
        match stream_type {
            // Envoy defers `continueDecoding()` to after the VM call but drops its pointer to
            // the request headers at once: they are out of reach from here on.
            0 => {
                if !ctx.is_root {
                    ctx.resumed.get_or_insert(resumed);
                }
                ctx.request_open = false;
                Status::Ok
            }
            1 => {
                if !ctx.is_root {
                    ctx.response_resumed.get_or_insert(resumed);
                }
                ctx.response_open = false;
                Status::Ok
            }
            2 => Status::Ok,
            // Envoy answers Unimplemented (12), which the SDK's `Status` cannot represent.
            3 => Status::InternalFailure,
            _ => Status::BadArgument,
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_close_stream(stream_type: u32) -> Status {
    host_call("proxy_close_stream", |h| {
        if stream_type > 3 {
            return Status::BadArgument;
        }
        if let Some(ctx) = h.target_ctx() {
            if stream_type <= 1 && !ctx.is_root {
                ctx.reset = true;
            }
        }
        Status::Ok
    })
}

#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub extern "C" fn proxy_send_local_response(
    status_code: u32,
    status_code_details_data: *const u8,
    status_code_details_size: usize,
    body_data: *const u8,
    body_size: usize,
    headers_data: *const u8,
    headers_size: usize,
    grpc_status: i32,
) -> Status {
    // SAFETY: the SDK passes its own slices.
    let (details, body, headers) = unsafe {
        (
            wire::text(status_code_details_data, status_code_details_size),
            wire::input(body_data, body_size).to_vec(),
            wire::deserialize_pairs(wire::input(headers_data, headers_size)),
        )
    };
    host_call("proxy_send_local_response", |h| {
        // Envoy sends it through the stream's decoder callbacks; a root context has none, and
        // the call is then a silent no-op.
        if let Some(ctx) = h.target_ctx() {
            if !ctx.is_root {
                let headers =
                    headers.into_iter().map(|(k, v)| (lower(&k), String::from_utf8_lossy(&v).into_owned())).collect();
                ctx.local_replies.push(LocalReply { status: status_code, details, headers, body, grpc_status });
            }
        }
        Status::Ok
    })
}

#[no_mangle]
pub extern "C" fn proxy_set_effective_context(context_id: u32) -> Status {
    host_call("proxy_set_effective_context", |h| {
        // Envoy: BadArgument for a context that does not exist (never created, or deleted).
        if h.contexts.contains_key(&context_id) {
            h.effective = context_id;
            Status::Ok
        } else {
            Status::BadArgument
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_done() -> Status {
    host_call("proxy_done", |h| {
        h.done_calls = h.done_calls.saturating_add(1);
        Status::Ok
    })
}

#[no_mangle]
pub extern "C" fn proxy_get_status(
    return_code: *mut u32,
    return_message_data: *mut *mut u8,
    return_message_size: *mut usize,
) -> Status {
    host_call("proxy_get_status", |h| {
        let (code, message) = h.target_ctx().map(|c| c.status.clone()).unwrap_or_default();
        // SAFETY: the SDK passes pointers to its locals.
        unsafe {
            wire::put(return_code, code);
            wire::give(message.into_bytes(), return_message_data, return_message_size);
        }
        Status::Ok
    })
}

// ---------------------------------------------------------------------------------------------
// HTTP and gRPC calls.

#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub extern "C" fn proxy_http_call(
    upstream_data: *const u8,
    upstream_size: usize,
    headers_data: *const u8,
    headers_size: usize,
    body_data: *const u8,
    body_size: usize,
    trailers_data: *const u8,
    trailers_size: usize,
    timeout: u32,
    return_token: *mut u32,
) -> Status {
    // SAFETY: the SDK passes its own slices.
    let (cluster, headers, body, trailers) = unsafe {
        (
            wire::text(upstream_data, upstream_size),
            wire::deserialize_pairs(wire::input(headers_data, headers_size)),
            wire::input(body_data, body_size).to_vec(),
            wire::deserialize_pairs(wire::input(trailers_data, trailers_size)),
        )
    };
    let text = |pairs: Pairs| -> Vec<(String, String)> {
        pairs.into_iter().map(|(k, v)| (lower(&k), String::from_utf8_lossy(&v).into_owned())).collect()
    };
    let (headers, trailers) = (text(headers), text(trailers));
    host_call("proxy_http_call", |h| {
        if let Some(status) = h.dispatch_failure {
            return status;
        }
        // Envoy's `Context::httpCall`: a negative (as int) timeout, an unknown cluster, or a
        // request without :path, :method or :authority is BadArgument.
        let has = |name: &str| headers.iter().any(|(k, _)| k == name);
        if i32::try_from(timeout).is_err()
            || !h.shared.has_cluster(&cluster)
            || !has(":path")
            || !has(":method")
            || !has(":authority")
        {
            return Status::BadArgument;
        }
        let token = h.next_token;
        h.next_token = h.next_token.wrapping_add(1);
        h.pending.insert(
            token,
            HttpCall {
                token,
                context_id: h.current,
                cluster,
                headers,
                body,
                trailers,
                timeout: Duration::from_millis(u64::from(timeout)),
                dispatched_at: UNIX_EPOCH + Duration::from_nanos(h.shared.now_nanos()),
            },
        );
        // SAFETY: the SDK passes a pointer to its local.
        unsafe { wire::put(return_token, token) };
        Status::Ok
    })
}

// gRPC is not simulated: calls fail as if the service could not be reached.

#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub extern "C" fn proxy_grpc_call(
    _upstream_data: *const u8,
    _upstream_size: usize,
    _service_name_data: *const u8,
    _service_name_size: usize,
    _method_name_data: *const u8,
    _method_name_size: usize,
    _initial_metadata_data: *const u8,
    _initial_metadata_size: usize,
    _message_data_data: *const u8,
    _message_data_size: usize,
    _timeout: u32,
    _return_callout_id: *mut u32,
) -> Status {
    Status::InternalFailure
}

#[allow(clippy::too_many_arguments)]
#[no_mangle]
pub extern "C" fn proxy_grpc_stream(
    _upstream_data: *const u8,
    _upstream_size: usize,
    _service_name_data: *const u8,
    _service_name_size: usize,
    _method_name_data: *const u8,
    _method_name_size: usize,
    _initial_metadata_data: *const u8,
    _initial_metadata_size: usize,
    _return_stream_id: *mut u32,
) -> Status {
    Status::InternalFailure
}

#[no_mangle]
pub extern "C" fn proxy_grpc_send(
    _token: u32,
    _message_ptr: *const u8,
    _message_len: usize,
    _end_stream: bool,
) -> Status {
    Status::NotFound
}

#[no_mangle]
pub extern "C" fn proxy_grpc_cancel(_token_id: u32) -> Status {
    Status::NotFound
}

#[no_mangle]
pub extern "C" fn proxy_grpc_close(_token_id: u32) -> Status {
    Status::NotFound
}

// ---------------------------------------------------------------------------------------------
// Foreign functions.

#[no_mangle]
pub extern "C" fn proxy_call_foreign_function(
    function_name_data: *const u8,
    function_name_size: usize,
    arguments_data: *const u8,
    arguments_size: usize,
    results_data: *mut *mut u8,
    results_size: *mut usize,
) -> Status {
    // SAFETY: the SDK passes its own slices.
    let (name, arguments) =
        unsafe { (wire::text(function_name_data, function_name_size), wire::input(arguments_data, arguments_size)) };
    let mut handler = None;
    let status = host_call("proxy_call_foreign_function", |h| {
        handler = h.foreign.get(&name).copied();
        // Envoy: NotFound when no such function is registered.
        if handler.is_some() {
            Status::Ok
        } else {
            Status::NotFound
        }
    });
    let Some(handler) = handler else { return status };
    // Called with the host state released, so the handler may do anything.
    match handler(arguments) {
        Ok(result) => {
            // SAFETY: the SDK passes pointers to its locals.
            unsafe { wire::give(result, results_data, results_size) };
            Status::Ok
        }
        Err(status) => status,
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics.

#[no_mangle]
pub extern "C" fn proxy_define_metric(
    metric_type: u32,
    name_data: *const u8,
    name_size: usize,
    return_id: *mut u32,
) -> Status {
    // SAFETY: the SDK passes its name.
    let name = unsafe { wire::text(name_data, name_size) };
    host_call("proxy_define_metric", |h| {
        let Some(kind) = Kind::from_abi(metric_type) else { return Status::BadArgument };
        let id = h.shared.metrics().define(kind, &name);
        // SAFETY: the SDK passes a pointer to its local.
        unsafe { wire::put(return_id, id) };
        Status::Ok
    })
}

#[no_mangle]
pub extern "C" fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> Status {
    host_call("proxy_get_metric", |h| match h.shared.metrics().get(metric_id) {
        Err(status) => status,
        Ok(value) => {
            // SAFETY: the SDK passes a pointer to its local.
            unsafe { wire::put(return_value, value) };
            Status::Ok
        }
    })
}

#[no_mangle]
pub extern "C" fn proxy_record_metric(metric_id: u32, value: u64) -> Status {
    host_call("proxy_record_metric", |h| h.shared.metrics().record(metric_id, value))
}

#[no_mangle]
pub extern "C" fn proxy_increment_metric(metric_id: u32, offset: i64) -> Status {
    host_call("proxy_increment_metric", |h| h.shared.metrics().increment(metric_id, offset))
}
