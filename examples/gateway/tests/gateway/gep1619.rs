//! Issue item 2: the GEP-1619 test plan and Envoy Gateway's e2e case.

use crate::support::{Http, Proc, gateway_with_routes};

const ROUTES: &str = r#"
# GEP-1619 1 and 5: a Permanent cookie with absoluteTimeout 5m.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: simple
spec:
  rules:
    - matches:
        - path: {type: PathPrefix, value: /simple}
      backendRefs:
        - {name: backend, port: 3000}
      sessionPersistence:
        sessionName: Simple
        absoluteTimeout: 5m
        cookieConfig:
          lifetimeType: Permanent
---
# GEP-1619 2: the default (Session) lifetime.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: lifetime
spec:
  rules:
    - matches:
        - path: {type: PathPrefix, value: /session}
      backendRefs:
        - {name: backend, port: 3000}
      sessionPersistence:
        sessionName: Life
        type: Cookie
---
# GEP-1619 3: 70/30 weights.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: weights
spec:
  rules:
    - matches:
        - path: {type: PathPrefix, value: /w}
      backendRefs:
        - {name: heavy, port: 80, weight: 70}
        - {name: light, port: 80, weight: 30}
      sessionPersistence:
        sessionName: W
---
# GEP-1619 4: two rules on one Service, names generated per rule.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: split
spec:
  rules:
    - matches:
        - path: {type: PathPrefix, value: /a}
      backendRefs:
        - {name: backend, port: 3000}
      sessionPersistence: {}
    - matches:
        - path: {type: PathPrefix, value: /b}
      backendRefs:
        - {name: backend, port: 3000}
      sessionPersistence: {}
---
# Envoy Gateway's e2e: /v2 with Session-A, /v1 without persistence.
apiVersion: gateway.networking.k8s.io/v1beta1
kind: HTTPRoute
metadata:
  name: eg
spec:
  rules:
    - matches:
        - path: {type: PathPrefix, value: /v2}
      backendRefs:
        - {name: backend, port: 3000}
      sessionPersistence:
        sessionName: Session-A
        type: Cookie
        absoluteTimeout: 10s
        cookieConfig:
          lifetimeType: Permanent
    - matches:
        - path: {type: PathPrefix, value: /v1}
      backendRefs:
        - {name: backend, port: 3000}
"#;

fn start() -> Proc {
    gateway_with_routes(ROUTES, &["--replicas", "4"])
}

#[tokio::test]
async fn simple_cookie_holds_for_50_requests_and_permanent_5m_is_max_age_300() {
    let gw = start();
    let http = Http::new();
    let first = http.get(&format!("{}/simple/get", gw.url), &[]).await;
    assert_eq!(first.status, 200);
    let set = first
        .set_cookie()
        .expect("Set-Cookie on the first response");
    assert!(set.starts_with("Simple="), "{set}");
    assert!(set.contains("; Max-Age=300;"), "{set}");
    let cookie = first.cookie_pair().expect("cookie");
    let pod = first.pod();
    for i in 0..50 {
        let r = http
            .get(
                &format!("{}/simple/get?i={i}", gw.url),
                &[("cookie", &cookie)],
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.pod(), pod, "request {i} left the pod");
        assert_eq!(r.set_cookie(), None, "a resumed session writes nothing");
    }
}

#[tokio::test]
async fn session_lifetime_cookie_has_no_max_age_or_expires() {
    let gw = start();
    let r = Http::new().get(&format!("{}/session", gw.url), &[]).await;
    let set = r.set_cookie().expect("Set-Cookie");
    assert!(set.starts_with("Life="), "{set}");
    let lower = set.to_ascii_lowercase();
    assert!(
        !lower.contains("max-age") && !lower.contains("expires"),
        "{set}"
    );
}

#[tokio::test]
async fn weights_70_30_for_new_sessions_and_sessions_ignore_them() {
    let gw = start();
    let http = Http::new();
    let (mut heavy, mut light) = (0, 0);
    for _ in 0..1000 {
        let r = http.get(&format!("{}/w", gw.url), &[]).await;
        match r.json_field("service").as_str() {
            "heavy" => heavy += 1,
            "light" => light += 1,
            other => panic!("unexpected service {other:?}"),
        }
    }
    assert!((650..=750).contains(&heavy), "heavy {heavy}, light {light}");
    // A session on the 30% side stays there, weights notwithstanding.
    let mut pinned = None;
    for _ in 0..50 {
        let r = http.get(&format!("{}/w", gw.url), &[]).await;
        if r.json_field("service") == "light" {
            pinned = Some((r.cookie_pair().expect("cookie"), r.pod()));
            break;
        }
    }
    let (cookie, pod) = pinned.expect("a session on the light side");
    for _ in 0..40 {
        let r = http
            .get(&format!("{}/w", gw.url), &[("cookie", &cookie)])
            .await;
        assert_eq!(r.pod(), pod);
    }
}

#[tokio::test]
async fn two_rules_on_one_service_have_independent_sessions() {
    let gw = start();
    let http = Http::new();
    let a = http.get(&format!("{}/a", gw.url), &[]).await;
    let b = http.get(&format!("{}/b", gw.url), &[]).await;
    let (ca, cb) = (a.set_cookie().expect("a"), b.set_cookie().expect("b"));
    assert!(ca.starts_with("httproute-default-split-rule-0="), "{ca}");
    assert!(cb.starts_with("httproute-default-split-rule-1="), "{cb}");
    assert!(
        ca.contains("Path=/a;") && cb.contains("Path=/b;"),
        "{ca}\n{cb}"
    );
    let (pa, pb) = (a.pod(), b.pod());
    let both = format!(
        "{}; {}",
        a.cookie_pair().expect("a"),
        b.cookie_pair().expect("b")
    );
    for _ in 0..20 {
        assert_eq!(
            http.get(&format!("{}/a", gw.url), &[("cookie", &both)])
                .await
                .pod(),
            pa
        );
        assert_eq!(
            http.get(&format!("{}/b", gw.url), &[("cookie", &both)])
                .await
                .pod(),
            pb
        );
    }
    // /a's value under /b's name is worth nothing there: a new session.
    let value = a.cookie_pair().expect("a");
    let value = value.split_once('=').expect("pair").1;
    let r = http
        .get(
            &format!("{}/b", gw.url),
            &[("cookie", &format!("httproute-default-split-rule-1={value}"))],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.set_cookie().is_some(),
        "a foreign rule's value starts a new session"
    );
}

#[tokio::test]
async fn envoy_gateway_v2_cookie_and_v1_without_persistence() {
    let gw = start();
    let http = Http::new();
    let v2 = http.get(&format!("{}/v2/get", gw.url), &[]).await;
    let set = v2.set_cookie().expect("Set-Cookie on /v2");
    let re = regex::Regex::new(
        r"^Session-A=[A-Za-z0-9_-]{66}; Max-Age=10; Path=/v2; HttpOnly; SameSite=Lax$",
    )
    .expect("regex");
    assert!(re.is_match(&set), "{set}");
    let v1 = http.get(&format!("{}/v1/get", gw.url), &[]).await;
    assert_eq!(v1.status, 200);
    assert_eq!(v1.set_cookie(), None);
}
