//! The engine without tower: deciding from a borrowed head, routing
//! `Parts` or a bare `HeaderMap`, re-pinning, splitting a decision, writing
//! the response, and counting requests in flight for P2C.

use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::BodyExt;
use std::convert::Infallible;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_sticky::balance::{BackendId, BackendState, Backends, PowerOfTwoChoices};
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::{
    DecisionParts, Outcome, Pinned, RequestHead, StickyBuilder, StickyLayer, StickySessions,
};
use tower_sticky::token::{KeySet, SigningKey};

fn pods(names: &[&'static str]) -> Backends<&'static str> {
    names
        .iter()
        .map(|n| (BackendId::from_name(n), *n, 1))
        .collect()
}

fn sessions(policy: SessionPolicy) -> StickySessions<&'static str> {
    StickyBuilder::new(
        policy,
        KeySet::new(SigningKey::new([9; 32]).unwrap()),
        pods(&["pod-a", "pod-b", "pod-c"]),
    )
    .build()
    .unwrap()
}

/// `Session-A=<token>` from a first decision's `Set-Cookie`.
fn session_cookie(s: &StickySessions<&'static str>) -> (String, &'static str) {
    let (m, u, h) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
    let d = s.decide(RequestHead::new(&m, &u, &h));
    let v = d.session_header().unwrap().value().to_str().unwrap();
    (
        v.split(';').next().unwrap().to_owned(),
        *d.target().unwrap(),
    )
}

#[test]
fn decide_changes_nothing_and_says_how_the_request_changes() {
    let s = sessions(SessionPolicy::cookie("Session-A").unwrap());
    let (cookie, pod) = session_cookie(&s);
    let mut headers = HeaderMap::new();
    headers.append("cookie", format!("a=1; {cookie}; b=2").parse().unwrap());
    let before = headers.clone();
    let (m, u) = (Method::POST, Uri::from_static("/cart"));
    let d = s.decide(RequestHead::new(&m, &u, &headers));
    assert_eq!(headers, before, "decide only reads");
    assert_eq!(d.outcome(), Outcome::Resumed);
    assert_eq!(d.target(), Some(&pod));
    assert!(d.session_header().is_none());
    let rewrite = d.rewrite().unwrap();
    assert_eq!(rewrite.name(), "cookie");
    assert_eq!(rewrite.values(), [HeaderValue::from_static("a=1; b=2")]);

    // Only the session cookie: the header goes.
    let mut only = HeaderMap::new();
    only.insert("cookie", cookie.parse().unwrap());
    let d = s.decide(RequestHead::new(&m, &u, &only));
    assert!(d.rewrite().unwrap().values().is_empty());
    d.rewrite().unwrap().clone().apply(&mut only);
    assert!(only.get("cookie").is_none());

    // No session cookie: nothing to rewrite.
    let mut other = HeaderMap::new();
    other.insert("cookie", "a=1".parse().unwrap());
    assert!(
        s.decide(RequestHead::new(&m, &u, &other))
            .rewrite()
            .is_none()
    );
}

#[test]
fn route_parts_and_route_headers_strip_like_route() {
    let s = sessions(SessionPolicy::cookie("Session-A").unwrap());
    let (cookie, pod) = session_cookie(&s);
    let req = Request::builder()
        .uri("/x")
        .header("cookie", format!("{cookie}; theme=dark"))
        .body(())
        .unwrap();
    let (mut parts, ()) = req.into_parts();
    let d = s.route_parts(&mut parts);
    assert_eq!(d.target(), Some(&pod));
    assert_eq!(parts.headers["cookie"], "theme=dark");

    let mut headers = HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    let d = s.route_headers(&Method::GET, &Uri::from_static("/"), &mut headers, false);
    assert_eq!(d.outcome(), Outcome::Resumed);
    assert!(headers.is_empty());
}

#[test]
fn header_policy_removes_the_session_header_and_tls_sets_secure() {
    let s = sessions(SessionPolicy::header("X-Session").unwrap());
    let (m, u) = (Method::GET, Uri::from_static("/"));
    let first = s.decide(RequestHead::new(&m, &u, &HeaderMap::new()));
    let issue = first.session_header().unwrap();
    assert_eq!(issue.name(), "x-session");
    assert!(!issue.appends());
    assert!(
        !issue.cache_private(false),
        "only cookies get Cache-Control"
    );
    let mut headers = HeaderMap::new();
    headers.insert("x-session", issue.value().clone());
    let again = s.route_headers(&m, &u, &mut headers, false);
    assert_eq!(again.outcome(), Outcome::Resumed);
    assert_eq!(again.target(), first.target());
    assert!(headers.get("x-session").is_none());

    let cookies = sessions(SessionPolicy::cookie("Session-A").unwrap());
    let h = HeaderMap::new();
    let tls = cookies.decide(RequestHead::new(&m, &u, &h).tls(true));
    let plain = cookies.decide(RequestHead::new(&m, &u, &h));
    assert!(
        tls.session_header()
            .unwrap()
            .value()
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );
    assert!(
        !plain
            .session_header()
            .unwrap()
            .value()
            .to_str()
            .unwrap()
            .contains("Secure")
    );
    let https = Uri::from_static("https://shop.example/");
    let by_scheme = cookies.decide(RequestHead::new(&m, &https, &h));
    assert!(
        by_scheme
            .session_header()
            .unwrap()
            .value()
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );
}

#[test]
fn a_decision_splits_for_proxies_with_two_callbacks() {
    let s = sessions(SessionPolicy::cookie("Session-A").unwrap());
    let (m, u, h) = (Method::GET, Uri::from_static("/"), HeaderMap::new());

    // Callback 1 picks the peer and keeps the rest for later.
    let mut d = s.decide(RequestHead::new(&m, &u, &h));
    let issue = d.take_session_header().unwrap();
    assert!(d.take_session_header().is_none());
    // Callback 2 writes the response.
    let mut response = HeaderMap::new();
    assert!(issue.cache_private(false));
    assert!(!issue.cache_private(true));
    assert!(issue.appends());
    response.append("set-cookie", "theme=dark".parse().unwrap());
    issue.apply(&mut response);
    assert_eq!(response.get_all("set-cookie").iter().count(), 2);
    assert_eq!(response["cache-control"], "private");

    // An application's own Cache-Control is kept.
    let d = s.decide(RequestHead::new(&m, &u, &h));
    let DecisionParts {
        outcome,
        endpoint,
        rewrite,
        session_header: issue,
        ..
    } = d.into_parts();
    assert_eq!(outcome, Outcome::New);
    assert!(endpoint.is_some() && rewrite.is_none());
    let mut response = HeaderMap::new();
    response.insert("cache-control", "no-store".parse().unwrap());
    issue.unwrap().apply(&mut response);
    assert_eq!(response["cache-control"], "no-store");
}

#[test]
fn repin_from_a_head_moves_the_session_off_a_down_backend() {
    let s = sessions(SessionPolicy::cookie("Session-A").unwrap());
    let (cookie, pod) = session_cookie(&s);
    let mut headers = HeaderMap::new();
    headers.insert("cookie", cookie.parse().unwrap());
    let (m, u) = (Method::GET, Uri::from_static("/"));
    let first = s.route_headers(&m, &u, &mut headers, false);
    assert_eq!(first.target(), Some(&pod));
    // The proxy finds the pod refusing connections.
    s.backends()
        .set_state(BackendId::from_name(pod), BackendState::Down);
    let repinned = s.repin(RequestHead::new(&m, &u, &headers), Outcome::RepinnedDown);
    assert_eq!(repinned.outcome(), Outcome::RepinnedDown);
    assert_ne!(repinned.target(), Some(&pod));
    assert!(repinned.rewrite().is_none());
    let new_cookie = repinned.session_header().unwrap().value().to_str().unwrap();
    assert!(new_cookie.starts_with("Session-A="));
}

#[test]
fn in_flight_guards_make_p2c_load_aware_for_direct_engine_users() {
    let s = StickyBuilder::new(
        SessionPolicy::cookie("Session-A").unwrap(),
        KeySet::new(SigningKey::new([9; 32]).unwrap()),
        pods(&["pod-a", "pod-b"]),
    )
    .balancer(PowerOfTwoChoices::with_seed(7))
    .build()
    .unwrap();
    let (m, u, h) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
    // Hold 20 requests in flight on whichever pod the first session got.
    let first = s.decide(RequestHead::new(&m, &u, &h));
    let busy = *first.target().unwrap();
    let guards: Vec<_> = (0..20).map(|_| first.in_flight().unwrap()).collect();
    let snap = s.backends().snapshot();
    let busy_endpoint = snap.get(BackendId::from_name(busy)).unwrap();
    assert_eq!(busy_endpoint.in_flight(), 20);
    // Every new session now avoids the busy pod whenever P2C draws both.
    let mut on_busy = 0;
    for _ in 0..200 {
        let d = s.decide(RequestHead::new(&m, &u, &h));
        if *d.target().unwrap() == busy {
            on_busy += 1;
        }
    }
    // Random would put about 100 there; P2C only when it drew the busy pod
    // twice (1 in 4).
    assert!(
        on_busy < 80,
        "{on_busy} of 200 new sessions on the busy pod"
    );
    drop(guards);
    assert_eq!(busy_endpoint.in_flight(), 0);
}

#[tokio::test]
async fn the_layer_counts_a_request_until_its_body_ends() {
    let s = sessions(SessionPolicy::cookie("Session-A").unwrap());
    let backends = s.backends().clone();
    let proxy = service_fn(|req: Request<()>| async move {
        let pinned = req
            .extensions()
            .get::<Pinned<&'static str>>()
            .unwrap()
            .clone();
        Ok::<_, Infallible>(http::Response::new(pinned.target().to_string()))
    });
    let mut svc = StickyLayer::from_sessions(s).layer(proxy);
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap();
    let pod = res.body().get_ref().expect("a backend answered").clone();
    let snap = backends.snapshot();
    let endpoint = snap.get(BackendId::from_name(&pod)).unwrap();
    assert_eq!(endpoint.in_flight(), 1, "headers sent, body not yet");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, pod.as_bytes());
    assert_eq!(endpoint.in_flight(), 0);
}
