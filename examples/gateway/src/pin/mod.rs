//! Step 3 of a request: **pin**. The rule's session engine
//! ([`StickySessions`](tower_sticky::sticky::StickySessions)) verifies the
//! session value, strips it and decides the endpoint: the session's own, or
//! a new pick (a weighted pick for rules without `sessionPersistence`).
//! After a failed attempt, [`repick`] gives the request a new session on
//! another endpoint.

use crate::config::rules::{Rule, Target, Upstream};
use http::{HeaderMap, Method, Request, Uri};
use std::sync::Arc;
use tower_sticky::balance::{Balance, Endpoint, InFlight, PickContext};
use tower_sticky::sticky::{Decision, Outcome, RequestHead};

/// How many picks a retry may take to find a backend other than the one that
/// failed. The weighted balancer walks a golden-ratio sequence, so it can
/// land on the same backend several times in a row.
const REPICK_TRIES: usize = 64;

/// Where one attempt goes, and the session decision to write back.
pub struct Choice {
    /// The endpoint.
    pub endpoint: Arc<Endpoint<Upstream>>,
    /// The session decision (rules with `sessionPersistence`).
    pub decision: Option<Decision<Upstream>>,
    /// What became of the request's session.
    pub outcome: Option<Outcome>,
    /// The request counted in flight on `endpoint` (the library's
    /// `Endpoint::in_flight`, what `PowerOfTwoChoices` compares), from the
    /// pick until the response body or the upgraded tunnel ends.
    pub in_flight: Option<InFlight>,
}

impl Choice {
    fn new(
        endpoint: Arc<Endpoint<Upstream>>,
        decision: Option<Decision<Upstream>>,
        outcome: Option<Outcome>,
    ) -> Choice {
        let in_flight = match &decision {
            Some(decision) => decision.in_flight(),
            None => Some(InFlight::start(Arc::clone(&endpoint))),
        };
        Choice {
            endpoint,
            decision,
            outcome,
            in_flight,
        }
    }

    /// The request carried a valid session and went to its backend.
    pub fn resumed(&self) -> bool {
        self.outcome.is_some_and(Outcome::is_resumed)
    }
}

/// The endpoint for a request: the session's, or a new pick. `Err`: none
/// can take it, with the session outcome.
pub fn first<B>(rule: &Rule, req: &mut Request<B>) -> Result<Choice, Option<Outcome>> {
    match &rule.target {
        Target::Sticky(sessions) => {
            let decision = sessions.route(req);
            let outcome = decision.outcome();
            match decision.endpoint().cloned() {
                Some(endpoint) => Ok(Choice::new(endpoint, Some(decision), Some(outcome))),
                None => Err(Some(outcome)),
            }
        }
        Target::Plain { backends, balancer } => {
            let snapshot = backends.snapshot();
            let ctx = PickContext {
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
            };
            balancer
                .pick(&ctx, &snapshot)
                .and_then(|i| snapshot.endpoints().get(i).cloned())
                .map(|endpoint| Choice::new(endpoint, None, None))
                .ok_or(None)
        }
    }
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

/// After `previous` failed: a new session on another endpoint, if one
/// takes new sessions.
pub fn repick(rule: &Rule, head: &Head<'_>, previous: &Choice) -> Option<Choice> {
    let other = |e: &Arc<Endpoint<Upstream>>| e.id() != previous.endpoint.id();
    let snapshot = rule.target.backends().snapshot();
    if !snapshot
        .endpoints()
        .iter()
        .any(|e| other(e) && e.takes_new_sessions())
    {
        return None;
    }
    match &rule.target {
        Target::Sticky(sessions) => {
            for _ in 0..REPICK_TRIES {
                let request = RequestHead::new(head.method, head.uri, head.headers);
                let decision = sessions.repin(request, Outcome::RepinnedDown);
                let outcome = decision.outcome();
                let endpoint = decision.endpoint().cloned()?;
                if other(&endpoint) {
                    return Some(Choice::new(endpoint, Some(decision), Some(outcome)));
                }
            }
            None
        }
        Target::Plain { balancer, .. } => {
            let ctx = PickContext {
                method: head.method,
                uri: head.uri,
                headers: head.headers,
            };
            (0..REPICK_TRIES)
                .filter_map(|_| balancer.pick(&ctx, &snapshot))
                .filter_map(|i| snapshot.endpoints().get(i).cloned())
                .find(other)
                .map(|endpoint| Choice::new(endpoint, None, None))
        }
    }
}
