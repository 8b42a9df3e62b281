//! `GET /backends`, `POST /backends/drain` and `POST /backends/undrain`.

use super::{json, query, text};
use crate::discover::membership::{Member, Unknown};
use crate::proxy::ClientBody;
use crate::reload::Control;
use http::{Response, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

/// One endpoint as JSON.
fn describe(m: &Member) -> Value {
    let drain = m.drain();
    json!({
        "service": m.service.qualified(),
        "port": m.service.port,
        "endpoint": m.addr,
        "label": m.label,
        "state": m.state_name(),
        "discovered": match m.discovered() {
            tower_sticky::balance::BackendState::Serving => "serving",
            tower_sticky::balance::BackendState::Draining => "draining",
            _ => "down",
        },
        "drained": drain.is_some(),
        "drain_deadline_in_ms": drain.and_then(|d| d.deadline).map(|d| {
            d.saturating_duration_since(std::time::Instant::now()).as_millis() as u64
        }),
        "unhealthy": m.unhealthy(),
        "requests": m.requests.load(Ordering::Relaxed),
        "sessions": m.sessions.load(Ordering::Relaxed),
        "waiting": m.waiting.load(Ordering::Relaxed),
    })
}

/// Every endpoint of every Service.
pub fn list(control: &Control) -> Response<ClientBody> {
    // A drain deadline that just passed shows as it is served.
    control.sync();
    let all: Vec<Value> = control
        .membership()
        .all()
        .iter()
        .map(|m| describe(m))
        .collect();
    json(StatusCode::OK, &Value::Array(all))
}

/// Drains (`drain`) or undrains an endpoint.
pub fn drain(control: &Control, q: &str, drain: bool) -> Response<ClientBody> {
    let target = match query::parse(q, drain) {
        Ok(t) => t,
        Err(why) => return text(StatusCode::BAD_REQUEST, &format!("bad request: {why}\n")),
    };
    let result = if drain {
        control.drain(&target.service, &target.endpoint, target.deadline)
    } else {
        control.undrain(&target.service, &target.endpoint)
    };
    match result {
        Ok(members) => json(
            StatusCode::OK,
            &Value::Array(members.iter().map(|m| describe(m)).collect()),
        ),
        Err(Unknown::Service) => text(
            StatusCode::NOT_FOUND,
            &format!("no Service {}\n", target.service),
        ),
        Err(Unknown::Endpoint) => text(
            StatusCode::NOT_FOUND,
            &format!(
                "Service {} has no endpoint {}\n",
                target.service, target.endpoint
            ),
        ),
    }
}
