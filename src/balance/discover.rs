//! Dynamic membership from a [`tower::discover::Discover`] stream.
//!
//! A service-discovery source (Kubernetes EndpointSlices, DNS, Consul, a
//! control plane of your own) speaks tower's vocabulary,
//! [`Change::Insert`] and [`Change::Remove`], keyed by [`BackendId`].
//! [`DiscoverBackends`] drives such a stream into a [`Backends`], which the
//! session engine reads on every request:
//!
//! * `Insert(id, d)` for an id not yet present adds a backend in
//!   [`d.state`](Discovered::state);
//! * `Insert(id, d)` for a present id with the same target and weight is a
//!   **state change** (serving → draining → down and back): the endpoint is
//!   kept, so its in-flight count and anything the target carries survive;
//! * `Insert(id, d)` with another target or weight replaces the endpoint;
//! * `Remove(id)` removes it: its sessions re-pin on their next request.
//!
//! A source that reports whole sets instead hands each one to
//! [`Backends::set_discovered`], which turns it into these changes.
//!
//! Sessions only ever notice the state, never the stream: a draining backend
//! keeps its sessions and gets no new ones, a down or removed one hands its
//! sessions to others with a new token.
//!
//! ```
//! # futures_util::FutureExt::now_or_never(async {
//! use std::convert::Infallible;
//! use tower::discover::Change;
//! use tower_sticky::balance::{BackendId, BackendState, Backends, DiscoverBackends, Discovered};
//!
//! let (a, b) = (BackendId::from_name("pod-a"), BackendId::from_name("pod-b"));
//! let changes = futures_util::stream::iter([
//!     Ok::<_, Infallible>(Change::Insert(a, Discovered::new("10.0.0.7:3000"))),
//!     Ok(Change::Insert(b, Discovered::new("10.0.0.8:3000"))),
//!     // pod-a is terminating but still serving: it keeps its sessions.
//!     Ok(Change::Insert(a, Discovered::new("10.0.0.7:3000").state(BackendState::Draining))),
//!     Ok(Change::Remove(b)),
//! ]);
//! let backends: Backends<&str> = Backends::new();
//! DiscoverBackends::new(changes, backends.clone()).await.unwrap();
//!
//! let snap = backends.snapshot();
//! assert_eq!(snap.len(), 1);
//! assert_eq!(snap.get(a).unwrap().state(), BackendState::Draining);
//! # }).unwrap();
//! ```

use super::{BackendId, BackendState, Backends, Endpoint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::discover::{Change, Discover};

/// What discovery says about one backend: how to reach it, its weight for
/// new sessions and its state.
///
/// Built with [`new`](Self::new) (weight 1, serving) and the consuming
/// setters; any `T` converts into a serving one of weight 1.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Discovered<T> {
    /// What the proxy needs to reach the backend.
    pub target: T,
    /// Its weight for new sessions; 0 takes none.
    pub weight: u32,
    /// Serving, draining or down.
    pub state: BackendState,
}

impl<T> Discovered<T> {
    /// A serving backend of weight 1.
    #[must_use]
    pub fn new(target: T) -> Self {
        Discovered {
            target,
            weight: 1,
            state: BackendState::Serving,
        }
    }

    /// Sets the weight for new sessions.
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Sets the state.
    #[must_use]
    pub fn state(mut self, state: BackendState) -> Self {
        self.state = state;
        self
    }
}

impl<T> From<T> for Discovered<T> {
    fn from(target: T) -> Self {
        Discovered::new(target)
    }
}

/// What [`Backends::apply_discovered`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Applied {
    /// A backend joined.
    Added,
    /// A present backend changed state only (or not at all).
    StateChanged,
    /// A present backend got another target or weight.
    Replaced,
    /// A backend left.
    Removed,
    /// A `Remove` for an id that was not there.
    Unknown,
}

impl<T: PartialEq> Backends<T> {
    /// Applies one discovery change; see [`DiscoverBackends`] for what
    /// each change does.
    pub fn apply_discovered(&self, change: Change<BackendId, Discovered<T>>) -> Applied {
        match change {
            Change::Insert(id, d) => match self.snapshot().get(id) {
                Some(e) if e.target() == &d.target && e.weight() == d.weight => {
                    e.set_state(d.state);
                    Applied::StateChanged
                }
                present => {
                    let replaced = present.is_some();
                    let endpoint = Endpoint::new(id, d.target, d.weight);
                    endpoint.set_state(d.state);
                    self.insert_endpoint(Arc::new(endpoint));
                    if replaced {
                        Applied::Replaced
                    } else {
                        Applied::Added
                    }
                }
            },
            Change::Remove(id) => {
                if self.remove(id) {
                    Applied::Removed
                } else {
                    Applied::Unknown
                }
            }
        }
    }

    /// Makes the membership exactly `wanted`, for a source that reports
    /// whole sets rather than changes (a re-read EndpointSlice file, a DNS
    /// answer): every backend not wanted is removed, and every wanted one
    /// applied as a [`Change::Insert`], so that one already present with the
    /// same target and weight only changes state and keeps its in-flight
    /// count.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_sticky::balance::{BackendId, BackendState, Backends, Discovered};
    ///
    /// let (a, b, c) = (BackendId::from_name("a"), BackendId::from_name("b"), BackendId::from_name("c"));
    /// let backends: Backends<&str> = Backends::new();
    /// backends.set_discovered([(a, Discovered::new("10.0.0.1:80")), (b, Discovered::new("10.0.0.2:80"))]);
    /// let pod_a = Arc::clone(backends.snapshot().get(a).unwrap());
    ///
    /// // The next answer: a terminates, b is gone, c is new.
    /// backends.set_discovered([
    ///     (a, Discovered::new("10.0.0.1:80").state(BackendState::Draining)),
    ///     (c, Discovered::new("10.0.0.3:80")),
    /// ]);
    /// let snap = backends.snapshot();
    /// assert!(Arc::ptr_eq(&pod_a, snap.get(a).unwrap()));
    /// assert_eq!(pod_a.state(), BackendState::Draining);
    /// assert!(snap.get(b).is_none());
    /// assert_eq!(snap.len(), 2);
    /// ```
    pub fn set_discovered(&self, wanted: impl IntoIterator<Item = (BackendId, Discovered<T>)>) {
        let wanted: Vec<(BackendId, Discovered<T>)> = wanted.into_iter().collect();
        // Sorted ids, so that a set of thousands of endpoints is not
        // compared pairwise.
        let mut ids: Vec<BackendId> = wanted.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        for e in self.snapshot().endpoints() {
            if ids.binary_search(&e.id()).is_err() {
                self.apply_discovered(Change::Remove(e.id()));
            }
        }
        for (id, d) in wanted {
            self.apply_discovered(Change::Insert(id, d));
        }
    }
}

pin_project_lite::pin_project! {
    /// Drives a [`Discover`] stream into [`Backends`]: a future that applies
    /// every change as it arrives and ends with the stream (or its first
    /// error).
    ///
    /// Spawn it on any runtime; the engine reading the same `Backends` sees
    /// each change on its next request.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct DiscoverBackends<D, T> {
        #[pin]
        discover: D,
        backends: Backends<T>,
    }
}

impl<D, T> DiscoverBackends<D, T> {
    /// Feeds `discover` into `backends`.
    pub fn new(discover: D, backends: Backends<T>) -> Self {
        DiscoverBackends { discover, backends }
    }
}

impl<D, T, S> Future for DiscoverBackends<D, T>
where
    D: Discover<Key = BackendId, Service = S>,
    S: Into<Discovered<T>>,
    T: PartialEq,
{
    type Output = Result<(), D::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.discover.as_mut().poll_discover(cx) {
                Poll::Ready(Some(Ok(change))) => {
                    let change = match change {
                        Change::Insert(id, s) => Change::Insert(id, s.into()),
                        Change::Remove(id) => Change::Remove(id),
                    };
                    this.backends.apply_discovered(change);
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_change_keeps_the_endpoint_and_a_new_target_replaces_it() {
        let backends: Backends<&str> = Backends::new();
        let id = BackendId::from_name("pod-a");
        assert_eq!(
            backends.apply_discovered(Change::Insert(id, Discovered::new("10.0.0.7:80"))),
            Applied::Added
        );
        let first = Arc::clone(backends.snapshot().get(id).unwrap());
        assert_eq!(
            backends.apply_discovered(Change::Insert(
                id,
                Discovered::new("10.0.0.7:80").state(BackendState::Draining)
            )),
            Applied::StateChanged
        );
        // The same endpoint, now draining: in-flight counts survive.
        let kept = Arc::clone(backends.snapshot().get(id).unwrap());
        assert!(Arc::ptr_eq(&first, &kept));
        assert_eq!(kept.state(), BackendState::Draining);

        assert_eq!(
            backends.apply_discovered(Change::Insert(
                id,
                Discovered::new("10.0.0.9:80")
                    .weight(3)
                    .state(BackendState::Down)
            )),
            Applied::Replaced
        );
        let snap = backends.snapshot();
        let replaced = snap.get(id).unwrap();
        assert!(!Arc::ptr_eq(&first, replaced));
        assert_eq!(
            (*replaced.target(), replaced.weight(), replaced.state()),
            ("10.0.0.9:80", 3, BackendState::Down)
        );
        assert_eq!(
            backends.apply_discovered(Change::Remove(id)),
            Applied::Removed
        );
        assert_eq!(
            backends.apply_discovered(Change::Remove(id)),
            Applied::Unknown
        );
        assert!(backends.snapshot().is_empty());
    }

    #[test]
    fn the_feed_stops_at_the_first_error_with_what_came_before_applied() {
        let id = BackendId::from_name("pod-a");
        let changes = futures_util::stream::iter([
            Ok(Change::Insert(id, "10.0.0.7:80")),
            Err("discovery lost"),
            Ok(Change::Remove(id)),
        ]);
        let backends: Backends<&str> = Backends::new();
        let result =
            futures_util::FutureExt::now_or_never(DiscoverBackends::new(changes, backends.clone()));
        assert_eq!(result, Some(Err("discovery lost")));
        assert_eq!(backends.snapshot().len(), 1);
    }
}
