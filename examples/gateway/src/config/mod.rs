//! Route files in, validated HTTPRoutes out.
//!
//! Parse once, at the edge: every YAML document is deserialized once (a
//! [`Resource`]), checked with [`HttpRoute::validate`](tower_sticky::route::HttpRoute::validate)
//! into a typed [`Route`] and kept as a [`LoadedRoute`] before the gateway
//! serves anything; an invalid file stops start-up with
//! `<file>: document <n>: <field>: <reason>`.

pub mod keys;
pub mod rules;

use std::fmt;
use std::path::Path;
use tower_sticky::route::{Resource, Route};

/// The seed's cookie HTTPRoute, verbatim: what the gateway runs without
/// `--route`.
pub const DEFAULT_ROUTE: &str = include_str!("default-route.yaml");
/// How the embedded default is named in messages.
pub const DEFAULT_ROUTE_NAME: &str = "<embedded default route>";

/// One HTTPRoute document, validated.
#[derive(Debug)]
pub struct LoadedRoute {
    /// Where it came from: `file: document n`.
    pub source: String,
    /// The route, typed and checked.
    pub route: Route,
}

/// A route or EndpointSlice file that cannot be used; its `Display` is the
/// whole message: `file: document n: field: reason`.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
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
    let text = std::fs::read(path).map_err(|e| ConfigError(format!("{name}: cannot read: {e}")))?;
    let text = String::from_utf8(text)
        .map_err(|_| ConfigError(format!("{name}: not valid YAML: not UTF-8 text")))?;
    Ok((name, text))
}

/// Parses and validates the YAML documents of one file called `name`.
///
/// Documents of another `kind` are skipped with a warning; a file without
/// any HTTPRoute is an error, as is a document without a `kind`. Documents
/// are numbered from 1, not counting empty ones.
pub fn load_str(name: &str, text: &str) -> Result<Vec<LoadedRoute>, ConfigError> {
    let mut routes = Vec::new();
    let mut skipped = 0usize;
    let mut input = text.as_bytes();
    let options = serde_saphyr::options! { with_snippet: false };
    for (n, doc) in serde_saphyr::read_with_options::<_, Resource>(&mut input, options).enumerate()
    {
        let n = n + 1;
        let at = |msg: String| ConfigError(format!("{name}: document {n}: {msg}"));
        let route = match doc {
            Err(e) if is_syntax_error(&e) => return Err(at(format!("not valid YAML: {e}"))),
            Err(e) => return Err(at(format!("not a valid HTTPRoute: {e}"))),
            Ok(Resource::HttpRoute(route)) => route,
            Ok(Resource::GrpcRoute(route)) => {
                // The library types GRPCRoutes too, but gRPC needs HTTP/2 to
                // the backends, which `forward/` does not speak yet: say so
                // rather than send gRPC calls over HTTP/1.1.
                tracing::warn!(
                    "{name}: document {n}: skipping GRPCRoute {}/{}: gRPC needs HTTP/2 to the backends, which this gateway does not speak yet",
                    route.namespace(),
                    route.name()
                );
                skipped += 1;
                continue;
            }
            Ok(other) => {
                let Some(kind) = other.kind() else {
                    return Err(at(
                        "kind: not an HTTPRoute: the document has no `kind`".into()
                    ));
                };
                tracing::warn!("{name}: document {n}: skipping a {kind}: only HTTPRoute is served");
                skipped += 1;
                continue;
            }
        };
        let route = route
            .validate()
            .map_err(|e| at(format!("{}: {}", e.field(), e.reason())))?;
        routes.push(LoadedRoute {
            source: format!("{name}: document {n}"),
            route,
        });
    }
    if routes.is_empty() {
        return Err(ConfigError(if skipped > 0 {
            format!("{name}: kind: not an HTTPRoute: no document is of kind HTTPRoute")
        } else {
            format!("{name}: no YAML document in the file")
        }));
    }
    Ok(routes)
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
    fn grpcroutes_are_skipped_not_served_over_http1() {
        let routes = load_str("mixed.yaml", &format!("{GRPC}---\n{HTTP}")).unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].route.name(), "web");
        assert_eq!(routes[0].source, "mixed.yaml: document 2");
        let only_grpc = load_str("grpc.yaml", GRPC).unwrap_err();
        assert_eq!(
            only_grpc.to_string(),
            "grpc.yaml: kind: not an HTTPRoute: no document is of kind HTTPRoute"
        );
    }
}
