//! Bad input gets a clear answer: HTTP, session values, route files, flags.

use crate::counters::outcome_total;
use crate::support::{
    Http, cookie_route, gateway, gateway_fails, gateway_fails_exactly, temp_file,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded by the read timeout and by the gateway closing after a 400.
    for _ in 0..64 {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if out.windows(4).any(|w| w == b"\r\n\r\n") && !out.starts_with(b"HTTP/1.1 200") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn malformed_http_gets_400_and_other_connections_keep_working() {
    let gw = gateway(&[]);
    let http = Http::new();
    // A pooled connection, open before and used after.
    assert_eq!(http.get(&format!("{}/get", gw.url), &[]).await.status, 200);
    for bad in [
        &b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ] {
        let answer = raw(&gw.addr, bad);
        assert!(answer.starts_with("HTTP/1.1 400"), "{bad:?} got {answer:?}");
    }
    assert_eq!(http.get(&format!("{}/get", gw.url), &[]).await.status, 200);
}

/// The response heads in `answer`, in order (`HTTP/1.1 200`, ...).
fn statuses(answer: &str) -> Vec<&str> {
    answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answer[i..i + 12])
        .collect()
}

#[test]
fn a_cr_anywhere_but_the_end_of_a_field_value_gets_400() {
    let gw = gateway(&[]);
    for bad in [
        // Request line.
        &b"GET /a\rHTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\r\nHost: x\r\n\r\n",
        // Field name.
        b"GET / HTTP/1.1\r\nHost: x\r\nX\r-Y: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Y\r\r\n\r\n",
        // Inside a value, before other bytes.
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r b\r\n\r\n",
        // The empty line that ends the head.
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n",
    ] {
        let answer = raw(&gw.addr, bad);
        assert_eq!(
            statuses(&answer),
            ["HTTP/1.1 400"],
            "{bad:?} got {answer:?}"
        );
    }
    // A front proxy taking the bare CR for a line end would see a 35-byte
    // body here, and this gateway a second request: now neither.
    let smuggle = b"GET / HTTP/1.1\r\nHost: x\r\nX: 1\rContent-Length: 35\r\n\r\nGET /get HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = raw(&gw.addr, smuggle);
    assert_eq!(statuses(&answer), ["HTTP/1.1 400"], "{answer:?}");
    // Pipelined: the good head is answered, the bad one refused.
    let answer = raw(
        &gw.addr,
        b"GET /get HTTP/1.1\r\nHost: x\r\nA: 1\r\r\n\r\nGET /get HTTP/1.1\r\nHost: x\r\nX: 1\rY: 2\r\n\r\n",
    );
    assert_eq!(
        statuses(&answer),
        ["HTTP/1.1 200", "HTTP/1.1 400"],
        "{answer:?}"
    );
}

#[test]
fn a_cr_at_the_end_of_a_field_value_is_a_space() {
    // The seed's awk case: `Session-A: <token>\r\r\n`.
    let gw = gateway(&[]);
    let answer = raw(
        &gw.addr,
        b"GET /get HTTP/1.1\r\nHost: x\r\nX-Seed: tok\r\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(statuses(&answer), ["HTTP/1.1 200"], "{answer:?}");
    assert!(
        answer.contains("\"x-seed\": [\n   \"tok\"\n  ]"),
        "the backend saw the value without the CR: {answer}"
    );
}

#[tokio::test]
async fn bad_session_values_get_a_new_session_and_200() {
    let yaml = cookie_route(
        "short",
        "        sessionName: Session-A\n        absoluteTimeout: 1s\n        cookieConfig:\n          lifetimeType: Permanent\n",
    );
    let route = temp_file("short.yaml", yaml.as_bytes());
    let gw = gateway(&[
        "--route",
        route.to_str().expect("utf-8"),
        "--admin",
        "127.0.0.1:0",
    ]);
    let http = Http::new();
    let good = http
        .get(&format!("{}/get", gw.url), &[])
        .await
        .cookie_pair()
        .expect("cookie");
    let value = good.trim_start_matches("Session-A=").to_owned();
    let mut tampered = value.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let oversized = "A".repeat(6000);
    let cases = [
        "Session-A=garbage".to_owned(),
        format!("Session-A={tampered}"),
        format!("Session-A={}", &value[..40]),
        format!("Session-A={oversized}"),
        "Session-A=\"\"".to_owned(),
        "Session-A=%%%%;;;===".to_owned(),
    ];
    for cookie in &cases {
        let r = http
            .get(&format!("{}/get", gw.url), &[("cookie", cookie)])
            .await;
        assert_eq!(r.status, 200, "{cookie}");
        assert!(r.set_cookie().is_some(), "{cookie}: a new session");
    }
    // absoluteTimeout 1s: the good cookie is resumed until it expires, then
    // it is a new session (polled: no guess at how late this thread runs).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(&format!("{}/get", gw.url), &[("cookie", &good)])
            .await;
        assert_eq!(r.status, 200);
        if r.set_cookie().is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "an expired session is a new session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for outcome in ["malformed", "forged", "expired"] {
        let n = outcome_total(&http, &gw, outcome).await;
        assert!(n >= 1.0, "{outcome}: {n}");
    }
}

/// Writes `yaml` and checks the gateway refuses it with a message naming the
/// file, the document and `needles`.
fn refused(yaml: &str, needles: &[&str]) {
    let file = temp_file("bad.yaml", yaml.as_bytes());
    let name = file.to_str().expect("utf-8");
    let err = gateway_fails(&["--route", name]);
    assert!(err.contains(name), "names the file: {err}");
    for n in needles {
        assert!(err.contains(n), "mentions {n:?}: {err}");
    }
}

#[test]
fn invalid_route_files_stop_start_up_naming_file_document_field() {
    refused(
        "kind: HTTPRoute\nspec: {unclosed\n",
        &["document 1", "not valid YAML"],
    );
    // Read in one streaming pass: the sequence where `spec`'s mapping
    // belongs is found before the missing `]`.
    refused(
        "kind: HTTPRoute\nspec: [unclosed\n",
        &["document 1", "not a valid HTTPRoute", "line 2"],
    );
    refused(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: backend\n",
        &["not an HTTPRoute"],
    );
    refused("just: a mapping\n", &["document 1", "not an HTTPRoute"]);
    let permanent = cookie_route(
        "p",
        "        sessionName: S\n        cookieConfig:\n          lifetimeType: Permanent\n",
    );
    refused(
        &format!("apiVersion: v1\nkind: ConfigMap\n---\n{permanent}"),
        &[
            "document 2",
            "spec.rules[0].sessionPersistence.absoluteTimeout",
            "AbsoluteTimeout must be specified",
        ],
    );
    refused(
        &cookie_route("d", "        absoluteTimeout: 10 seconds\n"),
        &[
            "document 1",
            "spec.rules[0].sessionPersistence.absoluteTimeout",
        ],
    );
    refused(
        &cookie_route(
            "h",
            "        sessionName: S\n        type: Header\n        cookieConfig:\n          lifetimeType: Session\n",
        ),
        &[
            "document 1",
            "spec.rules[0].sessionPersistence.cookieConfig",
        ],
    );
    refused(
        &cookie_route("r", "        sessionName: S\n").replace(
            "type: PathPrefix\n            value: /",
            "type: RegularExpression\n            value: \"([\"",
        ),
        &["document 1", "spec.rules[0].matches[0].path.value"],
    );
}

#[test]
fn unknown_backend_names_and_bad_keys_are_start_up_errors() {
    let err = gateway_fails(&["--backend", "nosuch=127.0.0.1:1"]);
    assert!(err.contains("nosuch"), "{err}");
    let err = gateway_fails(&["--backend", "backend:9999=127.0.0.1:1"]);
    assert!(err.contains("9999"), "{err}");
    let err = gateway_fails(&["--backend", "backend"]);
    assert!(err.contains("NAME[:PORT]=HOST:PORT"), "{err}");
    let short = temp_file("short-key", b"too short");
    let err = gateway_fails(&["--key-file", short.to_str().expect("utf-8")]);
    assert!(err.contains("at least 32 bytes"), "{err}");
    let err = gateway_fails(&["--route", "/nonexistent/routes.yaml"]);
    assert!(err.contains("/nonexistent/routes.yaml"), "{err}");
}

#[test]
fn a_port_another_gateway_listens_on_is_refused() {
    // SO_REUSEPORT would otherwise let the second join the first's port and
    // take half its clients, with keys of its own.
    let first = gateway(&[]);
    let taken = format!("127.0.0.1:{}", first.port());
    let err = gateway_fails_exactly(&["--listen", &taken]);
    assert!(err.contains(&taken), "{err}");
    assert!(err.to_lowercase().contains("in use"), "{err}");
}
