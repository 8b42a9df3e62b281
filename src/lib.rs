//! Sticky sessions for tower, hyper and axum proxies, with the semantics of
//! the Kubernetes Gateway API `sessionPersistence` field.
//!
//! * [`policy`]: the `sessionPersistence` block, every schema generation,
//!   validated into a [`SessionPolicy`](policy::SessionPolicy).
//! * [`duration`]: GEP-2257 durations (`10s`, `1h30m`).
//! * [`token`]: the signed session token (HMAC-SHA256, key rotation,
//!   wall-clock expiry with skew allowance). No backend address inside.
//! * [`carrier`]: reading the token from `Cookie` or a header, writing
//!   `Set-Cookie` with secure defaults.
//! * [`balance`]: backend ids and states (serving, draining, down), runtime
//!   membership, and the [`Balance`](balance::Balance) trait with round
//!   robin, random, power-of-two-choices and weighted built-ins.
//! * [`sticky`]: the tower [`StickyLayer`](sticky::StickyLayer) and the
//!   engine behind it.
//! * [`route`]: the HTTPRoute resource, as users write it for Kubernetes.
//!
//! See [`sticky`] for a complete example.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![deny(unreachable_pub)]

pub mod balance;
pub mod carrier;
pub mod duration;
pub mod policy;
pub mod route;
pub mod sticky;
pub mod token;

/// Compiles and runs the README's Rust examples as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
