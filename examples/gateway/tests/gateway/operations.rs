//! Operating the gateway live: EndpointSlice membership, drain, readiness
//! and hot reload, with real echo processes on distinct loopback addresses.

use crate::support::{
    Http, Proc, Session, assert_moved_only_from, backends, cookie_route, gateway, open, poll_admin,
    state_of, temp_file, until_backends, visit,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Echo pods `pod-0`, `pod-1`, … on 127.0.0.2, 127.0.0.3, … all on one
/// port, as pods of a Deployment are; returns them and the port.
pub fn loopback_echoes(n: usize) -> (Vec<Proc>, u16) {
    let first = Proc::start("echo", &["--listen", "127.0.0.2:0", "--pod", "pod-0"]);
    let port = first.port();
    let mut all = vec![first];
    for i in 1..n {
        let addr = format!("127.0.0.{}:{port}", i + 2);
        all.push(Proc::start(
            "echo",
            &["--listen", &addr, "--pod", &format!("pod-{i}")],
        ));
    }
    (all, port)
}

/// The address of pod `i` of [`loopback_echoes`].
pub fn pod_addr(i: usize, port: u16) -> String {
    format!("127.0.0.{}:{port}", i + 2)
}

/// An EndpointSlice of Service `default/backend` as kubectl prints it:
/// one endpoint per `(pod, conditions)`, the pods' common port.
pub fn slice_yaml(port: u16, endpoints: &[(usize, &str)]) -> String {
    let mut y = format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-abc12
  namespace: default
  labels:
    kubernetes.io/service-name: backend
    endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
addressType: IPv4
ports:
  - name: http
    port: {port}
    protocol: TCP
endpoints:
"
    );
    for (pod, conditions) in endpoints {
        y.push_str(&format!(
            "  - addresses: [\"127.0.0.{}\"]\n    conditions: {conditions}\n    targetRef: {{kind: Pod, name: pod-{pod}, namespace: default}}\n",
            pod + 2
        ));
    }
    y
}

pub const READY: &str = "{ready: true, serving: true, terminating: false}";
const TERMINATING: &str = "{ready: false, serving: true, terminating: true}";

/// Replaces `path` by rename, as kubelet and most tools do.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn route_file() -> std::path::PathBuf {
    let route = cookie_route(
        "app",
        "        sessionName: Session-A\n        type: Cookie\n",
    );
    temp_file("route.yaml", route.as_bytes())
}

fn start(slices: &Path) -> Proc {
    let route = route_file();
    gateway(&[
        "--route",
        route.to_str().expect("utf-8"),
        "--endpoints",
        slices.to_str().expect("utf-8"),
        "--admin",
        "127.0.0.1:0",
    ])
}

#[tokio::test]
async fn adding_an_endpoint_moves_no_session() {
    let (_pods, port) = loopback_echoes(3);
    let slices = temp_file(
        "slices.yaml",
        slice_yaml(port, &[(0, READY), (1, READY)]).as_bytes(),
    );
    let gw = start(&slices);
    let http = Http::new();
    let sessions = open(&http, &gw, 20).await;

    replace(
        &slices,
        &slice_yaml(port, &[(0, READY), (1, READY), (2, READY)]),
    );
    let third = pod_addr(2, port);
    until_backends(&http, &gw, "pod-2 joins", |l| {
        state_of(l, &third).as_deref() == Some("serving")
    })
    .await;

    for s in &sessions {
        let r = visit(&http, &gw, s).await;
        assert_eq!((r.status.as_u16(), r.pod()), (200, s.pod.clone()), "{s:?}");
        assert_eq!(r.set_cookie(), None, "a kept session gets no new cookie");
    }
    // The new pod takes new sessions.
    let fresh = open(&http, &gw, 12).await;
    assert!(fresh.iter().any(|s| s.pod == "pod-2"), "{fresh:?}");
}

#[tokio::test]
async fn removing_an_endpoint_moves_only_its_sessions_with_new_cookies_and_no_request_fails() {
    let (_pods, port) = loopback_echoes(3);
    let all = [(0, READY), (1, READY), (2, READY)];
    let slices = temp_file("slices.yaml", slice_yaml(port, &all).as_bytes());
    let gw = start(&slices);
    let http = Http::new();
    let sessions = open(&http, &gw, 30).await;
    assert!(sessions.iter().any(|s| s.pod == "pod-2"));

    // Requests keep flowing on every session, pod-2's included, while the
    // slice changes and after; pod-2 keeps running throughout.
    let failures = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (http, url, sessions) = (http.clone(), gw.url.clone(), sessions.clone());
        let (failures, sent, stop) = (Arc::clone(&failures), Arc::clone(&sent), Arc::clone(&stop));
        tokio::spawn(async move {
            let until = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                for s in &sessions {
                    let r = http
                        .get(&format!("{url}/get"), &[("cookie", &s.cookie)])
                        .await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    if r.status != 200 {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    let more_than = |n: usize| {
        let sent = Arc::clone(&sent);
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while sent.load(Ordering::Relaxed) < n {
                assert!(Instant::now() < deadline, "the load stalled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    more_than(30).await;
    std::fs::write(&slices, slice_yaml(port, &all[..2])).expect("write in place");
    let gone = pod_addr(2, port);
    until_backends(&http, &gw, "pod-2 leaves", |l| state_of(l, &gone).is_none()).await;
    more_than(sent.load(Ordering::Relaxed) + 60).await;
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load");
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(sent.load(Ordering::Relaxed) >= 90);

    for s in &sessions {
        assert_moved_only_from(&visit(&http, &gw, s).await, s, "pod-2");
    }
}

#[tokio::test]
async fn draining_keeps_sessions_until_the_deadline_then_moves_them_with_new_cookies() {
    let (_pods, port) = loopback_echoes(2);
    let slices = temp_file(
        "slices.yaml",
        slice_yaml(port, &[(0, READY), (1, READY)]).as_bytes(),
    );
    let gw = start(&slices);
    let admin = gw.admin.clone().expect("admin");
    let http = Http::new();
    let sessions = open(&http, &gw, 10).await;
    let on_0: Vec<&Session> = sessions.iter().filter(|s| s.pod == "pod-0").collect();
    assert!(!on_0.is_empty());

    let drained = pod_addr(0, port);
    let post = |q: String| {
        let http = http.clone();
        let admin = admin.clone();
        async move {
            http.send("POST", &format!("{admin}{q}"), &[], Default::default())
                .await
        }
    };
    let r = post(format!(
        "/backends/drain?service=default/backend&endpoint={drained}&deadline=6s"
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("\"draining\""), "{}", r.body);
    let drained_at = Instant::now();

    // Before the deadline: its sessions stay, new ones go elsewhere.
    for s in &on_0 {
        let r = visit(&http, &gw, s).await;
        assert_eq!((r.status.as_u16(), r.pod()), (200, "pod-0".into()));
        assert_eq!(r.set_cookie(), None);
    }
    for s in open(&http, &gw, 8).await {
        assert_eq!(s.pod, "pod-1", "a draining pod takes no new session");
    }
    assert!(
        drained_at.elapsed() < Duration::from_secs(6),
        "too slow to check before the deadline"
    );

    // After it: down, and its sessions re-pin with a new cookie.
    until_backends(&http, &gw, "deadline passes", |l| {
        state_of(l, &drained).as_deref() == Some("down")
    })
    .await;
    for s in &on_0 {
        let r = visit(&http, &gw, s).await;
        assert_eq!((r.status.as_u16(), r.pod()), (200, "pod-1".into()));
        assert!(r.set_cookie().is_some());
    }

    let r = post(format!(
        "/backends/undrain?service=default/backend&endpoint={drained}"
    ))
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = backends(&http, &gw).await;
    assert_eq!(state_of(&list, &drained).as_deref(), Some("serving"));

    // The error answers.
    let status = |q: &'static str, method: &'static str| {
        let http = http.clone();
        let admin = admin.clone();
        async move {
            let r = http
                .send(method, &format!("{admin}{q}"), &[], Default::default())
                .await;
            (r.status.as_u16(), r.body)
        }
    };
    let (code, body) = status(
        "/backends/drain?service=default/nope&endpoint=127.0.0.2:1",
        "POST",
    )
    .await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = status(
        "/backends/drain?service=default/backend&endpoint=127.0.0.9:1",
        "POST",
    )
    .await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = status(
        "/backends/drain?service=default/backend&endpoint=127.0.0.2:1&deadline=soon",
        "POST",
    )
    .await;
    assert_eq!(code, 400);
    assert!(body.contains("deadline"), "{body}");
    let (code, body) = status("/backends/drain?endpoint=127.0.0.2:1", "POST").await;
    assert_eq!(code, 400);
    assert!(body.contains("service"), "{body}");
    assert_eq!(status("/backends/drain", "GET").await.0, 405);
    assert_eq!(status("/backends", "POST").await.0, 405);
    assert_eq!(status("/reload", "GET").await.0, 405);
}

#[tokio::test]
async fn terminating_but_serving_keeps_its_sessions_and_takes_no_new_ones() {
    let (_pods, port) = loopback_echoes(2);
    let slices = temp_file(
        "slices.yaml",
        slice_yaml(port, &[(0, READY), (1, READY)]).as_bytes(),
    );
    let gw = start(&slices);
    let http = Http::new();
    let sessions = open(&http, &gw, 10).await;
    replace(&slices, &slice_yaml(port, &[(0, READY), (1, TERMINATING)]));
    let terminating = pod_addr(1, port);
    until_backends(&http, &gw, "pod-1 terminating", |l| {
        state_of(l, &terminating).as_deref() == Some("draining")
    })
    .await;
    for s in &sessions {
        let r = visit(&http, &gw, s).await;
        assert_eq!((r.status.as_u16(), r.pod()), (200, s.pod.clone()));
    }
    for s in open(&http, &gw, 10).await {
        assert_eq!(s.pod, "pod-0", "a terminating pod takes no new session");
    }
}

#[tokio::test]
async fn five_reloads_under_continuous_load_lose_and_misroute_nothing() {
    let (_pods, port) = loopback_echoes(3);
    let slices = temp_file(
        "slices.yaml",
        slice_yaml(port, &[(0, READY), (1, READY), (2, READY)]).as_bytes(),
    );
    // Two key files, both the old key at first.
    let signing = temp_file("signing.key", &[1u8; 32]);
    let verifying = temp_file("verifying.key", &[1u8; 32]);
    let id_key = temp_file("id.key", &[3u8; 32]);
    let route = route_file();
    let gw = gateway(&[
        "--route",
        route.to_str().expect("utf-8"),
        "--endpoints",
        slices.to_str().expect("utf-8"),
        "--key-file",
        signing.to_str().expect("utf-8"),
        "--key-file",
        verifying.to_str().expect("utf-8"),
        "--backend-id-key",
        id_key.to_str().expect("utf-8"),
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = gw.admin.clone().expect("admin");
    let http = Http::new();
    let sessions = open(&http, &gw, 12).await;

    let errors = Arc::new(AtomicUsize::new(0));
    let misroutes = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (http, url, sessions) = (http.clone(), gw.url.clone(), sessions.clone());
        let (errors, misroutes, sent, stop) = (
            Arc::clone(&errors),
            Arc::clone(&misroutes),
            Arc::clone(&sent),
            Arc::clone(&stop),
        );
        tokio::spawn(async move {
            let until = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                for s in &sessions {
                    let r = http
                        .get(&format!("{url}/get"), &[("cookie", &s.cookie)])
                        .await;
                    sent.fetch_add(1, Ordering::Relaxed);
                    if r.status != 200 {
                        errors.fetch_add(1, Ordering::Relaxed);
                    } else if r.pod() != s.pod {
                        misroutes.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };

    // Five reloads, by POST /reload and SIGHUP in turn: plain ones, a key
    // rotation (a new signing key; the old one still verifies) and a route
    // edit.
    let reload = |how: &'static str| {
        let http = http.clone();
        let admin = admin.clone();
        let pid = gw.pid();
        async move {
            if how == "sighup" {
                let ok = std::process::Command::new("kill")
                    .args(["-HUP", &pid.to_string()])
                    .status()
                    .expect("kill")
                    .success();
                assert!(ok);
            } else {
                let r = http
                    .send("POST", &format!("{admin}/reload"), &[], Default::default())
                    .await;
                assert_eq!(r.status, 200, "{}", r.body);
            }
        }
    };
    let reloads_ok = |http: Http, admin: String| async move {
        let m = http.get(&format!("{admin}/metrics"), &[]).await.body;
        m.lines()
            .filter(|l| l.starts_with("gateway_reloads_total{") && l.contains("result=\"ok\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as usize
    };
    let mut expected = 0;
    for step in 0..5 {
        let before = sent.load(Ordering::Relaxed);
        match step {
            2 => std::fs::write(&signing, [2u8; 32]).expect("new key"),
            3 => {
                // A route edit: the same rule, another timeout attribute.
                let edited = cookie_route(
                    "app",
                    "        sessionName: Session-A\n        type: Cookie\n        idleTimeout: 1h\n",
                );
                replace(&route, &edited);
            }
            _ => {}
        }
        reload(if step % 2 == 0 { "post" } else { "sighup" }).await;
        expected += 1;
        let deadline = Instant::now() + Duration::from_secs(20);
        while reloads_ok(http.clone(), admin.clone()).await < expected {
            assert!(Instant::now() < deadline, "reload {step} not done");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Load went on through this reload.
        let deadline = Instant::now() + Duration::from_secs(20);
        while sent.load(Ordering::Relaxed) < before + 24 {
            assert!(Instant::now() < deadline, "no load after reload {step}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load");
    assert_eq!(errors.load(Ordering::Relaxed), 0, "errors");
    assert_eq!(misroutes.load(Ordering::Relaxed), 0, "misroutes");
    assert!(sent.load(Ordering::Relaxed) >= 5 * 24);
}

#[tokio::test]
async fn a_broken_file_keeps_the_old_configuration_names_the_field_and_is_counted() {
    let (_pods, port) = loopback_echoes(2);
    let slices = temp_file(
        "slices.yaml",
        slice_yaml(port, &[(0, READY), (1, READY)]).as_bytes(),
    );
    let gw = start(&slices);
    let admin = gw.admin.clone().expect("admin");
    let http = Http::new();
    let sessions = open(&http, &gw, 6).await;

    let broken = slice_yaml(port, &[(0, READY), (1, READY)])
        .replace("[\"127.0.0.3\"]", "[\"not an address\"]");
    replace(&slices, &broken);
    let r = http
        .send("POST", &format!("{admin}/reload"), &[], Default::default())
        .await;
    assert_eq!(r.status, 500, "{}", r.body);
    let file = slices.to_str().expect("utf-8");
    for needle in [file, "document 1", "endpoints[1].addresses[0]"] {
        assert!(r.body.contains(needle), "{needle:?} missing: {}", r.body);
    }
    // The watcher saw it too; each failure is counted.
    poll_admin(&http, &gw, "/metrics", "a failed reload counted", |r| {
        r.body.lines().any(|l| {
            l.starts_with("gateway_reloads_total{")
                && l.contains("result=\"failed\"")
                && !l.ends_with(" 0")
        })
    })
    .await;
    assert!(
        gw.logs().contains("endpoints[1].addresses[0]"),
        "{}",
        gw.logs()
    );
    // The old configuration serves on.
    for s in &sessions {
        let r = visit(&http, &gw, s).await;
        assert_eq!((r.status.as_u16(), r.pod()), (200, s.pod.clone()));
    }
    assert_eq!(backends(&http, &gw).await.len(), 2);
}

#[tokio::test]
async fn readyz_turns_503_as_graceful_shutdown_starts_and_backends_lists_every_endpoint() {
    let (_pods, port) = loopback_echoes(2);
    let slices = temp_file(
        "slices.yaml",
        slice_yaml(port, &[(0, READY), (1, TERMINATING)]).as_bytes(),
    );
    let mut gw = start(&slices);
    let admin = gw.admin.clone().expect("admin");
    let http = Http::new();
    open(&http, &gw, 4).await;

    let list = backends(&http, &gw).await;
    assert_eq!(list.len(), 2, "{list:#?}");
    let by_endpoint: HashMap<String, &serde_json::Value> = list
        .iter()
        .map(|b| (b["endpoint"].as_str().unwrap_or_default().to_owned(), b))
        .collect();
    let a = by_endpoint[&pod_addr(0, port)];
    assert_eq!(a["service"], "default/backend");
    assert_eq!(a["state"], "serving");
    assert_eq!(a["requests"], 4);
    assert_eq!(a["sessions"], 4);
    assert_eq!(by_endpoint[&pod_addr(1, port)]["state"], "draining");

    let h = http.get(&format!("{admin}/healthz"), &[]).await;
    assert_eq!(h.status, 200);
    let r = http.get(&format!("{admin}/readyz"), &[]).await;
    assert_eq!(r.status, 200);

    // A slow request keeps the graceful shutdown going for a while.
    let slow = {
        let (http, url) = (http.clone(), gw.url.clone());
        tokio::spawn(async move {
            http.get(&format!("{url}/get"), &[("x-echo-delay-ms", "3000")])
                .await
        })
    };
    // The slow request is at its backend: /backends counts it waiting.
    until_backends(&http, &gw, "the slow request never left", |l| {
        l.iter().any(|b| b["waiting"].as_u64() != Some(0))
    })
    .await;
    gw.signal("TERM");
    poll_admin(&http, &gw, "/readyz", "readyz after SIGTERM", |r| {
        r.status == 503
    })
    .await;
    assert_eq!(slow.await.expect("slow").status, 200, "in-flight finishes");
    assert!(gw.wait_exit(Duration::from_secs(15)).is_some());
}
