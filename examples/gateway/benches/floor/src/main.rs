//! The race's floor (issue 21): the least a sticky HTTP/1.1 proxy must do per
//! request, written as directly as tokio allows, so that the race can say how
//! far the gateway and HAProxy are from what this machine permits.
//!
//!     sticky-floor --listen 127.0.0.1:19110 --backend 127.0.0.1:19100,127.0.0.1:19101 --threads 1
//!
//! Per worker thread a current-thread tokio runtime and its own
//! `SO_REUSEPORT` listener. One task per client connection: it reads a head
//! with `httparse` (stack storage), does one HMAC-SHA256 per request (checks
//! the `Session-A` cookie, or signs a new one, round-robin over the
//! backends), writes the upstream head from the client's bytes with the
//! session cookie and hop-by-hop fields taken out and `x-forwarded-for`
//! added, and keeps its own keep-alive socket per backend (never shared with
//! another client connection). The response head is forwarded with
//! `set-cookie` and `cache-control: private` inserted for a new session.
//! Bodies go by `Content-Length` only; anything else is answered 501 and
//! the connection closed. A benchmark contestant, not a proxy: no timeouts,
//! no retries, no health.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const COOKIE: &[u8] = b"Session-A";
const KEY: &[u8] = b"sticky-floor benchmark key, 32 b";
const MAX_HEAD: usize = 16 * 1024;
const MAX_FIELDS: usize = 100;

struct Config {
    backends: Vec<SocketAddr>,
    /// Keyed once (the padded key blocks hashed), cloned per request.
    keyed: Hmac<Sha256>,
    next_session: AtomicU64,
}

fn main() {
    let mut listen: Option<SocketAddr> = None;
    let mut backends = Vec::new();
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--listen" => listen = Some(value.parse().unwrap_or_else(|_| usage("bad --listen"))),
            "--backend" => {
                for a in value.split(',') {
                    backends.push(a.parse().unwrap_or_else(|_| usage("bad --backend")));
                }
            }
            "--threads" => threads = value.parse().unwrap_or_else(|_| usage("bad --threads")),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    let listen = listen.unwrap_or_else(|| usage("--listen is required"));
    if backends.is_empty() || backends.len() > 9 || threads == 0 {
        usage("1 to 9 backends and at least 1 thread");
    }
    let config: &'static Config = Box::leak(Box::new(Config {
        backends,
        keyed: <Hmac<Sha256> as KeyInit>::new_from_slice(KEY).expect("any key length"),
        next_session: AtomicU64::new(0),
    }));
    let workers: Vec<_> = (0..threads)
        .map(|_| std::thread::spawn(move || worker(listen, config)))
        .collect();
    for w in workers {
        if let Ok(Err(e)) = w.join() {
            eprintln!("sticky-floor: {e}");
            std::process::exit(1);
        }
    }
}

fn usage(why: &str) -> ! {
    eprintln!(
        "sticky-floor: {why}\nusage: sticky-floor --listen ADDR --backend ADDR[,ADDR...] [--threads N]"
    );
    std::process::exit(2)
}

fn worker(listen: SocketAddr, config: &'static Config) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async move {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.set_reuseport(true)?;
        socket.bind(listen)?;
        let listener = socket.listen(1024)?;
        loop {
            let (client, peer) = listener.accept().await?;
            client.set_nodelay(true)?;
            tokio::spawn(async move {
                let _ = connection(client, peer, config).await;
            });
        }
    })
}

/// What one request head says, once parsed.
struct Head {
    len: usize,
    body: usize,
    pod: usize,
    new_cookie: Option<Vec<u8>>,
    no_body_response: bool,
}

async fn connection(
    mut client: TcpStream,
    peer: SocketAddr,
    config: &'static Config,
) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_HEAD];
    let mut len = 0;
    let mut upstream: Vec<Option<TcpStream>> = config.backends.iter().map(|_| None).collect();
    let mut out = Vec::with_capacity(2048);
    let mut rbuf = vec![0u8; MAX_HEAD];
    let peer_ip = peer.ip().to_string();
    loop {
        // One request head.
        let head = loop {
            if len > 0 {
                out.clear();
                match request_head(&buf[..len], &peer_ip, config, &mut out) {
                    Ok(Some(h)) => break h,
                    Ok(None) if len < buf.len() => {}
                    Ok(None) => {
                        return refuse(&mut client, "431 Request Header Fields Too Large").await;
                    }
                    Err(status) => return refuse(&mut client, status).await,
                }
            }
            let n = client.read(&mut buf[len..]).await?;
            if n == 0 {
                return Ok(());
            }
            len += n;
        };
        // The request body, by Content-Length, after the head.
        let in_buf = (len - head.len).min(head.body);
        out.extend_from_slice(&buf[head.len..head.len + in_buf]);
        let up = send(&mut upstream, head.pod, config, &out).await?;
        let mut left = head.body - in_buf;
        while left > 0 {
            let n = client.read(&mut rbuf[..left.min(MAX_HEAD)]).await?;
            if n == 0 {
                return Ok(());
            }
            up.write_all(&rbuf[..n]).await?;
            left -= n;
        }
        buf.copy_within(head.len + in_buf..len, 0);
        len -= head.len + in_buf;
        // The response.
        let mut rlen = 0;
        let (rhead, rbody) = loop {
            let n = up.read(&mut rbuf[rlen..]).await?;
            if n == 0 {
                return refuse(&mut client, "502 Bad Gateway").await;
            }
            rlen += n;
            match response_head(&rbuf[..rlen], head.no_body_response) {
                Ok(Some(r)) => break r,
                Ok(None) if rlen < rbuf.len() => {}
                _ => return refuse(&mut client, "502 Bad Gateway").await,
            }
        };
        out.clear();
        out.extend_from_slice(&rbuf[..rhead - 2]);
        if let Some(cookie) = &head.new_cookie {
            out.extend_from_slice(b"set-cookie: ");
            out.extend_from_slice(COOKIE);
            out.push(b'=');
            out.extend_from_slice(cookie);
            out.extend_from_slice(b"; Path=/; HttpOnly\r\ncache-control: private\r\n");
        }
        out.extend_from_slice(b"\r\n");
        let in_rbuf = (rlen - rhead).min(rbody);
        out.extend_from_slice(&rbuf[rhead..rhead + in_rbuf]);
        client.write_all(&out).await?;
        let mut left = rbody - in_rbuf;
        while left > 0 {
            let n = up.read(&mut rbuf[..left.min(MAX_HEAD)]).await?;
            if n == 0 {
                return Ok(());
            }
            client.write_all(&rbuf[..n]).await?;
            left -= n;
        }
    }
}

/// Writes the upstream request to the client connection's own socket for
/// `pod`, connecting (again, once, if a kept socket turned out closed).
async fn send<'a>(
    upstream: &'a mut [Option<TcpStream>],
    pod: usize,
    config: &Config,
    bytes: &[u8],
) -> io::Result<&'a mut TcpStream> {
    if let Some(s) = upstream[pod].as_mut()
        && s.write_all(bytes).await.is_ok()
    {
        return Ok(upstream[pod].as_mut().expect("just used"));
    }
    let s = TcpStream::connect(config.backends[pod]).await?;
    s.set_nodelay(true)?;
    let s = upstream[pod].insert(s);
    s.write_all(bytes).await?;
    Ok(s)
}

async fn refuse(client: &mut TcpStream, status: &str) -> io::Result<()> {
    let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    client.write_all(answer.as_bytes()).await
}

/// Parses a request head in `bytes`; on success writes the upstream head to
/// `out`. `Ok(None)`: incomplete.
fn request_head(
    bytes: &[u8],
    peer_ip: &str,
    config: &Config,
    out: &mut Vec<u8>,
) -> Result<Option<Head>, &'static str> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut fields);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("431 Request Header Fields Too Large"),
        Err(_) => return Err("400 Bad Request"),
    };
    let method = req.method.unwrap_or("GET");
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.path.unwrap_or("/").as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut body = 0;
    let mut session: Option<&[u8]> = None;
    for f in req.headers.iter() {
        let name = f.name;
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("501 Not Implemented");
        }
        if name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(f.value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or("400 Bad Request")?;
        }
        if name.eq_ignore_ascii_case("cookie") {
            let kept = strip_cookie(f.value, &mut session);
            if !kept.is_empty() {
                out.extend_from_slice(b"cookie: ");
                out.extend_from_slice(&kept);
                out.extend_from_slice(b"\r\n");
            }
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(f.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    out.extend_from_slice(peer_ip.as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    let (pod, new_cookie) = match session.and_then(|t| verify(config, t)) {
        Some(pod) if pod < config.backends.len() => (pod, None),
        _ => {
            let id = config.next_session.fetch_add(1, Ordering::Relaxed);
            let pod = (id % config.backends.len() as u64) as usize;
            (pod, Some(sign(config, pod, id)))
        }
    };
    Ok(Some(Head {
        len,
        body,
        pod,
        new_cookie,
        no_body_response: method == "HEAD",
    }))
}

/// The `Cookie` value without the session pair (whose value goes to
/// `session`).
fn strip_cookie<'a>(value: &'a [u8], session: &mut Option<&'a [u8]>) -> Vec<u8> {
    let mut kept = Vec::new();
    for pair in value.split(|&b| b == b';') {
        let pair = pair.trim_ascii();
        if let Some(v) = pair.strip_prefix(COOKIE).and_then(|r| r.strip_prefix(b"=")) {
            *session = Some(v);
            continue;
        }
        if !kept.is_empty() {
            kept.extend_from_slice(b"; ");
        }
        kept.extend_from_slice(pair);
    }
    kept
}

fn mac(config: &Config, pod: usize, id: &[u8]) -> [u8; 32] {
    let mut m = config.keyed.clone();
    m.update(&[pod as u8]);
    m.update(id);
    m.finalize().into_bytes().into()
}

/// `P.IIIIIIIIIIIIIIII.TTTT...`: the pod's index, the session id and 16
/// bytes of its HMAC, in hex.
fn sign(config: &Config, pod: usize, id: u64) -> Vec<u8> {
    let id = format!("{id:016x}");
    let tag = mac(config, pod, id.as_bytes());
    let mut v = format!("{pod}.{id}.").into_bytes();
    for b in &tag[..16] {
        v.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    v
}

fn verify(config: &Config, token: &[u8]) -> Option<usize> {
    if token.len() != 2 + 16 + 1 + 32 || token[1] != b'.' || token[18] != b'.' {
        return None;
    }
    let pod = (token[0] as char).to_digit(10)? as usize;
    let tag = mac(config, pod, &token[2..18]);
    let mut diff = 0u8;
    for (i, b) in tag[..16].iter().enumerate() {
        let hex = &token[19 + 2 * i..21 + 2 * i];
        let got = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        diff |= got ^ b;
    }
    (diff == 0).then_some(pod)
}

/// Parses a response head: `Some((head length, body length))`.
fn response_head(bytes: &[u8], no_body: bool) -> Result<Option<(usize, usize)>, ()> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_FIELDS];
    let mut res = httparse::Response::new(&mut fields);
    let len = match res.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    let code = res.code.unwrap_or(502);
    if no_body || code == 204 || code == 304 || (100..200).contains(&code) {
        return Ok(Some((len, 0)));
    }
    for f in res.headers.iter() {
        if f.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(f.value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or(())?;
            return Ok(Some((len, n)));
        }
    }
    Err(())
}
