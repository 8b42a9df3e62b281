//! Cookie and header parsing against what clients really send.

use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use tower_sticky::carrier::{cookie_values, header_values, strip_cookie};

fn jar() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[a-zA-Z][a-zA-Z0-9_]{0,8}", "[a-zA-Z0-9%._-]{0,12}"), 0..6)
        .prop_map(|v| v.into_iter().filter(|(n, _)| n != "Session-A").collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn finds_and_strips_only_the_session_cookie(
        others in jar(),
        at in 0usize..6,
        token in "[A-Za-z0-9_-]{66}",
        sep in prop::sample::select(vec![";", "; ", " ;  "]),
        trailing in any::<bool>(),
        quoted in any::<bool>(),
        split in 0usize..7,
    ) {
        let value = if quoted { format!("\"{token}\"") } else { token.clone() };
        let mut pairs: Vec<String> = others.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let at = at.min(pairs.len());
        pairs.insert(at, format!("Session-A={value}"));
        // Spread the pairs over one or two Cookie headers.
        let split = split.min(pairs.len());
        let mut headers = HeaderMap::new();
        for chunk in [&pairs[..split], &pairs[split..]] {
            if chunk.is_empty() { continue; }
            let mut line = chunk.join(sep);
            if trailing { line.push(';'); }
            headers.append("cookie", HeaderValue::from_str(&line).unwrap());
        }
        let found: Vec<&str> = cookie_values(&headers, "Session-A").collect();
        prop_assert_eq!(found, vec![token.as_str()]);

        strip_cookie(&mut headers, "Session-A");
        prop_assert_eq!(cookie_values(&headers, "Session-A").count(), 0);
        let left: Vec<String> = headers
            .get_all("cookie")
            .iter()
            .flat_map(|v| v.to_str().unwrap().split(';').map(|p| p.trim().to_owned()).collect::<Vec<_>>())
            .filter(|p| !p.is_empty())
            .collect();
        let expected: Vec<String> = others.iter().map(|(n, v)| format!("{n}={v}")).collect();
        prop_assert_eq!(left, expected);
    }

    #[test]
    fn arbitrary_header_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let Ok(v) = HeaderValue::from_bytes(&bytes) else { return Ok(()); };
        let mut headers = HeaderMap::new();
        headers.append("cookie", v.clone());
        headers.append("session-a", v);
        let _ = cookie_values(&headers, "Session-A").count();
        let name = HeaderName::from_static("session-a");
        let _ = header_values(&headers, &name).count();
        strip_cookie(&mut headers, "Session-A");
        prop_assert_eq!(cookie_values(&headers, "Session-A").count(), 0);
    }
}

#[test]
fn name_match_is_exact_and_case_sensitive() {
    let mut h = HeaderMap::new();
    h.append(
        "cookie",
        "session-a=1; Session-AB=2; XSession-A=3; Session-A = 4"
            .parse()
            .unwrap(),
    );
    assert_eq!(cookie_values(&h, "Session-A").collect::<Vec<_>>(), ["4"]);
}

#[test]
fn non_utf8_elsewhere_in_the_header_does_not_hide_the_cookie() {
    let mut h = HeaderMap::new();
    h.append(
        "cookie",
        HeaderValue::from_bytes(b"pref=\xe9t\xe9; Session-A=abc").unwrap(),
    );
    assert_eq!(cookie_values(&h, "Session-A").collect::<Vec<_>>(), ["abc"]);
    strip_cookie(&mut h, "Session-A");
    assert_eq!(h["cookie"].as_bytes(), b"pref=\xe9t\xe9");
}

#[test]
fn header_values_trim_and_split() {
    let mut h = HeaderMap::new();
    h.append("session-a", "  abc  ".parse().unwrap());
    h.append("session-a", "def, ghi".parse().unwrap());
    let name = HeaderName::from_static("session-a");
    assert_eq!(
        header_values(&h, &name).collect::<Vec<_>>(),
        ["abc", "def", "ghi"]
    );
}
