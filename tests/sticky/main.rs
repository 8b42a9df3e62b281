//! The layer end to end: what a client and the proxied backend see.

mod failover;
mod hand_off;
mod one_cookie;
mod strict;
mod support;

use std::collections::{BTreeMap, HashSet};
use support::*;
use tower_sticky::balance::{BackendId, BackendState, Backends, Weighted};
use tower_sticky::carrier::{ClientTls, CookieAttributes, SameSite, Secure};
use tower_sticky::duration::Duration;
use tower_sticky::policy::{PathMatchKind, RuleContext, SessionPersistence, SessionPolicy};
use tower_sticky::sticky::{BuildErrorKind, Outcome, StickyBuilder, StickySessions};
use tower_sticky::token::{KeySet, ManualClock};

const PODS: [&str; 4] = [
    "backend-765694d47f-lxwdf",
    "backend-765694d47f-kvwqb",
    "backend-765694d47f-2ff9s",
    "backend-765694d47f-gn7q2",
];

/// Sessions under the seed's policy over one pod, which is down.
fn only_pod_down() -> StickySessions<&'static str> {
    let backends = pods(&PODS[..1]);
    let s = sessions(seed_policy(), backends.clone(), &ManualClock::new(T0));
    backends.set_state(BackendId::from_name(PODS[0]), BackendState::Down);
    s
}

/// The seed's cookie route: Session-A, Permanent, absoluteTimeout 10s.
fn seed_policy() -> SessionPolicy {
    SessionPolicy::cookie("Session-A")
        .unwrap()
        .permanent(Duration::from_secs(10))
        .unwrap()
}

fn token_of(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
}

#[tokio::test]
async fn seed_cookie_route_sets_exact_cookie_and_sticks() {
    let clock = ManualClock::new(T0);
    let s = sessions(seed_policy(), pods(&PODS), &clock);
    let first = send(&s, &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.outcome, Some(Outcome::New));
    let set_cookie = first.set_cookie.clone().unwrap();
    assert_eq!(
        set_cookie,
        format!(
            "Session-A={}; Max-Age=10; Path=/; HttpOnly; SameSite=Lax",
            token_of(&set_cookie)
        )
    );
    assert_eq!(token_of(&set_cookie).len(), 66);

    // The seed extracts the value with awk '{print $3}': a trailing ';'.
    let awk = format!("{};", first.cookie());
    for _ in 0..5 {
        let again = send(&s, &[("cookie", &awk)]).await;
        assert_eq!(again.pod, first.pod);
        assert_eq!(again.outcome, Some(Outcome::Resumed));
        assert_eq!(again.set_cookie, None, "no Set-Cookie on a resumed session");
    }
}

#[tokio::test]
async fn fifty_requests_with_the_cookie_reach_one_pod_and_new_clients_spread() {
    let clock = ManualClock::new(T0);
    let s = sessions(seed_policy(), pods(&PODS), &clock);
    let first = send(&s, &[]).await;
    let cookie = first.cookie();
    for _ in 0..50 {
        assert_eq!(send(&s, &[("cookie", &cookie)]).await.pod, first.pod);
    }
    let spread: HashSet<String> = futures_pods(&s, 8).await;
    assert_eq!(spread.len(), 4, "round robin visits every pod");
}

async fn futures_pods(
    s: &tower_sticky::sticky::StickySessions<&'static str, tower_sticky::balance::RoundRobin>,
    n: usize,
) -> HashSet<String> {
    let mut set = HashSet::new();
    for _ in 0..n {
        set.insert(send(s, &[]).await.pod);
    }
    set
}

#[tokio::test]
async fn session_lifetime_cookie_has_no_max_age_or_expires() {
    let clock = ManualClock::new(T0);
    let policy = SessionPolicy::cookie("Session-A")
        .unwrap()
        .with_absolute_timeout(Duration::from_secs(10))
        .unwrap();
    let s = sessions(policy, pods(&PODS), &clock);
    let a = send(&s, &[]).await;
    let sc = a.set_cookie.clone().unwrap();
    assert_eq!(
        sc,
        format!(
            "Session-A={}; Path=/; HttpOnly; SameSite=Lax",
            token_of(&sc)
        )
    );
    // The proxy still enforces absoluteTimeout through the token.
    clock.advance_millis(10_000);
    let b = send(&s, &[("cookie", &a.cookie())]).await;
    assert_eq!(b.outcome, Some(Outcome::Expired));
    assert!(b.set_cookie.is_some());
}

#[tokio::test]
async fn v2_prefix_rule_derives_path_and_main_schema_uses_slash() {
    let clock = ManualClock::new(T0);
    let spec: SessionPersistence = serde_json::from_str(
        r#"{"sessionName": "Session-A", "absoluteTimeout": "10s",
            "cookieConfig": {"lifetimeType": "Permanent"}}"#,
    )
    .unwrap();
    let ctx = RuleContext::new("httproute-default-cookie-rule-0")
        .path_match(PathMatchKind::PathPrefix, "/v2");
    let s = sessions(spec.validate(&ctx).unwrap(), pods(&PODS), &clock);
    let sc = send(&s, &[]).await.set_cookie.unwrap();
    assert_eq!(
        sc,
        format!(
            "Session-A={}; Max-Age=10; Path=/v2; HttpOnly; SameSite=Lax",
            token_of(&sc)
        )
    );

    let main: SessionPersistence = serde_json::from_str(
        r#"{"absoluteTimeout": "5m",
            "cookie": {"name": "Session-A", "lifetimeType": "Permanent"}}"#,
    )
    .unwrap();
    let s = sessions(main.validate(&ctx).unwrap(), pods(&PODS), &clock);
    let sc = send(&s, &[]).await.set_cookie.unwrap();
    assert_eq!(
        sc,
        format!(
            "Session-A={}; Max-Age=300; Path=/; HttpOnly; SameSite=Lax",
            token_of(&sc)
        )
    );
}

#[tokio::test]
async fn absolute_timeout_boundary() {
    let clock = ManualClock::new(T0);
    let s = sessions(seed_policy(), pods(&PODS), &clock);
    let first = send(&s, &[]).await;
    let cookie = first.cookie();
    clock.advance_millis(9_999);
    let still = send(&s, &[("cookie", &cookie)]).await;
    assert_eq!(still.outcome, Some(Outcome::Resumed));
    assert_eq!(still.pod, first.pod);
    clock.advance_millis(1);
    let gone = send(&s, &[("cookie", &cookie)]).await;
    assert_eq!(gone.outcome, Some(Outcome::Expired));
    let sc = gone.set_cookie.unwrap();
    assert_ne!(
        token_of(&sc),
        token_of(first.set_cookie.as_deref().unwrap())
    );
    assert!(sc.contains("; Max-Age=10;"), "a whole new session: {sc}");
}

#[tokio::test]
async fn idle_timeout_refresh_is_throttled_and_keeps_session_alive() {
    let clock = ManualClock::new(T0);
    let policy = seed_policy()
        .with_absolute_timeout(Duration::from_secs(60))
        .unwrap()
        .with_idle_timeout(Duration::from_secs(2))
        .unwrap();
    let s = sessions(policy, pods(&PODS), &clock);
    let first = send(&s, &[]).await;
    let mut cookie = first.cookie();
    let mut refreshes = 0;
    // Active every 400 ms for 20 s: never idle, refreshed every other step.
    for _ in 0..50 {
        clock.advance_millis(400);
        let a = send(&s, &[("cookie", &cookie)]).await;
        assert_eq!(a.pod, first.pod);
        match a.outcome {
            Some(Outcome::Refreshed) => {
                refreshes += 1;
                let sc = a.set_cookie.as_deref().unwrap();
                // Max-Age counts down to the unchanged absolute deadline.
                assert!(sc.contains("; Max-Age="), "{sc}");
                cookie = a.cookie();
            }
            Some(Outcome::Resumed) => assert_eq!(a.set_cookie, None),
            other => panic!("unexpected {other:?}"),
        }
    }
    // Refresh step is idle/4 = 500 ms, so every second request refreshes.
    assert_eq!(refreshes, 25);

    // The 50th step refreshed at this very instant: the same cookie again
    // is resumed, with nothing to write back.
    let fresh = send(&s, &[("cookie", &cookie)]).await;
    assert_eq!(fresh.outcome, Some(Outcome::Resumed));
    assert_eq!(fresh.set_cookie, None);
    // One millisecond short of the idle timeout it still lives (and is
    // refreshed); exactly at the timeout since that refresh, it ends.
    clock.advance_millis(1_999);
    let ok = send(&s, &[("cookie", &cookie)]).await;
    assert_eq!(ok.outcome, Some(Outcome::Refreshed));
    clock.advance_millis(2_000);
    let idle = send(&s, &[("cookie", &ok.cookie())]).await;
    assert_eq!(idle.outcome, Some(Outcome::IdleExpired));
}

#[tokio::test]
async fn refresh_never_extends_past_absolute_timeout() {
    let clock = ManualClock::new(T0);
    let policy = seed_policy()
        .with_idle_timeout(Duration::from_secs(4))
        .unwrap();
    let s = sessions(policy, pods(&PODS), &clock);
    let mut cookie = send(&s, &[]).await.cookie();
    let mut last = None;
    for _ in 0..9 {
        clock.advance_millis(1_100);
        let a = send(&s, &[("cookie", &cookie)]).await;
        if let Some(sc) = &a.set_cookie
            && a.outcome == Some(Outcome::Refreshed)
        {
            last = Some(sc.clone());
            cookie = a.cookie();
        }
        if a.outcome == Some(Outcome::Expired) {
            // 9.9 s < 10 s is still alive; we only reach here past 10 s.
            panic!("expired too early");
        }
    }
    // At 9.9 s the refreshed cookie carries Max-Age=1 (0.1 s left, rounded up).
    assert!(last.unwrap().contains("; Max-Age=1;"));
    clock.advance_millis(100);
    assert_eq!(
        send(&s, &[("cookie", &cookie)]).await.outcome,
        Some(Outcome::Expired)
    );
}

#[tokio::test]
async fn tampered_malformed_foreign_and_oversized_values_get_new_sessions() {
    let clock = ManualClock::new(T0);
    let s = sessions(seed_policy(), pods(&PODS), &clock);
    let cookie = send(&s, &[]).await.cookie();
    let token = cookie.split_once('=').unwrap().1.to_owned();

    let mut tampered = token.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let foreign = {
        let other = StickyBuilder::new(seed_policy(), KeySet::new(key(2)), pods(&PODS))
            .clock(clock.clone())
            .build()
            .unwrap();
        send(&other, &[]).await.cookie()
    };
    let oversized = format!("Session-A={}", "A".repeat(8000));
    for (bad, why) in [
        (format!("Session-A={tampered}"), Outcome::Forged),
        ("Session-A=".to_owned(), Outcome::Malformed),
        ("Session-A=not-a-token".to_owned(), Outcome::Malformed),
        (format!("Session-A={}", &token[..40]), Outcome::Malformed),
        (format!("Session-A={token}x"), Outcome::Malformed),
        (foreign, Outcome::Forged),
        (oversized, Outcome::Malformed),
        ("Session-A=%00%ff".to_owned(), Outcome::Malformed),
    ] {
        let a = send(&s, &[("cookie", &bad)]).await;
        assert_eq!(a.status, 200, "{bad}");
        assert_eq!(a.outcome, Some(why), "{bad}");
        assert!(a.set_cookie.is_some(), "{bad}");
    }
}

#[tokio::test]
async fn token_from_another_rule_is_not_honoured() {
    let clock = ManualClock::new(T0);
    let backends = pods(&PODS);
    let a = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), backends.clone())
        .clock(clock.clone())
        .scope("httproute/default/r/rule/0")
        .build()
        .unwrap();
    let b = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), backends)
        .clock(clock.clone())
        .scope("httproute/default/r/rule/1")
        .build()
        .unwrap();
    let cookie = send(&a, &[]).await.cookie();
    assert_eq!(
        send(&b, &[("cookie", &cookie)]).await.outcome,
        Some(Outcome::Forged)
    );
    assert_eq!(
        send(&a, &[("cookie", &cookie)]).await.outcome,
        Some(Outcome::Resumed)
    );
}

#[tokio::test]
async fn key_rotation_accepts_old_key_and_resigns() {
    let clock = ManualClock::new(T0);
    let backends = pods(&PODS);
    let old = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), backends.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let rotated = StickyBuilder::new(
        seed_policy(),
        KeySet::new(key(2)).with_verify_only(key(1)),
        backends.clone(),
    )
    .clock(clock.clone())
    .build()
    .unwrap();
    let first = send(&old, &[]).await;
    let again = send(&rotated, &[("cookie", &first.cookie())]).await;
    assert_eq!(again.outcome, Some(Outcome::Rekeyed));
    assert_eq!(again.pod, first.pod);
    let resigned = again.cookie();
    assert_ne!(resigned, first.cookie());
    // Re-signing keeps the session's age: Max-Age counts down.
    clock.advance_millis(0);
    assert!(again.set_cookie.unwrap().contains("; Max-Age=10;"));

    // The re-signed token works once the old key is gone.
    let new_only = StickyBuilder::new(seed_policy(), KeySet::new(key(2)), backends)
        .clock(clock.clone())
        .build()
        .unwrap();
    let a = send(&new_only, &[("cookie", &resigned)]).await;
    assert_eq!(a.outcome, Some(Outcome::Resumed));
    assert_eq!(a.pod, first.pod);
    assert_eq!(
        send(&new_only, &[("cookie", &first.cookie())])
            .await
            .outcome,
        Some(Outcome::Forged)
    );
}

#[tokio::test]
async fn clock_skew_allowance_between_replicas() {
    let ahead = ManualClock::new(T0 + 1_500);
    let behind = ManualClock::new(T0);
    let backends = pods(&PODS);
    let replica_a = sessions(seed_policy(), backends.clone(), &ahead);
    let replica_b = sessions(seed_policy(), backends.clone(), &behind);
    let first = send(&replica_a, &[]).await;
    // 1.5 s in the future is within the default 2 s allowance.
    let b = send(&replica_b, &[("cookie", &first.cookie())]).await;
    assert_eq!(b.outcome, Some(Outcome::Resumed));
    assert_eq!(b.pod, first.pod);

    let far = ManualClock::new(T0 + 2_001);
    let replica_c = sessions(seed_policy(), backends, &far);
    let future = send(&replica_c, &[]).await;
    let b = send(&replica_b, &[("cookie", &future.cookie())]).await;
    assert_eq!(b.outcome, Some(Outcome::FutureDated));
}

#[tokio::test]
async fn down_backend_sessions_repin_with_a_new_token_others_stay() {
    let clock = ManualClock::new(T0);
    let backends = pods(&PODS);
    let s = sessions(seed_policy(), backends.clone(), &clock);
    let mut sessions_by_pod = BTreeMap::new();
    for _ in 0..4 {
        let a = send(&s, &[]).await;
        sessions_by_pod.insert(a.pod.clone(), a.cookie());
    }
    assert_eq!(sessions_by_pod.len(), 4);
    let victim = PODS[1];
    backends.set_state(BackendId::from_name(victim), BackendState::Down);
    for (pod, cookie) in &sessions_by_pod {
        let a = send(&s, &[("cookie", cookie)]).await;
        if pod == victim {
            assert_eq!(a.outcome, Some(Outcome::RepinnedDown));
            assert_ne!(a.pod, victim);
            let moved = a.cookie();
            assert_ne!(&moved, cookie);
            let b = send(&s, &[("cookie", &moved)]).await;
            assert_eq!(b.pod, a.pod, "the new pin sticks");
        } else {
            assert_eq!(a.outcome, Some(Outcome::Resumed));
            assert_eq!(&a.pod, pod);
        }
    }
    // Removed from membership altogether: re-pinned as gone.
    backends.remove(BackendId::from_name(PODS[2]));
    let a = send(&s, &[("cookie", &sessions_by_pod[PODS[2]])]).await;
    assert_eq!(a.outcome, Some(Outcome::RepinnedGone));
}

#[tokio::test]
async fn draining_backend_keeps_its_sessions_and_gets_no_new_ones() {
    let clock = ManualClock::new(T0);
    let backends = pods(&PODS);
    let s = sessions(seed_policy(), backends.clone(), &clock);
    let mut pinned_to_drain = None;
    while pinned_to_drain.is_none() {
        let a = send(&s, &[]).await;
        if a.pod == PODS[0] {
            pinned_to_drain = Some(a.cookie());
        }
    }
    backends.set_state(BackendId::from_name(PODS[0]), BackendState::Draining);
    for _ in 0..20 {
        assert_ne!(send(&s, &[]).await.pod, PODS[0]);
    }
    let a = send(&s, &[("cookie", pinned_to_drain.as_deref().unwrap())]).await;
    assert_eq!(a.pod, PODS[0]);
    assert_eq!(a.outcome, Some(Outcome::Resumed));
}

#[tokio::test]
async fn no_backend_is_a_503_not_an_error() {
    let clock = ManualClock::new(T0);
    let s = only_pod_down();
    let a = send(&s, &[]).await;
    assert_eq!(a.status, 503);
    assert_eq!(a.set_cookie, None);
    let empty = sessions(seed_policy(), Backends::new(), &clock);
    assert_eq!(send(&empty, &[]).await.status, 503);
}

#[tokio::test]
async fn weights_steer_new_sessions_only() {
    let clock = ManualClock::new(T0);
    let backends: Backends<&'static str> = [
        (BackendId::from_name("heavy"), "heavy", 70),
        (BackendId::from_name("light"), "light", 30),
        (BackendId::from_name("zero"), "zero", 0),
    ]
    .into_iter()
    .collect();
    let s = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), backends.clone())
        .balancer(Weighted::with_seed(7))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut counts = BTreeMap::<String, u32>::new();
    let mut light_cookie = None;
    for _ in 0..2_000 {
        let a = send(&s, &[]).await;
        if a.pod == "light" && light_cookie.is_none() {
            light_cookie = Some(a.cookie());
        }
        *counts.entry(a.pod).or_default() += 1;
    }
    let heavy = counts["heavy"];
    assert!((1_300..1_500).contains(&heavy), "{counts:?}");
    assert_eq!(counts.get("zero"), None);
    // A session on the light side stays there, whatever the weights.
    for _ in 0..50 {
        let a = send(&s, &[("cookie", light_cookie.as_deref().unwrap())]).await;
        assert_eq!(a.pod, "light");
    }
    // Even weight 0: a session pinned there (weights changed after it began)
    // stays.
    let zero_backends: Backends<&'static str> = [(BackendId::from_name("light"), "light", 0)]
        .into_iter()
        .collect();
    let z = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), zero_backends)
        .clock(clock.clone())
        .build()
        .unwrap();
    let a = send(&z, &[("cookie", light_cookie.as_deref().unwrap())]).await;
    assert_eq!(a.pod, "light");
    assert_eq!(a.outcome, Some(Outcome::Resumed));
}

#[tokio::test]
async fn persistence_cookie_is_stripped_and_others_kept_unless_forwarded() {
    let clock = ManualClock::new(T0);
    let s = sessions(seed_policy(), pods(&PODS), &clock);
    let cookie = send(&s, &[]).await.cookie();
    let jar = format!("theme=dark; {cookie}; lang=en");
    let a = send(&s, &[("cookie", &jar)]).await;
    assert_eq!(a.upstream_cookie.as_deref(), Some("theme=dark; lang=en"));
    let only = send(&s, &[("cookie", &cookie)]).await;
    assert_eq!(only.upstream_cookie, None);

    let fwd = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), pods(&PODS))
        .clock(clock.clone())
        .forward_session_value(true)
        .build()
        .unwrap();
    let cookie = send(&fwd, &[]).await.cookie();
    let a = send(
        &fwd,
        &[("cookie", &jar.replace(&jar[12..jar.len() - 9], &cookie))],
    )
    .await;
    assert!(a.upstream_cookie.unwrap().contains(&cookie));
}

#[tokio::test]
async fn several_cookie_headers_quoted_values_and_duplicates() {
    let clock = ManualClock::new(T0);
    let s = sessions(seed_policy(), pods(&PODS), &clock);
    let first = send(&s, &[]).await;
    let token = first.cookie().split_once('=').unwrap().1.to_owned();
    let quoted = format!("Session-A=\"{token}\"");
    let a = send(&s, &[("cookie", "a=1"), ("cookie", &quoted)]).await;
    assert_eq!(a.outcome, Some(Outcome::Resumed));
    assert_eq!(a.pod, first.pod);
    // A stale duplicate before the good one (a narrower path's cookie).
    let dup = format!("Session-A=garbage; Session-A={token}");
    let a = send(&s, &[("cookie", &dup)]).await;
    assert_eq!(a.outcome, Some(Outcome::Resumed));
    assert_eq!(a.pod, first.pod);
}

#[tokio::test]
async fn header_type_returns_and_reads_the_session_header() {
    let clock = ManualClock::new(T0);
    let policy = SessionPolicy::header("Session-A")
        .unwrap()
        .with_absolute_timeout(Duration::from_secs(10))
        .unwrap();
    let s = sessions(policy, pods(&PODS), &clock);
    let first = send(&s, &[]).await;
    assert_eq!(first.set_cookie, None);
    let value = first
        .session_header
        .clone()
        .expect("session-a response header");
    assert_eq!(value.len(), 66);
    // What the seed's awk extraction yields after RFC 9110 CR-to-SP.
    let echoed = format!("{value} ");
    for _ in 0..5 {
        let a = send(&s, &[("session-a", &echoed)]).await;
        assert_eq!(a.pod, first.pod);
        assert_eq!(a.outcome, Some(Outcome::Resumed));
        assert_eq!(a.session_header, None);
    }
    clock.advance_millis(10_000);
    assert_eq!(
        send(&s, &[("session-a", &value)]).await.outcome,
        Some(Outcome::Expired)
    );
}

#[tokio::test]
async fn secure_follows_the_client_connection() {
    let clock = ManualClock::new(T0);
    let s = sessions(seed_policy(), pods(&PODS), &clock);
    let plain = send(&s, &[]).await.set_cookie.unwrap();
    assert!(!plain.contains("Secure"));
    let tls = send_req(&s, &[], |r| {
        r.extensions_mut().insert(ClientTls);
    })
    .await
    .set_cookie
    .unwrap();
    assert!(tls.ends_with("; HttpOnly; SameSite=Lax; Secure"), "{tls}");

    let strict = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), pods(&PODS))
        .clock(clock.clone())
        .cookie_attributes(
            CookieAttributes::default()
                .same_site(SameSite::Strict)
                .secure(Secure::Always)
                .http_only(false),
        )
        .build()
        .unwrap();
    let sc = send(&strict, &[]).await.set_cookie.unwrap();
    assert!(
        sc.ends_with("; Max-Age=10; Path=/; SameSite=Strict; Secure"),
        "{sc}"
    );
}

#[test]
fn bad_layer_configurations_fail_at_build() {
    let none_insecure = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), pods(&PODS))
        .cookie_attributes(
            CookieAttributes::default()
                .same_site(SameSite::None)
                .secure(Secure::Never),
        )
        .build();
    let err = none_insecure.unwrap_err();
    assert_eq!(err.kind(), &BuildErrorKind::SameSiteNoneWithoutSecure);
    assert!(err.to_string().contains("SameSite=None"));

    let partitioned_insecure = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), pods(&PODS))
        .cookie_attributes(
            CookieAttributes::default()
                .partitioned(true)
                .secure(Secure::Never),
        )
        .build();
    let err = partitioned_insecure.unwrap_err();
    assert_eq!(err.kind(), &BuildErrorKind::PartitionedWithoutSecure);
    assert!(err.to_string().contains("Partitioned requires Secure"));

    let no_idle = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), pods(&PODS))
        .refresh_after(Duration::from_secs(1))
        .build();
    assert_eq!(
        no_idle.unwrap_err().kind(),
        &BuildErrorKind::RefreshWithoutIdleTimeout
    );

    let bad_domain = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), pods(&PODS))
        .cookie_attributes(CookieAttributes::default().domain("evil.com; Secure"))
        .build();
    assert!(matches!(
        bad_domain.unwrap_err().kind(),
        BuildErrorKind::InvalidCookieDomain(d) if d == "evil.com; Secure"
    ));

    let header_cookie = StickyBuilder::new(
        SessionPolicy::header("Cookie").unwrap(),
        KeySet::new(key(1)),
        pods(&PODS),
    )
    .build();
    let err = header_cookie.unwrap_err();
    assert!(matches!(err.kind(), BuildErrorKind::ReservedHeader(h) if h == "cookie"));
    assert!(err.to_string().contains("cookie"));
}

#[tokio::test]
async fn outcome_callback_sees_every_request() {
    use std::sync::{Arc, Mutex};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let clock = ManualClock::new(T0);
    let s = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), pods(&PODS))
        .clock(clock.clone())
        .on_outcome(move |o, id| log.lock().unwrap().push((o, id)))
        .build()
        .unwrap();
    let a = send(&s, &[]).await;
    send(&s, &[("cookie", &a.cookie())]).await;
    send(&s, &[("cookie", "Session-A=x")]).await;
    let seen = seen.lock().unwrap();
    let outcomes: Vec<_> = seen.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        outcomes,
        [Outcome::New, Outcome::Resumed, Outcome::Malformed]
    );
    assert_eq!(seen[0].1, seen[1].1);
}

#[tokio::test]
async fn readiness_and_errors_of_the_inner_service_pass_through() {
    use http::{Request, Response};
    use std::task::Poll;
    use tower::{Layer, Service};
    use tower_sticky::sticky::{Pinned, StickyLayer};

    let clock = ManualClock::new(T0);
    let layer = StickyLayer::from_sessions(sessions(seed_policy(), pods(&PODS), &clock));
    let (mock, mut handle) = tower_test::mock::pair::<Request<String>, Response<String>>();
    let mut svc = layer.layer(mock);

    handle.allow(0);
    let ready = std::future::poll_fn(|cx| Poll::Ready(svc.poll_ready(cx))).await;
    assert!(
        ready.is_pending(),
        "not ready while the inner service is not"
    );

    handle.allow(1);
    std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
    let fut = svc.call(Request::new(String::new()));
    let (req, reply) = handle.next_request().await.unwrap();
    let pinned = req.extensions().get::<Pinned<&'static str>>().unwrap();
    assert_eq!(pinned.outcome(), Outcome::New);
    let endpoint = pinned.endpoint().clone();
    assert_eq!(endpoint.in_flight(), 1, "counted while the backend works");
    reply.send_error("backend exploded");
    let err = fut.await.unwrap_err();
    assert_eq!(err.to_string(), "backend exploded");
    assert_eq!(endpoint.in_flight(), 0, "released once answered");
}

/// What a cookie jar makes of our `Set-Cookie` (the `cookie` crate parses as
/// RFC 6265 user agents do): every attribute lands where it should.
#[tokio::test]
async fn set_cookie_parses_as_a_user_agent_would() {
    use cookie::{Cookie, SameSite as Jar};
    let clock = ManualClock::new(T0);
    let policy = SessionPolicy::cookie("Session-A")
        .unwrap()
        .permanent(Duration::from_secs(300))
        .unwrap()
        .with_path("/v2")
        .unwrap();
    let s = sessions(policy, pods(&PODS), &clock);
    let sc = send_req(&s, &[], |r| {
        r.extensions_mut().insert(ClientTls);
    })
    .await
    .set_cookie
    .unwrap();
    let c = Cookie::parse(sc.as_str()).unwrap();
    assert_eq!(c.name(), "Session-A");
    assert_eq!(c.value().len(), 66);
    assert_eq!(c.max_age(), Some(cookie::time::Duration::seconds(300)));
    assert_eq!(c.path(), Some("/v2"));
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.secure(), Some(true));
    assert_eq!(c.same_site(), Some(Jar::Lax));
    assert_eq!(c.expires(), None);
}

#[tokio::test]
async fn without_the_memo_every_token_is_verified_with_the_same_outcomes() {
    let clock = ManualClock::new(T0);
    let s = StickyBuilder::new(seed_policy(), KeySet::new(key(1)), pods(&PODS))
        .clock(clock.clone())
        .remember_verified_tokens(false)
        .build()
        .unwrap();
    let first = send(&s, &[]).await;
    assert_eq!(first.outcome, Some(Outcome::New));
    let cookie = first.cookie();
    for _ in 0..3 {
        let again = send(&s, &[("cookie", &cookie)]).await;
        assert_eq!(again.outcome, Some(Outcome::Resumed));
        assert_eq!(again.pod, first.pod);
    }
    // A character inside the MAC'd body, after "Session-A=".
    let mut tampered = cookie.clone().into_bytes();
    let at = "Session-A=".len() + 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let bad = send(&s, &[("cookie", &tampered)]).await;
    assert_eq!(bad.outcome, Some(Outcome::Forged));
    clock.advance_millis(10_000);
    let gone = send(&s, &[("cookie", &cookie)]).await;
    assert_eq!(gone.outcome, Some(Outcome::Expired));
}
