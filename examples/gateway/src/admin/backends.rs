//! `GET /backends`, `POST /backends/drain` and `POST /backends/undrain`.

use super::{json, query, quoted, text};
use crate::discover::membership::{Drain, Member, Unknown, state_name};
use crate::forward::ClientBody;
use crate::reload::Control;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Requests in flight per member, from the library's count on every rule's
/// endpoint of it in the current configuration (`Endpoint::in_flight`:
/// from the pick until the response body ends). A request that started on
/// a configuration since replaced by a reload is not among them.
fn in_flight(control: &Control) -> HashMap<*const Member, Seen> {
    let mut counts: HashMap<*const Member, Seen> = HashMap::new();
    for rule in &control.current().load().rules {
        let snapshot = rule.target.backends().snapshot();
        let in_panic = snapshot.in_panic();
        for e in snapshot.endpoints() {
            let seen = counts.entry(Arc::as_ptr(&e.target().member)).or_default();
            seen.in_flight += e.in_flight();
            seen.in_panic |= in_panic;
        }
    }
    counts
}

/// What the rules' endpoints of a member say.
#[derive(Default)]
struct Seen {
    in_flight: usize,
    /// A rule it serves is in panic: every endpoint would be down, so all
    /// serve, ejected ones included.
    in_panic: bool,
}

/// One endpoint as JSON.
fn describe(m: &Arc<Member>, seen: &HashMap<*const Member, Seen>) -> Value {
    // A drain deadline that passed shows, even before its timer ran.
    m.refresh();
    let drain = m.drain();
    let seen = seen.get(&Arc::as_ptr(m));
    json!({
        "service": m.service.qualified(),
        "port": m.service.port,
        "endpoint": m.addr,
        "label": m.label,
        "state": m.state_name(),
        "discovered": state_name(m.discovered()),
        "drained": drain.is_some(),
        "drain_deadline_in_ms": drain.and_then(|d| d.deadline).map(|d| {
            d.saturating_duration_since(Instant::now()).as_millis() as u64
        }),
        "unhealthy": m.unhealthy(),
        "ejection": m.cell.ejection().map(tower_sticky::balance::Ejection::as_str),
        "consecutive_failures": m.cell.consecutive_failures(),
        "held_back": m.cell.held_back(),
        "in_panic": seen.is_some_and(|s| s.in_panic),
        "requests": m.requests.load(Ordering::Relaxed),
        "sessions": m.sessions.load(Ordering::Relaxed),
        "waiting": m.waiting.load(Ordering::Relaxed),
        "in_flight": seen.map_or(0, |s| s.in_flight),
    })
}

/// Every endpoint of every Service.
pub fn list(control: &Control) -> Response<ClientBody> {
    let in_flight = in_flight(control);
    let all: Vec<Value> = control
        .membership()
        .all()
        .iter()
        .map(|m| describe(m, &in_flight))
        .collect();
    json(StatusCode::OK, &Value::Array(all))
}

/// Drains (`drain`) or undrains an endpoint.
pub fn drain(control: &Control, q: &str, drain: bool) -> Response<ClientBody> {
    let target = match query::parse(q, drain) {
        Ok(t) => t,
        Err(why) => return text(StatusCode::BAD_REQUEST, &format!("bad request: {why}\n")),
    };
    let deadline = target.deadline.map(|d| Instant::now() + d);
    let set = drain.then_some(Drain { deadline });
    match control.set_drain(&target.service, &target.endpoint, set) {
        Ok(members) => {
            let in_flight = in_flight(control);
            json(
                StatusCode::OK,
                &Value::Array(members.iter().map(|m| describe(m, &in_flight)).collect()),
            )
        }
        Err(Unknown::Service) => text(
            StatusCode::NOT_FOUND,
            &format!("no Service {}\n", quoted(&target.service)),
        ),
        Err(Unknown::Endpoint) => text(
            StatusCode::NOT_FOUND,
            &format!(
                "Service {} has no endpoint {}\n",
                quoted(&target.service),
                quoted(&target.endpoint)
            ),
        ),
    }
}
