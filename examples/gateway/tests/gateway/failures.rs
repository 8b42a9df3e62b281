//! Issue 8, items 4–6: error answers that leak nothing, passive health,
//! safe retries, strict sessions. Misbehaving backends are raw TCP servers
//! in the test process.

use crate::counters::{outcome_total, sum};
use crate::support::{Http, echoes, open, seed_gateway, sessions_on_every_pod, visit};
use hyper::body::Bytes;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a raw backend does with each request.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Reads the whole request, then resets the connection (no answer).
    Reset,
    /// Reads the whole request, answers these bytes, closes.
    Answer(&'static [u8]),
    /// Reads until the peer closes, never answers.
    Hold,
}

/// Request heads and bodies a raw backend received.
type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A raw TCP backend on 127.0.0.1: counts requests and keeps their heads
/// and bodies.
pub struct RawBackend {
    pub addr: String,
    pub requests: Arc<AtomicUsize>,
    pub seen: Seen,
}

impl RawBackend {
    pub async fn start(behaviour: Behaviour) -> RawBackend {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let requests = Arc::new(AtomicUsize::new(0));
        let seen: Seen = Arc::default();
        let (count, kept) = (Arc::clone(&requests), Arc::clone(&seen));
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let (count, kept) = (Arc::clone(&count), Arc::clone(&kept));
                tokio::spawn(async move {
                    if let Behaviour::Hold = behaviour {
                        count.fetch_add(1, Ordering::SeqCst);
                        let mut sink = Vec::new();
                        let _ = tokio::time::timeout(
                            std::time::Duration::from_secs(10),
                            s.read_to_end(&mut sink),
                        )
                        .await;
                        return;
                    }
                    let Some((head, body)) = read_request(&mut s).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    kept.lock().expect("lock").push((head, body));
                    match behaviour {
                        Behaviour::Reset => {
                            let _ = s.set_zero_linger();
                            drop(s);
                        }
                        Behaviour::Answer(bytes) => {
                            let _ = s.write_all(bytes).await;
                            let _ = s.shutdown().await;
                        }
                        Behaviour::Hold => {}
                    }
                });
            }
        });
        RawBackend {
            addr,
            requests,
            seen,
        }
    }

    /// The request heads it received, in order.
    pub fn heads(&self) -> Vec<String> {
        self.seen
            .lock()
            .expect("lock")
            .iter()
            .map(|(h, _)| h.clone())
            .collect()
    }
}

/// One request head and its `Content-Length` body (at most 10 s).
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = buf[end..].to_vec();
        while body.len() < len {
            let n = s.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some((head, body))
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), read)
        .await
        .ok()
        .flatten()
}

/// A free 127.0.0.1 port nothing listens on (bound, then released).
fn dead_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

#[tokio::test]
async fn error_answers_carry_no_address_port_or_os_error() {
    let dead = dead_addr();
    let port = dead.rsplit(':').next().expect("port").to_owned();
    let gw = seed_gateway(&format!("backend={dead}"), &[]);
    let http = Http::new();
    let mut statuses = Vec::new();
    // 502 while the backend refuses, 503 once it is marked down.
    for _ in 0..5 {
        let r = http.get(&format!("{}/get", gw.url), &[]).await;
        statuses.push(r.status.as_u16());
        for leak in [
            "127.0.0.1",
            port.as_str(),
            "refused",
            "os error",
            "error:",
            "connect",
        ] {
            assert!(!r.body.contains(leak), "{leak:?} in {:?}", r.body);
        }
        assert!(r.body.len() < 100, "{:?}", r.body);
    }
    assert!(
        statuses.contains(&502) && statuses.contains(&503),
        "{statuses:?}"
    );
    let r = http.get(&format!("{}/get", gw.url), &[]).await;
    assert_eq!(r.body, "503 service unavailable: no backend available\n");
    // The detail is in the request's log line.
    let logs = gw.logs();
    assert!(
        logs.contains(&dead) && logs.contains("status=502") && logs.contains("refused"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_resetting_backend_among_good_ones_costs_no_get() {
    let (_echoes, backend) = echoes(2);
    let resetter = RawBackend::start(Behaviour::Reset).await;
    let gw = seed_gateway(
        &format!("{backend},{}", resetter.addr),
        &["--admin", "127.0.0.1:0"],
    );
    let http = Http::new();
    let mut failed = 0;
    let mut sessions: Vec<String> = Vec::new();
    for i in 0..90 {
        // New visitors, and visitors coming back with their cookie.
        let cookie = if i % 3 == 0 || sessions.is_empty() {
            None
        } else {
            Some(sessions[i % sessions.len()].clone())
        };
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("cookie", c.as_str())).collect();
        let r = http.get(&format!("{}/get", gw.url), &headers).await;
        if r.status != 200 {
            failed += 1;
        } else if let Some(c) = r.cookie_pair() {
            sessions.push(c);
        }
    }
    assert_eq!(failed, 0, "failed GETs out of 90");
    assert!(
        resetter.requests.load(Ordering::SeqCst) >= 3,
        "the resetting backend was tried"
    );
    // Ejected once, for failures after the request went out (it never
    // refused a connection), and nothing else was.
    let resetter_failed = sum(
        &http,
        &gw,
        "gateway_backend_ejections_total",
        &[("backend", &resetter.addr), ("reason", "failed")],
    )
    .await;
    assert_eq!(resetter_failed, 1.0, "{}", gw.logs());
    let all = sum(&http, &gw, "gateway_backend_ejections_total", &[]).await;
    assert_eq!(all, 1.0, "{}", gw.logs());
}

#[tokio::test]
async fn a_2_kib_post_pinned_to_a_killed_backend_is_answered_by_another_pod_with_a_new_cookie() {
    let (mut echoes, backend) = echoes(2);
    let gw = seed_gateway(&backend, &[]);
    let http = Http::new();
    let sessions = sessions_on_every_pod(&http, &gw, 2).await;
    let cookie = &sessions
        .iter()
        .find(|s| s.pod == "echo-0")
        .expect("a session on echo-0")
        .cookie;
    echoes[0].kill();
    let body = Bytes::from(vec![b'x'; 2048]);
    let r = http
        .send(
            "POST",
            &format!("{}/post", gw.url),
            &[("cookie", cookie)],
            body.clone(),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.pod(), "echo-1");
    assert_eq!(r.seen_header("content-length").as_deref(), Some("2048"));
    let moved = r.cookie_pair().expect("a new cookie");
    assert_ne!(&moved, cookie);
    // The new cookie holds.
    let r = http
        .get(&format!("{}/get", gw.url), &[("cookie", &moved)])
        .await;
    assert_eq!(r.pod(), "echo-1");
    assert_eq!(r.set_cookie(), None);
}

#[tokio::test]
async fn a_post_whose_backend_reset_after_reading_it_runs_once_and_gets_502_while_a_get_is_retried()
{
    // Issue 17: a POST the backend read whole and then reset on may have
    // been acted on; RFC 9110 §9.2.2 forbids sending it again. (This test
    // used to show it replayed on another pod, which issue 17 corrects.)
    let (_echoes, backend) = echoes(1);
    let resetter = RawBackend::start(Behaviour::Reset).await;
    // The resetter comes first and carries the weight: new sessions start
    // there until it is down.
    let gw = seed_gateway(
        &format!("backend={},{}", resetter.addr, &backend["backend=".len()..]),
        &["--down-after", "100"],
    );
    let http = Http::new();
    let body = Bytes::from(vec![b'y'; 3000]);
    let r = http
        .send("POST", &format!("{}/post", gw.url), &[], body.clone())
        .await;
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(
        r.body,
        "502 bad gateway: the backend failed after the request was sent; it is not sent again, as it may have been acted on\n"
    );
    let seen = resetter.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "the POST ran once");
    assert_eq!(seen[0].1.len(), 3000, "whole");
    // An idempotent request is retried on the other pod.
    let r = http.get(&format!("{}/get", gw.url), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.pod(), "echo-0");
}

#[tokio::test]
async fn a_body_over_the_retry_buffer_that_went_out_gets_a_502_saying_so() {
    let resetter = RawBackend::start(Behaviour::Reset).await;
    let (_echoes, backend) = echoes(1);
    let gw = seed_gateway(
        &format!("backend={},{}", resetter.addr, &backend["backend=".len()..]),
        &["--retry-buffer", "1024", "--down-after", "100"],
    );
    let http = Http::new();
    let mut answers = Vec::new();
    // PUT: idempotent, so it may be retried when its body is at hand (a
    // POST never is once it went out).
    for _ in 0..8 {
        let r = http
            .send(
                "PUT",
                &format!("{}/put", gw.url),
                &[],
                Bytes::from(vec![b'z'; 4096]),
            )
            .await;
        answers.push((r.status.as_u16(), r.body));
    }
    let failed: Vec<_> = answers.iter().filter(|(s, _)| *s != 200).collect();
    assert!(
        !failed.is_empty(),
        "some POSTs landed on the resetter: {answers:?}"
    );
    for (status, body) in failed {
        assert_eq!(*status, 502);
        assert!(body.contains("too large to keep for a retry"), "{body}");
    }
    // Small bodies are replayed.
    for _ in 0..8 {
        let r = http
            .send(
                "PUT",
                &format!("{}/put", gw.url),
                &[],
                Bytes::from_static(b"small"),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
}

#[tokio::test]
async fn strict_sessions_answer_503_on_a_dead_pin_and_serve_everyone_else() {
    let (mut echoes, backend) = echoes(2);
    let gw = seed_gateway(&backend, &["--strict-sessions", "--admin", "127.0.0.1:0"]);
    let http = Http::new();
    let sessions = sessions_on_every_pod(&http, &gw, 2).await;
    assert_eq!(outcome_total(&http, &gw, "pinned_unavailable").await, 0.0);
    echoes[0].kill();
    let mut refusals = 0;
    for round in 0..5 {
        for s in &sessions {
            let r = visit(&http, &gw, s).await;
            if s.pod == "echo-0" {
                refusals += 1;
                assert_eq!(r.status, 503, "round {round}: {}", r.body);
                assert_eq!(
                    r.body,
                    "503 service unavailable: the session's backend is unavailable\n"
                );
                assert_eq!(r.set_cookie(), None, "the session is not replaced");
            } else {
                assert_eq!(r.status, 200);
                assert_eq!(r.pod(), s.pod);
                assert_eq!(r.set_cookie(), None);
            }
        }
        // New visitors are served, by the live pod.
        let r = http.get(&format!("{}/get", gw.url), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.pod(), "echo-1");
    }
    // Every refusal once: the engine's own, once echo-0 is marked down,
    // and the first, which found it refusing (the gateway's).
    assert!(refusals >= 5);
    let refused = outcome_total(&http, &gw, "pinned_unavailable").await;
    assert_eq!(refused, f64::from(refusals));
    // echo-0 was ejected once, for the refused connection.
    let ejections = sum(&http, &gw, "gateway_backend_ejections_total", &[]).await;
    let refused_ejections = [("backend", echoes[0].addr.as_str()), ("reason", "refused")];
    let on_echo_0 = sum(
        &http,
        &gw,
        "gateway_backend_ejections_total",
        &refused_ejections,
    )
    .await;
    assert_eq!((ejections, on_echo_0), (1.0, 1.0));
}

#[tokio::test]
async fn a_strict_session_refused_before_any_attempt_counts_once_per_request() {
    // One pod: once it refused, every endpoint of the rule is ejected, so
    // the engine's panic rule pins the session to it (`resumed`) and the
    // gateway refuses it before any attempt (`pin::first`).
    let (mut echoes, backend) = echoes(1);
    let gw = seed_gateway(&backend, &["--strict-sessions", "--admin", "127.0.0.1:0"]);
    let http = Http::new();
    let sessions = open(&http, &gw, 1).await;
    echoes[0].kill();
    let mut expected = 0.0;
    for i in 0..4 {
        let r = visit(&http, &gw, &sessions[0]).await;
        assert_eq!(r.status, 503, "request {i}: {}", r.body);
        assert_eq!(
            r.body,
            "503 service unavailable: the session's backend is unavailable\n"
        );
        expected += 1.0;
        let counted = outcome_total(&http, &gw, "pinned_unavailable").await;
        assert_eq!(counted, expected, "request {i}");
    }
    // Only the first was an attempt (the refused connection); the next
    // three were refused before any.
    let logs = gw.logs();
    let attempts = logs.matches("the session's backend failed (strict sessions)");
    assert_eq!(attempts.count(), 1, "{logs}");
    let refused = [("reason", "refused")];
    assert_eq!(
        sum(&http, &gw, "gateway_backend_ejections_total", &refused).await,
        1.0
    );
}

#[tokio::test]
async fn a_refused_pin_is_repinned_even_when_the_balancer_picks_the_dead_pod_twice_more() {
    // The weighted balancer walks a golden-ratio sequence: over two equal
    // endpoints, new sessions go echo-0, echo-1, echo-0, echo-1, and the
    // next two picks are both echo-0. A retry that asked it only once per
    // endpoint found no other pod and answered 502.
    let (mut echoes, backend) = echoes(2);
    let gw = seed_gateway(&backend, &[]);
    let http = Http::new();
    let sessions = open(&http, &gw, 4).await;
    let pods: Vec<&str> = sessions.iter().map(|s| s.pod.as_str()).collect();
    assert_eq!(pods, ["echo-0", "echo-1", "echo-0", "echo-1"]);
    echoes[0].kill();
    let r = visit(&http, &gw, &sessions[0]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.pod(), "echo-1");
    assert!(r.set_cookie().is_some(), "re-pinned with a new cookie");
}
