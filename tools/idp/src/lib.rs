//! Demo identity provider and test tooling for `jwt-authn-wasm`.
//!
//! - [`SigningKey`]: RS256/384/512, PS256/384/512 (RSA 2048/3072/4096), ES256 (P-256),
//!   ES384 (P-384); committed TEST-ONLY fixed keys ([`FixedKey`], fast and deterministic) and
//!   [`SigningKey::generate`] for rotation.
//! - [`jwks`]: the public JWK set; [`mint`], [`mint_with_header`], [`sign_raw`]: tokens and
//!   signatures; [`descope_claims`] / [`DescopeClaims`]: Descope-shaped claims; [`mint_hs`],
//!   [`hmac_sha2`], [`public_key_pem`]: what the attack tests forge.
//! - [`IdpServer`]: JWKS + discovery + minting over HTTP on loopback, with rotation, fault
//!   injection and a fetch counter; [`EchoServer`]: an upstream that echoes what it received.
//! - [`http`]: the tiny HTTP/1.1 server core and a blocking client ([`http::get`]).
//!
//! Everything here is for tests and demos only.

mod echo;
mod forge;
pub mod http;
mod idp;
mod keys;
mod token;

pub use echo::{echo_body, EchoServer};
pub use forge::{hmac_sha2, mint_hs, public_key_pem};
pub use idp::{Fault, IdpConfig, IdpServer, DEFAULT_PROJECT_ID};
pub use keys::{fixed_keys_all_algs, jwks, jwks_value, Alg, FixedKey, SigningKey};
pub use token::{
    b64url, b64url_decode, decode_unverified, default_header, descope_claims, descope_issuer, mint, mint_raw_parts,
    mint_with_header, now_secs, sign_raw, tamper_payload, tamper_signature, DescopeClaims, TenantGrant,
};

#[cfg(test)]
mod tests;
