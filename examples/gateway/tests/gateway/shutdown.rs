//! Graceful shutdown (SIGTERM) loses no request of a client that keeps
//! sending: keep-alive clients on raw sockets, the real gateway process.
//!
//! A request counts as lost when the connection ends (EOF or reset) after
//! the request was written and before its whole response came. A close
//! that the client sees *before* writing (peeked just before each write) is
//! clean: nothing was sent, and any client opens a new connection.

use crate::support::{Http, Proc, gateway, poll_admin};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What became of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Exchange {
    /// A whole response; `close`: it carried `Connection: close`.
    Answered { status: u16, close: bool },
    /// The gateway had closed the connection before the request was written.
    ClosedBeforeWrite,
}

/// An HTTP/1.1 keep-alive connection to the gateway.
struct KeepAlive {
    stream: TcpStream,
}

impl KeepAlive {
    fn connect(addr: &str) -> KeepAlive {
        let stream = TcpStream::connect(addr).expect("connect to the gateway");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let _ = stream.set_nodelay(true);
        KeepAlive { stream }
    }

    /// Whether the gateway has closed the connection (a FIN is waiting).
    fn closed_by_peer(&self) -> Result<bool, String> {
        self.stream.set_nonblocking(true).expect("nonblocking");
        let peeked = self.stream.peek(&mut [0u8; 1]);
        self.stream.set_nonblocking(false).expect("blocking");
        match peeked {
            Ok(0) => Ok(true),
            Ok(_) => Err("bytes nobody asked for".to_owned()),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(format!("idle connection broke: {e}")),
        }
    }

    /// GET `path` on this connection; `Err` when the request is lost.
    fn get(&mut self, path: &str) -> Result<Exchange, String> {
        if self.closed_by_peer()? {
            return Ok(Exchange::ClosedBeforeWrite);
        }
        self.send(path)?;
        self.receive()
    }

    /// Writes a GET of `path`.
    fn send(&mut self, path: &str) -> Result<(), String> {
        let request = format!("GET {path} HTTP/1.1\r\nHost: example.com\r\n\r\n");
        self.stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads a whole response.
    fn receive(&mut self) -> Result<Exchange, String> {
        let mut buf = Vec::with_capacity(4096);
        let mut chunk = [0u8; 4096];
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut head = httparse::Response::new(&mut headers);
            if let httparse::Status::Complete(len) =
                head.parse(&buf).map_err(|e| format!("bad response: {e}"))?
            {
                let header = |name: &str| {
                    head.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).into_owned())
                };
                let length: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .ok_or("a response without Content-Length")?;
                let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
                let status = head.code.unwrap_or_default();
                while buf.len() < len + length {
                    self.read_some(&mut buf, &mut chunk)?;
                }
                return Ok(Exchange::Answered { status, close });
            }
            self.read_some(&mut buf, &mut chunk)?;
        }
    }

    fn read_some(&mut self, buf: &mut Vec<u8>, chunk: &mut [u8]) -> Result<(), String> {
        match self.stream.read(chunk) {
            Ok(0) => Err(format!(
                "EOF after the request was written ({} bytes read)",
                buf.len()
            )),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) => Err(format!("{e} after the request was written")),
        }
    }

    /// Waits (bounded by the read timeout) for the gateway to close.
    fn sees_eof(&mut self) -> bool {
        matches!(self.stream.read(&mut [0u8; 64]), Ok(0))
    }
}

/// Polls `/readyz` until it says 503: the drain has begun.
async fn until_not_ready(http: &Http, gw: &Proc) {
    poll_admin(http, gw, "/readyz", "after SIGTERM", |r| r.status == 503).await;
}

/// Asserts that the gateway exits on its own, having closed every
/// connection (not given up at the drain's deadline).
fn exits_after_closing_everything(gw: &mut Proc) {
    let status = gw
        .wait_exit(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("still running 30 s after SIGTERM; log:\n{}", gw.logs()));
    assert!(
        status.success(),
        "exit status {status:?}; log:\n{}",
        gw.logs()
    );
    let logs = gw.logs();
    assert!(logs.contains("all connections closed"), "{logs}");
    assert!(!logs.contains("gave up waiting"), "{logs}");
}

#[tokio::test]
async fn sigterm_answers_every_request_of_keep_alive_clients_and_tells_them_to_close() {
    let mut gw = gateway(&["--admin", "127.0.0.1:0", "--threads", "2"]);
    let http = Http::new();
    const CLIENTS: usize = 4;
    // Written after /readyz said 503 (so the drain had begun).
    let draining = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));

    // A client that has gone quiet for a moment when the drain begins.
    let mut quiet = KeepAlive::connect(&gw.addr);
    assert_eq!(
        quiet.get("/get"),
        Ok(Exchange::Answered {
            status: 200,
            close: false
        })
    );

    // Clients sending back to back, each on one keep-alive connection,
    // until the gateway tells it to close (bounded in time and count).
    let busy: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (addr, draining, answered) = (
                gw.addr.clone(),
                Arc::clone(&draining),
                Arc::clone(&answered),
            );
            std::thread::spawn(move || {
                let mut c = KeepAlive::connect(&addr);
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut seen = Vec::new();
                for _ in 0..200_000 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let after_drain = draining.load(Ordering::SeqCst);
                    let exchange = c.get("/get");
                    seen.push((exchange.clone(), after_drain));
                    match exchange {
                        Ok(Exchange::Answered { close: false, .. }) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Exchange::Answered { close: true, .. }) => {
                            // Told to close: the gateway then closes it.
                            assert!(c.sees_eof(), "the connection stayed open after close");
                            break;
                        }
                        Ok(Exchange::ClosedBeforeWrite) | Err(_) => break,
                    }
                }
                seen
            })
        })
        .collect();

    // Every client is busy: then SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(30);
    while answered.load(Ordering::Relaxed) < CLIENTS * 20 {
        assert!(Instant::now() < deadline, "the clients never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gw.signal("TERM");
    until_not_ready(&http, &gw).await;
    draining.store(true, Ordering::SeqCst);

    // The quiet client's next request is still answered, with the close.
    assert_eq!(
        quiet.get("/get"),
        Ok(Exchange::Answered {
            status: 200,
            close: true
        }),
        "a keep-alive connection idle when the drain began"
    );
    assert!(quiet.sees_eof());

    for (i, client) in busy.into_iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !client.is_finished() {
            assert!(Instant::now() < deadline, "client {i} never finished");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let seen = client.join().expect("client thread");
        for (exchange, after_drain) in &seen {
            match exchange {
                Err(lost) => panic!("client {i}: a request was lost: {lost}"),
                Ok(Exchange::Answered { status, close }) => {
                    assert_eq!(*status, 200, "client {i}");
                    assert!(
                        *close || !after_drain,
                        "client {i}: a response in the drain without Connection: close"
                    );
                }
                Ok(Exchange::ClosedBeforeWrite) => {}
            }
        }
        // Sending back to back, it never idled: it was told to close.
        assert!(
            matches!(
                seen.last(),
                Some((Ok(Exchange::Answered { close: true, .. }), _))
            ),
            "client {i} ended with {:?} after {} requests",
            seen.last(),
            seen.len()
        );
    }
    exits_after_closing_everything(&mut gw);
}

#[tokio::test]
async fn sigterm_serves_a_connection_still_waiting_in_the_listen_backlog() {
    // One connection at a time: a second client waits in the backlog, its
    // request written, while the first holds the only place.
    let mut gw = gateway(&[
        "--admin",
        "127.0.0.1:0",
        "--threads",
        "1",
        "--max-connections",
        "1",
    ]);
    let http = Http::new();
    let mut first = KeepAlive::connect(&gw.addr);
    assert!(matches!(
        first.get("/get"),
        Ok(Exchange::Answered { status: 200, .. })
    ));
    // Connected (the kernel completed the handshake) and written: it waits
    // for the gateway to accept it.
    let mut second = KeepAlive::connect(&gw.addr);
    second.send("/get").expect("write the request");
    let waiting = std::thread::spawn(move || second.receive());
    gw.signal("TERM");
    until_not_ready(&http, &gw).await;
    // The first connection idles out of the drain, which frees the place.
    assert!(first.sees_eof(), "the idle connection was not closed");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !waiting.is_finished() {
        assert!(Instant::now() < deadline, "the waiting client got nothing");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        waiting.join().expect("client thread"),
        Ok(Exchange::Answered {
            status: 200,
            close: true
        }),
        "the client in the backlog"
    );
    exits_after_closing_everything(&mut gw);
}

#[tokio::test]
async fn sigterm_lets_an_h2_stream_in_flight_finish_then_closes_with_goaway() {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    let mut gw = gateway(&["--admin", "127.0.0.1:0", "--threads", "1"]);
    let http = Http::new();
    let stream = tokio::net::TcpStream::connect(&gw.addr)
        .await
        .expect("connect");
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2 handshake");
    // Ends when the gateway closes the connection.
    let conn = tokio::spawn(conn);
    let get = |delay: &str| {
        http::Request::get(format!("{}/get", gw.url))
            .header("x-echo-delay-ms", delay)
            .body(Empty::<Bytes>::new())
            .expect("request")
    };
    let mut first = send.clone();
    let r = first.send_request(get("0")).await.expect("h2 response");
    assert_eq!(r.status(), 200);

    // A slow stream is at its backend when SIGTERM comes.
    let mut slow_send = send.clone();
    let slow_req = get("1500");
    let slow = tokio::spawn(async move {
        let r = slow_send.send_request(slow_req).await?;
        let status = r.status();
        r.into_body().collect().await?;
        Ok::<_, hyper::Error>(status)
    });
    crate::support::until_backends(&http, &gw, "the slow stream never left", |l| {
        l.iter().any(|b| b["waiting"].as_u64() != Some(0))
    })
    .await;
    gw.signal("TERM");
    until_not_ready(&http, &gw).await;
    assert_eq!(
        slow.await
            .expect("task")
            .expect("the stream in flight finishes"),
        200
    );
    // GOAWAY, then the gateway closes the connection: a clean end.
    tokio::time::timeout(Duration::from_secs(20), conn)
        .await
        .expect("the connection ends")
        .expect("task")
        .expect("a clean close (GOAWAY), not an error");
    exits_after_closing_everything(&mut gw);
}

#[test]
fn a_replica_sigtermed_under_load_costs_the_load_generator_no_request() {
    // Two replicas sharing their keys, as behind an L4 balancer; the load
    // generator spreads its connections over both and, told to close,
    // opens its next connection on the other.
    let (_pods, backend) = crate::support::echoes(2);
    let key = crate::support::temp_file("key", &[7; 32]);
    let ids = crate::support::temp_file("ids", &[8; 32]);
    let (key, ids) = (key.to_str().expect("utf-8"), ids.to_str().expect("utf-8"));
    let args = ["--key-file", key, "--backend-id-key", ids, "--threads", "1"];
    let a = crate::support::seed_gateway(&backend, &args);
    let mut b = crate::support::seed_gateway(&backend, &args);
    let load = std::process::Command::new(crate::support::example("loadgen"))
        .args([
            &format!("{}/get", a.url),
            "--via",
            &a.addr,
            "--via",
            &b.addr,
        ])
        .args(["--clients", "16", "--connections", "4", "--rate", "400"])
        .args([
            "--timeout",
            "5",
            "--duration",
            "6",
            "--max-duration",
            "30",
            "--json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the load generator");
    // B is serving its share: then SIGTERM.
    let served = |gw: &Proc| gw.logs().matches("status=200").count();
    let deadline = Instant::now() + Duration::from_secs(20);
    while served(&b) < 50 {
        assert!(Instant::now() < deadline, "no load on B: {}", b.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    b.signal("TERM");
    assert!(
        b.wait_exit(Duration::from_secs(20)).is_some(),
        "B never exited"
    );
    let out = load.wait_with_output().expect("the load generator ends");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the load generator's JSON");
    // A refused connect sends nothing; anything else lost a request.
    let failures = report["failures"].as_object().cloned().unwrap_or_default();
    let lost: Vec<_> = failures
        .iter()
        .filter(|(cause, _)| *cause != "connect")
        .collect();
    assert!(lost.is_empty(), "requests lost at B's SIGTERM: {report}");
    assert_eq!(report["misroutes"], 0, "{report}");
    assert_eq!(report["non_2xx"], 0, "{report}");
    assert!(report["ok"].as_u64().unwrap_or(0) > 100, "{report}");
    assert!(served(&a) > 0);
}
