use crate::sticky::Pinned;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Uri};
use std::net::SocketAddr;

/// How to reach a backend: the scheme and authority a request to it
/// carries in its URI.
pub trait Upstream {
    /// `http` unless the target says otherwise.
    fn scheme(&self) -> Scheme {
        Scheme::HTTP
    }

    /// `host:port`.
    fn authority(&self) -> Authority;
}

impl Upstream for SocketAddr {
    fn authority(&self) -> Authority {
        // A socket address always renders as a valid authority
        // (`1.2.3.4:80`, `[::1]:80`).
        Authority::try_from(self.to_string()).expect("a socket address is an authority")
    }
}

impl Upstream for Authority {
    fn authority(&self) -> Authority {
        self.clone()
    }
}

impl<U: Upstream> Upstream for (Scheme, U) {
    fn scheme(&self) -> Scheme {
        self.0.clone()
    }

    fn authority(&self) -> Authority {
        self.1.authority()
    }
}

/// Points `req` at `upstream`: its URI becomes
/// `scheme://authority/path?query` (the path and query kept), and when the
/// client sent no `Host` (HTTP/2 carries it in the URI), the URI's former
/// authority becomes the `Host`, so the backend sees the host the client
/// asked for, never the backend's address.
pub fn point_at<B, U: Upstream + ?Sized>(req: &mut Request<B>, upstream: &U) {
    let path = req
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    if !req.headers().contains_key(http::header::HOST)
        && let Some(host) = req.uri().authority()
        && let Ok(value) = HeaderValue::from_str(host.as_str())
    {
        req.headers_mut().insert(http::header::HOST, value);
    }
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(upstream.scheme());
    parts.authority = Some(upstream.authority());
    parts.path_and_query = Some(path);
    *req.uri_mut() = Uri::from_parts(parts).expect("scheme, authority and path make a URI");
}

/// [`point_at`] the backend the layer pinned `req` to (its [`Pinned`]
/// extension); false, and nothing changed, when there is none.
///
/// ```
/// use std::net::SocketAddr;
/// use tower_sticky::forward::point_at_pinned;
///
/// // Inside the inner service of a `StickyLayer<SocketAddr>`:
/// fn forward(mut req: http::Request<()>) -> http::Request<()> {
///     assert!(point_at_pinned::<_, SocketAddr>(&mut req), "behind the layer");
///     req
/// }
/// ```
pub fn point_at_pinned<B, T>(req: &mut Request<B>) -> bool
where
    T: Upstream + Send + Sync + 'static,
{
    let Some(pinned) = req.extensions().get::<Pinned<T>>().cloned() else {
        return false;
    };
    point_at(req, pinned.target());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http2_request_keeps_its_authority_as_host_and_schemes_follow_the_target() {
        // HTTP/2: the authority is in the URI, no Host header.
        let mut req = Request::builder()
            .uri("https://shop.example/a?b=1")
            .body(())
            .unwrap();
        let target = (Scheme::HTTPS, Authority::from_static("pod-a.internal:8443"));
        point_at(&mut req, &target);
        assert_eq!(req.uri(), "https://pod-a.internal:8443/a?b=1");
        assert_eq!(req.headers()["host"], "shop.example");

        // IPv6 targets render as authorities; no Host is invented.
        let mut req = Request::builder().uri("/").body(()).unwrap();
        let v6: SocketAddr = "[::1]:3000".parse().unwrap();
        point_at(&mut req, &v6);
        assert_eq!(req.uri(), "http://[::1]:3000/");
        assert!(req.headers().get("host").is_none());
        assert!(
            !point_at_pinned::<_, SocketAddr>(&mut req),
            "not behind the layer"
        );
    }
}
