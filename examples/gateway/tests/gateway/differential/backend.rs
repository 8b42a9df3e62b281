//! The recording backend: a 127.0.0.1 TCP server that reads every request
//! the gateway sends with its own parser (httparse for the head, the
//! framing by hand), records it by the client it came for, and answers
//! with scripted bytes.
//!
//! Each case's client connects from an address of its own in 127/8, and
//! the gateway replaces `X-Forwarded-For` with that address, so a request
//! is attributed to its case however the cases interleave.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the backend answers a request with, unless its target picks a
/// script (`/resp/<n>`).
const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/// A request as the backend received it, in the parts the differential
/// test compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// A request that parsed: method, target, its header fields (names
    /// lower-cased, sorted, the gateway's own `via` and `x-forwarded-*`
    /// left out) and its de-framed body.
    Request {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// A request whose head parsed but whose body did not end (framing
    /// broken, or the connection closed first): the body bytes as received.
    Unfinished {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        received: String,
    },
    /// Bytes that are no request: the gateway sent garbage upstream.
    Garbage(String),
}

/// A scripted answer: its bytes, and whether the backend closes after it.
pub type Script = (Vec<u8>, bool);

/// A running recording backend; stops accepting when dropped.
pub struct Backend {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    seen: Arc<Mutex<Vec<(String, Upstream)>>>,
    open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Backend {
    /// Starts a backend that answers `/resp/<n>` with `scripts[n]` and
    /// everything else with a 2-byte 200.
    pub fn start(scripts: &'static [Script]) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the recording backend");
        let addr = listener.local_addr().expect("addr").to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, o, st) = (Arc::clone(&seen), Arc::clone(&open), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                o.fetch_add(1, Ordering::SeqCst);
                let (s, o) = (Arc::clone(&s), Arc::clone(&o));
                std::thread::spawn(move || {
                    serve(stream, &s, scripts);
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Backend {
            addr,
            seen,
            open,
            stop,
        }
    }

    /// Waits (polling, at most `limit`) until no gateway connection is open,
    /// then takes what was received, by client address.
    pub async fn take_when_idle(&self, limit: Duration) -> BTreeMap<String, Vec<Upstream>> {
        let deadline = std::time::Instant::now() + limit;
        while self.open.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut by_client: BTreeMap<String, Vec<Upstream>> = BTreeMap::new();
        for (client, up) in std::mem::take(&mut *self.seen.lock().expect("lock")) {
            by_client.entry(client).or_default().push(up);
        }
        by_client
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// One gateway connection: requests in, recorded, answered, until EOF.
fn serve(mut stream: TcpStream, seen: &Mutex<Vec<(String, Upstream)>>, scripts: &[Script]) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // Bounded: every turn reads bytes or consumes a request; reads time out.
    for _ in 0..100_000 {
        match parse_request(&buf) {
            Parsed::Partial => {}
            Parsed::Garbage => {
                seen.lock().expect("lock").push(unfinished(&buf));
                return;
            }
            Parsed::Complete(len, client, up) => {
                buf.drain(..len);
                let script = match &up {
                    Upstream::Request { target, .. } => target
                        .strip_prefix("/resp/")
                        .and_then(|n| n.parse::<usize>().ok())
                        .and_then(|n| scripts.get(n)),
                    _ => None,
                };
                seen.lock().expect("lock").push((client, up));
                let (bytes, close) = script.map_or((OK, false), |(b, c)| (b.as_slice(), *c));
                let _ = stream.write_all(bytes);
                if close {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                continue;
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    seen.lock().expect("lock").push(unfinished(&buf));
                }
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// What is left when a connection ends inside a request, or its framing
/// is broken: attributed to its client when the head parses.
fn unfinished(buf: &[u8]) -> (String, Upstream) {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut fields);
    let Ok(httparse::Status::Complete(head_len)) = req.parse(buf) else {
        let text = String::from_utf8_lossy(buf).into_owned();
        return (String::from("?"), Upstream::Garbage(text));
    };
    let (client, headers) = fields_of(req.headers);
    let up = Upstream::Unfinished {
        method: req.method.unwrap_or("").to_owned(),
        target: req.path.unwrap_or("").to_owned(),
        headers,
        received: String::from_utf8_lossy(&buf[head_len..]).into_owned(),
    };
    (client, up)
}

/// The client (`X-Forwarded-For`'s last element) and the compared fields:
/// names lower-cased, sorted, without `via` and `x-forwarded-*`. The
/// framing fields are kept here for the parser; `parse_request` takes them out.
fn fields_of(fields: &[httparse::Header<'_>]) -> (String, Vec<(String, String)>) {
    let mut client = String::from("?");
    let mut headers = Vec::new();
    for h in fields {
        let name = h.name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(h.value).into_owned();
        if name == "x-forwarded-for" {
            // The last element is the peer the gateway saw.
            client = value.rsplit(',').next().unwrap_or("").trim().to_owned();
        } else if name != "via" && !name.starts_with("x-forwarded-") {
            headers.push((name, value));
        }
    }
    headers.sort();
    (client, headers)
}

enum Parsed {
    Partial,
    Garbage,
    /// Bytes consumed, the client it came for, the request.
    Complete(usize, String, Upstream),
}

/// One request at the start of `buf`: head by httparse, body by its
/// `Content-Length` or chunked framing.
fn parse_request(buf: &[u8]) -> Parsed {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Garbage,
    };
    let (client, mut headers) = fields_of(req.headers);
    let mut length = None;
    let mut chunked = false;
    for (name, value) in &headers {
        match name.as_str() {
            "content-length" => match value.trim().parse::<usize>() {
                Ok(n) if length.is_none_or(|m| m == n) => length = Some(n),
                _ => return Parsed::Garbage,
            },
            "transfer-encoding" => chunked = value.trim().eq_ignore_ascii_case("chunked"),
            _ => {}
        }
    }
    // The framing is compared through the de-framed body: hyper sends a
    // buffered (retryable) body with `content-length`, the lean path
    // forwards a chunked one as it came.
    headers.retain(|(name, _)| name != "content-length" && name != "transfer-encoding");
    let body = &buf[head_len..];
    let (body_len, body) = if chunked {
        if length.is_some() {
            return Parsed::Garbage;
        }
        match dechunk(body) {
            Dechunked::Partial => return Parsed::Partial,
            Dechunked::Bad => return Parsed::Garbage,
            Dechunked::Done(n, data) => (n, data),
        }
    } else {
        let n = length.unwrap_or(0);
        if body.len() < n {
            return Parsed::Partial;
        }
        (n, body[..n].to_vec())
    };
    Parsed::Complete(
        head_len + body_len,
        client,
        Upstream::Request {
            method: req.method.unwrap_or("").to_owned(),
            target: req.path.unwrap_or("").to_owned(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        },
    )
}

/// A chunked body's framing followed by hand (strictly: hex sizes,
/// extensions ignored, CRLF line ends, trailers skipped).
pub enum Dechunked {
    Partial,
    Bad,
    /// Bytes of framing consumed, the data.
    Done(usize, Vec<u8>),
}

/// De-frames the chunked body at the start of `buf`.
pub fn dechunk(buf: &[u8]) -> Dechunked {
    let mut data = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = find_crlf(&buf[at..]) else {
            return Dechunked::Partial;
        };
        let line = &buf[at..at + eol];
        let size = line.split(|&b| b == b';').next().unwrap_or(b"");
        let Some(size) = std::str::from_utf8(size)
            .ok()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| usize::from_str_radix(s, 16).ok())
        else {
            return Dechunked::Bad;
        };
        at += eol + 2;
        if size == 0 {
            // Trailer fields, then the empty line.
            loop {
                let Some(eol) = find_crlf(&buf[at..]) else {
                    return Dechunked::Partial;
                };
                at += eol + 2;
                if eol == 0 {
                    return Dechunked::Done(at, data);
                }
            }
        }
        if buf.len() < at + size + 2 {
            return Dechunked::Partial;
        }
        data.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Dechunked::Bad;
        }
        at += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}
