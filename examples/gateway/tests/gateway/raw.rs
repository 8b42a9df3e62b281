//! A raw HTTP/1 test backend on 127.0.0.1: a thread per connection reads
//! request heads itself and lets the test answer them byte by byte, so a
//! test can be a backend with a bug (a CL.0 desync), a slow one, or one that
//! reports each request as it arrives (to synchronise without sleeping).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// How long a connection thread waits for bytes before it gives up.
const IDLE: Duration = Duration::from_secs(20);

/// What a handler is given for one request head.
pub struct Request<'a> {
    /// The head, request line included, without the final blank line.
    pub head: String,
    /// The connection, to answer on.
    pub stream: &'a mut TcpStream,
}

impl Request<'_> {
    /// The request line's path.
    pub fn path(&self) -> &str {
        self.head.split(' ').nth(1).unwrap_or("")
    }

    /// Answers 200 with `body` and `Content-Length`.
    pub fn reply(&mut self, body: &str) {
        let _ = write!(
            self.stream,
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = self.stream.flush();
    }
}

/// A running raw backend; stops accepting when dropped.
pub struct RawBackend {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// Each request head (its request line and headers) as it arrives.
    pub heads: Receiver<String>,
    stop: Arc<AtomicBool>,
}

impl RawBackend {
    /// Serves every request head with `handler`, one thread per connection.
    pub fn start<F>(handler: F) -> RawBackend
    where
        F: Fn(&mut Request<'_>) + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a raw backend");
        let addr = listener.local_addr().expect("addr").to_string();
        let (tx, heads) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let s = Arc::clone(&stop);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (tx, handler) = (tx.clone(), Arc::clone(&handler));
                std::thread::spawn(move || serve(stream, &tx, &*handler));
            }
        });
        RawBackend { addr, heads, stop }
    }

    /// The next request head, waiting at most `limit` (polled every
    /// 10 ms, without blocking the runtime).
    pub async fn next_head_async(&self, limit: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(head) = self.heads.try_recv() {
                return Some(head);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve(mut stream: TcpStream, heads: &Sender<String>, handler: &dyn Fn(&mut Request<'_>)) {
    let _ = stream.set_read_timeout(Some(IDLE));
    let mut rest = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: every turn reads bytes or handles a head, and reads time out.
    for _ in 0..100_000 {
        if let Some(end) = rest.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&rest[..end]).into_owned();
            rest.drain(..end + 4);
            let _ = heads.send(head.clone());
            // The body, if any, stays in `rest`: a handler that does not
            // read it (a CL.0 backend) sees it as the next request.
            handler(&mut Request {
                head,
                stream: &mut stream,
            });
            continue;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => rest.extend_from_slice(&buf[..n]),
        }
    }
}

/// Polls `check` every 20 ms until it holds or `limit` passes; says whether
/// it held.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `Content-Length` of a response or request head (0 without one).
pub fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

/// One response from `s`: its status line and its `Content-Length` body.
/// An empty status line: no (whole) answer before the peer closed or the
/// read timed out; the body is then what arrived.
pub fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded by the read timeout and the byte count.
    while got.len() < 1 << 20 {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let len = content_length(&head);
            if got.len() >= end + 4 + len {
                let body = String::from_utf8_lossy(&got[end + 4..end + 4 + len]).into_owned();
                return (head.lines().next().unwrap_or("").to_owned(), body);
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (String::new(), String::from_utf8_lossy(&got).into_owned())
}

/// A backend with a CL.0 bug: it answers `POST /x` without reading the
/// body, then takes the body for a second request, `/slow`, and answers it
/// a second later. Everything else gets its path back.
pub fn cl0_backend() -> RawBackend {
    RawBackend::start(|req| match req.path() {
        "/x" => req.reply("x"),
        "/slow" => {
            std::thread::sleep(Duration::from_millis(1000));
            req.reply("smuggled /slow");
        }
        path => {
            let path = path.to_owned();
            req.reply(&path);
        }
    })
}
