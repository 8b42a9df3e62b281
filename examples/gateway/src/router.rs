//! Which rule serves a request, by Gateway API precedence.
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
//! 6. the order routes were loaded in (files, then documents), then rule
//!    order, then match order.

use http::{HeaderMap, Method, Request};
use regex::Regex;
use std::cmp::Ordering;
use tower_sticky::route::{HeaderMatch, HttpRouteMatch, PathMatch, QueryParamMatch};

/// A hostname a route serves.
#[derive(Clone, Debug)]
pub enum Hostname {
    /// `www.example.com`.
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Wildcard(String),
}

impl Hostname {
    /// Parses a `spec.hostnames` entry (already validated as a DNS name).
    pub fn new(h: &str) -> Self {
        match h.strip_prefix('*') {
            Some(suffix) => Hostname::Wildcard(suffix.to_ascii_lowercase()),
            None => Hostname::Exact(h.to_ascii_lowercase()),
        }
    }

    /// How specifically this matches `host` (lowercase, no port); `None` if
    /// it does not.
    fn rank(&self, host: &str) -> Option<(u8, usize)> {
        match self {
            Hostname::Exact(h) => (h == host).then_some((2, h.len())),
            Hostname::Wildcard(suffix) => (host.len() > suffix.len()
                && host.ends_with(suffix.as_str()))
            .then_some((1, suffix.len())),
        }
    }
}

/// A compiled path condition.
#[derive(Debug)]
enum PathMatcher {
    Exact(String),
    /// Without a trailing `/` (except for `/` itself).
    Prefix(String),
    Regex(Regex),
}

impl PathMatcher {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Exact(p) => path == p,
            PathMatcher::Prefix(p) if p == "/" => true,
            // Element-wise: `/v2` matches `/v2` and `/v2/x`, not `/v2x`.
            PathMatcher::Prefix(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            PathMatcher::Regex(r) => r.is_match(path),
        }
    }

    /// Path precedence: kind, then length for prefixes.
    fn rank(&self) -> (u8, usize) {
        match self {
            PathMatcher::Exact(p) => (3, p.len()),
            PathMatcher::Prefix(p) => (2, p.len()),
            PathMatcher::Regex(_) => (1, 0),
        }
    }
}

/// A value condition on a header or query parameter.
#[derive(Debug)]
enum ValueMatcher {
    Exact(String),
    Regex(Regex),
}

impl ValueMatcher {
    fn new(kind: Option<&str>, value: &str, field: &str) -> Result<Self, String> {
        match kind {
            Some("RegularExpression") => anchored(value)
                .map(ValueMatcher::Regex)
                .map_err(|e| format!("{field}: invalid regular expression: {e}")),
            _ => Ok(ValueMatcher::Exact(value.to_owned())),
        }
    }

    fn matches(&self, v: &str) -> bool {
        match self {
            ValueMatcher::Exact(e) => e == v,
            ValueMatcher::Regex(r) => r.is_match(v),
        }
    }
}

/// Regular expressions match the whole value.
fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

/// One `matches[]` entry, compiled, pointing at its rule.
#[derive(Debug)]
pub struct Entry {
    /// Index of the rule (in the gateway's rule list) it selects.
    pub rule: usize,
    hostnames: std::sync::Arc<[Hostname]>,
    path: PathMatcher,
    headers: Vec<(http::HeaderName, ValueMatcher)>,
    query: Vec<(String, ValueMatcher)>,
    method: Option<Method>,
}

impl Entry {
    /// Compiles one match of rule `rule`; `field` names it in errors.
    pub fn new(
        rule: usize,
        hostnames: std::sync::Arc<[Hostname]>,
        m: &HttpRouteMatch,
        field: &str,
    ) -> Result<Self, String> {
        Ok(Entry {
            rule,
            hostnames,
            path: path_matcher(m.path.as_ref(), field)?,
            headers: m
                .headers
                .iter()
                .enumerate()
                .map(|(i, h)| header_matcher(h, &format!("{field}.headers[{i}]")))
                .collect::<Result<_, _>>()?,
            query: m
                .query_params
                .iter()
                .enumerate()
                .map(|(i, q)| query_matcher(q, &format!("{field}.queryParams[{i}]")))
                .collect::<Result<_, _>>()?,
            method: m
                .method
                .as_deref()
                .map(|s| Method::from_bytes(s.as_bytes()))
                .transpose()
                .map_err(|e| format!("{field}.method: {e}"))?,
        })
    }

    /// How specifically the entry's hostnames match `host`: `(0, 0)` for a
    /// route without hostnames; `None` if they do not match.
    fn host_rank(&self, host: &str) -> Option<(u8, usize)> {
        if self.hostnames.is_empty() {
            Some((0, 0))
        } else {
            self.hostnames.iter().filter_map(|h| h.rank(host)).max()
        }
    }

    /// How well the rest of this entry matches; `None` if it does not.
    fn rank<B>(&self, req: &Request<B>) -> Option<Rank> {
        if !self.path.matches(req.uri().path()) {
            return None;
        }
        if self.method.as_ref().is_some_and(|m| m != req.method()) {
            return None;
        }
        if !self
            .headers
            .iter()
            .all(|(n, v)| header_matches(req.headers(), n, v))
        {
            return None;
        }
        if !self.query.is_empty() {
            let q = req.uri().query().unwrap_or("");
            if !self.query.iter().all(|(n, v)| query_matches(q, n, v)) {
                return None;
            }
        }
        Some(Rank {
            path: self.path.rank(),
            method: self.method.is_some(),
            headers: self.headers.len(),
            query: self.query.len(),
        })
    }
}

/// Precedence of a matching entry; larger wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    path: (u8, usize),
    method: bool,
    headers: usize,
    query: usize,
}

fn path_matcher(p: Option<&PathMatch>, field: &str) -> Result<PathMatcher, String> {
    let kind = p.and_then(|p| p.kind.as_deref());
    let value = p.and_then(|p| p.value.as_deref()).unwrap_or("/");
    Ok(match kind {
        Some("Exact") => PathMatcher::Exact(value.to_owned()),
        Some("RegularExpression") => PathMatcher::Regex(
            anchored(value)
                .map_err(|e| format!("{field}.path.value: invalid regular expression: {e}"))?,
        ),
        _ => {
            let trimmed = value.trim_end_matches('/');
            PathMatcher::Prefix(if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.into()
            })
        }
    })
}

fn header_matcher(
    h: &HeaderMatch,
    field: &str,
) -> Result<(http::HeaderName, ValueMatcher), String> {
    let name = http::HeaderName::from_bytes(h.name.as_bytes())
        .map_err(|e| format!("{field}.name: {e}"))?;
    Ok((
        name,
        ValueMatcher::new(h.kind.as_deref(), &h.value, &format!("{field}.value"))?,
    ))
}

fn query_matcher(q: &QueryParamMatch, field: &str) -> Result<(String, ValueMatcher), String> {
    Ok((
        q.name.clone(),
        ValueMatcher::new(q.kind.as_deref(), &q.value, &format!("{field}.value"))?,
    ))
}

/// The first value of a header is the one compared (as the Gateway API
/// suggests for repeated headers).
fn header_matches(headers: &HeaderMap, name: &http::HeaderName, v: &ValueMatcher) -> bool {
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

/// Every entry, in load order.
#[derive(Debug, Default)]
pub struct Router {
    entries: Vec<Entry>,
    /// Whether any route names hostnames (else the host is never looked at).
    any_hostnames: bool,
}

impl Router {
    /// Adds an entry; earlier entries win ties.
    pub fn push(&mut self, entry: Entry) {
        self.any_hostnames |= !entry.hostnames.is_empty();
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
        let mut best: Option<(Rank, usize)> = None;
        for e in &self.entries {
            if let Some((host, rank)) = &host_rank
                && e.host_rank(host) != Some(*rank)
            {
                continue;
            }
            if let Some(rank) = e.rank(req) {
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
