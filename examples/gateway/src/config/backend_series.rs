//! The per-endpoint Prometheus series, `gateway_backend_requests_total` and
//! `gateway_backend_up`, rendered from the current snapshot on each scrape
//! rather than kept in the metrics recorder: an endpoint that left has no
//! series any more (issue 19, finding 6: 200 departed endpoints left 400
//! series behind, `gateway_backend_up 1` among them).
//!
//! Each rule's endpoint counts its requests in an atomic shared with the
//! `metrics::Counter` the proxy increments ([`counter`]); the atomic of a
//! label set outlives reloads for as long as some snapshot since the last
//! scrape still has that endpoint.

use super::rules::Compiled;
use std::collections::{HashMap, HashSet};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use tower_sticky::balance::BackendState;

/// `route`, `rule`, `service`, `backend`.
type Labels = (String, usize, String, String);

/// The request count of each label set, kept across snapshots.
static REQUESTS: LazyLock<Mutex<HashMap<Labels, Arc<AtomicU64>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The request count of rule `rule` of `route` for `backend` of `service`:
/// the one an earlier snapshot counted in, if any.
pub fn counter(route: &str, rule: usize, service: &str, backend: &str) -> Arc<AtomicU64> {
    let mut all = REQUESTS.lock().unwrap_or_else(PoisonError::into_inner);
    let key = (
        route.to_owned(),
        rule,
        service.to_owned(),
        backend.to_owned(),
    );
    Arc::clone(all.entry(key).or_default())
}

/// Appends both series for every endpoint of `snapshot`, and forgets the
/// counts of label sets it no longer has.
pub fn render(snapshot: &Compiled, out: &mut String) {
    let mut up = String::new();
    let mut requests = String::new();
    let mut seen: HashSet<Labels> = HashSet::new();
    for rule in &snapshot.rules {
        for e in rule.target.backends().snapshot().endpoints() {
            let t = e.target();
            let labels = format!(
                "route=\"{}\",rule=\"{}\",service=\"{}\",backend=\"{}\"",
                escape(&rule.route),
                rule.index,
                escape(&t.member.service.name),
                escape(&t.member.label)
            );
            let key = (
                rule.route.clone(),
                rule.index,
                t.member.service.name.clone(),
                t.member.label.clone(),
            );
            if !seen.insert(key) {
                continue; // the same label set twice: once
            }
            let serving = u8::from(e.state() != BackendState::Down);
            let _ = writeln!(up, "gateway_backend_up{{{labels}}} {serving}");
            let count = t.requests.load(Ordering::Relaxed);
            let _ = writeln!(
                requests,
                "gateway_backend_requests_total{{{labels}}} {count}"
            );
        }
    }
    REQUESTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|k, _| seen.contains(k));
    out.push_str("# TYPE gateway_backend_requests_total counter\n");
    out.push_str(&requests);
    out.push_str("# TYPE gateway_backend_up gauge\n");
    out.push_str(&up);
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
