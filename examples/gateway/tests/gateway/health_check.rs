//! `--health-check-path`: the prober that revives backends marked down asks
//! them over HTTP, so a backend that accepts connections and then resets
//! them stays down instead of flapping.

use crate::failures::{Behaviour, RawBackend};
use crate::support::{Http, Proc, backends, echo, eventually, seed_gateway, until_backends};
use std::time::Duration;

/// Whether `/backends` says the endpoint at `addr` is unhealthy.
async fn unhealthy(http: &Http, gw: &Proc, addr: &str) -> bool {
    backends(http, gw)
        .await
        .iter()
        .any(|b| b["endpoint"] == addr && b["unhealthy"] == true)
}

/// A gateway over `addr` alone that marks it down at its first failure and
/// probes it with `GET /healthz`.
fn checked_gateway(addr: &str) -> Proc {
    seed_gateway(
        &format!("backend={addr}"),
        &[
            "--admin",
            "127.0.0.1:0",
            "--down-after",
            "1",
            "--health-check-path",
            "/healthz",
        ],
    )
}

/// Sends requests until `addr` is marked down (bounded).
async fn until_marked_down(http: &Http, gw: &Proc, addr: &str) {
    eventually(Duration::from_secs(20), "marked down", || async {
        if unhealthy(http, gw, addr).await {
            return Some(());
        }
        let _ = http.get(&format!("{}/get", gw.url), &[]).await;
        None
    })
    .await;
}

#[tokio::test]
async fn with_a_health_check_path_a_backend_that_accepts_then_resets_stays_down() {
    let resetter = RawBackend::start(Behaviour::Reset).await;
    let gw = checked_gateway(&resetter.addr);
    let http = Http::new();
    until_marked_down(&http, &gw, &resetter.addr).await;
    // The prober asks it twice (one probe a second) and it stays down: a
    // TCP connect alone would have revived it at the first.
    let probes = || {
        resetter
            .heads()
            .iter()
            .filter(|h| h.starts_with("GET /healthz HTTP/1.1"))
            .count()
    };
    eventually(Duration::from_secs(20), "two HTTP probes", || async {
        (probes() >= 2).then_some(())
    })
    .await;
    assert!(unhealthy(&http, &gw, &resetter.addr).await);
    // One ejection, by passive health, for the failure after the request
    // went out; the failed probes that keep it down are not ejections.
    let failed = [("backend", resetter.addr.as_str()), ("reason", "failed")];
    assert_eq!(ejections(&http, &gw, &failed).await, 1.0);
    assert_eq!(ejections(&http, &gw, &[]).await, 1.0);
    let logs = gw.logs();
    assert!(!logs.contains("accepts connections again"), "{logs}");
    let probe = resetter
        .heads()
        .into_iter()
        .find(|h| h.starts_with("GET /healthz"))
        .expect("a probe");
    assert!(
        probe
            .to_ascii_lowercase()
            .contains(&format!("host: {}", resetter.addr)),
        "{probe}"
    );
}

#[tokio::test]
async fn with_a_health_check_path_a_backend_that_answers_again_is_revived() {
    let mut pod = echo("echo-0");
    let addr = pod.addr.clone();
    let gw = checked_gateway(&addr);
    let http = Http::new();
    pod.kill();
    until_marked_down(&http, &gw, &addr).await;
    let refused = [("backend", addr.as_str()), ("reason", "refused")];
    assert_eq!(ejections(&http, &gw, &refused).await, 1.0);
    // Back on its address: the HTTP probe gets its 200.
    let mut back = Proc::start("echo", &["--listen", &addr, "--pod", "echo-0"]);
    until_backends(&http, &gw, "revived by the HTTP probe", |l| {
        l.iter()
            .any(|b| b["endpoint"] == addr.as_str() && b["unhealthy"] == false)
    })
    .await;
    let r = http.get(&format!("{}/get", gw.url), &[]).await;
    assert_eq!((r.status.as_u16(), r.pod()), (200, "echo-0".to_owned()));
    // Down again after its revival: a second ejection.
    back.kill();
    until_marked_down(&http, &gw, &addr).await;
    assert_eq!(ejections(&http, &gw, &refused).await, 2.0);
    assert_eq!(ejections(&http, &gw, &[]).await, 2.0);
}

/// `gateway_backend_ejections_total`, summed over the series with `labels`.
async fn ejections(http: &Http, gw: &Proc, labels: &[(&str, &str)]) -> f64 {
    crate::counters::sum(http, gw, "gateway_backend_ejections_total", labels).await
}

#[test]
fn a_health_check_path_must_be_a_path() {
    let err = crate::support::gateway_fails(&["--health-check-path", "healthz"]);
    assert!(err.contains("expected a path such as /healthz"), "{err}");
}
