//! A mock proxy-wasm host for `cargo test` on the native target: the real filter code runs
//! through the SDK's real exported entry points (`proxy_on_*`), and every `proxy_*` host
//! function the SDK imports is implemented natively (in `host.rs`), behaving as Envoy 1.40's.
//!
//! - [`MockProxy`] is one Envoy: shared data, metrics, shared queues, clusters and the clock,
//!   shared by all its VMs.
//! - [`Vm`] is one wasm VM (one Envoy worker). The SDK's dispatcher is thread-local, so each VM
//!   owns a thread; every method runs a closure there and waits for it.
//! - [`Request`] is one HTTP stream on a VM, and can stay paused while others run.
//!
//! ```ignore
//! mod harness;
//! let proxy = harness::MockProxy::new();
//! let vm = proxy.vm();
//! vm.start(|| jwt_authn_wasm::_initialize());
//! assert!(vm.configure(r#"{"providers": {}}"#));
//! let req = vm.request(&[(":path", "/api"), ("authorization", "Bearer x")]);
//! assert_eq!(req.status(), 401);
//! assert_eq!(req.local_reply().unwrap().header("www-authenticate"), Some("Bearer"));
//! req.finish();
//! ```
//!
//! A panic inside the filter kills the VM, as a trap does in Envoy: the call that caused it
//! fails the test with the panic message, and later calls on that VM fail too; other VMs and
//! tests carry on (std still prints "thread caused non-unwinding panic. aborting." to stderr:
//! see `abort_guard`).
//!
//! Set `HARNESS_LOG=1` to echo the filter's log lines to stderr, and `HARNESS_TIMEOUT_SECS` to
//! change how long a call may take before it is declared hung (default 60).

// Each test binary uses a different part of the harness.
#![allow(dead_code)]

mod host;
mod shared;
mod wire;

pub use host::ForeignFn;
pub use proxy_wasm::types::{Action, LogLevel, Status};

use host::{CallResponse, Ctx, VmHost};
use shared::Shared;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wire::Pairs;

// The SDK's exported entry points (`#[no_mangle]` in proxy-wasm's dispatcher), called as
// Envoy calls them.
extern "C" {
    fn proxy_on_context_create(context_id: u32, root_context_id: u32);
    fn proxy_on_vm_start(context_id: u32, vm_configuration_size: usize) -> bool;
    fn proxy_on_configure(context_id: u32, plugin_configuration_size: usize) -> bool;
    fn proxy_on_tick(context_id: u32);
    fn proxy_on_queue_ready(context_id: u32, queue_id: u32);
    fn proxy_on_request_headers(context_id: u32, num_headers: usize, end_of_stream: bool) -> Action;
    fn proxy_on_response_headers(context_id: u32, num_headers: usize, end_of_stream: bool) -> Action;
    fn proxy_on_http_call_response(
        context_id: u32,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    );
    fn proxy_on_foreign_function(context_id: u32, function_id: u32, arguments_size: usize);
    fn proxy_on_done(context_id: u32) -> bool;
    fn proxy_on_log(context_id: u32);
    fn proxy_on_delete(context_id: u32);
}

// ---------------------------------------------------------------------------------------------
// What tests look at.

/// A local reply the filter sent (`proxy_send_local_response`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    /// As the filter passed them, names lowercased. Envoy adds content-length, date, server,
    /// and content-type: text/plain when there is a body and no content-type.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// -1 (the SDK's default) means none.
    pub grpc_status: i32,
}

impl LocalReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// When a paused stream was resumed with `proxy_continue_stream`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumed {
    /// The mock clock at that moment.
    pub at: SystemTime,
    /// The callback that resumed it: "on_tick", "on_http_call_response", ...
    pub during: &'static str,
    /// Whose callback it was: the root context's id when the root resumed it.
    pub by_context: u32,
}

/// A `proxy_log` line.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    /// The context the line was logged from (0: none, e.g. during `_initialize`).
    pub context_id: u32,
}

/// A call the filter dispatched with `proxy_http_call`, waiting for [`Vm::respond`],
/// [`Vm::fail_call`] or [`Vm::timeout_call`].
#[derive(Clone, Debug)]
pub struct HttpCall {
    pub token: u32,
    /// The context whose callback dispatched it; the SDK routes the answer there.
    pub context_id: u32,
    pub cluster: String,
    /// Names lowercased, as Envoy builds the request.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub timeout: Duration,
    pub dispatched_at: SystemTime,
}

impl HttpCall {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.header(":path").unwrap_or_default()
    }

    pub fn authority(&self) -> &str {
        self.header(":authority").unwrap_or_default()
    }

    pub fn method(&self) -> &str {
        self.header(":method").unwrap_or_default()
    }
}

/// Where a request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `on_request_headers` returned Continue, or the stream was resumed later.
    Continued,
    /// The filter sent a local reply (the first one, if it sent several).
    Replied(LocalReply),
    /// Still paused: no reply, not resumed.
    Paused,
    /// The filter reset the stream (`proxy_close_stream`).
    Reset,
}

// ---------------------------------------------------------------------------------------------
// The proxy.

/// One simulated Envoy. Cheap to clone; clones are the same proxy.
#[derive(Clone)]
pub struct MockProxy {
    shared: Arc<Shared>,
}

impl Default for MockProxy {
    fn default() -> Self {
        MockProxy::new()
    }
}

impl MockProxy {
    /// A proxy whose clock reads 2025-01-01T00:00:00Z and which knows every cluster.
    pub fn new() -> MockProxy {
        MockProxy { shared: Arc::new(Shared::new()) }
    }

    /// A new VM (worker) bound to this proxy, on its own thread. Call [`Vm::start`] next.
    pub fn vm(&self) -> Vm {
        Vm::new(self.clone())
    }

    // Clock (what `proxy_get_current_time_nanoseconds` returns).

    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.shared.now_nanos())
    }

    pub fn now_nanos(&self) -> u64 {
        self.shared.now_nanos()
    }

    pub fn set_now(&self, now: SystemTime) {
        let nanos = now.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        self.shared.set_now_nanos(nanos);
    }

    pub fn advance(&self, by: Duration) {
        self.shared.advance(by);
    }

    // Shared data.

    /// The value and cas stored under `key`.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.shared.get_data(key)
    }

    pub fn shared_data_text(&self, key: &str) -> Option<String> {
        self.shared.get_data(key).map(|(v, _)| String::from_utf8_lossy(&v).into_owned())
    }

    /// Stores unconditionally, as another VM would with cas 0 (bumps the cas).
    pub fn set_shared_data(&self, key: &str, value: &[u8]) {
        let _ = self.shared.set_data(key, value, 0);
    }

    pub fn shared_data_keys(&self) -> Vec<String> {
        self.shared.data_keys()
    }

    // Metrics.

    /// A counter's or gauge's value (None for an undefined name or a histogram).
    pub fn metric(&self, name: &str) -> Option<u64> {
        let metrics = self.shared.metrics();
        metrics.by_name(name).filter(|m| m.kind != shared::Kind::Histogram).map(|m| m.value)
    }

    /// A histogram's recorded samples.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        let metrics = self.shared.metrics();
        metrics.by_name(name).filter(|m| m.kind == shared::Kind::Histogram).map(|m| m.samples.clone())
    }

    /// Every counter and gauge, by name.
    pub fn metrics(&self) -> Vec<(String, u64)> {
        let metrics = self.shared.metrics();
        metrics.all().into_iter().filter(|m| m.kind != shared::Kind::Histogram).map(|m| (m.name, m.value)).collect()
    }

    // Clusters.

    /// Only these clusters exist from now on: `proxy_http_call` to any other is BadArgument,
    /// as in Envoy. By default every cluster exists.
    pub fn set_clusters(&self, names: &[&str]) {
        self.shared.set_clusters(Some(names));
    }

    pub fn allow_all_clusters(&self) {
        self.shared.set_clusters(None);
    }
}

// ---------------------------------------------------------------------------------------------
// The VM thread.

type Job = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;

enum Reply {
    Done(Box<dyn Any + Send>),
    Panicked(String),
}

thread_local! {
    /// On a VM thread: where to report a panic, whether a job is running, and whether the
    /// thread has panicked (the VM is dead).
    static REPLY: RefCell<Option<mpsc::Sender<Reply>>> = const { RefCell::new(None) };
    static IN_JOB: Cell<bool> = const { Cell::new(false) };
    static DYING: Cell<bool> = const { Cell::new(false) };
}

static VM_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Makes a panic on a VM thread a test failure instead of an abort of the test binary.
///
/// The hook reports the first panic of a VM thread to the test thread waiting on it, which
/// fails the test with the message, and marks the VM dead. Any panic kills the VM, even one the
/// code catches, as in a wasm module built with `panic = "abort"` (where Envoy sees a trap).
///
/// The SDK installs its own hook (logging the panic at Critical) the first time any
/// `set_log_level` runs; calling it here first means no filter's init replaces ours later, and
/// ours forwards to it so the Critical line still reaches the VM's logs.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        proxy_wasm::set_log_level(LogLevel::Trace);
        let sdk = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_JOB.try_with(Cell::get).unwrap_or(false) {
                return default(info);
            }
            // A second panic on a dying VM thread is Rust refusing to unwind out of the SDK's
            // `extern "C"` entry point ("panic in a function that cannot unwind"): see
            // `abort_guard`. Nothing new to report.
            if DYING.try_with(|d| d.replace(true)).unwrap_or(true) {
                return;
            }
            sdk(info);
            let message = info.to_string();
            let _ = REPLY.try_with(|r| {
                if let Some(tx) = r.try_borrow().ok().as_ref().and_then(|r| r.as_ref()) {
                    let _ = tx.send(Reply::Panicked(message));
                }
            });
        }));
        abort_guard::install();
    });
}

/// Keeps a dying VM thread from taking the whole test binary down.
///
/// A panic in filter code unwinds into the SDK's `extern "C"` entry point, where Rust stops
/// and calls `abort()`. By then the hook has reported the panic and std holds no lock on this
/// thread, so a SIGABRT handler that never returns on a dying VM thread turns "abort the
/// process" into "this VM thread is gone", as a trap takes down one wasm VM in Envoy.
/// (std still prints "thread caused non-unwinding panic. aborting." on stderr.)
/// Any other abort goes ahead.
#[cfg(unix)]
mod abort_guard {
    use std::cell::Cell;
    use std::time::Duration;

    extern "C" {
        // libc's `signal`, with `sighandler_t` as an address.
        fn signal(signum: i32, handler: usize) -> usize;
    }

    const SIGABRT: i32 = 6;
    const SIG_DFL: usize = 0;

    pub fn install() {
        // SAFETY: `on_abort` has the signature of a signal handler and lives forever.
        unsafe { signal(SIGABRT, on_abort as extern "C" fn(i32) as usize) };
    }

    extern "C" fn on_abort(_signum: i32) {
        // Only async-signal-safe work here: a const thread-local read, then nanosleep.
        if super::DYING.try_with(Cell::get).unwrap_or(false) {
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        // SAFETY: restores the default action; `abort` then raises SIGABRT again and the
        // process ends as it should.
        unsafe { signal(SIGABRT, SIG_DFL) };
    }
}

#[cfg(not(unix))]
mod abort_guard {
    pub fn install() {}
}

fn reply_timeout() -> Duration {
    let secs = std::env::var("HARNESS_TIMEOUT_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    Duration::from_secs(secs)
}

fn vm_main(shared: Arc<Shared>, name: String, jobs: mpsc::Receiver<Job>, replies: mpsc::Sender<Reply>) {
    host::install(VmHost::new(shared, name));
    REPLY.with(|r| *r.borrow_mut() = Some(replies.clone()));
    for job in jobs {
        IN_JOB.with(|f| f.set(true));
        // A panic that does not cross an SDK entry point (harness code, an init closure)
        // unwinds to here; one that does never comes back (see `abort_guard`).
        let result = panic::catch_unwind(AssertUnwindSafe(job));
        IN_JOB.with(|f| f.set(false));
        host::end_job();
        // The hook already reported the panic: the VM is dead, whatever the job returned.
        if DYING.with(Cell::get) {
            break;
        }
        let reply = match result {
            Ok(value) => Reply::Done(value),
            Err(_) => Reply::Panicked("a panic the hook did not see".to_string()),
        };
        if replies.send(reply).is_err() {
            break;
        }
    }
}

/// One simulated VM (one Envoy worker), on its own thread. See the module docs.
pub struct Vm {
    proxy: MockProxy,
    name: String,
    jobs: Option<mpsc::Sender<Job>>,
    replies: Mutex<mpsc::Receiver<Reply>>,
    thread: Option<thread::JoinHandle<()>>,
    /// Why the VM died (filter panic, hang): it takes no more calls.
    dead: Mutex<Option<String>>,
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.jobs.take(); // Closing the channel ends the thread's loop.
        let dead = self.dead.lock().unwrap_or_else(PoisonError::into_inner).is_some();
        if let Some(thread) = self.thread.take() {
            // A dead VM's thread may be stuck for good (see `abort_guard`): leave it.
            if !dead {
                let _ = thread.join();
            }
        }
    }
}

impl Vm {
    fn new(proxy: MockProxy) -> Vm {
        install_panic_hook();
        let name = format!("vm{}", VM_COUNT.fetch_add(1, Ordering::Relaxed) + 1);
        let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
        let (replies_tx, replies_rx) = mpsc::channel::<Reply>();
        let shared = proxy.shared.clone();
        let thread_name = name.clone();
        let thread = thread::Builder::new()
            .name(name.clone())
            .stack_size(8 << 20)
            .spawn(move || vm_main(shared, thread_name, jobs_rx, replies_tx))
            .expect("harness: spawn VM thread");
        Vm {
            proxy,
            name,
            jobs: Some(jobs_tx),
            replies: Mutex::new(replies_rx),
            thread: Some(thread),
            dead: Mutex::new(None),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn proxy(&self) -> &MockProxy {
        &self.proxy
    }

    /// Runs `f` on the VM thread and returns its result: an escape hatch for calling
    /// `proxy_wasm::hostcalls` as VM code would (outside any callback, as in `_initialize`).
    #[track_caller]
    pub fn run<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> R {
        if let Some(why) = self.dead.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            panic!("{}: this VM is dead since an earlier call: {why}", self.name);
        }
        let replies = self.replies.lock().unwrap_or_else(PoisonError::into_inner);
        let job: Job = Box::new(move || Box::new(f()) as Box<dyn Any + Send>);
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job).is_ok()).unwrap_or(false);
        if !sent {
            panic!("{}: the VM thread is gone", self.name);
        }
        let why = match replies.recv_timeout(reply_timeout()) {
            Ok(Reply::Done(value)) => match value.downcast::<R>() {
                Ok(value) => return *value,
                Err(_) => unreachable!("a job replies with its own type"),
            },
            Ok(Reply::Panicked(message)) => {
                format!("the filter panicked (in Envoy the VM traps and is dead): {message}")
            }
            Err(RecvTimeoutError::Timeout) => {
                format!("no answer within {:?}: deadlock or endless loop on the VM thread", reply_timeout())
            }
            Err(RecvTimeoutError::Disconnected) => "the VM thread exited".to_string(),
        };
        drop(replies);
        *self.dead.lock().unwrap_or_else(PoisonError::into_inner) = Some(why.clone());
        panic!("{}: {why}", self.name);
    }

    /// Runs `f` on the VM thread with its host state.
    #[track_caller]
    fn with_host<R: Send + 'static>(&self, f: impl FnOnce(&mut VmHost) -> R + Send + 'static) -> R {
        self.run(move || host::with(f))
    }

    /// Runs a VM-side step that may refuse (a test mistake): the refusal fails the test here,
    /// on the test thread, leaving the VM usable.
    #[track_caller]
    fn step<R: Send + 'static>(&self, f: impl FnOnce() -> Result<R, String> + Send + 'static) -> R {
        match self.run(f) {
            Ok(value) => value,
            Err(why) => panic!("{}: {why}", self.name),
        }
    }

    // Lifecycle.

    /// Runs the module's initialisation on the VM thread, e.g.
    /// `vm.start(|| jwt_authn_wasm::_initialize())`, or a closure that registers test contexts
    /// with `proxy_wasm::set_root_context`.
    #[track_caller]
    /// Runs `init` as `_initialize`: like Envoy, any host call but logging fails the VM.
    pub fn start(&self, init: impl FnOnce() + Send + 'static) {
        self.with_host(|h| h.initializing = true);
        self.run(init);
        self.with_host(|h| h.initializing = false);
    }

    /// The VM configuration `on_vm_start` will read (default: empty). Set before `configure`.
    pub fn set_vm_configuration(&self, config: &[u8]) {
        let config = config.to_vec();
        self.with_host(move |h| h.vm_config = config);
    }

    /// Configures the plugin as Envoy does: on the first call, creates the root context and
    /// runs `on_vm_start` with the VM configuration; then runs `on_configure` with `plugin_config`
    /// readable as `BufferType::PluginConfiguration` (only during that callback). Returns what
    /// the filter returned (false when `on_vm_start` refused).
    #[track_caller]
    pub fn configure(&self, plugin_config: &str) -> bool {
        self.configure_bytes(plugin_config.as_bytes())
    }

    #[track_caller]
    pub fn configure_bytes(&self, plugin_config: &[u8]) -> bool {
        let config = plugin_config.to_vec();
        self.run(move || {
            let existing = host::with(|h| h.root_id);
            let root = match existing {
                Some(root) => root,
                None => {
                    let root = host::with(|h| {
                        let id = h.new_context_id();
                        h.contexts.insert(id, Ctx { is_root: true, ..Ctx::default() });
                        h.root_id = Some(id);
                        id
                    });
                    // SAFETY (all `unsafe` calls of entry points below): plain-value arguments;
                    // the SDK's exports are sound for any context id it was told about.
                    host::enter(root, "on_context_create", || unsafe { proxy_on_context_create(root, 0) });
                    let size = host::with(|h| h.vm_config.len());
                    if !host::enter(root, "on_vm_start", || unsafe { proxy_on_vm_start(root, size) }) {
                        return false;
                    }
                    root
                }
            };
            let size = config.len();
            host::with(|h| h.plugin_config = Some(config));
            let ok = host::enter(root, "on_configure", || unsafe { proxy_on_configure(root, size) });
            host::with(|h| h.plugin_config = None);
            ok
        })
    }

    /// The root context's id, once configured.
    pub fn root_id(&self) -> Option<u32> {
        self.with_host(|h| h.root_id)
    }

    /// Shuts the plugin down as Envoy does on drain: `on_done` then `on_delete` on the root
    /// context. Returns `on_done`'s answer (false: the filter will call `proxy_done` later).
    #[track_caller]
    pub fn stop(&self) -> bool {
        self.step(|| {
            let root = host::with(|h| h.root_id.take()).ok_or("stop before configure")?;
            let done = host::enter(root, "on_done", || unsafe { proxy_on_done(root) });
            host::enter(root, "on_delete", || unsafe { proxy_on_delete(root) });
            host::with(|h| h.contexts.remove(&root));
            Ok(done)
        })
    }

    /// How many times the filter called `proxy_done`.
    pub fn done_calls(&self) -> u32 {
        self.with_host(|h| h.done_calls)
    }

    // Requests.

    /// A new HTTP stream: creates the context (`proxy_on_context_create(id, root)`) and runs
    /// `proxy_on_request_headers(id, n, end_of_stream = true)`. Names are lowercased; missing
    /// `:method` (GET), `:scheme` (https), `:path` (/) and `:authority` (example.com) are added,
    /// since Envoy always has them.
    #[track_caller]
    pub fn request(&self, headers: &[(&str, &str)]) -> Request<'_> {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        self.request_bytes(&headers)
    }

    /// As [`Vm::request`], with raw header values (e.g. invalid UTF-8).
    #[track_caller]
    pub fn request_bytes(&self, headers: &[(&str, &[u8])]) -> Request<'_> {
        let mut map = to_pairs(headers);
        for (name, value) in [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "example.com")] {
            if !map.iter().any(|(k, _)| k == name) {
                host::insert_header(&mut map, name.to_string(), value.as_bytes().to_vec());
            }
        }
        self.start_request(map)
    }

    /// As [`Vm::request_bytes`], without the default pseudo-headers.
    #[track_caller]
    pub fn request_exact(&self, headers: &[(&str, &[u8])]) -> Request<'_> {
        self.start_request(to_pairs(headers))
    }

    #[track_caller]
    fn start_request(&self, headers: Pairs) -> Request<'_> {
        let (id, action) = self.step(move || {
            let root = host::with(|h| h.root_id)
                .ok_or("request before configure: Envoy only streams through a configured plugin")?;
            let id = host::with(|h| {
                let id = h.new_context_id();
                h.contexts.insert(id, Ctx::default());
                id
            });
            host::enter(id, "on_context_create", || unsafe { proxy_on_context_create(id, root) });
            // Envoy points at the request headers only after creating the context.
            let n = headers.len();
            host::with(|h| {
                if let Some(c) = h.contexts.get_mut(&id) {
                    c.request_headers = headers;
                    c.request_open = true;
                }
            });
            let action = host::enter(id, "on_request_headers", || unsafe { proxy_on_request_headers(id, n, true) });
            if action == Action::Continue {
                host::with(|h| {
                    if let Some(c) = h.contexts.get_mut(&id) {
                        c.request_open = false;
                    }
                });
            }
            Ok((id, action))
        });
        Request { vm: self, id, action }
    }

    /// HTTP contexts created and not finished yet.
    pub fn live_requests(&self) -> Vec<u32> {
        self.with_host(|h| {
            let mut ids: Vec<u32> = h.contexts.iter().filter(|(_, c)| !c.is_root).map(|(id, _)| *id).collect();
            ids.sort_unstable();
            ids
        })
    }

    // Ticks.

    /// What the filter set with `proxy_set_tick_period_milliseconds` (None: no ticks).
    pub fn tick_period(&self) -> Option<Duration> {
        self.with_host(|h| h.tick_period)
    }

    /// `proxy_on_tick(root)`. Fails the test if the filter never set a tick period: Envoy
    /// would never tick it.
    #[track_caller]
    pub fn tick(&self) {
        self.step(|| {
            let (root, period) = host::with(|h| (h.root_id, h.tick_period));
            let root = root.ok_or("tick before configure")?;
            period.ok_or("tick, but the filter set no tick period: Envoy would never call on_tick")?;
            host::enter(root, "on_tick", || unsafe { proxy_on_tick(root) });
            Ok(())
        })
    }

    /// Lets `by` elapse on the proxy clock one tick period at a time, ticking after each
    /// (like Envoy's timer would); without a tick period, only advances the clock. Returns the
    /// number of ticks.
    pub fn advance_ticking(&self, by: Duration) -> usize {
        let mut left = by;
        let mut ticks = 0;
        while let Some(period) = self.tick_period() {
            if left < period {
                break;
            }
            self.proxy.advance(period);
            left -= period;
            self.tick();
            ticks += 1;
        }
        self.proxy.advance(left);
        ticks
    }

    // Dispatched calls.

    /// Calls dispatched and not answered yet, oldest first.
    pub fn pending_calls(&self) -> Vec<HttpCall> {
        self.with_host(|h| h.pending.values().cloned().collect())
    }

    /// Makes the next dispatches fail with `status` (BadArgument or InternalFailure, what Envoy
    /// returns); None to let them through again.
    pub fn fail_dispatch(&self, status: Option<Status>) {
        self.with_host(move |h| h.dispatch_failure = status);
    }

    /// Makes the host answer every call to the ABI function `call` with `status` instead of
    /// carrying it out; None to carry it out again.
    pub fn refuse(&self, call: &'static str, status: Option<Status>) {
        self.with_host(move |h| {
            match status {
                Some(s) => h.refused.insert(call, s),
                None => h.refused.remove(call),
            };
        });
    }

    /// Makes reads of the request header `name` answer `status`; None to answer them again.
    pub fn refuse_read(&self, name: &str, status: Option<Status>) {
        let name = name.to_owned();
        self.with_host(move |h| {
            match status {
                Some(s) => h.refused_reads.insert(name, s),
                None => h.refused_reads.remove(&name),
            };
        });
    }

    /// Answers call `token`: `:status` plus `headers` become `HttpCallResponseHeaders`, `body`
    /// the `HttpCallResponseBody`, both readable only during the callback;
    /// `proxy_on_http_call_response(root, token, n_headers, body_len, 0)` runs on the root
    /// context (Envoy dispatches every call through it), and the SDK routes it to the context
    /// that dispatched.
    #[track_caller]
    pub fn respond(&self, token: u32, status: u16, headers: &[(&str, &str)], body: &[u8]) {
        let mut map = vec![(":status".to_string(), status.to_string().into_bytes())];
        map.extend(headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())));
        let response = CallResponse { headers: map, body: body.to_vec(), trailers: Vec::new() };
        self.step(move || deliver(token, Some(response)));
    }

    /// The call failed (connection failure or reset): as Envoy, the callback gets 0 headers,
    /// 0 body, no response map at all (looking up a header in it is BadArgument, which the SDK
    /// turns into a panic), and `get_status` says BrokenConnection (11), "reset".
    #[track_caller]
    pub fn fail_call(&self, token: u32) {
        self.step(move || deliver(token, None));
    }

    /// The call timed out: Envoy's async client answers it itself with a 504.
    #[track_caller]
    pub fn timeout_call(&self, token: u32) {
        self.respond(
            token,
            504,
            &[("content-length", "24"), ("content-type", "text/plain")],
            b"upstream request timeout",
        );
    }

    // Logs.

    /// How many times the filter has called the host function `name` (e.g.
    /// `proxy_get_header_map_value`: one per header read, so a measure of decisions made).
    pub fn host_calls(&self, name: &'static str) -> u64 {
        self.with_host(move |h| h.host_calls.get(name).copied().unwrap_or(0))
    }

    /// Every `proxy_log` line so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.with_host(|h| h.logs.clone())
    }

    /// The lines so far, forgetting them.
    pub fn take_logs(&self) -> Vec<LogLine> {
        self.with_host(|h| std::mem::take(&mut h.logs))
    }

    /// Whether any line contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        let needle = needle.to_string();
        self.with_host(move |h| h.logs.iter().any(|l| l.message.contains(&needle)))
    }

    /// What `proxy_get_log_level` answers (default Trace).
    pub fn set_log_level(&self, level: LogLevel) {
        self.with_host(move |h| h.log_level = level);
    }

    // Foreign functions, properties, queues.

    /// Registers a host function for `proxy_call_foreign_function`; unknown names are
    /// NotFound, as in Envoy.
    pub fn set_foreign_function(&self, name: &str, handler: ForeignFn) {
        let name = name.to_string();
        self.with_host(move |h| {
            h.foreign.insert(name, handler);
        });
    }

    /// A property `proxy_get_property(path)` returns (absent ones are NotFound).
    pub fn set_property(&self, path: &[&str], value: &[u8]) {
        let (path, value) = (wire::encode_path(path), value.to_vec());
        self.with_host(move |h| {
            h.properties.insert(path, value);
        });
    }

    /// `proxy_on_foreign_function(root, function_id, args.len())`, with `args` readable as
    /// `BufferType::CallData`.
    pub fn on_foreign_function(&self, function_id: u32, args: &[u8]) {
        let args = args.to_vec();
        self.step(move || {
            let root = host::with(|h| h.root_id).ok_or("on_foreign_function before configure")?;
            let size = args.len();
            host::with(|h| h.call_data = args);
            host::enter(root, "on_foreign_function", || unsafe { proxy_on_foreign_function(root, function_id, size) });
            host::with(|h| h.call_data.clear());
            Ok(())
        });
    }

    /// `proxy_on_queue_ready(root, queue_id)`. (Enqueueing does not notify by itself.)
    pub fn queue_ready(&self, queue_id: u32) {
        self.step(move || {
            let root = host::with(|h| h.root_id).ok_or("queue_ready before configure")?;
            host::enter(root, "on_queue_ready", || unsafe { proxy_on_queue_ready(root, queue_id) });
            Ok(())
        });
    }
}

fn to_pairs(headers: &[(&str, &[u8])]) -> Pairs {
    let mut map = Pairs::new();
    for (name, value) in headers {
        host::insert_header(&mut map, name.to_ascii_lowercase(), value.to_vec());
    }
    map
}

fn text_pairs(pairs: &Pairs) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect()
}

/// On the VM thread: delivers the answer to call `token` (None: it failed).
fn deliver(token: u32, response: Option<CallResponse>) -> Result<(), String> {
    let root = host::with(|h| h.root_id).ok_or("no root context")?;
    let pending = host::with(|h| h.pending.remove(&token).is_some());
    if !pending {
        let known = host::with(|h| h.pending.keys().copied().collect::<Vec<_>>());
        return Err(format!("no pending call with token {token} (pending: {known:?})"));
    }
    let (headers, body, trailers) =
        response.as_ref().map_or((0, 0, 0), |r| (r.headers.len(), r.body.len(), r.trailers.len()));
    let failed = response.is_none();
    host::with(|h| {
        h.call_response = response;
        if let (true, Some(c)) = (failed, h.contexts.get_mut(&root)) {
            c.status = (host::BROKEN_CONNECTION, "reset".to_string());
        }
    });
    host::enter(root, "on_http_call_response", || unsafe {
        proxy_on_http_call_response(root, token, headers, body, trailers)
    });
    host::with(|h| {
        h.call_response = None;
        if let Some(c) = h.contexts.get_mut(&root) {
            c.status = (0, String::new());
        }
    });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// One HTTP stream on a VM. State is read live from the VM, so it reflects what happened
/// since (a later resume, a reply sent by the root context...).
pub struct Request<'vm> {
    vm: &'vm Vm,
    id: u32,
    action: Action,
}

struct Snapshot {
    headers: Vec<(String, String)>,
    raw: Pairs,
    response_headers: Vec<(String, String)>,
    replies: Vec<LocalReply>,
    resumed: Option<Resumed>,
    reset: bool,
}

impl<'vm> Request<'vm> {
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn vm(&self) -> &'vm Vm {
        self.vm
    }

    /// What `on_request_headers` returned.
    pub fn action(&self) -> Action {
        self.action
    }

    #[track_caller]
    fn snapshot(&self) -> Snapshot {
        let id = self.id;
        self.vm.step(move || {
            host::with(|h| {
                let c = h.contexts.get(&id).ok_or(format!("request {id} has no context any more"))?;
                Ok(Snapshot {
                    headers: text_pairs(&c.request_headers),
                    raw: c.request_headers.clone(),
                    response_headers: text_pairs(&c.response_headers),
                    replies: c.local_replies.clone(),
                    resumed: c.resumed.clone(),
                    reset: c.reset,
                })
            })
        })
    }

    /// The first local reply the filter sent on this stream.
    pub fn local_reply(&self) -> Option<LocalReply> {
        self.snapshot().replies.into_iter().next()
    }

    /// Every local reply (more than one is a filter bug).
    pub fn local_replies(&self) -> Vec<LocalReply> {
        self.snapshot().replies
    }

    /// Whether and when `proxy_continue_stream(HttpRequest)` resumed it.
    pub fn resumed(&self) -> Option<Resumed> {
        self.snapshot().resumed
    }

    pub fn was_reset(&self) -> bool {
        self.snapshot().reset
    }

    pub fn outcome(&self) -> Outcome {
        let s = self.snapshot();
        if let Some(reply) = s.replies.into_iter().next() {
            Outcome::Replied(reply)
        } else if s.reset {
            Outcome::Reset
        } else if self.action == Action::Continue || s.resumed.is_some() {
            Outcome::Continued
        } else {
            Outcome::Paused
        }
    }

    pub fn is_paused(&self) -> bool {
        self.outcome() == Outcome::Paused
    }

    /// The local reply's status, or 200 once the request continued upstream. Fails the test
    /// if it is still paused or was reset.
    #[track_caller]
    pub fn status(&self) -> u32 {
        match self.outcome() {
            Outcome::Replied(reply) => reply.status,
            Outcome::Continued => 200,
            Outcome::Paused => panic!("request {} is still paused: no local reply, not resumed", self.id),
            Outcome::Reset => panic!("request {} was reset: no status", self.id),
        }
    }

    /// The request headers as they are now (after the filter ran), in order.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.snapshot().headers
    }

    /// The first value of request header `name`.
    pub fn header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.snapshot().headers.into_iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn header_bytes(&self, name: &str) -> Option<Vec<u8>> {
        let name = name.to_ascii_lowercase();
        self.snapshot().raw.into_iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Every value of request header `name`, in order.
    pub fn header_values(&self, name: &str) -> Vec<String> {
        let name = name.to_ascii_lowercase();
        self.snapshot().headers.into_iter().filter(|(k, _)| *k == name).map(|(_, v)| v).collect()
    }

    /// The upstream answered: `proxy_on_response_headers(id, n, end_of_stream = true)` with
    /// `:status` plus `headers`. Returns what the filter returned.
    #[track_caller]
    pub fn on_response(&self, status: u16, headers: &[(&str, &str)]) -> Action {
        let id = self.id;
        let mut map = vec![(":status".to_string(), status.to_string().into_bytes())];
        map.extend(headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())));
        self.vm.step(move || {
            let n = map.len();
            host::with(|h| {
                let c = h.contexts.get_mut(&id).ok_or(format!("request {id} has no context any more"))?;
                c.response_headers = map;
                c.response_open = true;
                Ok::<_, String>(())
            })?;
            let action = host::enter(id, "on_response_headers", || unsafe { proxy_on_response_headers(id, n, true) });
            if action == Action::Continue {
                host::with(|h| {
                    if let Some(c) = h.contexts.get_mut(&id) {
                        c.response_open = false;
                    }
                });
            }
            Ok(action)
        })
    }

    /// The response headers as the filter left them.
    pub fn response_headers(&self) -> Vec<(String, String)> {
        self.snapshot().response_headers
    }

    pub fn response_header(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.snapshot().response_headers.into_iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// Ends the stream as Envoy does (also when the client goes away while paused):
    /// `on_log` (final headers readable, read-only), then `on_done`, then `on_delete`.
    /// Afterwards the context id is unknown (`set_effective_context` on it is BadArgument).
    /// Returns what `on_done` returned (Envoy ignores it for streams).
    #[track_caller]
    pub fn finish(self) -> bool {
        let id = self.id;
        self.vm.step(move || {
            let logging = |on: bool| {
                host::with(|h| {
                    if let Some(c) = h.contexts.get_mut(&id) {
                        c.logging = on;
                    }
                })
            };
            if !host::with(|h| h.contexts.contains_key(&id)) {
                return Err(format!("request {id} has no context any more"));
            }
            logging(true);
            host::enter(id, "on_log", || unsafe { proxy_on_log(id) });
            logging(false);
            let done = host::enter(id, "on_done", || unsafe { proxy_on_done(id) });
            host::enter(id, "on_delete", || unsafe { proxy_on_delete(id) });
            host::with(|h| h.contexts.remove(&id));
            Ok(done)
        })
    }
}
