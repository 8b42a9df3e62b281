//! Route files in, validated HTTPRoutes out.
//!
//! Parse once, at the edge: every document is read, checked with
//! [`HttpRoute::validate`] and turned into [`LoadedRoute`]s before the
//! gateway serves anything; an invalid file stops start-up with
//! `<file>: document <n>: <field>: <reason>`.

use std::fmt;
use std::path::Path;
use tower_sticky::policy::SessionPolicy;
use tower_sticky::route::HttpRoute;

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
    /// The resource as written.
    pub route: HttpRoute,
    /// Per rule, its session policy (`None` without `sessionPersistence`).
    pub policies: Vec<Option<SessionPolicy>>,
}

/// A route file that cannot be used; its `Display` is the whole message.
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
    let name = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| ConfigError(format!("{name}: cannot read: {e}")))?;
    let text = String::from_utf8(text)
        .map_err(|_| ConfigError(format!("{name}: not valid YAML: not UTF-8 text")))?;
    load_str(&name, &text)
}

/// Parses and validates the YAML documents of one file called `name`.
///
/// Documents of another `kind` are skipped with a warning; a file without
/// any HTTPRoute is an error, as is a document that is not a mapping with a
/// `kind`.
pub fn load_str(name: &str, text: &str) -> Result<Vec<LoadedRoute>, ConfigError> {
    let mut routes = Vec::new();
    let mut skipped = 0usize;
    for (n, doc) in documents(text).enumerate() {
        let n = n + 1;
        let at = |msg: String| ConfigError(format!("{name}: document {n}: {msg}"));
        let value: serde_json::Value =
            serde_saphyr::from_str(doc).map_err(|e| at(format!("not valid YAML: {e}")))?;
        let Some(kind) = value.get("kind").and_then(|k| k.as_str()) else {
            return Err(at(
                "kind: not an HTTPRoute: the document has no `kind`".into()
            ));
        };
        if kind != "HTTPRoute" {
            tracing::warn!("{name}: document {n}: skipping a {kind}: only HTTPRoute is served");
            skipped += 1;
            continue;
        }
        let route: HttpRoute =
            serde_saphyr::from_str(doc).map_err(|e| at(format!("not a valid HTTPRoute: {e}")))?;
        let policies = route
            .validate()
            .map_err(|e| at(format!("{}: {}", e.field(), e.reason())))?;
        routes.push(LoadedRoute {
            source: format!("{name}: document {n}"),
            route,
            policies,
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

/// The non-empty YAML documents of a stream, split at `---` lines.
///
/// A `---` at the start of a line always starts a document in YAML (block
/// scalars must be indented), so splitting the text is exact enough and lets
/// errors name the document.
fn documents(text: &str) -> impl Iterator<Item = &str> {
    let mut starts = vec![0usize];
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        if bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t") {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts.push(text.len());
    let pieces: Vec<&str> = starts.windows(2).map(|w| &text[w[0]..w[1]]).collect();
    pieces.into_iter().filter(|doc| {
        doc.lines().any(|l| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#') && l != "---" && l != "..."
        })
    })
}
