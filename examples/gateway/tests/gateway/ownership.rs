//! Issue 17, point 1: a client connection owns the upstream connections it
//! opens (`--http-reuse safe`). Raw bytes on real sockets, as an attacker
//! would send them.

use crate::raw::{cl0_backend, read_response};
use crate::support::gateway;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// A keep-alive client connection to the gateway.
fn client(gw: &str) -> TcpStream {
    let s = TcpStream::connect(gw).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

/// `GET path` on `s`; the body of a 200.
fn get(s: &mut TcpStream, path: &str) -> String {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .expect("write");
    let (status, body) = read_response(s);
    assert!(status.starts_with("HTTP/1.1 200"), "{path}: {status:?}");
    body
}

/// The keep-alive victim variant of issue 17: the victim's connection
/// serves one request; the attacker, on another connection, smuggles a
/// `GET /slow` in a POST body and leaves; 50 ms later the victim's second
/// request. Returns the body the victim got for it.
fn keep_alive_attack(gw: &str) -> String {
    let mut victim = client(gw);
    assert_eq!(get(&mut victim, "/victim-1"), "/victim-1");
    let smuggled = "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n";
    let attack = format!(
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let mut attacker = client(gw);
    attacker.write_all(attack.as_bytes()).expect("write");
    let (status, body) = read_response(&mut attacker);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert_eq!(body, "x");
    drop(attacker);
    std::thread::sleep(Duration::from_millis(50));
    victim
        .write_all(b"GET /victim-2 HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("write");
    read_response(&mut victim).1
}

#[test]
fn a_keep_alive_client_never_gets_a_response_smuggled_by_another() {
    let backend = cl0_backend();
    let flag = format!("backend={}", backend.addr);
    let gw = gateway(&["--threads", "1", "--backend", &flag]);
    let smuggled = (0..5)
        .filter(|_| keep_alive_attack(&gw.addr) != "/victim-2")
        .count();
    assert_eq!(smuggled, 0, "victims given another client's response, of 5");
    drop(gw);
    // The control: `--http-reuse always` shares idle connections between
    // clients, and the victim gets the attacker's smuggled response.
    let gw = gateway(&[
        "--threads",
        "1",
        "--backend",
        &flag,
        "--http-reuse",
        "always",
    ]);
    assert_eq!(keep_alive_attack(&gw.addr), "smuggled /slow");
}

/// What a [`WatchedBackend`] saw on one upstream connection.
#[derive(Debug, PartialEq)]
enum Seen {
    /// A request head arrived, for this path.
    Request(String),
    /// The gateway closed the connection (EOF or reset).
    Closed,
}

/// A backend that answers every request with its path, reports each
/// connection's requests and its close (numbered by accept order), and
/// does `after` with the socket once it has answered the first request.
struct WatchedBackend {
    addr: String,
    seen: Receiver<(usize, Seen)>,
}

/// What a [`WatchedBackend`] does on an idle connection after its first
/// answer.
#[derive(Clone, Copy)]
enum After {
    Nothing,
    /// Writes one stray byte.
    StrayByte,
    /// Half-closes (FIN), and keeps reading.
    HalfClose,
}

impl WatchedBackend {
    fn start(after: After) -> WatchedBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let (tx, seen) = channel();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let tx = tx.clone();
                std::thread::spawn(move || watch(n, stream, after, &tx));
            }
        });
        WatchedBackend { addr, seen }
    }

    /// The next event, waiting at most 10 s.
    fn next(&self) -> Option<(usize, Seen)> {
        self.seen.recv_timeout(Duration::from_secs(10)).ok()
    }
}

fn watch(n: usize, mut s: TcpStream, after: After, tx: &std::sync::mpsc::Sender<(usize, Seen)>) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered = 0;
    // Bounded: every turn reads or answers, and reads time out.
    for _ in 0..10_000 {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            got.drain(..end + 4);
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            let _ = tx.send((n, Seen::Request(path.clone())));
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{path}",
                path.len()
            );
            answered += 1;
            if answered == 1 {
                match after {
                    After::Nothing => {}
                    After::StrayByte => {
                        let _ = s.write_all(b"X");
                    }
                    After::HalfClose => {
                        let _ = s.shutdown(Shutdown::Write);
                    }
                }
            }
            continue;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = tx.send((n, Seen::Closed));
                return;
            }
            Ok(k) => got.extend_from_slice(&buf[..k]),
        }
    }
}

#[test]
fn a_client_connection_reuses_its_own_upstream_connection_and_it_closes_with_it() {
    let backend = WatchedBackend::start(After::Nothing);
    let flag = format!("backend={}", backend.addr);
    let gw = gateway(&["--threads", "1", "--backend", &flag]);
    let mut first = client(&gw.addr);
    let mut second = client(&gw.addr);
    assert_eq!(get(&mut first, "/a1"), "/a1");
    assert_eq!(backend.next(), Some((0, Seen::Request("/a1".into()))));
    // Another client connection, while the first is alive and idle: a
    // connection of its own.
    assert_eq!(get(&mut second, "/b1"), "/b1");
    assert_eq!(backend.next(), Some((1, Seen::Request("/b1".into()))));
    // Each reuses its own.
    assert_eq!(get(&mut first, "/a2"), "/a2");
    assert_eq!(backend.next(), Some((0, Seen::Request("/a2".into()))));
    assert_eq!(get(&mut second, "/b2"), "/b2");
    assert_eq!(backend.next(), Some((1, Seen::Request("/b2".into()))));
    // The first client leaves: its upstream connection is closed, not
    // pooled for others.
    drop(first);
    assert_eq!(backend.next(), Some((0, Seen::Closed)));
    let mut third = client(&gw.addr);
    assert_eq!(get(&mut third, "/c1"), "/c1");
    assert_eq!(backend.next(), Some((2, Seen::Request("/c1".into()))));
}

/// An idle upstream connection that does `after` is closed at once, and
/// the client's next request goes out on a fresh one.
fn idle_connection_closed_after(after: After) {
    let backend = WatchedBackend::start(after);
    let flag = format!("backend={}", backend.addr);
    let gw = gateway(&["--threads", "1", "--backend", &flag]);
    let mut c = client(&gw.addr);
    assert_eq!(get(&mut c, "/1"), "/1");
    assert_eq!(backend.next(), Some((0, Seen::Request("/1".into()))));
    assert_eq!(
        backend.next(),
        Some((0, Seen::Closed)),
        "the gateway closes the idle connection"
    );
    assert_eq!(get(&mut c, "/2"), "/2");
    assert_eq!(backend.next(), Some((1, Seen::Request("/2".into()))));
}

#[test]
fn an_idle_upstream_connection_that_receives_a_byte_is_closed_at_once() {
    idle_connection_closed_after(After::StrayByte);
}

#[test]
fn an_idle_upstream_connection_that_half_closes_is_closed_at_once() {
    idle_connection_closed_after(After::HalfClose);
}

#[test]
fn under_http_reuse_never_every_request_has_a_connection_of_its_own() {
    let backend = WatchedBackend::start(After::Nothing);
    let flag = format!("backend={}", backend.addr);
    let gw = gateway(&[
        "--threads",
        "1",
        "--backend",
        &flag,
        "--http-reuse",
        "never",
    ]);
    let mut c = client(&gw.addr);
    assert_eq!(get(&mut c, "/1"), "/1");
    assert_eq!(backend.next(), Some((0, Seen::Request("/1".into()))));
    assert_eq!(backend.next(), Some((0, Seen::Closed)));
    assert_eq!(get(&mut c, "/2"), "/2");
    assert_eq!(backend.next(), Some((1, Seen::Request("/2".into()))));
    assert_eq!(backend.next(), Some((1, Seen::Closed)));
}
