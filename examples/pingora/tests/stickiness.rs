//! Stickiness through the Pingora proxy binary: real sockets on 127.0.0.1,
//! three echo backends that answer with their name and the `Cookie` header
//! they received.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A backend that answers every request with `<name>|<Cookie header>`.
async fn echo_backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // One request per connection; bounded in size.
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65_536 {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).into_owned();
                let cookie = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("cookie")
                            .then(|| v.trim().to_owned())
                    })
                    .unwrap_or_default();
                let body = format!("{name}|{cookie}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            });
        }
    });
    addr
}

/// What the client got back.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Session-A=<token>` as a client echoes it.
    fn session_cookie(&self) -> String {
        let set_cookie = self.header("set-cookie").expect("a Set-Cookie");
        set_cookie.split(';').next().unwrap().to_owned()
    }

    fn backend(&self) -> &str {
        self.body.split('|').next().unwrap()
    }

    fn upstream_cookie(&self) -> &str {
        self.body.split_once('|').map_or("", |(_, c)| c)
    }
}

async fn get(proxy: SocketAddr, cookie: Option<&str>) -> std::io::Result<Answer> {
    let mut conn = TcpStream::connect(proxy).await?;
    let cookie = cookie.map_or(String::new(), |c| format!("cookie: {c}\r\n"));
    let request =
        format!("GET /cart HTTP/1.1\r\nhost: shop.test\r\n{cookie}connection: close\r\n\r\n");
    conn.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut raw))
        .await
        .map_err(|_| std::io::Error::other("no answer in 10 s"))??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no head in {text:?}")))?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status line"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}

/// The proxy process, killed when dropped.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_stick_to_their_backend_through_pingora() {
    let backends = [
        echo_backend("pod-a").await,
        echo_backend("pod-b").await,
        echo_backend("pod-c").await,
    ];
    let listen = free_port();
    let _proxy = Proxy(
        Command::new(env!("CARGO_BIN_EXE_tower-sticky-pingora"))
            .arg(listen.to_string())
            .args(backends.iter().map(ToString::to_string))
            .env("TOWER_STICKY_KEY", "a pingora test key of 32 bytes or more")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the proxy binary starts"),
    );

    // Poll until the proxy answers (a loaded machine may take a while).
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        match get(listen, None).await {
            Ok(a) => break a,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the proxy never answered: {e}"),
        }
    };
    assert_eq!(first.status, 200);
    let cookie = first.session_cookie();
    assert!(cookie.starts_with("Session-A="), "{cookie}");
    let set_cookie = first.header("set-cookie").unwrap();
    assert!(
        set_cookie.ends_with("; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax"),
        "{set_cookie}"
    );
    assert_eq!(first.header("cache-control"), Some("private"));
    let pod = first.backend().to_owned();

    // Twenty requests with the cookie (and another cookie beside it) reach
    // the same pod; the session cookie never reaches the backend, the other
    // one does; nothing is written back.
    for i in 0..20 {
        let again = get(listen, Some(&format!("theme=dark; {cookie}")))
            .await
            .unwrap();
        assert_eq!(again.status, 200, "request {i}");
        assert_eq!(again.backend(), pod, "request {i}");
        assert_eq!(again.upstream_cookie(), "theme=dark", "request {i}");
        assert_eq!(again.header("set-cookie"), None, "request {i}");
    }

    // New clients spread over the pods (round robin), each pinned.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let a = get(listen, None).await.unwrap();
        let again = get(listen, Some(&a.session_cookie())).await.unwrap();
        assert_eq!(again.backend(), a.backend());
        seen.insert(a.backend().to_owned());
    }
    assert_eq!(seen.len(), 3, "{seen:?}");

    // A forged value is a new session, not an error.
    let forged = get(listen, Some("Session-A=forged")).await.unwrap();
    assert_eq!(forged.status, 200);
    assert!(forged.header("set-cookie").is_some());
    assert_eq!(forged.upstream_cookie(), "");
}
