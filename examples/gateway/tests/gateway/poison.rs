//! Issue 17, point 2: passive health that no client can turn into an
//! outage. The app closes the connection on one path without answering, as
//! a crashing handler does; a client sends requests there.

use crate::counters::sum;
use crate::raw::RawBackend;
use crate::support::{Http, backends, poll_admin, seed_gateway};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A pod that answers every path with its name, and closes the
/// connection without an answer on `/poison`.
fn pod(name: &'static str) -> RawBackend {
    RawBackend::start(move |req| {
        if req.path() == "/poison" {
            let _ = req.stream.shutdown(Shutdown::Both);
        } else {
            req.reply(name);
        }
    })
}

/// Three pods and a gateway (with `--admin`) in front of them.
fn three_pods() -> ([RawBackend; 3], crate::support::Proc) {
    let pods = [pod("pod-0"), pod("pod-1"), pod("pod-2")];
    let flag = format!("backend={},{},{}", pods[0].addr, pods[1].addr, pods[2].addr);
    // The prober's health check is the poisoned path: an ejected pod stays
    // ejected, so that what the test reads is passive health alone.
    let args = [
        "--admin",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--health-check-path",
        "/poison",
    ];
    let gw = seed_gateway(&flag, &args);
    (pods, gw)
}

/// `n` poison requests, one after another; each must get a 502.
async fn poison(http: &Http, gw: &crate::support::Proc, n: usize) {
    for i in 0..n {
        let r = http.get(&format!("{}/poison", gw.url), &[]).await;
        assert_eq!(r.status, 502, "poison request {i}: {}", r.body);
    }
}

/// How many endpoints `/backends` says are serving.
async fn serving(http: &Http, gw: &crate::support::Proc) -> usize {
    backends(http, gw)
        .await
        .iter()
        .filter(|b| b["state"] == "serving")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_poison_requests_leave_two_of_three_pods_serving_and_other_users_answered() {
    let (_pods, gw) = three_pods();
    let http = Http::new();
    // Other users, at the same time: new visitors and returning sessions.
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, sent) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let users: Vec<_> = (0..4)
        .map(|_| {
            let (stop, answered, sent) = (stop.clone(), answered.clone(), sent.clone());
            let url = format!("{}/get", gw.url);
            tokio::spawn(async move {
                let http = Http::new();
                let mut cookie: Option<String> = None;
                // Bounded by the stop flag and a count.
                for _ in 0..5_000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let headers: Vec<(&str, &str)> =
                        cookie.iter().map(|c| ("cookie", c.as_str())).collect();
                    let r = http.get(&url, &headers).await;
                    sent.fetch_add(1, Ordering::SeqCst);
                    if r.status == 200 {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    if let Some(c) = r.cookie_pair() {
                        cookie = Some(c);
                    }
                }
            })
        })
        .collect();
    // Each poison request goes out once the users have sent 5 more of
    // theirs: the two interleave.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for _ in 0..20 {
        let before = sent.load(Ordering::SeqCst);
        while sent.load(Ordering::SeqCst) < before + 5 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        poison(&http, &gw, 1).await;
    }
    stop.store(true, Ordering::SeqCst);
    for u in users {
        u.await.expect("user task");
    }
    let (answered, sent) = (answered.load(Ordering::SeqCst), sent.load(Ordering::SeqCst));
    eprintln!("other users: {answered} of {sent} answered during 20 poison requests");
    assert!(sent >= 100, "other users sent {sent}");
    assert!(
        answered * 100 >= sent * 95,
        "other users: {answered} of {sent} answered"
    );
    assert!(
        serving(&http, &gw).await >= 2,
        "{:?}",
        backends(&http, &gw).await
    );
    // Twenty more, with nobody else about (no success resets the counts):
    // the cap holds every ejection beyond the first, and says so.
    poison(&http, &gw, 20).await;
    let list = backends(&http, &gw).await;
    assert_eq!(
        list.iter().filter(|b| b["state"] == "serving").count(),
        2,
        "{list:?}"
    );
    assert!(
        list.iter().any(|b| b["held_back"] == true),
        "/backends says the cap holds: {list:?}"
    );
    poll_admin(&http, &gw, "/metrics", "the cap in /metrics", |r| {
        r.body
            .lines()
            .any(|l| l.starts_with("gateway_rule_ejections_held_back{") && !l.ends_with(" 0"))
    })
    .await;
    // The ejection counter counts the one pod really ejected, not the
    // held-back ones, and on that pod.
    let ejected: Vec<String> = list
        .iter()
        .filter(|b| b["state"] != "serving")
        .map(|b| b["label"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ejected.len(), 1, "{list:?}");
    let ejections = |labels: Vec<(&'static str, String)>| {
        let (http, gw) = (&http, &gw);
        async move {
            let labels: Vec<(&str, &str)> = labels.iter().map(|(l, v)| (*l, v.as_str())).collect();
            sum(http, gw, "gateway_backend_ejections_total", &labels).await
        }
    };
    assert_eq!(ejections(vec![]).await, 1.0);
    let on_it = vec![
        ("backend", ejected[0].clone()),
        ("reason", "failed".to_owned()),
    ];
    assert_eq!(ejections(on_it).await, 1.0);
    // The pods still serve everyone else.
    for _ in 0..10 {
        let r = http.get(&format!("{}/get", gw.url), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[tokio::test]
async fn when_every_endpoint_would_be_ejected_none_is_and_metrics_say_panic() {
    // One pod: the cap (1 in 10, at least 1) lets poison eject it, and then
    // no endpoint would serve: the panic rule serves it anyway.
    let pod = pod("pod-0");
    let flag = format!("backend={}", pod.addr);
    let gw = seed_gateway(
        &flag,
        &[
            "--admin",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--down-after",
            "1",
            "--health-check-path",
            "/poison",
        ],
    );
    let http = Http::new();
    poison(&http, &gw, 1).await;
    let list = backends(&http, &gw).await;
    assert_eq!(list[0]["ejection"], "failures", "{list:?}");
    assert_eq!(list[0]["in_panic"], true, "{list:?}");
    let failed = [("reason", "failed")];
    assert_eq!(
        sum(&http, &gw, "gateway_backend_ejections_total", &failed).await,
        1.0
    );
    for _ in 0..5 {
        let r = http.get(&format!("{}/get", gw.url), &[]).await;
        assert_eq!(r.status, 200, "served in panic: {}", r.body);
        assert_eq!(r.body, "pod-0");
    }
    poll_admin(&http, &gw, "/metrics", "panic in /metrics", |r| {
        r.body
            .lines()
            .any(|l| l.starts_with("gateway_rule_in_panic{") && l.ends_with(" 1"))
    })
    .await;
}
