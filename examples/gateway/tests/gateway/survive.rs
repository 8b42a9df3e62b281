//! Issue 8, items 1–3: sessions that survive key rotation, route edits and
//! restarts; demo backends only in demo mode.

use crate::counters::outcome_total;
use crate::support::{
    Http, Proc, Session, assert_moved_only_from, echoes, gateway, gateway_fails, seed_route,
    sessions_on_every_pod, temp_file, visit,
};

/// A 32-byte secret file.
pub fn secret(name: &str, byte: u8) -> String {
    temp_file(name, &[byte; 32])
        .to_str()
        .expect("utf-8")
        .to_owned()
}

/// Every session, on every gateway, is answered by its own pod; a re-issued
/// cookie (rekeyed) replaces the old one.
async fn all_stay(http: &Http, gateways: &[&Proc], sessions: &mut [Session], stage: &str) {
    for gw in gateways {
        for s in sessions.iter_mut() {
            let r = http
                .get(&format!("{}/get", gw.url), &[("cookie", &s.cookie)])
                .await;
            assert_eq!(r.status, 200, "{stage}: {}", r.body);
            assert_eq!(r.pod(), s.pod, "{stage}: the session moved");
            if let Some(c) = r.cookie_pair() {
                s.cookie = c;
            }
        }
    }
}

#[tokio::test]
async fn key_rotation_across_two_replicas_keeps_every_session_on_its_pod() {
    let (_echoes, backend) = echoes(3);
    let old = secret("old-key", 0x11);
    let new = secret("new-key", 0x22);
    let ids = secret("backend-ids", 0x33);
    // Sessions of 10 s (the seed's absoluteTimeout) would expire during the
    // test on a slow machine: the same route with an hour.
    let route = seed_route("1h");
    let route = route.as_str();
    let replica = |keys: &[&str]| {
        let mut args = vec![
            "--route",
            route,
            "--backend",
            &backend,
            "--backend-id-key",
            &ids,
            "--admin",
            "127.0.0.1:0",
        ];
        for k in keys {
            args.extend(["--key-file", k]);
        }
        gateway(&args)
    };
    let http = Http::new();

    // Before: both replicas on the old key.
    let mut a = replica(&[&old]);
    let mut b = replica(&[&old]);
    let mut sessions = sessions_on_every_pod(&http, &a, 3).await;
    all_stay(&http, &[&a, &b], &mut sessions, "before").await;

    // Step 1: the new key verifies everywhere, one replica at a time.
    no_moves(&http, &b).await;
    b.kill();
    b = replica(&[&old, &new]);
    all_stay(&http, &[&a, &b], &mut sessions, "b verifies new, a not yet").await;
    no_moves(&http, &a).await;
    a.kill();
    a = replica(&[&old, &new]);
    all_stay(&http, &[&a, &b], &mut sessions, "both verify new").await;

    // Step 2: the new key signs (`--key-file new --key-file old`), one
    // replica at a time: mid-rotation one signs new, the other old.
    no_moves(&http, &a).await;
    a.kill();
    a = replica(&[&new, &old]);
    sessions.extend(sessions_on_every_pod(&http, &a, 3).await);
    all_stay(&http, &[&a, &b], &mut sessions, "a signs new, b signs old").await;
    assert!(
        outcome_total(&http, &a, "rekeyed").await >= 1.0,
        "old-key sessions are re-signed"
    );
    no_moves(&http, &b).await;
    b.kill();
    b = replica(&[&new, &old]);
    all_stay(&http, &[&a, &b], &mut sessions, "both sign new").await;

    // Step 3: the old key goes, once every live session was re-signed.
    no_moves(&http, &a).await;
    a.kill();
    a = replica(&[&new]);
    all_stay(&http, &[&a, &b], &mut sessions, "a dropped old").await;
    no_moves(&http, &b).await;
    b.kill();
    b = replica(&[&new]);
    all_stay(&http, &[&a, &b], &mut sessions, "after").await;
    no_moves(&http, &a).await;
    no_moves(&http, &b).await;
}

/// No session was refused or moved by this gateway.
async fn no_moves(http: &Http, gw: &Proc) {
    for moved in [
        "repinned_gone",
        "repinned_down",
        "malformed",
        "forged",
        "future_dated",
    ] {
        let n = outcome_total(http, gw, moved).await;
        assert_eq!(n, 0.0, "{moved} during rotation");
    }
}

#[tokio::test]
async fn backend_ids_follow_the_id_key_not_the_signing_key() {
    let (_echoes, backend) = echoes(2);
    let key = secret("key", 0x44);
    let route = seed_route("10s");
    let route = route.as_str();
    // --backend and --key-file without an id key: refused, saying why.
    let err = gateway_fails(&["--route", route, "--backend", &backend, "--key-file", &key]);
    assert!(err.contains("--backend-id-key"), "{err}");
    let short = temp_file("short", &[1; 16]);
    let err = gateway_fails(&[
        "--route",
        route,
        "--backend",
        &backend,
        "--key-file",
        &key,
        "--backend-id-key",
        short.to_str().expect("utf-8"),
    ]);
    assert!(
        err.contains("--backend-id-key") && err.contains("32"),
        "{err}"
    );

    // Another id key: the same key file's sessions name unknown backends.
    let ids = secret("ids", 0x55);
    let other_ids = secret("other-ids", 0x66);
    let one = gateway(&[
        "--route",
        route,
        "--backend",
        &backend,
        "--key-file",
        &key,
        "--backend-id-key",
        &ids,
    ]);
    let two = gateway(&[
        "--route",
        route,
        "--backend",
        &backend,
        "--key-file",
        &key,
        "--backend-id-key",
        &other_ids,
        "--admin",
        "127.0.0.1:0",
    ]);
    let http = Http::new();
    let r = http.get(&format!("{}/get", one.url), &[]).await;
    let cookie = r.cookie_pair().expect("cookie");
    // The token carries no address, in any encoding a glance would catch.
    for e in &_echoes {
        assert!(!cookie.contains(&e.addr) && !cookie.contains(&e.port().to_string()));
    }
    let r2 = http
        .get(&format!("{}/get", two.url), &[("cookie", &cookie)])
        .await;
    assert_eq!(r2.status, 200);
    assert!(r2.set_cookie().is_some());
    assert_eq!(outcome_total(&http, &two, "repinned_gone").await, 1.0);
}

/// A route whose rule `app` (no sessionName: the default name follows the
/// rule's name) sits below `rules_above`.
fn app_route(rules_above: &str, app_name: Option<&str>) -> String {
    let name = app_name
        .map(|n| format!("      name: {n}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: shop
spec:
  rules:
{rules_above}    - matches:
        - path:
            type: PathPrefix
            value: /
{name}      backendRefs:
        - name: backend
          port: 3000
      sessionPersistence:
        type: Cookie
        absoluteTimeout: 1h
"
    )
}

const ADMIN_RULE: &str = "    - matches:
        - path:
            type: PathPrefix
            value: /admin
      backendRefs:
        - name: backend
          port: 3000
      sessionPersistence:
        sessionName: Admin
        type: Cookie
        absoluteTimeout: 1h
";

#[tokio::test]
async fn a_named_rule_keeps_its_sessions_when_a_rule_is_inserted_above_it() {
    let (_echoes, backend) = echoes(3);
    let key = secret("key", 0x77);
    let ids = secret("ids", 0x78);
    let http = Http::new();
    let start = |yaml: &str| {
        let route = temp_file("shop.yaml", yaml.as_bytes());
        gateway(&[
            "--route",
            route.to_str().expect("utf-8"),
            "--backend",
            &backend,
            "--key-file",
            &key,
            "--backend-id-key",
            &ids,
            "--admin",
            "127.0.0.1:0",
        ])
    };
    for (named, survives) in [(Some("app"), true), (None, false)] {
        let mut gw = start(&app_route("", named));
        let mut sessions = sessions_on_every_pod(&http, &gw, 3).await;
        // The same key, a rule inserted above: the gateway restarts.
        gw.kill();
        let gw = start(&app_route(ADMIN_RULE, named));
        if survives {
            all_stay(&http, &[&gw], &mut sessions, "after the edit").await;
            assert_eq!(
                outcome_total(&http, &gw, "new").await,
                0.0,
                "a named rule keeps its sessions"
            );
        } else {
            // An unnamed rule's sessions were scoped (and named) by its
            // index: they start again, which is why names are recommended.
            let s = &sessions[0];
            let r = http
                .get(&format!("{}/get", gw.url), &[("cookie", &s.cookie)])
                .await;
            assert_eq!(r.status, 200);
            assert!(r.set_cookie().is_some(), "a new session: {:?}", r.headers);
        }
        // The inserted rule is served too, with its own cookie.
        let r = http.get(&format!("{}/admin", gw.url), &[]).await;
        assert!(r.set_cookie().expect("admin cookie").starts_with("Admin="));
    }
}

#[tokio::test]
async fn two_rules_sharing_a_cookie_name_and_path_are_a_start_up_warning() {
    let yaml = app_route(
        &ADMIN_RULE.replace("value: /admin", "value: /").replace(
            "sessionName: Admin",
            "sessionName: httproute-default-shop-rule-app",
        ),
        Some("app"),
    );
    let route = temp_file("shared.yaml", yaml.as_bytes());
    let gw = gateway(&["--route", route.to_str().expect("utf-8")]);
    let logs = gw.logs();
    assert!(
        logs.contains("spec.rules[0]")
            && logs.contains("spec.rules[1]")
            && logs.contains("\"httproute-default-shop-rule-app\" with Path /")
            && logs.contains("keep replacing each other"),
        "{logs}"
    );
}

#[tokio::test]
async fn with_backend_flags_an_unmapped_backend_ref_is_refused() {
    let yaml = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: shop
  namespace: prod
spec:
  rules:
    - name: cart
      backendRefs:
        - name: backend
          port: 3000
        - name: backnd
          port: 3000
";
    let route = temp_file("typo.yaml", yaml.as_bytes());
    let route = route.to_str().expect("utf-8");
    let (_echoes, backend) = echoes(1);
    let err = gateway_fails(&["--route", route, "--backend", &backend]);
    for needle in [
        route,
        "document 1",
        "spec.rules[0].backendRefs[1]",
        "HTTPRoute prod/shop",
        "rule \"cart\"",
        "Service prod/backnd port 3000",
        "not mapped by any --backend",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
    // Without any --backend it is demo mode, and the banner says so.
    let gw = gateway(&["--route", route]);
    let banner = gw.banner.join("\n");
    assert!(banner.contains("demo mode"), "{banner}");
    assert!(banner.contains("Service prod/backnd"), "{banner}");
    let r = Http::new().get(&format!("{}/", gw.url), &[]).await;
    assert_eq!(r.status, 200);
    // With every backendRef mapped, no echo replica is started.
    let (_more, typo) = echoes(1);
    let typo = typo.replacen("backend=", "backnd=", 1);
    let gw = gateway(&["--route", route, "--backend", &backend, "--backend", &typo]);
    let banner = gw.banner.join("\n");
    assert!(!banner.contains("demo mode"), "{banner}");
    assert!(!banner.contains("at http://"), "{banner}");
    assert!(banner.contains("--backend endpoints only"), "{banner}");
}

#[tokio::test]
async fn adding_a_backend_keeps_every_session_and_removing_one_moves_only_its_own() {
    let (echoes, _) = echoes(3);
    let key = secret("key", 0x81);
    let ids = secret("ids", 0x82);
    let route = seed_route("1h");
    let start = |pods: &[&Proc]| {
        let flag = format!(
            "backend={}",
            pods.iter()
                .map(|p| p.addr.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        gateway(&[
            "--route",
            &route,
            "--backend",
            &flag,
            "--key-file",
            &key,
            "--backend-id-key",
            &ids,
            "--admin",
            "127.0.0.1:0",
        ])
    };
    let http = Http::new();
    let mut gw = start(&[&echoes[0], &echoes[1]]);
    let mut sessions = sessions_on_every_pod(&http, &gw, 2).await;
    // echo-2 joins (a restart with one more endpoint): ids are per address,
    // so no session notices.
    gw.kill();
    let mut gw = start(&[&echoes[0], &echoes[1], &echoes[2]]);
    all_stay(&http, &[&gw], &mut sessions, "echo-2 added").await;
    no_moves(&http, &gw).await;
    // echo-0 leaves: only its sessions move, each with a new cookie.
    gw.kill();
    let gw = start(&[&echoes[1], &echoes[2]]);
    for s in &sessions {
        assert_moved_only_from(&visit(&http, &gw, s).await, s, "echo-0");
    }
    assert!(outcome_total(&http, &gw, "repinned_gone").await >= 1.0);
}
