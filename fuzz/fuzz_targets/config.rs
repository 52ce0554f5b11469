//! Arbitrary bytes as the plugin configuration (`config::Config::parse`): errors must be
//! reported, not panicked; a configuration that loads must then decide requests carrying a
//! valid token (the fixture token) in every location.
#![no_main]

mod common;

use common::{decide_all, Req, TOKEN};
use jwt_authn_wasm::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = match Config::parse(data) {
        Ok(c) => c,
        Err(e) => {
            std::hint::black_box(e.to_string());
            return;
        }
    };
    let token = TOKEN.trim();
    let auth = format!("Bearer {token}");
    let cookie = format!("DS={token}");
    for path in ["/", "/api", "/x", "/healthz"] {
        let req = Req::new("GET", path, &[("authorization", &auth), ("cookie", &cookie)]);
        decide_all(&config, &req, path == "/api", true);
    }
    decide_all(&config, &Req::new("POST", &format!("/api?access_token={token}"), &[]), false, false);
});
