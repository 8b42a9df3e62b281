//! GRPCRoutes validate into the same typed rules as HTTPRoutes: each method
//! match becomes the path match a gRPC call's `/{service}/{method}` meets,
//! errors name the GRPCRoute's own fields, and sessions are named after
//! the GRPCRoute.

use proptest::prelude::*;
use tower_sticky::policy::PersistenceType;
use tower_sticky::route::{GrpcRoute, PathMatcher, Resource, Route};

const HEAD: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: chat, namespace: apps}\nspec:\n";

fn grpc(spec: &str) -> GrpcRoute {
    serde_saphyr::from_str(&format!("{HEAD}{spec}")).unwrap()
}

fn valid(spec: &str) -> Route {
    grpc(spec).validate().unwrap()
}

/// The field and reason `spec` is refused with.
fn refused(spec: &str) -> (String, String) {
    let err = grpc(spec).validate().unwrap_err();
    (err.field().to_owned(), err.reason().to_owned())
}

/// The one match of the one rule of a route with `method: {method}`.
fn matcher(method: &str) -> PathMatcher {
    let route = valid(&format!(
        "  rules: [{{matches: [{{method: {method}}}], backendRefs: [{{name: chat, port: 50051}}]}}]\n"
    ));
    route.rules()[0].matches()[0].path().clone()
}

#[test]
fn exact_service_and_method_is_one_path() {
    let m = matcher("{service: chat.v1.Chat, method: Join}");
    assert!(matches!(&m, PathMatcher::Exact(p) if p == "/chat.v1.Chat/Join"));
    assert!(m.matches("/chat.v1.Chat/Join"));
    assert!(!m.matches("/chat.v1.Chat/Leave"));
    assert!(!m.matches("/chat.v1.Chat/Join/x"));
    // A leading dot (a fully qualified protobuf name) is not on the wire.
    let dotted = matcher("{service: .chat.v1.Chat, method: Join}");
    assert!(dotted.matches("/chat.v1.Chat/Join"));
}

#[test]
fn exact_service_alone_is_every_method_of_it() {
    let m = matcher("{service: chat.v1.Chat}");
    assert!(matches!(&m, PathMatcher::PathPrefix(p) if p == "/chat.v1.Chat"));
    assert!(m.matches("/chat.v1.Chat/Join"));
    assert!(m.matches("/chat.v1.Chat/Leave"));
    assert!(!m.matches("/chat.v1.ChatAdmin/Join"));
    assert!(!m.matches("/other.Chat/Join"));
}

#[test]
fn exact_method_alone_is_that_method_of_any_service() {
    let m = matcher("{method: Join}");
    assert!(m.matches("/chat.v1.Chat/Join"));
    assert!(m.matches("/lobby.Lobby/Join"));
    assert!(!m.matches("/chat.v1.Chat/JoinAll"));
    assert!(!m.matches("/Join"));
    assert!(!m.matches("/a/b/Join"));
}

#[test]
fn regular_expressions_cover_service_and_method() {
    let m = matcher(
        "{type: RegularExpression, service: 'chat\\.v[0-9]+\\.Chat', method: 'Join|Leave'}",
    );
    assert!(m.matches("/chat.v1.Chat/Join"));
    assert!(m.matches("/chat.v12.Chat/Leave"));
    assert!(!m.matches("/chat.v1.Chat/Send"));
    assert!(!m.matches("/chatXv1.Chat/Join"));
    let any_service = matcher("{type: RegularExpression, method: 'Get.*'}");
    assert!(any_service.matches("/a.B/GetUser"));
    assert!(!any_service.matches("/a.B/ListUsers"));
}

#[test]
fn no_matches_means_every_call() {
    let route = valid("  rules: [{backendRefs: [{name: chat, port: 50051}]}]\n");
    let m = route.rules()[0].matches()[0].path();
    assert!(m.matches("/anything.At/All"));
}

#[test]
fn headers_hostnames_and_backends_are_typed_as_for_http() {
    let route = valid(
        r#"  hostnames: [chat.example.com]
  rules:
    - name: join
      matches:
        - method: {service: chat.v1.Chat}
          headers: [{name: x-tenant, value: blue}]
      backendRefs: [{name: chat, port: 50051, weight: 3}]
"#,
    );
    assert_eq!((route.namespace(), route.name()), ("apps", "chat"));
    assert!(route.hostnames()[0].matches("chat.example.com"));
    let rule = &route.rules()[0];
    assert_eq!(rule.name(), Some("join"));
    let (name, value) = &rule.matches()[0].headers()[0];
    assert_eq!(name, "x-tenant");
    assert!(value.matches("blue") && !value.matches("green"));
    assert_eq!(rule.backend_refs()[0].weight(), 3);
}

#[test]
fn sessions_are_named_after_the_grpcroute_and_scoped_to_the_service() {
    let route = valid(
        r#"  rules:
    - matches: [{method: {service: chat.v1.Chat}}]
      backendRefs: [{name: chat, port: 50051}]
      sessionPersistence: {type: Cookie}
    - name: lobby
      matches: [{method: {service: lobby.Lobby, method: Join}}]
      backendRefs: [{name: lobby, port: 50051}]
      sessionPersistence: {type: Header}
"#,
    );
    let chat = route.rules()[0].session_policy().unwrap();
    assert_eq!(chat.name(), "grpcroute-apps-chat-rule-0");
    assert_eq!(chat.kind(), PersistenceType::Cookie);
    assert_eq!(chat.cookie_path(), "/chat.v1.Chat");
    let lobby = route.rules()[1].session_policy().unwrap();
    assert_eq!(lobby.name(), "grpcroute-apps-chat-rule-lobby");
    assert_eq!(lobby.kind(), PersistenceType::Header);
}

#[test]
fn refusals_name_the_grpcroute_field() {
    let backends = "backendRefs: [{name: chat, port: 50051}]";
    for (method, field, reason) in [
        (
            "{type: Exact}",
            "spec.rules[0].matches[0].method",
            "must give service, method or both",
        ),
        (
            "{type: RegularExpression}",
            "spec.rules[0].matches[0].method",
            "must give service, method or both",
        ),
        (
            "{service: 'chat v1'}",
            "spec.rules[0].matches[0].method.service",
            "must be a fully qualified protobuf service name, got \"chat v1\"",
        ),
        (
            "{service: 1chat}",
            "spec.rules[0].matches[0].method.service",
            "must be a fully qualified protobuf service name, got \"1chat\"",
        ),
        (
            "{method: Join/x}",
            "spec.rules[0].matches[0].method.method",
            "must be a protobuf method name, got \"Join/x\"",
        ),
        (
            "{type: Prefix, service: a}",
            "spec.rules[0].matches[0].method.type",
            "must be Exact or RegularExpression, got \"Prefix\"",
        ),
    ] {
        let (f, r) = refused(&format!(
            "  rules: [{{matches: [{{method: {method}}}], {backends}}}]\n"
        ));
        assert_eq!((f.as_str(), r.as_str()), (field, reason), "method {method}");
    }
    let (f, r) = refused(&format!(
        "  rules: [{{matches: [{{method: {{type: RegularExpression, method: 'a('}}}}], {backends}}}]\n"
    ));
    assert_eq!(f, "spec.rules[0].matches[0].method.method");
    assert!(r.starts_with("invalid regular expression \"a(\""), "{r}");
    let (f, _) = refused(&format!(
        "  rules: [{{matches: [{{headers: [{{name: 'bad name', value: x}}]}}], {backends}}}]\n"
    ));
    assert_eq!(f, "spec.rules[0].matches[0].headers[0].name");
    let (f, _) = refused("  rules: [{backendRefs: [{name: chat}]}]\n");
    assert_eq!(f, "spec.rules[0].backendRefs[0].port");
    let (f, _) = refused(&format!(
        "  rules: [{{sessionPersistence: {{absoluteTimeout: 1x}}, {backends}}}]\n"
    ));
    assert!(f.starts_with("spec.rules[0].sessionPersistence"), "{f}");

    let mut http_kind = grpc("  rules: []\n");
    http_kind.kind = "HTTPRoute".into();
    assert_eq!(http_kind.validate().unwrap_err().field(), "kind");
    let mut old = grpc("  rules: []\n");
    old.api_version = "gateway.networking.k8s.io/v1beta1".into();
    assert_eq!(old.validate().unwrap_err().field(), "apiVersion");
    let alpha: GrpcRoute = serde_saphyr::from_str(&format!(
        "{}  rules: [{{{backends}}}]\n",
        HEAD.replace("/v1\n", "/v1alpha2\n")
    ))
    .unwrap();
    assert!(alpha.validate().is_ok());
}

#[test]
fn a_manifest_stream_reads_grpcroutes_in_one_pass() {
    let docs: Vec<Resource> = serde_saphyr::from_multiple(&format!(
        "apiVersion: v1\nkind: Service\nspec: {{ports: [{{port: 50051}}]}}\n---\n{HEAD}  rules: [{{matches: [{{method: {{service: chat.v1.Chat}}}}], backendRefs: [{{name: chat, port: 50051}}]}}]\n"
    ))
    .unwrap();
    assert_eq!(docs[1].kind(), Some("GRPCRoute"));
    assert!(docs[1].http_route().is_none());
    let route = docs[1].grpc_route().unwrap().validate().unwrap();
    assert!(
        route.rules()[0].matches()[0]
            .path()
            .matches("/chat.v1.Chat/Send")
    );
    // A GRPCRoute's own schema errors are errors, not a skipped document.
    let bad = serde_saphyr::from_str::<Resource>(&format!(
        "{HEAD}  rules: [{{matches: [{{method: not-a-map}}]}}]\n"
    ));
    assert!(bad.is_err());
}

fn identifier() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,12}"
}

proptest! {
    /// An exact service-and-method match meets exactly its own path, and a
    /// service-only match every method of that service and no other.
    #[test]
    fn exact_matches_only_their_own_calls(
        pkg in identifier(), svc in identifier(), method in identifier(), other in identifier(),
    ) {
        let service = format!("{pkg}.{svc}");
        let one = matcher(&format!("{{service: '{service}', method: '{method}'}}"));
        let own = format!("/{service}/{method}");
        prop_assert!(one.matches(&own));
        prop_assert_eq!(one.matches(&format!("/{service}/{other}")), other == method);
        let all = matcher(&format!("{{service: '{service}'}}"));
        let any_method = format!("/{service}/{other}");
        prop_assert!(all.matches(&any_method));
        prop_assert_eq!(all.matches(&format!("/{pkg}.{other}/{method}")), other == svc);
    }
}
