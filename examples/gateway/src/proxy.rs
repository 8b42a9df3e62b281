//! The reverse proxy: route, pin, forward, write the session back.
//!
//! Per request: the [`Router`](crate::router::Router) picks the rule; the
//! rule's [`StickySessions`](tower_sticky::sticky::StickySessions) verifies
//! the session value, strips it and decides the backend (or a weighted pick
//! for rules without persistence); the request goes upstream over a pooled
//! HTTP/1.1 connection with hop-by-hop headers removed and `X-Forwarded-*`
//! added, bodies streaming both ways; the decision writes `Set-Cookie` (or
//! the session header) on the response.
//!
//! A backend that refuses the connection is marked down (the prober brings
//! it back) and, when the request had no body to lose, the session is
//! re-pinned with a new value and the request retried elsewhere; otherwise
//! the client gets a 502.

use crate::rules::{Rule, Target, Upstream};
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::{Either, Empty, Full};
use hyper::body::{Body, Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower_sticky::balance::{BackendState, Balance, Endpoint, PickContext};
use tower_sticky::sticky::{Decision, Outcome, RequestHead};

/// Body sent upstream: the client's, streamed, or nothing (which lets a
/// refused request be retried).
pub type UpstreamBody = Either<Incoming, Empty<Bytes>>;
/// Body sent to the client: the backend's, streamed, or the gateway's own.
pub type ClientBody = Either<Incoming, Full<Bytes>>;

/// How long connecting to a backend may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a backend may take to send its response head.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an upgraded (WebSocket, …) tunnel may live.
const TUNNEL_MAX: Duration = Duration::from_secs(3600);
/// Attempts beyond the first for a request that can be retried.
const MAX_RETRIES: usize = 3;
/// Idle upstream connections kept per backend address and worker thread.
const MAX_IDLE_PER_UPSTREAM: usize = 256;

/// The proxy: rules and router. Upstream connections live in a pool per
/// worker thread ([`POOL`]).
#[derive(Debug)]
pub struct Proxy {
    compiled: crate::rules::Compiled,
}

thread_local! {
    /// This worker's HTTP/1.1 connections to each backend address. Every
    /// worker runs a single-threaded runtime, so a connection, its task and
    /// the requests sent over it stay on one thread: no locks, no channel
    /// between threads. A sender goes back in as soon as its response head
    /// is out, and is only taken again once `is_ready()` says the previous
    /// response is done with.
    static POOL: RefCell<HashMap<String, Vec<SendRequest<UpstreamBody>>, AddrHash>> =
        RefCell::new(HashMap::default());
}

/// FNV-1a for the pool's keys: backend addresses come from the operator's
/// configuration, not from clients, so SipHash's flooding resistance buys
/// nothing on this per-request lookup.
type AddrHash = std::hash::BuildHasherDefault<Fnv>;

/// See [`AddrHash`].
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// An idle connection to `addr` ready for a request, if this worker has one.
fn checkout(addr: &str) -> Option<SendRequest<UpstreamBody>> {
    POOL.with_borrow_mut(|pool| {
        let idle = pool.get_mut(addr)?;
        // Bounded by MAX_IDLE_PER_UPSTREAM.
        let mut i = idle.len();
        while i > 0 {
            i -= 1;
            if idle[i].is_closed() {
                idle.swap_remove(i);
            } else if idle[i].is_ready() {
                return Some(idle.swap_remove(i));
            }
        }
        None
    })
}

/// Puts a connection back, to be reused once its response is done.
fn checkin(addr: &str, sender: SendRequest<UpstreamBody>) {
    if sender.is_closed() {
        return;
    }
    POOL.with_borrow_mut(|pool| {
        if let Some(idle) = pool.get_mut(addr) {
            if idle.len() < MAX_IDLE_PER_UPSTREAM {
                idle.push(sender);
            }
        } else {
            pool.insert(addr.to_owned(), vec![sender]);
        }
    });
}

/// A new connection to `addr` (`TCP_NODELAY`), its task spawned on this
/// worker.
async fn connect(addr: &str) -> Result<SendRequest<UpstreamBody>, SendError> {
    let stream =
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(_)) | Err(_) => return Err(SendError::Connect),
        };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        // Request heads are small: one buffer, one plain send.
        .writev(false)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| SendError::Other(error_chain(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("upstream connection: {e}");
        }
    });
    Ok(sender)
}

/// Where one attempt goes, and the session decision to write back.
struct Choice {
    endpoint: Arc<Endpoint<Upstream>>,
    decision: Option<Decision<Upstream>>,
    outcome: Option<Outcome>,
}

/// Why an attempt got no response.
enum SendError {
    /// The backend refused or did not accept the connection: nothing was
    /// sent.
    Connect,
    /// No response head in time.
    Timeout,
    /// Anything else; the request may have reached the backend.
    Other(String),
}

/// What is kept of a request to send it again.
struct Head {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    /// `headers` has a `Host`.
    has_host: bool,
}

impl Proxy {
    /// A proxy over compiled rules.
    pub fn new(compiled: crate::rules::Compiled) -> Self {
        Proxy { compiled }
    }

    /// The rules (for metrics and the prober).
    pub fn rules(&self) -> &[Rule] {
        &self.compiled.rules
    }

    /// Marks every endpoint at `addr`, in every rule, down.
    pub fn mark_down(&self, addr: &str) {
        for rule in self.rules() {
            for e in rule.target.backends().snapshot().endpoints() {
                if e.target().addr == addr && e.state() != BackendState::Down {
                    e.set_state(BackendState::Down);
                    tracing::warn!(backend = %e.target().label, addr, route = %rule.route, rule = rule.index, "backend refused a connection: marked down");
                }
            }
        }
    }

    /// Serves one client request.
    pub async fn serve(
        &self,
        mut req: Request<Incoming>,
        client_ip: &HeaderValue,
    ) -> Response<ClientBody> {
        // What the access log needs, kept only when it is on.
        let access =
            tracing::enabled!(target: "gateway::access", tracing::Level::INFO).then(|| Access {
                start: Instant::now(),
                method: req.method().clone(),
                uri: req.uri().clone(),
            });
        let access = access.as_ref();
        let Some(index) = self.compiled.router.find(&req) else {
            let resp = error(StatusCode::NOT_FOUND, "no route matches\n");
            log(access, None, None, None, resp.status());
            return resp;
        };
        let rule = &self.compiled.rules[index];
        if rule.no_backend_refs {
            let resp = error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the rule has no backendRefs\n",
            );
            log(access, Some(rule), None, None, resp.status());
            return resp;
        }
        let upgrade = crate::headers::upgrade_protocol(&req);
        let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
        let mut choice = match first_choice(rule, &mut req) {
            Ok(c) => c,
            Err(outcome) => {
                let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, "no backend available\n");
                resp.headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                log(access, Some(rule), outcome, None, resp.status());
                return resp;
            }
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
            client_ip,
            upgrade.as_ref(),
        );
        // Nothing to lose by sending it twice: no body bytes leave the
        // gateway before the connection exists.
        let retryable = body.is_end_stream();
        let mut body = Some(body);
        let attempts = if retryable {
            1 + MAX_RETRIES.min(rule.target.backends().snapshot().len())
        } else {
            1
        };
        let mut result = Err(SendError::Other("no attempt".into()));
        for attempt in 0..attempts {
            let last = attempt + 1 == attempts;
            let up_body = match body.take() {
                Some(b) if !retryable => Either::Left(b),
                _ => Either::Right(Empty::new()),
            };
            // The last attempt takes the headers (nothing reads them after
            // it). Otherwise the request gets the original map and a copy
            // stays for the next attempt: hyper keeps the map it encoded
            // to parse the response into, and the original has the spare
            // capacity that a copy (exactly as long as its contents) lacks.
            let headers = if last {
                std::mem::take(&mut head.headers)
            } else {
                let copy = head.headers.clone();
                std::mem::replace(&mut head.headers, copy)
            };
            let up_req = upstream_request(&head, headers, &choice.endpoint, up_body);
            result = self.send(&choice.endpoint, up_req, upgrade.is_some()).await;
            match &result {
                Ok(_) => break,
                Err(SendError::Connect) => {
                    self.mark_down(&choice.endpoint.target().addr);
                    if last {
                        break;
                    }
                    match repick(rule, &head, &choice) {
                        Some(next) => choice = next,
                        None => break,
                    }
                }
                // A pooled connection the backend closed under us: the
                // same backend again, for methods that may be repeated.
                Err(SendError::Other(_)) if retryable && idempotent(&head.method) && !last => {}
                Err(_) => break,
            }
        }

        let mut resp = match result {
            Ok(resp) => resp,
            Err(e) => {
                let (status, why) = match e {
                    SendError::Connect => (
                        StatusCode::BAD_GATEWAY,
                        "backend refused the connection\n".to_owned(),
                    ),
                    SendError::Timeout => (
                        StatusCode::GATEWAY_TIMEOUT,
                        "backend did not answer in time\n".to_owned(),
                    ),
                    SendError::Other(e) => {
                        (StatusCode::BAD_GATEWAY, format!("backend error: {e}\n"))
                    }
                };
                let resp = error(status, &why);
                log(
                    access,
                    Some(rule),
                    choice.outcome,
                    Some(&choice.endpoint),
                    resp.status(),
                );
                return resp;
            }
        };
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
                tokio::spawn(tunnel(client_upgrade, upstream_upgrade));
            }
            _ => crate::headers::strip_hop_by_hop(resp.headers_mut()),
        }
        choice
            .endpoint
            .target()
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(decision) = choice.decision.take() {
            decision.apply(resp.headers_mut());
        }
        log(
            access,
            Some(rule),
            choice.outcome,
            Some(&choice.endpoint),
            resp.status(),
        );
        resp.map(Either::Left)
    }

    /// One attempt: over a pooled connection of this worker, or a fresh
    /// one (always fresh for an upgrade, whose connection becomes the
    /// tunnel).
    async fn send(
        &self,
        endpoint: &Endpoint<Upstream>,
        req: Request<UpstreamBody>,
        upgrade: bool,
    ) -> Result<Response<Incoming>, SendError> {
        let addr = endpoint.target().addr.as_str();
        let pooled = if upgrade { None } else { checkout(addr) };
        let reused = pooled.is_some();
        let mut sender = match pooled {
            Some(s) => s,
            None => connect(addr).await?,
        };
        // A coarse per-worker deadline: no timer-wheel entry per request.
        let deadline = crate::coarse::now() + RESPONSE_TIMEOUT;
        let mut req = req;
        // At most twice: a pooled connection that closed before taking the
        // request hands it back unsent, and it goes out on a fresh one.
        for second in [false, true] {
            match crate::coarse::timeout_at(deadline, sender.try_send_request(req)).await {
                Ok(Ok(resp)) => {
                    if !upgrade {
                        checkin(addr, sender);
                    }
                    return Ok(resp);
                }
                Ok(Err(mut e)) => match e.take_message() {
                    Some(unsent) if reused && !second => {
                        req = unsent;
                        sender = connect(addr).await?;
                    }
                    _ => return Err(SendError::Other(error_chain(&e.into_error()))),
                },
                Err(_) => return Err(SendError::Timeout),
            }
        }
        Err(SendError::Other("connection closed twice".into()))
    }
}

/// The backend for a request: the session's, or a new pick.
fn first_choice(rule: &Rule, req: &mut Request<Incoming>) -> Result<Choice, Option<Outcome>> {
    match &rule.target {
        Target::Sticky(sessions) => {
            let decision = sessions.route(req);
            let outcome = decision.outcome();
            match decision.endpoint().cloned() {
                Some(endpoint) => Ok(Choice {
                    endpoint,
                    decision: Some(decision),
                    outcome: Some(outcome),
                }),
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
                .map(|endpoint| Choice {
                    endpoint,
                    decision: None,
                    outcome: None,
                })
                .ok_or(None)
        }
    }
}

/// After `previous` refused the connection (and was marked down): a new
/// session on another backend.
fn repick(rule: &Rule, head: &Head, previous: &Choice) -> Option<Choice> {
    match &rule.target {
        Target::Sticky(sessions) => {
            let request = RequestHead::new(&head.method, &head.uri, &head.headers);
            let decision = sessions.repin(request, Outcome::RepinnedDown);
            let outcome = decision.outcome();
            decision.endpoint().cloned().map(|endpoint| Choice {
                endpoint,
                decision: Some(decision),
                outcome: Some(outcome),
            })
        }
        Target::Plain { backends, balancer } => {
            let snapshot = backends.snapshot();
            let ctx = PickContext {
                method: &head.method,
                uri: &head.uri,
                headers: &head.headers,
            };
            balancer
                .pick(&ctx, &snapshot)
                .and_then(|i| snapshot.endpoints().get(i).cloned())
                .filter(|e| e.id() != previous.endpoint.id())
                .map(|endpoint| Choice {
                    endpoint,
                    decision: None,
                    outcome: None,
                })
        }
    }
}

fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
    )
}

/// The request for one attempt, aimed at `endpoint`: origin-form
/// (`/path?query`), with the client's `Host`, or the backend's authority
/// when the client sent none.
fn upstream_request(
    head: &Head,
    mut headers: HeaderMap,
    endpoint: &Endpoint<Upstream>,
    body: UpstreamBody,
) -> Request<UpstreamBody> {
    let path = head
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    if !head.has_host
        && let Ok(host) = HeaderValue::from_str(endpoint.target().authority.as_str())
    {
        headers.insert(http::header::HOST, host);
    }
    let mut req = Request::new(body);
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = Uri::from(path);
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    req
}

/// Joins the client's and the backend's upgraded connections.
async fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
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
pub fn error(status: StatusCode, body: &str) -> Response<ClientBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::copy_from_slice(
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
) {
    let Some(access) = access else { return };
    tracing::info!(
        target: "gateway::access",
        method = %access.method,
        path = access.uri.path(),
        route = rule.map_or("-", |r| r.route.as_str()),
        rule = rule.map_or(-1, |r| r.index as i64),
        outcome = outcome.map_or("-", Outcome::as_str),
        backend = endpoint.map_or("-", |e| e.target().label.as_str()),
        status = status.as_u16(),
        latency_us = access.start.elapsed().as_micros() as u64,
    );
}
