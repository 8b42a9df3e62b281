use super::BackendId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

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

impl BackendState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => BackendState::Serving,
            1 => BackendState::Draining,
            _ => BackendState::Down,
        }
    }

    fn as_u8(self) -> u8 {
        match self {
            BackendState::Serving => 0,
            BackendState::Draining => 1,
            BackendState::Down => 2,
        }
    }
}

/// One backend: its id, what the proxy needs to reach it (`target`), its
/// weight for new sessions, its state, and its in-flight request count.
///
/// State and in-flight count are atomics, so health checks and the request
/// path update them without rebuilding the membership.
#[derive(Debug)]
pub struct Endpoint<T> {
    id: BackendId,
    target: T,
    weight: u32,
    state: AtomicU8,
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
            state: AtomicU8::new(BackendState::Serving.as_u8()),
            in_flight: AtomicUsize::new(0),
        }
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

    /// The current state.
    #[must_use]
    pub fn state(&self) -> BackendState {
        BackendState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Changes the state.
    pub fn set_state(&self, state: BackendState) {
        self.state.store(state.as_u8(), Ordering::Relaxed);
    }

    /// Whether it may take a new session: serving, with a non-zero weight.
    #[must_use]
    pub fn takes_new_sessions(&self) -> bool {
        self.weight > 0 && self.state() == BackendState::Serving
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
