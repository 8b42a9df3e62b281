//! WebSocket over HTTP/2 (RFC 8441): an extended `CONNECT` with
//! `:protocol = websocket` from the client becomes an RFC 6455 upgrade to
//! the session's backend over HTTP/1.1, and the backend's `101` becomes the
//! `200` that opens the HTTP/2 stream as the tunnel. hyper offers both
//! halves: `enable_connect_protocol` on the HTTP/2 server (it sends
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL`), and an upgrade of the stream on a
//! 2xx answer to `CONNECT`. Everything between (routing, the session
//! cookie on the answer, the tunnel counted in flight) is the HTTP/1.1
//! upgrade's path in [`crate::forward`].
//!
//! The backend's `Sec-WebSocket-Accept` is not checked: the key is the
//! gateway's own, made here, and the client's side of the tunnel is
//! HTTP/2's stream, which has no such handshake (RFC 8441 §5).

use http::header::{CONNECTION, HOST, UPGRADE};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};

const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");

/// Whether `req` is an HTTP/2 extended `CONNECT` for WebSocket.
pub fn is_websocket<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_2
        && req.method() == Method::CONNECT
        && req
            .extensions()
            .get::<hyper::ext::Protocol>()
            .is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"))
}

/// Turns the extended `CONNECT` into the HTTP/1.1 handshake a backend
/// expects (RFC 8441 §5): `GET` with `Upgrade: websocket`, a fresh
/// `Sec-WebSocket-Key`, and `Host` from the `:authority`. The client's
/// `Sec-WebSocket-Version`, `-Protocol` and `-Extensions` stay.
pub fn as_http1_upgrade<B>(req: &mut Request<B>) {
    *req.method_mut() = Method::GET;
    *req.version_mut() = Version::HTTP_11;
    if !req.headers().contains_key(HOST)
        && let Some(authority) = req.uri().authority()
        && let Ok(host) = HeaderValue::from_str(authority.as_str())
    {
        req.headers_mut().insert(HOST, host);
    }
    let headers = req.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(SEC_WEBSOCKET_KEY, fresh_key());
}

/// The backend's `101` as the `200` that opens the client's stream; the
/// HTTP/1.1 handshake's own headers go. Any other answer passes as it is.
pub fn as_h2_response<B>(resp: &mut Response<B>) {
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    headers.remove(UPGRADE);
    headers.remove(CONNECTION);
    headers.remove(SEC_WEBSOCKET_ACCEPT);
}

/// 16 random bytes in base64 (RFC 6455 §4.1).
fn fresh_key() -> HeaderValue {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut raw = [0u8; 18];
    // A key the backend only echoes back hashed: its randomness protects
    // nothing of the gateway's, so a failure falls back to zeros.
    let _ = getrandom::fill(&mut raw[..16]);
    let mut key = Vec::with_capacity(24);
    for chunk in raw.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            key.push(ALPHABET[(n >> shift) as usize & 63]);
        }
    }
    // 16 bytes are 22 characters and `==`.
    key.truncate(22);
    key.extend_from_slice(b"==");
    HeaderValue::from_bytes(&key).expect("base64 is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extended_connect_becomes_an_http1_websocket_handshake() {
        let mut req = Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri("https://shop.example/chat?room=1")
            .header("sec-websocket-version", "13")
            .extension(hyper::ext::Protocol::from_static("websocket"))
            .body(())
            .expect("request");
        assert!(is_websocket(&req));
        as_http1_upgrade(&mut req);
        assert_eq!(req.method(), Method::GET);
        assert_eq!(req.version(), Version::HTTP_11);
        assert_eq!(req.headers()[HOST], "shop.example");
        assert_eq!(req.headers()[UPGRADE], "websocket");
        assert_eq!(req.headers()["sec-websocket-version"], "13");
        let key = req.headers()[SEC_WEBSOCKET_KEY].to_str().expect("text");
        assert_eq!(key.len(), 24, "{key}");
        assert!(key.ends_with("=="), "{key}");
        assert_ne!(fresh_key(), fresh_key());
        // A plain CONNECT, or another protocol, is not one.
        let plain = Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri("shop.example:443")
            .body(())
            .expect("request");
        assert!(!is_websocket(&plain));
    }

    #[test]
    fn a_101_becomes_a_200_without_the_handshake_headers() {
        let mut resp = Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "upgrade")
            .header(SEC_WEBSOCKET_ACCEPT, "x")
            .header("set-cookie", "Session-A=t")
            .body(())
            .expect("response");
        as_h2_response(&mut resp);
        assert_eq!(resp.status(), StatusCode::OK);
        let left: Vec<&str> = resp.headers().keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["set-cookie"]);
    }
}
