//! Issue 21, "it earns its place" point 1: the lean HTTP/1 path against
//! hyper's, byte stream for byte stream.
//!
//! Two gateways on the seed's route, `--http1 hyper` and `--http1 lean`,
//! each in front of a recording backend of its own (`backend.rs`: every
//! request parsed with httparse and de-framed, attributed to its case by
//! the client's address, which the gateway puts in `X-Forwarded-For`).
//! Every case sends the same bytes through both, followed by a
//! `Connection: close` request (`/__end`) so that a gateway in step closes.
//! Per case, both must give:
//!
//! * the same responses to the client: status line, header fields (less
//!   `date`, the framing fields and the session cookie's value) and the
//!   de-framed body, then the same end (closed, or still open);
//! * the same requests upstream: method, target, the header multiset less
//!   the gateway's own `via` and `x-forwarded-*`, the de-framed body.
//!
//! The lean path may be **stricter**: it may reject (a 4xx or 5xx of its
//! own) where hyper answered otherwise, as long as what it forwarded is a
//! prefix of what hyper forwarded. It may also close the connection after
//! a response delimited by the backend's close (hyper re-frames those as
//! chunked and keeps the connection). It is never **looser** (forwarding
//! what hyper rejects) and never forwards **different** requests: either
//! fails the test.
//!
//! The cases: every smuggling vector of `bad_input.rs`, `hardening.rs` and
//! `raw.rs`, plus the classic CL.TE / TE.CL / TE.TE set; CR, LF and NUL put
//! in (and over) every byte of two valid heads; pipelined requests; chunked
//! bodies split oddly; 64 proptest-generated valid and near-valid requests;
//! and scripted backend responses (`Content-Length`, chunked, close,
//! 204/304/HEAD, bad lengths, TE+CL, a huge head).
//!
//! ## Where the lean path is stricter than hyper
//!
//! Printed by the test on each run (`--nocapture`); the cases seen so far:
//!
//! | case | hyper | lean |
//! |---|---|---|
//! | (none yet: the lean driver is not wired in this branch) | | |

mod backend;
mod cases;
mod client;

use crate::support::{Proc, seed_gateway};
use backend::{Backend, Upstream};
use cases::Case;
use client::{Seen, client_ip, exchange};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Cases in flight at once (each on both gateways).
const PARALLEL: usize = 16;

/// A gateway on one HTTP/1 path, with its recording backend.
struct Side {
    backend: Backend,
    gateway: Proc,
}

impl Side {
    fn start(http1: &str) -> Side {
        let backend = Backend::start(cases::scripts());
        let gateway = seed_gateway(&format!("backend={}", backend.addr), &["--http1", http1]);
        Side { backend, gateway }
    }
}

/// What one path did with one case.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    client: Seen,
    upstream: Vec<Upstream>,
}

/// How the lean path compares with hyper on one case.
#[derive(Debug)]
enum Verdict {
    Same,
    /// It rejected (status) where hyper answered (status).
    Stricter(String, String),
    /// It closed after a response delimited by the backend's close.
    ClosedEarlier,
    /// A failure: looser or different.
    Wrong(String),
}

/// Runs `cases` through both paths and checks every verdict; returns the
/// stricter ones as table rows.
async fn differential(cases: Vec<Case>) -> Vec<String> {
    let hyper = Side::start("hyper");
    let lean = Side::start("lean");
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut runs = tokio::task::JoinSet::new();
    for (n, case) in cases.iter().enumerate() {
        let (h, l) = (hyper.gateway.addr.clone(), lean.gateway.addr.clone());
        let (pieces, head_at) = (case.stream(), case.head_at.clone());
        let permit = Arc::clone(&limit).acquire_owned().await.expect("semaphore");
        runs.spawn(async move {
            let from = client_ip(n);
            let (sh, sl) = tokio::join!(
                exchange(&h, from, &pieces, &head_at),
                exchange(&l, from, &pieces, &head_at)
            );
            drop(permit);
            (n, sh, sl)
        });
    }
    let mut seen = BTreeMap::new();
    while let Some(run) = runs.join_next().await {
        let (n, sh, sl) = run.expect("case task");
        seen.insert(n, (sh, sl));
    }
    let mut up_h = hyper.backend.take_when_idle(Duration::from_secs(10)).await;
    let mut up_l = lean.backend.take_when_idle(Duration::from_secs(10)).await;
    let mut wrong = Vec::new();
    for (side, up) in [("hyper", &up_h), ("lean", &up_l)] {
        if let Some(stray) = up.get("?") {
            wrong.push(format!("{side}: upstream bytes of no case: {stray:#?}"));
        }
    }
    let mut stricter = Vec::new();
    let mut counts = BTreeMap::<&str, usize>::new();
    for (n, (sh, sl)) in seen {
        let key = client_ip(n).to_string();
        let h = Outcome {
            client: sh,
            upstream: up_h.remove(&key).unwrap_or_default(),
        };
        let l = Outcome {
            client: sl,
            upstream: up_l.remove(&key).unwrap_or_default(),
        };
        let name = &cases[n].name;
        match compare(&h, &l) {
            Verdict::Same => *counts.entry("same").or_default() += 1,
            Verdict::ClosedEarlier => {
                *counts.entry("lean closed earlier").or_default() += 1;
                stricter.push(format!("| {name} | goes on | closes |"));
            }
            Verdict::Stricter(hs, ls) => {
                *counts.entry("lean stricter").or_default() += 1;
                stricter.push(format!("| {name} | {hs} | {ls} |"));
            }
            Verdict::Wrong(why) => {
                *counts.entry("WRONG").or_default() += 1;
                wrong.push(format!(
                    "case {name:?} ({:?}): {why}\n  hyper: {}\n  lean:  {}",
                    String::from_utf8_lossy(&cases[n].stream().concat()),
                    brief(&h),
                    brief(&l)
                ));
            }
        }
    }
    eprintln!("differential: {} cases: {counts:?}", cases.len());
    for row in &stricter {
        eprintln!("{row}");
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases differ:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n\n")
    );
    stricter
}

/// The verdict for one case (see the module docs).
fn compare(h: &Outcome, l: &Outcome) -> Verdict {
    if h == l {
        return Verdict::Same;
    }
    let same_but_reasons = h.upstream == l.upstream
        && h.client.tail == l.client.tail
        && h.client.ended == l.client.ended
        && h.client.responses.len() == l.client.responses.len()
        && (h.client.responses.iter().zip(&l.client.responses)).all(|(a, b)| {
            status(a) == status(b)
                && a.headers == b.headers
                && a.body == b.body
                && a.close == b.close
        });
    if same_but_reasons {
        return Verdict::Same;
    }
    let (hu, lu) = (&h.upstream, &l.upstream);
    if hu.len() < lu.len() && lu[..hu.len()] == hu[..] {
        return Verdict::Wrong(format!(
            "LOOSER: the lean path forwarded {} request(s) hyper did not",
            lu.len() - hu.len()
        ));
    }
    if lu.len() > hu.len() || hu[..lu.len()] != lu[..] {
        return Verdict::Wrong("DIFFERENT requests went upstream".to_owned());
    }
    let (hr, lr) = (&h.client.responses, &l.client.responses);
    // The reason phrase is the backend's with hyper and the canonical one
    // with the lean path (RFC 9112 §4: a client ignores it).
    let alike = |a: &client::Response, b: &client::Response| {
        status(a) == status(b) && a.headers == b.headers && a.body == b.body
    };
    let k = hr.iter().zip(lr).take_while(|(a, b)| alike(a, b)).count();
    let shown = |r: Option<&client::Response>| {
        r.map_or_else(
            || format!("nothing ({})", h.client.ended),
            |r| r.status_line.clone(),
        )
    };
    match (hr.get(k), lr.get(k)) {
        (Some(_), None) | (None, None)
            if k > 0 && lr[k - 1].close && !hr[k - 1].close && l.client.ended == "closed" =>
        {
            // It said `connection: close` and closed where hyper went on
            // (after a response delimited by close, or its own rejection).
            Verdict::ClosedEarlier
        }
        (None, None) => Verdict::Wrong(format!(
            "the same responses, but a different end: hyper {:?}, lean {:?}",
            (&h.client.tail, h.client.ended, hr.last().map(|r| r.close)),
            (&l.client.tail, l.client.ended, lr.last().map(|r| r.close))
        )),
        (hk, Some(lk)) if rejection(lk) && hk.is_none_or(|r| !rejection(r)) => {
            Verdict::Stricter(shown(hk), lk.status_line.clone())
        }
        (None, Some(_)) if k > 0 && hr[k - 1].close => {
            // hyper closed after a response lean kept the connection for;
            // then lean must have answered the next request like hyper
            // answered nothing: only a rejection would be stricter.
            Verdict::Wrong("the lean path kept a connection hyper closed".to_owned())
        }
        (hk, lk) => Verdict::Wrong(format!(
            "response {k} differs: hyper {}, lean {}",
            shown(hk),
            lk.map_or("nothing", |r| r.status_line.as_str())
        )),
    }
}

/// One line of what a path did: the client's responses, its end, and the
/// requests upstream (the full outcome is too long for hundreds of cases).
fn brief(o: &Outcome) -> String {
    let responses: Vec<String> = o
        .client
        .responses
        .iter()
        .map(|r| {
            let close = if r.close { " +close" } else { "" };
            format!("{}{close} {:?} {:?}", r.status_line, r.headers, r.body)
        })
        .collect();
    let upstream: Vec<String> = o.upstream.iter().map(|u| format!("{u:?}")).collect();
    format!(
        "responses {responses:?}, tail {:?}, {}; upstream {upstream:?}",
        o.client.tail, o.client.ended
    )
}

/// A response's status line as compared: version and code, and whether
/// the reason phrase is one a client can read (text, or none).
fn status(r: &client::Response) -> (&str, &str, bool) {
    let mut parts = r.status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let reason = parts.next().unwrap_or("");
    let readable = reason
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" -'".contains(&b));
    (version, code, readable)
}

/// A status the gateway answers instead of forwarding (4xx, 5xx).
fn rejection(r: &client::Response) -> bool {
    r.status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .is_some_and(|c| c >= 400)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_vectors_go_the_same_way_through_both_paths() {
    differential(cases::smuggling()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cr_lf_nul_at_every_position_of_a_head_go_the_same_way() {
    differential(cases::mutations()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_and_oddly_split_chunked_bodies_go_the_same_way() {
    differential(cases::pipelined_and_chunked()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_go_the_same_way() {
    differential(cases::generated(64)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripted_backend_responses_reach_the_client_the_same_way() {
    differential(cases::responses()).await;
}

#[test]
fn the_comparison_catches_a_looser_path_and_different_requests() {
    // The comparison itself must be able to fail.
    let req = |t: &str| Upstream::Request {
        method: "GET".into(),
        target: t.into(),
        headers: Vec::new(),
        body: String::new(),
    };
    let resp = |s: &str| client::Response {
        status_line: s.into(),
        headers: Vec::new(),
        body: String::new(),
        close: false,
    };
    let outcome = |up: Vec<Upstream>, st: &[&str]| Outcome {
        client: Seen {
            responses: st.iter().map(|s| resp(s)).collect(),
            tail: String::new(),
            ended: "closed",
        },
        upstream: up,
    };
    let hyper_rejects = outcome(vec![], &["HTTP/1.1 400 Bad Request"]);
    let lean_forwards = outcome(vec![req("/a")], &["HTTP/1.1 200 OK"]);
    assert!(
        matches!(compare(&hyper_rejects, &lean_forwards), Verdict::Wrong(w) if w.starts_with("LOOSER"))
    );
    assert!(matches!(
        compare(&lean_forwards, &hyper_rejects),
        Verdict::Stricter(..)
    ));
    let other = outcome(vec![req("/b")], &["HTTP/1.1 200 OK"]);
    assert!(
        matches!(compare(&lean_forwards, &other), Verdict::Wrong(w) if w.starts_with("DIFFERENT"))
    );
    let status_431 = outcome(vec![], &["HTTP/1.1 431 Request Header Fields Too Large"]);
    assert!(matches!(
        compare(&hyper_rejects, &status_431),
        Verdict::Wrong(_)
    ));
    assert!(matches!(compare(&other, &other), Verdict::Same));
}
