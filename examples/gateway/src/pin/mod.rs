//! Step 3 of a request: **pin**. The rule's session engine
//! ([`StickySessions`](tower_sticky::sticky::StickySessions)) verifies the
//! session value, strips it and decides the endpoint: the session's own, or
//! a new pick; a rule without `sessionPersistence` uses the engine's plain
//! mode (a weighted pick, no session). After a failed attempt, [`repick`]
//! gives the request a new session on an endpoint it has not tried yet
//! (the library's `repin_excluding`).
//!
//! The library's panic rule serves ejected endpoints when every endpoint of
//! a rule would be down, so that requests that crash their handler cannot
//! take a Service down. An endpoint that *refused* a connection is the
//! exception here: the request cannot have caused that, and it cannot
//! serve, so it is skipped until the prober revives it (issue 17 scopes the
//! panic rule to failures after the request was written). A Service whose
//! every endpoint refuses gets 503 at once, not four connection attempts.
//!
//! Strict sessions refuse a resumed session whose endpoint cannot serve.
//! The engine counts its own refusals in `tower_sticky_requests_total`
//! (`outcome="pinned_unavailable"`); the gateway refuses two more itself,
//! which the engine saw as `resumed`: the endpoint refused under the panic
//! rule ([`first`]), or the attempt on it failed. [`refused_strictly`]
//! counts those in the same series, once per request.

use crate::config::rules::{Rule, Upstream};
use http::{HeaderMap, Method, Request, Uri};
use std::sync::Arc;
use tower_sticky::balance::{BackendId, Ejection, Endpoint, InFlight};
use tower_sticky::sticky::{Decision, Outcome, RequestHead};

/// Where one attempt goes, and the session decision to write back.
pub struct Choice {
    /// The endpoint.
    pub endpoint: Arc<Endpoint<Upstream>>,
    /// The session decision (what to write back; nothing in plain mode).
    pub decision: Option<Decision<Upstream>>,
    /// What became of the request's session (`picked` in plain mode).
    pub outcome: Outcome,
    /// The request counted in flight on `endpoint` (the library's
    /// `Endpoint::in_flight`, what `PowerOfTwoChoices` compares), from the
    /// pick until the response body or the upgraded tunnel ends.
    pub in_flight: Option<InFlight>,
}

impl Choice {
    /// The engine's `decision`, if it chose an endpoint; else its outcome.
    fn new(decision: Decision<Upstream>) -> Result<Choice, Outcome> {
        let outcome = decision.outcome();
        let Some(endpoint) = decision.endpoint().cloned() else {
            return Err(outcome);
        };
        Ok(Choice {
            endpoint,
            in_flight: decision.in_flight(),
            decision: Some(decision),
            outcome,
        })
    }

    /// The request carried a valid session and went to its backend.
    pub fn resumed(&self) -> bool {
        self.outcome.is_resumed()
    }

    /// The request got a new session (counted per endpoint).
    pub fn new_session(&self) -> bool {
        !self.outcome.is_resumed() && !matches!(self.outcome, Outcome::NoBackend | Outcome::Picked)
    }
}

/// The endpoint for a request: the session's, or a new pick. `Err`: none
/// can take it, with the session outcome.
pub fn first<B>(rule: &Rule, req: &mut Request<B>) -> Result<Choice, Outcome> {
    let choice = Choice::new(rule.target.route(req))?;
    if !refused(&choice.endpoint) {
        return Ok(choice);
    }
    if rule.strict && choice.resumed() {
        return Err(refused_strictly(rule));
    }
    let head = Head {
        method: req.method(),
        uri: req.uri(),
        headers: req.headers(),
    };
    repick(rule, &head, &[]).ok_or(Outcome::NoBackend)
}

/// A resumed session refused by the gateway under strict sessions, after
/// the engine had pinned it: counted as the engine counts its own refusals
/// (`tower_sticky_requests_total{scope,outcome="pinned_unavailable"}`,
/// the same labels in the same order, so the same series), and the outcome
/// to answer with.
pub fn refused_strictly(rule: &Rule) -> Outcome {
    let outcome = Outcome::PinnedUnavailable;
    let scope = metrics::SharedString::from(Arc::clone(&rule.scope));
    metrics::counter!(REQUESTS, "scope" => scope, "outcome" => outcome.as_str()).increment(1);
    outcome
}

/// The library's request counter (its `metrics` feature).
const REQUESTS: &str = "tower_sticky_requests_total";

/// Whether `endpoint` refused a connection and is not revived yet.
fn refused(endpoint: &Endpoint<Upstream>) -> bool {
    endpoint.health().ejection() == Some(Ejection::Refused)
}

/// What a re-pick reads of the request.
pub struct Head<'a> {
    /// The method.
    pub method: &'a Method,
    /// The target.
    pub uri: &'a Uri,
    /// The headers (the session value already stripped).
    pub headers: &'a HeaderMap,
}

/// After a failed attempt: a new session on an endpoint not in `tried`, if
/// one takes new sessions.
pub fn repick(rule: &Rule, head: &Head<'_>, tried: &[BackendId]) -> Option<Choice> {
    let request = RequestHead::new(head.method, head.uri, head.headers);
    let snapshot = rule.target.backends().snapshot();
    let mut skip = tried.to_vec();
    skip.extend(
        snapshot
            .endpoints()
            .iter()
            .filter(|e| refused(e))
            .map(|e| e.id()),
    );
    let decision = rule
        .target
        .repin_excluding(request, Outcome::RepinnedDown, &skip);
    Choice::new(decision).ok()
}
