//! JWT authentication for Envoy and Istio, as a proxy-wasm HTTP filter.
//!
//! The crate is split in two:
//! - a pure core that never calls the host, unit-tested natively: [`config`] (parse and
//!   validate once), [`extract`] (find the token), [`jws`] (parse it), [`jwk`] and
//!   [`crypto`] (keys and signatures, with [`rsa`] and [`ecdsa`], our RSA and ECDSA verification, on [`montgomery`] arithmetic), [`claims`], [`rules`] (which requirement applies),
//!   [`decision`] (the authenticator and the reply), [`authz`] (roles, permissions, tenants), [`identity`] (claims to headers),
//!   [`status`] (every rejection reason), [`jwks_cache`] (remote keys shared by workers), [`token_cache`] (verified tokens);
//! - the proxy-wasm layer in [`filter`], which reads headers, calls the core and applies its
//!   decision.
//!
//! No code on the request path may panic: a panic inside wasm kills the VM and fails every
//! later request on that worker. Clippy enforces it outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects
    )
)]

// The pure core.
pub mod authz;
pub mod claims;
pub mod config;
pub mod crypto;
pub mod decision;
pub mod ecdsa;
pub mod extract;
pub mod hostsig;
pub mod identity;
pub mod json;
pub mod jwk;
pub mod jwks_cache;
pub mod jws;
pub mod montgomery;
pub mod rsa;
pub mod rules;
pub mod status;
pub mod token_cache;

// The proxy-wasm layer.
pub mod filter;
mod host;

proxy_wasm::main! {{
    filter::start();
}}
