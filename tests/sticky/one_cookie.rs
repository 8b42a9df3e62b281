//! One session cookie, always: a re-pin inside the inner service replaces
//! the layer's pending `Set-Cookie` instead of adding a second.

use super::*;
use http::{Request, Response};
use std::convert::Infallible;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_sticky::sticky::{Pinned, RequestHead, StickyLayer};

#[tokio::test]
async fn an_inner_repin_leaves_exactly_one_session_cookie() {
    let sessions = sessions(seed_policy(), pods(&PODS[..2]), &ManualClock::new(T0));
    let engine = sessions.clone();
    // The proxy finds its first choice dead, marks it down and re-pins: a
    // new cookie of its own, next to an application cookie.
    let proxy = service_fn(move |req: Request<()>| {
        let engine = engine.clone();
        async move {
            let first = req
                .extensions()
                .get::<Pinned<&'static str>>()
                .unwrap()
                .clone();
            if first.outcome() != Outcome::New {
                return Ok(Response::new(first.target().to_string()));
            }
            first.endpoint().set_state(BackendState::Down);
            let retry = engine.repin(RequestHead::of(&req), Outcome::RepinnedDown);
            let mut res = Response::new(retry.target().unwrap().to_string());
            res.headers_mut()
                .append("set-cookie", "theme=dark; Path=/".parse().unwrap());
            retry.apply(res.headers_mut());
            Ok::<_, Infallible>(res)
        }
    });
    let mut svc = StickyLayer::from_sessions(sessions).layer(proxy);
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap();

    let set_cookies: Vec<&str> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let sessions_set: Vec<&&str> = set_cookies
        .iter()
        .filter(|c| c.starts_with("Session-A="))
        .collect();
    assert_eq!(sessions_set.len(), 1, "{set_cookies:?}");
    assert!(set_cookies.contains(&"theme=dark; Path=/"));

    // The one cookie is the inner re-pin's: it leads to the backend that
    // answered.
    let answered = res.body().get_ref().unwrap().clone();
    let cookie = sessions_set[0].split(';').next().unwrap();
    let again = Request::builder()
        .header("cookie", cookie)
        .body(())
        .unwrap();
    let res = svc.ready().await.unwrap().call(again).await.unwrap();
    assert_eq!(res.body().get_ref(), Some(&answered));
    assert!(res.headers().get("set-cookie").is_none());
}
