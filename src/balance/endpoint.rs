use super::BackendId;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

/// Whether a backend takes new sessions, existing sessions, or nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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

    /// Requests currently sent to it through the layer and not yet answered.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// Counts one request in flight on an endpoint until dropped.
#[derive(Debug)]
pub struct InFlight<T> {
    endpoint: Arc<Endpoint<T>>,
}

impl<T> InFlight<T> {
    /// Starts counting a request on `endpoint`.
    #[must_use]
    pub fn start(endpoint: Arc<Endpoint<T>>) -> Self {
        endpoint.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { endpoint }
    }
}

impl<T> Drop for InFlight<T> {
    fn drop(&mut self) {
        self.endpoint.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
