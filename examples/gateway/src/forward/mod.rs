//! Step 4 of a request: **forward**. The request goes upstream over a
//! connection its client connection owns ([`upstream`]), one attempt at a
//! time (`send`); after a failure, `attempt` decides whether it may go
//! again (RFC 9110 §9.2.2) and who is to blame (passive health); the
//! answer is then assembled ([`crate::answer`]).
//!
//! [`Proxy::serve`] reads top to bottom in the order a request lives:
//! the Host check, [route](crate::route), [pin](mod@crate::pin), the body kept
//! for a retry when the method allows one (`replay`), attempts, answer.
//!
//! The steps that decide (`decide`: Host, `Via` loop, route, pin) and
//! the response edits (`edit_response`) are functions of their own, which
//! HTTP/1 and HTTP/2 requests share.
//!
//! Passive health: a backend that refuses a connection is marked down at
//! once; one that fails after the request went out gets a failure mark
//! (not when the same request already failed elsewhere: then the request
//! may be the cause), and `--down-after` consecutive marks take it down.
//! [`probe`] revives backends. Under `--strict-sessions` a session whose
//! backend failed gets 503 instead of another backend.

mod attempt;
mod h2;
pub mod health;
pub mod probe;
mod replay;
mod send;
pub mod upstream;

use crate::answer::own::{self, Access, Answer, Line};
use crate::config::rules::{Rule, Upstream};
use crate::pin::{self, Choice};
use attempt::{Failure, Next, Retry};
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
pub use replay::Streamed;
use replay::{ReqBody, read_body};
pub use send::RESPONSE_TIMEOUT;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tower_sticky::balance::{Endpoint, InFlight};
use tower_sticky::failover::PassiveHealth;
use tower_sticky::sticky::{InFlightBody, Outcome};

/// Body sent upstream: the client's, read whole (up to `--retry-buffer`,
/// so that it can be sent again), or streamed after the part read so far.
pub type UpstreamBody = Either<Full<Bytes>, Streamed>;
/// Body sent to the client: the backend's, streamed (its request counted
/// in flight on the backend until it ends), or the gateway's own.
pub type ClientBody = Either<InFlightBody<Incoming>, Full<Bytes>>;

/// How long an upgraded (WebSocket, …) tunnel may live.
const TUNNEL_MAX: Duration = Duration::from_secs(3600);
/// How long a client may take to send a body that is being buffered.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Failure handling and upstream limits, from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `--down-after`: consecutive failures that mark a backend down.
    pub down_after: u32,
    /// `--retry-buffer`: bodies of idempotent requests up to this size are
    /// read whole before anything is sent, so that they can be sent again.
    pub retry_buffer: usize,
    /// `--http-reuse`.
    pub reuse: crate::cli::Reuse,
    /// `--max-upstream-connections`, per endpoint and worker.
    pub max_upstream: usize,
    /// `--upstream-queue-timeout`.
    pub queue_timeout: Duration,
}

impl Options {
    /// The options the command line gives.
    pub fn from_args(args: &crate::cli::Args) -> Self {
        Options {
            down_after: args.down_after,
            retry_buffer: args.retry_buffer,
            reuse: args.limits.reuse,
            max_upstream: args.limits.max_upstream_connections.max(1),
            queue_timeout: args.limits.upstream_queue_timeout,
        }
    }
}

/// What a client connection hands each of its requests: the client's
/// address (for `X-Forwarded-For`) and its claim on the upstream
/// connections it opens ([`upstream::Owner`]).
#[derive(Debug)]
pub struct Client {
    /// The client's IP address, as a header value.
    pub ip: HeaderValue,
    /// The upstream connections this client connection owns.
    pub owner: upstream::Owner,
    /// TLS, trusted proxy: for `X-Forwarded-*`.
    pub origin: crate::answer::headers::Origin,
}

/// The proxy: the current snapshot of rules and router, and the options.
/// Upstream connections live in [`upstream`]'s pool per worker thread.
#[derive(Debug)]
pub struct Proxy {
    /// The configuration snapshot; a request loads it once and keeps it.
    current: Arc<arc_swap::ArcSwap<crate::config::rules::Compiled>>,
    options: Options,
    /// The library's passive health rules, for `--down-after`.
    passive: PassiveHealth,
}

/// What is kept of a request to send it again.
struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// `headers` has a `Host`.
    has_host: bool,
}

/// A routed and pinned request, ready for its attempts.
struct Routed<'a> {
    access: Option<&'a Access>,
    rule: &'a Rule,
    choice: Choice,
    head: Head,
    body: ReqBody,
    /// The client's side of an upgrade (WebSocket, …).
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
}

impl Proxy {
    /// A proxy over the snapshots that [`crate::reload`] swaps in.
    pub fn new(
        current: Arc<arc_swap::ArcSwap<crate::config::rules::Compiled>>,
        options: Options,
    ) -> Self {
        Proxy {
            current,
            passive: health::rules(options.down_after),
            options,
        }
    }

    /// The current snapshot (for the prober).
    pub fn snapshot(&self) -> Arc<crate::config::rules::Compiled> {
        self.current.load_full()
    }

    /// Serves one client request: Host check, route, pin, body, attempts,
    /// answer. A gRPC call gets the gateway's own answers as gRPC statuses
    /// ([`crate::answer::grpc`]).
    pub async fn serve(&self, req: Request<Incoming>, client: &Client) -> Response<ClientBody> {
        if crate::route::grpc::is_grpc(&req) {
            crate::answer::grpc::own_as_grpc(self.serve_http(req, client).await)
        } else {
            self.serve_http(req, client).await
        }
    }

    /// [`serve`](Self::serve), the gateway's own answers as HTTP ones.
    async fn serve_http(
        &self,
        mut req: Request<Incoming>,
        client: &Client,
    ) -> Response<ClientBody> {
        let access = Access::start(&req);
        let access = access.as_ref();
        // What HAProxy refuses, and hyper's parser reads.
        let body_follows = !hyper::body::Body::is_end_stream(req.body());
        if let Some(why) = crate::answer::headers::ambiguous(req.headers(), body_follows) {
            return own::write(access, Line::default(), own::AMBIGUOUS_HEAD, Some(why));
        }
        // In-flight requests finish on the snapshot they started with.
        let compiled = self.current.load_full();
        let upgrade = crate::answer::headers::upgrade_protocol(&req);
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let Decided { rule, choice } = match decide(&compiled, access, &mut req) {
            Ok(decided) => decided,
            Err(answer) => return own::response(answer),
        };
        let line = Line {
            rule: Some(rule),
            outcome: Some(choice.outcome),
            endpoint: None,
        };
        let (parts, body) = req.into_parts();
        let head = Self::head(parts, client, upgrade.as_ref());
        let body = match self.body(&head.method, body).await {
            Ok(body) => body,
            Err((answer, why)) => return own::write(access, line, answer, Some(&why)),
        };
        let mut routed = Routed {
            access,
            rule,
            choice,
            head,
            body,
            client_upgrade,
        };
        self.attempts(&mut routed, client).await
    }

    /// The request's head with hop-by-hop headers out and `X-Forwarded-*`
    /// in (built where it stays: a request's future is moved about, and
    /// every layer that returns the head copies it).
    fn head(parts: http::request::Parts, client: &Client, upgrade: Option<&HeaderValue>) -> Head {
        let mut head = Head {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            has_host: false,
        };
        head.has_host = crate::answer::headers::prepare_request(
            &mut head.headers,
            &head.uri,
            &client.ip,
            upgrade,
            client.origin,
            parts.version,
        );
        head
    }

    /// The request's body: read whole when the method may be retried after
    /// it went out and the body fits `--retry-buffer`, else streamed.
    async fn body(&self, method: &Method, body: Incoming) -> Result<ReqBody, (Answer, String)> {
        // Most requests have no body: no deadline to arm, no reading
        // future to build and move (callgrind: memcpy, the coarse clock).
        if hyper::body::Body::is_end_stream(&body) {
            return Ok(ReqBody::Whole(Bytes::new()));
        }
        // A request that is not idempotent is never sent twice once it went
        // out, so its body is never kept: it streams.
        let bound = if tower_sticky::failover::is_idempotent(method) {
            self.options.retry_buffer
        } else {
            0
        };
        let deadline = crate::listen::coarse::now() + BODY_TIMEOUT;
        match crate::listen::coarse::timeout_at(deadline, read_body(body, bound)).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => Err((own::BAD_BODY, format!("client body: {}", error_chain(&e)))),
            Err(_) => Err((own::SLOW_BODY, "client body timed out".into())),
        }
    }

    /// Attempts until one gets a response head or `Retry` says stop.
    async fn attempts(&self, r: &mut Routed<'_>, client: &Client) -> Response<ClientBody> {
        let mut retry = Retry::new(&r.head.method);
        let upgrade = r.client_upgrade.is_some();
        let mut fresh = false;
        let failure = loop {
            let Some(up_body) = r.body.for_attempt() else {
                break Failure::BadResponse("request body already sent".into());
            };
            // Every attempt gets a copy of the headers: hyper keeps the map
            // it encoded to parse the response into.
            let req = upstream_request(&r.head, r.head.headers.clone(), up_body);
            let endpoint = &r.choice.endpoint;
            let failure =
                match send::send(endpoint, req, &client.owner, &self.options, upgrade, fresh).await
                {
                    Ok(resp) => {
                        health::succeeded(&self.passive, endpoint);
                        let upgrade = r.client_upgrade.take();
                        return respond(r.access, r.rule, &mut r.choice, resp, upgrade);
                    }
                    Err(f) => f,
                };
            log_failure(r.rule, endpoint, &failure.failure);
            let (next, blame) = retry.after(endpoint.id(), failure, &mut r.body);
            health::failed(&self.passive, r.rule, endpoint, blame);
            fresh = false;
            match next {
                Next::SameFresh => fresh = true,
                Next::Stop(failure) => break failure,
                Next::Other => {
                    if r.rule.strict && r.choice.resumed() {
                        let why = Some("the session's backend failed (strict sessions)");
                        let outcome = Some(Outcome::PinnedUnavailable);
                        return unavailable(
                            r.access,
                            r.rule,
                            outcome,
                            Some(&r.choice.endpoint),
                            why,
                        );
                    }
                    let head = pin::Head {
                        method: &r.head.method,
                        uri: &r.head.uri,
                        headers: &r.head.headers,
                    };
                    match pin::repick(r.rule, &head, retry.tried()) {
                        Some(next) => r.choice = next,
                        None => break Failure::BadResponse("no other backend to retry on".into()),
                    }
                }
            }
        };
        let line = Line {
            rule: Some(r.rule),
            outcome: Some(r.choice.outcome),
            endpoint: Some(&r.choice.endpoint),
        };
        let kept = matches!(r.body, ReqBody::Whole(_));
        let (answer, detail) = answer_for(failure, &r.head.method, kept);
        own::write(r.access, line, answer, Some(&detail))
    }
}

/// The warning for a failed attempt.
fn log_failure(rule: &Rule, endpoint: &Endpoint<Upstream>, failure: &Failure) {
    let label = &endpoint.target().member.label;
    match failure {
        Failure::Refused(detail)
        | Failure::NotWritten { detail, .. }
        | Failure::StreamRefused(detail) => {
            tracing::warn!(backend = %label, route = %rule.route, rule = rule.index, "attempt failed: {detail}");
        }
        Failure::AfterWrite { reused, detail } => {
            tracing::warn!(backend = %label, route = %rule.route, rule = rule.index, reused, "attempt failed before any response byte: {detail}");
        }
        _ => {}
    }
}

/// The gateway's answer for the failure that ended a request's attempts,
/// and the detail for the log.
/// `body_kept`: the request's body was read whole (or there was none), so
/// it was at hand for another attempt.
fn answer_for(failure: Failure, method: &Method, body_kept: bool) -> (Answer, String) {
    match failure {
        Failure::Refused(detail)
        | Failure::NotWritten { detail, .. }
        | Failure::StreamRefused(detail)
        | Failure::BadResponse(detail) => (own::BAD_GATEWAY, detail),
        Failure::AfterWrite { detail, .. } if !tower_sticky::failover::is_idempotent(method) => {
            (own::NOT_REPLAYED, detail)
        }
        Failure::AfterWrite { detail, .. } if !body_kept => (own::BODY_GONE, detail),
        Failure::AfterWrite { detail, .. } => (own::BAD_GATEWAY, detail),
        Failure::Timeout => (
            own::TIMEOUT,
            format!("no response head within {RESPONSE_TIMEOUT:?}"),
        ),
        Failure::ClientBody(detail) => (own::BAD_BODY, detail),
        Failure::Saturated => (
            own::SATURATED,
            "every upstream connection to the backend stayed busy".into(),
        ),
    }
}

/// A request that goes upstream: its rule, and where it is pinned.
struct Decided<'a> {
    /// The rule that matched.
    rule: &'a Rule,
    /// The endpoint of the first attempt and the session decision.
    choice: Choice,
}

/// The steps that decide where a request goes: the Host check, the `Via`
/// loop check, the route, a rule without backends, and the pin (which
/// strips the session value from `req`). `Err`: the gateway's own answer,
/// already logged.
fn decide<'a, B>(
    compiled: &'a crate::config::rules::Compiled,
    access: Option<&Access>,
    req: &mut Request<B>,
) -> Result<Decided<'a>, Answer> {
    // RFC 9112 §3.2: a server responds 400 to an HTTP/1.1 request
    // without Host (the backend's address must not stand in for it).
    if req.version() == Version::HTTP_11 && !req.headers().contains_key(http::header::HOST) {
        return Err(own::logged(
            access,
            Line::default(),
            own::NO_HOST,
            Some("no Host"),
        ));
    }
    // A backend that leads back here (a `dns:` name of the gateway's
    // own address): refused before any backend is picked.
    if crate::answer::headers::looped(req.headers()) {
        return Err(own::logged(
            access,
            Line::default(),
            own::LOOP,
            Some("own Via"),
        ));
    }
    let Some(index) = compiled.router.find(req) else {
        return Err(own::logged(access, Line::default(), own::NO_ROUTE, None));
    };
    let rule = &compiled.rules[index];
    let line = Line {
        rule: Some(rule),
        ..Line::default()
    };
    if rule.no_backend_refs {
        return Err(own::logged(access, line, own::NO_BACKEND_REFS, None));
    }
    match pin::first(rule, req) {
        Ok(choice) => Ok(Decided { rule, choice }),
        Err(outcome) => Err(unavailable_answer(access, rule, Some(outcome), None, None)),
    }
}

/// The edits every backend response gets: hop-by-hop headers out (for a
/// 101 that completes an upgrade, `switching`, the `Upgrade` and
/// `Connection: upgrade` kept), the
/// backend's own copy of the session cookie out, the session written back
/// (`Set-Cookie`, and `Cache-Control: private` with it), the request and
/// session counters, and the access log line.
fn edit_response(
    access: Option<&Access>,
    rule: &Rule,
    choice: &mut Choice,
    parts: &mut http::response::Parts,
    switching: bool,
) {
    let headers = &mut parts.headers;
    if switching {
        let protocol = headers.get(UPGRADE).cloned();
        crate::answer::headers::strip_hop_by_hop(headers);
        if let Some(p) = protocol {
            headers.insert(UPGRADE, p);
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
    } else {
        crate::answer::headers::strip_hop_by_hop(headers);
    }
    if let Some(policy) = rule.target.policy() {
        crate::answer::headers::strip_session(headers, policy);
    }
    if let Some(decision) = choice.decision.take() {
        if decision.session_header().is_some() {
            crate::answer::headers::make_private(headers);
        }
        decision.apply(headers);
    }
    let upstream = choice.endpoint.target();
    upstream.requests_metric.increment(1);
    upstream.member.requests.fetch_add(1, Ordering::Relaxed);
    if choice.new_session() {
        upstream.member.sessions.fetch_add(1, Ordering::Relaxed);
    }
    let line = Line {
        rule: Some(rule),
        outcome: Some(choice.outcome),
        endpoint: Some(&choice.endpoint),
    };
    own::log(access, line, parts.status, None);
}

/// The backend's response, with hop-by-hop headers out, the backend's
/// own copy of the session cookie out, and the session written back.
fn respond(
    access: Option<&Access>,
    rule: &Rule,
    choice: &mut Choice,
    resp: Response<Incoming>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Response<ClientBody> {
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let mut resp = resp;
    let tunnel_to = match client_upgrade {
        Some(client_upgrade) if switching => Some((client_upgrade, hyper::upgrade::on(&mut resp))),
        _ => None,
    };
    let (mut parts, body) = resp.into_parts();
    edit_response(access, rule, choice, &mut parts, tunnel_to.is_some());
    if let Some((client_upgrade, upstream_upgrade)) = tunnel_to {
        tokio::spawn(tunnel(
            client_upgrade,
            upstream_upgrade,
            choice.in_flight.take(),
        ));
    }
    let in_flight = choice.in_flight.take();
    Response::from_parts(parts, Either::Left(InFlightBody::new(body, in_flight)))
}

/// 503: no backend can take the request, or (strict sessions) the
/// session's backend cannot.
fn unavailable(
    access: Option<&Access>,
    rule: &Rule,
    outcome: Option<Outcome>,
    endpoint: Option<&Arc<Endpoint<Upstream>>>,
    detail: Option<&str>,
) -> Response<ClientBody> {
    own::response(unavailable_answer(access, rule, outcome, endpoint, detail))
}

/// [`unavailable`]'s answer, logged. `endpoint`: the one whose attempt
/// failed, when there was an attempt.
fn unavailable_answer(
    access: Option<&Access>,
    rule: &Rule,
    outcome: Option<Outcome>,
    endpoint: Option<&Arc<Endpoint<Upstream>>>,
    detail: Option<&str>,
) -> Answer {
    // A session refused after its attempt failed (strict sessions): the
    // engine counted it `resumed`, the refusal is the gateway's to count.
    // The engine's own refusals come with no endpoint.
    if outcome == Some(Outcome::PinnedUnavailable) && endpoint.is_some() {
        pin::refused_strictly(rule);
    }
    let answer = if outcome == Some(Outcome::PinnedUnavailable) {
        own::PIN_UNAVAILABLE
    } else {
        own::NO_BACKEND
    };
    let line = Line {
        rule: Some(rule),
        outcome,
        endpoint,
    };
    own::log(access, line, answer.0, detail);
    answer
}

/// The request for one attempt: origin-form (`/path?query`), with the
/// client's `Host`. A request without one (HTTP/1.0; HTTP/1.1 without Host
/// is refused) gets an empty `Host`, as RFC 9112 §3.2 asks of a request
/// without authority: the backend's address never stands in for it.
fn upstream_request(
    head: &Head,
    mut headers: HeaderMap,
    body: UpstreamBody,
) -> Request<UpstreamBody> {
    let path = head
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    if !head.has_host {
        headers.insert(http::header::HOST, HeaderValue::from_static(""));
    }
    let mut req = Request::new(body);
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = Uri::from(path);
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    req
}

/// Joins the client's and the backend's upgraded connections.
async fn tunnel(
    client: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    // Counted in flight until the tunnel closes.
    _in_flight: Option<InFlight>,
) {
    let (Ok(client), Ok(upstream)) = tokio::join!(client, upstream) else {
        return;
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    let _ = tokio::time::timeout(
        TUNNEL_MAX,
        tokio::io::copy_bidirectional(&mut client, &mut upstream),
    )
    .await;
}

/// An error and its sources, for the log.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    // Bounded: error chains are short; stop at 8 links regardless.
    for _ in 0..8 {
        let Some(inner) = source else { break };
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
