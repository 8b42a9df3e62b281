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
//! → until close. A bad `Content-Length`, both fields, `Transfer-Encoding`
//! in HTTP/1.0 or with `chunked` twice or not last → error (502). These
//! checks hold for bodiless answers too (hyper skips them there: stricter).
//! A reason phrase other than the canonical one is kept, as hyper keeps it.
//!
//! Limits: a head beyond `--max-header-bytes` is [`HeadError::TooLarge`], more
//! fields than `--max-headers` [`HeadError::TooManyHeaders`] (431 for a
//! request); a head of exactly the limit is read. Up to 128 field slots
//! live on the stack, a larger `--max-headers` takes them from the heap.
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

use http::header::{HeaderMap, HeaderName, HeaderValue};
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
    /// The header fields where they were read (ranges of the buffer's
    /// head, a repeated identical `Content-Length` once), for the upstream
    /// head written from them; `None` when the head was read without its
    /// stray CRs (from a copy: the fields are only in `parts`).
    pub fields: Option<Vec<Field>>,
    /// Bytes of the head in the buffer, blank line included: the body (or
    /// the next request) starts there.
    pub len: usize,
}

/// A parsed response head. Its fields stay where they were read (ranges
/// of the head's bytes): the common response goes back written from them
/// ([`super::respond`]), without a `HeaderMap`; [`ResponseHead::parts`]
/// makes one for the edits that need it.
#[derive(Debug)]
pub struct ResponseHead {
    /// The status.
    pub status: StatusCode,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The backend's reason phrase, where it is not the status's canonical
    /// one (kept, as hyper's client keeps it).
    pub reason: Option<Range<usize>>,
    /// The header fields as received, in order (a repeated identical
    /// `Content-Length` once).
    pub fields: Vec<Field>,
    /// `None` for 1xx, 204, 304 and answers to HEAD; else `Chunked`,
    /// `Length` or `UntilClose`.
    pub framing: Framing,
    /// Whether the backend keeps the connection open after this exchange.
    pub keep_alive: bool,
    /// Bytes of the head in the buffer, blank line included.
    pub len: usize,
}

/// One header field of a head: its name and value, as ranges of the
/// head's bytes (already checked: a name of token bytes, a value of field
/// bytes, the same checks as `http`'s `HeaderName`/`HeaderValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The name, as the backend spelled it.
    pub name: Range<usize>,
    /// The value, without surrounding whitespace.
    pub value: Range<usize>,
}

impl ResponseHead {
    /// The head as `http` parts, for the edits that work on a `HeaderMap`:
    /// status, version, the fields (names lower-cased) and a reason phrase
    /// other than the canonical one as a `hyper::ext::ReasonPhrase`. `head`
    /// is the bytes this head was parsed from.
    pub fn parts(&self, head: &[u8]) -> http::response::Parts {
        let (mut parts, ()) = http::Response::new(()).into_parts();
        parts.status = self.status;
        parts.version = self.version;
        // Room for the session's `Set-Cookie`, `Cache-Control` and the
        // framing and connection fields added later: no regrowing.
        let mut headers = HeaderMap::with_capacity(self.fields.len() + 4);
        for f in &self.fields {
            // Checked when parsed (httparse's token and field-value bytes
            // are `http`'s): these conversions do not fail.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(&head[f.name.clone()]),
                HeaderValue::from_bytes(&head[f.value.clone()]),
            ) {
                headers.append(name, value);
            }
        }
        parts.headers = headers;
        if let Some(reason) = &self.reason
            && let Ok(phrase) =
                hyper::ext::ReasonPhrase::try_from(Bytes::copy_from_slice(&head[reason.clone()]))
        {
            parts.extensions.insert(phrase);
        }
        parts
    }
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
    let mut fields = Fields::default();
    let mut kept = Vec::with_capacity(res.headers.len());
    for field in res.headers.iter() {
        if fields.note(field.name.as_bytes(), field.value)? {
            kept.push(Field {
                name: span(buf, field.name.as_bytes()),
                value: span(buf, field.value),
            });
        }
    }
    let framing = response_framing(status, method, version, &fields)?;
    let upgraded = status == StatusCode::SWITCHING_PROTOCOLS
        || (*method == Method::CONNECT && status.is_success());
    let keep_alive = framing != Framing::UntilClose && !upgraded && fields.keep_alive(version);
    let reason = res
        .reason
        .filter(|&reason| Some(reason) != status.canonical_reason())
        .map(|reason| span(buf, reason.as_bytes()));
    Ok(ResponseHead {
        status,
        version,
        reason,
        fields: kept,
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
    let mut spans = Vec::with_capacity(req.headers.len());
    let (headers, fields) = header_map(req.headers, buf, &head, &mut spans)?;
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
        fields: Some(spans),
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
            head.fields = None;
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
        let blank = content.iter().all(|&b| b == b'\r');
        let stray = if started { stray_crs(content) } else { 0 };
        copy.extend_from_slice(&content[..content.len() - stray]);
        copy.push(b'\n');
        dropped += stray;
        if started && blank {
            // The end of the head: what follows is a body, not ours.
            return (dropped > 0).then_some((copy, dropped));
        }
        started |= !blank;
    }
    // A line still arriving may end in stray CRs already: without them,
    // httparse asks for the rest instead of refusing the run.
    let stray = if started { stray_crs(rest) } else { 0 };
    copy.extend_from_slice(&rest[..rest.len() - stray]);
    dropped += stray;
    (dropped > 0).then_some((copy, dropped))
}

/// How many stray CRs end `line` (a line's bytes before its LF): those
/// after the value's last byte but the one CR of the line's CRLF, if
/// there are at most [`MAX_TRAILING_CRS`] of them; else 0.
fn stray_crs(line: &[u8]) -> usize {
    let crs = line.iter().rev().take_while(|&&b| b == b'\r').count();
    let stray = crs.saturating_sub(1);
    if line.len() > crs && stray <= MAX_TRAILING_CRS {
        stray
    } else {
        0
    }
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
/// connection; each kept field's place in `buf` goes to `spans`.
fn header_map(
    parsed: &[httparse::Header<'_>],
    buf: &[u8],
    head: &Bytes,
    spans: &mut Vec<Field>,
) -> Result<(HeaderMap, Fields), HeadError> {
    // Room for what `prepare_request` adds (`via`, `x-forwarded-*`, `host`,
    // `transfer-encoding`): no regrowing.
    let mut headers = HeaderMap::with_capacity(parsed.len() + 6);
    let mut fields = Fields::default();
    for field in parsed {
        if !fields.note(field.name.as_bytes(), field.value)? {
            continue;
        }
        let name = HeaderName::from_bytes(field.name.as_bytes())
            .map_err(|_| HeadError::Bad("field name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(span(buf, field.value)))
            .map_err(|_| HeadError::Bad("field value"))?;
        headers.append(name, value);
        spans.push(Field {
            name: span(buf, field.name.as_bytes()),
            value: span(buf, field.value),
        });
    }
    Ok((headers, fields))
}

/// The field names that a head's `Connection` fields name, other than
/// hop-by-hop ones and `Host`, as [`strip_hop_by_hop`] reads them (a value
/// that is not visible ASCII is skipped, a lone `keep-alive` names
/// nothing): for a head written from the bytes it came in (`head`, its
/// `fields`). Usually none: no allocation then.
///
/// [`strip_hop_by_hop`]: crate::answer::headers::strip_hop_by_hop
pub fn connection_named<'h>(head: &'h [u8], fields: &[Field]) -> Vec<&'h [u8]> {
    use crate::answer::headers::is_hop_by_hop_name;
    let mut named = Vec::new();
    for f in fields {
        let (Some(name), Some(value)) = (head.get(f.name.clone()), head.get(f.value.clone()))
        else {
            continue;
        };
        if name.len() != 10
            || !name.eq_ignore_ascii_case(b"connection")
            || value.eq_ignore_ascii_case(b"keep-alive")
            || !value
                .iter()
                .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            continue;
        }
        for token in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
            if !token.is_empty()
                && !is_hop_by_hop_name(token)
                && !token.eq_ignore_ascii_case(b"host")
            {
                named.push(token);
            }
        }
    }
    named
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
    fn note(&mut self, name: &[u8], bytes: &[u8]) -> Result<bool, HeadError> {
        // By length first: most fields are none of these.
        let known: &[u8] = match name.len() {
            4 => b"host",
            6 => b"expect",
            10 => b"connection",
            14 => b"content-length",
            17 => b"transfer-encoding",
            _ => return Ok(true),
        };
        if !name.eq_ignore_ascii_case(known) {
            return Ok(true);
        }
        let is = |k: &[u8]| k == known;
        if is(b"content-length") {
            let length = digits(bytes).ok_or(HeadError::Bad("Content-Length"))?;
            match self.content_length.replace(length) {
                Some(previous) if previous != length => {
                    return Err(HeadError::Bad("differing Content-Length"));
                }
                Some(_) => return Ok(false),
                None => {}
            }
        } else if is(b"transfer-encoding") {
            let chunked = self.transfer_encoding.unwrap_or(false);
            self.transfer_encoding = Some(codings_end_chunked(bytes, chunked)?);
        } else if is(b"host") {
            self.hosts += 1;
        } else if is(b"connection") {
            self.close |= has_token(bytes, b"close");
            self.keep_alive |= has_token(bytes, b"keep-alive");
        } else if is(b"expect") {
            self.expect_continue = bytes.eq_ignore_ascii_case(b"100-continue");
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits {
        max_head_bytes: 8192,
        max_headers: 100,
    };

    fn request(head: &str) -> Result<RequestHead, HeadError> {
        parse_request(head.as_bytes(), &LIMITS)
    }

    fn bad(head: &str) -> bool {
        matches!(request(head), Err(HeadError::Bad(_)))
    }

    fn response(head: &str, method: Method) -> Result<ResponseHead, HeadError> {
        parse_response(head.as_bytes(), &method, &LIMITS)
    }

    #[test]
    fn a_plain_request_keeps_its_fields_in_order() {
        let raw = "GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-B: 2\r\nx-a: 1\r\nX-B: 3\r\n\r\nrest";
        let head = request(raw).unwrap();
        assert_eq!(head.parts.method, Method::GET);
        assert_eq!(head.parts.uri, "/a?b=c");
        assert_eq!(head.parts.version, Version::HTTP_11);
        assert_eq!(head.len, raw.len() - 4);
        assert_eq!(head.framing, Framing::None);
        assert!(head.keep_alive);
        let fields: Vec<_> = head
            .parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            fields,
            [("host", "x"), ("x-b", "2"), ("x-b", "3"), ("x-a", "1")]
        );
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        assert_eq!(
            request("GET / HTTP/1.1\r\nHost: x\r\n").unwrap_err(),
            HeadError::Partial
        );
        assert_eq!(request("GET / HTT").unwrap_err(), HeadError::Partial);
    }

    #[test]
    fn content_length_and_chunked_framings() {
        let head = request("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n").unwrap();
        assert_eq!(head.framing, Framing::Length(12));
        let head = request("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(head.framing, Framing::None);
        let head = request("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        let head = request("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        let split =
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(request(split).unwrap().framing, Framing::Chunked);
        let max = format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", u64::MAX);
        assert_eq!(request(&max).unwrap().framing, Framing::Length(u64::MAX));
    }

    #[test]
    fn identical_content_lengths_are_kept_once() {
        let head = request("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        let head = head.unwrap();
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(
            head.parts
                .headers
                .get_all(header::CONTENT_LENGTH)
                .iter()
                .count(),
            1
        );
    }

    #[test]
    fn smuggling_vectors_are_refused() {
        for raw in [
            // CL.TE and TE.CL
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            // differing Content-Length
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n",
            // codings that do not end in chunked, or name it twice
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunkedx\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: , chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked,\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n\r\n",
            // spacing and folding around the field
            "POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n",
            "POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding:\r\n chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nX: 1\r\n Transfer-Encoding: chunked\r\n\r\n",
            // TE in HTTP/1.0
            "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            // Content-Length that is not plain digits
            "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 0x5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 5 5\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
            // several Host fields
            "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
            // NUL, bare CR, bare LF inside fields
            "GET / HTTP/1.1\r\nX: a\0b\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\rContent-Length: 5\r\n\r\n",
            "GET / HTTP/1.1\r\nX\0: a\r\n\r\n",
            "GET / HTTP/1.1\r\n: a\r\n\r\n",
            "GET / HTTP/1.1\r\nX a\r\n\r\n",
            // request line
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.2\r\n\r\n",
            "GET / HTTP/2.0\r\n\r\n",
            "G\0T / HTTP/1.1\r\n\r\n",
        ] {
            assert!(bad(raw), "accepted {raw:?}");
        }
    }

    #[test]
    fn leading_and_trailing_spaces_around_chunked_are_fine() {
        let head = request("POST / HTTP/1.1\r\nTransfer-Encoding:   chunked \t\r\n\r\n");
        assert_eq!(head.unwrap().framing, Framing::Chunked);
    }

    #[test]
    fn connection_tokens_decide_keep_alive() {
        let cases = [
            ("HTTP/1.1", "", true),
            ("HTTP/1.1", "Connection: close\r\n", false),
            ("HTTP/1.1", "Connection: Upgrade, CLOSE\r\n", false),
            ("HTTP/1.1", "Connection: closed\r\n", true),
            (
                "HTTP/1.1",
                "Connection: close\r\nConnection: keep-alive\r\n",
                false,
            ),
            ("HTTP/1.0", "", false),
            ("HTTP/1.0", "Connection: Keep-Alive\r\n", true),
            ("HTTP/1.0", "Connection: foo, keep-alive\r\n", true),
            ("HTTP/1.0", "Connection: keep-alive, close\r\n", false),
        ];
        for (version, fields, keep_alive) in cases {
            let raw = format!("GET / {version}\r\n{fields}\r\n");
            assert_eq!(request(&raw).unwrap().keep_alive, keep_alive, "{raw:?}");
        }
    }

    #[test]
    fn expect_continue_only_in_http_1_1() {
        let raw = "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
        assert!(request(raw).unwrap().expect_continue);
        let raw = "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
        assert!(!request(raw).unwrap().expect_continue);
        let raw = "POST / HTTP/1.1\r\nExpect: 100-continuez\r\n\r\n";
        assert!(!request(raw).unwrap().expect_continue);
    }

    #[test]
    fn a_stray_cr_at_the_end_of_a_value_is_dropped() {
        let raw = "GET / HTTP/1.1\r\nSession-A: tok\r\r\nX: 1\r\n\r\nnext";
        let head = request(raw).unwrap();
        assert_eq!(head.parts.headers["session-a"], "tok");
        assert_eq!(head.parts.headers["x"], "1");
        assert_eq!(head.len, raw.len() - 4);
        let raw = format!(
            "GET / HTTP/1.1\r\nA: b{}\r\n\r\n",
            "\r".repeat(MAX_TRAILING_CRS)
        );
        let head = request(&raw).unwrap();
        assert_eq!(head.parts.headers["a"], "b");
        assert_eq!(head.len, raw.len());
        // A stray CR does not hide a framing field from the rules.
        let raw = "POST / HTTP/1.1\r\nContent-Length: 3\r\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(bad(raw));
        let raw = "POST / HTTP/1.1\r\nContent-Length: 3\r\r\n\r\n";
        assert_eq!(request(raw).unwrap().framing, Framing::Length(3));
    }

    #[test]
    fn a_stray_cr_anywhere_else_is_refused() {
        let many = format!(
            "GET / HTTP/1.1\r\nA: b{}\r\n\r\n",
            "\r".repeat(MAX_TRAILING_CRS + 1)
        );
        for raw in [
            many.as_str(),
            "GET / HTTP/1.1\r\r\nA: b\r\n\r\n",
            "GET / HTTP/1.1\r\nA\r\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\n\r\r\n",
            "GET / HTTP/1.1\r\nA: b\r\r\n\r\r\n",
            "GET / HTTP/1.1\r\nA: b\rc\r\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\r\nC\r: d\r\n\r\n",
            "GET / HTTP/1.1\r\nA: b\r\rX: c\r\n\r\n",
            "GET / HTTP/1.1\rA: b\r\r\n\r\n",
        ] {
            assert!(bad(raw), "accepted {raw:?}");
        }
    }

    #[test]
    fn a_stray_cr_in_a_partial_head_asks_for_more() {
        let raw = "GET / HTTP/1.1\r\nSession-A: tok\r\r\nX: ";
        assert_eq!(request(raw).unwrap_err(), HeadError::Partial);
    }

    #[test]
    fn the_head_size_limit_is_inclusive() {
        let raw = "GET / HTTP/1.1\r\nX: 12345\r\n\r\n";
        let at = |max_head_bytes| Limits {
            max_head_bytes,
            max_headers: 100,
        };
        assert!(parse_request(raw.as_bytes(), &at(raw.len())).is_ok());
        let over = parse_request(raw.as_bytes(), &at(raw.len() - 1)).unwrap_err();
        assert_eq!(over, HeadError::TooLarge);
        assert_eq!(
            status_for(over),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        // Incomplete and already at the limit: it cannot fit any more.
        let partial = &raw.as_bytes()[..20];
        assert_eq!(
            parse_request(partial, &at(20)).unwrap_err(),
            HeadError::TooLarge
        );
        assert_eq!(
            parse_request(partial, &at(21)).unwrap_err(),
            HeadError::Partial
        );
        // The stray CRs count in the limit.
        let raw = "GET / HTTP/1.1\r\nX: 12345\r\r\n\r\n";
        assert!(parse_request(raw.as_bytes(), &at(raw.len())).is_ok());
        let over = parse_request(raw.as_bytes(), &at(raw.len() - 1));
        assert_eq!(over.unwrap_err(), HeadError::TooLarge);
    }

    #[test]
    fn the_field_count_limit_is_inclusive() {
        for max_headers in [0, 3, 100, 128, 129, 300] {
            let limits = Limits {
                max_head_bytes: 64 * 1024,
                max_headers,
            };
            let fields = |n: usize| -> String {
                let lines: String = (0..n).map(|i| format!("X-{i}: v\r\n")).collect();
                format!("GET / HTTP/1.1\r\n{lines}\r\n")
            };
            let head = parse_request(fields(max_headers).as_bytes(), &limits).unwrap();
            assert_eq!(head.parts.headers.len(), max_headers);
            let over = parse_request(fields(max_headers + 1).as_bytes(), &limits).unwrap_err();
            assert_eq!(over, HeadError::TooManyHeaders);
            assert_eq!(
                status_for(over),
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            );
        }
    }

    #[test]
    fn bad_heads_answer_400() {
        assert_eq!(status_for(HeadError::Bad("x")), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn response_framings() {
        let cases = [
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
                Method::GET,
                Framing::Length(7),
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                Method::GET,
                Framing::None,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                Method::GET,
                Framing::Chunked,
                true,
            ),
            (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                Method::GET,
                Framing::UntilClose,
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\n\r\n",
                Method::GET,
                Framing::UntilClose,
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",
                Method::HEAD,
                Framing::None,
                true,
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                Method::GET,
                Framing::None,
                true,
            ),
            (
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
                Method::GET,
                Framing::None,
                true,
            ),
            (
                "HTTP/1.1 100 Continue\r\n\r\n",
                Method::POST,
                Framing::None,
                true,
            ),
            (
                "HTTP/1.1 101 Switching Protocols\r\n\r\n",
                Method::GET,
                Framing::None,
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\n\r\n",
                Method::CONNECT,
                Framing::None,
                false,
            ),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n",
                Method::GET,
                Framing::Length(3),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n",
                Method::GET,
                Framing::Length(3),
                false,
            ),
            (
                "HTTP/1.0 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n",
                Method::GET,
                Framing::Length(3),
                true,
            ),
            (
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
                Method::GET,
                Framing::UntilClose,
                false,
            ),
        ];
        for (raw, method, framing, keep_alive) in cases {
            let head = response(raw, method).unwrap();
            assert_eq!(head.framing, framing, "{raw:?}");
            assert_eq!(head.keep_alive, keep_alive, "{raw:?}");
            assert_eq!(head.len, raw.len());
        }
    }

    #[test]
    fn a_response_keeps_status_and_fields() {
        let raw =
            "HTTP/1.1 404 Nope\r\nSet-Cookie: a=1\r\nX-Pod:  p \r\nSet-Cookie: b=2\r\n\r\nbody";
        let head = response(raw, Method::GET).unwrap();
        assert_eq!(head.status, StatusCode::NOT_FOUND);
        assert_eq!(head.version, Version::HTTP_11);
        let at = |r: &Range<usize>| &raw[r.clone()];
        let fields: Vec<_> = head
            .fields
            .iter()
            .map(|f| (at(&f.name), at(&f.value)))
            .collect();
        assert_eq!(
            fields,
            [("Set-Cookie", "a=1"), ("X-Pod", "p"), ("Set-Cookie", "b=2")]
        );
        assert_eq!(head.len, raw.len() - 4);
        assert_eq!(head.reason.as_ref().map(at), Some("Nope"));
        let parts = head.parts(raw.as_bytes());
        assert_eq!(parts.status, StatusCode::NOT_FOUND);
        let cookies: Vec<_> = parts.headers.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        assert_eq!(parts.headers["x-pod"], "p");
        let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
        assert_eq!(reason.unwrap().as_bytes(), b"Nope");
        let raw = "HTTP/1.1 404 Not Found\r\n\r\n";
        let head = response(raw, Method::GET).unwrap();
        assert_eq!(head.reason, None);
        let parts = head.parts(raw.as_bytes());
        assert!(parts.extensions.get::<hyper::ext::ReasonPhrase>().is_none());
        let raw = "HTTP/1.1 200 \r\n\r\n";
        let head = response(raw, Method::GET).unwrap();
        let reason = head
            .parts(raw.as_bytes())
            .extensions
            .remove::<hyper::ext::ReasonPhrase>();
        assert_eq!(reason.unwrap().as_bytes(), b"");
    }

    #[test]
    fn a_repeated_identical_content_length_is_one_field_in_a_response() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok";
        let head = response(raw, Method::GET).unwrap();
        assert_eq!(head.fields.len(), 1);
        assert_eq!(head.framing, Framing::Length(2));
    }

    #[test]
    fn bad_response_framing_is_refused() {
        for raw in [
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
            "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            "HTTP/1.1 2000 OK\r\n\r\n",
            "HTTP/1.1 099 OK\r\n\r\n",
        ] {
            assert!(
                matches!(response(raw, Method::GET), Err(HeadError::Bad(_))),
                "accepted {raw:?}"
            );
        }
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
        assert_eq!(
            response(&raw, Method::GET).unwrap_err(),
            HeadError::TooManyHeaders
        );
        assert_eq!(
            response("HTTP/1.1 200 OK\r\n", Method::GET).unwrap_err(),
            HeadError::Partial
        );
    }

    /// A valid request head: fields `x-<i>: <value>`, and where stray CRs
    /// go (field index, how many).
    fn head_with_strays() -> impl Strategy<Value = (Vec<String>, Vec<(usize, usize)>)> {
        (
            proptest::collection::vec("[!-~]([ !-~]{0,10}[!-~])?", 1..8),
            proptest::collection::vec((any::<usize>(), 1..=MAX_TRAILING_CRS), 1..4),
        )
    }

    fn render(values: &[String], strays: &[(usize, usize)]) -> Vec<u8> {
        let mut out = b"POST /p HTTP/1.1\r\n".to_vec();
        for (i, value) in values.iter().enumerate() {
            out.extend_from_slice(format!("x-{i}: {value}").as_bytes());
            let crs: usize = strays
                .iter()
                .filter(|(at, _)| at % values.len() == i)
                .map(|&(_, n)| n)
                .max()
                .unwrap_or(0);
            out.extend(std::iter::repeat_n(b'\r', crs));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"content-length: 3\r\n\r\n");
        out
    }

    proptest! {
        #[test]
        fn stray_crs_change_nothing_but_the_length(
            (values, strays) in head_with_strays(),
        ) {
            let plain = render(&values, &[]);
            let lenient = render(&values, &strays);
            let want = parse_request(&plain, &LIMITS).unwrap();
            let got = parse_request(&lenient, &LIMITS).unwrap();
            prop_assert_eq!(got.len, lenient.len());
            prop_assert_eq!(got.parts.headers, want.parts.headers);
            prop_assert_eq!(got.framing, Framing::Length(3));
            for end in 0..lenient.len() {
                let prefix = parse_request(&lenient[..end], &LIMITS);
                prop_assert_eq!(prefix.unwrap_err(), HeadError::Partial, "{}", end);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            max_head_bytes in 0usize..600,
            max_headers in 0usize..140,
        ) {
            let limits = Limits { max_head_bytes, max_headers };
            if let Ok(head) = parse_request(&bytes, &limits) {
                prop_assert!(head.len <= bytes.len() && head.len <= max_head_bytes);
            }
            if let Ok(head) = parse_response(&bytes, &Method::GET, &limits) {
                prop_assert!(head.len <= bytes.len() && head.len <= max_head_bytes);
                // What the parser accepted, `http`'s types accept: no field
                // is lost on the way to a `HeaderMap`.
                prop_assert_eq!(head.parts(&bytes).headers.len(), head.fields.len());
            }
        }

        #[test]
        fn cr_lf_nul_mutations_never_panic(
            (values, strays) in head_with_strays(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(vec![b'\r', b'\n', 0u8, b' ', b':']),
        ) {
            let mut raw = render(&values, &strays);
            raw.insert(at.index(raw.len() + 1), byte);
            if let Ok(head) = parse_request(&raw, &LIMITS) {
                prop_assert!(head.len <= raw.len());
                // Whatever was accepted still reads as framed.
                prop_assert!(matches!(head.framing, Framing::Length(3) | Framing::None));
            }
        }
    }

    /// Whether the hyper path (hyper's server behind the stray-CR
    /// pre-scanner, same limits) takes `raw` as a request: its service
    /// answers 200 only then.
    async fn hyper_path_accepts(raw: &[u8]) -> bool {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let service = hyper::service::service_fn(|_request| async {
            let ok = http::Response::new(http_body_util::Empty::<Bytes>::new());
            Ok::<_, std::convert::Infallible>(ok)
        });
        let io = hyper_util::rt::TokioIo::new(crate::listen::stray_cr::StrayCr::new(ours));
        let server = hyper::server::conn::http1::Builder::new()
            .max_buf_size(LIMITS.max_head_bytes)
            .max_headers(LIMITS.max_headers)
            .serve_connection(io, service);
        let driver = tokio::spawn(server);
        theirs.write_all(raw).await.unwrap();
        let mut status = [0; 12];
        let read = theirs.read_exact(&mut status).await;
        driver.abort();
        read.is_ok() && &status[9..] == b"200"
    }

    /// Complete heads both paths are asked about.
    fn vectors() -> Vec<String> {
        let mut all = vec![
            "GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_owned(),
            "GET / HTTP/1.1\r\nA: b\r\r\n\r\n".to_owned(),
            "GET / HTTP/1.1\r\nA: b\r\r\r\r\r\r\r\r\r\r\n\r\n".to_owned(),
            "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n".to_owned(),
        ];
        for field in [
            "Transfer-Encoding: chunked",
            "Transfer-Encoding: chunked\r\nContent-Length: 5",
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: chunked, identity",
            "Transfer-Encoding: xchunked",
            "Transfer-Encoding:  chunked",
            "Transfer-Encoding : chunked",
            "Transfer-Encoding:\r\n chunked",
            "Content-Length: +5",
            "Content-Length: -1",
            "Content-Length: 0x5",
            "Content-Length: ",
            "Content-Length: 5\r\nContent-Length: 6",
            "X: a\0b",
            "X: a\rb",
            "X\r: a",
            " X: a",
        ] {
            all.push(format!("POST / HTTP/1.1\r\n{field}\r\n\r\n"));
            all.push(format!("POST / HTTP/1.0\r\n{field}\r\n\r\n"));
        }
        all
    }

    #[tokio::test]
    async fn what_the_hyper_path_refuses_is_refused() {
        // The probe tells the two apart (the stray CR included).
        assert!(hyper_path_accepts(b"GET / HTTP/1.1\r\nA: b\r\r\n\r\n").await);
        assert!(!hyper_path_accepts(b"GET / HTTP/1.1\r\nA: b\0\r\n\r\n").await);
        let mut refused = 0;
        for raw in vectors() {
            if !hyper_path_accepts(raw.as_bytes()).await {
                refused += 1;
                assert!(request(&raw).is_err(), "hyper refuses, lean takes {raw:?}");
            }
        }
        assert!(refused > 10, "only {refused} refused");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn mutated_heads_the_hyper_path_refuses_are_refused(
            (values, strays) in head_with_strays(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(vec![b'\r', b'\n', 0u8, b' ', b':', b'\t', b',']),
        ) {
            let mut raw = render(&values, &strays);
            raw.insert(at.index(raw.len() + 1), byte);
            raw.extend_from_slice(b"abc");
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            if !runtime.block_on(hyper_path_accepts(&raw)) {
                let lean = parse_request(&raw, &LIMITS);
                prop_assert!(lean.is_err(), "hyper refuses, lean takes {:?}", String::from_utf8_lossy(&raw));
            }
        }
    }
}
