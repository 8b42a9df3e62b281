//! The layer with failover: [`StickyFailoverLayer`] and its service.

use super::future::no_backend;
use super::{
    DecisionParts, InFlightBody, Outcome, Pinned, RequestHead, ResponseBody, StickySessions,
};
use crate::balance::{Balance, InFlight, RoundRobin};
use crate::failover::{
    Classify, ConnectErrors, Failure, Next, PassiveHealth, ReplayBody, RetryRules,
};
use bytes::Buf;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Bodies up to this many bytes are held so that a failed request can be
/// sent again: 64 KiB.
pub const DEFAULT_BUFFER_LIMIT: usize = 64 * 1024;

/// Sticky sessions with failover: a [`StickyLayer`](super::StickyLayer)
/// whose service, when the inner (proxy) service fails in a way the
/// [`Classify`] calls a backend failure, marks the backend's health
/// ([`PassiveHealth`]), re-decides the request with one new session cookie
/// on a backend it has not tried
/// ([`StickySessions::repin_excluding`]), and sends it again, within
/// [`RetryRules`] (RFC 9110 §9.2.2: a request the backend may have acted on
/// is sent again only if its method is idempotent).
///
/// Built with [`StickyLayer::failover`](super::StickyLayer::failover); the
/// defaults: [`ConnectErrors`] (a refused connection is a failure),
/// [`RetryRules::new`], [`PassiveHealth::new`], bodies held up to
/// [`DEFAULT_BUFFER_LIMIT`].
///
/// An ejected backend stays out until something revives it: run a
/// `failover::Prober` (feature `prober`) over the same backends, or call
/// [`HealthCell::revive`](crate::balance::HealthCell::revive). Meanwhile
/// the panic rule keeps a set whose every backend is ejected serving.
#[must_use]
pub struct StickyFailoverLayer<T, B = RoundRobin, C = ConnectErrors> {
    config: Config<T, B, C>,
}

struct Config<T, B, C> {
    sessions: StickySessions<T, B>,
    classify: C,
    rules: RetryRules,
    health: PassiveHealth,
    buffer_limit: usize,
}

impl<T, B, C: Clone> Clone for Config<T, B, C> {
    fn clone(&self) -> Self {
        Config {
            sessions: self.sessions.clone(),
            classify: self.classify.clone(),
            rules: self.rules,
            health: self.health,
            buffer_limit: self.buffer_limit,
        }
    }
}

impl<T, B, C: Clone> Clone for StickyFailoverLayer<T, B, C> {
    fn clone(&self) -> Self {
        StickyFailoverLayer {
            config: self.config.clone(),
        }
    }
}

impl<T, B, C> fmt::Debug for StickyFailoverLayer<T, B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StickyFailoverLayer")
            .field("rules", &self.config.rules)
            .field("health", &self.config.health)
            .field("buffer_limit", &self.config.buffer_limit)
            .finish_non_exhaustive()
    }
}

impl<T, B> StickyFailoverLayer<T, B, ConnectErrors> {
    pub(super) fn new(sessions: StickySessions<T, B>) -> Self {
        StickyFailoverLayer {
            config: Config {
                sessions,
                classify: ConnectErrors,
                rules: RetryRules::new(),
                health: PassiveHealth::new(),
                buffer_limit: DEFAULT_BUFFER_LIMIT,
            },
        }
    }
}

impl<T, B, C> StickyFailoverLayer<T, B, C> {
    /// Which inner errors are backend failures, and of which kind.
    pub fn classify<C2>(self, classify: C2) -> StickyFailoverLayer<T, B, C2> {
        let c = self.config;
        StickyFailoverLayer {
            config: Config {
                sessions: c.sessions,
                classify,
                rules: c.rules,
                health: c.health,
                buffer_limit: c.buffer_limit,
            },
        }
    }

    /// When and how often a failed request is sent again.
    pub fn retry_rules(mut self, rules: RetryRules) -> Self {
        self.config.rules = rules;
        self
    }

    /// What failures do to a backend's health.
    pub fn passive_health(mut self, health: PassiveHealth) -> Self {
        self.config.health = health;
        self
    }

    /// The largest request body held for a retry (bytes); a larger one is
    /// streamed and sent once.
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.config.buffer_limit = bytes;
        self
    }

    /// The shared engine.
    pub fn sessions(&self) -> &StickySessions<T, B> {
        &self.config.sessions
    }
}

impl<S, T, B, C: Clone> Layer<S> for StickyFailoverLayer<T, B, C> {
    type Service = StickyFailover<S, T, B, C>;

    fn layer(&self, inner: S) -> Self::Service {
        StickyFailover {
            inner,
            config: Arc::new(self.config.clone()),
        }
    }
}

/// The service of [`StickyFailoverLayer`].
///
/// # Bounds, and why
///
/// * `S: Service<Request<ReplayBody<ReqBody>>> + Clone + Send + 'static`:
///   the inner service gets a [`ReplayBody`] (the client's body, held whole
///   up to the bound so it can be sent again) and is cloned for each retry;
///   the response future is boxed (`Send`), since a retry loop awaits the
///   client's body, the inner service's readiness and several calls.
/// * `ReqBody: Body + Unpin + Send`: it is read (up to the bound) before
///   the first attempt. hyper's `Incoming` and axum's `Body` qualify.
/// * `C: Classify<S::Error>`: decides which errors are backend failures.
///   Errors it does not classify reach the caller unchanged.
/// * No bound on the response body: answers the layer writes itself (503,
///   502, 504, 400) use [`ResponseBody`]'s own empty body.
pub struct StickyFailover<S, T, B = RoundRobin, C = ConnectErrors> {
    inner: S,
    config: Arc<Config<T, B, C>>,
}

impl<S: Clone, T, B, C> Clone for StickyFailover<S, T, B, C> {
    fn clone(&self) -> Self {
        StickyFailover {
            inner: self.inner.clone(),
            config: Arc::clone(&self.config),
        }
    }
}

impl<S: fmt::Debug, T, B, C> fmt::Debug for StickyFailover<S, T, B, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StickyFailover")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

type BoxFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, T, B, C, ReqBody, ResBody> Service<Request<ReqBody>> for StickyFailover<S, T, B, C>
where
    S: Service<Request<ReplayBody<ReqBody>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    ReqBody: Body + Unpin + Send + 'static,
    ReqBody::Data: Buf + Send,
    ReqBody::Error: Send,
    ResBody: Send + 'static,
    T: Send + Sync + 'static,
    B: Balance<T>,
    C: Classify<S::Error>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The ready service takes the first attempt; retries ready clones.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(attempts(ready, Arc::clone(&self.config), req))
    }
}

/// One request's life through the failover layer.
async fn attempts<S, T, B, C, ReqBody, ResBody>(
    mut svc: S,
    config: Arc<Config<T, B, C>>,
    mut req: Request<ReqBody>,
) -> Result<Response<ResponseBody<ResBody>>, S::Error>
where
    S: Service<Request<ReplayBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    ReqBody: Body + Unpin,
    ReqBody::Data: Buf,
    T: Send + Sync + 'static,
    B: Balance<T>,
    C: Classify<S::Error>,
{
    let sessions = &config.sessions;
    let DecisionParts {
        mut outcome,
        endpoint,
        rewrite,
        session_header: mut issue,
        ..
    } = sessions.decide(RequestHead::of(&req)).into_parts();
    let Some(mut endpoint) = endpoint else {
        return Ok(no_backend());
    };
    if let Some(rewrite) = rewrite {
        rewrite.apply(req.headers_mut());
    }
    let tls = RequestHead::of(&req).is_tls();
    let (parts, body) = req.into_parts();
    let Ok(body) = ReplayBody::read(body, config.buffer_limit).await else {
        return Ok(answer(StatusCode::BAD_REQUEST));
    };
    let replay = if body.is_replayable() {
        crate::failover::BodyReplay::Replayable
    } else {
        crate::failover::BodyReplay::Streamed
    };
    let mut tries = config.rules.start(&parts.method, replay);
    let mut body = Some(body);
    let mut first = true;
    loop {
        let Some(this_body) = body
            .as_ref()
            .and_then(ReplayBody::replay)
            .or_else(|| body.take())
        else {
            return Ok(answer(StatusCode::BAD_GATEWAY));
        };
        let mut attempt = Request::new(this_body);
        *attempt.method_mut() = parts.method.clone();
        *attempt.uri_mut() = parts.uri.clone();
        *attempt.version_mut() = parts.version;
        *attempt.headers_mut() = parts.headers.clone();
        *attempt.extensions_mut() = parts.extensions.clone();
        attempt
            .extensions_mut()
            .insert(Pinned::new(Arc::clone(&endpoint), outcome));
        let in_flight = InFlight::start(Arc::clone(&endpoint));
        if !first {
            std::future::poll_fn(|cx| svc.poll_ready(cx)).await?;
        }
        first = false;
        let error = match svc.call(attempt).await {
            Ok(mut response) => {
                config.health.succeeded(&endpoint);
                if let Some(issue) = issue.take() {
                    issue.apply(response.headers_mut());
                }
                return Ok(
                    response.map(|b| ResponseBody::backend(InFlightBody::new(b, Some(in_flight))))
                );
            }
            Err(error) => error,
        };
        drop(in_flight);
        let Some(failure) = config.classify.classify(&error) else {
            return Err(error);
        };
        let verdict = tries.failed(endpoint.id(), failure);
        let set = sessions.backends().snapshot();
        config.health.failed(&set, &endpoint, verdict.blame);
        if verdict.next != Next::Retry {
            let status = if failure == Failure::Timeout {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            return Ok(answer(status));
        }
        let head = RequestHead::new(&parts.method, &parts.uri, &parts.headers).tls(tls);
        let next = sessions
            .repin_excluding(head, Outcome::RepinnedDown, tries.tried())
            .into_parts();
        let Some(next_endpoint) = next.endpoint else {
            return Ok(no_backend());
        };
        (endpoint, outcome, issue) = (next_endpoint, next.outcome, next.session_header);
        // The session the client sent is gone with its backend: the retry's
        // new cookie is the only one written.
    }
}

/// An answer the layer writes itself: an empty body, no detail (no
/// address, no error chain).
fn answer<B>(status: StatusCode) -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::generated());
    *response.status_mut() = status;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
