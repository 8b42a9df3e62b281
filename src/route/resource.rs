use crate::policy::SessionPersistence;
use serde::{Deserialize, Serialize};

/// An HTTPRoute (`gateway.networking.k8s.io/v1` or `v1beta1`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HttpRoute {
    /// `gateway.networking.k8s.io/v1` or `/v1beta1`.
    #[serde(default)]
    pub api_version: String,
    /// `HTTPRoute`.
    #[serde(default)]
    pub kind: String,
    /// Name and namespace.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The routing rules.
    #[serde(default)]
    pub spec: HttpRouteSpec,
}

/// The part of Kubernetes object metadata a route needs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ObjectMeta {
    /// The route's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The route's namespace (`default` when absent).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `spec` of an HTTPRoute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HttpRouteSpec {
    /// Host names the route serves; empty means any.
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<HttpRouteRule>,
}

/// One rule: which requests, which backends, which persistence.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HttpRouteRule {
    /// Optional rule name.
    #[serde(default)]
    pub name: Option<String>,
    /// Any one of these selects the rule; none means `PathPrefix /`.
    #[serde(default)]
    pub matches: Vec<HttpRouteMatch>,
    /// Where matching requests go.
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
pub struct HttpRouteMatch {
    /// The path condition (`PathPrefix /` when absent).
    #[serde(default)]
    pub path: Option<PathMatch>,
    /// Header conditions.
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions.
    #[serde(default)]
    pub query_params: Vec<QueryParamMatch>,
    /// The method condition.
    #[serde(default)]
    pub method: Option<String>,
}

/// `path`: `Exact`, `PathPrefix` (default) or `RegularExpression`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PathMatch {
    /// The match type.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The path (`/` when absent).
    #[serde(default)]
    pub value: Option<String>,
}

/// A header condition: `Exact` (default) or `RegularExpression`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HeaderMatch {
    /// The match type.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The header name (case-insensitive).
    pub name: String,
    /// The value to match.
    pub value: String,
}

/// A query parameter condition: `Exact` (default) or `RegularExpression`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QueryParamMatch {
    /// The match type.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The parameter name (case-sensitive).
    pub name: String,
    /// The value to match.
    pub value: String,
}

/// A backend Service reference.
///
/// Like every type here that mirrors the Gateway API, it is
/// `#[non_exhaustive]`, so a field the API adds is not a breaking change:
/// build it from `Default` (or deserialize it) and set fields.
///
/// ```
/// let mut backend = tower_sticky::route::BackendRef::default();
/// backend.name = "shop".into();
/// backend.port = Some(8080);
/// assert_eq!(backend.weight(), 1);
/// ```
///
/// A struct literal does not compile outside this crate:
///
/// ```compile_fail
/// let backend = tower_sticky::route::BackendRef {
///     name: "shop".into(),
///     namespace: None,
///     port: Some(8080),
///     weight: None,
///     kind: None,
///     group: None,
/// };
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BackendRef {
    /// The Service name.
    pub name: String,
    /// The Service namespace (the route's when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The Service port.
    #[serde(default)]
    pub port: Option<u16>,
    /// The share of new sessions (default 1; 0 takes none).
    #[serde(default)]
    pub weight: Option<u32>,
    /// The referent kind (`Service` when absent).
    #[serde(default)]
    pub kind: Option<String>,
    /// The referent group (core when absent).
    #[serde(default)]
    pub group: Option<String>,
}

impl BackendRef {
    /// The weight, defaulting to 1.
    #[must_use]
    pub fn weight(&self) -> u32 {
        self.weight.unwrap_or(1)
    }
}

impl ObjectMeta {
    /// The namespace, `default` when absent (as Kubernetes defaults it).
    #[must_use]
    pub fn namespace_or_default(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    /// The name, empty when absent.
    #[must_use]
    pub fn name_or_empty(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }
}

impl HttpRoute {
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
}
