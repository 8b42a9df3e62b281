//! Reading and stripping one cookie in `Cookie` request headers.

use http::header::{COOKIE, GetAll};
use http::{HeaderMap, HeaderValue};

/// The values of every cookie called `name` in the request's `Cookie`
/// header(s), in order, without allocating.
///
/// Copes with what clients really send: several `Cookie` headers, `;` with or
/// without a space, a trailing `;`, surrounding whitespace, `"quoted"` values,
/// and bytes that are not UTF-8 elsewhere in the header.
///
/// ```
/// use http::HeaderMap;
/// use tower_sticky::carrier::cookie_values;
///
/// let mut h = HeaderMap::new();
/// h.append("cookie", "theme=dark; Session-A=abc;".parse().unwrap());
/// h.append("cookie", "Session-A=\"def\"".parse().unwrap());
/// let found: Vec<&str> = cookie_values(&h, "Session-A").collect();
/// assert_eq!(found, ["abc", "def"]);
/// ```
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> CookieValues<'a> {
    CookieValues {
        headers: headers.get_all(COOKIE).into_iter(),
        rest: &[],
        name: name.as_bytes(),
    }
}

/// Iterator returned by [`cookie_values`].
#[derive(Debug)]
pub struct CookieValues<'a> {
    headers: <GetAll<'a, HeaderValue> as IntoIterator>::IntoIter,
    rest: &'a [u8],
    name: &'a [u8],
}

impl<'a> Iterator for CookieValues<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            if self.rest.is_empty() {
                self.rest = self.headers.next()?.as_bytes();
                continue;
            }
            let (pair, rest) = match self.rest.iter().position(|&b| b == b';') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            if let Some(v) = match_pair(pair, self.name) {
                return Some(v);
            }
        }
    }
}

/// The value of `pair` (`name=value`) if its name is `name`.
fn match_pair<'a>(pair: &'a [u8], name: &[u8]) -> Option<&'a str> {
    let eq = pair.iter().position(|&b| b == b'=')?;
    if trim(&pair[..eq]) != name {
        return None;
    }
    let mut value = trim(&pair[eq + 1..]);
    if value.len() >= 2 && value[0] == b'"' && value[value.len() - 1] == b'"' {
        value = &value[1..value.len() - 1];
    }
    std::str::from_utf8(value).ok()
}

pub(crate) fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// Removes every cookie called `name` from the `Cookie` header(s), keeping the
/// others byte for byte; a header left empty is dropped. Allocates only when
/// there is something to remove.
///
/// ```
/// use http::HeaderMap;
/// use tower_sticky::carrier::strip_cookie;
///
/// let mut h = HeaderMap::new();
/// h.append("cookie", "a=1; Session-A=abc; b=2".parse().unwrap());
/// h.append("cookie", "Session-A=abc".parse().unwrap());
/// strip_cookie(&mut h, "Session-A");
/// let left: Vec<_> = h.get_all("cookie").iter().collect();
/// assert_eq!(left, ["a=1; b=2"]);
/// ```
pub fn strip_cookie(headers: &mut HeaderMap, name: &str) {
    if cookie_pairs_named(headers, name.as_bytes()) == 0 {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| {
            let mut out = Vec::with_capacity(v.len());
            for pair in v.as_bytes().split(|&b| b == b';') {
                let t = trim(pair);
                if t.is_empty() || is_named(t, name.as_bytes()) {
                    continue;
                }
                if !out.is_empty() {
                    out.extend_from_slice(b"; ");
                }
                out.extend_from_slice(t);
            }
            (!out.is_empty()).then(|| HeaderValue::from_bytes(&out).ok())?
        })
        .collect();
    headers.remove(COOKIE);
    for v in kept {
        headers.append(COOKIE, v);
    }
}

fn is_named(pair: &[u8], name: &[u8]) -> bool {
    match pair.iter().position(|&b| b == b'=') {
        Some(eq) => trim(&pair[..eq]) == name,
        None => false,
    }
}

fn cookie_pairs_named(headers: &HeaderMap, name: &[u8]) -> usize {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .filter(|p| is_named(p, name))
        .count()
}
