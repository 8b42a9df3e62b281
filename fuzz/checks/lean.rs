//! The lean HTTP/1 path (`tower_sticky_gateway::listen::lean`, issue 21)
//! over in-memory streams: arbitrary client bytes, and arbitrary bytes
//! from the backends.
//!
//! * no panic, and no hang (every stream ends, so the path must finish);
//! * no desynchronisation: every request a backend received parses by
//!   itself, and is one the client sent that the path's own parser
//!   accepted, in the client's order, with the same method, target
//!   (origin-form) and body bytes; a request a backend may have acted on
//!   goes again only if its method is idempotent; nothing is sent upstream
//!   after what the client sent (count of requests upstream ≤ requests
//!   accepted, retries of idempotent ones aside);
//! * the client receives a well-formed sequence of responses, at most one
//!   per request plus one refusal, the last of which may be cut short
//!   (a backend that died mid-body).
//!
//! Shared by the `lean` fuzz target and the gateway's corpus replay test.
//! Input layout: one flag byte (bit 0: the backends keep their
//! connections open), two bytes (little-endian) for the length of the
//! client's part, the client's bytes, then the backends' reply.

use tower_sticky_gateway::listen::lean::chunked::Chunked;
use tower_sticky_gateway::listen::lean::fuzzing::{self, Backend, Run};
use tower_sticky_gateway::listen::lean::head::{self, Framing};

/// The gateway's defaults (`--max-header-bytes`, `--max-headers`).
const LIMITS: head::Limits = head::Limits {
    max_head_bytes: 16 * 1024,
    max_headers: 100,
};

/// Times an idempotent request may reach backends: the first send, a
/// retry after a failure once written, one more when a reused socket died.
const MOST_SENDS: usize = 3;

/// Checks one fuzz input; panics on any violation.
pub fn run(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((len, rest)) = rest.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (client, reply) = rest.split_at(split);
    let backend = Backend {
        reply: reply.to_vec(),
        keep_open: flags & 1 == 1,
    };
    let seen = fuzzing::run(client, backend);
    let accepted = accepted(client);
    check_upstream(&seen, &accepted);
    check_client(&seen, &accepted);
}

/// A request the path's parser accepts from the client's stream.
#[derive(Debug)]
struct Sent {
    method: String,
    /// Origin-form (path and query), as it goes upstream.
    target: String,
    /// The body's bytes as they came (chunked framing included).
    body: Vec<u8>,
    /// The whole body arrived.
    whole: bool,
    head: bool,
}

/// The client's requests, as far as the path's own parser reads them: the
/// stream stops at the first head it refuses. After an upgrade that
/// succeeded (a 101) or a hand-over to hyper, the rest are no requests of
/// this path; read as requests anyway they only widen what may go
/// upstream, and an upgrade that failed leaves a connection of requests.
fn accepted(mut stream: &[u8]) -> Vec<Sent> {
    let mut out = Vec::new();
    // Bounded: every turn consumes a head.
    while !stream.is_empty() {
        let Ok(req) = head::parse_request(stream, &LIMITS) else {
            break;
        };
        let parts = &req.parts;
        let body_bytes = &stream[req.len..];
        let (body_len, whole) = framed_len(req.framing, body_bytes);
        out.push(Sent {
            method: parts.method.as_str().to_owned(),
            // Origin-form: an authority-form or absolute target without a
            // path goes as `/`.
            target: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            body: body_bytes[..body_len].to_vec(),
            whole,
            head: parts.method == http::Method::HEAD,
        });
        if !whole {
            break;
        }
        stream = &body_bytes[body_len..];
    }
    out
}

/// How many of `bytes` the body framed by `framing` takes, and whether it
/// ended within them (a malformed chunked body: as far as it was read).
fn framed_len(framing: Framing, bytes: &[u8]) -> (usize, bool) {
    match framing {
        Framing::None => (0, true),
        Framing::Length(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            (n.min(bytes.len()), n <= bytes.len())
        }
        Framing::Chunked => {
            let mut chunked = Chunked::new();
            match chunked.feed(bytes) {
                Ok(n) => (n, chunked.done()),
                Err(_) => (bytes.len(), false),
            }
        }
        Framing::UntilClose => (bytes.len(), false),
    }
}

/// A request as a backend received it.
#[derive(Debug)]
struct Received {
    method: String,
    target: String,
    body: Vec<u8>,
    whole: bool,
    /// When its first byte arrived, across connections.
    at: usize,
}

/// Every connection's bytes parse as a sequence of requests (the last may
/// be cut short in its body), each one the client sent and the path
/// accepted, in order.
fn check_upstream(seen: &Run, accepted: &[Sent]) {
    let mut received = Vec::new();
    for (conn, bytes) in seen.upstream.iter().enumerate() {
        received.extend(requests_of(conn, bytes, seen));
    }
    received.sort_by_key(|r| r.at);
    let mut sends = vec![0usize; accepted.len()];
    let mut next = 0usize;
    for got in &received {
        // A later request (the path answers some itself: no Host, a
        // loop), or else the last one again (a retry). Two identical
        // requests in a row count as two, not as a retry.
        let later = (next..accepted.len()).find(|&k| matches(got, &accepted[k]));
        let again = next.checked_sub(1).filter(|&k| matches(got, &accepted[k]));
        let Some(k) = later.or(again) else {
            panic!(
                "a backend received a request the client did not send (or out of order): {got:?}\naccepted: {accepted:?}"
            );
        };
        sends[k] += 1;
        let idempotent = matches!(
            accepted[k].method.as_str(),
            "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE"
        );
        let most = if idempotent { MOST_SENDS } else { 1 };
        assert!(
            sends[k] <= most,
            "{} {} reached backends {} times",
            accepted[k].method,
            accepted[k].target,
            sends[k]
        );
        next = k + 1;
    }
}

/// The client's request `sent` is what a backend `got`: the same method,
/// target and body bytes (or a prefix of them, if the body was cut).
fn matches(got: &Received, sent: &Sent) -> bool {
    got.method == sent.method
        && got.target == sent.target
        && if got.whole {
            got.body == sent.body && sent.whole
        } else {
            sent.body.starts_with(&got.body)
        }
}

/// The requests in one connection's bytes; panics on bytes that are not.
fn requests_of(conn: usize, mut bytes: &[u8], seen: &Run) -> Vec<Received> {
    let total = bytes.len();
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let offset = total - bytes.len();
        let mut fields = [httparse::EMPTY_HEADER; 256];
        let mut req = httparse::Request::new(&mut fields);
        let head_len = match req.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "upstream connection {conn} got bytes that are no request head ({other:?}): {:?}",
                String::from_utf8_lossy(bytes)
            ),
        };
        // After an upgrade request the rest may be a tunnel's bytes.
        let upgrade = req
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("upgrade"));
        let framing = upstream_framing(req.headers);
        let body_bytes = &bytes[head_len..];
        let (body_len, whole) = framed_len(framing, body_bytes);
        let at = seen
            .arrivals
            .iter()
            .position(|&(c, end)| c == conn && end > offset)
            .unwrap_or(usize::MAX);
        out.push(Received {
            method: req.method.unwrap_or("").to_owned(),
            target: req.path.unwrap_or("").to_owned(),
            body: body_bytes[..body_len].to_vec(),
            whole,
            at,
        });
        if upgrade {
            break;
        }
        if !whole {
            assert_eq!(
                body_len,
                body_bytes.len(),
                "a cut body is the last thing on its connection"
            );
            break;
        }
        bytes = &body_bytes[body_len..];
    }
    out
}

/// The framing of a request the gateway wrote: one `content-length`, or
/// `transfer-encoding: chunked`, never both.
fn upstream_framing(fields: &[httparse::Header<'_>]) -> Framing {
    let value = |name: &str| {
        let mut all = fields.iter().filter(|h| h.name.eq_ignore_ascii_case(name));
        let first = all.next().map(|h| h.value);
        assert!(all.next().is_none(), "two {name} fields upstream");
        first
    };
    match (value("content-length"), value("transfer-encoding")) {
        (Some(_), Some(_)) => panic!("content-length and transfer-encoding upstream"),
        (Some(n), None) => {
            let n = std::str::from_utf8(n)
                .ok()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("a numeric content-length upstream");
            if n == 0 {
                Framing::None
            } else {
                Framing::Length(n)
            }
        }
        (None, Some(te)) => {
            assert!(
                te.eq_ignore_ascii_case(b"chunked"),
                "transfer-encoding upstream: {te:?}"
            );
            Framing::Chunked
        }
        (None, None) => Framing::None,
    }
}

/// What the client received is a sequence of responses, at most one per
/// accepted request plus a refusal; the last may be cut in its body.
fn check_client(seen: &Run, accepted: &[Sent]) {
    let mut bytes = &seen.to_client[..];
    let mut finals = 0;
    while !bytes.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 256];
        let mut resp = httparse::Response::new(&mut fields);
        let head_len = match resp.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "the client got bytes that are no response head ({other:?}): {:?}",
                String::from_utf8_lossy(bytes)
            ),
        };
        let code = resp.code.expect("a status code");
        if code == 101 {
            // A tunnel: the rest is not HTTP.
            return;
        }
        bytes = &bytes[head_len..];
        if (100..200).contains(&code) {
            continue;
        }
        let head = accepted.get(finals).is_some_and(|s| s.head);
        finals += 1;
        assert!(
            finals <= accepted.len() + 1,
            "{finals} responses to {} requests",
            accepted.len()
        );
        let framing = response_framing(code, head, resp.headers);
        let (len, whole) = framed_len(framing, bytes);
        if !whole {
            // Cut short (the backend died mid-body), or until close.
            return;
        }
        bytes = &bytes[len..];
    }
}

/// The body framing of a response the gateway wrote.
fn response_framing(code: u16, head: bool, fields: &[httparse::Header<'_>]) -> Framing {
    if head || code == 204 || code == 304 {
        return Framing::None;
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    };
    if field("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked")) {
        return Framing::Chunked;
    }
    match field("content-length") {
        Some(n) => {
            let n = std::str::from_utf8(n)
                .ok()
                .and_then(|n| n.trim().parse::<u64>().ok())
                .expect("a numeric content-length to the client");
            if n == 0 {
                Framing::None
            } else {
                Framing::Length(n)
            }
        }
        None => Framing::UntilClose,
    }
}
