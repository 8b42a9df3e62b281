//! The control plane follows what it is told (issue 19, findings 3 to 6):
//! metrics of departed endpoints go, empty and shrinking Services are
//! called out, and applying thousands of endpoints does not stall clients.

use crate::support::{Http, Proc, cookie_route, gateway, poll_admin, temp_file};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Four clients sending their sessions' requests until `stop` (bounded: at
/// most `max` and 100,000 requests each), counting what was sent, what
/// failed or moved, and the slowest answer.
struct StickyLoad {
    stop: Arc<AtomicBool>,
    slowest_us: Arc<AtomicU64>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl StickyLoad {
    fn start(url: &str, sessions: &[crate::support::Session], max: Duration) -> StickyLoad {
        let load = StickyLoad {
            stop: Arc::new(AtomicBool::new(false)),
            slowest_us: Arc::new(AtomicU64::new(0)),
            sent: Arc::new(AtomicUsize::new(0)),
            failed: Arc::new(AtomicUsize::new(0)),
            tasks: Vec::new(),
        };
        let tasks = (0..4)
            .map(|c| {
                let (http, url, sessions) = (Http::new(), url.to_owned(), sessions.to_vec());
                let (stop, slowest_us, sent, failed) = (
                    Arc::clone(&load.stop),
                    Arc::clone(&load.slowest_us),
                    Arc::clone(&load.sent),
                    Arc::clone(&load.failed),
                );
                tokio::spawn(async move {
                    let until = Instant::now() + max;
                    let mut i = c;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until && i < 100_000 {
                        let s = &sessions[i % sessions.len()];
                        let started = Instant::now();
                        let r = http
                            .get(&format!("{url}/get"), &[("cookie", &s.cookie)])
                            .await;
                        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                        slowest_us.fetch_max(us, Ordering::Relaxed);
                        sent.fetch_add(1, Ordering::Relaxed);
                        if r.status != 200 || r.pod() != s.pod {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        i += 4;
                    }
                })
            })
            .collect();
        StickyLoad { tasks, ..load }
    }
}

/// An EndpointSlice of Service `default/backend` with `ports` and
/// `endpoints` as given (YAML flow values).
fn slice(ports: &str, endpoints: &str) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-abc12
  namespace: default
  labels: {{kubernetes.io/service-name: backend}}
addressType: IPv4
ports: {ports}
endpoints: {endpoints}
"
    )
}

/// `n` ready endpoints on 127.0.1.1, 127.0.1.2, … (nothing listens there:
/// these tests send them no request).
fn ready(n: usize) -> String {
    let all: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{{addresses: [\"127.0.{}.{}\"], conditions: {{ready: true}}}}",
                1 + i / 250,
                1 + i % 250
            )
        })
        .collect();
    format!("[{}]", all.join(", "))
}

const PORT: &str = "[{name: http, port: 9}]";

/// Replaces `path` by rename.
fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn start(slices: &Path) -> Proc {
    let route = cookie_route(
        "app",
        "        sessionName: Session-A\n        type: Cookie\n",
    );
    let route = temp_file("route.yaml", route.as_bytes());
    gateway(&[
        "--route",
        route.to_str().expect("utf-8"),
        "--endpoints",
        slices.to_str().expect("utf-8"),
        "--admin",
        "127.0.0.1:0",
    ])
}

/// The `name{…}` lines of a Prometheus page.
fn series<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    let prefix = format!("{name}{{");
    page.lines().filter(|l| l.starts_with(&prefix)).collect()
}

#[tokio::test]
async fn metrics_have_no_series_for_endpoints_that_left() {
    let slices = temp_file("slices.yaml", slice(PORT, &ready(200)).as_bytes());
    let gw = start(&slices);
    let http = Http::new();
    let m = poll_admin(&http, &gw, "/metrics", "200 endpoints", |r| {
        series(&r.body, "gateway_backend_up").len() == 200
    })
    .await;
    assert_eq!(series(&m.body, "gateway_backend_requests_total").len(), 200);

    replace(&slices, &slice(PORT, &ready(2)));
    let m = poll_admin(&http, &gw, "/metrics", "198 endpoints leave", |r| {
        series(&r.body, "gateway_backend_up").len() == 2
    })
    .await;
    let page = m.body;
    assert_eq!(
        series(&page, "gateway_backend_requests_total").len(),
        2,
        "{page}"
    );
    for gone in ["127.0.1.3:9", "127.0.1.200:9"] {
        assert!(
            !page.contains(&format!("\"{gone}\"")),
            "{gone} still in {page}"
        );
    }
    for kept in ["127.0.1.1:9", "127.0.1.2:9"] {
        let up = format!(
            "gateway_backend_up{{route=\"default/app\",rule=\"0\",service=\"backend\",backend=\"{kept}\"}} 1"
        );
        assert!(page.contains(&up), "{up} missing from {page}");
    }
}

#[tokio::test]
async fn a_slice_leaving_no_usable_endpoint_or_half_is_logged_and_readyz_says_so() {
    let slices = temp_file("slices.yaml", slice(PORT, &ready(6)).as_bytes());
    let gw = start(&slices);
    let http = Http::new();
    let r = poll_admin(&http, &gw, "/readyz", "ready", |r| r.status == 200).await;
    assert_eq!(r.body, "ready\n");

    // Six to two: more than half gone, the file-writing rule is recalled.
    replace(&slices, &slice(PORT, &ready(2)));
    poll_log(&gw, "shrank from 6 to 2 usable endpoints").await;
    assert!(
        gw.logs()
            .contains("write it to a temporary file and rename it")
    );

    for (ports, endpoints) in [
        ("[]", ready(2)),
        ("null", ready(2)),
        (PORT, "null".to_owned()),
    ] {
        replace(&slices, &slice(PORT, &ready(2)));
        poll_admin(&http, &gw, "/readyz", "endpoints back", |r| {
            r.body == "ready\n"
        })
        .await;
        let warnings = gw.logs().matches("has 0 usable endpoints").count();
        replace(&slices, &slice(ports, &endpoints));
        let r = poll_admin(&http, &gw, "/readyz", "says the Service is empty", |r| {
            r.body.contains("default/backend:")
        })
        .await;
        assert_eq!(r.status, 200, "the other Services still serve");
        assert_eq!(
            r.body, "ready\nService default/backend:3000: 0 usable endpoints\n",
            "ports {ports}, endpoints {endpoints}"
        );
        assert!(
            gw.logs().matches("has 0 usable endpoints").count() > warnings,
            "ports {ports}, endpoints {endpoints}: no warning"
        );
    }
}

/// Polls the gateway's log (at most 20 s) until it contains `needle`.
async fn poll_log(gw: &Proc, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !gw.logs().contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} not logged: {}",
            gw.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// What this guards: applying a big slice must not stall the data path.
/// Before issue 19 the plan ran on worker 0, and with it there this test's
/// slowest request took 2.8 s (a stall for the whole apply); on the control
/// plane's own thread it takes 70 ms, and 333 ms was seen once at load 6.7
/// with four builds on the machine's 2 cores. The bound, 1 s, is 14 times
/// the usual figure, 3 times the worst seen under load, and under the bug's
/// third. How fast an apply is, is a benchmark's question, not this test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applying_10000_endpoints_fails_no_client_request_and_stalls_none_for_a_second() {
    let (_pods, port) = crate::operations::loopback_echoes(2);
    let real = |extra: usize| {
        let mut endpoints: Vec<String> = (0..2)
            .map(|i| {
                format!(
                    "{{addresses: [\"127.0.0.{}\"], conditions: {{ready: true}}}}",
                    i + 2
                )
            })
            .collect();
        // Ready endpoints nothing listens on: only new sessions would go
        // there, and this load has none.
        endpoints.extend((0..extra).map(|i| {
            format!(
                "{{addresses: [\"127.1.{}.{}\"], conditions: {{ready: true}}}}",
                i / 250,
                1 + i % 250
            )
        }));
        slice(
            &format!("[{{name: http, port: {port}}}]"),
            &format!("[{}]", endpoints.join(", ")),
        )
    };
    let slices = temp_file("slices.yaml", real(0).as_bytes());
    let gw = start(&slices);
    let http = Http::new();
    let sessions = crate::support::sessions_on_every_pod(&http, &gw, 2).await;

    let StickyLoad {
        stop,
        slowest_us,
        sent,
        failed,
        tasks: load,
    } = StickyLoad::start(&gw.url, &sessions, Duration::from_secs(60));
    // Load runs, then 10,000 endpoints arrive.
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent.load(Ordering::Relaxed) < 200 {
        assert!(Instant::now() < deadline, "no load");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = slowest_us.load(Ordering::Relaxed);
    replace(&slices, &real(9_998));
    let applied = |r: &crate::support::Resp| {
        r.body.lines().any(|l| {
            l.starts_with("gateway_reloads_total{")
                && l.contains("what=\"endpoints\"")
                && l.contains("result=\"ok\"")
        })
    };
    let m = poll_admin(&http, &gw, "/metrics", "10,000 endpoints applied", applied).await;
    assert_eq!(series(&m.body, "gateway_backend_up").len(), 10_000);
    // Some load after it too.
    let after = sent.load(Ordering::Relaxed) + 200;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent.load(Ordering::Relaxed) < after {
        assert!(Instant::now() < deadline, "no load after the change");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.expect("load");
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed or moved requests"
    );
    let slowest = Duration::from_micros(slowest_us.load(Ordering::Relaxed));
    eprintln!(
        "slowest request {slowest:?} (before the change: {:?}) of {}",
        Duration::from_micros(before),
        sent.load(Ordering::Relaxed)
    );
    assert!(
        slowest < Duration::from_secs(1),
        "slowest request {slowest:?} (before the change: {:?}), of {}: the data path stalled",
        Duration::from_micros(before),
        sent.load(Ordering::Relaxed)
    );
}

/// An HTTPRoute `default/{name}` with `count` plain rules `/r{first}`… to
/// Service `backend`.
fn many_rules(name: &str, first: usize, count: usize) -> String {
    let mut y = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  rules:
"
    );
    for i in first..first + count {
        y.push_str(&format!(
            "    - matches: [{{path: {{type: PathPrefix, value: /r{i}}}}}]\n      backendRefs: [{{name: backend, port: 3000}}]\n"
        ));
    }
    y
}

/// What this guards: ten reloads asked for at once are coalesced, and the
/// data path never waits for one. A reload of these 5,000 rules takes about
/// 1.5 s in a debug build (the `answered in` figure), so a reload on a
/// worker's thread would stall its clients at least that long; off it, the
/// slowest request takes 13 to 33 ms, and 403 ms was seen once at load 8
/// with builds on the machine's 2 cores. The bound, 750 ms, is about twice
/// the worst seen under load and half of one reload. How fast a reload is,
/// is a benchmark's question, not this test's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_reloads_of_5000_rules_at_once_coalesce_and_stall_no_client() {
    use hyper::body::Bytes;

    let (_pods, backend) = crate::support::echoes(2);
    let mut yaml = cookie_route(
        "app",
        "        sessionName: Session-A\n        type: Cookie\n",
    );
    for r in 0..50 {
        yaml.push_str("---\n");
        yaml.push_str(&many_rules(&format!("many-{r}"), r * 100, 100));
    }
    let routes = temp_file("routes.yaml", yaml.as_bytes());
    let gw = gateway(&[
        "--route",
        routes.to_str().expect("utf-8"),
        "--backend",
        &backend,
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = gw.admin.clone().expect("admin");
    let http = Http::new();
    let sessions = crate::support::sessions_on_every_pod(&http, &gw, 2).await;

    let StickyLoad {
        stop,
        slowest_us,
        sent,
        failed,
        tasks: load,
    } = StickyLoad::start(&gw.url, &sessions, Duration::from_secs(120));
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent.load(Ordering::Relaxed) < 200 {
        assert!(Instant::now() < deadline, "no load");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Ten reloads asked for at once, each on its own connection.
    let started = Instant::now();
    let asks: Vec<_> = (0..10)
        .map(|_| {
            let (http, admin) = (Http::new(), admin.clone());
            tokio::spawn(async move {
                http.send("POST", &format!("{admin}/reload"), &[], Bytes::new())
                    .await
            })
        })
        .collect();
    for a in asks {
        let r = a.await.expect("reload request");
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let took = started.elapsed();
    let m = http.get(&format!("{admin}/metrics"), &[]).await.body;
    let reloads: f64 = m
        .lines()
        .filter(|l| l.starts_with("gateway_reloads_total{") && l.contains("what=\"everything\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.expect("load");
    }
    let slowest = Duration::from_micros(slowest_us.load(Ordering::Relaxed));
    eprintln!(
        "10 reload requests answered in {took:?} by {reloads} reloads; slowest request {slowest:?} of {}",
        sent.load(Ordering::Relaxed)
    );
    assert!(
        (1.0..10.0).contains(&reloads),
        "{reloads} reloads for 10 requests at once"
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed or moved requests"
    );
    assert!(
        slowest < Duration::from_millis(750),
        "slowest request {slowest:?}: the data path stalled"
    );
}
