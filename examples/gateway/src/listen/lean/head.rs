//! Request and response heads: parsed with `httparse` into stack storage,
//! with the body's framing decided once (RFC 9112 §6.3).
//!
//! Skeleton (issue 21): signatures agreed between the helpers; the bodies
//! are filled in by the head helper.

use http::{Method, StatusCode};

/// The limits a head is read within (`--max-header-bytes`,
/// `--max-headers`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest head, request line and blank line included.
    pub max_head_bytes: usize,
    /// Most header fields.
    pub max_headers: usize,
}

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length` bytes (more than 0).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the backend closes (responses only).
    UntilClose,
}

/// Why a head could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The head is not complete yet (and still within the limits): read more.
    #[error("incomplete head")]
    Partial,
    /// Beyond `--max-header-bytes`: 431 (502 for a response).
    #[error("head larger than the limit")]
    TooLarge,
    /// Beyond `--max-headers`: 431 (502 for a response).
    #[error("more header fields than the limit")]
    TooManyHeaders,
    /// Malformed, or framing that RFC 9112 §6.3 or HAProxy rejects: 400
    /// (502 for a response). The reason is for the log.
    #[error("malformed head: {0}")]
    Bad(&'static str),
}

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    /// Method, target (as `http::Uri`), version (1.0 or 1.1) and the
    /// header fields as received, hop-by-hop ones included, in order.
    pub parts: http::request::Parts,
    /// The body's framing: `None`, `Length` or `Chunked`.
    pub framing: Framing,
    /// Whether the client keeps the connection open after this exchange
    /// (HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` (HTTP/1.1).
    pub expect_continue: bool,
    /// Bytes of the head in the buffer, blank line included: the body (or
    /// the next request) starts there.
    pub len: usize,
}

/// A parsed response head.
#[derive(Debug)]
pub struct ResponseHead {
    /// Status, version and header fields as received, in order.
    pub parts: http::response::Parts,
    /// `None` for 1xx, 204, 304 and answers to HEAD; else `Chunked`,
    /// `Length` or `UntilClose`.
    pub framing: Framing,
    /// Whether the backend keeps the connection open after this exchange.
    pub keep_alive: bool,
    /// Bytes of the head in the buffer, blank line included.
    pub len: usize,
}

/// Parses the request head at the start of `buf`.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<RequestHead, HeadError> {
    let _ = (buf, limits);
    todo!("issue 21: head helper")
}

/// Parses the response head at the start of `buf`, the answer to a
/// request with `method`.
pub fn parse_response(
    buf: &[u8],
    method: &Method,
    limits: &Limits,
) -> Result<ResponseHead, HeadError> {
    let _ = (buf, method, limits);
    todo!("issue 21: head helper")
}

/// The status a client gets for a request head that could not be read
/// (never `Partial`).
pub fn status_for(error: HeadError) -> StatusCode {
    match error {
        HeadError::TooLarge | HeadError::TooManyHeaders => {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        }
        HeadError::Partial | HeadError::Bad(_) => StatusCode::BAD_REQUEST,
    }
}
