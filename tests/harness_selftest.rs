//! Tests of the mock host itself, driven through small test-only root and HTTP contexts that
//! exercise each host function the way a filter would: through the SDK.

mod harness;

use harness::{LogLevel, MockProxy, Outcome, Vm};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType, Status};
use std::cell::{Cell, RefCell};
use std::time::{Duration, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------------
// The test plugin. Its state is per VM thread, like a wasm module's globals.

thread_local! {
    /// HTTP contexts paused until the root resumes them.
    static WAITERS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// The call the root has in flight for them.
    static ROOT_CALL: Cell<Option<u32>> = const { Cell::new(None) };
}

struct TestRoot {
    config: String,
}

impl Context for TestRoot {
    fn on_http_call_response(&mut self, token: u32, num_headers: usize, body_size: usize, _: usize) {
        ROOT_CALL.set(None);
        // Read the answer while it is current; after a failure there is no map at all, so
        // only the (empty) pair list may be asked for.
        let status = if num_headers == 0 {
            let (code, message) = self.get_grpc_status();
            assert!(self.get_http_call_response_headers().is_empty());
            format!("failed {code} {}", message.unwrap_or_default())
        } else {
            self.get_http_call_response_header(":status").unwrap()
        };
        let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
        log::info!("root got call {token}: {status}");
        for id in WAITERS.take() {
            hostcalls::set_effective_context(id).unwrap();
            hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-upstream-status", Some(&status)).unwrap();
            hostcalls::add_map_value(MapType::HttpRequestHeaders, "x-upstream-body", &String::from_utf8_lossy(&body))
                .unwrap();
            hostcalls::resume_http_request().unwrap();
            // Envoy drops its pointer to the request headers on resume.
            let left = hostcalls::get_map(MapType::HttpRequestHeaders).unwrap().len();
            log::info!("resumed {id}; {left} request headers reachable afterwards");
        }
    }
    fn on_foreign_function(&mut self, function_id: u32, arguments_size: usize) {
        let args = hostcalls::get_buffer(BufferType::CallData, 0, arguments_size).unwrap().unwrap_or_default();
        log::info!("foreign callback {function_id}: {}", String::from_utf8(args).unwrap());
    }

    fn on_done(&mut self) -> bool {
        log::info!("root on_done");
        false
    }
}

impl RootContext for TestRoot {
    fn on_queue_ready(&mut self, queue_id: u32) {
        let item = hostcalls::dequeue_shared_queue(queue_id).unwrap().unwrap_or_default();
        log::info!("queue {queue_id}: {}", String::from_utf8(item).unwrap());
        self.done();
    }

    fn on_vm_start(&mut self, _: usize) -> bool {
        let vm_config = self.get_vm_configuration().map(|b| String::from_utf8(b).unwrap());
        log::info!("vm config: {vm_config:?}");
        vm_config.as_deref() != Some("refuse")
    }

    fn on_configure(&mut self, size: usize) -> bool {
        let Some(bytes) = self.get_plugin_configuration() else {
            log::error!("no plugin configuration");
            return false;
        };
        assert_eq!(bytes.len(), size);
        self.config = String::from_utf8(bytes).unwrap();
        log::info!("configured with {}", self.config);
        if self.config.contains("tick") {
            self.set_tick_period(Duration::from_millis(250));
        }
        !self.config.contains("reject")
    }

    fn on_tick(&mut self) {
        let id = hostcalls::define_metric(MetricType::Counter, "selftest.ticks").unwrap();
        hostcalls::increment_metric(id, 1).unwrap();
        // The plugin configuration is only readable during on_configure.
        assert_eq!(self.get_plugin_configuration(), None);
        if WAITERS.with_borrow(Vec::is_empty) {
            return;
        }
        if self.config.contains("fetch") {
            if ROOT_CALL.get().is_none() {
                let headers = vec![(":method", "GET"), (":path", "/keys"), (":authority", "idp.example")];
                let token = self.dispatch_http_call("idp", headers, None, vec![], Duration::from_secs(3)).unwrap();
                ROOT_CALL.set(Some(token));
            }
            return;
        }
        for id in WAITERS.take() {
            hostcalls::set_effective_context(id).unwrap();
            hostcalls::add_map_value(MapType::HttpRequestHeaders, "x-resumed", "tick").unwrap();
            hostcalls::resume_http_request().unwrap();
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(TestHttp { id: context_id }))
    }
}

struct TestHttp {
    id: u32,
}

impl TestHttp {
    fn set(&self, name: &str, value: &str) {
        self.set_http_request_header(name, Some(value));
    }
}

impl Context for TestHttp {
    /// A call this request dispatched itself: the SDK made this context effective.
    fn on_http_call_response(&mut self, _token: u32, num_headers: usize, body_size: usize, _: usize) {
        let status = if num_headers == 0 && self.get_http_request_header("x-probe").is_none() {
            "failed".to_string()
        } else {
            // With x-probe on a failed call, this is BadArgument: the SDK panics, as in Envoy.
            self.get_http_call_response_header(":status").unwrap_or_default()
        };
        let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
        self.set("x-self-call", &status);
        self.set("x-self-body", &String::from_utf8_lossy(&body));
        self.resume_http_request();
    }

    fn on_done(&mut self) -> bool {
        log::info!("on_done {}", self.id);
        true
    }
}

impl HttpContext for TestHttp {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        assert!(end_of_stream);
        // (Bytes: the String variant panics in the SDK on a non-UTF-8 value, as on Envoy.)
        assert_eq!(self.get_http_request_headers_bytes().len(), num_headers);
        let mode = self.get_http_request_header("x-test-mode").unwrap_or_default();
        match mode.as_str() {
            "headers" => {
                let before = self.get_http_request_header("x-a").unwrap();
                self.set("x-a", &format!("{before}-replaced"));
                self.add_http_request_header("x-added", "yes");
                self.set_http_request_header("x-remove", None);
                let source = self.get_http_request_header("X-Source").unwrap();
                self.set("x-copied", &source);
                let absent = self.get_http_request_header("x-absent");
                self.set("x-absent-was-none", &absent.is_none().to_string());
                let first = self.get_http_request_header("x-dup").unwrap();
                self.set("x-dup-first", &first);
                Action::Continue
            }
            "replace-all" => {
                self.set_http_request_headers(vec![(":path", "/new"), ("X-Only", "1")]);
                Action::Continue
            }
            "reply" => {
                self.send_http_response(403, vec![("X-Reason", "nope")], Some(b"denied"));
                Action::Pause
            }
            "wait" => {
                WAITERS.with_borrow_mut(|w| w.push(self.id));
                Action::Pause
            }
            "self-call" => {
                let headers = vec![(":method", "GET"), (":path", "/jwks"), (":authority", "idp.example")];
                match self.dispatch_http_call("idp", headers, Some(b"q"), vec![], Duration::from_millis(1500)) {
                    Ok(_) => Action::Pause,
                    Err(status) => {
                        self.send_http_response(503, vec![], Some(format!("dispatch: {status:?}").as_bytes()));
                        Action::Pause
                    }
                }
            }
            "foreign" => {
                let doubled = self.call_foreign_function("double", Some(b"ab")).unwrap().unwrap();
                self.set("x-foreign", &String::from_utf8(doubled).unwrap());
                let missing = self.call_foreign_function("missing", None);
                self.set("x-missing", &format!("{missing:?}"));
                let refused = self.call_foreign_function("refuse", None);
                self.set("x-refused", &format!("{refused:?}"));
                Action::Continue
            }
            "property" => {
                let node = self.get_property(vec!["node", "id"]).unwrap();
                self.set("x-node", &String::from_utf8(node).unwrap());
                self.set("x-nope", &format!("{:?}", self.get_property(vec!["nope"])));
                self.set_property(vec!["mine"], Some(b"v"));
                self.set("x-mine", &String::from_utf8(self.get_property(vec!["mine"]).unwrap()).unwrap());
                Action::Continue
            }
            "metric" => {
                let id = hostcalls::define_metric(MetricType::Counter, "selftest.requests").unwrap();
                hostcalls::increment_metric(id, 1).unwrap();
                self.set("x-metric-id", &id.to_string());
                Action::Continue
            }
            "time" => {
                let now = self.get_current_time().duration_since(UNIX_EPOCH).unwrap();
                self.set("x-now-ms", &now.as_millis().to_string());
                Action::Continue
            }
            "log" => {
                log::warn!("request {} says hello", self.id);
                log::trace!("trace line");
                Action::Continue
            }
            "panic" => panic!("boom from filter"),
            _ => Action::Continue,
        }
    }

    fn on_log(&mut self) {
        // Access-log phase: the final request headers are readable.
        log::info!("on_log {} path={:?}", self.id, self.get_http_request_header(":path"));
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap();
        self.set_http_response_header("x-filtered", Some(&status));
        Action::Continue
    }
}

fn init() {
    proxy_wasm::set_root_context(|_| Box::new(TestRoot { config: String::new() }));
}

/// A VM running the test plugin, configured with `config`.
fn vm_with(proxy: &MockProxy, config: &str) -> Vm {
    let vm = proxy.vm();
    vm.start(init);
    assert!(vm.configure(config), "configure({config}) refused");
    vm
}

// ---------------------------------------------------------------------------------------------
// Configuration.

#[test]
fn configuration_buffers_reach_the_root_context() {
    let proxy = MockProxy::new();
    let vm = proxy.vm();
    vm.start(init);
    vm.set_vm_configuration(b"vm-settings");
    assert!(vm.configure(r#"{"greeting":"hi"}"#));
    assert!(vm.logged(r#"configured with {"greeting":"hi"}"#));
    assert!(vm.logged(r#"vm config: Some("vm-settings")"#));
    // Outside on_configure the plugin configuration is gone, the VM configuration is not.
    let (plugin, vm_config) = vm.run(|| {
        (
            hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX).unwrap(),
            hostcalls::get_buffer(BufferType::VmConfiguration, 3, 5).unwrap(),
        )
    });
    assert_eq!(plugin, None);
    assert_eq!(vm_config.as_deref(), Some(&b"setti"[..]));
    // Reconfiguring runs on_configure again on the same root context.
    let root = vm.root_id();
    assert!(!vm.configure("reject"));
    assert_eq!(vm.root_id(), root);
}

#[test]
fn refused_vm_start_fails_configuration() {
    let proxy = MockProxy::new();
    let vm = proxy.vm();
    vm.start(init);
    vm.set_vm_configuration(b"refuse");
    assert!(!vm.configure("{}"));
    assert!(!vm.logged("configured with"));
}

// ---------------------------------------------------------------------------------------------
// Headers.

#[test]
fn header_get_replace_add_remove() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let req = vm.request(&[
        ("x-test-mode", "headers"),
        ("X-A", "1"),
        ("x-remove", "r"),
        ("x-source", "s"),
        ("x-dup", "first"),
        ("x-dup", "second"),
        (":path", "/p"),
    ]);
    assert_eq!(req.action(), Action::Continue);
    assert_eq!(req.status(), 200);
    assert_eq!(req.header("x-a").as_deref(), Some("1-replaced"));
    assert_eq!(req.header("x-added").as_deref(), Some("yes"));
    assert_eq!(req.header("x-remove"), None);
    assert_eq!(req.header("x-copied").as_deref(), Some("s"));
    assert_eq!(req.header("x-absent-was-none").as_deref(), Some("true"));
    assert_eq!(req.header("x-dup-first").as_deref(), Some("first"));
    assert_eq!(req.header_values("x-dup"), ["first", "second"]);
    // Pseudo-headers first (defaults added), then the rest in order; a replaced header moves
    // to the end, as Envoy's setCopy (remove, then add) does.
    let names: Vec<String> = req.headers().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        names,
        [
            ":path",
            ":method",
            ":scheme",
            ":authority",
            "x-test-mode",
            "x-source",
            "x-dup",
            "x-dup",
            "x-a",
            "x-added",
            "x-copied",
            "x-absent-was-none",
            "x-dup-first"
        ]
    );
    // on_log may still read the final headers.
    assert!(req.finish());
    assert!(vm.logged(r#"path=Some("/p")"#));
}

#[test]
fn header_map_replaced_wholesale() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let req = vm.request(&[("x-test-mode", "replace-all"), ("x-gone", "1")]);
    assert_eq!(req.headers(), [(":path".to_string(), "/new".to_string()), ("x-only".to_string(), "1".to_string())]);
}

#[test]
fn request_headers_unreachable_once_continued() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let req = vm.request(&[]);
    assert_eq!(req.action(), Action::Continue);
    // Envoy: getHeaderMapPairs on an absent map is empty (a value lookup is BadArgument,
    // which the SDK turns into a panic: see below).
    let id = req.id();
    let pairs = vm.run(move || {
        hostcalls::set_effective_context(id).unwrap();
        hostcalls::get_map(MapType::HttpRequestHeaders).unwrap()
    });
    assert!(pairs.is_empty());
}

#[test]
#[should_panic(expected = "unexpected status: 2")]
fn request_header_lookup_once_continued_panics_like_in_envoy() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let id = vm.request(&[]).id();
    let _ = vm.run(move || {
        hostcalls::set_effective_context(id).unwrap();
        hostcalls::get_map_value(MapType::HttpRequestHeaders, ":path")
    });
}

#[test]
fn response_headers() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let req = vm.request(&[]);
    assert_eq!(req.on_response(201, &[("Content-Type", "text/plain")]), Action::Continue);
    assert_eq!(req.response_header("x-filtered").as_deref(), Some("201"));
    assert_eq!(req.response_header("content-type").as_deref(), Some("text/plain"));
}

// ---------------------------------------------------------------------------------------------
// Local replies, pausing, resuming.

#[test]
fn local_reply_is_captured() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let req = vm.request(&[("x-test-mode", "reply")]);
    assert_eq!(req.action(), Action::Pause);
    let reply = req.local_reply().unwrap();
    assert_eq!((reply.status, reply.body_text().as_str()), (403, "denied"));
    assert_eq!(reply.header("x-reason"), Some("nope"));
    assert_eq!(reply.grpc_status, -1);
    assert_eq!(req.status(), 403);
    assert!(matches!(req.outcome(), Outcome::Replied(_)));
    assert_eq!(req.resumed(), None);
}

#[test]
fn paused_requests_resumed_by_the_root_on_tick() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, r#"{"tick": true}"#);
    assert_eq!(vm.tick_period(), Some(Duration::from_millis(250)));
    let first = vm.request(&[("x-test-mode", "wait")]);
    let other = vm.request(&[]);
    let second = vm.request(&[("x-test-mode", "wait")]);
    assert!(first.is_paused() && second.is_paused());
    assert_eq!(other.status(), 200);
    assert_eq!(vm.live_requests(), [first.id(), other.id(), second.id()]);
    other.finish();

    proxy.advance(Duration::from_secs(1));
    vm.tick();
    let root = vm.root_id().unwrap();
    for req in [&first, &second] {
        assert_eq!(req.status(), 200);
        assert_eq!(req.header("x-resumed").as_deref(), Some("tick"));
        let resumed = req.resumed().unwrap();
        assert_eq!((resumed.during, resumed.by_context), ("on_tick", root));
        assert_eq!(resumed.at, proxy.now());
    }
    assert_eq!(proxy.metric("selftest.ticks"), Some(1));
    assert_eq!(vm.advance_ticking(Duration::from_millis(600)), 2);
    assert_eq!(proxy.metric("selftest.ticks"), Some(3));
}

#[test]
#[should_panic(expected = "Envoy would never call on_tick")]
fn tick_without_a_period_is_refused() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    vm.tick();
}

#[test]
fn root_resumes_requests_after_its_http_call_returns() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, r#"{"tick": true, "fetch": true}"#);
    let a = vm.request(&[("x-test-mode", "wait")]);
    let b = vm.request(&[("x-test-mode", "wait")]);
    vm.tick();
    let calls = vm.pending_calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(
        (call.cluster.as_str(), call.method(), call.path(), call.authority()),
        ("idp", "GET", "/keys", "idp.example")
    );
    assert_eq!(call.timeout, Duration::from_secs(3));
    assert_eq!(call.context_id, vm.root_id().unwrap());
    assert!(a.is_paused() && b.is_paused());

    vm.respond(call.token, 200, &[("content-type", "application/json")], br#"{"keys":[]}"#);
    assert!(vm.pending_calls().is_empty());
    for req in [&a, &b] {
        assert_eq!(req.status(), 200);
        assert_eq!(req.header("x-upstream-status").as_deref(), Some("200"));
        assert_eq!(req.header("x-upstream-body").as_deref(), Some(r#"{"keys":[]}"#));
        assert_eq!(req.resumed().unwrap().during, "on_http_call_response");
    }
    assert!(vm.logged("root got call"));
    assert!(vm.logged("0 request headers reachable afterwards"));
}

#[test]
fn failed_root_call_has_no_response_map() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, r#"{"tick": true, "fetch": true}"#);
    let req = vm.request(&[("x-test-mode", "wait")]);
    vm.tick();
    let token = vm.pending_calls()[0].token;
    vm.fail_call(token);
    assert_eq!(req.header("x-upstream-status").as_deref(), Some("failed 11 reset"));
    assert_eq!(req.header("x-upstream-body").as_deref(), Some(""));
}

#[test]
fn request_dispatching_its_own_call_gets_the_answer() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let req = vm.request(&[("x-test-mode", "self-call")]);
    assert!(req.is_paused());
    let call = vm.pending_calls().pop().unwrap();
    assert_eq!(
        (call.context_id, call.body.as_slice(), call.timeout),
        (req.id(), &b"q"[..], Duration::from_millis(1500))
    );
    vm.respond(call.token, 404, &[], b"nope");
    assert_eq!(req.header("x-self-call").as_deref(), Some("404"));
    assert_eq!(req.header("x-self-body").as_deref(), Some("nope"));
    assert_eq!(req.resumed().unwrap().by_context, vm.root_id().unwrap());

    let timed_out = vm.request(&[("x-test-mode", "self-call")]);
    vm.timeout_call(vm.pending_calls()[0].token);
    assert_eq!(timed_out.header("x-self-call").as_deref(), Some("504"));
    assert_eq!(timed_out.header("x-self-body").as_deref(), Some("upstream request timeout"));

    let failed = vm.request(&[("x-test-mode", "self-call")]);
    vm.fail_call(vm.pending_calls()[0].token);
    assert_eq!(failed.header("x-self-call").as_deref(), Some("failed"));
}

#[test]
#[should_panic(expected = "unexpected status: 2")]
fn header_lookup_on_a_failed_call_panics_like_in_envoy() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let _req = vm.request(&[("x-test-mode", "self-call"), ("x-probe", "1")]);
    vm.fail_call(vm.pending_calls()[0].token);
}

#[test]
fn dispatch_failures() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    vm.fail_dispatch(Some(Status::InternalFailure));
    let req = vm.request(&[("x-test-mode", "self-call")]);
    assert_eq!(req.local_reply().unwrap().body_text(), "dispatch: InternalFailure");
    vm.fail_dispatch(None);

    proxy.set_clusters(&["other"]);
    let req = vm.request(&[("x-test-mode", "self-call")]);
    assert_eq!(req.status(), 503);
    assert_eq!(req.local_reply().unwrap().body_text(), "dispatch: BadArgument");
    proxy.allow_all_clusters();

    // Envoy requires :method, :path and :authority.
    let status = vm.run(|| {
        hostcalls::dispatch_http_call("idp", vec![(":path", "/")], None, vec![], Duration::from_secs(1)).unwrap_err()
    });
    assert_eq!(status, Status::BadArgument);
    assert!(vm.pending_calls().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Contexts.

#[test]
fn finish_runs_log_done_delete_and_forgets_the_context() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let req = vm.request(&[("x-test-mode", "wait")]);
    let id = req.id();
    assert!(req.finish());
    let lines: Vec<String> = vm.logs().into_iter().map(|l| l.message).filter(|m| m.starts_with("on_")).collect();
    assert_eq!(lines, [format!(r#"on_log {id} path=Some("/")"#), format!("on_done {id}")]);
    assert!(vm.live_requests().is_empty());
    let after = vm.run(move || (hostcalls::set_effective_context(id), hostcalls::set_effective_context(9999)));
    assert_eq!(after, (Err(Status::BadArgument), Err(Status::BadArgument)));
}

// ---------------------------------------------------------------------------------------------
// Shared state between VMs.

#[test]
fn shared_data_cas_between_two_vms() {
    let proxy = MockProxy::new();
    let (a, b) = (vm_with(&proxy, "{}"), vm_with(&proxy, "{}"));
    assert_eq!(a.run(|| hostcalls::get_shared_data("k").unwrap()), (None, None));
    a.run(|| hostcalls::set_shared_data("k", Some(b"v1"), None).unwrap());

    let (value, cas_a) = a.run(|| hostcalls::get_shared_data("k").unwrap());
    let (_, cas_b) = b.run(|| hostcalls::get_shared_data("k").unwrap());
    assert_eq!((value.as_deref(), cas_a), (Some(&b"v1"[..]), cas_b));
    a.run(move || hostcalls::set_shared_data("k", Some(b"from a"), cas_a).unwrap());
    let lost = b.run(move || hostcalls::set_shared_data("k", Some(b"from b"), cas_b));
    assert_eq!(lost, Err(Status::CasMismatch));
    let (value, cas) = b.run(|| hostcalls::get_shared_data("k").unwrap());
    assert_eq!(value.as_deref(), Some(&b"from a"[..]));
    assert_ne!(cas, cas_a);
    b.run(move || hostcalls::set_shared_data("k", Some(b"from b"), cas).unwrap());
    assert_eq!(proxy.shared_data_text("k").as_deref(), Some("from b"));
    // An empty value reads back as no bytes, with a cas (Envoy copies out nothing).
    a.run(|| hostcalls::set_shared_data("empty", None, None).unwrap());
    assert!(matches!(a.run(|| hostcalls::get_shared_data("empty").unwrap()), (None, Some(_))));
}

#[test]
fn shared_data_cas_increments_race_safely_across_threads() {
    const ROUNDS: u32 = 200;
    let proxy = MockProxy::new();
    let vms = [vm_with(&proxy, "{}"), vm_with(&proxy, "{}")];
    // Created first: as in Envoy, a write without a cas (the key absent) is unconditional, so
    // two VMs creating the key at once may both succeed. Increments then all go through CAS.
    vms[0].run(|| hostcalls::set_shared_data("counter", Some(b"0"), None).unwrap());
    std::thread::scope(|s| {
        for vm in &vms {
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    vm.run(|| loop {
                        let (value, cas) = hostcalls::get_shared_data("counter").unwrap();
                        let n: u32 = value.map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap());
                        match hostcalls::set_shared_data("counter", Some((n + 1).to_string().as_bytes()), cas) {
                            Ok(()) => break,
                            Err(Status::CasMismatch) => continue,
                            Err(e) => panic!("{e:?}"),
                        }
                    });
                }
            });
        }
    });
    assert_eq!(proxy.shared_data_text("counter"), Some((2 * ROUNDS).to_string()));
}

#[test]
fn metrics_are_shared_between_vms() {
    let proxy = MockProxy::new();
    let (a, b) = (vm_with(&proxy, "{}"), vm_with(&proxy, "{}"));
    let id_a = a.request(&[("x-test-mode", "metric")]).header("x-metric-id");
    let id_b = b.request(&[("x-test-mode", "metric")]).header("x-metric-id");
    b.request(&[("x-test-mode", "metric")]);
    assert_eq!(id_a, id_b);
    assert_eq!(proxy.metric("selftest.requests"), Some(3));
    assert_eq!(proxy.metric("undefined"), None);

    // Envoy's rules per kind.
    let (counter_down, gauge, histogram, unknown) = a.run(|| {
        let c = hostcalls::define_metric(MetricType::Counter, "c").unwrap();
        let g = hostcalls::define_metric(MetricType::Gauge, "g").unwrap();
        let h = hostcalls::define_metric(MetricType::Histogram, "h").unwrap();
        hostcalls::record_metric(g, 10).unwrap();
        hostcalls::increment_metric(g, -3).unwrap();
        hostcalls::record_metric(h, 5).unwrap();
        hostcalls::record_metric(h, 7).unwrap();
        (
            hostcalls::increment_metric(c, -1),
            hostcalls::get_metric(g),
            hostcalls::get_metric(h),
            hostcalls::get_metric(0xfff0),
        )
    });
    assert_eq!(counter_down, Err(Status::BadArgument));
    assert_eq!(gauge, Ok(7));
    assert_eq!(histogram, Err(Status::BadArgument));
    assert_eq!(unknown, Err(Status::NotFound));
    assert_eq!(proxy.metric("g"), Some(7));
    assert_eq!(proxy.histogram("h"), Some(vec![5, 7]));
}

#[test]
fn clock_is_the_proxys_and_advances_on_demand() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let start: u128 = vm.request(&[("x-test-mode", "time")]).header("x-now-ms").unwrap().parse().unwrap();
    assert_eq!(start, proxy.now().duration_since(UNIX_EPOCH).unwrap().as_millis());
    proxy.advance(Duration::from_secs(90));
    let later: u128 = vm.request(&[("x-test-mode", "time")]).header("x-now-ms").unwrap().parse().unwrap();
    assert_eq!(later - start, 90_000);
    proxy.set_now(UNIX_EPOCH + Duration::from_secs(42));
    assert_eq!(vm.run(hostcalls::get_current_time).unwrap(), UNIX_EPOCH + Duration::from_secs(42));
}

#[test]
fn shared_queues() {
    let proxy = MockProxy::new();
    let (a, b) = (vm_with(&proxy, "{}"), vm_with(&proxy, "{}"));
    let id = a.run(|| hostcalls::register_shared_queue("q").unwrap());
    let resolved = b.run(|| hostcalls::resolve_shared_queue("", "q").unwrap());
    assert_eq!(resolved, Some(id));
    assert_eq!(b.run(|| hostcalls::resolve_shared_queue("", "other").unwrap()), None);
    b.run(move || hostcalls::enqueue_shared_queue(id, Some(b"m1")).unwrap());
    assert_eq!(a.run(move || hostcalls::dequeue_shared_queue(id).unwrap()), Some(b"m1".to_vec()));
    assert_eq!(a.run(move || hostcalls::dequeue_shared_queue(id).unwrap()), None);
    assert_eq!(a.run(|| hostcalls::dequeue_shared_queue(999)), Err(Status::NotFound));
}

// ---------------------------------------------------------------------------------------------
// Foreign functions, properties, logs, panics.

#[test]
fn foreign_functions() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    vm.set_foreign_function("double", |args| Ok([args, args].concat()));
    vm.set_foreign_function("refuse", |_| Err(Status::SerializationFailure));
    let req = vm.request(&[("x-test-mode", "foreign")]);
    assert_eq!(req.header("x-foreign").as_deref(), Some("abab"));
    assert_eq!(req.header("x-missing").as_deref(), Some("Err(NotFound)"));
    assert_eq!(req.header("x-refused").as_deref(), Some("Err(SerializationFailure)"));
}

#[test]
fn properties() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    vm.set_property(&["node", "id"], b"sidecar~10.0.0.1");
    let req = vm.request(&[("x-test-mode", "property")]);
    assert_eq!(req.header("x-node").as_deref(), Some("sidecar~10.0.0.1"));
    assert_eq!(req.header("x-nope").as_deref(), Some("None"));
    assert_eq!(req.header("x-mine").as_deref(), Some("v"));
}

#[test]
fn logs_are_captured_with_levels() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let req = vm.request(&[("x-test-mode", "log")]);
    let logs = vm.logs();
    let hello = logs.iter().find(|l| l.message.contains("says hello")).unwrap();
    assert_eq!((hello.level, hello.context_id), (LogLevel::Warn, req.id()));
    assert!(logs.iter().any(|l| l.level == LogLevel::Info && l.message.starts_with("configured with")));
    assert!(logs.iter().any(|l| l.level == LogLevel::Trace && l.message == "trace line"));
    assert_eq!(vm.run(hostcalls::get_log_level).unwrap(), LogLevel::Trace);
    vm.set_log_level(LogLevel::Warn);
    assert_eq!(vm.run(hostcalls::get_log_level).unwrap(), LogLevel::Warn);
    assert!(!vm.take_logs().is_empty());
    assert!(vm.logs().is_empty());
}

#[test]
#[should_panic(expected = "boom from filter")]
fn filter_panic_fails_the_test_with_its_message() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    vm.request(&[("x-test-mode", "panic")]);
}

#[test]
fn filter_panic_kills_only_its_vm() {
    let proxy = MockProxy::new();
    let (dead, alive) = (vm_with(&proxy, "{}"), vm_with(&proxy, "{}"));
    let crash = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        dead.request(&[("x-test-mode", "panic")]);
    }));
    let message = *crash.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("boom from filter"), "{message}");
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dead.logs()));
    assert!(again.unwrap_err().downcast::<String>().unwrap().contains("dead since an earlier call"));
    assert_eq!(alive.request(&[]).status(), 200);
}

#[test]
fn root_callbacks_foreign_queue_and_shutdown() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    vm.on_foreign_function(7, b"payload");
    assert!(vm.logged("foreign callback 7: payload"));
    let id = vm.run(|| {
        let id = hostcalls::register_shared_queue("jobs").unwrap();
        hostcalls::enqueue_shared_queue(id, Some(b"job-1")).unwrap();
        id
    });
    vm.queue_ready(id);
    assert!(vm.logged(&format!("queue {id}: job-1")));
    assert_eq!(vm.done_calls(), 1);
    assert!(!vm.stop());
    assert!(vm.logged("root on_done"));
    assert_eq!(vm.root_id(), None);
}

#[test]
fn raw_request_headers() {
    let proxy = MockProxy::new();
    let vm = vm_with(&proxy, "{}");
    let req = vm.request_bytes(&[("x-bin", b"\xff\x00a")]);
    assert_eq!(req.header_bytes("x-bin"), Some(b"\xff\x00a".to_vec()));
    assert_eq!(req.header("x-bin").as_deref(), Some("\u{fffd}\u{0}a"));
    let exact = vm.request_exact(&[("x-only", b"1")]);
    assert_eq!(exact.headers(), [("x-only".to_string(), "1".to_string())]);
}

/// Envoy refuses host calls (but logging) during `_initialize`: the harness does too, so a
/// filter that reads the clock or the log level there fails here, not only in Envoy.
#[test]
fn host_calls_during_initialize_fail_the_vm() {
    let vm = MockProxy::new().vm();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        vm.start(|| {
            let _ = proxy_wasm::hostcalls::get_log_level();
        })
    }));
    assert!(result.is_err(), "a host call during _initialize must fail");
}
