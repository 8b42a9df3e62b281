//! `examples/tower_proxy.rs` end to end, against three real backends on
//! 127.0.0.1: stickiness, spread, failover with one new cookie, revival by
//! the prober, and a refused POST answered elsewhere.
//!
//! The example's binary is the one `cargo test` builds with the examples;
//! when only this test was built, it is built here.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, timeout};

/// Bodies each backend received, by backend port.
type Received = Arc<Mutex<Vec<(u16, Method, Bytes)>>>;

/// A backend answering with its name (`backend-<port>`), which dies with
/// its task: listener and every connection. Without `keep_alive` it closes
/// every connection after its response, so the proxy keeps none of them
/// idle.
async fn backend(listener: TcpListener, received: Received, keep_alive: bool) -> JoinHandle<()> {
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let received = Arc::clone(&received);
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let received = Arc::clone(&received);
                async move {
                    let method = req.method().clone();
                    let body = req.into_body().collect().await?.to_bytes();
                    received.lock().unwrap().push((port, method, body));
                    Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(format!(
                        "backend-{port}"
                    )))))
                }
            });
            connections.spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(keep_alive)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let binary = profile_dir
        .join("examples")
        .join(format!("tower_proxy{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "tower-sticky", "--example", "tower_proxy"])
            .status()
            .unwrap();
        assert!(status.success(), "building examples/tower_proxy.rs");
    }
    binary
}

/// Starts the example against `backends`; returns it and its address.
async fn start_proxy(backends: &[SocketAddr]) -> (Child, SocketAddr) {
    let mut cmd = Command::new(example_binary());
    cmd.args(["--listen", "127.0.0.1:0"]);
    for b in backends {
        cmd.args(["--backend", &b.to_string()]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = timeout(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .expect("prints its address")
        .parse()
        .unwrap();
    (child, addr)
}

struct Answer {
    status: StatusCode,
    backend: String,
    session_cookies: Vec<String>,
}

impl Answer {
    /// `Session-A=<token>`, as a browser echoes it.
    fn cookie(&self) -> String {
        assert_eq!(self.session_cookies.len(), 1, "{:?}", self.session_cookies);
        self.session_cookies[0]
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    method: Method,
    cookie: Option<&str>,
    body: &'static str,
) -> Answer {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{proxy}/"));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let res = timeout(
        Duration::from_secs(10),
        client.request(
            req.body(Full::new(Bytes::from_static(body.as_bytes())))
                .unwrap(),
        ),
    )
    .await
    .expect("answered in time")
    .unwrap();
    let session_cookies = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("Session-A="))
        .collect();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        backend: String::from_utf8(body.to_vec()).unwrap(),
        session_cookies,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_proxy_example_pins_spreads_fails_over_and_revives() {
    let received = Received::default();
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let mut tasks: HashMap<String, (SocketAddr, JoinHandle<()>)> = HashMap::new();
    for l in listeners {
        let addr = l.local_addr().unwrap();
        tasks.insert(
            format!("backend-{}", addr.port()),
            (addr, backend(l, Arc::clone(&received), true).await),
        );
    }
    let (_proxy, proxy) = start_proxy(&addrs).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    // 20 of 20 with the cookie pinned; without it they spread.
    let first = send(&client, proxy, Method::GET, None, "").await;
    assert_eq!(first.status, 200);
    let cookie = first.cookie();
    for _ in 0..20 {
        let a = send(&client, proxy, Method::GET, Some(&cookie), "").await;
        assert_eq!((a.status, &a.backend), (StatusCode::OK, &first.backend));
        assert!(a.session_cookies.is_empty());
    }
    let mut spread: HashMap<String, usize> = HashMap::new();
    for _ in 0..12 {
        *spread
            .entry(send(&client, proxy, Method::GET, None, "").await.backend)
            .or_default() += 1;
    }
    assert_eq!(spread.len(), 3, "{spread:?}");
    assert!(spread.values().all(|&n| n >= 2), "{spread:?}");

    // The pinned backend dies: the old cookie gets another, one new cookie.
    let (dead_addr, dead) = tasks.remove(&first.backend).unwrap();
    dead.abort();
    let _ = dead.await;
    let moved = send(&client, proxy, Method::GET, Some(&cookie), "").await;
    assert_eq!(moved.status, 200);
    assert_ne!(moved.backend, first.backend);
    let new_cookie = moved.cookie();
    for _ in 0..10 {
        let a = send(&client, proxy, Method::GET, Some(&new_cookie), "").await;
        assert_eq!((a.status, &a.backend), (StatusCode::OK, &moved.backend));
    }

    // Restarted, it serves new sessions again within 2 s. (It keeps no
    // connection alive, so that once it is gone below, the proxy holds no
    // idle connection to it: its POST then meets a refused connection,
    // not a pooled one that died under it, which may have taken the POST.)
    let restarted = TcpListener::bind(dead_addr).await.unwrap();
    let revived = backend(restarted, Arc::clone(&received), false).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let a = send(&client, proxy, Method::GET, None, "").await;
        if a.backend == first.backend {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted backend got no new session within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A POST pinned to a backend whose connections are refused is answered
    // by another, which receives its bytes once.
    revived.abort();
    let _ = revived.await;
    received.lock().unwrap().clear();
    let post = send(&client, proxy, Method::POST, Some(&cookie), "order=42").await;
    assert_eq!(post.status, 200);
    assert_ne!(post.backend, first.backend);
    assert_eq!(post.session_cookies.len(), 1);
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "the POST ran once");
    assert_eq!(
        (got[0].1.clone(), got[0].2.clone()),
        (Method::POST, Bytes::from_static(b"order=42"))
    );
    assert_eq!(format!("backend-{}", got[0].0), post.backend);
}
