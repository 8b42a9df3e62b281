//! The gateway's route loading and routing on arbitrary YAML text:
//!
//! * `config::load_str` never panics, and a file it refuses is named at the
//!   start of the message (`<file>: ...`);
//! * every match of a route it accepts compiles into a router entry (the
//!   configuration is validated once, at load: nothing may fail later);
//! * a request built to satisfy a match (its exact path or prefix, method,
//!   headers, query parameters, and exact hostname) is routed to some rule,
//!   the same one every time, and every answer names a rule that exists.
//!
//! Shared by the `route_config` fuzz target and the gateway's corpus replay
//! test. Input layout: the YAML text of one route file.

use http::{Method, Request};
use std::sync::Arc;
use tower_sticky::route::HttpRouteMatch;
use tower_sticky_gateway::config::load_str;
use tower_sticky_gateway::router::{Entry, Hostname, Router};

const FILE: &str = "fuzz-routes.yaml";

/// Checks one fuzz input; panics on any disagreement.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let routes = match load_str(FILE, text) {
        Ok(routes) => routes,
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("{FILE}: ")), "{msg}");
            return;
        }
    };

    // The router the gateway builds (rules::compile, without the backends).
    let mut router = Router::default();
    let mut built: Vec<(HttpRouteMatch, Arc<[String]>)> = Vec::new();
    let mut rules = 0;
    let mut any_hostnames = false;
    for loaded in &routes {
        let names: Arc<[String]> = loaded.route.spec.hostnames.iter().cloned().collect();
        any_hostnames |= !names.is_empty();
        let hostnames: Arc<[Hostname]> = names.iter().map(|h| Hostname::new(h)).collect();
        for (i, rule) in loaded.route.spec.rules.iter().enumerate() {
            let default_match = [HttpRouteMatch::default()];
            let matches = if rule.matches.is_empty() {
                &default_match[..]
            } else {
                &rule.matches[..]
            };
            for (m, matched) in matches.iter().enumerate() {
                let field = format!("{}: spec.rules[{i}].matches[{m}]", loaded.source);
                let entry = Entry::new(rules, Arc::clone(&hostnames), matched, &field)
                    .unwrap_or_else(|e| panic!("validated, yet does not compile: {e}"));
                router.push(entry);
                built.push((matched.clone(), Arc::clone(&names)));
            }
            rules += 1;
        }
    }

    for (matched, names) in &built {
        let Some((req, certain)) = satisfying(matched, names, any_hostnames) else {
            continue;
        };
        let found = router.find(&req);
        if let Some(rule) = found {
            assert!(rule < rules, "rule {rule} of {rules}");
        }
        assert_eq!(router.find(&req), found, "the same request, another rule");
        if certain {
            assert!(
                found.is_some(),
                "{req:?} satisfies {matched:?} but is a 404"
            );
        }
    }
    for uri in ["/", "/a/b?x=1&y", "http://h.example/p", "*"] {
        if let Ok(req) = Request::get(uri).header("host", "h.example").body(())
            && let Some(rule) = router.find(&req)
        {
            assert!(rule < rules);
        }
    }
}

/// A request meeting every condition of `m`, and whether the router must
/// route it (no regular expression, no conflicting conditions, a hostname
/// no other route can rank above).
fn satisfying(
    m: &HttpRouteMatch,
    hostnames: &[String],
    any_hostnames: bool,
) -> Option<(Request<()>, bool)> {
    let mut certain = true;
    let path = match &m.path {
        None => "/".to_owned(),
        Some(p) => {
            if p.kind.as_deref() == Some("RegularExpression") {
                certain = false;
                "/".to_owned()
            } else {
                p.value.clone().unwrap_or_else(|| "/".to_owned())
            }
        }
    };
    if !path.starts_with('/') || path.contains(['?', '#']) {
        return None;
    }
    let mut query = String::new();
    for q in &m.query_params {
        if q.kind.as_deref() == Some("RegularExpression")
            || m.query_params.iter().filter(|o| o.name == q.name).count() > 1
        {
            certain = false;
        }
        if q.name.contains(['&', '=', '#']) || q.value.contains(['&', '#']) {
            return None;
        }
        query.push(if query.is_empty() { '?' } else { '&' });
        query.push_str(&q.name);
        query.push('=');
        query.push_str(&q.value);
    }
    let host = match hostnames.iter().find(|h| !h.starts_with('*')) {
        Some(exact) => exact.clone(),
        None if hostnames.is_empty() && !any_hostnames => "h.example".to_owned(),
        None => {
            // A wildcard, or no hostnames beside routes with some: another
            // route may rank higher for any host picked here.
            certain = false;
            hostnames
                .first()
                .map_or("h.example".to_owned(), |w| format!("a{}", &w[1..]))
        }
    };
    let mut req = Request::builder()
        .uri(format!("{path}{query}"))
        .header("host", host.as_str());
    if let Some(method) = &m.method {
        req = req.method(Method::from_bytes(method.as_bytes()).ok()?);
    }
    for h in &m.headers {
        let same_name = m
            .headers
            .iter()
            .filter(|o| o.name.eq_ignore_ascii_case(&h.name))
            .count();
        if h.kind.as_deref() == Some("RegularExpression")
            || same_name > 1
            || h.name.eq_ignore_ascii_case("host")
        {
            certain = false;
        }
        req = req.header(h.name.as_str(), h.value.as_str());
    }
    let req = req.body(()).ok()?;
    // The builder may have normalised what it was given.
    if req.uri().path() != path {
        return None;
    }
    Some((req, certain))
}
