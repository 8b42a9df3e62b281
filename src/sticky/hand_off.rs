//! The layer that hands the choice to the inner service as an argument
//! instead of a request extension.
//!
//! Why a second shape: [`Sticky`](super::Sticky) records the choice in
//! `http::Extensions`, which costs three allocations on a request that had
//! no extension yet (the map's box, its table, the boxed value). Handing
//! the [`Pinned`] over beside the request costs none, so a resumed session
//! goes through without touching the heap.

use super::future::ResponseFuture;
use super::service::pin_request;
use super::{Pinned, ResponseBody, StickySessions};
use crate::balance::{Balance, RoundRobin};
use http::{Request, Response};
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Applies sticky sessions to a service that takes each request together
/// with its [`Pinned`] backend, `(Pinned<T>, Request<B>)`, instead of
/// finding it in the request's extensions. Otherwise the same as
/// [`StickyLayer`](super::StickyLayer): the session value is taken out of
/// the request, the response gets `Set-Cookie` when due and counts in
/// flight until its body ends, and a request no backend can take is
/// answered `503` by the layer.
///
/// Made by [`StickyBuilder::hand_off_layer`](super::StickyBuilder::hand_off_layer)
/// or [`StickyLayer::hand_off`](super::StickyLayer::hand_off).
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
/// use tower_sticky::balance::{BackendId, Backends};
/// use tower_sticky::policy::SessionPolicy;
/// use tower_sticky::sticky::{Pinned, StickyBuilder};
/// use tower_sticky::token::{KeySet, SigningKey};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let policy = SessionPolicy::cookie("Session-A")?;
/// let keys = KeySet::new(SigningKey::new([7; 32])?);
/// let pods: Backends<&'static str> =
///     ["pod-a", "pod-b"].into_iter().map(|p| (BackendId::from_name(p), p, 1)).collect();
/// let layer = StickyBuilder::new(policy, keys, pods).hand_off_layer()?;
///
/// // The "proxy" gets the chosen pod beside the request.
/// let proxy = service_fn(|(pinned, _req): (Pinned<&'static str>, Request<String>)| async move {
///     Ok::<_, Infallible>(Response::new(pinned.target().to_string()))
/// });
/// let mut svc = ServiceBuilder::new().layer(layer).service(proxy);
///
/// let first = svc.ready().await?.call(Request::new(String::new())).await?;
/// let cookie = first.headers()["set-cookie"].to_str()?.split(';').next().unwrap_or("").to_owned();
/// let req = Request::builder().header("cookie", cookie).body(String::new())?;
/// let again = svc.ready().await?.call(req).await?;
/// assert_eq!(again.body().get_ref(), first.body().get_ref());
/// assert!(again.headers().get("set-cookie").is_none());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub struct StickyHandOffLayer<T, B = RoundRobin> {
    sessions: StickySessions<T, B>,
}

impl<T, B> Clone for StickyHandOffLayer<T, B> {
    fn clone(&self) -> Self {
        StickyHandOffLayer {
            sessions: self.sessions.clone(),
        }
    }
}

impl<T, B> StickyHandOffLayer<T, B> {
    /// A hand-off layer over already built sessions.
    pub fn from_sessions(sessions: StickySessions<T, B>) -> Self {
        StickyHandOffLayer { sessions }
    }

    /// The shared engine (for its backends, say).
    pub fn sessions(&self) -> &StickySessions<T, B> {
        &self.sessions
    }
}

impl<S, T, B> Layer<S> for StickyHandOffLayer<T, B> {
    type Service = StickyHandOff<S, T, B>;

    fn layer(&self, inner: S) -> Self::Service {
        StickyHandOff::new(inner, self.sessions.clone())
    }
}

/// Middleware that pins each request to a backend by its session and calls
/// the inner service with `(Pinned<T>, Request<B>)`; see
/// [`StickyHandOffLayer`].
///
/// # Bounds, and why
///
/// The same as [`Sticky`](super::Sticky)'s, except that the inner service
/// takes `(Pinned<T>, Request<ReqBody>)`: the choice comes as an argument,
/// so a resumed request allocates nothing. No bound on the response body:
/// the layer's own `503` uses [`ResponseBody`]'s empty body.
#[derive(Debug)]
pub struct StickyHandOff<S, T, B = RoundRobin> {
    inner: S,
    sessions: StickySessions<T, B>,
}

impl<S: Clone, T, B> Clone for StickyHandOff<S, T, B> {
    fn clone(&self) -> Self {
        StickyHandOff {
            inner: self.inner.clone(),
            sessions: self.sessions.clone(),
        }
    }
}

impl<S, T, B> StickyHandOff<S, T, B> {
    /// Wraps `inner`.
    pub fn new(inner: S, sessions: StickySessions<T, B>) -> Self {
        StickyHandOff { inner, sessions }
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

impl<S, T, B, ReqBody, ResBody> Service<Request<ReqBody>> for StickyHandOff<S, T, B>
where
    S: Service<(Pinned<T>, Request<ReqBody>), Response = Response<ResBody>>,
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
        ResponseFuture::called(self.inner.call((pin.pinned, req)), pin.issue, pin.in_flight)
    }
}
