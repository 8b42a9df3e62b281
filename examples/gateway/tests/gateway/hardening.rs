//! Issue 12, findings 4–6: errors blamed on the right side and retried only
//! when safe; the backend's own session cookie; Host.

use crate::failures::{Behaviour, RawBackend};
use crate::support::{Http, echo, seed_gateway};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw bytes to `addr` and reads until the peer closes (at most 5 s).
async fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The body of a raw response.
fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n").map_or("", |(_, b)| b)
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

#[tokio::test]
async fn a_malformed_chunked_body_from_the_client_gets_400_without_internal_text() {
    let backend = echo("echo-0");
    let gw = seed_gateway(&format!("backend={}", backend.addr), &[]);
    let resp = raw(
        &gw.addr,
        b"POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert_eq!(body(&resp), "400 bad request: malformed request body\n");
    // The detail is logged.
    assert!(gw.logs().contains("client body"), "{}", gw.logs());
}

#[tokio::test]
async fn after_a_malformed_chunked_body_the_connection_closes_and_what_follows_is_never_a_request()
{
    // Keep-alive, and a well-formed request right behind the broken chunk:
    // where the body ends is unknown, so nothing after it may be read as a
    // request (on either HTTP/1 path: CI runs this file on both).
    let backend = echo("echo-0");
    let gw = seed_gateway(&format!("backend={}", backend.addr), &[]);
    let mut s = tokio::net::TcpStream::connect(&gw.addr)
        .await
        .expect("connect");
    s.write_all(
        b"POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\
          zz\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let resp = String::from_utf8_lossy(&out);
    assert!(closed.is_ok(), "the connection stayed open: {resp}");
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("connection: close"),
        "{resp}"
    );
    assert_eq!(resp.matches("HTTP/1.1 ").count(), 1, "{resp}");
    assert!(!resp.contains("smuggled"), "{resp}");
}

#[tokio::test]
async fn heads_haproxy_refuses_as_ambiguous_get_400_and_never_reach_a_backend() {
    // Several Host fields, and `chunked` named twice: HAProxy 2.6 answers
    // 400 to both (the same bytes through it, 2026-12-06). CI runs this
    // file on both HTTP/1 paths.
    let backend = echo("echo-0");
    let gw = seed_gateway(&format!("backend={}", backend.addr), &[]);
    for head in [
        &b"GET /get HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"[..],
        b"POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ] {
        let resp = raw(&gw.addr, head).await;
        let shown = String::from_utf8_lossy(head);
        assert!(resp.starts_with("HTTP/1.1 400"), "{shown}: {resp}");
        assert!(!resp.contains("\"pod\""), "{shown} reached a backend: {resp}");
        // Where the next request would start is unknown: the connection
        // closes after the 400, and what follows is never a request.
        let then = [head, b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"].concat();
        let started = std::time::Instant::now();
        let resp = raw(&gw.addr, &then).await;
        assert!(started.elapsed() < Duration::from_secs(4), "{shown}: not closed");
        assert_eq!(resp.matches("HTTP/1.1 ").count(), 1, "{shown}: {resp}");
        assert!(!resp.contains("smuggled"), "{shown}: {resp}");
    }
}

#[tokio::test]
async fn a_malformed_chunk_after_the_retry_buffer_went_upstream_is_still_the_clients_400() {
    // The backend reads the body as it streams and never answers, so the
    // broken chunk is what ends the attempt.
    let backend = RawBackend::start(Behaviour::Hold).await;
    let gw = seed_gateway(
        &format!("backend={}", backend.addr),
        &["--retry-buffer", "16"],
    );
    let mut s = tokio::net::TcpStream::connect(&gw.addr)
        .await
        .expect("connect");
    s.write_all(
        b"POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
          20\r\n0123456789abcdef0123456789abcdef\r\n",
    )
    .await
    .expect("write");
    // The first chunk is over the buffer: the request goes upstream before
    // the rest of the body arrives.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while backend.requests.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing went upstream"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.write_all(b"3\r\nhello\r\n0\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let resp = String::from_utf8_lossy(&out);
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert_eq!(body(&resp), "400 bad request: malformed request body\n");
    assert_eq!(backend.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_invalid_backend_response_to_a_get_is_not_retried() {
    let bad = RawBackend::start(Behaviour::Answer(b"HTTP/1.1 abc\r\n\r\n")).await;
    let gw = seed_gateway(&format!("backend={}", bad.addr), &[]);
    let r = Http::new().get(&format!("{}/get", gw.url), &[]).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.body, "502 bad gateway: the backend failed to answer\n");
    assert_eq!(
        bad.requests.load(Ordering::SeqCst),
        1,
        "the backend saw the GET once"
    );
}

#[tokio::test]
async fn the_backends_own_session_cookie_is_stripped_and_issued_sessions_are_private() {
    let backend = RawBackend::start(Behaviour::Answer(
        b"HTTP/1.1 200 OK\r\nSet-Cookie: Session-A=evil; Path=/\r\nSet-Cookie: theme=dark\r\n\
          Cache-Control: public, max-age=600\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    ))
    .await;
    let gw = seed_gateway(&format!("backend={}", backend.addr), &[]);
    let http = Http::new();
    let r = http.get(&format!("{}/get", gw.url), &[]).await;
    assert_eq!(r.status, 200);
    let cookies: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("text"))
        .collect();
    let sessions: Vec<&&str> = cookies
        .iter()
        .filter(|c| c.starts_with("Session-A="))
        .collect();
    assert_eq!(sessions.len(), 1, "{cookies:?}");
    assert!(!sessions[0].contains("evil"), "{cookies:?}");
    assert!(cookies.contains(&"theme=dark"), "{cookies:?}");
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("private, max-age=600")
    );
    // A resumed session: nothing issued, and the backend's copy still goes.
    let cookie = sessions[0].split(';').next().expect("pair").to_owned();
    let r = http
        .get(&format!("{}/get", gw.url), &[("cookie", &cookie)])
        .await;
    let cookies: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("text"))
        .collect();
    assert_eq!(cookies, ["theme=dark"]);
    assert_eq!(
        r.header("cache-control").as_deref(),
        Some("public, max-age=600")
    );
}

#[tokio::test]
async fn host_is_required_never_removed_and_never_the_backends_address() {
    let backend = RawBackend::start(Behaviour::Answer(OK)).await;
    let gw = seed_gateway(&format!("backend={}", backend.addr), &[]);
    // HTTP/1.1 without Host: 400, nothing sent upstream.
    let resp = raw(&gw.addr, b"GET /get HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert_eq!(
        body(&resp),
        "400 bad request: HTTP/1.1 request without Host\n"
    );
    assert_eq!(backend.requests.load(Ordering::SeqCst), 0);
    // `Connection: host` does not take the Host away.
    let resp = raw(
        &gw.addr,
        b"GET /get HTTP/1.1\r\nHost: shop.example\r\nConnection: host, close\r\n\r\n",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // HTTP/1.0 may omit Host: the backend gets an empty one.
    let resp = raw(&gw.addr, b"GET /get HTTP/1.0\r\n\r\n").await;
    assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
    let heads = backend.heads();
    assert_eq!(heads.len(), 2, "{heads:?}");
    let host = |head: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.trim().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(host(&heads[0]), ["shop.example"], "{}", heads[0]);
    assert_eq!(host(&heads[1]), [""], "{}", heads[1]);
    for head in &heads {
        assert!(!head.contains(&backend.addr), "{head}");
    }
}
