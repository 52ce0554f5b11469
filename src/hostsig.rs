//! Encodings for Envoy's `verify_signature` foreign function (BoringSSL on the host side):
//! public keys as DER SubjectPublicKeyInfo, ECDSA signatures as DER, and the protobuf
//! messages `VerifySignatureArguments` / `VerifySignatureResult`
//! (`source/extensions/common/wasm/ext/verify_signature.proto`).
//!
//! Pure byte work, no host calls: the filter layer makes the call.

/// DER length octets.
fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len().saturating_add(6));
    out.push(tag);
    der_len(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

/// A non-negative INTEGER from big-endian magnitude bytes.
fn der_uint(magnitude: &[u8]) -> Vec<u8> {
    let skip = magnitude.iter().take_while(|b| **b == 0).count();
    let trimmed = magnitude.get(skip..).unwrap_or_default();
    let mut body = Vec::with_capacity(trimmed.len().saturating_add(1));
    if trimmed.first().map_or(true, |b| b & 0x80 != 0) {
        body.push(0);
    }
    body.extend_from_slice(trimmed);
    tlv(0x02, &body)
}

fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn bit_string(content: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(content.len().saturating_add(1));
    body.push(0); // no unused bits
    body.extend_from_slice(content);
    tlv(0x03, &body)
}

const OID_RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
const DER_NULL: &[u8] = &[0x05, 0x00];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

/// SubjectPublicKeyInfo of an RSA key from its modulus and exponent (big-endian).
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let rsa_public_key = sequence(&[&der_uint(n), &der_uint(e)]);
    sequence(&[&sequence(&[OID_RSA_ENCRYPTION, DER_NULL]), &bit_string(&rsa_public_key)])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

/// SubjectPublicKeyInfo of an EC key from its uncompressed point (`04 || x || y`).
pub fn ec_spki(curve: Curve, uncompressed_point: &[u8]) -> Vec<u8> {
    let oid = match curve {
        Curve::P256 => OID_P256,
        Curve::P384 => OID_P384,
    };
    sequence(&[&sequence(&[OID_EC_PUBLIC_KEY, oid]), &bit_string(uncompressed_point)])
}

/// A JWS ECDSA signature (`r || s`, RFC 7518 §3.4) as the DER `ECDSA-Sig-Value` BoringSSL
/// verifies. `None` unless it is exactly two halves of `scalar_len` bytes.
pub fn ecdsa_p1363_to_der(sig: &[u8], scalar_len: usize) -> Option<Vec<u8>> {
    if sig.len() != scalar_len.checked_mul(2)? {
        return None;
    }
    let (r, s) = sig.split_at(scalar_len);
    Some(sequence(&[&der_uint(r), &der_uint(s)]))
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_bytes(number: u64, value: &[u8], out: &mut Vec<u8>) {
    varint((number << 3) | 2, out);
    varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// `VerifySignatureArguments { hash_function = 1; public_key = 2 (DER); signature = 3; text = 4 }`.
pub fn verify_arguments(hash_function: &str, public_key_der: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let capacity = public_key_der.len().saturating_add(signature.len()).saturating_add(text.len()).saturating_add(32);
    let mut out = Vec::with_capacity(capacity);
    field_bytes(1, hash_function.as_bytes(), &mut out);
    field_bytes(2, public_key_der, &mut out);
    field_bytes(3, signature, &mut out);
    field_bytes(4, text, &mut out);
    out
}

/// Reads `VerifySignatureResult { bool result = 1; string error = 2; }`. Anything it cannot
/// read is `None`: the caller treats the host as unable to answer and verifies in Rust.
pub fn parse_result(bytes: &[u8]) -> Option<(bool, String)> {
    let mut result = false;
    let mut error = String::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (key, after) = read_varint(rest)?;
        rest = after;
        match (key >> 3, key & 7) {
            (1, 0) => {
                let (v, after) = read_varint(rest)?;
                result = v != 0;
                rest = after;
            }
            (field, 2) => {
                let (len, after) = read_varint(rest)?;
                let len = usize::try_from(len).ok()?;
                let value = after.get(..len)?;
                if field == 2 {
                    error = String::from_utf8_lossy(value).into_owned();
                }
                rest = after.get(len..)?;
            }
            (_, 0) => rest = read_varint(rest)?.1,
            _ => return None,
        }
    }
    Some((result, error))
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v: u64 = 0;
    for (i, b) in bytes.iter().enumerate().take(10) {
        let shift = u32::try_from(i).ok()?.checked_mul(7)?;
        v |= u64::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some((v, bytes.get(i.checked_add(1)?..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_integers_are_minimal_and_positive() {
        assert_eq!(der_uint(&[0x00, 0x00, 0x01]), vec![0x02, 0x01, 0x01]);
        assert_eq!(der_uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_uint(&[]), vec![0x02, 0x01, 0x00]);
        assert_eq!(der_uint(&[0, 0]), vec![0x02, 0x01, 0x00]);
    }

    #[test]
    fn long_lengths() {
        let body = vec![0u8; 300];
        let t = tlv(0x04, &body);
        assert_eq!(&t[..4], &[0x04, 0x82, 0x01, 0x2C]);
        assert_eq!(t.len(), 304);
    }

    #[test]
    fn rsa_spki_matches_openssl_layout() {
        // 2048-bit modulus with the top bit set gets a leading zero: the well-known
        // "30 82 01 22 30 0d 06 09 2a 86 48 86 f7 0d 01 01 01 05 00 03 82 01 0f 00 30 82 01 0a 02 82 01 01 00" prefix.
        let n = vec![0xC1; 256];
        let spki = rsa_spki(&n, &[0x01, 0x00, 0x01]);
        let prefix = [
            0x30, 0x82, 0x01, 0x22, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05,
            0x00, 0x03, 0x82, 0x01, 0x0f, 0x00, 0x30, 0x82, 0x01, 0x0a, 0x02, 0x82, 0x01, 0x01, 0x00,
        ];
        assert_eq!(&spki[..prefix.len()], &prefix);
        assert_eq!(&spki[spki.len() - 5..], &[0x02, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(spki.len(), 294);
    }

    #[test]
    fn ec_spki_layout() {
        let mut point = vec![0x04];
        point.extend_from_slice(&[0x11; 64]);
        let spki = ec_spki(Curve::P256, &point);
        assert_eq!(spki.len(), 91, "P-256 SPKI is always 91 bytes");
        assert_eq!(&spki[..2], &[0x30, 0x59]);
        let mut point = vec![0x04];
        point.extend_from_slice(&[0x11; 96]);
        assert_eq!(ec_spki(Curve::P384, &point).len(), 120, "P-384 SPKI is always 120 bytes");
    }

    #[test]
    fn ecdsa_signature_conversion() {
        let mut sig = vec![0u8; 64];
        sig[31] = 1;
        sig[32] = 0x80;
        let der = ecdsa_p1363_to_der(&sig, 32).unwrap();
        assert_eq!(&der[..5], &[0x30, 0x26, 0x02, 0x01, 0x01]);
        assert_eq!(&der[5..8], &[0x02, 0x21, 0x00]);
        assert!(ecdsa_p1363_to_der(&sig[..63], 32).is_none());
        assert!(ecdsa_p1363_to_der(&[0u8; 96], 32).is_none());
    }

    #[test]
    fn protobuf_round_trip() {
        let args = verify_arguments("sha256", &[1, 2], &[3], b"hello");
        assert_eq!(args, [&[0x0a, 6][..], b"sha256", &[0x12, 2, 1, 2], &[0x1a, 1, 3], &[0x22, 5], b"hello"].concat());
        assert_eq!(parse_result(&[0x08, 0x01]), Some((true, String::new())));
        assert_eq!(parse_result(&[0x08, 0x00, 0x12, 0x03, b'b', b'a', b'd']), Some((false, "bad".into())));
        assert_eq!(parse_result(&[]), Some((false, String::new())));
        assert_eq!(parse_result(&[0x12, 0x05, b'x']), None);
        assert_eq!(parse_result(&[0x08]), None);
        assert_eq!(parse_result(&[0x0d, 0, 0, 0, 0]), None);
    }
}
