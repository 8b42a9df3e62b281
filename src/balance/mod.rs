//! Backends, their identities and states, and how new sessions are spread.
//!
//! * [`BackendId`]: the opaque, stable id a session token carries.
//! * [`Endpoint`]: one backend with its [`BackendState`] (serving, draining,
//!   down), weight and in-flight count. The state lives in a [`HealthCell`]
//!   that endpoints of several sets can share: the membership voice
//!   (discovery, drain) and the health voice (passive health, a prober),
//!   the strictest winning.
//! * [`Backends`]: the membership, changed at run time
//!   ([`tower::discover::Change`] works), read through `arc-swap`: no lock.
//! * [`DiscoverBackends`]: feeds a [`tower::discover::Discover`] stream of
//!   [`Discovered`] backends into [`Backends`], state changes included.
//! * [`Balance`]: picks a backend for a new session and resolves a session's
//!   backend id. Built-ins: [`RoundRobin`], [`Random`],
//!   [`PowerOfTwoChoices`] (fewest in-flight of two), [`Weighted`], and
//!   with the `tower-load` feature `P2cByLoad` (the lower
//!   `tower::load::Load` of two). [`Balance::pick_excluding`] picks a
//!   backend other than those a request already tried, whatever the
//!   balancer.
//! * [`SetHealth`]: how many endpoints of a set serve, are ejected, or are
//!   held in service by the ejection cap, and whether the panic rule holds
//!   (every endpoint that could serve is ejected, so all serve).
//!
//! ```
//! use tower_sticky::balance::{Balance, BackendId, BackendState, Backends, PickContext, Resolution, RoundRobin};
//!
//! let backends: Backends<&str> = ["pod-a", "pod-b"]
//!     .into_iter()
//!     .map(|name| (BackendId::from_name(name), name, 1))
//!     .collect();
//! let balancer = RoundRobin::new();
//!
//! // pod-a drains: it keeps its sessions but gets no new ones.
//! backends.set_state(BackendId::from_name("pod-a"), BackendState::Draining);
//! let snap = backends.snapshot();
//! let req = http::Request::new(());
//! let ctx = PickContext { method: req.method(), uri: req.uri(), headers: req.headers() };
//! for _ in 0..4 {
//!     let i = balancer.pick(&ctx, &snap).unwrap();
//!     assert_eq!(*snap.endpoints()[i].target(), "pod-b");
//! }
//! assert!(matches!(balancer.resolve(&snap, BackendId::from_name("pod-a")), Resolution::Pinned(_)));
//! assert!(matches!(balancer.resolve(&snap, BackendId::from_name("gone")), Resolution::Gone));
//! ```

mod backend_id;
mod backends;
mod balancer;
mod discover;
mod endpoint;
mod health;
mod p2c;
#[cfg(feature = "tower-load")]
mod p2c_load;
mod random;
mod rng;
mod round_robin;
mod weighted;

pub use backend_id::BackendId;
pub use backends::{Backends, SetHealth, Snapshot};
pub use balancer::{Balance, PickContext, Resolution};
pub use discover::{Applied, DiscoverBackends, Discovered};
pub use endpoint::{BackendState, Endpoint, InFlight};
pub use health::{Ejection, HealthCell};
pub use p2c::PowerOfTwoChoices;
#[cfg(feature = "tower-load")]
pub use p2c_load::P2cByLoad;
pub use random::Random;
pub use round_robin::RoundRobin;
pub use weighted::Weighted;
