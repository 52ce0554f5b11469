//! The proxy-wasm layer: a root context that owns the configuration and background work,
//! and short-lived HTTP contexts that only decide.

pub mod crypto;
mod http;
mod keys;
mod root;
mod state;
mod stats;

use proxy_wasm::types::LogLevel;

/// Registers the root context; called once per VM by `_initialize`, where Envoy refuses every
/// host call (`restricted_callback`): the host's log level is read at configuration.
pub fn start() {
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}

/// Logs below the host's level are dropped before they are formatted: a debug line per denial
/// would otherwise cost a host call on every rejected request. Read on each (re)configuration,
/// since the ABI has no notice of level changes.
pub fn follow_host_log_level() {
    proxy_wasm::set_log_level(proxy_wasm::hostcalls::get_log_level().unwrap_or(LogLevel::Info));
}
