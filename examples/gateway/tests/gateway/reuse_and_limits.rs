//! Issue 12, findings 1–3, reproduced with raw bytes on real sockets:
//! connection reuse across clients, upstream fan-out and idle HTTP/2, and
//! the size of a request head.

use crate::raw::{RawBackend, cl0_backend, eventually, read_response};
use crate::support::gateway;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Sends `request` on a new connection and reads one response: its status
/// line and body (`Content-Length` framed). Empty status: no answer.
fn exchange(addr: &str, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(request).expect("write");
    read_response(&mut s)
}

/// The attacker's request, then 50 ms later the victim's on its own
/// connection; returns the victim's body.
fn attack(gw: &str) -> String {
    let smuggled = "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n";
    let attack = format!(
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let (status, body) = exchange(gw, attack.as_bytes());
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, "x");
    std::thread::sleep(Duration::from_millis(50));
    let (status, body) = exchange(gw, b"GET /victim HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    body
}

#[test]
fn a_first_request_never_rides_a_connection_another_client_used() {
    let backend = cl0_backend();
    let flag = format!("backend={}", backend.addr);
    let gw = gateway(&["--threads", "1", "--backend", &flag]);
    for trial in 0..3 {
        assert_eq!(attack(&gw.addr), "/victim", "trial {trial}");
    }
    drop(gw);
    // The aggressive mode reuses any idle connection: the reproduction
    // shows why it is not the default.
    let gw = gateway(&[
        "--threads",
        "1",
        "--backend",
        &flag,
        "--http-reuse",
        "always",
    ]);
    assert_eq!(attack(&gw.addr), "smuggled /slow");
}

/// A backend that takes `delay` per request and records the most requests
/// it had in flight at once.
fn slow_backend(delay: Duration) -> (RawBackend, Arc<AtomicUsize>) {
    let now = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&most);
    let backend = RawBackend::start(move |req| {
        let n = now.fetch_add(1, Ordering::SeqCst) + 1;
        most.fetch_max(n, Ordering::SeqCst);
        std::thread::sleep(delay);
        now.fetch_sub(1, Ordering::SeqCst);
        req.reply("{\"pod\": \"slow\"}");
    });
    (backend, seen)
}

/// `n` clients at once, each on its own connection; their status lines.
fn concurrent(addr: &str, n: usize) -> Vec<String> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let addr = addr.to_owned();
            std::thread::spawn(move || exchange(&addr, b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n").0)
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect()
}

#[test]
fn upstream_connections_are_capped_per_endpoint_then_queued_then_503() {
    let (backend, most) = slow_backend(Duration::from_millis(300));
    let flag = format!("backend={}", backend.addr);
    let gw = gateway(&[
        "--threads",
        "1",
        "--backend",
        &flag,
        "--max-upstream-connections",
        "2",
    ]);
    let statuses = concurrent(&gw.addr, 8);
    assert!(
        statuses.iter().all(|s| s.starts_with("HTTP/1.1 200")),
        "queued, then served: {statuses:?}"
    );
    let most = most.load(Ordering::SeqCst);
    assert!((1..=2).contains(&most), "{most} requests at once upstream");
    drop(gw);

    let (backend, _) = slow_backend(Duration::from_millis(1500));
    let flag = format!("backend={}", backend.addr);
    let gw = gateway(&[
        "--threads",
        "1",
        "--backend",
        &flag,
        "--max-upstream-connections",
        "1",
        "--upstream-queue-timeout",
        "100ms",
    ]);
    let statuses = concurrent(&gw.addr, 4);
    let busy = statuses
        .iter()
        .filter(|s| s.starts_with("HTTP/1.1 503"))
        .count();
    assert!(busy >= 1, "the queue gives up: {statuses:?}");
    assert!(
        statuses.iter().any(|s| s.starts_with("HTTP/1.1 200")),
        "{statuses:?}"
    );
}

/// HTTP/2 frames from `s` until it closes or `limit` passes, answering
/// PINGs as a live client does: (type, payload) of each, and whether it
/// closed.
fn h2_frames(s: &mut TcpStream, limit: Duration) -> (Vec<(u8, Vec<u8>)>, bool) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = std::time::Instant::now() + limit;
    let mut got = Vec::new();
    let mut frames = Vec::new();
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (frames, true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return (frames, true),
        }
        // Whole frames: 9-byte header (length, type, flags, stream), payload.
        while got.len() >= 9 {
            let len =
                (usize::from(got[0]) << 16) | (usize::from(got[1]) << 8) | usize::from(got[2]);
            if got.len() < 9 + len {
                break;
            }
            let (kind, flags) = (got[3], got[4]);
            let payload = got[9..9 + len].to_vec();
            if kind == 0x6 && flags & 1 == 0 {
                let mut ack = vec![0, 0, 8, 0x6, 1, 0, 0, 0, 0];
                ack.extend_from_slice(&payload);
                let _ = s.write_all(&ack);
            }
            frames.push((kind, payload));
            got.drain(..9 + len);
        }
    }
    (frames, false)
}

#[test]
fn idle_h2c_connections_are_closed_and_streams_are_bounded() {
    let gw = gateway(&["--threads", "1", "--h2-idle-timeout", "1s"]);
    let mut s = TcpStream::connect(&gw.addr).expect("connect");
    // The client preface and an empty SETTINGS frame.
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .expect("preface");
    let (frames, closed) = h2_frames(&mut s, Duration::from_secs(20));
    let settings = frames
        .iter()
        .find(|(t, _)| *t == 0x4)
        .map(|(_, p)| p.clone())
        .expect("the server's SETTINGS");
    let max_streams = settings
        .chunks(6)
        .find(|e| e.len() == 6 && e[..2] == [0, 3])
        .map(|e| u32::from_be_bytes([e[2], e[3], e[4], e[5]]));
    assert_eq!(max_streams, Some(100), "SETTINGS_MAX_CONCURRENT_STREAMS");
    assert!(
        frames.iter().any(|(t, _)| *t == 0x7),
        "GOAWAY after the idle timeout: {frames:?}"
    );
    assert!(closed, "and the connection closes");
}

#[test]
fn client_connections_beyond_the_limit_wait_in_the_backlog() {
    let gw = gateway(&["--threads", "1", "--max-connections", "2"]);
    let first = TcpStream::connect(&gw.addr).expect("connect");
    let second = TcpStream::connect(&gw.addr).expect("connect");
    // The two are accepted (a request on one is answered).
    let mut probe = first.try_clone().expect("clone");
    probe
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    probe
        .write_all(b"GET /get HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("write");
    assert!(read_response(&mut probe).0.starts_with("HTTP/1.1 200"));
    let mut third = TcpStream::connect(&gw.addr).expect("the kernel's backlog takes it");
    third
        .write_all(b"GET /get HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("write");
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    assert!(
        third.read(&mut byte).is_err(),
        "not served while two connections are open"
    );
    drop((first, probe, second));
    third
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let (status, _) = read_response(&mut third);
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "served once one closed: {status:?}"
    );
    // Later connections are accepted as usual.
    assert!(eventually(Duration::from_secs(20), || exchange(
        &gw.addr,
        b"GET /get HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    .0
    .starts_with("HTTP/1.1 200")));
}

#[test]
fn heads_beyond_16_kib_or_100_fields_get_431() {
    let gw = gateway(&["--threads", "1"]);
    let big = format!(
        "GET /get HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20 * 1024)
    );
    assert_eq!(
        exchange(&gw.addr, big.as_bytes()).0,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET /get HTTP/1.1\r\nHost: a\r\n{many}\r\n");
    assert!(
        exchange(&gw.addr, many.as_bytes())
            .0
            .starts_with("HTTP/1.1 431")
    );
    // An unfinished head is refused once it passes the limit, not buffered
    // until the header-read timeout.
    let mut s = TcpStream::connect(&gw.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(format!("GET / HTTP/1.1\r\nX-Long: {}", "b".repeat(64 * 1024)).as_bytes())
        .expect("write");
    assert!(read_response(&mut s).0.starts_with("HTTP/1.1 431"));
    drop(gw);
    // The limit is a flag.
    let gw = gateway(&["--threads", "1", "--max-header-bytes", "65536"]);
    assert!(
        exchange(&gw.addr, big.as_bytes())
            .0
            .starts_with("HTTP/1.1 200")
    );
}

/// Open descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn idle_upstream_connections_are_closed_after_a_while() {
    // Under --http-reuse always the upstream connections of clients that
    // left stay in the worker's pool (under safe they close with their
    // client: tests/gateway/ownership.rs). Twelve clients at once on a
    // slow backend need twelve of them.
    let (backend, _) = slow_backend(Duration::from_millis(300));
    let flag = format!("backend={}", backend.addr);
    let gw = gateway(&[
        "--threads",
        "1",
        "--backend",
        &flag,
        "--http-reuse",
        "always",
    ]);
    assert!(concurrent(&gw.addr, 1)[0].starts_with("HTTP/1.1 200"));
    let base = open_fds(gw.pid());
    let statuses = concurrent(&gw.addr, 12);
    assert!(
        statuses.iter().all(|s| s.starts_with("HTTP/1.1 200")),
        "{statuses:?}"
    );
    assert!(
        eventually(Duration::from_secs(5), || open_fds(gw.pid()) >= base + 10),
        "the pool did not grow: {} descriptors, {base} before",
        open_fds(gw.pid())
    );
    // Unused for UPSTREAM_IDLE_MAX (5 s), they are closed.
    assert!(
        eventually(Duration::from_secs(30), || open_fds(gw.pid()) <= base),
        "idle upstream connections stayed open: {} descriptors, {base} before",
        open_fds(gw.pid())
    );
}
