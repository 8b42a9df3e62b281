//! The admin listener (`--admin ADDR`, loopback unless the operator says
//! otherwise): health, readiness, metrics, backends, drain and reload.
//!
//! | request                                   | answer |
//! |-------------------------------------------|--------|
//! | `GET /healthz`                            | 200 while the process runs (liveness) |
//! | `GET /readyz`                             | 200 while accepting traffic (and a line for each Service with 0 usable endpoints); 503 from the moment graceful shutdown starts |
//! | `GET /metrics`                            | Prometheus text ([`metrics-exporter-prometheus`](metrics_exporter_prometheus)) |
//! | `GET /backends`                           | JSON: every endpoint of every Service, its state and counters |
//! | `POST /backends/drain?service=NS/NAME&endpoint=HOST:PORT[&deadline=DURATION]` | keeps its sessions, no new ones; after the deadline its sessions re-pin |
//! | `POST /backends/undrain?service=NS/NAME&endpoint=HOST:PORT` | serving again |
//! | `POST /reload`                            | re-reads every `--route`, `--key-file` and `--endpoints` file (as SIGHUP does); requests that arrive while one runs share the next |
//!
//! An unknown Service or endpoint is a 404, a bad query or duration a 400
//! saying why, a known path with the wrong method a 405 with `Allow`.
//! `deadline=0s` is a deadline that has already passed: the endpoint is
//! down at once and its sessions re-pin on their next request.
//!
//! The port changes what the gateway does, so it guards itself ([`guard`],
//! [`conn`]): a `Host` that is not `localhost`, an IP address of the
//! connection or an `--admin-host` name gets 421 (DNS rebinding), a
//! state-changing request from another site's page (`Sec-Fetch-Site`,
//! `Origin`) gets 403, HTTP/1.1 without `Host` gets 400; heads must arrive
//! within `--admin-head-timeout`, bodies are read whole (at most
//! `--admin-max-body`) before anything is done, an idle connection closes
//! after `--admin-idle-timeout`, and at most `--admin-max-connections` are
//! open. Answers are `text/plain` with `X-Content-Type-Options: nosniff`
//! or JSON, and quote what the client sent only escaped and cut short.
//! Bind it to loopback: any other address is logged as a warning at start.
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
//! `gateway_backend_up{…}` (0 when down), both only for the endpoints the
//! current configuration has;
//! `gateway_backend_ejections_total{route,rule,service,backend,reason="refused"|"failed"}`
//! (each ejection by passive health; the prober's failed checks are not
//! ejections); per rule `gateway_rule_in_panic`,
//! `gateway_rule_ejections_held_back` and `gateway_rule_endpoints_ejected`;
//! and `gateway_reloads_total{result="ok"|"failed"}`.

mod backends;
pub mod conn;
pub mod guard;
mod query;

use crate::forward::ClientBody;
use crate::reload::Control;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::{Bytes, Incoming};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// The admin port's limits and the names it answers to, validated once.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--admin-host` names.
    pub hosts: guard::Hosts,
    /// `--admin-head-timeout`; a body gets as long again.
    pub head_timeout: Duration,
    /// `--admin-idle-timeout`.
    pub idle_timeout: Duration,
    /// `--admin-max-connections`.
    pub max_connections: usize,
    /// `--admin-max-body`.
    pub max_body: usize,
}

impl Options {
    /// From the `--admin-*` flags.
    #[must_use]
    pub fn from_flags(flags: &crate::cli::AdminFlags) -> Self {
        Options {
            hosts: guard::Hosts::new(&flags.admin_hosts),
            head_timeout: flags.admin_head_timeout,
            idle_timeout: flags.admin_idle_timeout,
            max_connections: usize::try_from(flags.admin_max_connections).unwrap_or(usize::MAX),
            max_body: flags.admin_max_body,
        }
    }
}

/// Binds the admin port, with a listen backlog long enough that
/// connections beyond `--admin-max-connections` wait there rather than
/// being refused; it is served from the control plane's runtime.
pub async fn bind(addr: &str) -> std::io::Result<std::net::TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(1024)) {
            Ok(listener) => return listener.into_std(),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the name has no address")))
}

/// Warns when the admin port listens beyond loopback: anyone who reaches it
/// can drain every backend and reload the configuration.
pub fn warn_if_exposed(addr: std::net::SocketAddr) {
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the admin port listens beyond loopback: anyone who reaches it can drain backends and reload; bind it to 127.0.0.1 (kubectl port-forward reaches it there) or firewall it (README, \"Operating it\")"
        );
    }
}

/// Serves the admin endpoints for as long as the process runs: through a
/// graceful shutdown too, so that `/readyz` can say 503.
pub async fn serve(listener: TcpListener, control: Arc<Control>, options: Options) {
    let options = Arc::new(options);
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections));
    loop {
        // A free slot first: at the cap, new connections wait in the
        // kernel's backlog instead of taking a descriptor here.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of descriptors, most likely: let some close.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(local) = stream.local_addr().map(|a| a.ip()) else {
            continue;
        };
        let control = Arc::clone(&control);
        let options = Arc::clone(&options);
        tokio::spawn(async move {
            let (head, idle) = (options.head_timeout, options.idle_timeout);
            let service = hyper::service::service_fn(move |req| {
                let control = Arc::clone(&control);
                let options = Arc::clone(&options);
                async move {
                    Ok::<_, std::convert::Infallible>(handle(req, &control, &options, local).await)
                }
            });
            conn::serve(stream, head, idle, service).await;
            drop(slot);
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    control: &Arc<Control>,
    options: &Options,
    local: IpAddr,
) -> Response<ClientBody> {
    if let Err(refusal) = guard::check(&req, &options.hosts, local) {
        return refused(refusal);
    }
    let path = req.uri().path().to_owned();
    let allowed = match path.as_str() {
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
        return method_not_allowed(&path, &allowed);
    }
    let query = req.uri().query().unwrap_or("").to_owned();
    // Nothing is done before the whole request has arrived.
    if let Err(refused) = read_body(req.into_body(), options).await {
        return refused;
    }
    answer(&path, &query, control).await
}

/// The answer to a caller [`guard::check`] refused.
fn refused(refusal: guard::Refusal) -> Response<ClientBody> {
    match refusal {
        guard::Refusal::NoHost => text(StatusCode::BAD_REQUEST, "HTTP/1.1 requests need a Host\n"),
        guard::Refusal::ForeignHost => text(
            StatusCode::MISDIRECTED_REQUEST,
            "this admin port answers to localhost, its IP addresses and --admin-host names only\n",
        ),
        guard::Refusal::CrossSite => text(
            StatusCode::FORBIDDEN,
            "cross-site requests may not change the gateway\n",
        ),
    }
}

/// 405 for `path`, which takes `allowed` (and `HEAD` with `GET`).
fn method_not_allowed(path: &str, allowed: &Method) -> Response<ClientBody> {
    let mut resp = text(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("{path} takes {allowed}\n"),
    );
    resp.headers_mut().insert(
        http::header::ALLOW,
        HeaderValue::from_static(if *allowed == Method::GET {
            "GET, HEAD"
        } else {
            "POST"
        }),
    );
    resp
}

/// Does what a checked request to `path` asks, and says how it went.
async fn answer(path: &str, query: &str, control: &Arc<Control>) -> Response<ClientBody> {
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if control.ready() => {
            // Still 200: the other Services serve, and every replica of
            // the gateway sees the same files.
            let mut says = String::from("ready\n");
            for service in control.empty_services() {
                says.push_str(&format!("Service {service}: 0 usable endpoints\n"));
            }
            text(StatusCode::OK, &says)
        }
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
        _ => match control.request_reload().await {
            Ok(()) => text(StatusCode::OK, "reloaded\n"),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("reload failed, the previous configuration keeps serving: {e}\n"),
            ),
        },
    }
}

/// Reads the request body whole (at most `--admin-max-body`, within
/// `--admin-head-timeout`), or says why not.
async fn read_body(body: Incoming, options: &Options) -> Result<(), Response<ClientBody>> {
    let read = Limited::new(body, options.max_body).collect();
    match tokio::time::timeout(options.head_timeout, read).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "admin request bodies are at most {} bytes\n",
                options.max_body
            ),
        )),
        Ok(Err(_)) => Err(text(
            StatusCode::BAD_REQUEST,
            "the request body broke off\n",
        )),
        Err(_) => Err(text(
            StatusCode::REQUEST_TIMEOUT,
            "the request body did not arrive in time\n",
        )),
    }
}

/// A plain-text answer, never sniffed as anything else.
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
    resp.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
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

/// What a client sent, for an error answer: escaped and at most 64
/// characters.
fn quoted(input: &str) -> String {
    let cut: String = input.chars().take(64).collect();
    if cut.len() < input.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}
