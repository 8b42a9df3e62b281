use super::future::ResponseFuture;
use super::{Pinned, RequestHead, ResponseBody, SessionHeader, StickyLayer, StickySessions};
use crate::balance::{Balance, InFlight, RoundRobin};
use http::{Request, Response};
use std::task::{Context, Poll};
use tower_service::Service;

/// Middleware that pins each request to a backend by its session; see the
/// [module docs](super).
///
/// # Bounds, and why
///
/// * `S: Service<Request<ReqBody>, Response = Response<ResBody>>`: any
///   request and response body; the inner service finds its backend in the
///   request's [`Pinned`] extension. Its error type is kept as it is.
/// * `T: Send + Sync + 'static`: the backend target is shared, in an `Arc`,
///   by the membership, the request extension and the in-flight guard.
/// * `B: Balance<T>`: picks backends for new sessions.
/// * No bound on `ResBody`: the response is `Response<ResponseBody<ResBody>>`,
///   and the layer's own `503` uses [`ResponseBody`]'s empty body, so a body
///   without `Default` (hyper's `Incoming`) goes through.
/// * `Clone` when `S: Clone`: each clone shares the same sessions.
///
/// No failover here: see [`StickyFailover`](super::StickyFailover).
#[derive(Debug)]
pub struct Sticky<S, T, B = RoundRobin> {
    inner: S,
    sessions: StickySessions<T, B>,
}

impl<S: Clone, T, B> Clone for Sticky<S, T, B> {
    fn clone(&self) -> Self {
        Sticky {
            inner: self.inner.clone(),
            sessions: self.sessions.clone(),
        }
    }
}

impl<S, T, B> Sticky<S, T, B> {
    /// Wraps `inner`.
    pub fn new(inner: S, sessions: StickySessions<T, B>) -> Self {
        Sticky { inner, sessions }
    }

    /// A [`StickyLayer`] over `sessions`.
    pub fn layer(sessions: StickySessions<T, B>) -> StickyLayer<T, B> {
        StickyLayer::from_sessions(sessions)
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T, B, ReqBody, ResBody> Service<Request<ReqBody>> for Sticky<S, T, B>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    T: Send + Sync + 'static,
    B: Balance<T>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let Some(pin) = pin_request(&self.sessions, &mut req) else {
            return ResponseFuture::no_backend();
        };
        req.extensions_mut().insert(pin.pinned);
        ResponseFuture::called(self.inner.call(req), pin.issue, pin.in_flight)
    }
}

/// What both services make of a request before the inner call.
pub(super) struct PinnedCall<T> {
    pub(super) pinned: Pinned<T>,
    pub(super) issue: Option<SessionHeader>,
    pub(super) in_flight: InFlight,
}

/// Decides for `req`, takes its session value out (unless told to forward
/// it) and starts counting it in flight; `None`: no backend can take it.
pub(super) fn pin_request<T, B, ReqBody>(
    sessions: &StickySessions<T, B>,
    req: &mut Request<ReqBody>,
) -> Option<PinnedCall<T>>
where
    T: Send + Sync + 'static,
    B: Balance<T>,
{
    let super::DecisionParts {
        outcome,
        endpoint,
        rewrite,
        session_header: issue,
        ..
    } = sessions.decide(RequestHead::of(req)).into_parts();
    let endpoint = endpoint?;
    if let Some(rewrite) = rewrite {
        rewrite.apply(req.headers_mut());
    }
    Some(PinnedCall {
        in_flight: InFlight::start(std::sync::Arc::clone(&endpoint)),
        pinned: Pinned::new(endpoint, outcome),
        issue,
    })
}
