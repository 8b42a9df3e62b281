//! What follows a failed attempt (RFC 9110 §9.2.2): a [`Failure`] says how
//! far the request got and carries it back when nothing of it left;
//! [`Retry`] decides the next step and who is to blame.
//!
//! * A request that provably was not acted on may go again whatever its
//!   method: the connection was refused (up to [`MAX_REFUSED_MOVES`] more
//!   endpoints), or the connection took nothing of it.
//! * A request that went out, then got no response byte, may have been
//!   acted on: only an idempotent method (GET, HEAD, OPTIONS, TRACE, PUT,
//!   DELETE) with its body at hand goes again, once. A POST gets 502 and
//!   runs once.
//! * A response that started and then broke, or a timeout, is never
//!   retried.

use super::UpstreamBody;
use super::replay::ReqBody;
use http::{Method, Request};

/// Endpoints a refused request may move on to after the first.
pub const MAX_REFUSED_MOVES: u8 = 3;

/// Why an attempt got no usable response. Each detail is for the log,
/// never for the client.
pub enum Failure {
    /// No connection (refused, timed out): nothing was sent; the request
    /// comes back.
    Refused(Request<UpstreamBody>, String),
    /// The connection took nothing of the request (hyper handed it back):
    /// not acted on. `reused`: a connection that had served requests.
    NotWritten(Request<UpstreamBody>, bool, String),
    /// The request (or some of it) went out, and the connection died before
    /// any response byte: it may have been acted on.
    AfterWrite {
        /// On a connection that had served requests (a keep-alive race is
        /// likelier than a sick backend).
        reused: bool,
        /// For the log.
        detail: String,
    },
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

/// The step after a failed attempt.
pub enum Next {
    /// The same endpoint, on a fresh connection: a pooled connection died
    /// as an idempotent request went out (not held against the endpoint).
    SameFresh,
    /// Another endpoint, under a new session.
    Other,
    /// No further attempt: answer from this failure (boxed: it carries a
    /// request, and stopping is the rare case).
    Stop(Box<Failure>),
}

/// What a failure says about the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blame {
    /// Nothing (the client's fault, a keep-alive race, or the request
    /// already failed elsewhere so it may be the request's fault).
    None,
    /// It refused a connection: it is down, whatever the request was.
    Down,
    /// One more consecutive failure (`--down-after`).
    Count,
}

/// The retry state of one request.
#[derive(Debug)]
pub struct Retry {
    idempotent: bool,
    refused_moves: u8,
    /// Moves after a failure that was not a refusal (at most one).
    other_moves: u8,
    same_fresh: bool,
    /// An attempt of this request already failed after it went out.
    failed_after_write: bool,
}

/// RFC 9110 §9.2.2.
pub fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

impl Retry {
    /// For a request with `method`.
    pub fn new(method: &Method) -> Retry {
        Retry {
            idempotent: idempotent(method),
            refused_moves: 0,
            other_moves: 0,
            same_fresh: false,
            failed_after_write: false,
        }
    }

    /// The step after `failure`; a request that comes back gives its body
    /// back to `body`.
    pub fn after(&mut self, failure: Failure, body: &mut ReqBody) -> (Next, Blame) {
        match failure {
            Failure::Refused(req, detail) => {
                body.put_back(req);
                if self.refused_moves == MAX_REFUSED_MOVES {
                    return (Next::Stop(Box::new(Failure::BadResponse(detail))), Blame::Down);
                }
                self.refused_moves += 1;
                (Next::Other, Blame::Down)
            }
            Failure::NotWritten(req, reused, detail) => {
                body.put_back(req);
                if reused && !self.same_fresh {
                    self.same_fresh = true;
                    return (Next::SameFresh, Blame::None);
                }
                (self.move_once(Failure::BadResponse(detail)), Blame::Count)
            }
            Failure::AfterWrite { reused, detail } => self.after_write(reused, detail, body),
            other => (Next::Stop(Box::new(other)), Blame::None),
        }
    }

    fn after_write(&mut self, reused: bool, detail: String, body: &ReqBody) -> (Next, Blame) {
        let again = self.idempotent && body.replayable();
        if reused && again && !self.same_fresh {
            self.same_fresh = true;
            return (Next::SameFresh, Blame::None);
        }
        let blame = if self.failed_after_write {
            Blame::None
        } else {
            Blame::Count
        };
        self.failed_after_write = true;
        let failure = Failure::AfterWrite { reused, detail };
        if !again {
            return (Next::Stop(Box::new(failure)), blame);
        }
        (self.move_once(failure), blame)
    }

    /// Another endpoint, if this request has not moved after a failure yet.
    fn move_once(&mut self, failure: Failure) -> Next {
        if self.other_moves > 0 {
            return Next::Stop(Box::new(failure));
        }
        self.other_moves += 1;
        Next::Other
    }
}
