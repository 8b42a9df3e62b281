//! The HTTPRoute resource, as users write it for Kubernetes.
//!
//! Only what a proxy needs is modelled: hostnames, rules with their matches,
//! backend references with weights, and `sessionPersistence`; other fields
//! (`parentRefs`, `filters`, `timeouts`, ...) are accepted and ignored.
//! Deserialize with any serde format (the example gateway uses
//! `serde-saphyr` for YAML), then [`HttpRoute::validate`] checks it and
//! yields each rule's [`SessionPolicy`](crate::policy::SessionPolicy).
//!
//! ```
//! use tower_sticky::route::HttpRoute;
//!
//! let route: HttpRoute = serde_json::from_str(r#"{
//!   "apiVersion": "gateway.networking.k8s.io/v1",
//!   "kind": "HTTPRoute",
//!   "metadata": {"name": "cookie"},
//!   "spec": {"rules": [{
//!     "matches": [{"path": {"type": "PathPrefix", "value": "/v2"}}],
//!     "backendRefs": [{"name": "backend", "port": 3000}],
//!     "sessionPersistence": {"sessionName": "Session-A", "absoluteTimeout": "10s",
//!                            "cookieConfig": {"lifetimeType": "Permanent"}}
//!   }]}
//! }"#).unwrap();
//! let policies = route.validate().unwrap();
//! let policy = policies[0].as_ref().unwrap();
//! assert_eq!(policy.cookie_path(), "/v2");
//! ```

mod resource;
mod validate;

pub use resource::{
    BackendRef, HeaderMatch, HttpRoute, HttpRouteMatch, HttpRouteRule, HttpRouteSpec, ObjectMeta,
    PathMatch, QueryParamMatch,
};
pub use validate::RouteError;

/// The API groups/versions an HTTPRoute may be written in.
pub const API_VERSIONS: [&str; 2] = [
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1beta1",
];
