use super::{Sticky, StickyFailoverLayer, StickyHandOffLayer, StickySessions};
use crate::balance::RoundRobin;
use tower_layer::Layer;

/// Applies sticky sessions to a service; see the [module docs](super).
#[derive(Debug)]
pub struct StickyLayer<T, B = RoundRobin> {
    sessions: StickySessions<T, B>,
}

impl<T, B> Clone for StickyLayer<T, B> {
    fn clone(&self) -> Self {
        StickyLayer {
            sessions: self.sessions.clone(),
        }
    }
}

impl<T, B> StickyLayer<T, B> {
    /// A layer over already built sessions.
    pub fn from_sessions(sessions: StickySessions<T, B>) -> Self {
        StickyLayer { sessions }
    }

    /// The shared engine (for its backends, say).
    pub fn sessions(&self) -> &StickySessions<T, B> {
        &self.sessions
    }

    /// The same sessions, handing the [`Pinned`](super::Pinned) choice to
    /// the inner service as an argument, `(Pinned<T>, Request<B>)`, rather
    /// than in the request's extensions: no allocation on a resumed
    /// request. See [`StickyHandOffLayer`].
    pub fn hand_off(self) -> StickyHandOffLayer<T, B> {
        StickyHandOffLayer::from_sessions(self.sessions)
    }

    /// The same sessions with failover: a request whose backend fails (by
    /// default: refuses the connection) is marked down and sent to another
    /// backend with one new cookie, within RFC 9110's retry rules. See
    /// [`StickyFailoverLayer`].
    pub fn failover(self) -> StickyFailoverLayer<T, B> {
        StickyFailoverLayer::new(self.sessions)
    }
}

impl<S, T, B> Layer<S> for StickyLayer<T, B> {
    type Service = Sticky<S, T, B>;

    fn layer(&self, inner: S) -> Self::Service {
        Sticky::new(inner, self.sessions.clone())
    }
}
