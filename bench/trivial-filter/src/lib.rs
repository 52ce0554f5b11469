//! The benchmark's floor: the least a proxy-wasm HTTP filter can do on a request. It reads one
//! request header (`authorization`) and adds one (`x-bench-trivial`, the header's length).
//!
//! With a configuration mentioning `noop` (`{"noop": true}`) it does nothing at all on a request (no header calls): the
//! difference between the two shows what the two host calls cost, and `noop` against no filter
//! what a wasm filter costs just by being there (an HTTP context per request, the V8 calls).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(Root { noop: false }));
}}

struct Root {
    noop: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        // `{"noop": true}` (any configuration mentioning noop) switches the header calls off.
        self.noop = config.windows(4).any(|w| w == b"noop");
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Trivial { noop: self.noop }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Trivial {
    noop: bool,
}

impl Context for Trivial {}

impl HttpContext for Trivial {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if !self.noop {
            let len = self.get_http_request_header("authorization").map_or(0, |v| v.len());
            self.add_http_request_header("x-bench-trivial", &len.to_string());
        }
        Action::Continue
    }
}
