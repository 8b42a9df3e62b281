//! Issue 17, point 2: retries the RFC allows (RFC 9110 §9.2.2). A request
//! that may have been acted on is never sent again unless its method is
//! idempotent; one that provably was not (a refused connection) moves on.

use crate::raw::{content_length, read_response};
use crate::support::{Http, echoes, open, seed_gateway, visit};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A keep-alive backend that answers every GET with its path, and reads
/// every POST whole (acting on it: `posts` counts it), then resets the
/// connection without answering, as a crashing handler does.
struct PostResetter {
    addr: String,
}

impl PostResetter {
    fn start(posts: &Arc<AtomicUsize>) -> PostResetter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let posts = Arc::clone(posts);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let posts = Arc::clone(&posts);
                std::thread::spawn(move || serve(stream, &posts));
            }
        });
        PostResetter { addr }
    }
}

fn serve(mut s: TcpStream, posts: &AtomicUsize) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: every turn reads or answers, and reads time out.
    for _ in 0..10_000 {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let len = content_length(&head);
            if got.len() < end + 4 + len {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
                continue;
            }
            got.drain(..end + 4 + len);
            if head.starts_with("POST ") {
                posts.fetch_add(1, Ordering::SeqCst);
                reset(s);
                return;
            }
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{path}",
                path.len()
            );
            continue;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Closes `s` with a reset (RST), as a crashing process does.
fn reset(s: TcpStream) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let _ = s.set_nonblocking(true);
        if let Ok(s) = tokio::net::TcpStream::from_std(s) {
            let _ = s.set_zero_linger();
        }
    });
}

fn post(s: &mut TcpStream, body_len: usize) -> (String, String) {
    let body = "p".repeat(body_len);
    write!(
        s,
        "POST /order HTTP/1.1\r\nHost: a\r\nContent-Length: {body_len}\r\n\r\n{body}"
    )
    .expect("write");
    read_response(s)
}

fn client(gw: &str) -> TcpStream {
    let s = TcpStream::connect(gw).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s
}

const NOT_REPLAYED: &str = "502 bad gateway: the backend failed after the request was sent; it is not sent again, as it may have been acted on\n";

/// Two pods that both act on POSTs and reset, so that a replay anywhere
/// would be counted; the gateway in front, with `extra` flags.
fn two_post_resetters(
    extra: &[&str],
) -> (Arc<AtomicUsize>, crate::support::Proc, [PostResetter; 2]) {
    let posts = Arc::new(AtomicUsize::new(0));
    let pods = [PostResetter::start(&posts), PostResetter::start(&posts)];
    let flag = format!("backend={},{}", pods[0].addr, pods[1].addr);
    let mut args = vec!["--threads", "1", "--backend", &flag];
    args.extend_from_slice(extra);
    (posts, crate::support::gateway(&args), pods)
}

#[test]
fn a_post_a_backend_acted_on_then_reset_runs_once_and_gets_502_fresh_and_keep_alive() {
    let (posts, gw, _pods) = two_post_resetters(&[]);
    // On a fresh client connection.
    let (status, body) = post(&mut client(&gw.addr), 2048);
    assert!(status.starts_with("HTTP/1.1 502"), "{status}");
    assert_eq!(body, NOT_REPLAYED);
    assert_eq!(posts.load(Ordering::SeqCst), 1, "the POST ran once");
    // As the second request of a keep-alive connection (it once ran three
    // times: on a fresh connection to the same pod, then on another pod).
    let mut c = client(&gw.addr);
    write!(c, "GET /first HTTP/1.1\r\nHost: a\r\n\r\n").expect("write");
    let (status, body) = read_response(&mut c);
    assert!(status.starts_with("HTTP/1.1 200"), "{status} {body}");
    let (status, body) = post(&mut c, 2048);
    assert!(status.starts_with("HTTP/1.1 502"), "{status}");
    assert_eq!(body, NOT_REPLAYED);
    assert_eq!(posts.load(Ordering::SeqCst), 2, "the second POST ran once");
}

#[test]
fn with_retry_buffer_0_an_empty_post_is_never_replayed() {
    let (posts, gw, _pods) = two_post_resetters(&["--retry-buffer", "0"]);
    let (status, body) = post(&mut client(&gw.addr), 0);
    assert!(status.starts_with("HTTP/1.1 502"), "{status}");
    assert_eq!(body, NOT_REPLAYED);
    assert_eq!(posts.load(Ordering::SeqCst), 1, "the POST ran once");
}

#[tokio::test]
async fn gets_pinned_to_a_dead_endpoint_are_answered_by_another_0_failed_of_20() {
    let (mut pods, backend) = echoes(2);
    let gw = seed_gateway(&backend, &[]);
    let http = Http::new();
    let sessions = open(&http, &gw, 40).await;
    let pinned: Vec<_> = sessions
        .iter()
        .filter(|s| s.pod == "echo-0")
        .take(20)
        .collect();
    assert_eq!(pinned.len(), 20, "20 sessions on echo-0");
    pods[0].kill();
    let mut failed = 0;
    for s in pinned {
        let r = visit(&http, &gw, s).await;
        if r.status != 200 || r.pod() != "echo-1" {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "failed of 20");
}
