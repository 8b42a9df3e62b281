//! Strict sessions (`StickyBuilder::strict`): a session whose backend is
//! down or gone is refused, not moved.

use super::support::*;
use super::{PODS, T0, seed_policy};
use http::Request;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tower_sticky::balance::{BackendId, BackendState};
use tower_sticky::sticky::{Outcome, StickyBuilder};
use tower_sticky::token::{KeySet, ManualClock};

#[tokio::test]
async fn strict_sessions_refuse_a_dead_pin_and_serve_everyone_else() {
    let clock = ManualClock::new(T0);
    let backends = pods(&PODS);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let s = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), backends.clone())
        .clock(clock.clone())
        .strict(true)
        .on_outcome(move |o, _| log.lock().unwrap().push(o))
        .build()
        .unwrap();
    let mut by_pod = BTreeMap::new();
    while by_pod.len() < PODS.len() {
        let a = send(&s, &[]).await;
        by_pod.insert(a.pod.clone(), a.cookie());
    }
    backends.set_state(BackendId::from_name(PODS[1]), BackendState::Down);
    backends.remove(BackendId::from_name(PODS[2]));
    for (pod, cookie) in &by_pod {
        seen.lock().unwrap().clear();
        let a = send(&s, &[("cookie", cookie)]).await;
        if pod == PODS[1] || pod == PODS[2] {
            assert_eq!(a.status, 503, "{pod}");
            assert_eq!(a.set_cookie, None, "the session is not replaced");
            assert_eq!(*seen.lock().unwrap(), [Outcome::PinnedUnavailable]);
            // The engine says the same to proxies that call it directly.
            let mut req = Request::builder()
                .header("cookie", cookie)
                .body(())
                .unwrap();
            let d = s.route(&mut req);
            assert_eq!(d.outcome(), Outcome::PinnedUnavailable);
            assert!(d.endpoint().is_none() && d.session_header().is_none());
        } else {
            assert_eq!(a.status, 200);
            assert_eq!(&a.pod, pod);
            assert_eq!(a.outcome, Some(Outcome::Resumed));
        }
    }
    // New visitors, and bad values, get live backends.
    for headers in [&[][..], &[("cookie", "Session-A=garbage")][..]] {
        let a = send(&s, headers).await;
        assert_eq!(a.status, 200);
        assert!(a.pod != PODS[1] && a.pod != PODS[2]);
        assert!(a.set_cookie.is_some());
    }
    // Draining is not down: its sessions are served.
    backends.set_state(BackendId::from_name(PODS[0]), BackendState::Draining);
    let a = send(&s, &[("cookie", &by_pod[PODS[0]])]).await;
    assert_eq!((a.status, a.pod.as_str()), (200, PODS[0]));
}

#[test]
fn pinned_unavailable_keeps_its_index_and_label_when_outcomes_are_added() {
    // Outcomes are only ever appended: `picked` (plain mode) came after it.
    assert_eq!(Outcome::PinnedUnavailable.index(), 12);
    assert_eq!(Outcome::ALL.last(), Some(&Outcome::Picked));
    assert_eq!(Outcome::PinnedUnavailable.as_str(), "pinned_unavailable");
    assert_eq!(
        Outcome::ALL[Outcome::PinnedUnavailable.index()],
        Outcome::PinnedUnavailable
    );
    assert!(!Outcome::PinnedUnavailable.is_resumed());
}
