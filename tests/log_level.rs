//! The filter follows the host's log level, so lines below it are never formatted or sent.
//! Its own binary: natively the `log` crate's level is process-wide (in wasm it is per VM),
//! and other tests' VMs run at Trace.

mod common;
mod harness;

use common::*;
use harness::{LogLevel, MockProxy};

#[test]
fn debug_lines_are_not_produced_when_the_host_logs_at_info() {
    let proxy = MockProxy::new();
    let vm = proxy.vm();
    vm.set_log_level(LogLevel::Info);
    vm.start(|| jwt_authn_wasm::_initialize());
    assert!(vm.configure(&config_with(local_provider(&[&rs256()])).to_string()));
    assert_eq!(vm.request(&headers(&get("/api"))).status(), 401);
    assert!(!vm.logged("denied"), "a debug line crossed to the host: {:?}", vm.logs());
    assert!(vm.logs().iter().all(|l| (l.level as u32) >= (LogLevel::Info as u32)));
}
