//! Reading the session value from a request header.

use super::cookie_header::trim;
use http::{HeaderMap, HeaderName};

/// The candidate values of header `name`: each occurrence, split on `,` (in
/// case an intermediary folded several), trimmed of whitespace, including the
/// space a stray CR becomes under RFC 9110 §5.5.
///
/// ```
/// use http::{HeaderMap, HeaderName};
/// use tower_sticky::carrier::header_values;
///
/// let mut h = HeaderMap::new();
/// h.append("session-a", "abc ".parse().unwrap());
/// let name = HeaderName::from_static("session-a");
/// assert_eq!(header_values(&h, &name).collect::<Vec<_>>(), ["abc"]);
/// ```
pub fn header_values<'a>(
    headers: &'a HeaderMap,
    name: &'a HeaderName,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(trim)
        .filter(|v| !v.is_empty())
        .filter_map(|v| std::str::from_utf8(v).ok())
}
