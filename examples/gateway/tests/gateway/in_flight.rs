//! The gateway counts each request in flight with the library's own guard
//! (`Decision::in_flight` / `InFlight`, the count `Endpoint::in_flight`
//! reads and `PowerOfTwoChoices` compares), from the pick until the
//! response body ends, and `/backends` shows it.

use crate::raw::RawBackend;
use crate::support::{
    Http, Proc, backends, cookie_route, gateway, gateway_with_routes, until_backends, upgrade_echo,
};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

/// `/backends`' `in_flight`, summed over every endpoint.
async fn in_flight(http: &Http, gw: &Proc) -> u64 {
    let list = backends(http, gw).await;
    assert!(!list.is_empty());
    list.iter()
        .map(|b| {
            b["in_flight"]
                .as_u64()
                .unwrap_or_else(|| panic!("no in_flight in {b}"))
        })
        .sum()
}

/// Polls until `/backends` shows no request in flight.
async fn until_none_in_flight(http: &Http, gw: &Proc, after: &str) {
    until_backends(http, gw, &format!("in flight after {after}"), |l| {
        l.iter().all(|b| b["in_flight"] == 0)
    })
    .await;
}

/// A backend that sends its response head and a first chunk at once, and
/// the rest of the body only when told (one `()` per request).
fn streaming_backend() -> (RawBackend, Sender<()>) {
    let (finish, told) = channel::<()>();
    let told = Mutex::new(told);
    let backend = RawBackend::start(move |req| {
        let _ = req
            .stream
            .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n");
        let _ = req.stream.flush();
        let _ = told
            .lock()
            .expect("lock")
            .recv_timeout(Duration::from_secs(30));
        let _ = req.stream.write_all(b"6\r\n world\r\n0\r\n\r\n");
        let _ = req.stream.flush();
    });
    (backend, finish)
}

/// One slow streamed response through a gateway serving `persistence`
/// (an empty string: a rule without session persistence).
async fn counted_until_the_body_ends(persistence: &str) {
    let (backend, finish) = streaming_backend();
    let route = if persistence.is_empty() {
        cookie_route("stream", "").replace("      sessionPersistence:\n", "")
    } else {
        cookie_route("stream", persistence)
    };
    let backend = format!("backend={}", backend.addr);
    let gw = gateway_with_routes(&route, &["--backend", &backend, "--admin", "127.0.0.1:0"]);
    let http = Http::new();
    assert_eq!(in_flight(&http, &gw).await, 0);

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        client.get(format!("{}/stream", gw.url).parse().expect("uri")),
    )
    .await
    .expect("a response head in time")
    .expect("a response");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(20), body.frame())
        .await
        .expect("a first chunk in time")
        .expect("a frame")
        .expect("data");
    assert_eq!(first.into_data().expect("data"), "hello");

    // The head has come back and the body is still streaming: counted.
    assert_eq!(in_flight(&http, &gw).await, 1, "while the body streams");

    finish.send(()).expect("tell the backend");
    let rest = tokio::time::timeout(Duration::from_secs(20), body.collect())
        .await
        .expect("the rest in time")
        .expect("the rest")
        .to_bytes();
    assert_eq!(rest, " world");
    until_none_in_flight(&http, &gw, "the body ended").await;
}

#[tokio::test]
async fn a_streamed_response_of_a_sticky_rule_is_in_flight_until_its_body_ends() {
    counted_until_the_body_ends("        sessionName: Session-A\n        type: Cookie\n").await;
}

#[tokio::test]
async fn a_streamed_response_of_a_plain_rule_is_in_flight_until_its_body_ends() {
    counted_until_the_body_ends("").await;
}

#[tokio::test]
async fn an_upgraded_connection_is_in_flight_until_its_tunnel_closes() {
    // Demo mode: in-process echo replicas, which accept `Upgrade: echo`.
    let gw = gateway(&["--admin", "127.0.0.1:0"]);
    let http = Http::new();
    let (mut s, head) = upgrade_echo(&gw.addr, "");
    assert!(head.starts_with("http/1.1 101"), "{head}");
    s.write_all(b"ping").expect("write");
    let mut echoed = [0u8; 4];
    s.read_exact(&mut echoed).expect("echo");
    assert_eq!(&echoed, b"ping");

    assert_eq!(in_flight(&http, &gw).await, 1, "while the tunnel is open");
    drop(s);
    until_none_in_flight(&http, &gw, "the tunnel closed").await;
}
