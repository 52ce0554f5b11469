//! What an attacker forges, for the attack tests: HS256/384/512 tokens keyed with any bytes
//! (RFC 8725 §2.1, the RS/ES → HS confusion, where the "secret" is the verifier's public key in
//! some encoding) and a public key as PEM, one of those encodings.

use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::token::b64url;

/// HMAC (RFC 2104) with SHA-256 for `HS256`, SHA-384 for `HS384`, SHA-512 for anything else.
pub fn hmac_sha2(alg: &str, key: &[u8], msg: &[u8]) -> Vec<u8> {
    match alg {
        "HS256" => hmac::<Sha256>(64, key, msg),
        "HS384" => hmac::<Sha384>(128, key, msg),
        _ => hmac::<Sha512>(128, key, msg),
    }
}

fn hmac<D: Digest>(block: usize, key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = if key.len() > block { D::digest(key).to_vec() } else { key.to_vec() };
    k.resize(block, 0);
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = D::new().chain_update(&ipad).chain_update(msg).finalize();
    D::new().chain_update(&opad).chain_update(inner).finalize().to_vec()
}

/// A compact token with `header` (whose `alg` picks the hash) and `claims`, MACed with `secret`.
pub fn mint_hs(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let alg = header["alg"].as_str().unwrap_or("HS256");
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    format!("{input}.{}", b64url(&hmac_sha2(alg, secret, input.as_bytes())))
}

/// A DER SubjectPublicKeyInfo as a PEM `PUBLIC KEY` block (64-character lines, final newline).
pub fn public_key_pem(der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
    format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
}
