use super::{BackendId, HealthCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether a backend takes new sessions, existing sessions, or nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendState {
    /// Takes new and existing sessions.
    Serving,
    /// Keeps serving the sessions pinned to it; gets no new ones.
    Draining,
    /// Takes nothing: its sessions re-pin elsewhere with a new token.
    Down,
}

/// One backend: its id, what the proxy needs to reach it (`target`), its
/// weight for new sessions, its state, and its in-flight request count.
///
/// State and in-flight count are atomics, so health checks and the request
/// path update them without rebuilding the membership. The state lives in a
/// [`HealthCell`], which endpoints of several [`Backends`](super::Backends)
/// sets can share ([`with_health`](Self::with_health)).
#[derive(Debug)]
pub struct Endpoint<T> {
    id: BackendId,
    target: T,
    weight: u32,
    health: Arc<HealthCell>,
    in_flight: AtomicUsize,
}

impl<T> Endpoint<T> {
    /// A serving endpoint.
    #[must_use]
    pub fn new(id: BackendId, target: T, weight: u32) -> Self {
        Endpoint {
            id,
            target,
            weight,
            health: Arc::new(HealthCell::new()),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// An endpoint whose state lives in `health`, a cell other endpoints
    /// (of other [`Backends`](super::Backends) sets) may share: one
    /// backend's health, seen by every set at once.
    #[must_use]
    pub fn with_health(id: BackendId, target: T, weight: u32, health: Arc<HealthCell>) -> Self {
        Endpoint {
            id,
            target,
            weight,
            health,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The cell that holds the state (shared or not).
    #[must_use]
    pub fn health(&self) -> &Arc<HealthCell> {
        &self.health
    }

    /// The backend's id.
    #[must_use]
    pub fn id(&self) -> BackendId {
        self.id
    }

    /// What the proxy needs to reach the backend (an address, a URI, a
    /// service handle...).
    #[must_use]
    pub fn target(&self) -> &T {
        &self.target
    }

    /// The weight for new sessions (`backendRefs[].weight`); 0 takes none.
    #[must_use]
    pub fn weight(&self) -> u32 {
        self.weight
    }

    /// The current state: the stricter of the membership and health voices
    /// (see [`HealthCell`]).
    #[must_use]
    pub fn state(&self) -> BackendState {
        self.health.state()
    }

    /// Changes the membership voice of the state (what discovery or the
    /// operator says); a health ejection still wins over it.
    pub fn set_state(&self, state: BackendState) {
        self.health.set_membership(state);
    }

    /// Whether it may take a new session: serving, with a non-zero weight.
    #[must_use]
    pub fn takes_new_sessions(&self) -> bool {
        self.weight > 0 && self.state() == BackendState::Serving
    }

    /// Whether it would take a new session if the health voice were not
    /// heard: what the panic rule serves.
    #[must_use]
    pub fn takes_new_sessions_ignoring_health(&self) -> bool {
        self.weight > 0 && self.health.membership() == BackendState::Serving
    }

    /// Requests counted in flight on it ([`InFlight`] guards alive): sent
    /// and not yet answered, body included.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Counts one request in flight on an endpoint until dropped: what
/// [`PowerOfTwoChoices`](super::PowerOfTwoChoices) compares. Get one from
/// [`Decision::in_flight`](crate::sticky::Decision::in_flight) (the layer
/// holds one until the response body ends) or start one here.
///
/// ```
/// use std::sync::Arc;
/// use tower_sticky::balance::{BackendId, Endpoint, InFlight};
///
/// let pod = Arc::new(Endpoint::new(BackendId::from_name("pod-a"), "10.0.0.1:80", 1));
/// let guard = InFlight::start(Arc::clone(&pod));
/// assert_eq!(pod.in_flight(), 1);
/// drop(guard);
/// assert_eq!(pod.in_flight(), 0);
/// ```
pub struct InFlight {
    counter: Arc<dyn Counted>,
}

/// What an [`InFlight`] guard counts on, whatever the endpoint's target.
trait Counted: Send + Sync {
    fn counter(&self) -> &AtomicUsize;
}

impl<T: Send + Sync> Counted for Endpoint<T> {
    fn counter(&self) -> &AtomicUsize {
        &self.in_flight
    }
}

impl InFlight {
    /// Starts counting a request on `endpoint`.
    #[must_use]
    pub fn start<T: Send + Sync + 'static>(endpoint: Arc<Endpoint<T>>) -> Self {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { counter: endpoint }
    }
}

impl std::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InFlight")
            .field("in_flight", &self.counter.counter().load(Ordering::Relaxed))
            .finish()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counter.counter().fetch_sub(1, Ordering::Relaxed);
    }
}
