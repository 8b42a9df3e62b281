//! Request and response heads: parsed with `httparse` into stack storage,
//! with the body's framing decided once (RFC 9112 §6.3).
//!
//! # Framing (decided here, for both directions)
//!
//! Requests:
//! * `Transfer-Encoding` in HTTP/1.0 → 400;
//! * `Transfer-Encoding` whose final coding is not `chunked`, or that names
//!   `chunked` twice or not last, or has an empty element → 400;
//! * `Transfer-Encoding` and `Content-Length` together → 400 (RFC 9112
//!   lets `Transfer-Encoding` win; rejecting is what keeps a proxy in front
//!   or a backend behind from reading a different body: never looser than
//!   hyper or HAProxy);
//! * `Content-Length` not all digits (`+5`, `-1`, `0x5`, empty, a list),
//!   beyond `u64`, or repeated with differing values → 400; repeated with
//!   the same value → kept once;
//! * several `Host` fields → 400;
//! * obs-fold, space before the colon, NUL, CR or LF inside a field → 400
//!   (`httparse`);
//! * no framing field, or `Content-Length: 0` → no body.
//!
//! Responses: no body for 1xx, 204, 304, answers to `HEAD` and 2xx answers
//! to `CONNECT`; else `Transfer-Encoding` with `chunked` last → chunked,
//! other codings → until close; `Content-Length` → that many bytes; neither
//! → until close. A bad `Content-Length`, or both fields, or
//! `Transfer-Encoding` in HTTP/1.0 → error (502).
//!
//! Limits: a head beyond `--max-header-bytes` is [`HeadError::TooLarge`], more
//! fields than `--max-headers` [`HeadError::TooManyHeaders`] (431 for a
//! request).
//!
//! # The one leniency
//!
//! RFC 9110 §5.5 lets a recipient drop a CR inside a field value. The seed's
//! header walkthrough (`awk '{print $3}'` keeps the `\r` of the line it
//! read) sends `Session-A: <token>\r\r\n`. So, in a request and only there,
//! a run of at most [`MAX_TRAILING_CRS`] CRs at the very end of a field
//! line, before its CRLF, is dropped and the value read without it. A CR
//! anywhere else (request line, field name, inside a value, a line of CRs
//! alone, a bare CR as a line end) is still refused: a proxy in front that
//! took it for a line end would see other fields than we do.

use std::mem::MaybeUninit;
use std::ops::Range;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};
use hyper::body::Bytes;

/// Header slots kept on the stack; a larger `--max-headers` takes them
/// from the heap (a configuration nobody needs for speed).
const STACK_HEADERS: usize = 128;

/// The longest run of stray CRs dropped at the end of a request field
/// value (the seed's `awk` case has one), as the hyper path's pre-scanner.
pub const MAX_TRAILING_CRS: usize = 8;

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
    match parse_request_strict(buf, limits) {
        // Rare path: only a head httparse refused is looked at again.
        Err(HeadError::Bad(reason)) => {
            parse_request_lenient(buf, limits).unwrap_or(Err(HeadError::Bad(reason)))
        }
        other => other,
    }
}

/// Parses the response head at the start of `buf`, the answer to a
/// request with `method`.
pub fn parse_response(
    buf: &[u8],
    method: &Method,
    limits: &Limits,
) -> Result<ResponseHead, HeadError> {
    let mut stack = [const { MaybeUninit::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = header_slots(&mut stack, &mut heap, limits.max_headers);
    let mut res = httparse::Response::new(&mut []);
    let status =
        httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, slots);
    let len = complete(status, buf.len(), limits)?;
    let code = res.code.ok_or(HeadError::Bad("no status"))?;
    let status = StatusCode::from_u16(code).map_err(|_| HeadError::Bad("status"))?;
    let version = version(res.version)?;
    let head = Bytes::copy_from_slice(&buf[..len]);
    let (headers, fields) = header_map(res.headers, buf, &head)?;
    let framing = response_framing(status, method, version, &fields)?;
    let upgraded = status == StatusCode::SWITCHING_PROTOCOLS
        || (*method == Method::CONNECT && status.is_success());
    let keep_alive = framing != Framing::UntilClose && !upgraded && fields.keep_alive(version);
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.status = status;
    parts.version = version;
    parts.headers = headers;
    Ok(ResponseHead {
        parts,
        framing,
        keep_alive,
        len,
    })
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

/// `httparse` on `buf` as it is, then the framing rules.
fn parse_request_strict(buf: &[u8], limits: &Limits) -> Result<RequestHead, HeadError> {
    let mut stack = [const { MaybeUninit::uninit() }; STACK_HEADERS];
    let mut heap = Vec::new();
    let slots = header_slots(&mut stack, &mut heap, limits.max_headers);
    let mut req = httparse::Request::new(&mut []);
    let status =
        httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, buf, slots);
    let len = complete(status, buf.len(), limits)?;
    let method = req.method.ok_or(HeadError::Bad("no method"))?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|_| HeadError::Bad("method"))?;
    let path = req.path.ok_or(HeadError::Bad("no target"))?;
    let version = version(req.version)?;
    // One allocation for the target and every value: each is a slice of it.
    let head = Bytes::copy_from_slice(&buf[..len]);
    let (headers, fields) = header_map(req.headers, buf, &head)?;
    let framing = request_framing(version, &fields)?;
    let (mut parts, ()) = http::Request::new(()).into_parts();
    parts.uri = Uri::from_maybe_shared(head.slice(span(buf, path.as_bytes())))
        .map_err(|_| HeadError::Bad("target"))?;
    parts.method = method;
    parts.version = version;
    parts.headers = headers;
    Ok(RequestHead {
        parts,
        framing,
        keep_alive: fields.keep_alive(version),
        expect_continue: version == Version::HTTP_11 && fields.expect_continue,
        len,
    })
}

/// The leniency of the module docs: `None` when `buf` has no stray CR to
/// drop (the strict verdict stands), else the verdict on the head without
/// them, its length counted in `buf`'s bytes.
fn parse_request_lenient(buf: &[u8], limits: &Limits) -> Option<Result<RequestHead, HeadError>> {
    let (copy, dropped) = without_trailing_crs(buf)?;
    Some(match parse_request_strict(&copy, limits) {
        Ok(mut head) => {
            head.len += dropped;
            if head.len > limits.max_head_bytes {
                Err(HeadError::TooLarge)
            } else {
                Ok(head)
            }
        }
        Err(HeadError::Partial) if buf.len() >= limits.max_head_bytes => Err(HeadError::TooLarge),
        other => other,
    })
}

/// A copy of the head at the start of `buf` (up to its blank line, or all
/// of `buf` if that has not come yet) with the stray CRs at the end of
/// field lines dropped, and how many were dropped; `None` if none was.
///
/// The request line is copied as it is; so is a line of CRs alone (it is
/// not a field line, and taking it for the blank line would end the head
/// where a proxy in front does not).
fn without_trailing_crs(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut copy = Vec::with_capacity(buf.len());
    let mut dropped = 0;
    let mut rest = buf;
    // Empty lines before the request line are skipped by httparse.
    let mut started = false;
    while let Some(at) = rest.iter().position(|&b| b == b'\n') {
        let (line, next) = rest.split_at(at + 1);
        rest = next;
        let content = &line[..at];
        let crs = content.iter().rev().take_while(|&&b| b == b'\r').count();
        let blank = content.len() == crs;
        let stray = crs.saturating_sub(1);
        if started && !blank && (1..=MAX_TRAILING_CRS).contains(&stray) {
            copy.extend_from_slice(&content[..content.len() - crs]);
            copy.extend_from_slice(b"\r\n");
            dropped += stray;
            continue;
        }
        copy.extend_from_slice(line);
        if started && blank {
            // The end of the head: what follows is a body, not ours.
            return (dropped > 0).then_some((copy, dropped));
        }
        started |= !blank;
    }
    copy.extend_from_slice(rest);
    (dropped > 0).then_some((copy, dropped))
}

/// `max` header slots: on the stack when they fit, else on the heap.
fn header_slots<'s, 'b>(
    stack: &'s mut [MaybeUninit<httparse::Header<'b>>; STACK_HEADERS],
    heap: &'s mut Vec<MaybeUninit<httparse::Header<'b>>>,
    max: usize,
) -> &'s mut [MaybeUninit<httparse::Header<'b>>] {
    if max <= STACK_HEADERS {
        &mut stack[..max]
    } else {
        heap.resize(max, MaybeUninit::uninit());
        heap
    }
}

/// The head's length from httparse's verdict, within `limits`; `have` is
/// how many bytes were parsed.
fn complete(
    status: httparse::Result<usize>,
    have: usize,
    limits: &Limits,
) -> Result<usize, HeadError> {
    match status {
        Ok(httparse::Status::Complete(len)) if len > limits.max_head_bytes => {
            Err(HeadError::TooLarge)
        }
        Ok(httparse::Status::Complete(len)) => Ok(len),
        Ok(httparse::Status::Partial) if have >= limits.max_head_bytes => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Err(HeadError::Partial),
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
        Err(error) => Err(HeadError::Bad(httparse_reason(error))),
    }
}

/// A log reason for an httparse error.
fn httparse_reason(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "field name",
        httparse::Error::HeaderValue => "field value",
        httparse::Error::NewLine => "line end",
        httparse::Error::Status => "status",
        httparse::Error::Token => "method or target",
        httparse::Error::Version => "version",
        httparse::Error::TooManyHeaders => "too many fields",
    }
}

/// HTTP/1.0 or HTTP/1.1 from httparse's minor version.
fn version(minor: Option<u8>) -> Result<Version, HeadError> {
    match minor {
        Some(0) => Ok(Version::HTTP_10),
        Some(1) => Ok(Version::HTTP_11),
        _ => Err(HeadError::Bad("version")),
    }
}

/// The parsed fields as a `HeaderMap` (values are slices of `head`, the
/// copy of `buf`'s head), and what they say about framing and the
/// connection.
fn header_map(
    parsed: &[httparse::Header<'_>],
    buf: &[u8],
    head: &Bytes,
) -> Result<(HeaderMap, Fields), HeadError> {
    let mut headers = HeaderMap::with_capacity(parsed.len());
    let mut fields = Fields::default();
    for field in parsed {
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| HeadError::Bad("field name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(span(buf, field.value)))
            .map_err(|_| HeadError::Bad("field value"))?;
        if fields.note(&name, &value)? {
            headers.append(name, value);
        }
    }
    Ok((headers, fields))
}

/// Where `part`, a slice httparse took from `buf`, lies in `buf`.
fn span(buf: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    start..start + part.len()
}

/// What a head's fields say about its framing and its connection.
#[derive(Debug, Default)]
struct Fields {
    content_length: Option<u64>,
    /// `Some(chunked is the final coding so far)` once a
    /// `Transfer-Encoding` field was seen.
    transfer_encoding: Option<bool>,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl Fields {
    /// Takes in one field. `Ok(false)`: leave it out of the map (a repeated
    /// identical `Content-Length`, kept once as hyper does).
    fn note(&mut self, name: &HeaderName, value: &HeaderValue) -> Result<bool, HeadError> {
        let bytes = value.as_bytes();
        match *name {
            header::CONTENT_LENGTH => {
                let length = digits(bytes).ok_or(HeadError::Bad("Content-Length"))?;
                match self.content_length.replace(length) {
                    Some(previous) if previous != length => {
                        return Err(HeadError::Bad("differing Content-Length"));
                    }
                    Some(_) => return Ok(false),
                    None => {}
                }
            }
            header::TRANSFER_ENCODING => {
                let chunked = self.transfer_encoding.unwrap_or(false);
                self.transfer_encoding = Some(codings_end_chunked(bytes, chunked)?);
            }
            header::HOST => self.hosts += 1,
            header::CONNECTION => {
                self.close |= has_token(bytes, b"close");
                self.keep_alive |= has_token(bytes, b"keep-alive");
            }
            header::EXPECT => {
                self.expect_continue = bytes.eq_ignore_ascii_case(b"100-continue");
            }
            _ => {}
        }
        Ok(true)
    }

    /// HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
    /// `Connection: keep-alive` (and no `close`).
    fn keep_alive(&self, version: Version) -> bool {
        !self.close && (version == Version::HTTP_11 || self.keep_alive)
    }
}

/// Follows one `Transfer-Encoding` value's codings; `chunked` says whether
/// the coding before them (in an earlier field) was `chunked`. Returns
/// whether `chunked` is now the final coding. `chunked` twice, a coding
/// after `chunked`, an empty element or a non-token coding are refused.
fn codings_end_chunked(value: &[u8], mut chunked: bool) -> Result<bool, HeadError> {
    for coding in value.split(|&b| b == b',') {
        let coding = coding.trim_ascii();
        if chunked {
            return Err(HeadError::Bad("coding after chunked"));
        }
        if coding.is_empty()
            || !coding
                .iter()
                .all(|&b| is_token_byte(b) || b == b';' || b == b'=')
        {
            return Err(HeadError::Bad("Transfer-Encoding"));
        }
        chunked = coding.eq_ignore_ascii_case(b"chunked");
    }
    Ok(chunked)
}

/// A `tchar` of RFC 9110 §5.6.2.
pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Whether a comma-separated list names `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

/// A `Content-Length` value: digits only (no sign, no `0x`, no list, not
/// empty), within `u64`.
fn digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// A request's framing (module docs), and the checks that only requests
/// have.
fn request_framing(version: Version, fields: &Fields) -> Result<Framing, HeadError> {
    if fields.hosts > 1 {
        return Err(HeadError::Bad("several Host fields"));
    }
    match (fields.transfer_encoding, fields.content_length) {
        (Some(_), _) if version == Version::HTTP_10 => {
            Err(HeadError::Bad("Transfer-Encoding in HTTP/1.0"))
        }
        (Some(_), Some(_)) => Err(HeadError::Bad("Transfer-Encoding with Content-Length")),
        (Some(true), None) => Ok(Framing::Chunked),
        (Some(false), None) => Err(HeadError::Bad("final coding not chunked")),
        (None, None | Some(0)) => Ok(Framing::None),
        (None, Some(length)) => Ok(Framing::Length(length)),
    }
}

/// A response's framing (module docs). The field checks hold for every
/// status, bodiless ones included: a backend that sends them is broken.
fn response_framing(
    status: StatusCode,
    method: &Method,
    version: Version,
    fields: &Fields,
) -> Result<Framing, HeadError> {
    let framing = match (fields.transfer_encoding, fields.content_length) {
        (Some(_), _) if version == Version::HTTP_10 => {
            return Err(HeadError::Bad("Transfer-Encoding in HTTP/1.0"));
        }
        (Some(_), Some(_)) => {
            return Err(HeadError::Bad("Transfer-Encoding with Content-Length"));
        }
        (Some(true), None) => Framing::Chunked,
        (Some(false), None) | (None, None) => Framing::UntilClose,
        (None, Some(0)) => Framing::None,
        (None, Some(length)) => Framing::Length(length),
    };
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || *method == Method::HEAD
        || (*method == Method::CONNECT && status.is_success());
    Ok(if bodiless { Framing::None } else { framing })
}
