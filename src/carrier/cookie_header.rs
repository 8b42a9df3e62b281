//! Reading and stripping one cookie in `Cookie` request headers.

use http::header::{COOKIE, Entry, GetAll};
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
            let (pair, rest) = match find_semicolon(self.rest) {
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

/// The index of the first `;` in `s`, eight bytes at a time: cookie values
/// (analytics ids, CSRF tokens) make up most of a `Cookie` header, and a
/// byte-at-a-time scan over them cost more than verifying the session's MAC.
fn find_semicolon(s: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SEMIS: u64 = u64::from_ne_bytes([b';'; 8]);
    let mut chunks = s.chunks_exact(8);
    for (n, chunk) in chunks.by_ref().enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ SEMIS;
        // A byte of `word` is zero where `s` has a `;`. This flags every
        // such byte, and others only above a flagged one, so the lowest flag
        // (bytes loaded little-endian) is the first `;`.
        let zeros = word.wrapping_sub(ONES) & !word & HIGHS;
        if zeros != 0 {
            return Some(n * 8 + (zeros.trailing_zeros() / 8) as usize);
        }
    }
    let tail = chunks.remainder();
    let start = s.len() - tail.len();
    tail.iter().position(|&b| b == b';').map(|i| start + i)
}

/// `s` split on `;`, like `s.split(|&b| b == b';')`, with [`find_semicolon`].
fn pairs(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(s);
    std::iter::from_fn(move || {
        let s = rest?;
        match find_semicolon(s) {
            Some(i) => {
                rest = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
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
    let name = name.as_bytes();
    // One pass over each value says whether there is anything to do, and
    // how: a proxy calls this on every request.
    let (mut values, mut emptied, mut named, mut first) = (0, 0, false, None);
    for v in headers.get_all(COOKIE) {
        let scan = Scan::of(v.as_bytes(), name);
        values += 1;
        named |= scan.named;
        if scan.kept_len == 0 {
            emptied += 1;
        }
        first.get_or_insert(scan);
    }
    if !named {
        return;
    }
    if emptied == values {
        headers.remove(COOKIE);
        return;
    }
    if emptied == 0 {
        // The usual case (one `Cookie` header holding other cookies too):
        // rewrite in place, with one exactly sized allocation per value that
        // changes, which `HeaderValue` then takes over without copying.
        if let Entry::Occupied(mut entry) = headers.entry(COOKIE) {
            for (i, v) in entry.iter_mut().enumerate() {
                let scan = match first.take() {
                    Some(scan) if i == 0 => scan,
                    _ => Scan::of(v.as_bytes(), name),
                };
                if !scan.as_is {
                    *v = kept_value(v.as_bytes(), name, scan.kept_len);
                }
            }
        }
        return;
    }
    // Some values empty out, others do not: rebuild the list.
    let kept: Vec<HeaderValue> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| {
            let scan = Scan::of(v.as_bytes(), name);
            (scan.kept_len > 0).then(|| kept_value(v.as_bytes(), name, scan.kept_len))
        })
        .collect();
    headers.remove(COOKIE);
    for v in kept {
        headers.append(COOKIE, v);
    }
}

/// What stripping `name` does to one `Cookie` value. Stripping keeps the
/// pairs that are not empty and not named `name`, trimmed, joined by `"; "`.
struct Scan {
    /// Whether a pair is named `name`.
    named: bool,
    /// The length of the value once stripped.
    kept_len: usize,
    /// Whether stripping leaves the value byte for byte as it is.
    as_is: bool,
}

impl Scan {
    fn of(value: &[u8], name: &[u8]) -> Scan {
        let mut scan = Scan {
            named: false,
            kept_len: 0,
            as_is: true,
        };
        for (i, pair) in pairs(value).enumerate() {
            let t = trim(pair);
            if t.is_empty() || is_named(t, name) {
                scan.named |= !t.is_empty();
                scan.as_is = false;
                continue;
            }
            if scan.as_is {
                let spaced = if i == 0 {
                    pair
                } else {
                    pair.strip_prefix(b" ").unwrap_or_default()
                };
                scan.as_is = spaced == t;
            }
            scan.kept_len += if scan.kept_len == 0 {
                t.len()
            } else {
                2 + t.len()
            };
        }
        scan
    }
}

/// `value` with its kept pairs only; `len` is their joined length.
fn kept_value(value: &[u8], name: &[u8], len: usize) -> HeaderValue {
    let mut out = Vec::with_capacity(len);
    for pair in pairs(value) {
        let t = trim(pair);
        if t.is_empty() || is_named(t, name) {
            continue;
        }
        if !out.is_empty() {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(t);
    }
    debug_assert_eq!(out.len(), len);
    // Pieces of a valid value, joined by "; ", make a valid value; with
    // `len == capacity` the conversion takes the buffer without copying.
    HeaderValue::try_from(out).expect("pieces of a valid header value")
}

fn is_named(pair: &[u8], name: &[u8]) -> bool {
    match pair.iter().position(|&b| b == b'=') {
        Some(eq) => trim(&pair[..eq]) == name,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cookie_pairs_named(headers: &HeaderMap, name: &[u8]) -> usize {
        headers
            .get_all(COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
            .filter(|p| is_named(p, name))
            .count()
    }

    /// The straightforward version `strip_cookie` must agree with: rebuild
    /// every value from its kept pairs, drop the empty ones.
    fn reference(headers: &HeaderMap, name: &str) -> Vec<HeaderValue> {
        if cookie_pairs_named(headers, name.as_bytes()) == 0 {
            return headers.get_all(COOKIE).iter().cloned().collect();
        }
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| {
                let pairs: Vec<&[u8]> = v
                    .as_bytes()
                    .split(|&b| b == b';')
                    .map(trim)
                    .filter(|t| !t.is_empty() && !is_named(t, name.as_bytes()))
                    .collect();
                (!pairs.is_empty())
                    .then(|| HeaderValue::from_bytes(&pairs.join(&b"; "[..])).unwrap())
            })
            .collect()
    }

    proptest! {
        #[test]
        fn finds_semicolons_like_split(s in proptest::collection::vec(
            prop_oneof![Just(b';'), Just(b'a'), Just(b' '), any::<u8>()], 0..40)
        ) {
            prop_assert_eq!(find_semicolon(&s), s.iter().position(|&b| b == b';'));
            let ours: Vec<&[u8]> = pairs(&s).collect();
            let std: Vec<&[u8]> = s.split(|&b| b == b';').collect();
            prop_assert_eq!(ours, std);
        }

        #[test]
        fn agrees_with_the_reference(
            values in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        Just("a=1"), Just("Session-A=x"), Just("Session-A"), Just(" "),
                        Just(";"), Just("; "), Just("\t"), Just("="), Just("b=\"q\""),
                    ],
                    0..6,
                ),
                1..4,
            )
        ) {
            let mut headers = HeaderMap::new();
            headers.insert("x-other", HeaderValue::from_static("1"));
            for parts in &values {
                headers.append(COOKIE, HeaderValue::from_str(&parts.concat()).unwrap());
            }
            let expected = reference(&headers, "Session-A");
            strip_cookie(&mut headers, "Session-A");
            let got: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(headers.get("x-other").unwrap(), "1");
        }
    }
}
