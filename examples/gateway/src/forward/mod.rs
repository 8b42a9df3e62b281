//! Steps 3 and 4 of a request: **pin** (`first_choice`, `repick`: the
//! rule's session engine decides the backend) and **forward** (this
//! worker's pool, reuse policy, retries), then the answer is assembled.
//!
//! Per request: the [`Router`](crate::router::Router) picks the rule; the
//! rule's [`StickySessions`](tower_sticky::sticky::StickySessions) verifies
//! the session value, strips it and decides the backend (or a weighted pick
//! for rules without persistence); the request goes upstream over a pooled
//! HTTP/1.1 connection with hop-by-hop headers removed and `X-Forwarded-*`
//! added, bodies streaming both ways; the decision writes `Set-Cookie` (or
//! the session header) on the response.
//!
//! Failures ([`crate::probe`] keeps the passive health): a backend that
//! refuses the connection, or whose fresh connection dies before any
//! response byte, gets a failure mark; `--down-after` consecutive marks take
//! it down. The request is re-pinned (new session value) and retried on
//! another backend when nothing of the answer has arrived and the request
//! can be sent again: nothing was sent (a refused connection: up to
//! [`MAX_RETRIES`] times), or its body was buffered whole (bodies up to
//! `--retry-buffer` are, before anything is sent; once). A response that
//! started and then broke is never retried. Under `--strict-sessions` a
//! session whose backend failed gets 503 instead of another backend.
//!
//! Error answers (400, 502, 503, 504) carry a short fixed reason; what went
//! wrong, with addresses and OS errors, goes to the request's log line.

pub mod probe;
mod replay;
pub mod upstream;

use crate::rules::{Rule, Target, Upstream};
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
pub use replay::Streamed;
use replay::{ReqBody, read_body};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tower_sticky::balance::{BackendState, Balance, Endpoint, InFlight, PickContext};
use tower_sticky::sticky::{Decision, InFlightBody, Outcome, RequestHead};

/// Body sent upstream: the client's, read whole (up to `--retry-buffer`,
/// so that it can be sent again), or streamed after the part read so far.
pub type UpstreamBody = Either<Full<Bytes>, Streamed>;
/// Body sent to the client: the backend's, streamed (its request counted
/// in flight on the backend until it ends), or the gateway's own.
pub type ClientBody = Either<InFlightBody<Incoming>, Full<Bytes>>;

/// How long a backend may take to send its response head.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an upgraded (WebSocket, …) tunnel may live.
const TUNNEL_MAX: Duration = Duration::from_secs(3600);
/// Attempts beyond the first for a request that nothing of was sent
/// (refused connections). A request that went out is retried at most once.
pub const MAX_RETRIES: usize = 3;
/// How many picks a retry may take to find a backend other than the one that
/// failed. The weighted balancer walks a golden-ratio sequence, so it can
/// land on the same backend several times in a row (twice in a row with two
/// equal weights; about `w / (total - w)` times for a backend of weight `w`):
/// one pick per endpoint (as before) was not enough with two, and a
/// session on a refused pod got 502 although the other pod was up.
const REPICK_TRIES: usize = 64;
/// How long a client may take to send a body that is being buffered.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Failure handling, from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// `--down-after`: consecutive failures that mark a backend down.
    pub down_after: u32,
    /// `--retry-buffer`: request bodies up to this size are read whole
    /// before anything is sent, so that they can be sent again.
    pub retry_buffer: usize,
    /// `--http-reuse`.
    pub reuse: crate::cli::Reuse,
    /// `--max-upstream-connections`, per endpoint and worker.
    pub max_upstream: usize,
    /// `--upstream-queue-timeout`.
    pub queue_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            down_after: 3,
            retry_buffer: 64 * 1024,
            reuse: crate::cli::Reuse::Safe,
            max_upstream: 128,
            queue_timeout: Duration::from_secs(5),
        }
    }
}

impl Options {
    /// With the connection reuse and limit flags.
    #[must_use]
    pub fn limits(mut self, limits: &crate::cli::Limits) -> Self {
        self.reuse = limits.reuse;
        self.max_upstream = limits.max_upstream_connections.max(1);
        self.queue_timeout = limits.upstream_queue_timeout;
        self
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
}

/// The proxy: rules and router. Upstream connections live in
/// [`upstream`]'s pool per worker thread.
#[derive(Debug)]
pub struct Proxy {
    /// The configuration snapshot; a request loads it once and keeps it.
    current: Arc<arc_swap::ArcSwap<crate::rules::Compiled>>,
    options: Options,
}

/// Where one attempt goes, and the session decision to write back.
struct Choice {
    endpoint: Arc<Endpoint<Upstream>>,
    decision: Option<Decision<Upstream>>,
    outcome: Option<Outcome>,
    /// The request counted in flight on `endpoint` (the library's
    /// `Endpoint::in_flight`, what `PowerOfTwoChoices` compares), from the
    /// pick until the response body or the upgraded tunnel ends.
    in_flight: Option<InFlight>,
}

impl Choice {
    fn new(
        endpoint: Arc<Endpoint<Upstream>>,
        decision: Option<Decision<Upstream>>,
        outcome: Option<Outcome>,
    ) -> Choice {
        let in_flight = match &decision {
            Some(decision) => decision.in_flight(),
            None => Some(InFlight::start(Arc::clone(&endpoint))),
        };
        Choice {
            endpoint,
            decision,
            outcome,
            in_flight,
        }
    }

    /// The request carried a valid session and went to its backend.
    fn resumed(&self) -> bool {
        self.outcome.is_some_and(Outcome::is_resumed)
    }
}

/// Why an attempt got no usable response. Each carries the detail for the
/// log, never for the client.
enum Failure {
    /// No connection: nothing was sent, the request comes back.
    Connect(Request<UpstreamBody>, String),
    /// The connection died after the request (or part of it) went out and
    /// before any byte of the answer; the request comes back if hyper had
    /// not started sending it.
    NoResponse {
        unsent: Option<Request<UpstreamBody>>,
        /// It was a pooled connection (a keep-alive race is likelier than a
        /// sick backend).
        reused: bool,
        detail: String,
    },
    /// Some of the answer arrived, then it broke or did not parse: never
    /// retried (the backend acted on the request).
    BadResponse(String),
    /// No response head in time.
    Timeout,
    /// The client's body broke while it was being forwarded.
    ClientBody(String),
    /// `--max-upstream-connections` reached and none freed within
    /// `--upstream-queue-timeout`: nothing was sent.
    Saturated,
}

/// What is kept of a request to send it again.
struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// `headers` has a `Host`.
    has_host: bool,
}

/// The gateway's own answers: a short, fixed reason each, so that no
/// address, port or error text reaches a client.
mod reason {
    use super::Answer;
    use http::StatusCode as S;
    pub const NO_ROUTE: Answer = (S::NOT_FOUND, "404 not found: no route matches\n");
    pub const NO_BACKEND_REFS: Answer = (
        S::INTERNAL_SERVER_ERROR,
        "500 internal server error: the route rule has no backends\n",
    );
    pub const NO_HOST: Answer = (
        S::BAD_REQUEST,
        "400 bad request: HTTP/1.1 request without Host\n",
    );
    pub const BAD_BODY: Answer = (S::BAD_REQUEST, "400 bad request: malformed request body\n");
    pub const SLOW_BODY: Answer = (
        S::REQUEST_TIMEOUT,
        "408 request timeout: the request body did not arrive in time\n",
    );
    pub const NO_BACKEND: Answer = (
        S::SERVICE_UNAVAILABLE,
        "503 service unavailable: no backend available\n",
    );
    pub const PIN_UNAVAILABLE: Answer = (
        S::SERVICE_UNAVAILABLE,
        "503 service unavailable: the session's backend is unavailable\n",
    );
    pub const BAD_GATEWAY: Answer = (
        S::BAD_GATEWAY,
        "502 bad gateway: the backend failed to answer\n",
    );
    pub const BODY_GONE: Answer = (
        S::BAD_GATEWAY,
        "502 bad gateway: the backend failed after the request body was sent; the body was too large to keep for a retry\n",
    );
    pub const TIMEOUT: Answer = (
        S::GATEWAY_TIMEOUT,
        "504 gateway timeout: the backend did not answer in time\n",
    );
    pub const SATURATED: Answer = (
        S::SERVICE_UNAVAILABLE,
        "503 service unavailable: the backend is busy\n",
    );
}

/// An answer the gateway writes itself: its status and its fixed text
/// (never an address or an error chain: those go to the log).
type Answer = (StatusCode, &'static str);

impl Proxy {
    /// A proxy over the snapshots that [`crate::reload`] swaps in.
    pub fn new(current: Arc<arc_swap::ArcSwap<crate::rules::Compiled>>, options: Options) -> Self {
        Proxy { current, options }
    }

    /// The current snapshot (for the prober).
    pub fn snapshot(&self) -> Arc<crate::rules::Compiled> {
        self.current.load_full()
    }

    /// Marks every endpoint at `addr`, in every rule, down.
    pub fn mark_down(&self, addr: &str, why: &str) {
        for rule in &self.snapshot().rules {
            for e in rule.target.backends().snapshot().endpoints() {
                if e.target().member.addr == addr && e.state() != BackendState::Down {
                    e.target().member.set_unhealthy(true);
                    e.set_state(BackendState::Down);
                    tracing::warn!(backend = %e.target().member.label, addr, route = %rule.route, rule = rule.index, "{why}: marked down");
                }
            }
        }
    }

    /// A failed attempt on `endpoint`: counts towards marking it down.
    fn failed(&self, endpoint: &Endpoint<Upstream>) {
        let failures = endpoint.target().member.health.failed();
        if failures >= self.options.down_after {
            self.mark_down(
                &endpoint.target().member.addr,
                &format!("{failures} consecutive failed attempts"),
            );
        }
    }

    /// Serves one client request.
    pub async fn serve(&self, mut req: Request<Incoming>, client: &Client) -> Response<ClientBody> {
        // What the access log needs, kept only when it is on.
        let access =
            tracing::enabled!(target: "gateway::access", tracing::Level::INFO).then(|| Access {
                start: Instant::now(),
                method: req.method().clone(),
                uri: req.uri().clone(),
            });
        let access = access.as_ref();
        // RFC 9112 §3.2: a server responds 400 to an HTTP/1.1 request
        // without Host (the backend's address must not stand in for it).
        if req.version() == Version::HTTP_11 && !req.headers().contains_key(http::header::HOST) {
            return refuse(access, None, None, reason::NO_HOST, "no Host");
        }
        // In-flight requests finish on the snapshot they started with.
        let compiled = self.current.load_full();
        let Some(index) = compiled.router.find(&req) else {
            return refuse(access, None, None, reason::NO_ROUTE, "-");
        };
        let rule = &compiled.rules[index];
        if rule.no_backend_refs {
            return refuse(access, Some(rule), None, reason::NO_BACKEND_REFS, "-");
        }
        let upgrade = crate::headers::upgrade_protocol(&req);
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let mut choice = match first_choice(rule, &mut req) {
            Ok(c) => c,
            Err(outcome) => return unavailable(access, rule, outcome, None, None),
        };

        let (parts, body) = req.into_parts();
        let mut head = Head {
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            has_host: false,
        };
        head.has_host = crate::headers::prepare_request(
            &mut head.headers,
            &head.uri,
            &client.ip,
            upgrade.as_ref(),
        );
        let deadline = crate::coarse::now() + BODY_TIMEOUT;
        let mut body =
            match crate::coarse::timeout_at(deadline, read_body(body, self.options.retry_buffer))
                .await
            {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    let why = format!("client body: {}", error_chain(&e));
                    return refuse(access, Some(rule), choice.outcome, reason::BAD_BODY, &why);
                }
                Err(_) => {
                    let why = "client body timed out";
                    return refuse(access, Some(rule), choice.outcome, reason::SLOW_BODY, why);
                }
            };

        // Refused connections may be retried MAX_RETRIES times (nothing was
        // sent); a request that went out, once.
        let mut refused_retries = 0;
        let mut sent_retry = false;
        let mut fresh_same = false;
        let failure = loop {
            let Some(up_body) = body.for_attempt() else {
                break Failure::NoResponse {
                    unsent: None,
                    reused: false,
                    detail: "request body already sent".into(),
                };
            };
            // Every attempt gets a copy of the headers: hyper keeps the map
            // it encoded to parse the response into.
            let up_req = upstream_request(&head, head.headers.clone(), up_body);
            let failure = match self
                .send(
                    &choice.endpoint,
                    up_req,
                    &client.owner,
                    upgrade.is_some(),
                    fresh_same,
                )
                .await
            {
                Ok(resp) => {
                    choice.endpoint.target().member.health.succeeded();
                    return self.respond(access, rule, &mut choice, resp, client_upgrade);
                }
                Err(f) => f,
            };
            fresh_same = false;
            let label = &choice.endpoint.target().member.label;
            let mut last_detail = String::new();
            match failure {
                Failure::Connect(unsent, detail) => {
                    tracing::warn!(backend = %label, route = %rule.route, rule = rule.index, "attempt failed: {detail}");
                    self.failed(&choice.endpoint);
                    body.put_back(unsent);
                    last_detail.clone_from(&detail);
                    if refused_retries == MAX_RETRIES {
                        break Failure::Connect(
                            Request::new(Either::Left(Full::default())),
                            detail,
                        );
                    }
                    refused_retries += 1;
                }
                Failure::NoResponse {
                    unsent,
                    reused,
                    detail,
                } => {
                    tracing::warn!(backend = %label, route = %rule.route, rule = rule.index, reused, "attempt failed before any response byte: {detail}");
                    let was_unsent = unsent.is_some();
                    if let Some(unsent) = unsent {
                        body.put_back(unsent);
                    }
                    if reused && body.replayable() {
                        // Likely the backend closed an idle connection as
                        // the request went out: once more on a fresh
                        // connection to the same backend, not counted.
                        fresh_same = true;
                        continue;
                    }
                    self.failed(&choice.endpoint);
                    last_detail.clone_from(&detail);
                    if !body.replayable() || (sent_retry && !was_unsent) {
                        break Failure::NoResponse {
                            unsent: None,
                            reused,
                            detail,
                        };
                    }
                    sent_retry = true;
                }
                other => break other,
            }
            // Another backend, under a new session (or 503 if strict).
            if rule.strict && choice.resumed() {
                return unavailable(
                    access,
                    rule,
                    Some(Outcome::PinnedUnavailable),
                    Some(&choice.endpoint),
                    Some("the session's backend failed (strict sessions)"),
                );
            }
            match repick(rule, &head, &choice) {
                Some(next) => choice = next,
                None => {
                    break Failure::BadResponse(format!(
                        "{last_detail}; no other backend to retry on"
                    ));
                }
            }
        };
        let (answer, detail) = match failure {
            Failure::Connect(_, detail) | Failure::BadResponse(detail) => {
                (reason::BAD_GATEWAY, detail)
            }
            Failure::NoResponse { detail, .. } if matches!(body, ReqBody::Streamed(_)) => {
                (reason::BODY_GONE, detail)
            }
            Failure::NoResponse { detail, .. } => (reason::BAD_GATEWAY, detail),
            Failure::Timeout => (
                reason::TIMEOUT,
                format!("no response head within {RESPONSE_TIMEOUT:?}"),
            ),
            Failure::ClientBody(detail) => (reason::BAD_BODY, detail),
            Failure::Saturated => (
                reason::SATURATED,
                "every upstream connection to the backend stayed busy".into(),
            ),
        };
        let status = answer.0;
        let endpoint = Some(&choice.endpoint);
        log(
            access,
            Some(rule),
            choice.outcome,
            endpoint,
            status,
            Some(&detail),
        );
        if access.is_none() {
            tracing::warn!(route = %rule.route, rule = rule.index, backend = %choice.endpoint.target().member.label, status = status.as_u16(), "request failed: {detail}");
        }
        error(answer)
    }

    /// The backend's response, with hop-by-hop headers out, the backend's
    /// own copy of the session cookie out, and the session written back.
    fn respond(
        &self,
        access: Option<&Access>,
        rule: &Rule,
        choice: &mut Choice,
        mut resp: Response<Incoming>,
        client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    ) -> Response<ClientBody> {
        let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
        match client_upgrade {
            Some(client_upgrade) if switching => {
                let upstream_upgrade = hyper::upgrade::on(&mut resp);
                let protocol = resp.headers().get(UPGRADE).cloned();
                crate::headers::strip_hop_by_hop(resp.headers_mut());
                if let Some(p) = protocol {
                    resp.headers_mut().insert(UPGRADE, p);
                    resp.headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("upgrade"));
                }
                tokio::spawn(tunnel(
                    client_upgrade,
                    upstream_upgrade,
                    choice.in_flight.take(),
                ));
            }
            _ => crate::headers::strip_hop_by_hop(resp.headers_mut()),
        }
        let upstream = choice.endpoint.target();
        upstream.requests_metric.increment(1);
        upstream.member.requests.fetch_add(1, Ordering::Relaxed);
        if choice
            .outcome
            .is_some_and(|o| !o.is_resumed() && o != Outcome::NoBackend)
        {
            upstream.member.sessions.fetch_add(1, Ordering::Relaxed);
        }
        if let Target::Sticky(sessions) = &rule.target {
            crate::headers::strip_session(resp.headers_mut(), sessions.policy());
        }
        if let Some(decision) = choice.decision.take() {
            if decision.issue().is_some() {
                crate::headers::make_private(resp.headers_mut());
            }
            decision.apply(resp.headers_mut());
        }
        log(
            access,
            Some(rule),
            choice.outcome,
            Some(&choice.endpoint),
            resp.status(),
            None,
        );
        let in_flight = choice.in_flight.take();
        resp.map(|body| Either::Left(InFlightBody::new(body, in_flight)))
    }

    /// One attempt: over a pooled connection of this worker, or a fresh
    /// one (always fresh for an upgrade, whose connection becomes the
    /// tunnel, and when `fresh`).
    async fn send(
        &self,
        endpoint: &Endpoint<Upstream>,
        req: Request<UpstreamBody>,
        owner: &upstream::Owner,
        upgrade: bool,
        fresh: bool,
    ) -> Result<Response<Incoming>, Failure> {
        // Shown by `/backends` until the response head is in: an operator
        // who drained a backend sees when it has nothing left to answer.
        let _waiting = crate::discover::membership::Waiting::start(&endpoint.target().member);
        let addr = endpoint.target().member.addr.as_str();
        let fresh = upgrade || fresh;
        let (mut conn, mut reused) = match upstream::acquire(addr, owner, &self.options, fresh)
            .await
        {
            Ok(got) => got,
            Err(upstream::Acquire::Connect(detail)) => return Err(Failure::Connect(req, detail)),
            Err(upstream::Acquire::Saturated) => return Err(Failure::Saturated),
        };
        let watch = match req.body() {
            Either::Right(s) => Some(Arc::clone(&s.watch)),
            Either::Left(_) => None,
        };
        // A coarse per-worker deadline: no timer-wheel entry per request.
        let deadline = crate::coarse::now() + RESPONSE_TIMEOUT;
        let mut req = req;
        // At most twice: a pooled connection that closed before taking the
        // request hands it back unsent, and it goes out on a fresh one.
        loop {
            let read_before = conn.read.load(Ordering::Relaxed);
            match crate::coarse::timeout_at(deadline, conn.sender.try_send_request(req)).await {
                Ok(Ok(resp)) => {
                    if !upgrade {
                        upstream::checkin(addr, owner, conn);
                    }
                    return Ok(resp);
                }
                Ok(Err(mut e)) => {
                    let unsent = e.take_message();
                    let detail = format!("{addr}: {}", error_chain(&e.into_error()));
                    if watch
                        .as_ref()
                        .is_some_and(|w| w.client_error.load(Ordering::Relaxed))
                    {
                        return Err(Failure::ClientBody(detail));
                    }
                    if conn.read.load(Ordering::Relaxed) != read_before {
                        return Err(Failure::BadResponse(detail));
                    }
                    match unsent {
                        Some(unsent) if reused => {
                            req = unsent;
                            reused = false;
                            conn = match upstream::acquire(addr, owner, &self.options, true).await {
                                Ok((c, _)) => c,
                                Err(upstream::Acquire::Connect(detail)) => {
                                    return Err(Failure::Connect(req, detail));
                                }
                                Err(upstream::Acquire::Saturated) => {
                                    return Err(Failure::Saturated);
                                }
                            };
                        }
                        unsent => {
                            return Err(Failure::NoResponse {
                                unsent,
                                reused,
                                detail,
                            });
                        }
                    }
                }
                Err(_) => return Err(Failure::Timeout),
            }
        }
    }
}

/// 503: no backend can take the request, or (strict sessions) the
/// session's backend cannot.
/// An answer the gateway writes itself, before any backend was tried
/// (`detail` goes to the access log; `-` for none).
fn refuse(
    access: Option<&Access>,
    rule: Option<&Rule>,
    outcome: Option<Outcome>,
    answer: Answer,
    detail: &str,
) -> Response<ClientBody> {
    let detail = (detail != "-").then_some(detail);
    log(access, rule, outcome, None, answer.0, detail);
    error(answer)
}

fn unavailable(
    access: Option<&Access>,
    rule: &Rule,
    outcome: Option<Outcome>,
    endpoint: Option<&Arc<Endpoint<Upstream>>>,
    detail: Option<&str>,
) -> Response<ClientBody> {
    let mut resp = error(if outcome == Some(Outcome::PinnedUnavailable) {
        reason::PIN_UNAVAILABLE
    } else {
        reason::NO_BACKEND
    });
    resp.headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    log(access, Some(rule), outcome, endpoint, resp.status(), detail);
    resp
}

/// The backend for a request: the session's, or a new pick.
fn first_choice(rule: &Rule, req: &mut Request<Incoming>) -> Result<Choice, Option<Outcome>> {
    match &rule.target {
        Target::Sticky(sessions) => {
            let decision = sessions.route(req);
            let outcome = decision.outcome();
            match decision.endpoint().cloned() {
                Some(endpoint) => Ok(Choice::new(endpoint, Some(decision), Some(outcome))),
                None => Err(Some(outcome)),
            }
        }
        Target::Plain { backends, balancer } => {
            let snapshot = backends.snapshot();
            let ctx = PickContext {
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
            };
            balancer
                .pick(&ctx, &snapshot)
                .and_then(|i| snapshot.endpoints().get(i).cloned())
                .map(|endpoint| Choice::new(endpoint, None, None))
                .ok_or(None)
        }
    }
}

/// After `previous` failed: a new session on another backend. The balancer
/// does not know which one failed (it may not be down yet), so it is asked
/// up to [`REPICK_TRIES`] times for a different one.
fn repick(rule: &Rule, head: &Head, previous: &Choice) -> Option<Choice> {
    let other = |e: &Arc<Endpoint<Upstream>>| e.id() != previous.endpoint.id();
    let snapshot = rule.target.backends().snapshot();
    if !snapshot
        .endpoints()
        .iter()
        .any(|e| other(e) && e.takes_new_sessions())
    {
        return None;
    }
    match &rule.target {
        Target::Sticky(sessions) => {
            for _ in 0..REPICK_TRIES {
                let request = RequestHead::new(&head.method, &head.uri, &head.headers);
                let decision = sessions.repin(request, Outcome::RepinnedDown);
                let outcome = decision.outcome();
                let endpoint = decision.endpoint().cloned()?;
                if other(&endpoint) {
                    return Some(Choice::new(endpoint, Some(decision), Some(outcome)));
                }
            }
            None
        }
        Target::Plain { balancer, .. } => {
            let ctx = PickContext {
                method: &head.method,
                uri: &head.uri,
                headers: &head.headers,
            };
            (0..REPICK_TRIES)
                .filter_map(|_| balancer.pick(&ctx, &snapshot))
                .filter_map(|i| snapshot.endpoints().get(i).cloned())
                .find(other)
                .map(|endpoint| Choice::new(endpoint, None, None))
        }
    }
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

/// A response the gateway writes itself.
pub fn error((status, body): Answer) -> Response<ClientBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

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

/// What the access log line of a request needs from its start.
struct Access {
    start: Instant,
    method: Method,
    uri: Uri,
}

/// The access log line (nothing when the access log is off).
fn log(
    access: Option<&Access>,
    rule: Option<&Rule>,
    outcome: Option<Outcome>,
    endpoint: Option<&Arc<Endpoint<Upstream>>>,
    status: StatusCode,
    error: Option<&str>,
) {
    let Some(access) = access else { return };
    tracing::info!(
        target: "gateway::access",
        method = %access.method,
        path = access.uri.path(),
        route = rule.map_or("-", |r| r.route.as_str()),
        rule = rule.map_or(-1, |r| r.index as i64),
        outcome = outcome.map_or("-", Outcome::as_str),
        backend = endpoint.map_or("-", |e| e.target().member.label.as_str()),
        status = status.as_u16(),
        error = error.unwrap_or("-"),
        latency_us = access.start.elapsed().as_micros() as u64,
    );
}
