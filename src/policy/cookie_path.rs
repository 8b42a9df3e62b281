/// The kind of a rule's path match, as written in `matches[].path.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathMatchKind {
    /// `Exact`.
    Exact,
    /// `PathPrefix`.
    PathPrefix,
    /// `RegularExpression`.
    RegularExpression,
}

/// The cookie `Path` Envoy Gateway derives from a rule's path match for the
/// v1.x schema: the value of an exact or prefix match; for a regular
/// expression, the segments before the first one holding a regex
/// metacharacter; `/` when there is no match or nothing literal remains.
///
/// ```
/// use tower_sticky::policy::{derive_cookie_path, PathMatchKind};
///
/// assert_eq!(derive_cookie_path(Some((PathMatchKind::PathPrefix, "/v2"))), "/v2");
/// assert_eq!(derive_cookie_path(Some((PathMatchKind::Exact, "/login"))), "/login");
/// assert_eq!(derive_cookie_path(Some((PathMatchKind::RegularExpression, "/api/v[0-9]+/users"))), "/api");
/// assert_eq!(derive_cookie_path(None), "/");
/// ```
#[must_use]
pub fn derive_cookie_path(path_match: Option<(PathMatchKind, &str)>) -> String {
    let Some((kind, value)) = path_match else {
        return "/".into();
    };
    let derived = match kind {
        PathMatchKind::Exact | PathMatchKind::PathPrefix => value.to_owned(),
        PathMatchKind::RegularExpression => {
            let literal: Vec<&str> = value
                .trim_start_matches('^')
                .split('/')
                .skip(1)
                .take_while(|seg| !seg.bytes().any(|b| b"\\.*+?()[]{}|^$".contains(&b)))
                .collect();
            format!("/{}", literal.join("/"))
        }
    };
    if super::session_policy::check_path(&derived).is_ok() {
        derived
    } else {
        "/".into()
    }
}
