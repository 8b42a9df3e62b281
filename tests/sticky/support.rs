//! Shared fixtures: a layer over named pods and a fake proxy that answers
//! with the pod it was pinned to.

use http::{Request, Response};
use std::convert::Infallible;
use tower::{Service, ServiceExt, service_fn};
use tower_sticky::balance::{BackendId, Backends, Balance, RoundRobin};
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::{Outcome, Pinned, StickyBuilder, StickySessions};
use tower_sticky::token::{KeySet, ManualClock, SigningKey};

pub const T0: u64 = 1_764_288_000_000;

pub fn key(byte: u8) -> SigningKey {
    SigningKey::new([byte; 32]).unwrap()
}

pub fn pods(names: &[&'static str]) -> Backends<&'static str> {
    names
        .iter()
        .map(|n| (BackendId::from_name(n), *n, 1))
        .collect()
}

pub fn sessions(
    policy: SessionPolicy,
    backends: Backends<&'static str>,
    clock: &ManualClock,
) -> StickySessions<&'static str, RoundRobin> {
    StickyBuilder::new(policy, KeySet::new(key(1)), backends)
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// What one request through the layer produced.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub pod: String,
    pub outcome: Option<Outcome>,
    pub set_cookie: Option<String>,
    pub session_header: Option<String>,
    /// The Cookie header the "backend" received.
    pub upstream_cookie: Option<String>,
}

impl Answer {
    /// `name=value` from the Set-Cookie, as a client would echo it.
    pub fn cookie(&self) -> String {
        self.set_cookie
            .as_deref()
            .expect("a Set-Cookie")
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }
}

/// Sends one request with the given headers through a layer built from
/// `sessions` over a fake proxy.
pub async fn send<B: Balance<&'static str>>(
    sessions: &StickySessions<&'static str, B>,
    headers: &[(&str, &str)],
) -> Answer {
    send_req(sessions, headers, |_| {}).await
}

pub async fn send_req<B: Balance<&'static str>>(
    sessions: &StickySessions<&'static str, B>,
    headers: &[(&str, &str)],
    tweak: impl FnOnce(&mut Request<String>),
) -> Answer {
    let proxy = service_fn(|req: Request<String>| async move {
        let pinned = req
            .extensions()
            .get::<Pinned<&'static str>>()
            .expect("the layer pins every request it forwards")
            .clone();
        let cookie = req
            .headers()
            .get_all("cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(" | ");
        let mut res = Response::new(pinned.target().to_string());
        res.headers_mut()
            .insert("x-outcome", pinned.outcome().as_str().parse().unwrap());
        if !cookie.is_empty() {
            res.headers_mut()
                .insert("x-upstream-cookie", cookie.parse().unwrap());
        }
        Ok::<_, Infallible>(res)
    });
    let mut svc = tower::Layer::layer(
        &tower_sticky::sticky::StickyLayer::from_sessions(sessions.clone()),
        proxy,
    );
    let mut req = Request::builder().uri("/get");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(String::new()).unwrap();
    tweak(&mut req);
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let name = sessions
        .policy()
        .expect("a session policy")
        .name()
        .to_ascii_lowercase();
    Answer {
        status: res.status().as_u16(),
        outcome: header("x-outcome")
            .map(|o| *Outcome::ALL.iter().find(|x| x.as_str() == o).unwrap()),
        set_cookie: header("set-cookie"),
        session_header: if name == "set-cookie" {
            None
        } else {
            header(&name)
        },
        upstream_cookie: header("x-upstream-cookie"),
        pod: res.into_body().into_inner().unwrap_or_default(),
    }
}
