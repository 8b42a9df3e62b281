//! Failover through the layer: a backend failure marks the backend, the
//! request is re-decided with one new cookie and sent again, within RFC
//! 9110 §9.2.2.

use super::*;
use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use std::io;
use std::sync::{Arc, Mutex};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_sticky::balance::Ejection;
use tower_sticky::failover::{Failure, ReplayBody};
use tower_sticky::sticky::{Pinned, StickyLayer};

/// How the fake proxy's attempt on a pod ends.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    Answers,
    Refuses,
    /// Reads the whole request, acts on it, then resets.
    ActsThenResets,
}

type Log = Arc<Mutex<Vec<(&'static str, Method, Bytes)>>>;

/// A "proxy" whose pods behave as `behaviour` says; every request a pod
/// received (and read whole) is logged.
fn proxy(
    behaviour: impl Fn(&str) -> Behaviour + Clone + Send + 'static,
    log: Log,
) -> impl Service<
    Request<ReplayBody<Full<Bytes>>>,
    Response = Response<String>,
    Error = io::Error,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    service_fn(move |req: Request<ReplayBody<Full<Bytes>>>| {
        let (behaviour, log) = (behaviour.clone(), Arc::clone(&log));
        async move {
            let pod = *req
                .extensions()
                .get::<Pinned<&'static str>>()
                .unwrap()
                .target();
            match behaviour(pod) {
                Behaviour::Refuses => Err(io::Error::from(io::ErrorKind::ConnectionRefused)),
                b => {
                    let method = req.method().clone();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    log.lock().unwrap().push((pod, method, body));
                    if b == Behaviour::ActsThenResets {
                        Err(io::Error::from(io::ErrorKind::ConnectionReset))
                    } else {
                        Ok(Response::new(pod.to_owned()))
                    }
                }
            }
        }
    })
}

/// Pods for which `dead` holds refuse connections; the others answer.
fn refusing(
    dead: impl Fn(&str) -> bool + Clone + Send + 'static,
) -> impl Fn(&str) -> Behaviour + Clone + Send + 'static {
    move |pod| {
        if dead(pod) {
            Behaviour::Refuses
        } else {
            Behaviour::Answers
        }
    }
}

fn request(method: Method, cookie: Option<&str>, body: &'static str) -> Request<Full<Bytes>> {
    let mut req = Request::builder().method(method);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

/// One request through `svc`, once it is ready.
async fn call<S>(svc: &mut S, req: Request<Full<Bytes>>) -> Result<S::Response, S::Error>
where
    S: Service<Request<Full<Bytes>>>,
{
    svc.ready().await?.call(req).await
}

fn session_cookies<B>(res: &Response<B>) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .filter(|c| c.starts_with("Session-A="))
        .collect()
}

#[tokio::test]
async fn a_refused_pinned_backend_fails_over_with_one_new_cookie_and_stays_down() {
    let backends = pods(&PODS[..3]);
    let sessions = sessions(seed_policy(), backends.clone(), &ManualClock::new(T0));
    let log = Log::default();
    let dead = Arc::new(Mutex::new(None::<&'static str>));
    let is_dead = Arc::clone(&dead);
    let behaviour = refusing(move |pod| *is_dead.lock().unwrap() == Some(pod));
    let mut svc = StickyLayer::from_sessions(sessions)
        .failover()
        .layer(proxy(behaviour, log.clone()));

    let first = call(&mut svc, request(Method::GET, None, ""))
        .await
        .unwrap();
    let pinned = first.body().get_ref().unwrap().clone();
    let cookie = session_cookies(&first)[0]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    *dead.lock().unwrap() = Some(PODS.iter().find(|p| **p == pinned).copied().unwrap());

    let res = call(&mut svc, request(Method::GET, Some(&cookie), ""))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let other = res.body().get_ref().unwrap().clone();
    assert_ne!(other, pinned);
    let new = session_cookies(&res);
    assert_eq!(new.len(), 1, "{new:?}");
    let snap = backends.snapshot();
    let dead_pod = snap.get(BackendId::from_name(&pinned)).unwrap();
    assert_eq!(dead_pod.health().ejection(), Some(Ejection::Refused));

    let new_cookie = new[0].split(';').next().unwrap().to_owned();
    for _ in 0..10 {
        let res = call(&mut svc, request(Method::GET, Some(&new_cookie), ""))
            .await
            .unwrap();
        assert_eq!(res.body().get_ref(), Some(&other));
        assert!(res.headers().get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn a_refused_post_is_answered_by_another_backend_with_the_same_bytes() {
    let sessions = sessions(seed_policy(), pods(&PODS[..3]), &ManualClock::new(T0));
    let log = Log::default();
    let behaviour = refusing(|pod| pod == PODS[0]);
    let mut svc = StickyLayer::from_sessions(sessions)
        .failover()
        .layer(proxy(behaviour, log.clone()));
    // Round robin: the first new session goes to PODS[0], which refuses.
    let res = call(&mut svc, request(Method::POST, None, "order=42"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_ne!(res.body().get_ref().unwrap(), PODS[0]);
    assert_eq!(session_cookies(&res).len(), 1);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1, "executed once");
    assert_eq!(
        (log[0].1.clone(), log[0].2.clone()),
        (Method::POST, Bytes::from_static(b"order=42"))
    );
}

#[tokio::test]
async fn a_post_a_backend_acted_on_is_not_replayed_and_gets_502() {
    let sessions = sessions(seed_policy(), pods(&PODS[..3]), &ManualClock::new(T0));
    let log = Log::default();
    let classify = |e: &io::Error| match e.kind() {
        io::ErrorKind::ConnectionRefused => Some(Failure::Connect),
        io::ErrorKind::ConnectionReset => Some(Failure::AfterWrite),
        _ => None,
    };
    let layer = StickyLayer::from_sessions(sessions)
        .failover()
        .classify(classify);
    let mut svc = layer.layer(proxy(|_: &str| Behaviour::ActsThenResets, log.clone()));
    let res = call(&mut svc, request(Method::POST, None, "pay=1"))
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    assert!(res.body().is_generated());
    assert_eq!(log.lock().unwrap().len(), 1, "the POST ran once");

    // A GET is retried once, on another backend, then given up.
    let res = call(&mut svc, request(Method::GET, None, ""))
        .await
        .unwrap();
    assert_eq!(res.status(), 502);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 3);
    assert_ne!(log[1].0, log[2].0, "the retry went elsewhere");
}

#[tokio::test]
async fn a_body_over_the_bound_is_streamed_once_and_not_replayed() {
    for (body, status) in [("more than four", 502), ("four", 200)] {
        // Fresh pods each time: round robin sends the first request to
        // PODS[0], which refuses.
        let sessions = sessions(seed_policy(), pods(&PODS[..2]), &ManualClock::new(T0));
        let behaviour = refusing(|pod| pod == PODS[0]);
        let layer = StickyLayer::from_sessions(sessions)
            .failover()
            .buffer_limit(4);
        let mut svc = layer.layer(proxy(behaviour, Log::default()));
        let res = call(&mut svc, request(Method::PUT, None, body))
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{body}");
    }
}

#[tokio::test]
async fn errors_that_are_not_backend_failures_reach_the_caller() {
    let sessions = sessions(seed_policy(), pods(&PODS[..2]), &ManualClock::new(T0));
    let layer = StickyLayer::from_sessions(sessions).failover();
    let mut svc = layer.layer(proxy(|_: &str| Behaviour::ActsThenResets, Log::default()));
    let err = call(&mut svc, request(Method::GET, None, ""))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
}
