//! The tower layer: sticky sessions in front of any proxy service.
//!
//! Per request, [`Sticky`]:
//!
//! 1. reads the session value (cookie or header) and verifies its signature
//!    and its absolute and idle deadlines;
//! 2. resolves the session's backend, or, when there is no valid session or
//!    its backend is down or gone, asks the [`Balance`](crate::balance::Balance)
//!    for one;
//! 3. removes the session value from the request (unless told to forward it)
//!    and records the choice as a [`Pinned`] request extension, which the
//!    inner (proxy) service uses to forward the request;
//! 4. on the response, writes `Set-Cookie` (or the session header) when the
//!    session was created, re-pinned, refreshed or re-keyed; nothing
//!    otherwise.
//!
//! The request counts [in flight](crate::balance::InFlight) on its backend
//! until the response body has ended ([`InFlightBody`]), which is what
//! [`PowerOfTwoChoices`](crate::balance::PowerOfTwoChoices) compares.
//!
//! A bad value (malformed, forged, tampered, from a foreign key or scope,
//! expired) is never an error: it becomes a new session. When no backend can
//! take the request the layer answers `503 Service Unavailable` itself. The
//! inner service's error type is kept. Each request's [`Outcome`] is in the
//! [`Pinned`] extension, given to an optional callback, with the `tracing`
//! feature logged as one event (target `tower_sticky`, level DEBUG: scope,
//! outcome, backend, why a value was refused, session age), and with the
//! `metrics` feature counted as `tower_sticky_requests_total{scope,outcome}`
//! with `tower_sticky_session_age_seconds{scope}` on resumed sessions.
//!
//! # Failover
//!
//! [`StickyLayer::failover`] gives a [`StickyFailoverLayer`]: when the
//! inner service fails in a way its [`Classify`](crate::failover::Classify)
//! calls a backend failure (by default, a refused connection), the backend
//! is marked ([`PassiveHealth`](crate::failover::PassiveHealth)), the
//! request is re-decided on a backend it has not tried, with one new
//! cookie, and sent again (its body held up to a bound), within RFC 9110
//! §9.2.2 ([`RetryRules`](crate::failover::RetryRules)). A
//! `failover::Prober` (feature `prober`) brings backends
//! back. The plain [`StickyLayer`] does none of this: it pins, and answers
//! 503 when no backend can take a request.
//!
//! # With hyper-util
//!
//! The layers need no `Default` of the response body: hyper-util's
//! `Client`, whose responses carry hyper's `Incoming`, goes under them as
//! it is, and the result serves hyper-util's server connections:
//!
//! ```
//! use std::net::SocketAddr;
//! use hyper::body::Incoming;
//! use hyper_util::client::legacy::{Client, connect::HttpConnector};
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use hyper_util::server::conn::auto;
//! use hyper_util::service::TowerToHyperService;
//! use tower::ServiceBuilder;
//! use tower_sticky::failover::ReplayBody;
//! use tower_sticky::forward::point_at_pinned;
//! use tower_sticky::sticky::StickyLayer;
//!
//! async fn serve(stream: tokio::net::TcpStream, layer: StickyLayer<SocketAddr>, with_failover: bool) {
//!     // Plain: the client's body and the backend's `Incoming` pass as they are.
//!     let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new()).build_http();
//!     let plain = ServiceBuilder::new()
//!         .layer(layer.clone())
//!         .map_request(|mut req: http::Request<Incoming>| {
//!             point_at_pinned::<_, SocketAddr>(&mut req);
//!             req
//!         })
//!         .service(client);
//!     // With failover: the client sends the held body, `ReplayBody<Incoming>`.
//!     let client: Client<HttpConnector, ReplayBody<Incoming>> = Client::builder(TokioExecutor::new()).build_http();
//!     let failover = ServiceBuilder::new()
//!         .layer(layer.failover())
//!         .map_request(|mut req: http::Request<ReplayBody<Incoming>>| {
//!             point_at_pinned::<_, SocketAddr>(&mut req);
//!             req
//!         })
//!         .service(client);
//!     let (a, b) = (TowerToHyperService::new(plain), TowerToHyperService::new(failover));
//!     let server = auto::Builder::new(TokioExecutor::new());
//!     if !with_failover {
//!         let _ = server.serve_connection(TokioIo::new(stream), a).await;
//!     } else {
//!         let _ = server.serve_connection(TokioIo::new(stream), b).await;
//!     }
//! }
//! ```
//!
//! # Handing the choice over as an argument
//!
//! Recording [`Pinned`] in the request's `http::Extensions` allocates when
//! the request has no extension yet (three allocations, see BENCHMARKS.md).
//! A proxy service written for this crate can take the choice beside the
//! request instead, `(Pinned<T>, Request<B>)`, through
//! [`StickyHandOffLayer`] ([`StickyBuilder::hand_off_layer`] or
//! [`StickyLayer::hand_off`]): the same sessions, no allocation on a
//! resumed request.
//!
//! # Without tower
//!
//! The layer is a thin shell around [`StickySessions`], which any proxy can
//! call: [`StickySessions::decide`] reads a borrowed [`RequestHead`] (method,
//! URI, headers, TLS) and returns a [`Decision`]: the backend, the
//! [`RequestRewrite`] that takes the session value out of the request, the
//! [`SessionHeader`] to add to the response, and an [`InFlight`](crate::balance::InFlight)
//! guard on demand. [`StickySessions::route_parts`] and
//! [`StickySessions::route_headers`] make the rewrite on the spot.
//!
//! # Example
//!
//! ```
//! use std::convert::Infallible;
//! use http::{Request, Response};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//! use tower_sticky::balance::{BackendId, Backends};
//! use tower_sticky::duration::Duration;
//! use tower_sticky::policy::SessionPolicy;
//! use tower_sticky::sticky::{Pinned, StickyBuilder};
//! use tower_sticky::token::{KeySet, SigningKey};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // The seed's route: cookie Session-A, Permanent, absoluteTimeout 10s.
//! let policy = SessionPolicy::cookie("Session-A").unwrap().permanent(Duration::from_secs(10)).unwrap();
//! let keys = KeySet::new(SigningKey::new(*b"an example key of 32 bytes or mo").unwrap());
//! let backends: Backends<&'static str> = ["pod-a", "pod-b", "pod-c"]
//!     .into_iter()
//!     .map(|pod| (BackendId::from_name(pod), pod, 1))
//!     .collect();
//! let layer = StickyBuilder::new(policy, keys, backends).layer().unwrap();
//!
//! // The "proxy": answers with the pod it would forward to.
//! let mut svc = ServiceBuilder::new().layer(layer).service(service_fn(|req: Request<String>| async move {
//!     let pod = *req.extensions().get::<Pinned<&'static str>>().unwrap().target();
//!     Ok::<_, Infallible>(Response::new(pod.to_string()))
//! }));
//!
//! let first = svc.ready().await.unwrap().call(Request::new(String::new())).await.unwrap();
//! let set_cookie = first.headers()["set-cookie"].to_str().unwrap();
//! assert!(set_cookie.starts_with("Session-A="));
//! assert!(set_cookie.ends_with("; Max-Age=10; Path=/; HttpOnly; SameSite=Lax"));
//! let cookie = set_cookie.split(';').next().unwrap().to_owned();
//!
//! for _ in 0..5 {
//!     let req = Request::builder().header("cookie", &cookie).body(String::new()).unwrap();
//!     let res = svc.ready().await.unwrap().call(req).await.unwrap();
//!     assert_eq!(res.body().get_ref(), first.body().get_ref());
//!     assert!(res.headers().get("set-cookie").is_none());
//! }
//! # }
//! ```

mod body;
mod builder;
mod decision;
mod failover;
mod future;
mod hand_off;
mod layer;
mod observe;
mod outcome;
mod pinned;
mod request;
mod response_body;
mod service;
mod sessions;

pub use body::InFlightBody;
pub use builder::{BuildError, BuildErrorKind, StickyBuilder};
#[allow(deprecated)]
pub use decision::Issue;
pub use decision::{Decision, DecisionParts, RequestRewrite, SessionHeader};
pub use failover::{DEFAULT_BUFFER_LIMIT, StickyFailover, StickyFailoverLayer};
pub use future::ResponseFuture;
pub use hand_off::{StickyHandOff, StickyHandOffLayer};
pub use layer::StickyLayer;
pub use outcome::Outcome;
pub use pinned::Pinned;
pub use request::RequestHead;
pub use response_body::ResponseBody;
pub use service::Sticky;
pub use sessions::StickySessions;
