//! What crosses the ABI: raw input slices, host-allocated results the SDK takes ownership of,
//! and the header-map / property-path encodings of `proxy_wasm::hostcalls::utils`.

use std::ptr;

/// A header map as the host keeps it: lowercase names in insertion order, raw values.
pub type Pairs = Vec<(String, Vec<u8>)>;

/// Borrows `len` bytes the SDK passed in.
///
/// # Safety
/// `data` must be null or point to `len` readable bytes that outlive the borrow (true for the
/// duration of a host call: the SDK passes slices it owns).
pub unsafe fn input<'a>(data: *const u8, len: usize) -> &'a [u8] {
    // The SDK passes null with size 0 for `None` bodies and values; `from_raw_parts` forbids null.
    if data.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(data, len)
    }
}

/// Input bytes as text; the SDK only ever sends UTF-8 names, but a host must not trust that.
///
/// # Safety
/// As [`input`].
pub unsafe fn text(data: *const u8, len: usize) -> String {
    String::from_utf8_lossy(input(data, len)).into_owned()
}

/// Hands `data` to the SDK, which owns it afterwards and frees it with
/// `Vec::from_raw_parts(ptr, len, len)`.
///
/// A boxed slice has capacity == len exactly, which that call requires, and host and SDK share
/// the process allocator. Empty data is returned as null with size 0, as Envoy's
/// `copyToPointerSize("")` does; the SDK reads that as "no value" (`None`, or an empty map).
///
/// # Safety
/// `ptr_out` and `len_out` must be null or valid for writes.
pub unsafe fn give(data: Vec<u8>, ptr_out: *mut *mut u8, len_out: *mut usize) {
    if ptr_out.is_null() || len_out.is_null() {
        return; // Nowhere to put it; dropping `data` here avoids a leak.
    }
    if data.is_empty() {
        *ptr_out = ptr::null_mut();
        *len_out = 0;
        return;
    }
    let boxed = data.into_boxed_slice();
    *len_out = boxed.len();
    *ptr_out = Box::into_raw(boxed).cast::<u8>();
}

/// Writes a scalar result.
///
/// # Safety
/// `out` must be null or valid for writes of a `T`.
pub unsafe fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        out.write(value);
    }
}

/// Serializes pairs exactly as `hostcalls::utils::serialize_map_bytes` does, which is what
/// `utils::deserialize_map` expects: `u32` count, then `u32` key and value sizes per pair,
/// then each key and value followed by a NUL. All integers little-endian.
pub fn serialize_pairs(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut size = 4;
    for (k, v) in pairs {
        size += 8 + k.len() + v.len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len32(pairs.len()).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&len32(k.len()).to_le_bytes());
        out.extend_from_slice(&len32(v.len()).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Parses what the SDK's `serialize_map` sends. Like Envoy's `toPairs`, malformed input yields
/// no pairs rather than an error. Names come back as sent (the caller lowercases them).
pub fn deserialize_pairs(bytes: &[u8]) -> Pairs {
    parse_pairs(bytes).unwrap_or_default()
}

fn parse_pairs(bytes: &[u8]) -> Option<Pairs> {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let count = word(0)?;
    let mut sizes = Vec::with_capacity(count.min(1024));
    for i in 0..count {
        let at = 4usize.checked_add(i.checked_mul(8)?)?;
        sizes.push((word(at)?, word(at.checked_add(4)?)?));
    }
    let mut p = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut pairs = Vec::with_capacity(sizes.len());
    for (klen, vlen) in sizes {
        let key = bytes.get(p..p.checked_add(klen)?)?;
        p = p.checked_add(klen)?.checked_add(1)?;
        let value = bytes.get(p..p.checked_add(vlen)?)?;
        p = p.checked_add(vlen)?.checked_add(1)?;
        pairs.push((String::from_utf8_lossy(key).into_owned(), value.to_vec()));
    }
    Some(pairs)
}

/// The SDK's property path encoding: segments joined by NUL (`serialize_property_path`).
pub fn encode_path(path: &[&str]) -> Vec<u8> {
    path.join("\0").into_bytes()
}

/// Readable form of an encoded property path, for messages.
pub fn show_path(path: &[u8]) -> String {
    String::from_utf8_lossy(path).replace('\0', ".")
}
