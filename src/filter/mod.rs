//! The proxy-wasm layer: a root context that owns the configuration and background work,
//! and short-lived HTTP contexts that only decide.

pub mod crypto;
mod http;
mod keys;
mod root;
mod state;
mod stats;

use proxy_wasm::types::LogLevel;

/// Registers the root context; called once per VM by `_initialize`.
pub fn start() {
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}
