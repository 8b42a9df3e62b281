//! The HTTPRoute and GRPCRoute resources, as users write them for
//! Kubernetes, and the typed rules they validate into.
//!
//! Only what a proxy needs is modelled: hostnames, rules with their names
//! and matches, backend references with weights, and `sessionPersistence`;
//! other fields (`parentRefs`, `filters`, `timeouts`, ...) are accepted and
//! ignored. Deserialize with any serde format (the example gateway reads
//! YAML with `serde-saphyr`, one [`Resource`] per document), then
//! [`HttpRoute::validate`] checks it once and returns a [`Route`]: path
//! matches as [`PathMatcher`]s, header names and methods parsed, regular
//! expressions compiled (an invalid one fails validation), and per
//! [`Rule`] its validated [`SessionPolicy`](crate::policy::SessionPolicy).
//! A proxy's request path then works only with these values; only the
//! precedence between matching rules is left to it. A [`GrpcRoute`]
//! validates into the same [`Route`], its method matches as path matches.
//!
//! ```
//! use tower_sticky::route::{HttpRoute, PathMatcher};
//!
//! let route: HttpRoute = serde_json::from_str(r#"{
//!   "apiVersion": "gateway.networking.k8s.io/v1",
//!   "kind": "HTTPRoute",
//!   "metadata": {"name": "cookie"},
//!   "spec": {"rules": [{
//!     "name": "v2",
//!     "matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
//!     "backendRefs": [{"name": "backend", "port": 3000}],
//!     "sessionPersistence": {"sessionName": "Session-A", "absoluteTimeout": "10s",
//!                            "cookieConfig": {"lifetimeType": "Permanent"}}
//!   }]}
//! }"#).unwrap();
//! let route = route.validate().unwrap();
//! let rule = &route.rules()[0];
//! assert_eq!(rule.name(), Some("v2"));
//! assert!(matches!(rule.matches()[0].path(), PathMatcher::PathPrefix(p) if p == "/v2"));
//! assert!(rule.matches()[0].path().matches("/v2/users"));
//! assert_eq!(rule.session_policy().unwrap().cookie_path(), "/v2");
//! ```

mod backends;
mod document;
#[cfg(feature = "gateway-api")]
mod gateway_api;
mod grpc;
mod resource;
mod rules;
mod validate;

pub use document::Resource;
#[cfg(feature = "gateway-api")]
pub use gateway_api::{GatewayApiError, GrpcRouteSessions};
pub use grpc::{
    GRPC_API_VERSIONS, GrpcMethodMatch, GrpcRoute, GrpcRouteMatch, GrpcRouteRule, GrpcRouteSpec,
};
pub use resource::{
    BackendRef, HeaderMatch, HttpRoute, HttpRouteMatch, HttpRouteRule, HttpRouteSpec, ObjectMeta,
    PathMatch, QueryParamMatch,
};
pub use rules::{Hostname, PathMatcher, Pattern, Route, RouteMatch, Rule, ValueMatcher};
pub use validate::RouteError;

/// The API groups/versions an HTTPRoute may be written in (a GRPCRoute's
/// are [`GRPC_API_VERSIONS`]).
pub const API_VERSIONS: [&str; 2] = [
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1beta1",
];
