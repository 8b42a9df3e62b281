use super::Outcome;
use crate::balance::{BackendId, Endpoint};
use std::sync::Arc;

/// The backend chosen for a request, put in its extensions for the inner
/// (proxy) service, with the session outcome for logging.
///
/// ```
/// use tower_sticky::sticky::Pinned;
///
/// fn forward(req: http::Request<()>) {
///     let pinned = req.extensions().get::<Pinned<std::net::SocketAddr>>().expect("behind StickyLayer");
///     let _addr = pinned.target();
///     let _outcome = pinned.outcome();
/// }
/// ```
#[derive(Debug)]
pub struct Pinned<T> {
    endpoint: Arc<Endpoint<T>>,
    outcome: Outcome,
}

impl<T> Clone for Pinned<T> {
    fn clone(&self) -> Self {
        Pinned {
            endpoint: Arc::clone(&self.endpoint),
            outcome: self.outcome,
        }
    }
}

impl<T> Pinned<T> {
    pub(crate) fn new(endpoint: Arc<Endpoint<T>>, outcome: Outcome) -> Self {
        Pinned { endpoint, outcome }
    }

    /// The chosen backend.
    #[must_use]
    pub fn endpoint(&self) -> &Arc<Endpoint<T>> {
        &self.endpoint
    }

    /// What the proxy needs to reach it.
    #[must_use]
    pub fn target(&self) -> &T {
        self.endpoint.target()
    }

    /// Its id.
    #[must_use]
    pub fn id(&self) -> BackendId {
        self.endpoint.id()
    }

    /// What happened to the session.
    #[must_use]
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
}
