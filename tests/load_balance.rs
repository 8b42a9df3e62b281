//! `P2cByLoad`: new sessions follow the targets' own `tower::load::Load`
//! metric, read at each pick; sessions already pinned stay put.

use http::{HeaderMap, Method, Uri};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tower::load::Load;
use tower_sticky::balance::{BackendId, Backends, P2cByLoad};
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::{Outcome, RequestHead, StickyBuilder};
use tower_sticky::token::{KeySet, SigningKey};

/// A backend whose load is whatever the proxy last measured (a queue
/// depth, say).
#[derive(Debug)]
struct Pod {
    name: &'static str,
    queue: Arc<AtomicU32>,
}

impl Load for Pod {
    type Metric = u32;

    fn load(&self) -> u32 {
        self.queue.load(Ordering::Relaxed)
    }
}

#[test]
fn new_sessions_prefer_the_less_loaded_target_and_sessions_stay_put() {
    let (queue_a, queue_b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(50)));
    let backends: Backends<Pod> = [("pod-a", &queue_a), ("pod-b", &queue_b)]
        .into_iter()
        .map(|(name, queue)| {
            let pod = Pod {
                name,
                queue: Arc::clone(queue),
            };
            (BackendId::from_name(name), pod, 1)
        })
        .collect();
    let s = StickyBuilder::new(
        SessionPolicy::cookie("Session-A").unwrap(),
        KeySet::new(SigningKey::new([5; 32]).unwrap()),
        backends,
    )
    .balancer(P2cByLoad::with_seed(11))
    .build()
    .unwrap();
    let (m, u) = (Method::GET, Uri::from_static("/"));
    let new_sessions_on = |pod: &str| {
        (0..200)
            .filter(|_| {
                let d = s.decide(RequestHead::new(&m, &u, &HeaderMap::new()));
                d.target().unwrap().name == pod
            })
            .count()
    };

    // pod-b reports the higher load: it only gets a session when both
    // draws are pod-b (1 in 4); round robin or random would give it 100.
    let on_b = new_sessions_on("pod-b");
    assert!(on_b < 80, "{on_b} of 200 new sessions on the busy pod-b");

    // The metric is read at each pick: when pod-a gets busier, the
    // preference flips.
    queue_a.store(90, Ordering::Relaxed);
    let on_a = new_sessions_on("pod-a");
    assert!(on_a < 80, "{on_a} of 200 new sessions on the busy pod-a");

    // A session pinned to the now busy pod-a stays there: load only places
    // new sessions.
    let pinned_to_a = (0..1_000)
        .map(|_| s.decide(RequestHead::new(&m, &u, &HeaderMap::new())))
        .find(|d| d.target().unwrap().name == "pod-a")
        .expect("pod-a still gets a new session now and then");
    let set_cookie = pinned_to_a
        .session_header()
        .unwrap()
        .value()
        .to_str()
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "cookie",
        set_cookie.split(';').next().unwrap().parse().unwrap(),
    );
    for _ in 0..20 {
        let d = s.decide(RequestHead::new(&m, &u, &headers));
        assert_eq!(d.outcome(), Outcome::Resumed);
        assert_eq!(d.target().unwrap().name, "pod-a");
    }
}
