//! The root context: parses the configuration once, owns the per-VM state and drives the
//! background work (JWKS refresh and the stats flush, on ticks).

use super::http::Http;
use super::state::Filter;
use super::state::TICK;
use crate::config::Config;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;
use std::rc::Rc;

pub struct Root {
    context_id: u32,
    filter: Option<Rc<Filter>>,
}

impl Root {
    pub fn new(context_id: u32) -> Root {
        Root { context_id, filter: None }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, num_headers: usize, body_size: usize, _num_trailers: usize) {
        if let Some(f) = &self.filter {
            f.on_http_call_response(token_id, num_headers, body_size);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        super::follow_host_log_level();
        let Some(bytes) = self.get_plugin_configuration() else {
            log::error!("jwt_authn_wasm: invalid configuration: the plugin configuration is empty");
            return false;
        };
        let config = match Config::parse(&bytes) {
            Ok(c) => c,
            Err(e) => {
                // One line naming the field and the reason; the plugin then refuses to start.
                log::error!("jwt_authn_wasm: {e}");
                return false;
            }
        };
        for p in &config.providers {
            let of_p = config.skipped_keys.iter().filter(|(name, _)| *name == p.name).map(|(_, s)| s);
            super::keys::log_skipped(&p.name, of_p);
        }
        log::info!(
            "jwt_authn_wasm: configured {} provider(s), {} rule(s) (context {})",
            config.providers.len(),
            config.rules.len(),
            self.context_id
        );
        for warning in config.warnings() {
            log::warn!("jwt_authn_wasm: {warning}");
        }
        // Ticks drive JWKS refreshes and the stats flush, so every VM has them.
        self.set_tick_period(TICK);
        self.filter = Some(Rc::new(Filter::new(config)));
        true
    }

    fn on_tick(&mut self) {
        if let Some(f) = &self.filter {
            f.on_tick();
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(context_id, self.filter.clone())))
    }
}
