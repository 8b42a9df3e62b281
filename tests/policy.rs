//! `sessionPersistence` as users write it: the seed's HTTPRoutes verbatim,
//! every schema generation, and the invalid combinations.

use tower_sticky::policy::{
    LifetimeType, PersistenceType, RuleContext, SchemaGeneration, SessionPersistence,
};
use tower_sticky::route::HttpRoute;

/// The seed's cookie HTTPRoute, verbatim: the file the example gateway
/// embeds as its default.
const SEED_COOKIE: &str = include_str!("../examples/gateway/src/config/default-route.yaml");

/// The seed's header HTTPRoute, verbatim: the file `tests/walkthrough.sh`
/// serves.
const SEED_HEADER: &str = include_str!("data/header-route.yaml");

fn route(yaml: &str) -> HttpRoute {
    serde_saphyr::from_str(yaml).unwrap()
}

fn block(yaml: &str) -> Result<SessionPersistence, String> {
    serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
}

fn validate(yaml: &str) -> Result<tower_sticky::policy::SessionPolicy, String> {
    block(yaml)?
        .validate(&RuleContext::new("httproute-default-r-rule-0"))
        .map_err(|e| e.to_string())
}

#[test]
fn seed_cookie_route_verbatim() {
    let r = route(SEED_COOKIE);
    assert_eq!(r.name(), "cookie");
    assert_eq!(r.namespace(), "default");
    assert_eq!(r.spec.rules[0].backend_refs[0].name, "backend");
    assert_eq!(r.spec.rules[0].backend_refs[0].port, Some(3000));
    let validated = r.validate().unwrap();
    let p = validated.rules()[0].session_policy().unwrap();
    assert_eq!(p.name(), "Session-A");
    assert_eq!(p.kind(), PersistenceType::Cookie);
    assert_eq!(p.lifetime(), LifetimeType::Permanent);
    assert_eq!(p.absolute_timeout().unwrap().as_millis(), 10_000);
    assert_eq!(p.idle_timeout(), None);
    assert_eq!(p.cookie_path(), "/");
    assert_eq!(p.generation(), SchemaGeneration::V1);
}

#[test]
fn seed_header_route_verbatim() {
    let validated = route(SEED_HEADER).validate().unwrap();
    let p = validated.rules()[0].session_policy().unwrap();
    assert_eq!(p.name(), "Session-A");
    assert_eq!(p.kind(), PersistenceType::Header);
    assert_eq!(p.lifetime(), LifetimeType::Session);
    assert_eq!(p.absolute_timeout().unwrap().as_millis(), 10_000);
}

#[test]
fn v1_with_idle_timeout_and_v1_6_without() {
    let p = validate("sessionName: s\nabsoluteTimeout: 1h\nidleTimeout: 30m\n").unwrap();
    assert_eq!(p.idle_timeout().unwrap().as_millis(), 1_800_000);
    assert_eq!(p.lifetime(), LifetimeType::Session);
    let p =
        validate("sessionName: s\ntype: Cookie\ncookieConfig:\n  lifetimeType: Session\n").unwrap();
    assert_eq!(p.kind(), PersistenceType::Cookie);
    assert_eq!(p.absolute_timeout(), None);
}

#[test]
fn main_branch_schema() {
    let p = validate(
        "type: Cookie\nabsoluteTimeout: 5m\ncookie:\n  name: Session-A\n  path: /app\n  lifetimeType: Permanent\n",
    )
    .unwrap();
    assert_eq!(p.name(), "Session-A");
    assert_eq!(p.cookie_path(), "/app");
    assert_eq!(p.lifetime(), LifetimeType::Permanent);
    assert_eq!(p.generation(), SchemaGeneration::Main);

    let p = validate("cookie: {}\n").unwrap();
    assert_eq!(p.cookie_path(), "/", "main-branch path defaults to /");
    assert_eq!(p.name(), "httproute-default-r-rule-0");

    let p = validate("type: Header\nheader:\n  name: X-Session\n").unwrap();
    assert_eq!(p.kind(), PersistenceType::Header);
    assert_eq!(p.name(), "X-Session");
}

#[test]
fn defaults_follow_the_spec() {
    let p = validate("{}").unwrap();
    assert_eq!(p.kind(), PersistenceType::Cookie);
    assert_eq!(p.lifetime(), LifetimeType::Session);
    assert_eq!(p.name(), "httproute-default-r-rule-0");
}

#[test]
fn generated_name_is_stable_and_unique_per_rule() {
    let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: prod}
spec:
  rules:
    - matches: [{path: {type: PathPrefix, value: /a}}]
      backendRefs: [{name: backend, port: 3000}]
      sessionPersistence: {}
    - matches: [{path: {type: PathPrefix, value: /b}}]
      backendRefs: [{name: backend, port: 3000}]
      sessionPersistence: {}
"#;
    let validated = route(yaml).validate().unwrap();
    let p: Vec<_> = validated
        .rules()
        .iter()
        .map(|r| r.session_policy().unwrap())
        .collect();
    let names: Vec<_> = p.iter().map(|p| p.name().to_owned()).collect();
    assert_eq!(
        names,
        ["httproute-prod-shop-rule-0", "httproute-prod-shop-rule-1"]
    );
    let paths: Vec<_> = p.iter().map(|p| p.cookie_path().to_owned()).collect();
    assert_eq!(paths, ["/a", "/b"]);
}

/// Each invalid block fails naming the field and the rule.
#[test]
fn invalid_combinations_name_the_field() {
    let cases = [
        (
            "sessionName: s\ncookieConfig:\n  lifetimeType: Permanent\n",
            "absoluteTimeout: AbsoluteTimeout must be specified when cookie lifetimeType is Permanent",
        ),
        (
            "cookie:\n  lifetimeType: Permanent\n",
            "absoluteTimeout: AbsoluteTimeout must be specified when cookie lifetimeType is Permanent",
        ),
        (
            "type: Header\nsessionName: s\ncookieConfig:\n  lifetimeType: Session\n",
            "cookieConfig: cookieConfig can only be set with type Cookie",
        ),
        (
            "type: Header\ncookie:\n  name: s\n",
            "cookie: cookie can only be set with type Cookie",
        ),
        (
            "type: Cookie\nheader:\n  name: s\n",
            "header: header can only be set with type Header",
        ),
        ("type: Header\nheader: {}\n", "header.name: is required"),
        (
            "type: Cookies\n",
            "type: must be Cookie or Header, got \"Cookies\"",
        ),
        (
            "absoluteTimeout: 1d\n",
            "absoluteTimeout: invalid duration \"1d\"",
        ),
        (
            "idleTimeout: 1.5h\n",
            "idleTimeout: invalid duration \"1.5h\"",
        ),
        (
            "absoluteTimeout: 0s\n",
            "absoluteTimeout: must be greater than zero",
        ),
        ("sessionName: bad name\n", "sessionName: must consist of"),
        ("cookie:\n  name: \"a;b\"\n", "cookie.name: must consist of"),
        ("cookie:\n  path: app\n", "cookie.path: must start with '/'"),
        (
            "cookieConfig:\n  lifetimeType: Forever\n",
            "cookieConfig.lifetimeType: must be Permanent or Session",
        ),
        (
            "sessionName: s\ncookie:\n  name: t\n",
            "sessionName: cannot be combined with cookie",
        ),
        (
            "cookieConfig: {}\ncookie: {}\n",
            "cookieConfig: cannot be combined with cookie",
        ),
    ];
    for (yaml, expected) in cases {
        let err = validate(yaml).unwrap_err();
        assert!(
            err.starts_with(expected),
            "{yaml:?}\n  got: {err}\n  want: {expected}"
        );
    }
    let long = format!("sessionName: {}\n", "a".repeat(129));
    assert!(
        validate(&long)
            .unwrap_err()
            .starts_with("sessionName: must be at most 128")
    );
    let ok = format!("cookie:\n  name: {}\n", "a".repeat(256));
    assert!(validate(&ok).is_ok());
    let long = format!("cookie:\n  name: {}\n", "a".repeat(257));
    assert!(
        validate(&long)
            .unwrap_err()
            .starts_with("cookie.name: must be at most 256")
    );
    let long = format!("cookie:\n  path: /{}\n", "a".repeat(1024));
    assert!(
        validate(&long)
            .unwrap_err()
            .starts_with("cookie.path: must be at most 1024")
    );
}

#[test]
fn unknown_fields_in_the_block_are_rejected_by_the_parser() {
    let err = block("sessionName: s\nabsoluteTimout: 10s\n").unwrap_err();
    assert!(err.contains("absoluteTimout"), "{err}");
}

#[test]
fn route_errors_carry_the_full_field_path() {
    let bad = SEED_COOKIE.replace("        absoluteTimeout: 10s\n", "");
    let err = route(&bad).validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        "spec.rules[0].sessionPersistence.absoluteTimeout: AbsoluteTimeout must be specified when cookie lifetimeType is Permanent"
    );
    let bad = SEED_HEADER.replace(
        "type: Header",
        "type: Header\n        cookieConfig:\n          lifetimeType: Permanent",
    );
    let err = route(&bad).validate().unwrap_err();
    assert_eq!(err.field(), "spec.rules[0].sessionPersistence.cookieConfig");

    let not_route = SEED_COOKIE.replace("kind: HTTPRoute", "kind: GRPCRoute");
    assert_eq!(route(&not_route).validate().unwrap_err().field(), "kind");
    let bad_path = SEED_COOKIE.replace("type: PathPrefix", "type: Prefix");
    let err = route(&bad_path).validate().unwrap_err();
    assert_eq!(err.field(), "spec.rules[0].matches[0].path.type");
    let no_port = SEED_COOKIE.replace("          port: 3000\n", "");
    assert_eq!(
        route(&no_port).validate().unwrap_err().field(),
        "spec.rules[0].backendRefs[0].port"
    );
}

#[test]
fn v1_cookie_path_derivation() {
    use tower_sticky::policy::PathMatchKind::*;
    let spec = SessionPersistence::default();
    for (kind, value, path) in [
        (PathPrefix, "/v2", "/v2"),
        (Exact, "/login", "/login"),
        (PathPrefix, "/", "/"),
        (RegularExpression, "/api/v[0-9]+/x", "/api"),
        (RegularExpression, "/.*", "/"),
        (RegularExpression, "^/shop/cart/(a|b)", "/shop/cart"),
    ] {
        let p = spec
            .validate(&RuleContext::new("r").path_match(kind, value))
            .unwrap();
        assert_eq!(p.cookie_path(), path, "{kind:?} {value}");
    }
}

#[test]
fn each_refusal_says_which_sort_of_rule_it_broke() {
    use tower_sticky::policy::PolicyErrorKind::{self, *};
    let kind = |yaml: &str| -> (String, PolicyErrorKind) {
        let err = block(yaml)
            .unwrap()
            .validate(&RuleContext::new("httproute-default-r-rule-0"))
            .unwrap_err();
        (err.field().to_owned(), err.kind())
    };
    for (yaml, field, expected) in [
        ("type: Sticky\n", "type", Invalid),
        ("absoluteTimeout: 10x\n", "absoluteTimeout", Invalid),
        ("absoluteTimeout: 0s\n", "absoluteTimeout", OutOfRange),
        ("idleTimeout: 0ms\n", "idleTimeout", OutOfRange),
        (
            "cookieConfig: {lifetimeType: Permanent}\n",
            "absoluteTimeout",
            Missing,
        ),
        (
            "sessionName: a\ncookie: {name: b}\n",
            "sessionName",
            Conflict,
        ),
        ("type: Header\ncookie: {name: b}\n", "cookie", Conflict),
        ("type: Header\nheader: {}\n", "header.name", Missing),
        ("sessionName: \"a b\"\n", "sessionName", Invalid),
        (
            "cookie: {name: a, path: \"/a;b\"}\n",
            "cookie.path",
            Invalid,
        ),
    ] {
        assert_eq!(kind(yaml), (field.to_owned(), expected), "{yaml}");
    }
    let long = format!("sessionName: {}\n", "a".repeat(129));
    assert_eq!(kind(&long), ("sessionName".to_owned(), OutOfRange));

    let err = tower_sticky::SessionPolicy::cookie("").unwrap_err();
    assert_eq!(err.kind(), Missing, "{err:?}");
    let err = tower_sticky::SessionPolicy::header("a\u{7f}").unwrap_err();
    assert_eq!(err.kind(), Invalid, "{err:?}");
}
