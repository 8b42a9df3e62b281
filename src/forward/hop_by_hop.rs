use http::HeaderMap;
use http::header::{CONNECTION, HeaderName, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};

/// The hop-by-hop headers of RFC 9110 §7.6.1 (with the legacy
/// `Keep-Alive` and `Proxy-Connection`).
const HOP_BY_HOP: [&str; 4] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
];

/// Removes the headers a proxy must not forward: `Connection` and every
/// header it names, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`,
/// `Transfer-Encoding`, `Upgrade` and the `Proxy-Authenticate`/
/// `-Authorization` pair. (A proxy that tunnels upgrades handles
/// `Upgrade` before calling this.)
///
/// ```
/// use http::HeaderMap;
/// use tower_sticky::forward::strip_hop_by_hop;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("connection", "keep-alive, x-secret".parse().unwrap());
/// headers.insert("x-secret", "1".parse().unwrap());
/// headers.insert("accept", "*/*".parse().unwrap());
/// strip_hop_by_hop(&mut headers);
/// assert_eq!(headers.len(), 1);
/// ```
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE] {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}
