use super::{GrpcRoute, GrpcRouteSpec, HttpRoute, HttpRouteSpec, ObjectMeta};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::fmt;

/// One document of a Kubernetes manifest, read in a single pass: an
/// HTTPRoute, a GRPCRoute, or something else a route loader skips.
///
/// A manifest stream often holds Services, ConfigMaps and routes together.
/// This type reads each document once: `kind` decides whether `spec` is read
/// as an HTTPRoute's, a GRPCRoute's, or skipped, so a Service's `spec` never
/// fails as a malformed route. `kind` must come before `spec` for that (as
/// `kubectl` writes it); a document giving `spec` first has it read as an
/// HTTPRoute's.
///
/// ```
/// use tower_sticky::route::Resource;
///
/// let doc: Resource = serde_json::from_str(
///     r#"{"kind": "Service", "spec": {"ports": [{"port": 80}]}}"#,
/// ).unwrap();
/// assert_eq!(doc.kind(), Some("Service"));
/// assert!(doc.http_route().is_none());
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Resource {
    /// `kind: HTTPRoute`.
    HttpRoute(HttpRoute),
    /// `kind: GRPCRoute`.
    GrpcRoute(GrpcRoute),
    /// Any other kind, or none.
    Other {
        /// The document's `kind`, if it has one.
        kind: Option<String>,
    },
}

impl Resource {
    /// The document's `kind`.
    #[must_use]
    pub fn kind(&self) -> Option<&str> {
        match self {
            Resource::HttpRoute(_) => Some("HTTPRoute"),
            Resource::GrpcRoute(_) => Some("GRPCRoute"),
            Resource::Other { kind } => kind.as_deref(),
        }
    }

    /// The HTTPRoute, if the document is one.
    #[must_use]
    pub fn http_route(&self) -> Option<&HttpRoute> {
        match self {
            Resource::HttpRoute(r) => Some(r),
            _ => None,
        }
    }

    /// The GRPCRoute, if the document is one.
    #[must_use]
    pub fn grpc_route(&self) -> Option<&GrpcRoute> {
        match self {
            Resource::GrpcRoute(r) => Some(r),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Resource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ResourceVisitor)
    }
}

struct ResourceVisitor;

impl<'de> Visitor<'de> for ResourceVisitor {
    type Value = Resource;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes resource (a mapping with `kind`)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Resource, A::Error> {
        let mut api_version = None;
        let mut kind: Option<String> = None;
        let mut metadata = None;
        let mut spec = None;
        let mut grpc_spec = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "apiVersion" => api_version = Some(map.next_value()?),
                "kind" => kind = Some(map.next_value()?),
                "metadata" => metadata = Some(map.next_value::<ObjectMeta>()?),
                "spec" if kind.as_deref().is_none_or(|k| k == "HTTPRoute") => {
                    spec = Some(map.next_value::<HttpRouteSpec>()?);
                }
                "spec" if kind.as_deref() == Some("GRPCRoute") => {
                    grpc_spec = Some(map.next_value::<GrpcRouteSpec>()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match kind {
            Some(k) if k == "HTTPRoute" => Ok(Resource::HttpRoute(HttpRoute {
                api_version: api_version.unwrap_or_default(),
                kind: k,
                metadata: metadata.unwrap_or_default(),
                spec: spec.unwrap_or_default(),
            })),
            Some(k) if k == "GRPCRoute" => Ok(Resource::GrpcRoute(GrpcRoute {
                api_version: api_version.unwrap_or_default(),
                kind: k,
                metadata: metadata.unwrap_or_default(),
                spec: grpc_spec.unwrap_or_default(),
            })),
            kind => Ok(Resource::Other { kind }),
        }
    }
}
