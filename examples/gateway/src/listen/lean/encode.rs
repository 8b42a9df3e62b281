//! Heads written back to bytes, after the gateway's edits.
//!
//! The bytes are those hyper 1.x writes for the same `HeaderMap` (its
//! `write_headers` and status line): `name: value` per field, names as the
//! map stores them (lower case), in the map's iteration order. That keeps
//! the differential test against the hyper path byte for byte. The room is
//! reserved once, exactly.

use http::{HeaderMap, Method, StatusCode};

/// Appends an HTTP/1.1 request head to `out`: `METHOD target HTTP/1.1`,
/// each field of `headers` as `name: value` (names lower-case, as hyper
/// writes them), and the blank line.
pub fn request_head(out: &mut Vec<u8>, method: &Method, target: &str, headers: &HeaderMap) {
    let method = method.as_str().as_bytes();
    // "METHOD SP target SP HTTP/1.1 CRLF" + fields + CRLF
    out.reserve(method.len() + 1 + target.len() + 11 + fields_len(headers) + 2);
    out.extend_from_slice(method);
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    write_fields(out, headers);
}

/// Appends an HTTP/1.1 response head to `out`: the status line with the
/// status's canonical reason, each field of `headers`, the blank line.
///
/// A status without a canonical reason gets hyper's `<none>` (a reason
/// must be written: many parsers expect one).
pub fn response_head(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap) {
    let reason = status.canonical_reason().unwrap_or("<none>").as_bytes();
    // "HTTP/1.1 SP 3DIGIT SP reason CRLF" + fields + CRLF
    out.reserve(9 + 3 + 1 + reason.len() + 2 + fields_len(headers) + 2);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
    write_fields(out, headers);
}

/// The bytes `write_fields` writes for `headers`, the blank line left out.
fn fields_len(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum()
}

/// Each field as `name: value` CRLF, then the blank line.
fn write_fields(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
