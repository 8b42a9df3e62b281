//! Sticky sessions for tower, hyper, axum and Pingora proxies, with the
//! semantics of the Kubernetes Gateway API `sessionPersistence` field.
//!
//! * [`policy`]: the `sessionPersistence` block, every schema generation,
//!   validated into a [`SessionPolicy`].
//! * [`duration`]: GEP-2257 durations (`10s`, `1h30m`).
//! * [`token`]: the signing keys of the session token (HMAC-SHA256, key
//!   rotation, wall-clock expiry with skew allowance). No backend address
//!   inside.
//! * [`carrier`]: reading the token from `Cookie` or a header, writing
//!   `Set-Cookie` with secure defaults.
//! * [`balance`]: backend ids and states (serving, draining, down), runtime
//!   membership, and the [`Balance`] trait with round robin, random,
//!   power-of-two-choices and weighted built-ins.
//! * [`sticky`]: the tower [`StickyLayer`] (and with failover,
//!   [`StickyFailoverLayer`]), and the [`StickySessions`] engine behind it,
//!   which any proxy can call from a borrowed request head
//!   ([`StickySessions::decide`]); plain mode for rules without
//!   `sessionPersistence`.
//! * [`failover`]: the failure rules, written once: how an attempt failed,
//!   when a request may be sent again (RFC 9110 §9.2.2), passive health
//!   with its ejection cap, and the panic rule.
//! * [`forward`]: pointing a request at its backend, `X-Forwarded-*`,
//!   hop-by-hop headers.
//! * `route` (feature `serde`, on by default): the HTTPRoute resource, as
//!   users write it for Kubernetes, validated into typed rules.
//!
//! The main types are re-exported here. See [`sticky`] for a complete
//! example, and the README's "Use it in your proxy" for axum, a hyper-util
//! proxy, Pingora and tower `Discover`.
//!
//! # Features
//!
//! * `serde` (default): `SessionPersistence`, `Duration` and the `route`
//!   module (de)serialize; without it the crate has no serde dependency.
//! * `tracing`: one DEBUG event per decision (target `tower_sticky`): scope,
//!   outcome, backend, why a session value was refused, session age.
//! * `metrics`: `tower_sticky_requests_total{scope,outcome}` and
//!   `tower_sticky_session_age_seconds{scope}` through the `metrics` facade.
//! * `tower-load`: `balance::P2cByLoad`, power of two choices by the
//!   targets' own `tower::load::Load` metric.
//! * `prober`: `failover::Prober`, which revives ejected backends by TCP
//!   connect or HTTP `GET`, on tokio.
//! * `test-util`: `ManualClock`, a clock for tests.
//! * `token-internals`: the token codec and time rules, for benchmarks and
//!   fuzzing; outside semver.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![deny(unreachable_pub)]

pub mod balance;
pub mod carrier;
pub mod duration;
pub mod failover;
pub mod forward;
pub mod policy;
#[cfg(feature = "serde")]
pub mod route;
pub mod sticky;
pub mod token;

pub use balance::{BackendId, BackendState, Backends, Balance, Endpoint, InFlight};
pub use carrier::{ClientTls, CookieAttributes};
pub use policy::{PolicyError, SessionPersistence, SessionPolicy};
#[allow(deprecated)]
pub use sticky::Issue;
pub use sticky::{
    BuildError, Decision, InFlightBody, Outcome, Pinned, RequestHead, RequestRewrite, ResponseBody,
    SessionHeader, Sticky, StickyBuilder, StickyFailover, StickyFailoverLayer, StickyHandOff,
    StickyHandOffLayer, StickyLayer, StickySessions,
};
pub use token::{KeySet, SigningKey};

/// Compiles and runs the README's Rust examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
