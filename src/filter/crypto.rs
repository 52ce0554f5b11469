//! Signature verification in the host: Envoy (since 2024) offers wasm its BoringSSL through
//! the foreign function `verify_signature`, 25-40x faster than RSA/ECDSA in Rust inside V8.
//!
//! Chosen once per VM at start-up by a known-answer check (a valid and a tampered RS256 and
//! ES256 signature must come back right from the host); otherwise, and for PS* (the host
//! function has no PSS padding), the pure-Rust path verifies.

use crate::crypto::{ecdsa_signature_in_range, kat, rsa_signature_in_range, PureRust, SignatureVerifier, VerifyError};
use crate::hostsig;
use crate::jwk::{Alg, Jwk, PublicKey};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proxy_wasm::hostcalls;
use std::cell::Cell;

pub const HOST_FUNCTION: &str = "verify_signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// BoringSSL for RS* and ES*, pure Rust for PS*.
    Host,
    Pure,
}

/// The verifier of one VM, counting which path each verification took (stats
/// `verify.host` and `verify.pure`: on Envoy with a working host, RS*/ES* must all be host).
pub struct Crypto {
    pub path: Path,
    by_host: Cell<u64>,
    by_rust: Cell<u64>,
}

impl Crypto {
    /// Picks the host path if it answers the known-answer check correctly.
    pub fn detect() -> Crypto {
        let path = if host_passes_known_answers() { Path::Host } else { Path::Pure };
        Crypto { path, by_host: Cell::new(0), by_rust: Cell::new(0) }
    }

    pub fn describe(&self) -> &'static str {
        match self.path {
            Path::Host => "host BoringSSL (verify_signature) for RS*/ES*, pure Rust for PS*",
            Path::Pure => "pure Rust (the host offers no working verify_signature)",
        }
    }

    /// Verifications by the host and in Rust since the last call.
    pub fn take_counts(&self) -> (u64, u64) {
        (self.by_host.replace(0), self.by_rust.replace(0))
    }

    fn rust(&self, alg: Alg, key: &Jwk, signing_input: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        self.by_rust.set(self.by_rust.get().saturating_add(1));
        PureRust.verify(alg, key, signing_input, signature)
    }
}

impl SignatureVerifier for Crypto {
    fn verify(&self, alg: Alg, key: &Jwk, signing_input: &[u8], signature: &[u8]) -> Result<(), VerifyError> {
        match self.path {
            Path::Pure => self.rust(alg, key, signing_input, signature),
            Path::Host => match host_verify(alg, key, signing_input, signature) {
                HostAnswer::Verdict(v) => {
                    self.by_host.set(self.by_host.get().saturating_add(1));
                    v
                }
                HostAnswer::Unavailable => self.rust(alg, key, signing_input, signature),
            },
        }
    }
}

enum HostAnswer {
    Verdict(Result<(), VerifyError>),
    /// PS*, or the host call itself failed: verify in Rust instead.
    Unavailable,
}

fn host_verify(alg: Alg, key: &Jwk, signing_input: &[u8], signature: &[u8]) -> HostAnswer {
    use HostAnswer::Verdict;
    if !key.key.supports(alg) {
        return Verdict(Err(VerifyError::KeyMismatch));
    }
    // The same cheap range checks as the Rust path, so both refuse exactly the same inputs
    // before any math (r = s = 0, s >= n, wrong lengths).
    let (hash, der_signature) = match (alg, &key.key) {
        (Alg::RS256 | Alg::RS384 | Alg::RS512, PublicKey::Rsa(k)) => {
            if !rsa_signature_in_range(k, signature) {
                return Verdict(Err(VerifyError::BadSignature));
            }
            (hash_name(alg), signature.to_vec())
        }
        (Alg::ES256, PublicKey::P256(_)) | (Alg::ES384, PublicKey::P384(_)) => {
            if !ecdsa_signature_in_range(&key.key, signature) {
                return Verdict(Err(VerifyError::BadSignature));
            }
            // r ‖ s, each the field length (32 or 48 bytes).
            let half = if alg == Alg::ES256 { 32 } else { 48 };
            match hostsig::ecdsa_p1363_to_der(signature, half) {
                Some(der) => (hash_name(alg), der),
                None => return Verdict(Err(VerifyError::BadSignature)),
            }
        }
        _ => return HostAnswer::Unavailable,
    };
    let args = hostsig::verify_arguments(hash, &key.spki, &der_signature, signing_input);
    match call_host(&args) {
        Some(true) => Verdict(Ok(())),
        Some(false) => Verdict(Err(VerifyError::BadSignature)),
        None => HostAnswer::Unavailable,
    }
}

fn hash_name(alg: Alg) -> &'static str {
    match alg {
        Alg::RS384 | Alg::PS384 | Alg::ES384 => "sha384",
        Alg::RS512 | Alg::PS512 => "sha512",
        _ => "sha256",
    }
}

/// `Some(verified)`, or `None` when the host could not answer (no such function, bad
/// argument, unreadable result).
fn call_host(args: &[u8]) -> Option<bool> {
    match hostcalls::call_foreign_function(HOST_FUNCTION, Some(args)) {
        // All-default fields (result = false, no error text) serialize to nothing.
        Ok(None) => Some(false),
        Ok(Some(bytes)) => hostsig::parse_result(&bytes).map(|(verified, _)| verified),
        Err(_) => None,
    }
}

fn host_passes_known_answers() -> bool {
    let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s).unwrap_or_default();
    let rsa = PublicKey::rsa_from_components(&b64(kat::RSA_N), &b64(kat::RSA_E));
    let ec = PublicKey::p256_from_coordinates(&b64(kat::P256_X), &b64(kat::P256_Y));
    let (Ok(rsa), Ok(ec)) = (rsa, ec) else { return false };
    let cases = [
        (Alg::RS256, Jwk::new(None, None, rsa), b64(kat::SIG_RS256)),
        (Alg::ES256, Jwk::new(None, None, ec), b64(kat::SIG_ES256)),
    ];
    cases.iter().all(|(alg, key, sig)| {
        let mut tampered = sig.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        let good = host_verify(*alg, key, kat::MSG.as_bytes(), sig);
        let bad = host_verify(*alg, key, kat::MSG.as_bytes(), &tampered);
        matches!(good, HostAnswer::Verdict(Ok(()))) && matches!(bad, HostAnswer::Verdict(Err(_)))
    })
}
