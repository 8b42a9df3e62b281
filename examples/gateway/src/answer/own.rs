//! Every answer the gateway writes itself, in one place: a status and a
//! short fixed line each, so that no address, port or error text reaches a
//! client (the detail goes to the request's access log line, or a warning).
//!
//! Two answers are not here because hyper writes them before a request
//! exists: 431 for a head over `--max-header-bytes` / `--max-headers`, and
//! 408/400 for a head that is late or malformed.

use crate::config::rules::{Rule, Upstream};
use crate::forward::ClientBody;
use http::{HeaderValue, Method, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Bytes;
use std::sync::Arc;
use std::time::Instant;
use tower_sticky::balance::Endpoint;
use tower_sticky::sticky::Outcome;

/// An answer the gateway writes itself: its status and its fixed text.
pub type Answer = (StatusCode, &'static str);

use StatusCode as S;

/// No rule matches the request.
pub const NO_ROUTE: Answer = (S::NOT_FOUND, "404 not found: no route matches\n");
/// The matched rule has no `backendRefs`.
pub const NO_BACKEND_REFS: Answer = (
    S::INTERNAL_SERVER_ERROR,
    "500 internal server error: the route rule has no backends\n",
);
/// HTTP/1.1 without `Host` (RFC 9112 §3.2).
pub const NO_HOST: Answer = (
    S::BAD_REQUEST,
    "400 bad request: HTTP/1.1 request without Host\n",
);
/// The request carries this gateway's own `Via` element: it came back
/// (RFC 5842 §7.2), so it is not sent round again.
pub const LOOP: Answer = (
    S::LOOP_DETECTED,
    "508 loop detected: the request came back to this gateway\n",
);
/// A head that HAProxy refuses as ambiguous (several `Host` fields,
/// `chunked` twice): see `answer::headers::ambiguous`.
pub const AMBIGUOUS_HEAD: Answer = (S::BAD_REQUEST, "400 bad request: ambiguous request head\n");
/// The client's body broke (a malformed chunk).
pub const BAD_BODY: Answer = (S::BAD_REQUEST, "400 bad request: malformed request body\n");
/// The client's body did not arrive in time.
pub const SLOW_BODY: Answer = (
    S::REQUEST_TIMEOUT,
    "408 request timeout: the request body did not arrive in time\n",
);
/// No endpoint can take the request.
pub const NO_BACKEND: Answer = (
    S::SERVICE_UNAVAILABLE,
    "503 service unavailable: no backend available\n",
);
/// Strict sessions: the session's endpoint cannot take it.
pub const PIN_UNAVAILABLE: Answer = (
    S::SERVICE_UNAVAILABLE,
    "503 service unavailable: the session's backend is unavailable\n",
);
/// No usable answer, and nothing allowed another attempt.
pub const BAD_GATEWAY: Answer = (
    S::BAD_GATEWAY,
    "502 bad gateway: the backend failed to answer\n",
);
/// An idempotent request whose body was too large to keep went out, then
/// the backend failed.
pub const BODY_GONE: Answer = (
    S::BAD_GATEWAY,
    "502 bad gateway: the backend failed after the request body was sent; the body was too large to keep for a retry\n",
);
/// A request that is not idempotent went out, then the backend failed: it
/// may have been acted on, so it is not sent again (RFC 9110 §9.2.2).
pub const NOT_REPLAYED: Answer = (
    S::BAD_GATEWAY,
    "502 bad gateway: the backend failed after the request was sent; it is not sent again, as it may have been acted on\n",
);
/// No response head within the response timeout.
pub const TIMEOUT: Answer = (
    S::GATEWAY_TIMEOUT,
    "504 gateway timeout: the backend did not answer in time\n",
);
/// `--max-upstream-connections` reached and none freed in time.
pub const SATURATED: Answer = (
    S::SERVICE_UNAVAILABLE,
    "503 service unavailable: the backend is busy\n",
);

/// Marks a response as the gateway's own answer, with its text: a gRPC
/// call gets it as a gRPC status instead ([`super::grpc`]).
#[derive(Clone, Copy, Debug)]
pub struct OwnText(pub &'static str);

/// The response for `answer` (503s say `Retry-After: 1`).
pub fn response((status, body): Answer) -> Response<ClientBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))));
    *resp.status_mut() = status;
    resp.extensions_mut().insert(OwnText(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if status == S::SERVICE_UNAVAILABLE && body != SATURATED.1 {
        resp.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    // After a request body that broke or stalled, or a head whose framing
    // or authority is ambiguous, where the next request starts is unknown:
    // the connection closes rather than read whatever follows as a request
    // (hyper's server would read on).
    if body == BAD_BODY.1 || body == SLOW_BODY.1 || body == AMBIGUOUS_HEAD.1 {
        resp.headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// What the access log line of a request needs from its start (`None`
/// when the access log is off).
#[derive(Debug)]
pub struct Access {
    start: Instant,
    method: Method,
    uri: Uri,
}

impl Access {
    /// Starts timing `req`, when the access log is on.
    pub fn start<B>(req: &http::Request<B>) -> Option<Access> {
        tracing::enabled!(target: "gateway::access", tracing::Level::INFO).then(|| Access {
            start: Instant::now(),
            method: req.method().clone(),
            uri: req.uri().clone(),
        })
    }
}

/// What an access log line says about who answered.
#[derive(Clone, Copy, Default)]
pub struct Line<'a> {
    /// The rule, once routed.
    pub rule: Option<&'a Rule>,
    /// The session outcome, once pinned.
    pub outcome: Option<Outcome>,
    /// The endpoint of the last attempt.
    pub endpoint: Option<&'a Arc<Endpoint<Upstream>>>,
}

/// The access log line (nothing when the access log is off).
pub fn log(access: Option<&Access>, line: Line<'_>, status: StatusCode, error: Option<&str>) {
    let Some(access) = access else { return };
    tracing::info!(
        target: "gateway::access",
        method = %access.method,
        path = access.uri.path(),
        route = line.rule.map_or("-", |r| r.route.as_str()),
        rule = line.rule.map_or(-1, |r| r.index as i64),
        outcome = line.outcome.map_or("-", Outcome::as_str),
        backend = line.endpoint.map_or("-", |e| e.target().member.label.as_str()),
        status = status.as_u16(),
        error = error.unwrap_or("-"),
        latency_us = access.start.elapsed().as_micros() as u64,
    );
}

/// `answer`, logged with `detail` (for the log only); a warning carries
/// the detail of a failed attempt when the access log is off.
pub fn write(
    access: Option<&Access>,
    line: Line<'_>,
    answer: Answer,
    detail: Option<&str>,
) -> Response<ClientBody> {
    response(logged(access, line, answer, detail))
}

/// [`write()`]'s logging: `answer`, once logged (for a step that returns
/// the answer to its caller, as `forward::decide` does).
pub fn logged(
    access: Option<&Access>,
    line: Line<'_>,
    answer: Answer,
    detail: Option<&str>,
) -> Answer {
    log(access, line, answer.0, detail);
    if access.is_none()
        && let (Some(rule), Some(endpoint), Some(detail)) = (line.rule, line.endpoint, detail)
    {
        tracing::warn!(route = %rule.route, rule = rule.index, backend = %endpoint.target().member.label, status = answer.0.as_u16(), "request failed: {detail}");
    }
    answer
}
