use super::{SessionToken, Timestamp};
use crate::duration::Duration;
use crate::policy::SessionPolicy;

/// The time rules a verified token must still satisfy.
///
/// * absolute: the session ends `absolute` after it was issued;
/// * idle: the session ends `idle` after it was last recorded as active;
/// * refresh: an active session's last-seen time is re-recorded (a new token)
///   once it is `refresh_after` old, so refreshes are throttled yet a session
///   never outlives its idle timeout: idleness is measured from the recorded
///   time, which lags real activity by less than `refresh_after`;
/// * skew: a token issued by a replica whose clock runs ahead by at most
///   `skew` is accepted; one further in the future is not.
///
/// Deadlines are exclusive: a session with `absoluteTimeout: 10s` is over at
/// exactly 10 000 ms.
///
/// ```
/// use tower_sticky::duration::Duration;
/// use tower_sticky::token::{Lifetime, SessionToken, Timestamp, Verdict};
/// use tower_sticky::balance::BackendId;
///
/// let life = Lifetime::new(Some(Duration::from_secs(10)), None);
/// let t = SessionToken::new(BackendId::from_name("a"), Timestamp::from_millis(0));
/// assert_eq!(life.check(&t, Timestamp::from_millis(9_999)), Verdict::Valid { refresh: false });
/// assert_eq!(life.check(&t, Timestamp::from_millis(10_000)), Verdict::Expired);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetime {
    absolute_ms: Option<u64>,
    idle_ms: Option<u64>,
    refresh_after_ms: u64,
    skew_ms: u64,
}

/// The default clock skew allowance between proxy replicas.
pub const DEFAULT_SKEW: Duration = Duration::from_secs(2);

/// What a verified token's times say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The session goes on; `refresh` asks for a token with a fresh
    /// last-seen time.
    Valid {
        /// Whether to re-issue the token now.
        refresh: bool,
    },
    /// `absoluteTimeout` has passed since the session began.
    Expired,
    /// `idleTimeout` has passed since the session was last recorded active.
    IdleExpired,
    /// Issued or seen further in the future than the skew allowance, or seen
    /// before it was issued: not a token this deployment would mint.
    Invalid,
}

impl Lifetime {
    /// Rules with the given timeouts, the default skew allowance, and a
    /// refresh step of a quarter of the idle timeout.
    #[must_use]
    pub fn new(absolute: Option<Duration>, idle: Option<Duration>) -> Self {
        let idle_ms = idle.map(Duration::as_millis);
        Lifetime {
            absolute_ms: absolute.map(Duration::as_millis),
            idle_ms,
            refresh_after_ms: idle_ms.map_or(u64::MAX, |i| (i / 4).max(1)),
            skew_ms: DEFAULT_SKEW.as_millis(),
        }
    }

    /// The rules of a policy.
    #[must_use]
    pub fn for_policy(policy: &SessionPolicy) -> Self {
        Self::new(policy.absolute_timeout(), policy.idle_timeout())
    }

    /// Sets the clock skew allowed between replicas.
    #[must_use]
    pub fn skew(mut self, skew: Duration) -> Self {
        self.skew_ms = skew.as_millis();
        self
    }

    /// Sets how old a session's last-seen time may grow before an active
    /// session gets a refreshed token. Clamped to `1ms..=idle timeout`:
    /// this is an internal (feature `token-internals`); the public
    /// [`StickyBuilder::refresh_after`](crate::sticky::StickyBuilder::refresh_after)
    /// refuses such a step instead (`BuildErrorKind::RefreshOutOfRange`),
    /// as every public setter refuses out-of-range values.
    #[must_use]
    pub fn refresh_after(mut self, step: Duration) -> Self {
        if let Some(idle) = self.idle_ms {
            self.refresh_after_ms = step.as_millis().clamp(1, idle);
        }
        self
    }

    /// The refresh step, if sessions have an idle timeout.
    #[must_use]
    pub fn refresh_step(&self) -> Option<Duration> {
        self.idle_ms
            .map(|_| Duration::from_millis(self.refresh_after_ms))
    }

    /// The absolute timeout.
    #[must_use]
    pub fn absolute(&self) -> Option<Duration> {
        self.absolute_ms.map(Duration::from_millis)
    }

    /// Judges a verified token at `now`.
    #[must_use]
    pub fn check(&self, token: &SessionToken, now: Timestamp) -> Verdict {
        let horizon = now.plus_millis(self.skew_ms);
        if token.issued_at > horizon
            || token.last_seen > horizon
            || token.last_seen < token.issued_at
        {
            return Verdict::Invalid;
        }
        if let Some(abs) = self.absolute_ms
            && now.millis_since(token.issued_at) >= abs
        {
            return Verdict::Expired;
        }
        match self.idle_ms {
            Some(idle) => {
                let idle_for = now.millis_since(token.last_seen);
                if idle_for >= idle {
                    Verdict::IdleExpired
                } else {
                    Verdict::Valid {
                        refresh: idle_for >= self.refresh_after_ms,
                    }
                }
            }
            None => Verdict::Valid { refresh: false },
        }
    }

    /// Whole seconds left before the absolute deadline, rounded up (for a
    /// `Permanent` cookie's `Max-Age`), or `None` without one.
    #[must_use]
    pub fn remaining_secs(&self, token: &SessionToken, now: Timestamp) -> Option<u64> {
        self.absolute_ms.map(|abs| {
            abs.saturating_sub(now.millis_since(token.issued_at))
                .div_ceil(1000)
        })
    }
}
