use super::Failure;
use crate::balance::BackendId;
use http::Method;

/// Whether a request's body can be sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyReplay {
    /// The proxy holds the whole body (buffered, or empty, or not yet read
    /// because the connection failed first): it can send it again.
    Replayable,
    /// Part of the body was streamed and is gone: no retry is possible.
    Streamed,
}

/// Whether RFC 9110 §9.2.2 calls `method` idempotent: `GET`, `HEAD`,
/// `OPTIONS`, `TRACE`, `PUT`, `DELETE`. Only these may be sent again once
/// a backend may have acted on them.
#[must_use]
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// When a failed request may be sent again, and how often: the retry rules
/// of RFC 9110 §9.2.2, bounded. Configured once; each request gets its own
/// [`Attempts`] from [`start`](Self::start).
///
/// * A response that started is never retried.
/// * A request the backend may have acted on (written, then reset, closed
///   or timed out) is retried only if its method
///   [is idempotent](is_idempotent).
/// * Any retry needs a [replayable](BodyReplay::Replayable) body.
/// * A connect failure may move on to up to
///   [`connect_retries`](Self::connect_retries) more backends (3 by
///   default); any other failure is retried at most
///   [`other_retries`](Self::other_retries) times (once by default).
///
/// ```
/// use http::Method;
/// use tower_sticky::balance::BackendId;
/// use tower_sticky::failover::{Blame, BodyReplay, Failure, GiveUp, Next, RetryRules};
///
/// let rules = RetryRules::new();
/// let (a, b) = (BackendId::from_name("pod-a"), BackendId::from_name("pod-b"));
///
/// // A POST that pod-a may have run is not sent again.
/// let mut post = rules.start(&Method::POST, BodyReplay::Replayable);
/// let verdict = post.failed(a, Failure::AfterWrite);
/// assert_eq!(verdict.next, Next::GiveUp(GiveUp::MayHaveBeenActedOn));
/// assert_eq!(verdict.blame, Blame::Suspect);
///
/// // A POST refused by pod-a goes to another backend; pod-a is down.
/// let mut post = rules.start(&Method::POST, BodyReplay::Replayable);
/// let verdict = post.failed(a, Failure::Connect);
/// assert_eq!((verdict.next, verdict.blame), (Next::Retry, Blame::Down));
/// assert_eq!(post.tried(), &[a]);
///
/// // A GET is retried once after a reset; the second reset, elsewhere, is
/// // blamed on the request rather than on pod-b.
/// let mut get = rules.start(&Method::GET, BodyReplay::Replayable);
/// assert_eq!(get.failed(a, Failure::AfterWrite).next, Next::Retry);
/// let verdict = get.failed(b, Failure::AfterWrite);
/// assert_eq!(verdict.next, Next::GiveUp(GiveUp::RetriesExhausted));
/// assert_eq!(verdict.blame, Blame::None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct RetryRules {
    connect_retries: u8,
    other_retries: u8,
}

impl Default for RetryRules {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryRules {
    /// Up to 3 more backends after connect failures, one retry after any
    /// other failure.
    pub const fn new() -> Self {
        RetryRules {
            connect_retries: 3,
            other_retries: 1,
        }
    }

    /// How many more backends a request may move on to after connect
    /// failures (3 by default; 0: none).
    pub const fn connect_retries(mut self, n: u8) -> Self {
        self.connect_retries = n;
        self
    }

    /// How many times a request may be retried after failures other than
    /// connect failures (1 by default; 0: never).
    pub const fn other_retries(mut self, n: u8) -> Self {
        self.other_retries = n;
        self
    }

    /// The attempts of one request.
    pub fn start(&self, method: &Method, body: BodyReplay) -> Attempts {
        Attempts {
            rules: *self,
            idempotent: is_idempotent(method),
            body,
            tried: Vec::new(),
            connect_retries: 0,
            other_retries: 0,
            suspected: false,
        }
    }
}

/// One request's attempts: the backends it failed on, the retries it used,
/// and whether it already failed in a way it may have caused. Allocates
/// nothing until a first failure.
#[derive(Clone, Debug)]
pub struct Attempts {
    rules: RetryRules,
    idempotent: bool,
    body: BodyReplay,
    tried: Vec<BackendId>,
    connect_retries: u8,
    other_retries: u8,
    suspected: bool,
}

/// What to do after one failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Verdict {
    /// Retry on another backend, or answer the client with an error.
    pub next: Next,
    /// What the failure says about the backend, for
    /// [`PassiveHealth::failed`](super::PassiveHealth::failed).
    pub blame: Blame,
}

/// Whether to send a failed request again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Next {
    /// Send it to another backend (one not in [`Attempts::tried`]).
    Retry,
    /// Answer the client with an error (502, or 504 after a timeout).
    GiveUp(GiveUp),
}

/// Why a failed request is not sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUp {
    /// Part of the response already went to the client.
    ResponseStarted,
    /// A non-idempotent request the backend may have acted on (RFC 9110
    /// §9.2.2).
    MayHaveBeenActedOn,
    /// The body was streamed and cannot be sent again.
    BodyNotReplayable,
    /// The retries allowed for this kind of failure are used up.
    RetriesExhausted,
}

/// What a failure says about the backend it happened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Blame {
    /// The backend cannot be reached: down at once (the request cannot
    /// have caused a refused connection).
    Down,
    /// It may be the backend's fault or the request's: one more
    /// consecutive failure, toward `down_after`, within the ejection cap.
    Suspect,
    /// Nothing against the backend: nothing reached it (a stale pooled
    /// connection, a refused HTTP/2 stream), or the same request already
    /// failed elsewhere in a way it may have caused.
    None,
}

impl Attempts {
    /// Records that the attempt on `backend` failed with `failure`, and
    /// says whether to retry and what it says about the backend.
    pub fn failed(&mut self, backend: BackendId, failure: Failure) -> Verdict {
        if !self.tried.contains(&backend) {
            self.tried.push(backend);
        }
        let blame = match failure {
            Failure::Connect => Blame::Down,
            Failure::NotWritten | Failure::StreamRefused => Blame::None,
            _ if self.suspected => Blame::None,
            _ => Blame::Suspect,
        };
        self.suspected |= failure.may_be_caused_by_request();
        Verdict {
            next: self.next(failure),
            blame,
        }
    }

    fn next(&mut self, failure: Failure) -> Next {
        if failure == Failure::ResponseBroken {
            return Next::GiveUp(GiveUp::ResponseStarted);
        }
        if !failure.provably_not_acted_on() && !self.idempotent {
            return Next::GiveUp(GiveUp::MayHaveBeenActedOn);
        }
        if self.body == BodyReplay::Streamed {
            return Next::GiveUp(GiveUp::BodyNotReplayable);
        }
        let (used, allowed) = if failure == Failure::Connect {
            (&mut self.connect_retries, self.rules.connect_retries)
        } else {
            (&mut self.other_retries, self.rules.other_retries)
        };
        if *used >= allowed {
            return Next::GiveUp(GiveUp::RetriesExhausted);
        }
        *used += 1;
        Next::Retry
    }

    /// The backends this request failed on, in order: what
    /// [`StickySessions::repin_excluding`](crate::sticky::StickySessions::repin_excluding)
    /// leaves out.
    #[must_use]
    pub fn tried(&self) -> &[BackendId] {
        &self.tried
    }

    /// How many retries were granted so far.
    #[must_use]
    pub fn retries(&self) -> u32 {
        u32::from(self.connect_retries) + u32::from(self.other_retries)
    }

    /// Whether the method is idempotent.
    #[must_use]
    pub fn idempotent(&self) -> bool {
        self.idempotent
    }
}
