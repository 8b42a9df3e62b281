//! Heads written back to bytes, after the gateway's edits.
//!
//! The bytes are those hyper 1.x writes for the same `HeaderMap` (its
//! `write_headers` and status line): `name: value` per field, names as the
//! map stores them (lower case), in the map's iteration order. That keeps
//! the differential test against the hyper path byte for byte. The room is
//! reserved once (exactly, or a few bytes over where hyper's server joins
//! lines).
//!
//! What hyper's server adds on its own is not written here: a `date` field
//! when there is none, and, for an empty body, `content-length: 0` at the
//! end of the head instead of in its place.

use http::header::{self, HeaderName};
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
    response_head_with_reason(out, status, None, headers);
}

/// [`response_head`] with the backend's own reason phrase when it has one
/// (the `hyper::ext::ReasonPhrase` that [`parse_response`] keeps), which
/// hyper's server writes instead of the canonical one.
///
/// [`parse_response`]: super::head::parse_response
pub fn response_head_with_reason(
    out: &mut Vec<u8>,
    status: StatusCode,
    reason: Option<&[u8]>,
    headers: &HeaderMap,
) {
    let canonical = status.canonical_reason().unwrap_or("<none>").as_bytes();
    let reason_len = reason.unwrap_or(canonical).len();
    // "HTTP/1.1 SP 3DIGIT SP reason CRLF" + fields + CRLF, reserved once.
    out.reserve(9 + 3 + 1 + reason_len + 2 + fields_len(headers) + 2);
    status_line(out, status, reason);
    write_response_fields(out, headers);
}

/// Appends an HTTP/1.1 status line to `out`, with `reason` or else the
/// status's canonical one (hyper's `<none>` for a status without one).
pub fn status_line(out: &mut Vec<u8>, status: StatusCode, reason: Option<&[u8]>) {
    let canonical = status.canonical_reason().unwrap_or("<none>").as_bytes();
    let reason = reason.unwrap_or(canonical);
    // "HTTP/1.1 SP 3DIGIT SP reason CRLF"
    out.reserve(9 + 3 + 1 + reason.len() + 2);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason);
    out.extend_from_slice(b"\r\n");
}

/// The longest field name [`lower_case`] lowers on the stack.
pub const STACK_NAME: usize = 64;

/// `name` lower-cased into `buf`, or `None` when it is longer than
/// [`STACK_NAME`] (rare: the caller compares it the slow way). One pass
/// per field: every check after it compares exact bytes.
pub fn lower_case<'b>(name: &[u8], buf: &'b mut [u8; STACK_NAME]) -> Option<&'b [u8]> {
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    Some(lower)
}

/// Appends `name: value` CRLF with `name` as it is.
pub fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + 2 + value.len() + 2);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends `name: value` CRLF with the name lower-cased, as hyper writes
/// a field it took into a `HeaderMap`.
pub fn field_lower_case(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + 2 + value.len() + 2);
    let start = out.len();
    out.extend_from_slice(name);
    out[start..].make_ascii_lowercase();
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The bytes `write_fields` writes for `headers`, the blank line left out.
fn fields_len(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum()
}

/// A response's fields as hyper's server writes them: as
/// [`write_fields`], except that the lines of a field hyper joins
/// (`connection`, `transfer-encoding`, `trailer`) become one line, its
/// values joined with `, ` at the place of the first.
fn write_response_fields(out: &mut Vec<u8>, headers: &HeaderMap) {
    // A map yields the values of one name one after the other, so a
    // joined field's line stays open while its name repeats.
    let mut open: Option<&HeaderName> = None;
    for (name, value) in headers {
        if open == Some(name) {
            out.extend_from_slice(b", ");
            out.extend_from_slice(value.as_bytes());
            continue;
        }
        if open.take().is_some() {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        if JOINED.contains(name) {
            open = Some(name);
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }
    if open.is_some() {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The fields whose lines hyper's server joins into one.
const JOINED: [HeaderName; 3] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TRAILER,
];

/// `name: value` CRLF.
fn write_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Each field as `name: value` CRLF, then the blank line.
fn write_fields(out: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        write_field(out, name.as_str(), value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listen::lean::head::{self, Limits};
    use http::header::{HeaderName, HeaderValue};
    use http_body_util::{Empty, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    fn fields(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    /// Reads from `io` up to and including the blank line ending a head.
    async fn read_head(io: &mut DuplexStream) -> Vec<u8> {
        let mut got = Vec::new();
        while !got.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            assert_eq!(io.read(&mut byte).await.unwrap(), 1, "closed mid-head");
            got.push(byte[0]);
        }
        got
    }

    /// The bytes hyper's HTTP/1 client writes for a bodiless request.
    async fn hyper_request_bytes(method: Method, target: &str, headers: HeaderMap) -> Vec<u8> {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(ours))
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        let mut request = http::Request::new(Empty::<Bytes>::new());
        *request.method_mut() = method;
        *request.uri_mut() = target.parse().unwrap();
        *request.headers_mut() = headers;
        let _pending = tokio::spawn(async move { sender.send_request(request).await });
        let head = read_head(&mut theirs).await;
        driver.abort();
        head
    }

    /// The head hyper's HTTP/1 server writes for a response with a
    /// 5-byte body (`date` and `content-length: 5` given, so it adds none).
    async fn hyper_response_bytes(status: StatusCode, headers: HeaderMap) -> Vec<u8> {
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let service = hyper::service::service_fn(move |_request| {
            let mut response = http::Response::new(Full::new(Bytes::from_static(b"hello")));
            *response.status_mut() = status;
            *response.headers_mut() = headers.clone();
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        let server = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(ours), service);
        let driver = tokio::spawn(server);
        theirs.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let head = read_head(&mut theirs).await;
        driver.abort();
        head
    }

    #[tokio::test]
    async fn a_request_head_is_what_hyper_writes() {
        let headers = fields(&[
            ("host", "example.test"),
            ("x-b", "2"),
            ("accept", "*/*"),
            ("x-b", "3"),
            ("x-forwarded-for", "127.0.0.1"),
        ]);
        let mut ours = Vec::new();
        request_head(&mut ours, &Method::GET, "/a/b?c=d", &headers);
        let theirs = hyper_request_bytes(Method::GET, "/a/b?c=d", headers).await;
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            String::from_utf8(theirs).unwrap()
        );
    }

    #[tokio::test]
    async fn a_response_head_is_what_hyper_writes() {
        for status in [200, 404, 302, 503, 299, 599, 101] {
            let status = StatusCode::from_u16(status).unwrap();
            let headers = fields(&[
                ("date", "Sun, 06 Dec 2026 15:00:00 GMT"),
                ("connection", "keep-alive"),
                ("content-length", "5"),
                ("connection", "x-private"),
                ("set-cookie", "Session-A=x; Path=/; HttpOnly"),
                ("cache-control", "private"),
            ]);
            let mut ours = Vec::new();
            response_head(&mut ours, status, &headers);
            let theirs = hyper_response_bytes(status, headers).await;
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }

    #[tokio::test]
    async fn a_backend_reason_is_written_as_hyper_writes_it() {
        for reason in ["Fine", "", "Not Found"] {
            let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
            let service = hyper::service::service_fn(move |_request| async move {
                let mut response = http::Response::new(Empty::<Bytes>::new());
                let phrase = hyper::ext::ReasonPhrase::try_from(reason.as_bytes()).unwrap();
                response.extensions_mut().insert(phrase);
                let date = HeaderValue::from_static("Sun, 06 Dec 2026 15:00:00 GMT");
                response.headers_mut().insert(http::header::DATE, date);
                Ok::<_, std::convert::Infallible>(response)
            });
            let server = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(ours), service);
            let driver = tokio::spawn(server);
            theirs.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            let hyper_head = read_head(&mut theirs).await;
            driver.abort();
            let mut ours = Vec::new();
            let headers = fields(&[
                ("date", "Sun, 06 Dec 2026 15:00:00 GMT"),
                ("content-length", "0"),
            ]);
            response_head_with_reason(&mut ours, StatusCode::OK, Some(reason.as_bytes()), &headers);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(hyper_head).unwrap()
            );
        }
    }

    #[test]
    fn heads_are_appended_with_one_reservation() {
        let headers = fields(&[("host", "a"), ("x", "1")]);
        let mut out = b"before".to_vec();
        out.shrink_to_fit();
        request_head(&mut out, &Method::POST, "/", &headers);
        assert_eq!(out, b"beforePOST / HTTP/1.1\r\nhost: a\r\nx: 1\r\n\r\n");
        assert_eq!(out.len(), out.capacity());
        let mut out = Vec::new();
        response_head(&mut out, StatusCode::OK, &HeaderMap::new());
        assert_eq!(out, b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(out.len(), out.capacity());
    }

    fn method() -> impl Strategy<Value = Method> {
        prop_oneof![
            Just(Method::GET),
            Just(Method::POST),
            Just(Method::DELETE),
            "[A-Z]{1,20}".prop_map(|m| Method::from_bytes(m.as_bytes()).unwrap()),
        ]
    }

    fn field() -> impl Strategy<Value = (HeaderName, HeaderValue)> {
        (
            "[a-z0-9!#$%&'*+.^_`|~-]{1,20}",
            "([!-~]([ \t!-~]{0,30}[!-~])?)?",
        )
            .prop_filter_map("a framing field", |(name, value)| {
                let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
                // Framing fields with arbitrary values are the framing
                // tests' business, not this round trip's.
                let framing = [
                    http::header::CONTENT_LENGTH,
                    http::header::TRANSFER_ENCODING,
                ];
                (!framing.contains(&name)).then_some((name, HeaderValue::from_str(&value).ok()?))
            })
    }

    proptest! {
        #[test]
        fn an_encoded_request_head_parses_back(
            method in method(),
            target in "/[A-Za-z0-9._~!$&'()*+,;=:@/?%-]{0,40}",
            pairs in proptest::collection::vec(field(), 0..20),
        ) {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(name, value);
            }
            let mut out = Vec::new();
            request_head(&mut out, &method, &target, &headers);
            out.extend_from_slice(b"next");
            let limits = Limits { max_head_bytes: 64 * 1024, max_headers: 100 };
            // A target `http::Uri` refuses is not one a parsed head carries.
            prop_assume!(target.parse::<http::Uri>().is_ok());
            let head = head::parse_request(&out, &limits);
            prop_assume!(!matches!(head, Err(head::HeadError::Bad("several Host fields"))));
            let head = head.unwrap();
            prop_assert_eq!(head.len, out.len() - 4);
            prop_assert_eq!(&head.parts.method, &method);
            prop_assert_eq!(head.parts.uri.to_string(), target);
            let got: Vec<_> = head.parts.headers.iter().collect();
            let want: Vec<_> = headers.iter().collect();
            prop_assert_eq!(got, want);
        }
    }
}
