use super::Timestamp;
use crate::balance::BackendId;

/// What a session token says: the backend, when the session began, and when
/// it was last seen (for idle timeouts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionToken {
    pub(crate) backend: BackendId,
    pub(crate) issued_at: Timestamp,
    pub(crate) last_seen: Timestamp,
}

impl SessionToken {
    /// A new session on `backend`, issued (and last seen) at `now`.
    #[must_use]
    pub fn new(backend: BackendId, now: Timestamp) -> Self {
        SessionToken {
            backend,
            issued_at: now,
            last_seen: now,
        }
    }

    /// A token with every field given.
    #[must_use]
    pub fn from_parts(backend: BackendId, issued_at: Timestamp, last_seen: Timestamp) -> Self {
        SessionToken {
            backend,
            issued_at,
            last_seen,
        }
    }

    /// The same session, seen again at `now` (never moving backwards).
    #[must_use]
    pub fn touched(self, now: Timestamp) -> Self {
        SessionToken {
            last_seen: self.last_seen.max(now),
            ..self
        }
    }

    /// The backend the session is pinned to.
    #[must_use]
    pub fn backend(&self) -> BackendId {
        self.backend
    }

    /// When the session began.
    #[must_use]
    pub fn issued_at(&self) -> Timestamp {
        self.issued_at
    }

    /// When the session was last recorded as active.
    #[must_use]
    pub fn last_seen(&self) -> Timestamp {
        self.last_seen
    }
}
