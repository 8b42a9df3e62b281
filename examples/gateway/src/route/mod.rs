//! Step 2 of a request: **route**. Which rule serves it, by Gateway API
//! precedence.
//!
//! Every `matches[]` entry of every rule of every route becomes one
//! [`Entry`]. First the hostname picks the routes, like an Envoy virtual
//! host: an exact `spec.hostnames` match beats a wildcard (a longer wildcard
//! beats a shorter one), which beats routes without hostnames. Among their
//! entries, the request goes to the matching one that ranks highest by, in
//! order (the HTTPRoute spec's "continuing on ties"):
//!
//! 1. (hostname, above);
//! 2. path: `Exact`, then `PathPrefix` with the most characters, then
//!    `RegularExpression`;
//! 3. a method match;
//! 4. the most header matches;
//! 5. the most query parameter matches;
//! 6. the oldest `metadata.creationTimestamp`, then `{namespace}/{name}`
//!    alphabetically (the routes arrive in that order,
//!    [`crate::config::order`]), then rule order, then match order.
//!
//! A GRPCRoute rule matches only gRPC calls, ranks by its own spec's
//! order and beats HTTPRoute rules for them ([`grpc`]).
//!
//! The matches arrive typed from [`tower_sticky::route`] (paths, header
//! names, methods and regular expressions were parsed and compiled once, when
//! the route was validated): only this precedence is the gateway's own.

pub mod grpc;

use http::{HeaderMap, HeaderName, Request};
use std::cmp::Ordering;
use std::sync::Arc;
use tower_sticky::route::{Hostname, PathMatcher, RouteMatch, ValueMatcher};

/// How specifically `hostname` matches `host` (lowercase, no port): exact
/// beats wildcard, a longer wildcard beats a shorter one; `None` if it does
/// not match.
fn hostname_rank(hostname: &Hostname, host: &str) -> Option<(u8, usize)> {
    if !hostname.matches(host) {
        return None;
    }
    Some(match hostname {
        Hostname::Exact(h) => (2, h.len()),
        Hostname::Wildcard(suffix) => (1, suffix.len()),
        _ => (0, 0),
    })
}

/// Path precedence: kind, then length for prefixes.
fn path_rank(path: &PathMatcher) -> (u8, usize, usize) {
    match path {
        PathMatcher::Exact(p) => (3, p.len(), 0),
        PathMatcher::PathPrefix(p) => (2, p.len(), 0),
        _ => (1, 0, 0),
    }
}

/// One `matches[]` entry of a validated rule, pointing at its rule.
#[derive(Debug)]
pub struct Entry {
    /// Index of the rule (in the gateway's rule list) it selects.
    pub rule: usize,
    hostnames: Arc<[Hostname]>,
    matched: RouteMatch,
    /// From a GRPCRoute: matches gRPC calls only.
    grpc: bool,
}

impl Entry {
    /// The match `matched` of rule `rule`, for a route serving `hostnames`.
    pub fn new(rule: usize, hostnames: Arc<[Hostname]>, matched: RouteMatch) -> Self {
        Entry {
            rule,
            hostnames,
            matched,
            grpc: false,
        }
    }

    /// The entry as a GRPCRoute's: for gRPC calls only, ranked by the
    /// GRPCRoute spec ([`grpc`]).
    #[must_use]
    pub fn grpc(mut self) -> Self {
        self.grpc = true;
        self
    }

    /// How specifically the entry's hostnames match `host`: `(0, 0)` for a
    /// route without hostnames; `None` if they do not match.
    fn host_rank(&self, host: &str) -> Option<(u8, usize)> {
        if self.hostnames.is_empty() {
            Some((0, 0))
        } else {
            self.hostnames
                .iter()
                .filter_map(|h| hostname_rank(h, host))
                .max()
        }
    }

    /// How well the rest of this entry matches `req` (a gRPC call when
    /// `grpc_call`); `None` if it does not.
    fn rank<B>(&self, req: &Request<B>, grpc_call: bool) -> Option<Rank> {
        let m = &self.matched;
        if self.grpc && !grpc_call {
            return None;
        }
        if !m.path().matches(req.uri().path()) {
            return None;
        }
        if m.method().is_some_and(|method| method != req.method()) {
            return None;
        }
        if !m
            .headers()
            .iter()
            .all(|(n, v)| header_matches(req.headers(), n, v))
        {
            return None;
        }
        if !m.query_params().is_empty() {
            let q = req.uri().query().unwrap_or("");
            if !m.query_params().iter().all(|(n, v)| query_matches(q, n, v)) {
                return None;
            }
        }
        if self.grpc {
            let (service, method) = grpc::service_method_chars(m.path());
            return Some(Rank {
                grpc: true,
                path: (0, service, method),
                method: false,
                headers: m.headers().len(),
                query: 0,
            });
        }
        Some(Rank {
            grpc: false,
            path: path_rank(m.path()),
            method: m.method().is_some(),
            headers: m.headers().len(),
            query: m.query_params().len(),
        })
    }
}

/// Precedence of a matching entry; larger wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    /// A GRPCRoute's entry (only gRPC calls get one).
    grpc: bool,
    /// HTTPRoute: path kind and length; GRPCRoute: service and method
    /// characters.
    path: (u8, usize, usize),
    method: bool,
    headers: usize,
    query: usize,
}

/// The first value of a header is the one compared (as the Gateway API
/// suggests for repeated headers).
fn header_matches(headers: &HeaderMap, name: &HeaderName, v: &ValueMatcher) -> bool {
    headers
        .get(name)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|s| v.matches(s))
}

/// The first occurrence of a parameter is the one compared.
fn query_matches(query: &str, name: &str, v: &ValueMatcher) -> bool {
    query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .find(|(k, _)| *k == name)
        .is_some_and(|(_, value)| v.matches(value))
}

/// Every entry, in precedence order of their routes.
#[derive(Debug, Default)]
pub struct Router {
    entries: Vec<Entry>,
    /// Whether any route names hostnames (else the host is never looked at).
    any_hostnames: bool,
    /// Whether any entry is a GRPCRoute's (else the content type is never
    /// looked at).
    any_grpc: bool,
}

impl Router {
    /// Adds an entry; earlier entries win ties.
    pub fn push(&mut self, entry: Entry) {
        self.any_hostnames |= !entry.hostnames.is_empty();
        self.any_grpc |= entry.grpc;
        self.entries.push(entry);
    }

    /// The rule serving `req`, if any.
    ///
    /// As in Envoy's virtual hosts, the most specific hostname that matches
    /// the request selects the routes first; only their rules compete on
    /// path and the rest. A request for `api.example.com` that no rule of
    /// the `api.example.com` route matches is a 404, even if a route without
    /// hostnames would have matched it.
    pub fn find<B>(&self, req: &Request<B>) -> Option<usize> {
        let host_rank = if self.any_hostnames {
            let host = request_host(req);
            let best = self
                .entries
                .iter()
                .filter_map(|e| e.host_rank(&host))
                .max()?;
            Some((host, best))
        } else {
            None
        };
        let grpc_call = self.any_grpc && grpc::is_grpc(req);
        let mut best: Option<(Rank, usize)> = None;
        for e in &self.entries {
            if let Some((host, rank)) = &host_rank
                && e.host_rank(host) != Some(*rank)
            {
                continue;
            }
            if let Some(rank) = e.rank(req, grpc_call) {
                // Strictly greater: on a tie the earlier entry stays.
                if best.is_none_or(|(b, _)| rank.cmp(&b) == Ordering::Greater) {
                    best = Some((rank, e.rule));
                }
            }
        }
        best.map(|(_, rule)| rule)
    }
}

/// The request's host, lowercase, without port: `Host`, else the URI's
/// authority (HTTP/2).
pub fn request_host<B>(req: &Request<B>) -> String {
    let raw = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let no_port = match raw.rsplit_once(':') {
        // `[::1]:80` and `host:80`, but not a bare IPv6 literal.
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => raw,
    };
    no_port.trim_end_matches('.').to_ascii_lowercase()
}
