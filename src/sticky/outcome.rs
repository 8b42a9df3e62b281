use std::fmt;

/// What the layer did with one request's session, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// No session value came with the request: a new session was created.
    New,
    /// A valid session was honoured; nothing written back.
    Resumed,
    /// A valid session was honoured and re-issued with a fresh last-seen
    /// time (idle timeout).
    Refreshed,
    /// A valid session signed by an older key was honoured and re-signed
    /// with the current key.
    Rekeyed,
    /// The session was past its `absoluteTimeout`: a new one was created.
    Expired,
    /// The session was idle past its `idleTimeout`: a new one was created.
    IdleExpired,
    /// The value is not a token at all (wrong length, not base64, unknown
    /// format version): a new session was created.
    Malformed,
    /// A well-formed token whose signature does not verify under this
    /// scope's keys: forged, tampered with, or issued for another route
    /// rule (scope) or deployment. A new session was created. Many of these
    /// from one client are an attack signal.
    Forged,
    /// A token this deployment signed, dated further in the future than the
    /// clock skew allowance (or seen before it was issued): a new session
    /// was created. Points at replicas whose clocks disagree.
    FutureDated,
    /// The session's backend is down: re-pinned with a new token.
    RepinnedDown,
    /// The session's backend is no longer a member: re-pinned with a new
    /// token.
    RepinnedGone,
    /// No backend could take the request: answered 503.
    NoBackend,
    /// Strict sessions ([`StickyBuilder::strict`](super::StickyBuilder::strict)):
    /// the session's backend is down or gone, and the request is refused
    /// (503) instead of re-pinned.
    PinnedUnavailable,
    /// Plain mode ([`StickyBuilder::plain`](super::StickyBuilder::plain), a
    /// rule without `sessionPersistence`): a backend was picked; there is
    /// no session.
    Picked,
}

impl Outcome {
    /// Every outcome, in a fixed order (for pre-registered counters).
    pub const ALL: [Outcome; 14] = [
        Outcome::New,
        Outcome::Resumed,
        Outcome::Refreshed,
        Outcome::Rekeyed,
        Outcome::Expired,
        Outcome::IdleExpired,
        Outcome::Malformed,
        Outcome::Forged,
        Outcome::FutureDated,
        Outcome::RepinnedDown,
        Outcome::RepinnedGone,
        Outcome::NoBackend,
        Outcome::PinnedUnavailable,
        Outcome::Picked,
    ];

    /// A short, stable label: `new`, `resumed`, `refreshed`, `rekeyed`,
    /// `expired`, `idle_expired`, `malformed`, `forged`, `future_dated`,
    /// `repinned_down`, `repinned_gone`, `no_backend`, `pinned_unavailable`,
    /// `picked`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::New => "new",
            Outcome::Resumed => "resumed",
            Outcome::Refreshed => "refreshed",
            Outcome::Rekeyed => "rekeyed",
            Outcome::Expired => "expired",
            Outcome::IdleExpired => "idle_expired",
            Outcome::Malformed => "malformed",
            Outcome::Forged => "forged",
            Outcome::FutureDated => "future_dated",
            Outcome::RepinnedDown => "repinned_down",
            Outcome::RepinnedGone => "repinned_gone",
            Outcome::NoBackend => "no_backend",
            Outcome::PinnedUnavailable => "pinned_unavailable",
            Outcome::Picked => "picked",
        }
    }

    /// The position of this outcome in [`ALL`](Self::ALL).
    #[must_use]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether the session continued on the backend it was pinned to.
    #[must_use]
    pub const fn is_resumed(self) -> bool {
        matches!(
            self,
            Outcome::Resumed | Outcome::Refreshed | Outcome::Rekeyed
        )
    }
}

impl Outcome {
    /// Whether the request came with a session value that was refused
    /// (malformed, forged, future-dated, expired or idle-expired), so that a
    /// new session replaced it.
    #[must_use]
    pub const fn is_rejected(self) -> bool {
        matches!(
            self,
            Outcome::Malformed
                | Outcome::Forged
                | Outcome::FutureDated
                | Outcome::Expired
                | Outcome::IdleExpired
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
