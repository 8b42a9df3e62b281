//! The kube-rs `gateway-api` types convert into the validated ones.
#![cfg(feature = "gateway-api")]

use gateway_api::experimental::grpcroutes::{
    GrpcRoute, GrpcRouteRules, GrpcRouteRulesSessionPersistence,
    GrpcRouteRulesSessionPersistenceType, GrpcRouteSpec,
};
use gateway_api::experimental::httproutes::{
    HttpRoute, HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesMatches,
    HttpRouteRulesMatchesPath, HttpRouteRulesMatchesPathType, HttpRouteRulesSessionPersistence,
    HttpRouteRulesSessionPersistenceCookieConfig,
    HttpRouteRulesSessionPersistenceCookieConfigLifetimeType, HttpRouteSpec,
};
use tower_sticky::policy::{LifetimeType, PersistenceType, SessionPersistence};
use tower_sticky::route::{GrpcRouteSessions, PathMatcher, Route};

fn seed_persistence() -> HttpRouteRulesSessionPersistence {
    HttpRouteRulesSessionPersistence {
        session_name: Some("Session-A".into()),
        absolute_timeout: Some("10s".into()),
        cookie_config: Some(HttpRouteRulesSessionPersistenceCookieConfig {
            lifetime_type: Some(
                HttpRouteRulesSessionPersistenceCookieConfigLifetimeType::Permanent,
            ),
        }),
        ..Default::default()
    }
}

fn http_route(persistence: HttpRouteRulesSessionPersistence) -> HttpRoute {
    let mut route = HttpRoute::new(
        "cookie",
        HttpRouteSpec {
            rules: Some(vec![HttpRouteRules {
                name: Some("v2".into()),
                matches: Some(vec![HttpRouteRulesMatches {
                    path: Some(HttpRouteRulesMatchesPath {
                        r#type: Some(HttpRouteRulesMatchesPathType::PathPrefix),
                        value: Some("/v2".into()),
                    }),
                    ..Default::default()
                }]),
                backend_refs: Some(vec![HttpRouteRulesBackendRefs {
                    name: "backend".into(),
                    port: Some(3000),
                    ..Default::default()
                }]),
                session_persistence: Some(persistence),
                ..Default::default()
            }]),
            ..Default::default()
        },
    );
    route.metadata.namespace = Some("default".into());
    route
}

#[test]
fn an_httproute_from_kube_validates_into_a_route() {
    let route = Route::try_from(&http_route(seed_persistence())).unwrap();
    assert_eq!(route.name(), "cookie");
    let rule = &route.rules()[0];
    assert_eq!(rule.name(), Some("v2"));
    assert!(matches!(rule.matches()[0].path(), PathMatcher::PathPrefix(p) if p == "/v2"));
    let policy = rule.session_policy().unwrap();
    assert_eq!(policy.name(), "Session-A");
    assert_eq!(policy.lifetime(), LifetimeType::Permanent);
    assert_eq!(policy.absolute_timeout().unwrap().to_string(), "10s");
    // The v1 schema derives the cookie Path from the rule's prefix.
    assert_eq!(policy.cookie_path(), "/v2");
}

#[test]
fn an_invalid_session_persistence_names_the_field() {
    let mut bad = seed_persistence();
    bad.absolute_timeout = None; // Permanent needs one
    let err = Route::try_from(&http_route(bad)).unwrap_err();
    assert!(err.is_invalid());
    assert!(err.to_string().contains("absoluteTimeout"), "{err}");
}

#[test]
fn session_persistence_blocks_convert_verbatim() {
    let ours = SessionPersistence::from(&seed_persistence());
    assert_eq!(ours.session_name.as_deref(), Some("Session-A"));
    assert_eq!(ours.absolute_timeout.as_deref(), Some("10s"));
    assert_eq!(
        ours.cookie_config.unwrap().lifetime_type.as_deref(),
        Some("Permanent")
    );
}

#[test]
fn a_grpcroute_yields_a_policy_per_rule() {
    let mut route = GrpcRoute::new(
        "greeter",
        GrpcRouteSpec {
            rules: Some(vec![
                GrpcRouteRules {
                    session_persistence: Some(GrpcRouteRulesSessionPersistence {
                        r#type: Some(GrpcRouteRulesSessionPersistenceType::Header),
                        session_name: Some("x-session".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                GrpcRouteRules::default(),
                GrpcRouteRules {
                    // No name: generated from the route and rule index.
                    session_persistence: Some(GrpcRouteRulesSessionPersistence::default()),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        },
    );
    route.metadata.namespace = Some("apps".into());
    let sessions = GrpcRouteSessions::try_from(&route).unwrap();
    let rules = sessions.rules();
    assert_eq!(rules.len(), 3);
    let header = rules[0].as_ref().unwrap();
    assert_eq!(header.kind(), PersistenceType::Header);
    assert_eq!(header.name(), "x-session");
    assert!(rules[1].is_none());
    assert_eq!(
        rules[2].as_ref().unwrap().name(),
        "grpcroute-apps-greeter-rule-2"
    );

    let mut bad = route.clone();
    bad.spec.rules.as_mut().unwrap()[0]
        .session_persistence
        .as_mut()
        .unwrap()
        .absolute_timeout = Some("1d".into());
    let err = GrpcRouteSessions::try_from(&bad).unwrap_err();
    assert_eq!(
        err.field(),
        "spec.rules[0].sessionPersistence.absoluteTimeout"
    );
}
