//! The GRPCRoute resource: gRPC methods instead of paths, the same
//! hostnames, header matches, backend references and `sessionPersistence`.
//!
//! A gRPC call is an HTTP/2 `POST` to `/{service}/{method}`, so a method
//! match is a path match in disguise. [`GrpcRoute::validate`] checks the
//! gRPC fields where they are written (`spec.rules[0].matches[0].method.service`)
//! and then types the route as the [`Route`] an HTTPRoute yields, with each
//! method match turned into the path match Envoy Gateway programs for it:
//!
//! | `method` | path match |
//! |---|---|
//! | none | `PathPrefix /` |
//! | `Exact`, service and method | `Exact /{service}/{method}` |
//! | `Exact`, service only | `PathPrefix /{service}` |
//! | `Exact`, method only | `RegularExpression /[^/]+/{method}` |
//! | `RegularExpression` | `RegularExpression /{service}/{method}`, `[^/]+` for the one left out |
//!
//! A proxy therefore needs one matcher for both kinds of route, and the
//! cookie `Path` of a rule follows from that path match as it does for an
//! HTTPRoute (`/{service}/{method}` or `/{service}`).

use super::validate::{self as checks, RouteError};
use super::{
    BackendRef, HeaderMatch, HttpRoute, HttpRouteMatch, HttpRouteRule, HttpRouteSpec, ObjectMeta,
    PathMatch, Route,
};
use crate::policy::{PolicyError, SessionPersistence};
use serde::{Deserialize, Serialize};

/// The API groups/versions a GRPCRoute may be written in.
pub const GRPC_API_VERSIONS: [&str; 2] = [
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1alpha2",
];

/// A GRPCRoute (`gateway.networking.k8s.io/v1` or `v1alpha2`).
///
/// ```
/// use tower_sticky::route::{GrpcRoute, PathMatcher};
///
/// let route: GrpcRoute = serde_json::from_str(r#"{
///   "apiVersion": "gateway.networking.k8s.io/v1",
///   "kind": "GRPCRoute",
///   "metadata": {"name": "chat"},
///   "spec": {"rules": [{
///     "matches": [{"method": {"service": "chat.v1.Chat", "method": "Join"}}],
///     "backendRefs": [{"name": "chat", "port": 50051}],
///     "sessionPersistence": {"sessionName": "chat-session", "type": "Header"}
///   }]}
/// }"#).unwrap();
/// let route = route.validate().unwrap();
/// let path = route.rules()[0].matches()[0].path();
/// assert!(matches!(path, PathMatcher::Exact(p) if p == "/chat.v1.Chat/Join"));
/// assert!(path.matches("/chat.v1.Chat/Join"));
/// assert!(!path.matches("/chat.v1.Chat/Leave"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GrpcRoute {
    /// `gateway.networking.k8s.io/v1` or `/v1alpha2`.
    #[serde(default)]
    pub api_version: String,
    /// `GRPCRoute`.
    #[serde(default)]
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The routing rules.
    #[serde(default)]
    pub spec: GrpcRouteSpec,
}

/// `spec` of a GRPCRoute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GrpcRouteSpec {
    /// Host names the route serves; empty means any.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<GrpcRouteRule>,
}

/// One rule: which calls, which backends, which persistence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GrpcRouteRule {
    /// Optional rule name.
    #[serde(default)]
    pub name: Option<String>,
    /// Any one of these selects the rule; none means every call.
    #[serde(default)]
    pub matches: Vec<GrpcRouteMatch>,
    /// Where matching calls go.
    #[serde(default)]
    pub backend_refs: Vec<BackendRef>,
    /// Session persistence for this rule.
    #[serde(default)]
    pub session_persistence: Option<SessionPersistence>,
}

/// One match: all of its conditions must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GrpcRouteMatch {
    /// The method condition (every method when absent).
    #[serde(default)]
    pub method: Option<GrpcMethodMatch>,
    /// Header (gRPC metadata) conditions.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
}

/// `method`: `Exact` (default) or `RegularExpression` on the service and
/// the method; at least one of the two must be given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct GrpcMethodMatch {
    /// The match type.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The fully qualified service, e.g. `chat.v1.Chat`.
    #[serde(default)]
    pub service: Option<String>,
    /// The method, e.g. `Join`.
    #[serde(default)]
    pub method: Option<String>,
}

impl GrpcRoute {
    /// The route's namespace, `default` when absent.
    #[must_use]
    pub fn namespace(&self) -> &str {
        self.metadata.namespace_or_default()
    }

    /// The route's name, empty when absent.
    #[must_use]
    pub fn name(&self) -> &str {
        self.metadata.name_or_empty()
    }

    /// Checks the route against the Gateway API's rules and returns it
    /// typed, each method match as the path match Envoy Gateway programs
    /// for it (a gRPC call is a `POST` to `/{service}/{method}`):
    ///
    /// | `method` | path match |
    /// |---|---|
    /// | none | `PathPrefix /` |
    /// | `Exact`, service and method | `Exact /{service}/{method}` |
    /// | `Exact`, service only | `PathPrefix /{service}` |
    /// | `Exact`, method only | `RegularExpression /[^/]+/{method}` |
    /// | `RegularExpression` | `RegularExpression /{service}/{method}`, `[^/]+` for the one left out |
    ///
    /// A rule's default cookie or header name is
    /// `grpcroute-{namespace}-{name}-rule-{rule name or index}`.
    pub fn validate(&self) -> Result<Route, RouteError> {
        super::validate::type_meta(
            &self.api_version,
            &GRPC_API_VERSIONS,
            &self.kind,
            "GRPCRoute",
        )?;
        let mut rules = Vec::with_capacity(self.spec.rules.len());
        for (i, rule) in self.spec.rules.iter().enumerate() {
            let mut matches = Vec::with_capacity(rule.matches.len());
            for (m, matched) in rule.matches.iter().enumerate() {
                let at = format!("spec.rules[{i}].matches[{m}].method");
                let path = match &matched.method {
                    None => None,
                    Some(method) => Some(path_match(method, &at)?),
                };
                matches.push(HttpRouteMatch {
                    path,
                    headers: matched.headers.clone(),
                    query_params: Vec::new(),
                    method: None,
                });
            }
            rules.push(HttpRouteRule {
                name: rule.name.clone(),
                matches,
                backend_refs: rule.backend_refs.clone(),
                session_persistence: rule.session_persistence.clone(),
            });
        }
        // Every other field has the same name and rules in both kinds, so
        // the HTTPRoute checks report them at the GRPCRoute's own paths.
        let as_http = HttpRoute {
            api_version: super::API_VERSIONS[0].to_owned(),
            kind: "HTTPRoute".to_owned(),
            metadata: self.metadata.clone(),
            spec: HttpRouteSpec {
                hostnames: self.spec.hostnames.clone(),
                rules,
            },
        };
        as_http.typed("grpcroute")
    }
}

/// The path match a gRPC `method` match at `at` stands for.
fn path_match(method: &GrpcMethodMatch, at: &str) -> Result<PathMatch, RouteError> {
    // A leading dot marks a fully qualified protobuf name; the gRPC path
    // never carries it.
    let service = method
        .service
        .as_deref()
        .map(|s| s.strip_prefix('.').unwrap_or(s));
    let name = method.method.as_deref();
    for (field, value) in [("service", service), ("method", name)] {
        if let Some(v) = value
            && v.len() > 1024
        {
            return Err(PolicyError::out_of_range(
                format!("{at}.{field}"),
                "must be at most 1024 characters",
            ));
        }
    }
    let (kind, value) = match method.kind.as_deref() {
        None | Some("Exact") => {
            if let Some(s) = service
                && !is_service_name(s)
            {
                return Err(PolicyError::invalid(
                    format!("{at}.service"),
                    format!("must be a fully qualified protobuf service name, got {s:?}"),
                ));
            }
            if let Some(m) = name
                && !is_method_name(m)
            {
                return Err(PolicyError::invalid(
                    format!("{at}.method"),
                    format!("must be a protobuf method name, got {m:?}"),
                ));
            }
            match (service, name) {
                (Some(s), Some(m)) => ("Exact", format!("/{s}/{m}")),
                (Some(s), None) => ("PathPrefix", format!("/{s}")),
                // A method name is [A-Za-z_0-9]: nothing to escape.
                (None, Some(m)) => ("RegularExpression", format!("/[^/]+/{m}")),
                (None, None) => return Err(neither(at)),
            }
        }
        Some("RegularExpression") => {
            if service.is_none() && name.is_none() {
                return Err(neither(at));
            }
            for (field, value) in [("service", service), ("method", name)] {
                if let Some(v) = value {
                    checks::pattern(v, &format!("{at}.{field}"))?;
                }
            }
            let part =
                |p: Option<&str>| p.map_or_else(|| "[^/]+".to_owned(), |p| format!("(?:{p})"));
            (
                "RegularExpression",
                format!("/{}/{}", part(service), part(name)),
            )
        }
        Some(other) => {
            return Err(PolicyError::invalid(
                format!("{at}.type"),
                format!("must be Exact or RegularExpression, got {other:?}"),
            ));
        }
    };
    Ok(PathMatch {
        kind: Some(kind.to_owned()),
        value: Some(value),
    })
}

fn neither(at: &str) -> RouteError {
    PolicyError::missing(at, "must give service, method or both")
}

/// The Gateway API's rule for an `Exact` service (the leading dot already
/// stripped):
/// `^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$`.
fn is_service_name(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(is_identifier)
}

/// The Gateway API's rule for an `Exact` method: `^[A-Za-z_][A-Za-z_0-9]*$`.
fn is_method_name(m: &str) -> bool {
    is_identifier(m)
}

fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
