//! The gateway's own answers to a gRPC call, as gRPC statuses.
//!
//! A gRPC client reads the outcome of a call from `grpc-status`, not from
//! the HTTP status: a plain-text 503 is, to it, a protocol error
//! (`UNKNOWN`, or `INTERNAL: missing content-type`). So every answer the
//! gateway writes itself ([`super::own`]) to a gRPC call becomes a
//! *Trailers-Only* response: HTTP 200, `content-type: application/grpc`,
//! `grpc-status` and a percent-encoded `grpc-message` in the head, no body.
//!
//! The code follows gRPC's "HTTP to gRPC status code mapping": 502, 503
//! (no backend, the session's backend gone under strict sessions, a busy
//! backend) and 504 are `UNAVAILABLE` (14), which clients may retry; 404
//! (no route) is `UNIMPLEMENTED` (12), 400 is `INTERNAL` (13); anything
//! else (508, a request that looped back) is `UNKNOWN` (2), which clients
//! do not retry. The backend's own responses, trailers included,
//! pass through untouched.

use super::own::OwnText;
use crate::forward::ClientBody;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Bytes;

/// `UNAVAILABLE`.
pub const UNAVAILABLE: u8 = 14;

/// The gRPC status code for an HTTP status the gateway answered with.
pub fn code_for(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502 | 503 | 504 => UNAVAILABLE,
        _ => 2,
    }
}

/// `resp` as a gRPC status when it is one of the gateway's own answers
/// (it carries [`OwnText`]); a backend's response is returned as it is.
pub fn own_as_grpc(resp: Response<ClientBody>) -> Response<ClientBody> {
    let Some(OwnText(text)) = resp.extensions().get::<OwnText>().copied() else {
        return resp;
    };
    let code = code_for(resp.status());
    let mut grpc = Response::new(Either::Right(Full::new(Bytes::new())));
    let headers = grpc.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(message) = HeaderValue::try_from(percent_encode(text.trim_end())) {
        headers.insert("grpc-message", message);
    }
    grpc
}

/// gRPC's `grpc-message` encoding: printable ASCII but `%` as it is,
/// everything else `%XX` per byte of UTF-8.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::own;

    #[test]
    fn unavailable_answers_become_grpc_status_14_with_their_text() {
        for answer in [
            own::NO_BACKEND,
            own::PIN_UNAVAILABLE,
            own::BAD_GATEWAY,
            own::TIMEOUT,
        ] {
            let resp = own_as_grpc(own::response(answer));
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers()["content-type"], "application/grpc");
            assert_eq!(resp.headers()["grpc-status"], "14");
            assert_eq!(resp.headers()["grpc-message"], answer.1.trim_end());
            assert!(resp.headers().get("retry-after").is_none());
        }
        let no_route = own_as_grpc(own::response(own::NO_ROUTE));
        assert_eq!(no_route.headers()["grpc-status"], "12");
        let looped = own_as_grpc(own::response(own::LOOP));
        assert_eq!(looped.headers()["grpc-status"], "2");
        assert_eq!(
            looped.headers()["grpc-message"],
            "508 loop detected: the request came back to this gateway"
        );
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("a b%c\né"), "a b%25c%0A%C3%A9");
    }
}
