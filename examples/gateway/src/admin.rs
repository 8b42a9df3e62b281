//! The admin listener: `/healthz` and Prometheus `/metrics`.
//!
//! Metrics, in the Prometheus text format:
//!
//! * `tower_sticky_requests_total{route,rule,outcome}`: session outcomes of
//!   every rule with `sessionPersistence`, counted by the core through
//!   `StickyBuilder::on_outcome` (a re-pin after a refused connection counts
//!   as a second decision, `repinned_down`);
//! * `gateway_backend_requests_total{route,rule,service,backend}`: requests
//!   answered by each backend, per rule;
//! * `gateway_backend_up{route,rule,service,backend}`: 1 unless marked down.

use crate::proxy::{ClientBody, Proxy, error};
use crate::rules::Target;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_sticky::balance::BackendState;
use tower_sticky::sticky::Outcome;

/// Serves the admin endpoints until `stop` turns true.
pub async fn serve(listener: TcpListener, proxy: Arc<Proxy>, mut stop: watch::Receiver<bool>) {
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let proxy = Arc::clone(&proxy);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let proxy = Arc::clone(&proxy);
                async move { Ok::<_, Infallible>(handle(&req, &proxy)) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn handle(req: &Request<Incoming>, proxy: &Proxy) -> Response<ClientBody> {
    match req.uri().path() {
        "/healthz" => error(StatusCode::OK, "ok\n"),
        "/metrics" => {
            let mut resp = Response::new(Either::Right(Full::new(Bytes::from(render(proxy)))));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        _ => error(StatusCode::NOT_FOUND, "try /healthz or /metrics\n"),
    }
}

/// The metrics page.
pub fn render(proxy: &Proxy) -> String {
    let mut out = String::with_capacity(2048);
    out.push_str("# HELP tower_sticky_requests_total Session outcomes per route rule.\n");
    out.push_str("# TYPE tower_sticky_requests_total counter\n");
    for rule in proxy.rules() {
        if !matches!(rule.target, Target::Sticky(_)) {
            continue;
        }
        for o in Outcome::ALL {
            let _ = writeln!(
                out,
                "tower_sticky_requests_total{{route=\"{}\",rule=\"{}\",outcome=\"{}\"}} {}",
                escape(&rule.route),
                rule.index,
                o.as_str(),
                rule.outcomes[o.index()].load(Ordering::Relaxed)
            );
        }
    }
    out.push_str("# HELP gateway_backend_requests_total Requests answered by each backend, per route rule.\n");
    out.push_str("# TYPE gateway_backend_requests_total counter\n");
    let mut up = String::new();
    for rule in proxy.rules() {
        for e in rule.target.backends().snapshot().endpoints() {
            let t = e.target();
            let labels = format!(
                "route=\"{}\",rule=\"{}\",service=\"{}\",backend=\"{}\"",
                escape(&rule.route),
                rule.index,
                escape(&t.service),
                escape(&t.label)
            );
            let _ = writeln!(
                out,
                "gateway_backend_requests_total{{{labels}}} {}",
                t.requests.load(Ordering::Relaxed)
            );
            let _ = writeln!(
                up,
                "gateway_backend_up{{{labels}}} {}",
                u8::from(e.state() != BackendState::Down)
            );
        }
    }
    out.push_str(
        "# HELP gateway_backend_up Whether the backend is taking requests (0: marked down).\n",
    );
    out.push_str("# TYPE gateway_backend_up gauge\n");
    out.push_str(&up);
    out
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
