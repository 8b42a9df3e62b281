//! Loop detection (issue 19, point 8): the gateway adds `Via: <protocol>
//! tower-sticky-<8 hex>` to what it forwards, and refuses a request that
//! carries its own element with 508, before any backend is picked.

use crate::counters::sum;
use crate::support::{Http, Proc, eventually, seed_gateway, seed_route};
use http::StatusCode;
use std::time::Duration;

/// A port that was free a moment ago, for a gateway whose backend is
/// its own address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn a_backend_that_is_the_gateway_itself_gets_508_after_one_hop() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let route = seed_route("1h");
    let backend = format!("backend={listen}");
    let gw = Proc::start(
        "gateway",
        &[
            "--listen",
            &listen,
            "--route",
            &route,
            "--backend",
            &backend,
            "--admin",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(gw.port(), port);
    let http = Http::new();
    let r = http
        .get(&format!("{}/get", gw.url), &[("via", "1.0 fred")])
        .await;
    assert_eq!(r.status, StatusCode::LOOP_DETECTED, "{}", r.body);
    assert_eq!(
        r.body,
        "508 loop detected: the request came back to this gateway\n"
    );
    // One request went to a backend: the client's, answered with what its
    // "backend" said. Its return was refused before any pick. Not ~256.
    let forwarded = sum(&http, &gw, "gateway_backend_requests_total", &[]).await;
    assert_eq!(forwarded, 1.0);
    // The operator is told why, once (the warning is the interface).
    let warned = eventually(Duration::from_secs(10), "the warning", || async {
        let n = gw.logs().matches("own Via").count();
        (n >= 1).then_some(n)
    })
    .await;
    assert_eq!(warned, 1, "{}", gw.logs());
}

#[tokio::test]
async fn the_backend_sees_the_clients_via_with_the_gateways_element_appended() {
    let echo = crate::support::echo("pod-a");
    let inner = seed_gateway(&format!("backend={}", echo.addr), &[]);
    let outer = seed_gateway(&format!("backend={}", inner.addr), &[]);
    let http = Http::new();
    let r = http
        .get(&format!("{}/get", inner.url), &[("via", "1.0 fred")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let via = r.seen_header("via").expect("the backend saw Via");
    let one = regex::Regex::new(r"^1\.0 fred, 1\.1 tower-sticky-[0-9a-f]{8}$").expect("re");
    assert!(one.is_match(&via), "{via}");

    // Two gateways in a chain each add their own, different pseudonym:
    // no false loop.
    let r = http
        .get(&format!("{}/get", outer.url), &[("via", "1.0 fred")])
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let via = r.seen_header("via").expect("the backend saw Via");
    let two = regex::Regex::new(
        r"^1\.0 fred, 1\.1 (tower-sticky-[0-9a-f]{8}), 1\.1 (tower-sticky-[0-9a-f]{8})$",
    )
    .expect("re");
    let c = two.captures(&via).unwrap_or_else(|| panic!("{via}"));
    assert_ne!(&c[1], &c[2], "{via}");
}
