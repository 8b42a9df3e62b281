//! The admin port guards itself (issue 19, findings 1, 2 and 9): limits on
//! what a connection may hold, no cross-site or rebound requests, nothing
//! done before a request has arrived whole.

use crate::support::{
    Http, Proc, backends, echoes, raw_exchange, seed_gateway, seed_route, sessions_on_every_pod,
    state_of,
};
use hyper::body::Bytes;
use std::io::Write;
use std::time::{Duration, Instant};

/// Whether the server has not closed `s` (nonblocking): nothing to read
/// yet. Whatever it sent is read and dropped.
fn still_open(s: &mut std::net::TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match std::io::Read::read(s, &mut buf) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
}

/// A request on a new connection to the data plane, answered in full.
fn served(addr: &str) -> bool {
    raw_exchange(
        addr,
        b"GET /get HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .starts_with("HTTP/1.1 200")
}

#[tokio::test]
async fn admin_slowloris_under_a_low_descriptor_limit_starves_no_client_and_is_timed_out() {
    let (_pods, backend) = echoes(2);
    let route = seed_route("1h");
    let gw = Proc::gateway_after(
        "ulimit -n 128",
        &[
            "--route",
            &route,
            "--backend",
            &backend,
            "--threads",
            "1",
            "--admin",
            "127.0.0.1:0",
            "--admin-head-timeout",
            "4s",
            "--admin-max-connections",
            "50",
        ],
    );
    let admin = gw.admin.clone().expect("admin");
    let admin_addr = admin.trim_start_matches("http://").to_owned();
    assert!(served(&gw.addr));

    // More half-sent heads than the gateway has descriptors.
    let mut loris = Vec::new();
    for _ in 0..150 {
        let mut s = std::net::TcpStream::connect(&admin_addr).expect("connect");
        s.write_all(b"GET /backends HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .expect("half a head");
        s.set_nonblocking(true).expect("nonblocking");
        loris.push(s);
    }
    // Clients on new connections are served while every half-sent head is
    // still open (none has reached the head timeout yet): they did not
    // wait for the admin port to let go of descriptors.
    for i in 0..20 {
        assert!(
            served(&gw.addr),
            "client {i} not served during the slowloris"
        );
    }
    let open = loris.iter_mut().map(still_open).filter(|o| *o).count();
    assert_eq!(
        open,
        loris.len(),
        "clients were served only once the slowloris ended"
    );

    // Every half-sent head is closed by the head timeout (50 at a time).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !loris.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{} of 150 half-sent heads still open",
            loris.len()
        );
        loris.retain_mut(still_open);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And the admin port itself serves again.
    let r = Http::new().get(&format!("{admin}/healthz"), &[]).await;
    assert_eq!(r.status, 200);
    assert!(served(&gw.addr));
}

#[tokio::test]
async fn a_browser_shaped_cross_site_drain_is_refused_and_both_backends_keep_serving() {
    let (_pods, backend) = echoes(2);
    let gw = seed_gateway(
        &backend,
        &["--admin", "127.0.0.1:0", "--admin-host", "admin.internal"],
    );
    let admin = gw.admin.clone().expect("admin");
    let http = Http::new();
    let endpoints: Vec<String> = backends(&http, &gw)
        .await
        .iter()
        .map(|b| b["endpoint"].as_str().expect("endpoint").to_owned())
        .collect();
    assert_eq!(endpoints.len(), 2);
    let drain = |e: &str| format!("{admin}/backends/drain?service=default/backend&endpoint={e}");

    // What a page at evil.example makes a browser send: a no-cors POST.
    let browser = [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-mode", "no-cors"),
        ("content-type", "text/plain;charset=UTF-8"),
    ];
    for e in &endpoints {
        let r = http
            .send("POST", &drain(e), &browser, Bytes::from_static(b"x"))
            .await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert_eq!(
            r.header("x-content-type-options").as_deref(),
            Some("nosniff")
        );
    }
    // A form post from an older browser (no Sec-Fetch-*): its Origin.
    let form = [
        ("origin", "https://evil.example"),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    let r = http
        .send(
            "POST",
            &format!("{admin}/reload"),
            &form,
            Bytes::from_static(b"a=1"),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // Both backends serve: listed so, and new sessions reach both.
    let list = backends(&http, &gw).await;
    for e in &endpoints {
        assert_eq!(state_of(&list, e).as_deref(), Some("serving"));
    }
    let sessions = sessions_on_every_pod(&http, &gw, 2).await;
    let mut pods: Vec<&str> = sessions.iter().map(|s| s.pod.as_str()).collect();
    pods.sort_unstable();
    pods.dedup();
    assert_eq!(pods, ["echo-0", "echo-1"]);

    // DNS rebinding: a foreign Host is refused, with or without a port,
    // and the answer names no endpoint.
    for host in ["rebind.evil.example", "rebind.evil.example:9901"] {
        let r = http
            .get(&format!("{admin}/backends"), &[("host", host)])
            .await;
        assert_eq!(r.status, 421, "{}", r.body);
        assert!(!r.body.contains(&endpoints[0]), "{}", r.body);
    }
    // Plain clients pass: kubectl port-forward (localhost, another port),
    // an --admin-host name, and curl's drain without browser headers.
    for host in ["localhost:18080", "admin.internal"] {
        let r = http
            .get(&format!("{admin}/backends"), &[("host", host)])
            .await;
        assert_eq!(r.status, 200, "{host}: {}", r.body);
    }
    let r = http
        .send("POST", &drain(&endpoints[0]), &[], Bytes::new())
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let list = backends(&http, &gw).await;
    assert_eq!(state_of(&list, &endpoints[0]).as_deref(), Some("draining"));
}

#[tokio::test]
async fn admin_requests_are_whole_hosted_and_answered_without_echoing_input() {
    let (_pods, backend) = echoes(1);
    let gw = seed_gateway(
        &backend,
        &["--admin", "127.0.0.1:0", "--admin-max-body", "64"],
    );
    let admin = gw.admin.clone().expect("admin");
    let addr = admin.trim_start_matches("http://").to_owned();
    let http = Http::new();

    // HTTP/1.1 without Host.
    let r = raw_exchange(&addr, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");

    // A /reload whose body never arrives whole is not acted on.
    let r = {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(b"POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc")
            .expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("half-close");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    };
    assert!(!r.starts_with("HTTP/1.1 200"), "{r}");
    let m = http.get(&format!("{admin}/metrics"), &[]).await.body;
    assert!(!m.contains("gateway_reloads_total"), "a reload ran: {m}");

    // Too big a body: 413, and nothing done.
    let r = http
        .send(
            "POST",
            &format!("{admin}/reload"),
            &[],
            Bytes::from(vec![b'x'; 65]),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.body);
    // A whole one: the reload runs.
    let r = http
        .send(
            "POST",
            &format!("{admin}/reload"),
            &[],
            Bytes::from_static(b"{}"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);

    // `%+1` is no percent-encoding; input comes back escaped, never raw.
    let r = http
        .send(
            "POST",
            &format!("{admin}/backends/drain?service=default/backend%+1&endpoint=a:1"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("percent"), "{}", r.body);
    let r = http
        .send(
            "POST",
            &format!("{admin}/backends/drain?service=default/%3Cscript%3E&endpoint=a:1"),
            &[],
            Bytes::new(),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(
        r.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert!(r.body.contains("\"default/<script>\""), "{}", r.body);
}

#[tokio::test]
async fn a_stalled_admin_body_is_closed_by_the_idle_timeout_and_a_slow_one_by_the_head_timeout() {
    use std::io::{Read, Write};
    let (_pods, backend) = echoes(1);
    let stalled = |idle: &str, head: &str| {
        let gw = seed_gateway(
            &backend,
            &[
                "--admin",
                "127.0.0.1:0",
                "--admin-idle-timeout",
                idle,
                "--admin-head-timeout",
                head,
            ],
        );
        let addr = gw.admin.clone().expect("admin");
        let mut s =
            std::net::TcpStream::connect(addr.trim_start_matches("http://")).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        s.write_all(b"POST /reload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc")
            .expect("write");
        let mut out = String::new();
        let closed = s.read_to_string(&mut out).is_ok();
        assert!(closed, "still open after 30 s: {out:?}");
        (out, gw)
    };
    // No byte for 1 s: closed without an answer, long before the 20 s the
    // body had.
    let (out, _gw) = stalled("1s", "20s");
    assert_eq!(out, "", "closed by the idle timeout");
    // The body is read within the head timeout, however long the idle one.
    let (out, _gw) = stalled("60s", "1s");
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
}
