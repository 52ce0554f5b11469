//! One HTTP request: decide, apply; pause while keys are fetched.

use super::state::{send_reply, Attempt, Filter, Step};
use crate::host::HostRequest;
use crate::status::Rejection;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;
use std::rc::Rc;

pub struct Http {
    context_id: u32,
    filter: Option<Rc<Filter>>,
}

impl Http {
    pub fn new(context_id: u32, filter: Option<Rc<Filter>>) -> Http {
        Http { context_id, filter }
    }
}

impl Context for Http {
    fn on_done(&mut self) -> bool {
        if let Some(f) = &self.filter {
            f.forget(self.context_id);
        }
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(filter) = self.filter.clone() else {
            // Only reachable if Envoy created requests for a VM whose configuration failed.
            send_reply(Rejection::JwksUnavailable, &HostRequest::default());
            return Action::Pause;
        };
        match filter.process(self.context_id, Attempt::First) {
            Step::Continue => Action::Continue,
            Step::Replied => Action::Pause,
            Step::Wait(providers) => {
                filter.wait(self.context_id, &providers);
                Action::Pause
            }
        }
    }
}
