//! HTTPRoutes validate into typed rules: what a proxy's matcher gets, and
//! what validation refuses (field by field, regular expressions included).

use http::{HeaderName, Method};
use tower_sticky::route::{Hostname, HttpRoute, PathMatcher, Resource, ValueMatcher};

const HEAD: &str =
    "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: shop}\nspec:\n";

fn route(spec: &str) -> HttpRoute {
    serde_saphyr::from_str(&format!("{HEAD}{spec}")).unwrap()
}

/// The field and reason `spec` is refused with.
fn refused(spec: &str) -> (String, String) {
    let err = route(spec).validate().unwrap_err();
    (err.field().to_owned(), err.reason().to_owned())
}

#[test]
fn matches_arrive_typed() {
    let r = route(
        r#"  hostnames: [www.example.com, "*.example.org"]
  rules:
    - name: cart
      matches:
        - path: {type: PathPrefix, value: /cart/}
          method: POST
          headers: [{name: X-Version, value: "2"}, {type: RegularExpression, name: x-tenant, value: "a|b"}]
          queryParams: [{name: Debug, value: "1"}]
        - path: {type: Exact, value: /checkout}
        - path: {type: RegularExpression, value: "/api/v[0-9]+"}
      backendRefs: [{name: backend, port: 3000}]
    - backendRefs: [{name: backend, port: 3000}]
"#,
    )
    .validate()
    .unwrap();
    assert_eq!(r.name(), "shop");
    assert_eq!(r.namespace(), "default");
    assert_eq!(
        r.hostnames(),
        [
            Hostname::Exact("www.example.com".into()),
            Hostname::Wildcard(".example.org".into())
        ]
    );
    assert!(r.hostnames()[1].matches("a.example.org"));
    assert!(r.hostnames()[1].matches("a.b.example.org"));
    assert!(!r.hostnames()[1].matches("example.org"));

    let cart = &r.rules()[0];
    assert_eq!(cart.name(), Some("cart"));
    assert!(cart.session_policy().is_none());
    let m = &cart.matches()[0];
    // A trailing slash does not count: `/cart/` is the prefix `/cart`.
    assert!(matches!(m.path(), PathMatcher::PathPrefix(p) if p == "/cart"));
    assert!(m.path().matches("/cart") && m.path().matches("/cart/1"));
    assert!(!m.path().matches("/carts"));
    assert_eq!(m.method(), Some(&Method::POST));
    let (name, value) = &m.headers()[0];
    assert_eq!(name, HeaderName::from_static("x-version"));
    assert!(matches!(value, ValueMatcher::Exact(v) if v == "2"));
    let (name, value) = &m.headers()[1];
    assert_eq!(name, HeaderName::from_static("x-tenant"));
    // Whole values only: the pattern is anchored.
    assert!(value.matches("a") && value.matches("b"));
    assert!(!value.matches("ab") && !value.matches("xa"));
    assert_eq!(m.query_params()[0].0, "Debug");

    assert!(matches!(cart.matches()[1].path(), PathMatcher::Exact(p) if p == "/checkout"));
    assert!(!cart.matches()[1].path().matches("/checkout/x"));
    let regex = cart.matches()[2].path();
    assert!(matches!(regex, PathMatcher::RegularExpression(p) if p.as_str() == "/api/v[0-9]+"));
    assert!(regex.matches("/api/v12"));
    assert!(!regex.matches("/api/v12/users"), "the whole path");

    // No matches: the spec's default, PathPrefix /.
    let default = &r.rules()[1];
    assert_eq!(default.name(), None);
    assert_eq!(default.matches().len(), 1);
    assert!(matches!(default.matches()[0].path(), PathMatcher::PathPrefix(p) if p == "/"));
    assert!(default.matches()[0].path().matches("/anything"));
}

#[test]
fn invalid_regular_expressions_fail_validation() {
    let (field, reason) = refused(
        "  rules:\n    - matches: [{path: {type: RegularExpression, value: \"/a([\"}}]\n      backendRefs: [{name: b, port: 1}]\n",
    );
    assert_eq!(field, "spec.rules[0].matches[0].path.value");
    assert!(
        reason.starts_with("invalid regular expression \"/a([\""),
        "{reason}"
    );
    assert!(!reason.contains('\n'), "one line: {reason:?}");
    let (field, _) = refused(
        "  rules:\n    - matches: [{headers: [{type: RegularExpression, name: x, value: \"(\"}]}]\n      backendRefs: [{name: b, port: 1}]\n",
    );
    assert_eq!(field, "spec.rules[0].matches[0].headers[0].value");
    let (field, _) = refused(
        "  rules:\n    - matches: [{}, {queryParams: [{type: RegularExpression, name: q, value: \"a{2,1}\"}]}]\n      backendRefs: [{name: b, port: 1}]\n",
    );
    assert_eq!(field, "spec.rules[0].matches[1].queryParams[0].value");
}

#[test]
fn each_bad_match_names_its_field() {
    let rule = |m: &str| {
        format!("  rules:\n    - matches: [{m}]\n      backendRefs: [{{name: b, port: 1}}]\n")
    };
    for (m, field) in [
        ("{method: FETCH}", "spec.rules[0].matches[0].method"),
        ("{method: get}", "spec.rules[0].matches[0].method"),
        (
            "{headers: [{name: \"a b\", value: x}]}",
            "spec.rules[0].matches[0].headers[0].name",
        ),
        (
            "{headers: [{type: Prefix, name: a, value: x}]}",
            "spec.rules[0].matches[0].headers[0].type",
        ),
        (
            "{queryParams: [{name: \"\", value: x}]}",
            "spec.rules[0].matches[0].queryParams[0].name",
        ),
        (
            "{path: {type: Exact, value: nope}}",
            "spec.rules[0].matches[0].path.value",
        ),
        (
            "{path: {type: Prefix, value: /}}",
            "spec.rules[0].matches[0].path.type",
        ),
    ] {
        assert_eq!(refused(&rule(m)).0, field, "{m}");
    }
}

#[test]
fn rule_names_follow_gep_995() {
    let two = |a: &str, b: &str| {
        format!(
            "  rules:\n    - name: {a}\n      backendRefs: [{{name: b, port: 1}}]\n    - name: {b}\n      backendRefs: [{{name: b, port: 1}}]\n"
        )
    };
    let r = route(&two("read", "write.v2")).validate().unwrap();
    let names: Vec<_> = r.rules().iter().map(|r| r.name()).collect();
    assert_eq!(names, [Some("read"), Some("write.v2")]);
    assert_eq!(refused(&two("read", "Write")).0, "spec.rules[1].name");
    assert_eq!(refused(&two("-read", "write")).0, "spec.rules[0].name");
    let (field, reason) = refused(&two("same", "same"));
    assert_eq!(field, "spec.rules[1].name");
    assert!(reason.contains("unique"), "{reason}");
}

#[test]
fn session_policy_per_rule_with_the_derived_cookie_path() {
    let r = route(
        "  rules:\n    - matches: [{path: {value: /a}}]\n      backendRefs: [{name: b, port: 1}]\n      sessionPersistence: {sessionName: S}\n    - matches: [{path: {value: /b}}]\n      backendRefs: [{name: b, port: 1}]\n",
    )
    .validate()
    .unwrap();
    let p = r.rules()[0].session_policy().unwrap();
    assert_eq!((p.name(), p.cookie_path()), ("S", "/a"));
    assert!(r.rules()[1].session_policy().is_none());
}

#[test]
fn one_pass_per_document_skips_other_kinds() {
    let docs: Vec<Resource> = serde_saphyr::from_multiple(
        "apiVersion: v1\nkind: Service\nspec:\n  ports: [{port: 80}]\n  rules: not-a-list\n---\n\
         apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  rules: [{backendRefs: [{name: b, port: 1}]}]\n---\n\
         just: a mapping\n",
    )
    .unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[0].kind(), Some("Service"));
    assert!(docs[0].http_route().is_none());
    let route = docs[1].http_route().unwrap();
    assert_eq!(route.validate().unwrap().name(), "r");
    assert_eq!(docs[2].kind(), None);
    // An HTTPRoute's own schema errors are still errors.
    let bad = serde_saphyr::from_str::<Resource>("kind: HTTPRoute\nspec:\n  rules: not-a-list\n");
    assert!(bad.is_err());
}

#[test]
fn route_refusals_carry_their_kind() {
    use tower_sticky::policy::PolicyErrorKind::{self, *};
    let backend = |b: &str| format!("  rules:\n    - backendRefs: [{b}]\n");
    let kind = |spec: &str| -> (String, PolicyErrorKind) {
        let err = route(spec).validate().unwrap_err();
        (err.field().to_owned(), err.kind())
    };
    for (spec, field, expected) in [
        (
            backend("{name: b, kind: Bucket, port: 1}"),
            "spec.rules[0].backendRefs[0].kind",
            Unsupported,
        ),
        (
            backend("{name: b}"),
            "spec.rules[0].backendRefs[0].port",
            Missing,
        ),
        (
            backend("{name: b, port: 1, weight: 1000001}"),
            "spec.rules[0].backendRefs[0].weight",
            OutOfRange,
        ),
        ("  rules: []\n".to_owned(), "spec.rules", Missing),
        (
            "  hostnames: [\"Shop.Example\"]\n  rules: [{}]\n".to_owned(),
            "spec.hostnames[0]",
            Invalid,
        ),
        (
            "  rules:\n    - name: a\n    - name: a\n".to_owned(),
            "spec.rules[1].name",
            Conflict,
        ),
        (
            "  rules:\n    - matches: [{path: {type: RegularExpression, value: \"(\"}}]\n"
                .to_owned(),
            "spec.rules[0].matches[0].path.value",
            Invalid,
        ),
    ] {
        assert_eq!(kind(&spec), (field.to_owned(), expected), "{spec}");
    }
}
