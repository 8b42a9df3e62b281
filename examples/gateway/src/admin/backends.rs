//! `GET /backends`, `POST /backends/drain` and `POST /backends/undrain`.

use super::{json, query, quoted, text};
use crate::discover::membership::{Drain, Member, Unknown, state_name};
use crate::proxy::ClientBody;
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
fn in_flight(control: &Control) -> HashMap<*const Member, usize> {
    let mut counts = HashMap::new();
    for rule in &control.current().load().rules {
        for e in rule.target.backends().snapshot().endpoints() {
            *counts.entry(Arc::as_ptr(&e.target().member)).or_default() += e.in_flight();
        }
    }
    counts
}

/// One endpoint as JSON.
fn describe(m: &Arc<Member>, in_flight: &HashMap<*const Member, usize>) -> Value {
    let drain = m.drain();
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
        "requests": m.requests.load(Ordering::Relaxed),
        "sessions": m.sessions.load(Ordering::Relaxed),
        "waiting": m.waiting.load(Ordering::Relaxed),
        "in_flight": in_flight.get(&Arc::as_ptr(m)).copied().unwrap_or(0),
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
    // A drain deadline that passed is applied before the answer leaves, and
    // after the states above were read: the other order leaves a window
    // where a deadline passing between the two shows "down" while requests
    // still see the endpoint draining, until the next tick of
    // `run_deadlines`.
    control.sync();
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
