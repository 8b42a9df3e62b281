//! What [`HttpRoute::validate`](super::HttpRoute::validate) yields: the
//! route as typed values, every string already parsed and every regular
//! expression compiled, so a proxy's matcher never looks at text again.

use super::BackendRef;
use crate::policy::SessionPolicy;
use http::{HeaderName, Method};
use regex::Regex;
use std::fmt;

/// A validated HTTPRoute.
#[derive(Clone, Debug)]
pub struct Route {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) hostnames: Vec<Hostname>,
    pub(super) rules: Vec<Rule>,
}

impl Route {
    /// `metadata.namespace`, `default` when absent.
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// `metadata.name`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `spec.hostnames`; empty means any host.
    #[must_use]
    pub fn hostnames(&self) -> &[Hostname] {
        &self.hostnames
    }

    /// `spec.rules`, in order.
    #[must_use]
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// One rule of a validated route.
#[derive(Clone, Debug)]
pub struct Rule {
    pub(super) name: Option<String>,
    pub(super) matches: Vec<RouteMatch>,
    pub(super) backend_refs: Vec<BackendRef>,
    pub(super) session_policy: Option<SessionPolicy>,
}

impl Rule {
    /// The rule's `name` (GEP-995), unique within its route.
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The matches, any one of which selects the rule; never empty (a rule
    /// without `matches` gets the spec's default, `PathPrefix /`).
    #[must_use]
    pub fn matches(&self) -> &[RouteMatch] {
        &self.matches
    }

    /// Where matching requests go (each with a `port`, and `kind` Service).
    #[must_use]
    pub fn backend_refs(&self) -> &[BackendRef] {
        &self.backend_refs
    }

    /// The rule's validated `sessionPersistence`, if it has one.
    #[must_use]
    pub fn session_policy(&self) -> Option<&SessionPolicy> {
        self.session_policy.as_ref()
    }
}

/// One `matches[]` entry: a request matches when every condition holds.
#[derive(Clone, Debug)]
pub struct RouteMatch {
    pub(super) path: PathMatcher,
    pub(super) method: Option<Method>,
    pub(super) headers: Vec<(HeaderName, ValueMatcher)>,
    pub(super) query_params: Vec<(String, ValueMatcher)>,
}

impl RouteMatch {
    /// The path condition (`PathPrefix /` when the match gives none).
    #[must_use]
    pub fn path(&self) -> &PathMatcher {
        &self.path
    }

    /// The method condition.
    #[must_use]
    pub fn method(&self) -> Option<&Method> {
        self.method.as_ref()
    }

    /// Header conditions: the first value of the named header is compared.
    #[must_use]
    pub fn headers(&self) -> &[(HeaderName, ValueMatcher)] {
        &self.headers
    }

    /// Query parameter conditions (names are case-sensitive): the first
    /// occurrence of the parameter is compared.
    #[must_use]
    pub fn query_params(&self) -> &[(String, ValueMatcher)] {
        &self.query_params
    }
}

/// A path condition, with the Gateway API's semantics in
/// [`matches`](Self::matches).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PathMatcher {
    /// `Exact`: the whole path.
    Exact(String),
    /// `PathPrefix`, element-wise, kept without a trailing `/` (except `/`
    /// itself): `/v2` matches `/v2` and `/v2/x`, not `/v2x`.
    PathPrefix(String),
    /// `RegularExpression`, matching the whole path.
    RegularExpression(Pattern),
}

impl PathMatcher {
    /// Whether the request path `path` (without query) matches.
    #[must_use]
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatcher::Exact(p) => path == p,
            PathMatcher::PathPrefix(p) if p == "/" => true,
            PathMatcher::PathPrefix(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            PathMatcher::RegularExpression(r) => r.is_match(path),
        }
    }
}

/// A header or query parameter value condition.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ValueMatcher {
    /// `Exact` (the default).
    Exact(String),
    /// `RegularExpression`, matching the whole value.
    RegularExpression(Pattern),
}

impl ValueMatcher {
    /// Whether `value` matches.
    #[must_use]
    pub fn matches(&self, value: &str) -> bool {
        match self {
            ValueMatcher::Exact(e) => e == value,
            ValueMatcher::RegularExpression(r) => r.is_match(value),
        }
    }
}

/// A regular expression from a route, compiled once when the route is
/// validated; it matches whole values (it is anchored at both ends).
#[derive(Clone)]
pub struct Pattern {
    source: String,
    anchored: Regex,
}

impl Pattern {
    /// Compiles `source`; the error is the regex crate's last line of
    /// explanation (`unclosed character class`).
    pub(super) fn new(source: &str) -> Result<Self, String> {
        let anchored = Regex::new(&format!("^(?:{source})$")).map_err(|e| {
            let text = e.to_string();
            let last = text.lines().last().unwrap_or_default();
            let why = last.trim().trim_start_matches("error: ");
            format!("invalid regular expression {source:?}: {why}")
        })?;
        Ok(Pattern {
            source: source.to_owned(),
            anchored,
        })
    }

    /// Whether the whole of `value` matches.
    #[must_use]
    pub fn is_match(&self, value: &str) -> bool {
        self.anchored.is_match(value)
    }

    /// The expression as written in the route.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

/// A `spec.hostnames` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hostname {
    /// `www.example.com`.
    Exact(String),
    /// `*.example.com`, kept as the suffix `.example.com`: it matches
    /// `a.example.com` and `a.b.example.com`, not `example.com`.
    Wildcard(String),
}

impl Hostname {
    /// Whether `host` (lowercase, without port or trailing dot) matches.
    #[must_use]
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Hostname::Exact(h) => h == host,
            Hostname::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(&**suffix),
        }
    }
}
