//! The client side of a case: its bytes written to a gateway from an
//! address of the case's own, and what came back read into responses.

use super::backend::{Dechunked, dechunk};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a case waits for the gateway to finish answering and close.
/// Every case's stream ends with a `Connection: close` request, so a
/// gateway in step closes well before; one still waiting for body bytes
/// runs into this, and the difference shows as `ended`.
const READ_LIMIT: Duration = Duration::from_secs(5);

/// A response as the client got it, in the parts compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// `HTTP/1.1 200 OK`.
    pub status_line: String,
    /// Fields, names lower-cased, sorted; `date` and the framing fields
    /// (`transfer-encoding`, `connection`, `keep-alive`, a 304's
    /// `content-length`) left out, the session cookie's value replaced by
    /// `<token>`.
    pub headers: Vec<(String, String)>,
    /// De-framed.
    pub body: String,
    /// The response said `connection: close`.
    pub close: bool,
}

/// Everything the client got on one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub responses: Vec<Response>,
    /// After the last whole response: nothing when in step, else the
    /// first line of what is there (a response cut short).
    pub tail: String,
    /// `closed`, or `open after 5 s`.
    pub ended: &'static str,
}

/// The address of case `n` (127.1.x.y, never the same for two cases).
pub fn client_ip(n: usize) -> IpAddr {
    let lo = u8::try_from(n / 250).expect("fewer than 64,000 cases");
    IpAddr::from([127, 1, lo, u8::try_from(n % 250 + 1).expect("octet")])
}

/// Writes `pieces` (one write each) to `gateway` from `from`, reads until
/// the gateway closes (or [`READ_LIMIT`]), and parses what came back.
/// `head_at[k]`: response `k` answers a HEAD (it has no body).
pub async fn exchange(gateway: &str, from: IpAddr, pieces: &[Vec<u8>], head_at: &[bool]) -> Seen {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(from, 0))
        .expect("bind a 127/8 client address");
    let mut s = socket
        .connect(gateway.parse().expect("gateway addr"))
        .await
        .expect("connect");
    let _ = s.set_nodelay(true);
    let mut got = Vec::new();
    let read_all = async {
        for piece in pieces {
            // The gateway may close early (a 400): the rest is not sent.
            if s.write_all(piece).await.is_err() {
                break;
            }
            let _ = s.flush().await;
        }
        let _ = s.read_to_end(&mut got).await;
    };
    let ended = match tokio::time::timeout(READ_LIMIT, read_all).await {
        Ok(()) => "closed",
        Err(_) => "open after 5 s",
    };
    parse_responses(&got, head_at, ended)
}

/// The responses in `bytes`, in order.
fn parse_responses(bytes: &[u8], head_at: &[bool], ended: &'static str) -> Seen {
    let mut responses = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let head = head_at.get(responses.len()).copied().unwrap_or(false);
        let Some((len, response)) = parse_response(&bytes[at..], head) else {
            break;
        };
        responses.push(response);
        at += len;
    }
    Seen {
        responses,
        tail: String::from_utf8_lossy(&bytes[at..])
            .lines()
            .next()
            .unwrap_or("")
            .to_owned(),
        ended,
    }
}

/// One response at the start of `buf` and its length; `None` if it is not
/// whole or not a response.
fn parse_response(buf: &[u8], head: bool) -> Option<(usize, Response)> {
    let mut fields = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut fields);
    let httparse::Status::Complete(head_len) = resp.parse(buf).ok()? else {
        return None;
    };
    let code = resp.code?;
    let mut headers = Vec::new();
    let (mut length, mut chunked, mut close) = (None, false, false);
    for h in resp.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let mut value = String::from_utf8_lossy(h.value).into_owned();
        match name.as_str() {
            "date" | "keep-alive" => continue,
            "transfer-encoding" => {
                chunked = value.eq_ignore_ascii_case("chunked");
                continue;
            }
            "connection" => {
                close = value.to_ascii_lowercase().contains("close");
                continue;
            }
            "content-length" => {
                // hyper passes a list of one repeated value on.
                let mut values = value.split(',').map(|v| v.trim().parse::<usize>().ok());
                let first = values.next().flatten();
                length = first.filter(|_| values.all(|v| v == first));
            }
            "set-cookie" if value.starts_with("Session-A=") => {
                let attributes = value.split_once(';').map_or("", |(_, a)| a).to_owned();
                value = format!("Session-A=<token>;{attributes}");
            }
            _ => {}
        }
        headers.push((name, value));
    }
    if code == 304 {
        // A 304's Content-Length is the selected representation's (RFC
        // 9110 §8.6), never framing: hyper drops it, the lean path keeps
        // it, and a client reads no body either way.
        headers.retain(|(name, _)| name != "content-length");
    }
    headers.sort();
    let rest = &buf[head_len..];
    let no_body = head || code < 200 || code == 204 || code == 304;
    let (body_len, body) = if no_body {
        (0, Vec::new())
    } else if chunked {
        match dechunk(rest) {
            Dechunked::Done(n, data) => (n, data),
            Dechunked::Partial | Dechunked::Bad => return None,
        }
    } else if let Some(n) = length {
        (n, rest.get(..n)?.to_vec())
    } else {
        (rest.len(), rest.to_vec())
    };
    let status_line = String::from_utf8_lossy(&buf[..head_len])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    Some((
        head_len + body_len,
        Response {
            status_line,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            close,
        },
    ))
}
