//! `StickyHandOff`: the same sessions, the choice handed to the inner
//! service beside the request instead of in its extensions.

use super::{PODS, seed_policy, support::*};
use http::{Request, Response};
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::future::Future;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_sticky::sticky::{Outcome, Pinned, StickyHandOffLayer, StickyLayer};
use tower_sticky::token::ManualClock;

/// What the inner service saw of one request, as response headers.
fn proxy() -> impl Service<
    (Pinned<&'static str>, Request<String>),
    Response = Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<String>, Infallible>>,
> + Clone {
    service_fn(
        |(pinned, req): (Pinned<&'static str>, Request<String>)| async move {
            let mut res = Response::new(pinned.target().to_string());
            let h = res.headers_mut();
            h.insert("x-outcome", pinned.outcome().as_str().parse().unwrap());
            let in_extensions = req.extensions().get::<Pinned<&'static str>>().is_some();
            h.insert(
                "x-in-extensions",
                in_extensions.to_string().parse().unwrap(),
            );
            if let Some(cookie) = req.headers().get("cookie") {
                h.insert("x-upstream-cookie", cookie.clone());
            }
            Ok::<_, Infallible>(res)
        },
    )
}

fn get(cookie: Option<&str>) -> Request<String> {
    let mut req = Request::builder().uri("/get");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    req.body(String::new()).unwrap()
}

#[tokio::test]
async fn hand_off_pins_like_the_extension_layer_and_strips_the_session_cookie() {
    let clock = ManualClock::new(T0);
    let s = sessions(seed_policy(), pods(&PODS), &clock);
    let mut svc = StickyLayer::from_sessions(s.clone())
        .hand_off()
        .layer(proxy());

    let first = svc.ready().await.unwrap().call(get(None)).await.unwrap();
    assert_eq!(first.headers()["x-outcome"], "new");
    assert_eq!(first.headers()["x-in-extensions"], "false");
    let set_cookie = first.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.ends_with("; Max-Age=10; Path=/; HttpOnly; SameSite=Lax"));
    let session = set_cookie.split(';').next().unwrap().to_owned();
    let pod = first.into_body().into_inner().expect("a backend answered");

    for _ in 0..10 {
        let cookie = format!("theme=dark; {session}");
        let res = svc
            .ready()
            .await
            .unwrap()
            .call(get(Some(&cookie)))
            .await
            .unwrap();
        assert_eq!(res.headers()["x-outcome"], "resumed");
        assert!(res.headers().get("set-cookie").is_none());
        assert_eq!(res.headers()["x-upstream-cookie"], "theme=dark");
        assert_eq!(res.into_body().into_inner(), Some(pod.clone()));
    }

    // The extension layer over the same sessions agrees on the pod.
    let a = send(&s, &[("cookie", &session)]).await;
    assert_eq!(
        (a.pod.as_str(), a.outcome),
        (pod.as_str(), Some(Outcome::Resumed))
    );
}

#[tokio::test]
async fn hand_off_answers_503_itself_when_no_backend_can_take_the_request() {
    let s = super::only_pod_down();
    let called = std::sync::atomic::AtomicBool::new(false);
    let inner = service_fn(|(_, _): (Pinned<&'static str>, Request<String>)| {
        called.store(true, std::sync::atomic::Ordering::Relaxed);
        async { Ok::<_, Infallible>(Response::new(String::new())) }
    });
    let mut svc = StickyHandOffLayer::from_sessions(s).layer(inner);
    let res = svc.ready().await.unwrap().call(get(None)).await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(!called.load(std::sync::atomic::Ordering::Relaxed));
}

#[tokio::test]
async fn hand_off_counts_the_request_in_flight_until_the_body_ends() {
    let clock = ManualClock::new(T0);
    let s = sessions(seed_policy(), pods(&PODS[..1]), &clock);
    let mut svc = StickyHandOffLayer::from_sessions(s.clone()).layer(proxy());
    let res = svc.ready().await.unwrap().call(get(None)).await.unwrap();
    let endpoint = s.backends().snapshot().endpoints()[0].clone();
    assert_eq!(endpoint.in_flight(), 1, "headers sent, body not yet");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, PODS[0]);
    assert_eq!(endpoint.in_flight(), 0);
}
