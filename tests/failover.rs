//! The failure rules as properties: retries stay within RFC 9110 §9.2.2 and
//! their bounds, a retry always finds an untried backend when one exists,
//! the ejection cap holds, and the panic rule keeps a set serving.

use http::{HeaderMap, Method, Uri};
use proptest::prelude::*;
use std::num::NonZeroU32;
use tower_sticky::balance::{
    BackendId, BackendState, Backends, Balance, Ejection, PickContext, PowerOfTwoChoices, Random,
    RoundRobin, Snapshot, Weighted,
};
use tower_sticky::failover::{
    Blame, BodyReplay, Failure, GiveUp, HealthChange, Next, PassiveHealth, RetryRules,
};
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::{Outcome, RequestHead, StickyBuilder, StickySessions};
use tower_sticky::token::{KeySet, SigningKey};

const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::OPTIONS,
    Method::TRACE,
    Method::PUT,
    Method::DELETE,
    Method::POST,
    Method::PATCH,
    Method::CONNECT,
];

fn id(i: usize) -> BackendId {
    BackendId::from_name(&format!("pod-{i}"))
}

/// `n` pods with the given weights and states (cycled).
fn pods(weights: &[u32], states: &[u8]) -> Backends<usize> {
    let backends: Backends<usize> = weights
        .iter()
        .enumerate()
        .map(|(i, &w)| (id(i), i, w))
        .collect();
    for (i, s) in states.iter().enumerate().take(weights.len()) {
        let state = match s % 4 {
            0 | 1 => BackendState::Serving,
            2 => BackendState::Draining,
            _ => BackendState::Down,
        };
        backends.set_state(id(i), state);
    }
    backends
}

fn with_ctx<R>(f: impl FnOnce(&PickContext<'_>) -> R) -> R {
    let (method, uri, headers) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
    f(&PickContext {
        method: &method,
        uri: &uri,
        headers: &headers,
    })
}

/// Every kind of balancer, including two that misbehave.
fn balancers() -> Vec<Box<dyn Balance<usize>>> {
    vec![
        Box::new(RoundRobin::new()),
        Box::new(Weighted::new()),
        Box::new(Weighted::with_seed(7)),
        Box::new(Random::with_seed(7)),
        Box::new(PowerOfTwoChoices::with_seed(7)),
        // Always the first endpoint, whatever its state.
        Box::new(|_: &PickContext<'_>, s: &Snapshot<usize>| (!s.is_empty()).then_some(0)),
        // Never anything.
        Box::new(|_: &PickContext<'_>, _: &Snapshot<usize>| None),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn retries_follow_rfc_9110_and_their_bounds(
        method in 0..METHODS.len(),
        replayable in any::<bool>(),
        failures in prop::collection::vec(0..Failure::ALL.len(), 1..12),
    ) {
        let method = &METHODS[method];
        let body = if replayable { BodyReplay::Replayable } else { BodyReplay::Streamed };
        let mut attempts = RetryRules::new().start(method, body);
        let (mut connect, mut other) = (0, 0);
        for (n, &f) in failures.iter().enumerate() {
            let failure = Failure::ALL[f];
            let verdict = attempts.failed(id(n), failure);
            if verdict.next != Next::Retry {
                break;
            }
            prop_assert!(replayable, "a streamed body is never sent again");
            prop_assert_ne!(failure, Failure::ResponseBroken);
            prop_assert!(
                failure.provably_not_acted_on()
                    || tower_sticky::failover::is_idempotent(method),
                "{method} retried after {failure}"
            );
            if failure == Failure::Connect { connect += 1 } else { other += 1 }
            prop_assert!(connect <= 3 && other <= 1, "{connect} connect, {other} other retries");
        }
    }

    #[test]
    fn only_the_first_suspect_failure_of_a_request_is_blamed(
        failures in prop::collection::vec(0..Failure::ALL.len(), 1..8),
    ) {
        let mut attempts = RetryRules::new().other_retries(8).start(&Method::GET, BodyReplay::Replayable);
        let mut suspects = 0;
        for (n, &f) in failures.iter().enumerate() {
            let failure = Failure::ALL[f];
            let blame = attempts.failed(id(n), failure).blame;
            match failure {
                Failure::Connect => prop_assert_eq!(blame, Blame::Down),
                Failure::NotWritten | Failure::StreamRefused => prop_assert_eq!(blame, Blame::None),
                _ => suspects += usize::from(blame == Blame::Suspect),
            }
        }
        prop_assert!(suspects <= 1);
    }

    #[test]
    fn a_retry_finds_an_untried_backend_whenever_one_exists(
        weights in prop::collection::vec(0u32..4, 1..12),
        states in prop::collection::vec(any::<u8>(), 0..12),
        tried in prop::collection::vec(any::<bool>(), 0..12),
    ) {
        let backends = pods(&weights, &states);
        let snap = backends.snapshot();
        let tried: Vec<BackendId> = tried
            .iter()
            .enumerate()
            .filter(|&(i, &t)| t && i < weights.len())
            .map(|(i, _)| id(i))
            .collect();
        let exists = snap
            .endpoints()
            .iter()
            .any(|e| e.takes_new_sessions() && !tried.contains(&e.id()));
        for balancer in balancers() {
            let picked = with_ctx(|ctx| balancer.pick_excluding(ctx, &snap, &tried));
            prop_assert_eq!(picked.is_some(), exists);
            if let Some(i) = picked {
                let e = &snap.endpoints()[i];
                prop_assert!(e.takes_new_sessions() && !tried.contains(&e.id()));
            }
        }
    }

    #[test]
    fn a_set_serves_whenever_its_membership_would_whatever_health_says(
        weights in prop::collection::vec(0u32..3, 1..10),
        states in prop::collection::vec(any::<u8>(), 0..10),
        ejected in prop::collection::vec(any::<bool>(), 0..10),
    ) {
        let backends = pods(&weights, &states);
        let snap = backends.snapshot();
        for (e, &out) in snap.endpoints().iter().zip(&ejected) {
            if out {
                e.health().eject(Ejection::Probe);
            }
        }
        let could = snap.endpoints().iter().any(|e| e.takes_new_sessions_ignoring_health());
        let engine = sessions(backends.clone());
        let (method, uri, none) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
        let d = engine.decide(RequestHead::new(&method, &uri, &none));
        prop_assert_eq!(d.endpoint().is_some(), could);
        if let Some(e) = d.endpoint() {
            prop_assert!(e.takes_new_sessions_ignoring_health());
            // Only in panic does an ejected endpoint get a new session.
            prop_assert!(e.takes_new_sessions() || snap.in_panic());
        }
        prop_assert_eq!(
            backends.health().in_panic,
            could && !snap.endpoints().iter().any(|e| e.takes_new_sessions())
        );
    }

    #[test]
    fn suspect_failures_eject_at_most_one_endpoint_in_ten(
        n in 1usize..40,
        hits in prop::collection::vec(0usize..40, 0..200),
    ) {
        let backends = pods(&vec![1; n], &[]);
        let snap = backends.snapshot();
        let health = PassiveHealth::new().down_after(NonZeroU32::MIN);
        for h in hits {
            health.failed(&snap, &snap.endpoints()[h % n], Blame::Suspect);
        }
        let ejected = snap
            .endpoints()
            .iter()
            .filter(|e| e.health().ejection().is_some())
            .count();
        prop_assert!(ejected <= PassiveHealth::cap(n));
        prop_assert!(ejected <= (n / 10).max(1));
        prop_assert!(snap.health().taking_new_sessions >= n - ejected);
    }
}

fn sessions(backends: Backends<usize>) -> StickySessions<usize, Weighted> {
    let keys = KeySet::new(SigningKey::new([3; 32]).unwrap());
    StickyBuilder::new(SessionPolicy::cookie("Session-A").unwrap(), keys, backends)
        .balancer(Weighted::new())
        .build()
        .unwrap()
}

fn cookie_of(decision: &tower_sticky::Decision<usize>) -> HeaderMap {
    let set_cookie = decision.session_header().unwrap().value().to_str().unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        "cookie",
        set_cookie.split(';').next().unwrap().parse().unwrap(),
    );
    headers
}

#[test]
fn when_every_backend_is_ejected_none_is_and_the_set_says_so() {
    let backends = pods(&[1, 1, 1], &[]);
    let engine = sessions(backends.clone());
    let (method, uri, none) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
    let first = engine.decide(RequestHead::new(&method, &uri, &none));
    let pinned = *first.target().unwrap();
    let cookie = cookie_of(&first);

    let snap = backends.snapshot();
    let health = PassiveHealth::new();
    for e in snap.endpoints() {
        assert_eq!(
            health.failed(&snap, e, Blame::Down),
            HealthChange::Ejected(Ejection::Refused)
        );
    }
    let set = backends.health();
    assert!(set.in_panic && set.ejected == 3 && set.taking_new_sessions == 0);

    // Sessions stay where they are; new requests are served by all.
    let again = engine.decide(RequestHead::new(&method, &uri, &cookie));
    assert_eq!(
        (again.outcome(), again.target()),
        (Outcome::Resumed, Some(&pinned))
    );
    let mut served = [0; 3];
    for _ in 0..30 {
        let d = engine.decide(RequestHead::new(&method, &uri, &none));
        assert_eq!(d.outcome(), Outcome::New);
        served[*d.target().unwrap()] += 1;
    }
    assert!(served.iter().all(|&n| n > 0), "{served:?}");

    // One revival ends the panic: the revived backend takes everything.
    snap.endpoints()[2].health().revive();
    assert!(!backends.health().in_panic);
    let moved = engine.decide(RequestHead::new(&method, &uri, &cookie));
    if pinned != 2 {
        assert_eq!(moved.outcome(), Outcome::RepinnedDown);
    }
    assert_eq!(moved.target(), Some(&2));
}

#[test]
fn the_panic_rule_does_not_serve_what_the_membership_took_down() {
    let backends = pods(&[1, 1], &[0, 3]);
    let engine = sessions(backends.clone());
    let snap = backends.snapshot();
    snap.endpoints()[0].health().eject(Ejection::Probe);
    assert!(backends.health().in_panic);
    let (method, uri, none) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
    for _ in 0..10 {
        let d = engine.decide(RequestHead::new(&method, &uri, &none));
        assert_eq!(d.target(), Some(&0));
    }
    // Membership alone down everywhere: no panic, no backend.
    snap.endpoints()[0].set_state(BackendState::Down);
    snap.endpoints()[0].health().revive();
    assert!(!backends.health().in_panic);
    let d = engine.decide(RequestHead::new(&method, &uri, &none));
    assert_eq!(d.outcome(), Outcome::NoBackend);
}

#[test]
fn a_retry_never_goes_back_to_a_tried_backend_even_in_panic() {
    let backends = pods(&[1, 1], &[]);
    let engine = sessions(backends.clone());
    let snap = backends.snapshot();
    for e in snap.endpoints() {
        e.health().eject(Ejection::Refused);
    }
    let (method, uri, none) = (Method::POST, Uri::from_static("/"), HeaderMap::new());
    let head = RequestHead::new(&method, &uri, &none);
    for _ in 0..10 {
        let d = engine.repin_excluding(head, Outcome::RepinnedDown, &[id(0)]);
        assert_eq!(d.target(), Some(&1));
        assert!(d.session_header().is_some());
    }
    let d = engine.repin_excluding(head, Outcome::RepinnedDown, &[id(0), id(1)]);
    assert_eq!(d.outcome(), Outcome::NoBackend);
}

#[test]
fn a_refused_post_moves_on_a_written_post_does_not() {
    let rules = RetryRules::new();
    let mut refused = rules.start(&Method::POST, BodyReplay::Replayable);
    for n in 0..3 {
        assert_eq!(refused.failed(id(n), Failure::Connect).next, Next::Retry);
    }
    assert_eq!(
        refused.failed(id(3), Failure::Connect).next,
        Next::GiveUp(GiveUp::RetriesExhausted)
    );
    assert_eq!(refused.tried(), &[id(0), id(1), id(2), id(3)]);

    let mut h2 = rules.start(&Method::PATCH, BodyReplay::Replayable);
    assert_eq!(h2.failed(id(0), Failure::StreamRefused).next, Next::Retry);
    let mut written = rules.start(&Method::POST, BodyReplay::Replayable);
    assert_eq!(
        written.failed(id(0), Failure::Timeout).next,
        Next::GiveUp(GiveUp::MayHaveBeenActedOn)
    );
    let mut streamed = rules.start(&Method::GET, BodyReplay::Streamed);
    assert_eq!(
        streamed.failed(id(0), Failure::Connect).next,
        Next::GiveUp(GiveUp::BodyNotReplayable)
    );
    let mut broken = rules.start(&Method::GET, BodyReplay::Replayable);
    assert_eq!(
        broken.failed(id(0), Failure::ResponseBroken).next,
        Next::GiveUp(GiveUp::ResponseStarted)
    );
}

#[test]
fn health_shared_by_two_sets_is_seen_by_both_at_once() {
    use std::sync::Arc;
    use tower_sticky::balance::{Endpoint, HealthCell};
    let cell = Arc::new(HealthCell::new());
    let (rule_1, rule_2) = (Backends::new(), Backends::new());
    rule_1.insert_endpoint(Arc::new(Endpoint::with_health(
        id(0),
        0,
        1,
        Arc::clone(&cell),
    )));
    rule_1.insert(id(1), 1, 1);
    rule_2.insert_endpoint(Arc::new(Endpoint::with_health(
        id(0),
        0,
        3,
        Arc::clone(&cell),
    )));
    rule_2.insert(id(1), 1, 1);

    let snap = rule_1.snapshot();
    let change = PassiveHealth::new().failed(&snap, snap.get(id(0)).unwrap(), Blame::Down);
    assert_eq!(change, HealthChange::Ejected(Ejection::Refused));
    assert_eq!(
        rule_2.snapshot().get(id(0)).unwrap().state(),
        BackendState::Down
    );
    let plain = StickyBuilder::plain(rule_2.clone()).build().unwrap();
    let (method, uri, none) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
    for _ in 0..5 {
        let d = plain.decide(RequestHead::new(&method, &uri, &none));
        assert_eq!((d.outcome(), d.target()), (Outcome::Picked, Some(&1)));
    }
    cell.revive();
    assert_eq!(rule_2.health().taking_new_sessions, 2);
}

/// A one-shot HTTP server on 127.0.0.1 answering every connection with
/// `status_line`; returns its address.
async fn health_endpoint(status_line: &'static str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = [0u8; 512];
            let _ = stream.read(&mut head).await;
            assert!(head.starts_with(b"GET /healthz HTTP/1.1\r\n"));
            let _ = stream.write_all(status_line.as_bytes()).await;
        }
    });
    addr
}

#[tokio::test]
async fn the_prober_revives_only_ejected_backends_that_pass_its_check() {
    use std::net::SocketAddr;
    use tower_sticky::failover::Prober;
    let healthy = health_endpoint("HTTP/1.1 204 No Content\r\n\r\n").await;
    let failing = health_endpoint("HTTP/1.1 503 Service Unavailable\r\n\r\n").await;
    let closed: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let backends: Backends<SocketAddr> = [healthy, failing, closed]
        .into_iter()
        .map(|a| (BackendId::from_name(&a.to_string()), a, 1))
        .collect();
    let snap = backends.snapshot();
    for e in snap.endpoints() {
        e.health().eject(Ejection::Refused);
    }
    let prober =
        Prober::http_get(backends.clone(), "/healthz").timeout(std::time::Duration::from_secs(5));
    assert_eq!(prober.probe_once().await, 1);
    let ejected: Vec<bool> = snap
        .endpoints()
        .iter()
        .map(|e| e.health().ejection().is_some())
        .collect();
    assert_eq!(ejected, [false, true, true]);
    // TCP: a listening socket is enough.
    assert_eq!(Prober::tcp(backends).probe_once().await, 1);
    assert!(snap.endpoints()[2].health().ejection().is_some());
}
