//! GRPCRoute precedence, on the path matches the library turns method
//! matches into ([`tower_sticky::route::GrpcRoute::validate`]).
//!
//! The GRPCRoute spec ranks a matching rule by, in order: the hostname (as
//! for HTTPRoute), the characters of a matching `service`, the characters
//! of a matching `method`, then the number of header matches; then the
//! oldest route, `{namespace}/{name}`, rule order. Only `Exact` names count
//! characters: a `RegularExpression` says nothing about how specific it is
//! by its length, so it ranks with "no service/method given" and above
//! only no match at all (it still has to match).
//!
//! A GRPCRoute matches only gRPC requests (`content-type:
//! application/grpc…`), and for a gRPC request a matching GRPCRoute rule
//! beats every HTTPRoute rule on the same hostname: an HTTPRoute catches
//! gRPC only where no GRPCRoute does.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, Request};
use tower_sticky::route::PathMatcher;

/// Whether `req` is a gRPC call (`application/grpc`, `+proto`, `+json`, …).
pub fn is_grpc<B>(req: &Request<B>) -> bool {
    is_grpc_headers(req.headers())
}

/// [`is_grpc`] on a header map.
pub fn is_grpc_headers(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_some_and(|v| {
        let v = v.as_bytes();
        v.len() >= 16
            && v[..16].eq_ignore_ascii_case(b"application/grpc")
            && matches!(v.get(16), None | Some(b'+' | b';'))
    })
}

/// The characters of the `Exact` service and method a GRPCRoute match's
/// path stands for (see the table in the library's `GrpcRoute::validate`):
/// `Exact /{s}/{m}`, `PathPrefix /{s}`, `RegularExpression /[^/]+/{m}`;
/// `(0, 0)` for every method, or a regular expression of the route's own.
pub fn service_method_chars(path: &PathMatcher) -> (usize, usize) {
    match path {
        PathMatcher::Exact(p) => match p[1..].split_once('/') {
            Some((s, m)) => (s.len(), m.len()),
            None => (0, 0),
        },
        PathMatcher::PathPrefix(p) if p != "/" => (p.len() - 1, 0),
        PathMatcher::RegularExpression(r) => match r.as_str().strip_prefix("/[^/]+/") {
            // An `Exact` method alone: a plain identifier follows.
            Some(m) if m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => (0, m.len()),
            _ => (0, 0),
        },
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sticky::route::GrpcRoute;

    fn path(method: &str) -> PathMatcher {
        let route: GrpcRoute = serde_json::from_str(&format!(
            r#"{{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
                "metadata": {{"name": "r"}},
                "spec": {{"rules": [{{"matches": [{{"method": {method}}}],
                          "backendRefs": [{{"name": "b", "port": 1}}]}}]}}}}"#
        ))
        .unwrap();
        route.validate().unwrap().rules()[0].matches()[0]
            .path()
            .clone()
    }

    #[test]
    fn only_exact_names_count_characters() {
        let chars = |m: &str| service_method_chars(&path(m));
        assert_eq!(
            chars(r#"{"service": "chat.v1.Chat", "method": "Join"}"#),
            (12, 4)
        );
        assert_eq!(chars(r#"{"service": "chat.v1.Chat"}"#), (12, 0));
        assert_eq!(chars(r#"{"method": "Join"}"#), (0, 4));
        let regex = r#"{"type": "RegularExpression", "service": "chat\\..*", "method": "Join"}"#;
        assert_eq!(chars(regex), (0, 0));
        let regex_method = r#"{"type": "RegularExpression", "method": "Join"}"#;
        assert_eq!(chars(regex_method), (0, 0));
    }

    /// A router over one GRPCRoute whose rule `i` has the match `matches[i]`
    /// (a JSON `matches[]` entry), plus an HTTPRoute rule for every path.
    fn router(matches: &[&str]) -> crate::route::Router {
        use crate::route::{Entry, Router};
        use tower_sticky::route::HttpRoute;
        let rules: Vec<String> = matches
            .iter()
            .map(|m| {
                format!(r#"{{"matches": [{m}], "backendRefs": [{{"name": "b", "port": 1}}]}}"#)
            })
            .collect();
        let route: GrpcRoute = serde_json::from_str(&format!(
            r#"{{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GRPCRoute",
                "metadata": {{"name": "r"}}, "spec": {{"rules": [{}]}}}}"#,
            rules.join(",")
        ))
        .unwrap();
        let route = route.validate().unwrap();
        let mut router = Router::default();
        for (i, rule) in route.rules().iter().enumerate() {
            for m in rule.matches() {
                router.push(Entry::new(i, Vec::new().into(), m.clone()).grpc());
            }
        }
        let http: HttpRoute = serde_json::from_str(
            r#"{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "web"},
                "spec": {"rules": [{"backendRefs": [{"name": "w", "port": 1}]}]}}"#,
        )
        .unwrap();
        let http = http.validate().unwrap();
        router.push(Entry::new(
            99,
            Vec::new().into(),
            http.rules()[0].matches()[0].clone(),
        ));
        router
    }

    fn call(path: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::post(path).header("content-type", "application/grpc");
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn grpcroute_precedence_is_service_then_method_characters_then_headers() {
        let r = router(&[
            r#"{"method": {"method": "Join"}}"#,
            r#"{"method": {"type": "RegularExpression", "service": "chat\\..*"}}"#,
            r#"{"method": {"service": "chat.v1.Chat"}}"#,
            r#"{"method": {"service": "chat.v1.Chat", "method": "Join"}}"#,
            r#"{"method": {"service": "chat.v1.Chat"}, "headers": [{"name": "x-canary", "value": "1"}]}"#,
        ]);
        // Exact service and method: the most characters.
        assert_eq!(r.find(&call("/chat.v1.Chat/Join", &[])), Some(3));
        // Service characters before method characters, then headers.
        assert_eq!(r.find(&call("/chat.v1.Chat/Leave", &[])), Some(2));
        assert_eq!(
            r.find(&call("/chat.v1.Chat/Leave", &[("x-canary", "1")])),
            Some(4)
        );
        // An exact method beats a regular expression on the service.
        assert_eq!(r.find(&call("/chat.v2.Chat/Join", &[])), Some(0));
        assert_eq!(r.find(&call("/chat.v2.Chat/Leave", &[])), Some(1));
        // A gRPC call no GRPCRoute rule matches falls to the HTTPRoute.
        assert_eq!(r.find(&call("/other.Svc/Join2", &[])), Some(99));
        // A request that is not gRPC never matches a GRPCRoute.
        let plain = Request::post("/chat.v1.Chat/Join").body(()).unwrap();
        assert_eq!(r.find(&plain), Some(99));
    }

    #[test]
    fn grpc_is_the_content_type_and_its_subtypes() {
        let with = |ct: &str| {
            let req = Request::builder()
                .header("content-type", ct)
                .body(())
                .unwrap();
            is_grpc(&req)
        };
        assert!(with("application/grpc"));
        assert!(with("application/grpc+proto"));
        assert!(with("Application/GRPC+json"));
        assert!(!with("application/grpc-web"));
        assert!(!with("application/json"));
        assert!(!is_grpc(&Request::new(())));
    }
}
