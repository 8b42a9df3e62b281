//! What follows a failed attempt. A [`Failed`] attempt says how far the
//! request got and carries it back when nothing of it left; [`Retry`]
//! decides the next step with the library's rules
//! ([`tower_sticky::failover`], RFC 9110 §9.2.2) and says whom to blame.
//!
//! * A request that provably was not acted on may go again whatever its
//!   method: the connection was refused (up to 3 more endpoints), or the
//!   connection took nothing of it.
//! * A stream an HTTP/2 backend refused (`REFUSED_STREAM`) was not
//!   processed either: it may go again whatever the method, when its body
//!   is at hand.
//! * A request that went out, then got no response byte, may have been
//!   acted on: only an idempotent method (GET, HEAD, OPTIONS, TRACE, PUT,
//!   DELETE) with its body at hand goes again, once. A POST gets 502 and
//!   runs once.
//! * A response that started and then broke is never retried, and neither
//!   is a timeout (after 30 s, a second wait would double it).
//!
//! One step is the gateway's own, before the library's rules: a pooled
//! connection that died as a request went out (it took nothing of it, or
//! the request is idempotent and at hand) is tried once more on a fresh
//! connection to the same endpoint, not held against it: the backend most
//! likely closed an idle connection (a keep-alive race), and moving the
//! session for that would be wrong.

use super::UpstreamBody;
use super::replay::ReqBody;
use http::{Method, Request};
use tower_sticky::balance::BackendId;
use tower_sticky::failover::{self, Attempts, Blame, BodyReplay, RetryRules};

/// Why an attempt got no usable response. Each detail is for the log,
/// never for the client.
#[derive(Debug)]
pub enum Failure {
    /// No connection (refused, timed out): nothing was sent.
    Refused(String),
    /// The connection took nothing of the request (hyper handed it back).
    NotWritten {
        /// A connection that had served requests.
        reused: bool,
        /// For the log.
        detail: String,
    },
    /// The request (or some of it) went out, and the connection died before
    /// any response byte: it may have been acted on.
    AfterWrite {
        /// A connection that had served requests.
        reused: bool,
        /// For the log.
        detail: String,
    },
    /// An HTTP/2 backend reset the stream with `REFUSED_STREAM`: it did
    /// not process the request (RFC 9113 §8.7).
    StreamRefused(String),
    /// Some of the answer arrived, then it broke or did not parse.
    BadResponse(String),
    /// No response head in time.
    Timeout,
    /// The client's body broke while it was being forwarded.
    ClientBody(String),
    /// `--max-upstream-connections` reached and none freed within
    /// `--upstream-queue-timeout`: nothing was sent.
    Saturated,
}

/// A failed attempt: how, and the request when nothing of it left.
pub struct Failed {
    /// How it failed.
    pub failure: Failure,
    /// The request, unsent.
    pub unsent: Option<Request<UpstreamBody>>,
}

impl From<Failure> for Failed {
    fn from(failure: Failure) -> Self {
        Failed {
            failure,
            unsent: None,
        }
    }
}

/// The step after a failed attempt.
#[derive(Debug)]
pub enum Next {
    /// The same endpoint, on a fresh connection (a keep-alive race).
    SameFresh,
    /// Another endpoint, under a new session.
    Other,
    /// No further attempt: answer from this failure.
    Stop(Failure),
}

/// The retry state of one request.
#[derive(Debug)]
pub struct Retry {
    attempts: Attempts,
    same_fresh: bool,
}

impl Retry {
    /// For a request with `method`. The body's replayability is checked at
    /// each failure instead of once here: a streamed body that came back
    /// unsent (a refused connection) can still go.
    pub fn new(method: &Method) -> Retry {
        Retry {
            attempts: RetryRules::new().start(method, BodyReplay::Replayable),
            same_fresh: false,
        }
    }

    /// The endpoints this request failed on.
    pub fn tried(&self) -> &[BackendId] {
        self.attempts.tried()
    }

    /// The step after `failed` on `backend`, and what it says about
    /// `backend`; a request that comes back gives its body back to `body`.
    pub(super) fn after(
        &mut self,
        backend: BackendId,
        failed: Failed,
        body: &mut ReqBody,
    ) -> (Next, Blame) {
        if let Some(unsent) = failed.unsent {
            body.put_back(unsent);
        }
        self.after_failure(backend, failed.failure, body.replayable())
    }

    /// [`after`](Self::after) for a request whose body's fate the caller
    /// knows: `replayable` when it is at hand for another attempt (none,
    /// read whole, or nothing of it sent yet).
    fn after_failure(
        &mut self,
        backend: BackendId,
        failure: Failure,
        replayable: bool,
    ) -> (Next, Blame) {
        let kind = match &failure {
            Failure::Refused(_) => failover::Failure::Connect,
            Failure::NotWritten { reused: true, .. } | Failure::AfterWrite { reused: true, .. }
                if !self.same_fresh && self.may_go_again(&failure, replayable) =>
            {
                self.same_fresh = true;
                return (Next::SameFresh, Blame::None);
            }
            Failure::NotWritten { .. } => failover::Failure::NotWritten,
            Failure::AfterWrite { .. } => failover::Failure::AfterWrite,
            Failure::StreamRefused(_) => failover::Failure::StreamRefused,
            Failure::BadResponse(_) => failover::Failure::ResponseBroken,
            Failure::Timeout => failover::Failure::Timeout,
            Failure::ClientBody(_) | Failure::Saturated => {
                return (Next::Stop(failure), Blame::None);
            }
        };
        let verdict = self.attempts.failed(backend, kind);
        let again = verdict.next == failover::Next::Retry
            && !matches!(failure, Failure::Timeout)
            && replayable;
        let next = if again {
            Next::Other
        } else {
            Next::Stop(failure)
        };
        (next, verdict.blame)
    }

    /// Whether the request may go again after `failure`: nothing of it
    /// left, or it is idempotent; and its body is at hand.
    fn may_go_again(&self, failure: &Failure, replayable: bool) -> bool {
        let not_acted_on = matches!(failure, Failure::NotWritten { .. });
        (not_acted_on || self.attempts.idempotent()) && replayable
    }
}
