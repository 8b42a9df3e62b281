//! HTTP/2 to backends (issue 20, point 3), against h2c backends written
//! with the `h2` crate so that a test controls every stream: connections
//! are multiplexed and owned by the client connection that opened them
//! (`--http-reuse safe`), shared under `always`, and a refused stream
//! (`REFUSED_STREAM`) goes to another endpoint whatever the method.

use crate::support::{Http, eventually, gateway_with_routes};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What an h2c backend saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    streams: AtomicUsize,
    /// Connections open now.
    open: AtomicUsize,
}

/// How an h2c backend answers each stream.
#[derive(Clone)]
enum Answer {
    /// `REFUSED_STREAM`, at once.
    Refuse,
    /// 200 `good`, once `together` streams are open at the same time
    /// (at most 10 s, then 503).
    Together(Arc<tokio::sync::Barrier>),
}

/// An h2c backend on 127.0.0.1 (tasks on the test's runtime).
async fn h2_backend(answer: Answer) -> (String, Arc<Seen>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Seen::default());
    let counts = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            counts.connections.fetch_add(1, Ordering::SeqCst);
            counts.open.fetch_add(1, Ordering::SeqCst);
            let (counts, answer) = (Arc::clone(&counts), answer.clone());
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(sock).await else {
                    counts.open.fetch_sub(1, Ordering::SeqCst);
                    return;
                };
                while let Some(Ok((_req, mut respond))) = conn.accept().await {
                    counts.streams.fetch_add(1, Ordering::SeqCst);
                    let Answer::Together(barrier) = &answer else {
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        continue;
                    };
                    let barrier = Arc::clone(barrier);
                    tokio::spawn(async move {
                        let met = tokio::time::timeout(Duration::from_secs(10), barrier.wait());
                        let status = if met.await.is_ok() { 200 } else { 503 };
                        let resp = http::Response::builder().status(status).body(()).unwrap();
                        if let Ok(mut body) = respond.send_response(resp, false) {
                            let _ = body.send_data(Bytes::from_static(b"good"), true);
                        }
                    });
                }
                // The gateway closed it.
                counts.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, seen)
}

/// A plain HTTPRoute to Service `h2` over `endpoints` (h2c).
fn route() -> String {
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: h2}\nspec:\n  rules: [{backendRefs: [{name: h2, port: 80}]}]\n".to_owned()
}

fn backend_flag(addrs: &[&str]) -> String {
    let endpoints: Vec<String> = addrs.iter().map(|a| format!("h2c://{a}")).collect();
    format!("h2:80={}", endpoints.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_streams_go_to_another_endpoint_whatever_the_method() {
    let (refuser, refused) = h2_backend(Answer::Refuse).await;
    let one = Arc::new(tokio::sync::Barrier::new(1));
    let (good, served) = h2_backend(Answer::Together(one)).await;
    let gw = gateway_with_routes(&route(), &["--backend", &backend_flag(&[&refuser, &good])]);
    let http = Http::new();
    // POST: not idempotent, yet a refused stream was never processed.
    for i in 0..20 {
        let r = http
            .send("POST", &format!("{}/", gw.url), &[], Bytes::new())
            .await;
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
        assert_eq!(r.body, "good");
    }
    assert_eq!(served.streams.load(Ordering::SeqCst), 20);
    // Half the first attempts went to the refuser (1 in 2^20 that none did).
    assert!(refused.streams.load(Ordering::SeqCst) > 0);
}

/// `n` requests at once over one HTTP/2 connection to the gateway; their
/// statuses.
async fn concurrent_h2_requests(gateway: &str, n: usize) -> Vec<u16> {
    let tcp = tokio::net::TcpStream::connect(gateway).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..n {
        let mut sender = sender.clone();
        let req = http::Request::get(format!("http://{gateway}/"))
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap();
        calls.spawn(async move {
            let resp = tokio::time::timeout(Duration::from_secs(20), sender.send_request(req));
            resp.await
                .expect("in time")
                .expect("a response")
                .status()
                .as_u16()
        });
    }
    calls.join_all().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_connections_are_multiplexed_and_owned_by_their_client_connection() {
    // 10 streams answered only once all 10 are open together: they can
    // only all succeed if they are in flight at once.
    let ten = Arc::new(tokio::sync::Barrier::new(10));
    let (backend, seen) = h2_backend(Answer::Together(ten)).await;
    let flag = backend_flag(&[&backend]);
    let gw = gateway_with_routes(&route(), &["--backend", &flag, "--threads", "1"]);
    assert_eq!(concurrent_h2_requests(&gw.addr, 10).await, vec![200; 10]);
    // Ten concurrent requests of one client connection: one upstream
    // connection, multiplexed.
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    // Another client connection never gets that one (`safe`).
    assert_eq!(concurrent_h2_requests(&gw.addr, 10).await, vec![200; 10]);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    assert_eq!(seen.streams.load(Ordering::SeqCst), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_http_reuse_always_clients_share_one_h2c_connection() {
    let ten = Arc::new(tokio::sync::Barrier::new(10));
    let (backend, seen) = h2_backend(Answer::Together(ten)).await;
    let flag = backend_flag(&[&backend]);
    let args = [
        "--backend",
        &flag,
        "--threads",
        "1",
        "--http-reuse",
        "always",
    ];
    let gw = gateway_with_routes(&route(), &args);
    assert_eq!(concurrent_h2_requests(&gw.addr, 10).await, vec![200; 10]);
    assert_eq!(concurrent_h2_requests(&gw.addr, 10).await, vec![200; 10]);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_connection_cap_another_clients_h2c_connection_is_closed_to_make_room() {
    let one = Arc::new(tokio::sync::Barrier::new(1));
    let (backend, seen) = h2_backend(Answer::Together(one)).await;
    let flag = backend_flag(&[&backend]);
    let args = [
        "--backend",
        &flag,
        "--threads",
        "1",
        "--max-upstream-connections",
        "1",
        "--upstream-queue-timeout",
        "2s",
    ];
    let gw = gateway_with_routes(&route(), &args);
    // Two client connections (each client keeps its own alive).
    let (a, b) = (Http::new(), Http::new());
    let url = format!("{}/", gw.url);
    assert_eq!(a.get(&url, &[]).await.status, 200);
    // `b` may not use `a`'s connection (`safe`), and the cap is 1: `a`'s
    // idle one is closed to make room, never lent (without that, `b` would
    // wait the 2 s queue timeout and get 503).
    let r = b.get(&url, &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
    eventually(Duration::from_secs(5), "a's connection closed", || async {
        (seen.open.load(Ordering::SeqCst) == 1).then_some(())
    })
    .await;
}
