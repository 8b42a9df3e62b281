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
        name: Name::new(name.as_bytes()),
    }
}

/// Iterator returned by [`cookie_values`].
#[derive(Debug)]
pub struct CookieValues<'a> {
    headers: <GetAll<'a, HeaderValue> as IntoIterator>::IntoIter,
    rest: &'a [u8],
    name: Name<'a>,
}

impl<'a> CookieValues<'a> {
    /// The next value, before the UTF-8 check.
    fn next_bytes(&mut self) -> Option<&'a [u8]> {
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
            if let Some(v) = match_pair_bytes(pair, self.name) {
                return Some(v);
            }
        }
    }
}

impl<'a> Iterator for CookieValues<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            if let Ok(v) = std::str::from_utf8(self.next_bytes()?) {
                return Some(v);
            }
        }
    }
}

/// Calls `judge` on each value of the cookie `name` until it returns true,
/// as `cookie_values(headers, name).any(judge)` does, except that values are
/// passed before the UTF-8 check.
pub(crate) fn find_cookie(headers: &HeaderMap, name: Name<'_>, judge: impl FnMut(&[u8]) -> bool) {
    let values = CookieValues {
        headers: headers.get_all(COOKIE).into_iter(),
        rest: &[],
        name,
    };
    judge_each(values, judge);
}

/// Calls `judge` on each of `values`, before the UTF-8 check, until it
/// returns true.
fn judge_each(mut values: CookieValues<'_>, mut judge: impl FnMut(&[u8]) -> bool) {
    while let Some(v) = values.next_bytes() {
        if judge(v) {
            return;
        }
    }
}

/// The value of `pair` (`name=value`) if its name is `name`, before any
/// UTF-8 check.
fn match_pair_bytes<'a>(pair: &'a [u8], name: Name<'_>) -> Option<&'a [u8]> {
    after_name(trim(pair), name).map(unquoted)
}

/// A cookie value from what follows its `=`: trimmed, quotes removed.
fn unquoted(rest: &[u8]) -> &[u8] {
    let value = trim(rest);
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

/// A cookie name to look for, checked once (per header, or when the
/// engine is built) rather than per pair.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Name<'a> {
    bytes: &'a [u8],
    /// A name a pair can start with (not empty, no `=`, no surrounding
    /// whitespace), as every valid cookie name is.
    plain: bool,
}

impl<'a> Name<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        let plain = !bytes.is_empty() && !bytes.contains(&b'=') && trim(bytes) == bytes;
        Name { bytes, plain }
    }

    /// `bytes`, whose [`is_plain`](Self::is_plain) was found earlier (the
    /// engine checks its cookie name once, not on every request).
    pub(crate) fn checked(bytes: &'a [u8], plain: bool) -> Self {
        debug_assert_eq!(Name::new(bytes).plain, plain);
        Name { bytes, plain }
    }

    /// Whether the name is one a pair can start with.
    pub(crate) fn is_plain(&self) -> bool {
        self.plain
    }
}

/// What follows the name and the `=` in `pair` (trimmed at the start), if
/// the pair's name is `name`: whether `trim(&pair[..first '='])` is `name`,
/// without scanning every pair for its `=`.
fn after_name<'a>(pair: &'a [u8], name: Name<'_>) -> Option<&'a [u8]> {
    if !name.plain {
        // Not a valid cookie name: compared the long way.
        let eq = pair.iter().position(|&b| b == b'=')?;
        return (trim(&pair[..eq]) == name.bytes).then(|| &pair[eq + 1..]);
    }
    // A match starts with the name; most pairs differ in their first byte.
    if pair.first() != name.bytes.first() || !pair.starts_with(name.bytes) {
        return None;
    }
    let rest = &pair[name.bytes.len()..];
    match trim(rest) {
        [b'=', ..] => {
            let eq = rest.iter().position(|&b| b == b'=')?;
            Some(&rest[eq + 1..])
        }
        _ => None,
    }
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
/// others; a header left empty is dropped. A header holding the cookie is
/// rewritten as its other pairs, trimmed, joined by `"; "`; one that does not
/// is left as it is. With one `Cookie` header (what HTTP/1.1 clients send),
/// the rewritten value is carved from a per-thread buffer: no allocation
/// per request. Like the header values hyper parses out of its read buffer,
/// a carved value keeps its buffer chunk (4 KiB) alive for as long as it
/// lives: copy it (`HeaderValue::from_bytes`) before storing it for long.
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
    if let Some(kept) = find_and_rewrite(headers, Name::new(name.as_bytes()), |_| true) {
        kept.apply(headers);
    }
}

/// What replaces the `Cookie` header(s) of a request once the session
/// cookie is taken out: every value of `Cookie` is replaced by these (none:
/// the header goes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeptCookies {
    /// The request had one `Cookie` header: at most one value is left.
    One(Option<HeaderValue>),
    /// It had several (HTTP/2 clients split the header).
    Several(Vec<HeaderValue>),
}

impl KeptCookies {
    /// The values, in order.
    pub(crate) fn as_slice(&self) -> &[HeaderValue] {
        match self {
            KeptCookies::One(v) => v.as_slice(),
            KeptCookies::Several(v) => v,
        }
    }

    /// Replaces every `Cookie` value of `headers` with these.
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        match self {
            KeptCookies::One(Some(v)) => {
                // No name holds two values (O(1) to tell): overwrite the one
                // `Cookie` value where it stands, a lookup cheaper than
                // `insert`'s (which must also clear any extra values).
                if headers.len() == headers.keys_len()
                    && let Some(value) = headers.get_mut(COOKIE)
                {
                    *value = v;
                    return;
                }
                headers.insert(COOKIE, v);
            }
            KeptCookies::One(None) => {
                headers.remove(COOKIE);
            }
            KeptCookies::Several(values) => {
                headers.remove(COOKIE);
                for v in values {
                    headers.append(COOKIE, v);
                }
            }
        }
    }
}

/// Calls `judge` on each value of the cookie `name` until it returns true
/// (as `cookie_values(headers, name).any(judge)`, except that values are
/// passed before the UTF-8 check), and returns what the `Cookie` header(s)
/// become without the cookie (as [`strip_cookie`] leaves them), or `None`
/// when no pair is named `name`; a single `Cookie` header is scanned once
/// for both. The request itself is not touched.
pub(crate) fn find_and_rewrite(
    headers: &HeaderMap,
    name: Name<'_>,
    mut judge: impl FnMut(&[u8]) -> bool,
) -> Option<KeptCookies> {
    // No name holds two values (O(1) to tell), so at most one `Cookie`
    // header: the usual case (RFC 6265 §5.4), found with one lookup,
    // scanned once, rewritten into a buffer that costs no allocation per
    // request.
    let single = headers.len() == headers.keys_len();
    if !single {
        return find_and_rewrite_several(headers, name, judge);
    }
    let value = headers.get(COOKIE)?.as_bytes();
    let mut judged = false;
    let kept = super::value_arena::write(value.len(), |out| {
        write_kept(value, name, out, |v| {
            if !judged {
                judged = judge(v);
            }
        })
    })?;
    Some(KeptCookies::One((!kept.is_empty()).then(|| {
        HeaderValue::from_maybe_shared(kept)
            .expect("pieces of a valid header value, joined by \"; \"")
    })))
}

/// Writes `value`'s pairs to `out`, trimmed and joined by `"; "`, except the
/// empty ones and those named `name`, whose values go to `named`. Returns
/// whether any pair was named `name`.
fn write_kept(
    value: &[u8],
    name: Name<'_>,
    out: &mut bytes::BytesMut,
    mut named: impl FnMut(&[u8]),
) -> bool {
    let mut any = false;
    for pair in pairs(value) {
        let t = trim(pair);
        if t.is_empty() {
            continue;
        }
        if let Some(rest) = after_name(t, name) {
            any = true;
            named(unquoted(rest));
            continue;
        }
        if !out.is_empty() {
            out.extend_from_slice(b"; ");
        }
        out.extend_from_slice(t);
    }
    any
}

/// [`find_and_rewrite`] when some header has several values: perhaps
/// `Cookie` (HTTP/2 clients split it), perhaps another. If any `Cookie`
/// value names the cookie, every value is rewritten as its kept pairs and
/// the values left empty are dropped.
fn find_and_rewrite_several(
    headers: &HeaderMap,
    name: Name<'_>,
    judge: impl FnMut(&[u8]) -> bool,
) -> Option<KeptCookies> {
    let values = CookieValues {
        headers: headers.get_all(COOKIE).into_iter(),
        rest: &[],
        name,
    };
    judge_each(values, judge);
    let mut named = false;
    let kept: Vec<bytes::Bytes> = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| {
            let v = v.as_bytes();
            super::value_arena::write(v.len(), |out| {
                named |= write_kept(v, name, out, |_| {});
                true
            })
        })
        .collect();
    if !named {
        return None;
    }
    Some(KeptCookies::Several(
        kept.into_iter()
            .filter(|v| !v.is_empty())
            .map(|v| {
                HeaderValue::from_maybe_shared(v)
                    .expect("pieces of a valid header value, joined by \"; \"")
            })
            .collect(),
    ))
}

#[cfg(test)]
fn is_named(pair: &[u8], name: Name<'_>) -> bool {
    after_name(trim(pair), name).is_some()
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
            .filter(|p| is_named(p, Name::new(name)))
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
                    .filter(|t| !t.is_empty() && !is_named(t, Name::new(name.as_bytes())))
                    .collect();
                (!pairs.is_empty())
                    .then(|| HeaderValue::from_bytes(&pairs.join(&b"; "[..])).unwrap())
            })
            .collect()
    }

    /// What [`is_named`] meant before [`after_name`] skipped the `=` scan.
    fn named_the_long_way(pair: &[u8], name: &[u8]) -> bool {
        match pair.iter().position(|&b| b == b'=') {
            Some(eq) => trim(&pair[..eq]) == name,
            None => false,
        }
    }

    #[test]
    fn one_kept_value_replaces_every_cookie_value() {
        let kept = || KeptCookies::One(Some(HeaderValue::from_static("a=1")));
        // One value under each name: overwritten where it stands.
        let mut one = HeaderMap::new();
        one.insert("x-before", HeaderValue::from_static("1"));
        one.insert(COOKIE, HeaderValue::from_static("a=1; Session-A=x"));
        one.insert("x-after", HeaderValue::from_static("2"));
        kept().apply(&mut one);
        let names: Vec<&str> = one.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-before", "cookie", "x-after"]);
        assert_eq!(one.get_all(COOKIE).iter().collect::<Vec<_>>(), ["a=1"]);
        // Several `Cookie` values (a map other than the one decided on):
        // all of them go, as `insert` does.
        let mut several = HeaderMap::new();
        several.append(COOKIE, HeaderValue::from_static("b=2"));
        several.append(COOKIE, HeaderValue::from_static("Session-A=x"));
        kept().apply(&mut several);
        assert_eq!(several.get_all(COOKIE).iter().collect::<Vec<_>>(), ["a=1"]);
        // No `Cookie` at all: added.
        let mut none = HeaderMap::new();
        kept().apply(&mut none);
        assert_eq!(none.get_all(COOKIE).iter().collect::<Vec<_>>(), ["a=1"]);
    }

    proptest! {
        #[test]
        fn name_matching_agrees_with_the_long_way(
            pair in proptest::collection::vec(
                prop_oneof![Just(b'S'), Just(b'a'), Just(b'='), Just(b' '), Just(b'\t'), Just(b'"')], 0..12),
            name in proptest::collection::vec(
                prop_oneof![Just(b'S'), Just(b'a'), Just(b'='), Just(b' ')], 0..4),
        ) {
            let n = Name::new(&name);
            prop_assert_eq!(is_named(&pair, n), named_the_long_way(&pair, &name));
            if let Some(v) = match_pair_bytes(&pair, n) {
                let eq = pair.iter().position(|&b| b == b'=').unwrap();
                prop_assert_eq!(v, unquoted(&pair[eq + 1..]));
            }
        }

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
            ),
            other_twice in any::<bool>(),
        ) {
            let mut headers = HeaderMap::new();
            headers.insert("x-other", HeaderValue::from_static("1"));
            if other_twice {
                // Another name with two values: the path for several values.
                headers.append("x-other", HeaderValue::from_static("2"));
            }
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
