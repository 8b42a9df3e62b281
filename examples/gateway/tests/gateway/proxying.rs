//! Proxying done properly: headers, HTTP/2, upgrades, streaming, routing,
//! admin, shutdown.

use crate::support::{Http, echo, gateway, temp_file};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[tokio::test]
async fn hop_by_hop_headers_go_and_x_forwarded_headers_come() {
    let gw = gateway(&[]);
    let r = Http::new()
        .get(
            &format!("{}/get", gw.url),
            &[
                ("connection", "keep-alive, x-private"),
                ("x-private", "secret"),
                ("keep-alive", "timeout=5"),
                ("te", "trailers"),
                ("proxy-authorization", "Basic eA=="),
                ("x-forwarded-for", "203.0.113.9"),
                ("x-kept", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    for gone in [
        "connection",
        "x-private",
        "keep-alive",
        "te",
        "proxy-authorization",
    ] {
        assert_eq!(
            r.seen_header(gone),
            None,
            "{gone} reached the backend: {}",
            r.body
        );
    }
    assert_eq!(r.seen_header("x-kept").as_deref(), Some("yes"));
    // The client is no --trusted-proxies peer: its own X-Forwarded-For is
    // replaced (issue 20; tls.rs has the trusted case).
    assert_eq!(
        r.seen_header("x-forwarded-for").as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(r.seen_header("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(r.seen_header("x-forwarded-host"), r.seen_header("host"));
    assert_eq!(r.seen_header("cookie"), None);
}

#[tokio::test]
async fn the_session_cookie_is_stripped_and_other_cookies_pass() {
    let gw = gateway(&[]);
    let http = Http::new();
    let c = http
        .get(&format!("{}/get", gw.url), &[])
        .await
        .cookie_pair()
        .expect("cookie");
    let r = http
        .get(
            &format!("{}/get", gw.url),
            &[("cookie", &format!("app=1; {c}; other=2"))],
        )
        .await;
    assert_eq!(r.seen_header("cookie").as_deref(), Some("app=1; other=2"));
}

#[tokio::test]
async fn h2c_prior_knowledge_clients_are_served() {
    let gw = gateway(&[]);
    let stream = tokio::net::TcpStream::connect(&gw.addr)
        .await
        .expect("connect");
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let mut cookie = None;
    let mut pod = None;
    for _ in 0..3 {
        let mut req = http::Request::builder().uri(format!("{}/get", gw.url));
        if let Some(c) = &cookie {
            req = req.header("cookie", c);
        }
        let resp = send
            .send_request(req.body(Full::new(Bytes::new())).expect("req"))
            .await
            .expect("h2 response");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), http::Version::HTTP_2);
        if let Some(set) = resp.headers().get("set-cookie") {
            cookie = set
                .to_str()
                .ok()
                .and_then(|s| s.split(';').next())
                .map(str::to_owned);
        }
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let p = v["pod"].as_str().expect("pod").to_owned();
        assert_eq!(*pod.get_or_insert(p.clone()), p, "the h2 session sticks");
    }
}

#[tokio::test]
async fn upgrades_reach_the_pinned_backend_and_tunnel_bytes() {
    let gw = gateway(&[]);
    let http = Http::new();
    let first = http.get(&format!("{}/get", gw.url), &[]).await;
    let (cookie, pod) = (first.cookie_pair().expect("cookie"), first.pod());
    let (mut s, head) = crate::support::upgrade_echo(&gw.addr, &format!("Cookie: {cookie}\r\n"));
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    assert!(
        head.contains(&format!("x-echo-backend: {pod}")),
        "pinned backend: {head}"
    );
    // Bytes with stray CRs pass a tunnel untouched.
    s.write_all(b"ping\r\rpong\x00").expect("write");
    let mut echoed = [0u8; 11];
    s.read_exact(&mut echoed).expect("echo");
    assert_eq!(&echoed, b"ping\r\rpong\x00");
}

#[tokio::test]
async fn bodies_stream_both_ways() {
    let gw = gateway(&[]);
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let r = Http::new()
        .send(
            "POST",
            &format!("{}/upload", gw.url),
            &[("x-echo-body", "1")],
            Bytes::from(big.clone()),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), String::from_utf8_lossy(&big).len());
    // Chunked upload, via curl, with bare CRs in the body.
    let out = crate::support::bash(&format!(
        "printf 'a\\rb\\r\\r\\nc' | curl -s -H 'x-echo-body: 1' -H 'Transfer-Encoding: chunked' --data-binary @- {}/post | od -An -c | tr -s ' '",
        gw.url
    ));
    assert_eq!(out.trim(), "a \\r b \\r \\r \\n c", "{out:?}");
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    // A backend that takes 1.5 s to answer, and says when the request
    // reached it: the gateway is stopped only once it is in flight.
    let backend = crate::raw::RawBackend::start(|req| {
        std::thread::sleep(Duration::from_millis(1500));
        req.reply("{\"pod\": \"slow\"}");
    });
    let mut gw = gateway(&["--backend", &format!("backend={}", backend.addr)]);
    let url = format!("{}/slow", gw.url);
    let slow = tokio::spawn(async move { Http::new().get(&url, &[]).await });
    let head = backend.next_head_async(Duration::from_secs(30)).await;
    assert!(head.is_some_and(|h| h.starts_with("GET /slow ")));
    let t = Instant::now();
    let status = gw
        .terminate(Duration::from_secs(8))
        .expect("exits after draining");
    assert!(status.success(), "{status:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "waited for the request"
    );
    let r = slow.await.expect("task");
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn routing_follows_gateway_api_precedence() {
    let yaml = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: any-host}
spec:
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs: [{name: catchall, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /api}}]
      backendRefs: [{name: prefix, port: 80}]
    - matches: [{path: {type: Exact, value: /api/v1}}]
      backendRefs: [{name: exact, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /api}, headers: [{name: x-canary, value: "yes"}]}]
      backendRefs: [{name: canary, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /api}, method: POST}]
      backendRefs: [{name: poster, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /q}, queryParams: [{name: v, value: "2"}]}]
      backendRefs: [{name: query, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: hosts}
spec:
  hostnames: ["*.example.com", "www.example.com"]
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs: [{name: hosted, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: exact-host}
spec:
  hostnames: ["api.example.com"]
  rules:
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs: [{name: exact-host, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: regex}
spec:
  hostnames: ["re.test"]
  rules:
    - matches: [{path: {type: RegularExpression, value: "/re/[0-9]+"}}]
      backendRefs: [{name: regex, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: nowhere}
spec:
  hostnames: ["nowhere.test"]
  rules:
    - matches: [{path: {type: Exact, value: /only}}]
      backendRefs: [{name: catchall, port: 80}]
"#;
    let file = temp_file("routing.yaml", yaml.as_bytes());
    let gw = gateway(&["--route", file.to_str().expect("utf-8"), "--replicas", "1"]);
    let http = Http::new();
    let service = |r: crate::support::Resp| r.json_field("service");
    let u = |p: &str| format!("{}{p}", gw.url);
    assert_eq!(service(http.get(&u("/"), &[]).await), "catchall");
    assert_eq!(service(http.get(&u("/apix"), &[]).await), "catchall");
    assert_eq!(service(http.get(&u("/api/v2"), &[]).await), "prefix");
    assert_eq!(service(http.get(&u("/api/v1"), &[]).await), "exact");
    assert_eq!(
        service(http.get(&u("/api/v2"), &[("x-canary", "yes")]).await),
        "canary"
    );
    let posted = http
        .send("POST", &u("/api/v2"), &[("x-canary", "yes")], Bytes::new())
        .await;
    assert_eq!(
        service(posted),
        "poster",
        "a method match outranks header matches"
    );
    // A regular expression ranks below any prefix, even `/`; on its own
    // hostname it wins, and matches whole paths only.
    assert_eq!(service(http.get(&u("/re/42"), &[]).await), "catchall");
    assert_eq!(
        service(http.get(&u("/re/42"), &[("host", "re.test")]).await),
        "regex"
    );
    // The re.test route owns that host: no fall-through to the catch-all.
    assert_eq!(
        http.get(&u("/re/42x"), &[("host", "re.test")]).await.status,
        404
    );
    assert_eq!(service(http.get(&u("/q?a=1&v=2"), &[]).await), "query");
    assert_eq!(service(http.get(&u("/q?v=3"), &[]).await), "catchall");
    assert_eq!(
        service(http.get(&u("/"), &[("host", "a.b.example.com")]).await),
        "hosted"
    );
    assert_eq!(
        service(http.get(&u("/"), &[("host", "www.example.com:8888")]).await),
        "hosted"
    );
    assert_eq!(
        service(http.get(&u("/"), &[("host", "api.example.com")]).await),
        "exact-host"
    );
    assert_eq!(
        service(http.get(&u("/"), &[("host", "example.com")]).await),
        "catchall"
    );
    assert_eq!(
        http.get(&u("/other"), &[("host", "nowhere.test")])
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn admin_serves_healthz_and_metrics() {
    let gw = gateway(&["--admin", "127.0.0.1:0"]);
    let admin = gw.admin.clone().expect("admin address printed");
    let http = Http::new();
    for _ in 0..3 {
        http.get(&format!("{}/get", gw.url), &[]).await;
    }
    let h = http.get(&format!("{admin}/healthz"), &[]).await;
    assert_eq!((h.status.as_u16(), h.body.as_str()), (200, "ok\n"));
    let m = http.get(&format!("{admin}/metrics"), &[]).await.body;
    assert!(
        m.contains(
            "tower_sticky_requests_total{scope=\"httproute/default/cookie/rule/0\",outcome=\"new\"} 3"
        ),
        "{m}"
    );
    let served: u64 = m
        .lines()
        .filter(|l| l.starts_with("gateway_backend_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(served, 3, "{m}");
    assert_eq!(m.matches("gateway_backend_up{").count(), 4, "{m}");
}

#[tokio::test]
async fn metrics_show_the_session_age_as_a_histogram_with_buckets() {
    let gw = gateway(&["--admin", "127.0.0.1:0"]);
    let admin = gw.admin.clone().expect("admin address printed");
    let http = Http::new();
    let first = http.get(&format!("{}/get", gw.url), &[]).await;
    let cookie = first.cookie_pair().expect("a new session");
    for _ in 0..2 {
        let r = http
            .get(&format!("{}/get", gw.url), &[("cookie", &cookie)])
            .await;
        assert_eq!(r.status, 200);
    }
    let m = http.get(&format!("{admin}/metrics"), &[]).await.body;
    let scope = "scope=\"httproute/default/cookie/rule/0\"";
    assert!(
        m.contains("# TYPE tower_sticky_session_age_seconds histogram"),
        "{m}"
    );
    // Two resumed requests, each filed in every bucket from its age up.
    for le in ["3600", "86400", "+Inf"] {
        let line = format!("tower_sticky_session_age_seconds_bucket{{{scope},le=\"{le}\"}} 2");
        assert!(m.contains(&line), "{line} in {m}");
    }
    let count = format!("tower_sticky_session_age_seconds_count{{{scope}}} 2");
    assert!(m.contains(&count), "{m}");
}

#[tokio::test]
async fn no_flags_runs_the_embedded_default_and_says_how_to_try_it() {
    // Port 8888 may be taken by a developer's gateway: only the banner and
    // the default's behaviour are checked here, on an ephemeral port.
    let gw = gateway(&[]);
    let r = Http::new().get(&format!("{}/get", gw.url), &[]).await;
    let set = r.set_cookie().expect("cookie");
    assert!(
        set.starts_with("Session-A=") && set.contains("Max-Age=10; Path=/; HttpOnly"),
        "{set}"
    );
    assert!(r.pod().starts_with("backend-"));
    let _ = echo; // the standalone echo is exercised by the session tests
}
