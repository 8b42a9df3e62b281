//! The carriers on arbitrary header bytes: reading never panics, and
//! `strip_cookie` removes exactly the named cookie and keeps every other pair.
//!
//! Shared by the `cookie_header` fuzz target and the corpus replay test
//! (`tests/fuzz_corpus.rs`).

use http::header::COOKIE;
use http::{HeaderMap, HeaderName, HeaderValue};
use tower_sticky::carrier::{cookie_values, header_values, strip_cookie};

const SESSION_HEADER: HeaderName = HeaderName::from_static("session-a");

/// Checks one fuzz input; panics on any disagreement.
pub fn run(data: &[u8]) {
    // Layout: one byte for the name length, the name, then header values
    // separated by `\n` (a header value cannot hold one, so this is the
    // natural split into several `Cookie` headers).
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 32).min(rest.len());
    let (name, values) = rest.split_at(n);
    let name = String::from_utf8_lossy(name);

    let mut headers = HeaderMap::new();
    for v in values.split(|&b| b == b'\n') {
        // Bytes `http` refuses in a value never reach a service.
        if let Ok(v) = HeaderValue::from_bytes(v) {
            headers.append(COOKIE, v.clone());
            headers.append(SESSION_HEADER, v);
        }
    }

    // At most one value per pair of that name (non-UTF-8 values are skipped).
    let named = pairs(&headers)
        .into_iter()
        .filter(|p| is_named(p, name.as_bytes()))
        .count();
    assert!(cookie_values(&headers, &name).count() <= named);
    for v in header_values(&headers, &SESSION_HEADER) {
        assert!(!v.is_empty() && !v.contains(','));
        assert_eq!(v, v.trim_matches([' ', '\t']));
    }

    let before = pairs(&headers);
    let mut stripped = headers.clone();
    strip_cookie(&mut stripped, &name);
    assert_eq!(cookie_values(&stripped, &name).count(), 0);
    let expected: Vec<&[u8]> = before
        .iter()
        .copied()
        .filter(|p| !is_named(p, name.as_bytes()))
        .collect();
    assert_eq!(pairs(&stripped), expected);
    // Other headers are left alone.
    assert_eq!(
        stripped.get_all(SESSION_HEADER).iter().count(),
        headers.get_all(SESSION_HEADER).iter().count()
    );
    if named > 0 {
        for v in stripped.get_all(COOKIE) {
            assert!(!v.is_empty(), "an emptied Cookie header must be dropped");
        }
    } else {
        assert_eq!(stripped, headers, "nothing to strip: untouched");
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Every non-empty `;`-separated pair of every `Cookie` header, trimmed.
fn pairs(headers: &HeaderMap) -> Vec<&[u8]> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .map(trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether a pair is the cookie `name` (by the RFC 6265 reading: the name is
/// what stands before the first `=`, trimmed).
fn is_named(pair: &[u8], name: &[u8]) -> bool {
    pair.iter()
        .position(|&b| b == b'=')
        .is_some_and(|eq| trim(&pair[..eq]) == name)
}
