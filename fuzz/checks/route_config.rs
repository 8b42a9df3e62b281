//! The gateway's route loading and routing on arbitrary YAML text:
//!
//! * `config::load_str` never panics, and a file it refuses is named at the
//!   start of the message (`<file>: ...`);
//! * every rule of a route it accepts has at least one match (a rule
//!   without `matches` gets the default `PathPrefix /`);
//! * a request built to satisfy a match (its exact path or prefix, method,
//!   headers, query parameters, and exact hostname) is routed to some rule,
//!   the same one every time, and every answer names a rule that exists.
//!
//! Shared by the `route_config` fuzz target and the gateway's corpus replay
//! test. Input layout: the YAML text of one route file. GRPCRoute
//! documents are in the corpus too: their entries match gRPC calls only,
//! so the request built for one of them carries `content-type:
//! application/grpc`.

use http::{Method, Request};
use std::sync::Arc;
use tower_sticky::route::{Hostname, PathMatcher, RouteMatch, ValueMatcher};
use tower_sticky_gateway::config::grpc_route::RouteKind;
use tower_sticky_gateway::config::load_str;
use tower_sticky_gateway::route::{Entry, Router};

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
    let mut built: Vec<(RouteMatch, Arc<[Hostname]>, bool)> = Vec::new();
    let mut rules = 0;
    let mut any_hostnames = false;
    for loaded in &routes {
        let hostnames: Arc<[Hostname]> = loaded.route.hostnames().into();
        any_hostnames |= !hostnames.is_empty();
        let grpc = loaded.kind == RouteKind::Grpc;
        for rule in loaded.route.rules() {
            assert!(!rule.matches().is_empty(), "a rule without any match");
            for matched in rule.matches() {
                let entry = Entry::new(rules, Arc::clone(&hostnames), matched.clone());
                router.push(if grpc { entry.grpc() } else { entry });
                built.push((matched.clone(), Arc::clone(&hostnames), grpc));
            }
            rules += 1;
        }
    }

    for (matched, hostnames, grpc) in &built {
        let Some((req, certain)) = satisfying(matched, hostnames, any_hostnames, *grpc) else {
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

/// A value meeting `v`, and whether it surely does (not for a regular
/// expression).
fn value_for(v: &ValueMatcher) -> (String, bool) {
    match v {
        ValueMatcher::Exact(e) => (e.clone(), true),
        _ => ("x".to_owned(), false),
    }
}

/// A request meeting every condition of `m` (a gRPC call for a
/// GRPCRoute's, `grpc`), and whether the router must route it (no regular
/// expression, no conflicting conditions, a hostname no other route can
/// rank above).
fn satisfying(
    m: &RouteMatch,
    hostnames: &[Hostname],
    any_hostnames: bool,
    grpc: bool,
) -> Option<(Request<()>, bool)> {
    let mut certain = true;
    let path = match m.path() {
        PathMatcher::Exact(p) | PathMatcher::PathPrefix(p) => p.clone(),
        _ => {
            certain = false;
            "/".to_owned()
        }
    };
    if !path.starts_with('/') || path.contains(['?', '#']) {
        return None;
    }
    let mut query = String::new();
    for (name, v) in m.query_params() {
        let (value, sure) = value_for(v);
        if !sure || m.query_params().iter().filter(|(o, _)| o == name).count() > 1 {
            certain = false;
        }
        if name.contains(['&', '=', '#']) || value.contains(['&', '#']) {
            return None;
        }
        query.push(if query.is_empty() { '?' } else { '&' });
        query.push_str(name);
        query.push('=');
        query.push_str(&value);
    }
    let exact = hostnames.iter().find_map(|h| match h {
        Hostname::Exact(e) => Some(e.clone()),
        _ => None,
    });
    let host = match exact {
        Some(exact) => exact,
        None if hostnames.is_empty() && !any_hostnames => "h.example".to_owned(),
        None => {
            // A wildcard, or no hostnames beside routes with some: another
            // route may rank higher for any host picked here.
            certain = false;
            match hostnames.first() {
                Some(Hostname::Wildcard(suffix)) => format!("a{suffix}"),
                _ => "h.example".to_owned(),
            }
        }
    };
    let mut req = Request::builder()
        .uri(format!("{path}{query}"))
        .header("host", host.as_str());
    if let Some(method) = m.method() {
        req = req.method(Method::clone(method));
    }
    if grpc {
        req = req.header("content-type", "application/grpc");
    }
    for (name, v) in m.headers() {
        let (value, sure) = value_for(v);
        let clash = name == "host" || (grpc && name == "content-type");
        if !sure || m.headers().iter().filter(|(o, _)| o == name).count() > 1 || clash {
            certain = false;
        }
        req = req.header(name, value.as_str());
    }
    let req = req.body(()).ok()?;
    // The builder may have normalised what it was given.
    if req.uri().path() != path {
        return None;
    }
    Some((req, certain))
}
