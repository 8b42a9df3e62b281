//! Passive health, as the library rules it
//! ([`tower_sticky::failover::PassiveHealth`]), applied to
//! the one health cell of each endpoint (see
//! [`crate::discover::membership`]), and what `/metrics` says of it.
//!
//! * A refused connection ejects the endpoint at once (the request cannot
//!   have caused it; a backend that really died loses its sessions at once).
//! * A failure after the request went out counts toward `--down-after`,
//!   unless the same request already failed elsewhere (then the request is
//!   the likelier cause). Such ejections are capped at one endpoint in ten
//!   of a rule's set, and at least one: a client sending requests that
//!   crash their handler can take at most that many endpoints down. Envoy's
//!   outlier detection has the same cap (`max_ejection_percent`, 10 %);
//!   HAProxy's `observe layer7` marks a server down after
//!   `error-limit` errors with no cap, but its default is not to observe.
//! * When every endpoint of a rule would be down for health, none is: the
//!   engine serves them all (the panic rule, as Envoy's panic threshold).
//!
//! Each ejection is counted in
//! `gateway_backend_ejections_total{route,rule,service,backend,reason}`,
//! `reason` being `refused` or `failed`; the library's passive health has
//! no metrics of its own, so the gateway counts the
//! [`HealthChange::Ejected`] it returns. A held-back endpoint is not an
//! ejection (see `gateway_rule_ejections_held_back`).

use crate::config::rules::{Rule, Upstream};
use std::num::NonZeroU32;
use tower_sticky::balance::{Ejection, Endpoint};
use tower_sticky::failover::{Blame, HealthChange, PassiveHealth};

/// The counter of ejections by passive health.
pub const EJECTIONS: &str = "gateway_backend_ejections_total";

/// The passive health rules for `--down-after` (0 counts as 1).
pub fn rules(down_after: u32) -> PassiveHealth {
    PassiveHealth::new().down_after(NonZeroU32::new(down_after).unwrap_or(NonZeroU32::MIN))
}

/// Records a failed attempt on `endpoint` of `rule` with `blame`, and logs
/// and counts what it changed.
pub fn failed(passive: &PassiveHealth, rule: &Rule, endpoint: &Endpoint<Upstream>, blame: Blame) {
    let set = rule.target.backends().snapshot();
    let member = &endpoint.target().member;
    match passive.failed(&set, endpoint, blame) {
        HealthChange::Ejected(why) => {
            tracing::warn!(backend = %member.label, addr = %member.addr, route = %rule.route, rule = rule.index, reason = why.as_str(), "marked down");
            metrics::counter!(
                EJECTIONS,
                "route" => rule.route.clone(),
                "rule" => rule.index.to_string(),
                "service" => member.service.name.clone(),
                "backend" => member.label.clone(),
                "reason" => reason(why),
            )
            .increment(1);
        }
        HealthChange::HeldBack => {
            tracing::warn!(backend = %member.label, addr = %member.addr, route = %rule.route, rule = rule.index, "failure threshold reached, kept serving: the ejection cap (1 in 10 of the Service, at least 1) is reached");
        }
        _ => {}
    }
}

/// The `reason` label of an ejection: `refused` (a refused connection),
/// `failed` (`--down-after` failures after the request went out).
fn reason(why: Ejection) -> &'static str {
    match why {
        Ejection::Refused => "refused",
        Ejection::Failures => "failed",
        // Passive health never returns the others; named anyway.
        other => other.as_str(),
    }
}

/// Records a response from `endpoint`.
pub fn succeeded(passive: &PassiveHealth, endpoint: &Endpoint<Upstream>) {
    passive.succeeded(endpoint);
}

/// Sets `rule`'s health gauges: `gateway_rule_in_panic` (1 while every
/// endpoint would be down for health, so all serve),
/// `gateway_rule_ejections_held_back` (endpoints past the threshold that
/// the cap keeps serving) and `gateway_rule_endpoints_ejected`.
pub fn render_rule(rule: &Rule) {
    let health = rule.target.backends().health();
    let labels = [
        ("route", rule.route.clone()),
        ("rule", rule.index.to_string()),
    ];
    metrics::gauge!("gateway_rule_in_panic", &labels).set(f64::from(u8::from(health.in_panic)));
    metrics::gauge!("gateway_rule_ejections_held_back", &labels).set(health.held_back as f64);
    metrics::gauge!("gateway_rule_endpoints_ejected", &labels).set(health.ejected as f64);
}
