//! The failure rules, written once: what a failed attempt says, whether
//! the request may be sent again, and what it does to the backend's health.
//! The tower layer and any proxy that calls the engine itself (the example
//! gateway) use the same rules.
//!
//! 1. The proxy classifies how an attempt failed into a [`Failure`]: no
//!    connection, nothing written, HTTP/2 stream refused, written then
//!    reset or closed, timed out, or a response that started then broke.
//! 2. The request's [`Attempts`] (from [`RetryRules::start`]) turns it into
//!    a [`Verdict`]: whether to retry ([`Next`]), following RFC 9110
//!    §9.2.2 (a request the backend may have acted on is sent again only
//!    if its method is idempotent; a response that started never is;
//!    bounded: up to 3 more backends after connect failures, once after
//!    anything else), and what it says about the backend ([`Blame`]).
//! 3. [`PassiveHealth::failed`] applies the blame to the backend's
//!    [`HealthCell`](crate::balance::HealthCell): a refused connection
//!    ejects it at once; failures the request may have caused count
//!    toward `down_after` (3), are not counted when the same request
//!    already failed elsewhere, and eject at most one endpoint in ten of a
//!    set (at least one).
//! 4. A retry goes to a backend the request did not try:
//!    [`StickySessions::repin_excluding`](crate::sticky::StickySessions::repin_excluding)
//!    with [`Attempts::tried`], one new cookie.
//!
//! When every endpoint that could serve a set is ejected, none is: the
//! engine serves them all (the panic rule, as Envoy's panic threshold),
//! and [`Snapshot::health`](crate::balance::Snapshot::health) says so, and
//! whether the ejection cap is holding ejections back.
//!
//! ```
//! use http::{HeaderMap, Method, Uri};
//! use tower_sticky::balance::{BackendId, Backends, BackendState};
//! use tower_sticky::failover::{BodyReplay, Failure, Next, PassiveHealth, RetryRules};
//! use tower_sticky::sticky::{Outcome, RequestHead, StickyBuilder};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let pods: Backends<&str> = ["pod-a", "pod-b"].into_iter().map(|p| (BackendId::from_name(p), p, 1)).collect();
//! // A rule without sessionPersistence: the same engine, no cookie.
//! let engine = StickyBuilder::plain(pods).build()?;
//! let (rules, health) = (RetryRules::new(), PassiveHealth::new());
//!
//! let (method, uri, headers) = (Method::POST, Uri::from_static("/orders"), HeaderMap::new());
//! let head = RequestHead::new(&method, &uri, &headers);
//! let mut attempts = rules.start(&method, BodyReplay::Replayable);
//! let mut decision = engine.decide(head);
//! loop {
//!     let endpoint = decision.endpoint().expect("a backend").clone();
//!     // Say pod-a refuses connections, and pod-b answers.
//!     if *endpoint.target() == "pod-b" {
//!         health.succeeded(&endpoint);
//!         break;
//!     }
//!     let verdict = attempts.failed(endpoint.id(), Failure::Connect);
//!     health.failed(&engine.backends().snapshot(), &endpoint, verdict.blame);
//!     assert_eq!(verdict.next, Next::Retry);
//!     decision = engine.repin_excluding(head, Outcome::RepinnedDown, attempts.tried());
//! }
//! assert_eq!(engine.backends().snapshot().get(BackendId::from_name("pod-a")).unwrap().state(), BackendState::Down);
//! # Ok(())
//! # }
//! ```
//!
//! `tower::retry::Policy` is not used: its policy sees the request and the
//! result, but not the backend the engine chose nor the session cookie to
//! replace, and it needs tower's `retry` feature (tokio's timer) in every
//! build. [`Attempts`] is a plain state machine any retry loop can drive.

mod classify;
mod failure;
mod passive;
#[cfg(feature = "prober")]
mod prober;
mod replay_body;
mod retry;

pub use classify::{Classify, ConnectErrors};
pub use failure::Failure;
pub use passive::{HealthChange, PassiveHealth};
#[cfg(feature = "prober")]
pub use prober::Prober;
pub use replay_body::ReplayBody;
pub use retry::{Attempts, Blame, BodyReplay, GiveUp, Next, RetryRules, Verdict, is_idempotent};
