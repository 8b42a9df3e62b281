//! Header handling at the proxy boundary: hop-by-hop headers out,
//! `X-Forwarded-*` and the gateway's `Via` in, a request that already
//! passed through this gateway recognised ([`looped`]), upgrades
//! recognised; on responses, the backend's own
//! copy of the session cookie out and `Cache-Control: private` next to an
//! issued session.

use http::header::{CACHE_CONTROL, CONNECTION, Entry, HOST, SET_COOKIE, UPGRADE, VIA};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri, Version};
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::LazyLock;
use tower_sticky::policy::{PersistenceType, SessionPolicy};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// plus `HTTP2-Settings` of an h2c upgrade, which the gateway does not offer.
/// A `static`, not a `const`: a `const` array of `HeaderName`s would be built
/// and dropped again at every use.
static HOP_BY_HOP: [HeaderName; 10] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    UPGRADE,
    HeaderName::from_static("http2-settings"),
];

/// [`HOP_BY_HOP`] as strings, in the same order.
const HOP_BY_HOP_NAMES: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// This process's `Via` pseudonym (RFC 9110 §7.6.3): `tower-sticky-` and
/// 8 random hex digits drawn at start, so that it names no host, and two
/// gateways in a chain (or two replicas) never share it. `Via` element for
/// each protocol a request can arrive in: HTTP/1.0, HTTP/1.1, HTTP/2.
struct Pseudonym {
    name: &'static str,
    via: [HeaderValue; 3],
}

static PSEUDONYM: LazyLock<Pseudonym> = LazyLock::new(|| {
    let mut random = [0u8; 4];
    let bits = match getrandom::fill(&mut random) {
        Ok(()) => u32::from_ne_bytes(random),
        // No OS randomness: std's per-process random hash keys instead
        // (never a fixed value, which every gateway would share).
        Err(_) => RandomState::new().hash_one(std::process::id()) as u32,
    };
    // Leaked once per process: the values are then static, and a copy per
    // request costs no allocation and no reference count.
    let name: &'static str = Box::leak(format!("tower-sticky-{bits:08x}").into_boxed_str());
    let via = |protocol: &str| {
        HeaderValue::from_static(Box::leak(format!("{protocol} {name}").into_boxed_str()))
    };
    Pseudonym {
        name,
        via: [via("1.0"), via("1.1"), via("2")],
    }
});

/// This process's `Via` pseudonym (for the start-up log and tests).
pub fn via_pseudonym() -> &'static str {
    PSEUDONYM.name
}

/// Whether the request already passed through this gateway: a `Via`
/// element (in any `Via` line) was received by this process's pseudonym.
/// A backend that resolves to the gateway itself then gets 508 after one
/// hop instead of looping until something runs out.
pub fn looped(headers: &HeaderMap) -> bool {
    let name = PSEUDONYM.name.as_bytes();
    headers.get_all(VIA).iter().any(|line| {
        line.as_bytes().split(|&b| b == b',').any(|element| {
            // `received-protocol received-by [comment]`.
            element
                .split(u8::is_ascii_whitespace)
                .filter(|t| !t.is_empty())
                .nth(1)
                == Some(name)
        })
    })
}

/// Appends this gateway's element to the request's `Via` (one line, after
/// the elements already there), naming the protocol it was received in.
fn add_via(headers: &mut HeaderMap, version: Version) {
    let ours = via_element(version);
    match headers.entry(VIA) {
        Entry::Vacant(e) => {
            e.insert(ours.clone());
        }
        Entry::Occupied(mut e) => {
            let mut all: Vec<&[u8]> = e.iter().map(HeaderValue::as_bytes).collect();
            all.push(ours.as_bytes());
            if let Ok(v) = HeaderValue::from_bytes(&all.join(&b", "[..])) {
                e.insert(v);
            }
        }
    }
}

/// This gateway's `Via` element for a request received in `version`.
fn via_element(version: Version) -> &'static HeaderValue {
    &PSEUDONYM.via[match version {
        Version::HTTP_09 | Version::HTTP_10 => 0,
        Version::HTTP_11 => 1,
        _ => 2,
    }]
}

/// The protocol of an HTTP/1.1 upgrade request (`Upgrade: websocket`), not
/// counting `h2c`, which the gateway does not offer.
pub fn upgrade_protocol<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != Version::HTTP_11 {
        return None;
    }
    let protocol = req.headers().get(UPGRADE)?;
    let asked = req
        .headers()
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    (asked && !protocol.as_bytes().eq_ignore_ascii_case(b"h2c")).then(|| protocol.clone())
}

/// The index in [`HOP_BY_HOP`] of `name`, if it is one of them: a switch
/// on the name's length and at most two byte comparisons, instead of
/// comparing it with every hop-by-hop name.
fn hop_index(name: &HeaderName) -> Option<usize> {
    match name.as_str() {
        "connection" => Some(0),
        "keep-alive" => Some(1),
        "proxy-connection" => Some(2),
        "proxy-authenticate" => Some(3),
        "proxy-authorization" => Some(4),
        "te" => Some(5),
        "trailer" => Some(6),
        "transfer-encoding" => Some(7),
        "upgrade" => Some(8),
        "http2-settings" => Some(9),
        _ => None,
    }
}

/// Removes hop-by-hop headers, including those `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Look at the names present once (usually none, or `Connection` and
    // `Keep-Alive`), then remove only those: no hashed lookup of every
    // hop-by-hop name.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    // `HOP_BY_HOP[0]` is `Connection`. Its tokens are usually only
    // `keep-alive` or `close`: plain loops, and a `Vec` (an allocation) only
    // when one names a header to remove.
    if present & 1 != 0 {
        let mut named: Vec<HeaderName> = Vec::new();
        for value in headers.get_all(CONNECTION) {
            // What most HTTP/1.1 backends send; `Keep-Alive` is known.
            if value.as_bytes().eq_ignore_ascii_case(b"keep-alive") {
                continue;
            }
            let Ok(value) = value.to_str() else {
                continue;
            };
            for token in value.split(',').map(str::trim) {
                // Those are already known to be present or not.
                if HOP_BY_HOP_NAMES
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(token))
                {
                    continue;
                }
                // `Connection: host` must not take the Host away (the
                // backend would get none, or a made-up one).
                if let Ok(name) = HeaderName::from_bytes(token.as_bytes())
                    && name != HOST
                {
                    named.push(name);
                }
            }
        }
        for name in named {
            headers.remove(name);
        }
    }
    // Only the names present, lowest bit first.
    while present != 0 {
        let i = present.trailing_zeros() as usize;
        present &= present - 1;
        headers.remove(&HOP_BY_HOP[i]);
    }
}

/// Whether a `Set-Cookie` value sets the cookie `name`.
fn sets_cookie_named(value: &[u8], name: &[u8]) -> bool {
    let end = value.iter().position(|&c| c == b'=').unwrap_or(value.len());
    value[..end].trim_ascii() == name
}

/// Removes what the backend set under the session's own name: a
/// `Set-Cookie` of the session cookie (as HAProxy's `indirect` does), or the
/// session header. Passed through, it would replace the gateway's token in
/// the client, and the next request would start a new session.
pub fn strip_session(headers: &mut HeaderMap, policy: &SessionPolicy) {
    match policy.kind() {
        PersistenceType::Cookie => {
            let name = policy.name().as_bytes();
            let names_session = |v: &HeaderValue| sets_cookie_named(v.as_bytes(), name);
            if !headers.get_all(SET_COOKIE).iter().any(names_session) {
                return;
            }
            let kept: Vec<HeaderValue> = headers
                .get_all(SET_COOKIE)
                .iter()
                .filter(|v| !names_session(v))
                .cloned()
                .collect();
            headers.remove(SET_COOKIE);
            for v in kept {
                headers.append(SET_COOKIE, v);
            }
        }
        // `Header`, and whatever carries the value in a header of its
        // name.
        _ => {
            headers.remove(policy.name());
        }
    }
}

/// Makes a response that carries a new session token private to its
/// client: `public` (and `s-maxage`, which only shared caches read) go,
/// `private` is added unless `private` or `no-store` is already there. A
/// shared cache must never hand one client's session to another.
pub fn make_private(headers: &mut HeaderMap) {
    let mut directives: Vec<String> = Vec::new();
    let mut private = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for d in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let name = d.split('=').next().unwrap_or(d).trim();
            if name.eq_ignore_ascii_case("public") || name.eq_ignore_ascii_case("s-maxage") {
                continue;
            }
            private |=
                name.eq_ignore_ascii_case("private") || name.eq_ignore_ascii_case("no-store");
            directives.push(d.to_owned());
        }
    }
    if !private {
        directives.insert(0, "private".to_owned());
    }
    if let Ok(v) = HeaderValue::from_str(&directives.join(", ")) {
        headers.insert(CACHE_CONTROL, v);
    }
}

/// What makes a request head ambiguous, as HAProxy refuses it: several
/// `Host` fields (which one names the authority?), or `chunked` named more
/// than once in `Transfer-Encoding` (RFC 9112 §6.1: at most once, and
/// last). hyper's server reads both, so the gateway asks this before
/// anything else. `None`: neither.
///
/// `body_follows`: the request has a body (hyper reads every request with
/// `chunked` last in `Transfer-Encoding` as having one): without one, its
/// codings are not looked up. Both checks cost nothing in the usual case
/// (callgrind: two hashed lookups on every request before).
pub fn ambiguous(headers: &HeaderMap, body_follows: bool) -> Option<&'static str> {
    // No name holds two values (O(1) to tell): one `Host` at most.
    if headers.len() != headers.keys_len() {
        let mut hosts = headers.get_all(HOST).iter();
        if hosts.next().is_some() && hosts.next().is_some() {
            return Some("several Host fields");
        }
    }
    if !body_follows {
        return None;
    }
    let chunked = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        .count();
    (chunked > 1).then_some("chunked named more than once")
}

/// The client's address as an `X-Forwarded-For` element, made once per
/// connection.
pub fn client_ip(peer: SocketAddr) -> HeaderValue {
    HeaderValue::from_str(&peer.ip().to_string()).unwrap_or(HeaderValue::from_static("unknown"))
}

/// How a client connection reached the gateway: over TLS, and from a
/// `--trusted-proxies` peer (whose `X-Forwarded-Proto` and
/// `X-Forwarded-For` are kept; anyone else's are replaced).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The connection is TLS.
    pub tls: bool,
    /// The peer is a trusted proxy.
    pub trusted: bool,
}

impl Origin {
    /// Whether the request counts as TLS for the cookie's `Secure`: the
    /// connection is, or a trusted proxy says `X-Forwarded-Proto: https`
    /// (its first element: the client's side of a chain).
    pub fn client_tls(self, headers: &HeaderMap) -> bool {
        self.tls
            || (self.trusted
                && headers.get(X_FORWARDED_PROTO).is_some_and(|v| {
                    let first = v.as_bytes().split(|&b| b == b',').next().unwrap_or(b"");
                    first.trim_ascii().eq_ignore_ascii_case(b"https")
                }))
    }
}

/// Hop-by-hop headers out, `Host`, `X-Forwarded-*` and the gateway's `Via`
/// element (for `version`, the protocol the request arrived in) in, the
/// upgrade kept when one is being proxied. `client_ip` comes from [`client_ip`].
/// `X-Forwarded-Proto` says `https` on TLS connections; from a trusted
/// proxy the forwarded headers are kept (`X-Forwarded-For` gets the peer
/// appended), from anyone else replaced. Returns whether the request now
/// has a `Host`.
pub fn prepare_request(
    headers: &mut HeaderMap,
    uri: &Uri,
    client_ip: &HeaderValue,
    upgrade: Option<&HeaderValue>,
    origin: Origin,
    version: Version,
) -> bool {
    strip_hop_by_hop(headers);
    add_via(headers, version);
    if let Some(protocol) = upgrade {
        headers.insert(UPGRADE, protocol.clone());
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    let host = match headers.get(HOST) {
        Some(host) => Some(host.clone()),
        // HTTP/2 clients send the authority instead of `Host`.
        None => match uri
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            Some(v) => {
                headers.insert(HOST, v.clone());
                Some(v)
            }
            None => None,
        },
    };
    let has_host = host.is_some();
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    let proto = HeaderValue::from_static(if origin.tls { "https" } else { "http" });
    if !origin.trusted {
        // Anyone's else are replaced: a client must not pass for TLS, or
        // for another address.
        headers.insert(X_FORWARDED_PROTO, proto);
        headers.insert(X_FORWARDED_FOR, client_ip.clone());
        return has_host;
    }
    // A trusted proxy's `X-Forwarded-Proto` is kept.
    headers.entry(X_FORWARDED_PROTO).or_insert(proto);
    // One hashed lookup, whether the proxy sent some or not.
    match headers.entry(X_FORWARDED_FOR) {
        Entry::Vacant(e) => {
            e.insert(client_ip.clone());
        }
        Entry::Occupied(mut e) => {
            let mut prior: Vec<&[u8]> = e
                .iter()
                .filter(|v| v.to_str().is_ok())
                .map(HeaderValue::as_bytes)
                .collect();
            prior.push(client_ip.as_bytes());
            if let Ok(v) = HeaderValue::from_bytes(&prior.join(&b", "[..])) {
                e.insert(v);
            }
        }
    }
    has_host
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_heads_are_told_apart_from_plain_ones() {
        let map = |fields: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (n, v) in fields {
                h.append(
                    HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            h
        };
        let two_hosts = map(&[("host", "a"), ("x", "1"), ("host", "b")]);
        assert_eq!(ambiguous(&two_hosts, false), Some("several Host fields"));
        let one_host = map(&[("host", "a"), ("x", "1"), ("x", "2")]);
        assert_eq!(ambiguous(&one_host, false), None);
        for te in [
            &[("transfer-encoding", "chunked, chunked")][..],
            &[
                ("transfer-encoding", "chunked"),
                ("transfer-encoding", "Chunked"),
            ],
        ] {
            let h = map(te);
            assert_eq!(
                ambiguous(&h, true),
                Some("chunked named more than once"),
                "{te:?}"
            );
        }
        let once = map(&[("transfer-encoding", "gzip, chunked")]);
        assert_eq!(ambiguous(&once, true), None);
    }

    #[test]
    fn hop_index_knows_every_hop_by_hop_name_and_no_other() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_index(name), Some(i), "{name}");
            assert_eq!(HOP_BY_HOP_NAMES[i], name.as_str());
        }
        for other in [HOST, http::header::COOKIE, http::header::CONTENT_LENGTH] {
            assert_eq!(hop_index(&other), None, "{other}");
        }
        let custom = HeaderName::from_static("x-pod");
        assert_eq!(hop_index(&custom), None);
    }

    #[test]
    fn connection_removes_itself_the_headers_it_names_and_no_other() {
        let mut h = HeaderMap::new();
        h.append(
            CONNECTION,
            HeaderValue::from_static("Keep-Alive, X-Secret ,close"),
        );
        h.append(CONNECTION, HeaderValue::from_static("TE"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("close", HeaderValue::from_static("1"));
        h.insert(http::header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept"]);
    }

    #[test]
    fn only_tls_or_a_trusted_proxys_https_counts_as_tls() {
        let mut h = HeaderMap::new();
        let plain = Origin::default();
        let tls = Origin {
            tls: true,
            trusted: false,
        };
        let trusted = Origin {
            tls: false,
            trusted: true,
        };
        assert!(!plain.client_tls(&h) && tls.client_tls(&h) && !trusted.client_tls(&h));
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("HTTPS , http"));
        assert!(trusted.client_tls(&h));
        assert!(
            !plain.client_tls(&h),
            "an untrusted client's word counts for nothing"
        );
        h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http, https"));
        assert!(
            !trusted.client_tls(&h),
            "the first element is the client's side"
        );
    }

    #[test]
    fn untrusted_forwarded_headers_are_replaced_and_trusted_ones_kept() {
        let ip = HeaderValue::from_static("192.0.2.1");
        let uri = Uri::from_static("/");
        let sent = || {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_static("shop.example"));
            h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
            h.insert(X_FORWARDED_FOR, HeaderValue::from_static("203.0.113.9"));
            h
        };
        let mut h = sent();
        let tls = Origin {
            tls: true,
            trusted: false,
        };
        prepare_request(&mut h, &uri, &ip, None, Origin::default(), Version::HTTP_11);
        assert_eq!(h[X_FORWARDED_PROTO], "http");
        assert_eq!(h[X_FORWARDED_FOR], "192.0.2.1");
        let mut h = sent();
        h.remove(X_FORWARDED_PROTO);
        prepare_request(&mut h, &uri, &ip, None, tls, Version::HTTP_11);
        assert_eq!(h[X_FORWARDED_PROTO], "https");
        let mut h = sent();
        let trusted = Origin {
            tls: false,
            trusted: true,
        };
        prepare_request(&mut h, &uri, &ip, None, trusted, Version::HTTP_11);
        assert_eq!(h[X_FORWARDED_PROTO], "https");
        assert_eq!(h[X_FORWARDED_FOR], "203.0.113.9, 192.0.2.1");
    }

    #[test]
    fn via_gets_this_gateways_element_appended_and_a_return_is_recognised() {
        let ip = HeaderValue::from_static("192.0.2.1");
        let uri = Uri::from_static("/");
        let name = via_pseudonym();
        assert!(
            name.starts_with("tower-sticky-") && name.len() == 21,
            "{name}"
        );
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("shop.example"));
        assert!(!looped(&h));
        prepare_request(&mut h, &uri, &ip, None, Origin::default(), Version::HTTP_2);
        assert_eq!(h[VIA], format!("2 {name}").as_str());
        assert!(looped(&h), "the request came back");

        let mut h = HeaderMap::new();
        h.append(
            VIA,
            HeaderValue::from_static("1.0 fred, 1.1 p.example (Apache/1.1)"),
        );
        h.append(VIA, HeaderValue::from_static("1.1 other"));
        assert!(!looped(&h));
        prepare_request(&mut h, &uri, &ip, None, Origin::default(), Version::HTTP_11);
        let all: Vec<&HeaderValue> = h.get_all(VIA).iter().collect();
        assert_eq!(
            all,
            [format!("1.0 fred, 1.1 p.example (Apache/1.1), 1.1 other, 1.1 {name}").as_str()]
        );
        assert!(looped(&h));

        // Only the received-by part counts, in any element of any line.
        for (via, hit) in [
            (format!("1.1 a, 1.1  {name} (x)"), true),
            (format!("1.1 {name}x"), false),
            (format!("1.1 a ({name})"), false),
            (name.to_owned(), false),
        ] {
            let mut h = HeaderMap::new();
            h.append(VIA, HeaderValue::from_static("1.1 first"));
            if let Ok(v) = HeaderValue::from_str(&via) {
                h.append(VIA, v);
            }
            assert_eq!(looped(&h), hit, "{via}");
        }
    }

    #[test]
    fn connection_never_removes_host() {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("shop.example"));
        h.insert(CONNECTION, HeaderValue::from_static("Host, x-a"));
        h.insert("x-a", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["host"]);
    }

    fn cache_control_after(values: &[&'static str]) -> String {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(CACHE_CONTROL, HeaderValue::from_static(v));
        }
        make_private(&mut h);
        let all: Vec<&str> = h
            .get_all(CACHE_CONTROL)
            .iter()
            .map(|v| v.to_str().expect("text"))
            .collect();
        assert_eq!(all.len(), 1, "{all:?}");
        all[0].to_owned()
    }

    #[test]
    fn an_issued_session_makes_the_response_private() {
        assert_eq!(cache_control_after(&[]), "private");
        assert_eq!(
            cache_control_after(&["public, max-age=600"]),
            "private, max-age=600"
        );
        assert_eq!(
            cache_control_after(&["PUBLIC", "s-maxage=60, max-age=5"]),
            "private, max-age=5"
        );
        assert_eq!(cache_control_after(&["no-store"]), "no-store");
        assert_eq!(
            cache_control_after(&["private, max-age=0"]),
            "private, max-age=0"
        );
        assert_eq!(
            cache_control_after(&["no-cache=\"set-cookie\""]),
            "private, no-cache=\"set-cookie\""
        );
    }

    #[test]
    fn only_the_backends_own_session_cookie_is_stripped() {
        let policy = SessionPolicy::cookie("Session-A").expect("policy");
        let mut h = HeaderMap::new();
        for v in [
            "Session-A=evil; Path=/",
            "Session-AB=kept",
            " Session-A =also-evil",
            "session-a=kept-other-case",
            "theme=dark",
        ] {
            h.append(SET_COOKIE, HeaderValue::from_static(v));
        }
        strip_session(&mut h, &policy);
        let left: Vec<&str> = h
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().expect("text"))
            .collect();
        assert_eq!(
            left,
            ["Session-AB=kept", "session-a=kept-other-case", "theme=dark"]
        );

        let policy = SessionPolicy::header("Session-A").expect("policy");
        let mut h = HeaderMap::new();
        h.insert("session-a", HeaderValue::from_static("evil"));
        h.insert(SET_COOKIE, HeaderValue::from_static("Session-A=kept"));
        strip_session(&mut h, &policy);
        assert_eq!(h.get("session-a"), None);
        assert!(h.contains_key(SET_COOKIE));
    }
}
