//! A plain tower proxy with sticky sessions and failover: hyper-util's
//! server, `StickyLayer` with failover, hyper-util's `Client`.
//!
//! ```sh
//! cargo run --example tower_proxy -- --listen 127.0.0.1:3000 \
//!     --backend 127.0.0.1:3001 --backend 127.0.0.1:3002 --backend 127.0.0.1:3003
//! curl -c jar -b jar http://127.0.0.1:3000/   # the same backend every time
//! ```
//!
//! The library does the sessions, the pick, failover of requests whose
//! backend refuses the connection, passive health and the prober; the
//! example only wires them to the network.

use clap::Parser;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::error::Error as _;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::{ServiceBuilder, service_fn};
use tower_sticky::balance::BackendId;
use tower_sticky::failover::{Failure, Prober, ReplayBody};
use tower_sticky::forward::point_at_pinned;
use tower_sticky::route::HttpRoute;
use tower_sticky::token::{KeySet, SigningKey};

/// The route: every request to one Service, sessions in cookie Session-A.
const ROUTE: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  rules:
  - backendRefs: [{name: backend, port: 80}]
    sessionPersistence:
      sessionName: Session-A
      absoluteTimeout: 1h
      cookieConfig: {lifetimeType: Permanent}
";

#[derive(Parser)]
struct Args {
    /// Where the proxy listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// A backend, `HOST:PORT`; repeat for more.
    #[arg(long = "backend", required = true)]
    backends: Vec<SocketAddr>,
}

/// hyper-util's errors as backend failures: a connection not made; a
/// request a dying pooled connection handed back unsent; anything else of
/// the transport may have reached the backend (resent only if idempotent).
/// Errors of the client's own body are not the backend's.
fn classify(e: &hyper_util::client::legacy::Error) -> Option<Failure> {
    let hyper = e.source().and_then(|s| s.downcast_ref::<hyper::Error>());
    match hyper {
        _ if e.is_connect() => Some(Failure::Connect),
        Some(h) if h.is_canceled() => Some(Failure::NotWritten),
        Some(h) if h.is_user() => None,
        _ => Some(Failure::AfterWrite),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args = Args::parse();
    let route = serde_saphyr::from_str::<HttpRoute>(ROUTE)?.validate()?;
    // Use a real secret, the same on every replica.
    let keys = KeySet::new(SigningKey::new(*b"tower_proxy example key, 32 byte")?);
    // Service discovery: the Service's endpoints are the --backend flags.
    let endpoints = |_: &_| {
        args.backends
            .iter()
            .map(|a| (BackendId::from_name(&a.to_string()), *a))
            .collect()
    };
    let layer = route
        .rule_builder(0, keys, endpoints)
        .ok_or("no rule")?
        .layer()?;
    // Brings back, within 250 ms, a backend failover took down.
    let _prober = Prober::tcp(layer.sessions().backends().clone())
        .interval(Duration::from_millis(250))
        .spawn();

    let client = Client::builder(TokioExecutor::new())
        .build::<_, ReplayBody<Incoming>>(HttpConnector::new());
    let proxy = ServiceBuilder::new()
        .layer(layer.failover().classify(classify))
        .service(service_fn(move |mut req: Request<ReplayBody<Incoming>>| {
            point_at_pinned::<_, SocketAddr>(&mut req); // http://{backend}{path}
            client.request(req)
        }));

    let listener = TcpListener::bind(args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(proxy.clone());
        tokio::spawn(async move {
            let conn = auto::Builder::new(TokioExecutor::new());
            let _ = conn.serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
