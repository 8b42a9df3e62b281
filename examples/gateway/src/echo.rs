//! An echo backend in the format of the Gateway API conformance echo server.
//!
//! Shared by `examples/echo.rs` (one process per pod) and the gateway (its
//! in-process replicas for Services no `--backend` maps). Every request gets
//! pretty-printed JSON, one field per line and indented by one space, so that
//! `curl … | grep pod` prints exactly one line:
//!
//! ```text
//! {
//!  "path": "/get",
//!  "host": "localhost:8888",
//!  "method": "GET",
//!  "proto": "HTTP/1.1",
//!  "headers": {
//!   "accept": [
//!    "*/*"
//!   ]
//!  },
//!  "namespace": "default",
//!  "ingress": "gateway",
//!  "service": "backend",
//!  "pod": "backend-765694d47f-lxwdf"
//! }
//! ```
//!
//! Two extras make the gateway testable: `x-echo-delay-ms: N` (at most 10 s)
//! delays the answer, and `x-echo-body: 1` streams the request body back
//! instead of the JSON. A request with `Upgrade` (other than `h2c`) is
//! answered `101` and the upgraded connection echoes its bytes back.

use http::header::{CONNECTION, CONTENT_TYPE, UPGRADE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Who this echo server claims to be.
#[derive(Clone, Debug)]
pub struct EchoInfo {
    /// The pod name, e.g. `backend-765694d47f-lxwdf`.
    pub pod: String,
    /// The Service it belongs to.
    pub service: String,
    /// The Service's namespace.
    pub namespace: String,
    /// The gateway (ingress) name reported in the JSON.
    pub ingress: String,
}

/// The echo's response body: JSON, or the request body streamed back.
pub type EchoBody = Either<Full<Bytes>, Incoming>;

/// The longest delay `x-echo-delay-ms` may ask for.
const MAX_DELAY: Duration = Duration::from_secs(10);
/// How long an upgraded (echoing) connection may live.
const MAX_TUNNEL: Duration = Duration::from_secs(60);

/// Serves echo requests on `listener` until `shutdown` completes; HTTP/1.1
/// and h2c, with upgrades.
pub async fn serve(
    listener: TcpListener,
    info: Arc<EchoInfo>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: back off, keep serving.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let info = Arc::clone(&info);
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let info = Arc::clone(&info);
                async move { Ok::<_, Infallible>(handle(req, &info).await) }
            });
            // A client that breaks the protocol only ends its own connection.
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Answers one request.
pub async fn handle(mut req: Request<Incoming>, info: &EchoInfo) -> Response<EchoBody> {
    if let Some(ms) = header_str(req.headers(), "x-echo-delay-ms").and_then(|v| v.parse().ok()) {
        tokio::time::sleep(Duration::from_millis(ms).min(MAX_DELAY)).await;
    }
    if let Some(protocol) = req.headers().get(UPGRADE).cloned()
        && !protocol.as_bytes().eq_ignore_ascii_case(b"h2c")
    {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                let _ = tokio::time::timeout(MAX_TUNNEL, echo_bytes(TokioIo::new(upgraded))).await;
            }
        });
        let mut resp = Response::new(Either::Left(Full::new(Bytes::new())));
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        resp.headers_mut().insert(UPGRADE, protocol);
        resp.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("upgrade"));
        insert_backend(resp.headers_mut(), info);
        return resp;
    }
    if req.headers().contains_key("x-echo-body") {
        let mut resp = Response::new(Either::Right(req.into_body()));
        insert_backend(resp.headers_mut(), info);
        return resp;
    }
    let body = render(&req, info);
    let mut resp = Response::new(Either::Left(Full::new(Bytes::from(body))));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Copies what an upgraded connection sends straight back to it.
async fn echo_bytes(mut io: TokioIo<hyper::upgrade::Upgraded>) {
    let mut buf = [0u8; 4096];
    loop {
        match io.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if io.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Names the pod in a header for responses that carry no JSON.
fn insert_backend(headers: &mut HeaderMap, info: &EchoInfo) {
    if let Ok(v) = HeaderValue::from_str(&info.pod) {
        headers.insert("x-echo-backend", v);
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The JSON document for `req`, one field per line, one space of indent.
///
/// Only the last line may contain `pod`: any other occurrence (a client
/// header, a path, a Service called `podinfo`) is written with the JSON
/// escape `p\u006fd`, which decodes to the same text.
pub fn render<B>(req: &Request<B>, info: &EchoInfo) -> String {
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut out = String::with_capacity(512);
    out.push_str("{\n");
    field(&mut out, "path", path);
    field(&mut out, "host", &host_of(req));
    field(&mut out, "method", req.method().as_str());
    field(&mut out, "proto", &format!("{:?}", req.version()));
    headers_field(&mut out, req.headers());
    field(&mut out, "namespace", &info.namespace);
    field(&mut out, "ingress", &info.ingress);
    field(&mut out, "service", &info.service);
    let mut out = out.replace("pod", "p\\u006fd");
    let _ = write!(out, " \"pod\": {}\n}}\n", json(&info.pod));
    out
}

/// The `Host` header, else the URI's authority (HTTP/2), else nothing.
fn host_of<B>(req: &Request<B>) -> String {
    header_str(req.headers(), "host")
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
}

/// The `"headers"` field: every name once, in order, with its values as
/// they came.
fn headers_field(out: &mut String, headers: &HeaderMap) {
    let mut by_name: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        by_name
            .entry(name.as_str())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    out.push_str(" \"headers\": {");
    for (i, (name, values)) in by_name.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        let _ = write!(out, "  {}: [", json(name));
        for (j, v) in values.iter().enumerate() {
            out.push_str(if j == 0 { "\n" } else { ",\n" });
            let _ = write!(out, "   {}", json(v));
        }
        out.push_str("\n  ]");
    }
    out.push_str(if by_name.is_empty() {
        "},\n"
    } else {
        "\n },\n"
    });
}

fn field(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(out, " \"{name}\": {},", json(value));
}

fn json(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// Kubernetes-looking pod names for `count` replicas of `service`:
/// `<service>-<10 chars>-<5 chars>`, derived from the Service name so that
/// every run (and every gateway replica) names them the same.
pub fn pod_names(service: &str, count: usize) -> Vec<String> {
    // The alphabet Kubernetes uses for generated names (no vowels, no
    // look-alikes).
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let pick = |seed: &[u8], n: usize| -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(seed);
        digest
            .iter()
            .take(n)
            .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
            .collect()
    };
    let template = pick(format!("template/{service}").as_bytes(), 10);
    let mut names: Vec<String> = Vec::with_capacity(count);
    let mut attempt = 0usize;
    // Bounded: each attempt adds a name unless its suffix collides, which
    // is rare; 64 extra attempts per name is far more than ever needed.
    while names.len() < count && attempt < count * 64 + 64 {
        let name = format!(
            "{service}-{template}-{}",
            pick(format!("pod/{service}/{attempt}").as_bytes(), 5)
        );
        if !names.contains(&name) {
            names.push(name);
        }
        attempt += 1;
    }
    names
}
