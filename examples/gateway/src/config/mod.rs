//! Route files in, validated HTTPRoutes and GRPCRoutes out.
//!
//! Parse once, at the edge: every YAML document is deserialized once (a
//! [`Resource`]), checked with [`HttpRoute::validate`](tower_sticky::route::HttpRoute::validate)
//! or [`GrpcRoute::validate`](tower_sticky::route::GrpcRoute::validate)
//! into a typed [`Route`] and kept as a [`LoadedRoute`] before the gateway
//! serves anything; an invalid file stops start-up with
//! `<file>: document <n>: <field>: <reason>`.

pub mod backend_series;
pub mod certs;
pub mod edge;
pub mod grpc_route;
pub mod keys;
pub mod order;
pub mod rules;

use grpc_route::RouteKind;
use std::fmt;
use std::path::Path;
use tower_sticky::route::{Resource, Route};

/// The seed's cookie HTTPRoute, verbatim: what the gateway runs without
/// `--route`.
pub const DEFAULT_ROUTE: &str = include_str!("default-route.yaml");
/// How the embedded default is named in messages.
pub const DEFAULT_ROUTE_NAME: &str = "<embedded default route>";

/// One HTTPRoute or GRPCRoute document, validated.
#[derive(Debug)]
pub struct LoadedRoute {
    /// Where it came from: `file: document n`.
    pub source: String,
    /// HTTPRoute or GRPCRoute.
    pub kind: RouteKind,
    /// The route, typed and checked.
    pub route: Route,
    /// Its `metadata.creationTimestamp`, if it has one: the older route
    /// wins a tie ([`order`]).
    pub created: Option<order::Created>,
}

/// A route or EndpointSlice file that cannot be used; its `Display` is the
/// whole message: `file: document n: field: reason`, or both places of a
/// route given twice.
#[derive(Debug)]
pub struct ConfigError {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// `file: document n: field: reason`, already put together.
    At(String),
    /// The same namespace/name in two documents.
    Duplicate {
        kind: RouteKind,
        route: String,
        first: String,
        second: String,
    },
}

impl ConfigError {
    /// A problem at a place in a file; `message` starts with the file (and
    /// document and field, when known).
    pub fn at(message: String) -> Self {
        ConfigError {
            kind: Kind::At(message),
        }
    }

    /// The route `route` (`namespace/name`) of `kind` is in both documents.
    pub fn duplicate(kind: RouteKind, route: String, first: String, second: String) -> Self {
        ConfigError {
            kind: Kind::Duplicate {
                kind,
                route,
                first,
                second,
            },
        }
    }

    /// Whether two documents define the same route.
    pub fn is_duplicate(&self) -> bool {
        matches!(self.kind, Kind::Duplicate { .. })
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::At(message) => f.write_str(message),
            Kind::Duplicate {
                kind,
                route,
                first,
                second,
            } => write!(
                f,
                "{second}: metadata: {} {route} is defined twice, also at {first}: a route's namespace/name must be unique",
                kind.as_str()
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates a route file.
pub fn load_file(path: &Path) -> Result<Vec<LoadedRoute>, ConfigError> {
    let (name, text) = read_text(path)?;
    load_str(&name, &text)
}

/// A YAML file's name, as messages give it, and its text.
pub fn read_text(path: &Path) -> Result<(String, String), ConfigError> {
    let name = path.display().to_string();
    let text =
        std::fs::read(path).map_err(|e| ConfigError::at(format!("{name}: cannot read: {e}")))?;
    let text = String::from_utf8(text)
        .map_err(|_| ConfigError::at(format!("{name}: not valid YAML: not UTF-8 text")))?;
    Ok((name, text))
}

/// Parses and validates the YAML documents of one file called `name`.
///
/// Documents of another `kind` are skipped with a warning; a file without
/// any HTTPRoute or GRPCRoute is an error, as is a document without a
/// `kind`. Documents
/// are numbered from 1, not counting empty ones.
pub fn load_str(name: &str, text: &str) -> Result<Vec<LoadedRoute>, ConfigError> {
    let mut routes = Vec::new();
    let mut skipped = 0usize;
    let mut input = text.as_bytes();
    let options = serde_saphyr::options! { with_snippet: false };
    for (n, doc) in serde_saphyr::read_with_options::<_, Resource>(&mut input, options).enumerate()
    {
        let n = n + 1;
        let at = |msg: String| ConfigError::at(format!("{name}: document {n}: {msg}"));
        let (kind, validated) = match doc {
            Err(e) if is_syntax_error(&e) => return Err(at(format!("not valid YAML: {e}"))),
            Err(e) => return Err(at(format!("not a valid HTTPRoute or GRPCRoute: {e}"))),
            Ok(Resource::HttpRoute(route)) => (RouteKind::Http, route.validate()),
            // gRPC backends need `h2c://` (or appProtocol kubernetes.io/h2c):
            // gRPC does not run over HTTP/1.1.
            Ok(Resource::GrpcRoute(route)) => (RouteKind::Grpc, route.validate()),
            Ok(other) => {
                let Some(kind) = other.kind() else {
                    return Err(at(
                        "kind: not an HTTPRoute: the document has no `kind`".into()
                    ));
                };
                tracing::warn!(
                    "{name}: document {n}: skipping a {kind}: only HTTPRoute and GRPCRoute are served"
                );
                skipped += 1;
                continue;
            }
        };
        let route = validated.map_err(|e| at(format!("{}: {}", e.field(), e.reason())))?;
        routes.push(LoadedRoute {
            source: format!("{name}: document {n}"),
            kind,
            route,
            created: None,
        });
    }
    if routes.is_empty() {
        return Err(ConfigError::at(if skipped > 0 {
            format!("{name}: kind: not an HTTPRoute: no document is of kind HTTPRoute or GRPCRoute")
        } else {
            format!("{name}: no YAML document in the file")
        }));
    }
    if text.contains("creationTimestamp") {
        creation_timestamps(name, text, &mut routes)?;
    }
    Ok(routes)
}

/// Only the part of a document [`creation_timestamps`] reads.
#[derive(serde::Deserialize)]
struct Stamped {
    #[serde(default)]
    metadata: Stamp,
}

#[derive(Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stamp {
    #[serde(default)]
    creation_timestamp: Option<String>,
}

/// Reads the `metadata.creationTimestamp` of each route's document (the
/// library's types do not keep it): a second, shallow pass over the text,
/// whose documents number as the first pass's did.
fn creation_timestamps(
    name: &str,
    text: &str,
    routes: &mut [LoadedRoute],
) -> Result<(), ConfigError> {
    let mut input = text.as_bytes();
    let options = serde_saphyr::options! { with_snippet: false };
    let docs = serde_saphyr::read_with_options::<_, Stamped>(&mut input, options);
    let mut routes = routes.iter_mut().peekable();
    for (n, doc) in docs.enumerate() {
        let source = format!("{name}: document {}", n + 1);
        let Some(route) = routes.next_if(|r| r.source == source) else {
            continue;
        };
        let stamp = doc.ok().and_then(|d| d.metadata.creation_timestamp);
        if let Some(stamp) = stamp {
            route.created = Some(order::Created::parse(&stamp).ok_or_else(|| {
                ConfigError::at(format!(
                    "{source}: metadata.creationTimestamp: {:?} is not an RFC 3339 time such as 2026-11-28T09:00:00Z",
                    stamp.chars().take(40).collect::<String>()
                ))
            })?);
        }
    }
    Ok(())
}

/// Whether the YAML parser (rather than the HTTPRoute schema) refused it.
fn is_syntax_error(e: &serde_saphyr::Error) -> bool {
    use serde_saphyr::{Error, ExternalMessageSource};
    match e.without_snippet() {
        Error::ExternalMessage { source, .. } => {
            matches!(**source, ExternalMessageSource::Parser(_))
        }
        Error::Eof { .. } | Error::InvalidUtf8Input => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::load_str;

    const GRPC: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: chat}\nspec:\n  rules: [{matches: [{method: {service: chat.Chat}}], backendRefs: [{name: chat, port: 50051}]}]\n";
    const HTTP: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web}\nspec:\n  rules: [{backendRefs: [{name: web, port: 80}]}]\n";

    #[test]
    fn grpcroutes_load_next_to_httproutes_and_keep_their_kind() {
        use super::RouteKind;
        let routes = load_str("mixed.yaml", &format!("{GRPC}---\n{HTTP}")).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].route.name(), "chat");
        assert_eq!(routes[0].kind, RouteKind::Grpc);
        assert_eq!(routes[0].source, "mixed.yaml: document 1");
        assert_eq!(routes[1].kind, RouteKind::Http);
        let bad = GRPC.replace("service: chat.Chat", "service: 'chat Chat'");
        let err = load_str("grpc.yaml", &bad).unwrap_err().to_string();
        assert!(
            err.starts_with("grpc.yaml: document 1: spec.rules[0].matches[0].method.service: "),
            "{err}"
        );
    }
}
