//! An axum reverse proxy with sticky sessions, in one file.
//!
//! Starts three tiny backends on ephemeral ports, then a proxy on
//! 127.0.0.1:3000 (or `--listen`) whose router is wrapped in a
//! `StickyLayer`: the handler forwards each request to the backend the layer
//! pinned it to.
//!
//! ```sh
//! cargo run --example axum_app
//! curl -c jar -b jar http://127.0.0.1:3000/   # same backend every time
//! ```

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clap::Parser;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::net::SocketAddr;
use tower_sticky::balance::{BackendId, Backends, PowerOfTwoChoices};
use tower_sticky::duration::Duration;
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::{Pinned, StickyBuilder};
use tower_sticky::token::{KeySet, SigningKey};

#[derive(Parser)]
struct Args {
    /// Where the proxy listens.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The 32+ byte secret; use a real one (and the same on every replica).
    #[arg(long, default_value = "change me: a 32 byte example key!")]
    key: String,
}

type HttpClient = Client<HttpConnector, Body>;

/// Forwards the request to the backend the sticky layer chose.
async fn forward(State(client): State<HttpClient>, mut req: Request) -> Response {
    let Some(pinned) = req.extensions().get::<Pinned<SocketAddr>>().cloned() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "not behind StickyLayer").into_response();
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri = format!("http://{}{path}", pinned.target());
    *req.uri_mut() = match uri.parse() {
        Ok(uri) => uri,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    tracing::info!(outcome = %pinned.outcome(), backend = %pinned.target(), "forwarding");
    match client.request(req).await {
        Ok(res) => res.into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

/// A backend that says who it is.
async fn backend(name: String) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = Router::new().fallback(move || {
        let name = name.clone();
        async move { format!("served by {name}\n") }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_target(false).init();
    let args = Args::parse();

    let backends = Backends::new();
    for name in ["pod-a", "pod-b", "pod-c"] {
        let addr = backend(name.into()).await?;
        backends.insert(BackendId::from_name(name), addr, 1);
    }

    let policy = SessionPolicy::cookie("Session-A")?
        .permanent(Duration::from_secs(3600))?
        .with_idle_timeout(Duration::from_secs(600))?;
    let sticky = StickyBuilder::new(policy, KeySet::new(SigningKey::new(&args.key)?), backends)
        .balancer(PowerOfTwoChoices::new())
        .layer()?;

    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let app = Router::new()
        .fallback(forward)
        .with_state(client)
        .layer(sticky);

    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("sticky axum proxy on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
