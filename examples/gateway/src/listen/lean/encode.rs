//! Heads written back to bytes, after the gateway's edits.
//!
//! Skeleton (issue 21): signatures agreed between the helpers; the bodies
//! are filled in by the head helper.

use http::{HeaderMap, Method, StatusCode};

/// Appends an HTTP/1.1 request head to `out`: `METHOD target HTTP/1.1`,
/// each field of `headers` as `name: value` (names lower-case, as hyper
/// writes them), and the blank line.
pub fn request_head(out: &mut Vec<u8>, method: &Method, target: &str, headers: &HeaderMap) {
    let _ = (out, method, target, headers);
    todo!("issue 21: head helper")
}

/// Appends an HTTP/1.1 response head to `out`: the status line with the
/// status's canonical reason, each field of `headers`, the blank line.
pub fn response_head(out: &mut Vec<u8>, status: StatusCode, headers: &HeaderMap) {
    let _ = (out, status, headers);
    todo!("issue 21: head helper")
}
