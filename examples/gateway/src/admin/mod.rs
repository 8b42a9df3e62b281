//! The admin listener (`--admin ADDR`, loopback unless the operator says
//! otherwise): health, readiness, metrics, backends, drain and reload.
//!
//! | request                                   | answer |
//! |-------------------------------------------|--------|
//! | `GET /healthz`                            | 200 while the process runs (liveness) |
//! | `GET /readyz`                             | 200 while accepting traffic; 503 from the moment graceful shutdown starts |
//! | `GET /metrics`                            | Prometheus text ([`metrics-exporter-prometheus`](metrics_exporter_prometheus)) |
//! | `GET /backends`                           | JSON: every endpoint of every Service, its state and counters |
//! | `POST /backends/drain?service=NS/NAME&endpoint=HOST:PORT[&deadline=DURATION]` | keeps its sessions, no new ones; after the deadline its sessions re-pin |
//! | `POST /backends/undrain?service=NS/NAME&endpoint=HOST:PORT` | serving again |
//! | `POST /reload`                            | re-reads every `--route`, `--key-file` and `--endpoints` file (as SIGHUP does) |
//!
//! An unknown Service or endpoint is a 404, a bad query or duration a 400
//! saying why, a known path with the wrong method a 405 with `Allow`.
//!
//! ```text
//! curl -s localhost:9901/backends
//! curl -s -X POST 'localhost:9901/backends/drain?service=default/backend&endpoint=10.0.0.7:3000&deadline=10m'
//! curl -s -X POST localhost:9901/reload
//! ```
//!
//! Metrics: the library's `tower_sticky_requests_total{scope,outcome}` and
//! `tower_sticky_session_age_seconds{scope}`; the gateway's
//! `gateway_backend_requests_total{route,rule,service,backend}`,
//! `gateway_backend_up{…}` (0 when down), and
//! `gateway_reloads_total{result="ok"|"failed"}`.

mod backends;
mod query;

use crate::forward::ClientBody;
use crate::reload::Control;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves the admin endpoints for as long as the process runs: through a
/// graceful shutdown too, so that `/readyz` can say 503.
pub async fn serve(listener: TcpListener, control: Arc<Control>) {
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let control = Arc::clone(&control);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let control = Arc::clone(&control);
                async move { Ok::<_, Infallible>(handle(&req, &control).await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(req: &Request<Incoming>, control: &Control) -> Response<ClientBody> {
    let path = req.uri().path();
    let allowed = match path {
        "/healthz" | "/readyz" | "/metrics" | "/backends" => Method::GET,
        "/backends/drain" | "/backends/undrain" | "/reload" => Method::POST,
        _ => {
            return text(
                StatusCode::NOT_FOUND,
                "not found: try /healthz, /readyz, /metrics, /backends, /backends/drain, /backends/undrain, /reload\n",
            );
        }
    };
    let method_ok =
        req.method() == allowed || (allowed == Method::GET && req.method() == Method::HEAD);
    if !method_ok {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{path} takes {allowed}\n"),
        );
        resp.headers_mut().insert(
            http::header::ALLOW,
            HeaderValue::from_static(if allowed == Method::GET {
                "GET, HEAD"
            } else {
                "POST"
            }),
        );
        return resp;
    }
    let query = req.uri().query().unwrap_or("");
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if control.ready() => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
        "/metrics" => {
            let mut resp = body(StatusCode::OK, control.render_metrics());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            resp
        }
        "/backends" => backends::list(control),
        "/backends/drain" => backends::drain(control, query, true),
        "/backends/undrain" => backends::drain(control, query, false),
        _ => match control.reload(crate::reload::What::Everything).await {
            Ok(()) => text(StatusCode::OK, "reloaded\n"),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("reload failed, the previous configuration keeps serving: {e}\n"),
            ),
        },
    }
}

/// A plain-text answer.
fn text(status: StatusCode, s: &str) -> Response<ClientBody> {
    let mut resp = body(status, s.to_owned());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn body(status: StatusCode, s: String) -> Response<ClientBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(s))));
    *resp.status_mut() = status;
    resp
}

/// A JSON answer.
fn json(status: StatusCode, v: &serde_json::Value) -> Response<ClientBody> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    let mut resp = body(status, s);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
