//! One client HTTP/1 connection on the lean path: a loop over its
//! requests, on the connection's own task, driving the upstream sockets
//! it owns ([`super::upstream`]).
//!
//! Each request: the head is read here (one read when it arrives whole;
//! a buffer is taken only when bytes arrive, [`super::bufs`]) and parsed
//! ([`super::head`]); then ([`super::exchange`]) the same steps as the
//! hyper path decide ([`decide`](crate::forward::decide): Host, `Via`
//! loop, route, pin), the upstream head is encoded after
//! `prepare_request`, and the head and what is buffered of the body go
//! out in one write. The body is read whole first when the request may be
//! retried (idempotent, up to `--retry-buffer`), otherwise streamed after
//! the head. Attempts ([`super::attempt`]) follow the hyper path's rules
//! ([`Retry`](crate::forward::attempt::Retry), passive health): a request
//! that is not idempotent is never written twice once any byte of it went
//! out. The response head ([`super::respond`]) gets the hyper path's edits
//! ([`edit_response`](crate::forward::edit_response)) and goes back in
//! one write with what is buffered of its body; the rest is copied by
//! framing.
//!
//! What the path does not handle is handed to hyper on the same
//! connection ([`Served::HandOver`]): gRPC, and rules whose backend speaks
//! h2c.

use super::bufs::{self, Buf};
use super::encode;
use super::head::{self, HeadError, RequestHead};
use super::rewind::Rewind;
use super::upstream::{Connector, Up};
use crate::answer::own::{self, Answer};
use crate::forward::{Client, Proxy};
use crate::listen::coarse;
use crate::listen::conn::{DRAIN_IDLE, Drain};
use http::header::{CONNECTION, CONTENT_LENGTH};
use http::{HeaderMap, HeaderValue, Version};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::WaitForCancellationFuture;

/// How long a client may take to send a request head, counted from the
/// end of the previous exchange (hyper's `header_read_timeout` on the
/// hyper path, which closes idle keep-alive connections after it too).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// What a client that sent `Expect: 100-continue` gets before its body is
/// read, even when the body came with the head (as hyper's server writes
/// it when the body is first read).
pub(super) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How a client connection ended on the lean path.
#[derive(Debug)]
pub enum Served<C> {
    /// Closed (by either side, or after an error).
    Closed,
    /// The rest of the connection goes to hyper: the bytes read and not
    /// consumed are read again first.
    HandOver(Rewind<C>),
}

/// After one exchange.
pub(super) enum Step {
    Next,
    Close,
    HandOver,
}

/// One client connection's state.
pub(super) struct Conn<'a, C, K: Connector> {
    pub(super) io: C,
    /// What the client sent and was not consumed yet.
    pub(super) cbuf: Option<Buf>,
    /// The upstream sockets kept for reuse, at most one per address.
    pub(super) ups: Vec<Up<K::Io>>,
    pub(super) proxy: &'a Proxy,
    pub(super) client: &'a Client,
    pub(super) connector: &'a K,
    pub(super) limits: head::Limits,
    pub(super) drain: &'a Drain,
}

/// Serves one client HTTP/1 connection (`io`, after TLS if any) on the
/// lean path until it closes, or until it is handed over to hyper.
/// `client` says who it is (`X-Forwarded-*`, TLS for the cookie's
/// `Secure`, and `--http-reuse`); `connector` opens upstream sockets;
/// `limits` are `--max-header-bytes` and `--max-headers`; `drain` is the
/// worker's.
pub async fn serve<C, K>(
    io: C,
    proxy: &Proxy,
    client: &Client,
    connector: &K,
    limits: head::Limits,
    drain: &Drain,
) -> Served<C>
where
    C: AsyncRead + AsyncWrite + Unpin,
    K: Connector,
{
    // The drain's signal is polled once, to leave this task's waker with
    // the token (a task's waker does not change); after that the flag is
    // read (no lock per request, as `listen::conn::watched` does).
    let mut signal = std::pin::pin!(drain.cancelled());
    let mut armed = false;
    let mut conn = Conn {
        io,
        cbuf: None,
        ups: Vec::new(),
        proxy,
        client,
        connector,
        limits,
        drain,
    };
    // Bounded: every turn reads a new request head (or ends).
    loop {
        let head = match conn.read_head(signal.as_mut(), &mut armed).await {
            Ok(Some(head)) => head,
            Ok(None) => return Served::Closed,
            Err(e) => {
                conn.refuse(e).await;
                return Served::Closed;
            }
        };
        match conn.exchange(head).await {
            Step::Next => {}
            Step::Close => {
                let _ = conn.io.shutdown().await;
                return Served::Closed;
            }
            Step::HandOver => {
                let Conn { io, cbuf, .. } = conn;
                return Served::HandOver(Rewind::new(cbuf, io));
            }
        }
    }
}

impl<C, K> Conn<'_, C, K>
where
    C: AsyncRead + AsyncWrite + Unpin,
    K: Connector,
{
    /// The next request head. `Ok(None)`: the client closed, or went
    /// quiet (past [`DRAIN_IDLE`] in a drain), or its head (counted from
    /// the end of the previous exchange, so an idle keep-alive connection
    /// too) did not arrive within [`HEAD_TIMEOUT`], as hyper's
    /// `header_read_timeout` does. An idle connection holds no buffer.
    async fn read_head(
        &mut self,
        signal: Pin<&mut WaitForCancellationFuture<'_>>,
        armed: &mut bool,
    ) -> Result<Option<RequestHead>, HeadError> {
        let mut signal = signal;
        let max = self.limits.max_head_bytes;
        let deadline = coarse::now() + HEAD_TIMEOUT;
        // Bounded: every turn reads more bytes of a head bounded by `max`,
        // each read before the deadline.
        loop {
            if let Some(b) = &self.cbuf {
                match head::parse_request(b.bytes(), &self.limits) {
                    Ok(head) => return Ok(Some(head)),
                    Err(HeadError::Partial) if b.len() >= max => return Err(HeadError::TooLarge),
                    Err(HeadError::Partial) => {}
                    Err(e) => return Err(e),
                }
            }
            let idle = self.cbuf.is_none();
            let read = bufs::read(&mut self.io, &mut self.cbuf, max);
            let got = match idle {
                false => coarse::timeout_at(deadline, read).await.ok(),
                true => {
                    // Meanwhile a kept upstream socket that receives a byte
                    // or is closed by its backend is closed at once.
                    let ups = &mut self.ups;
                    let mut read = std::pin::pin!(read);
                    let watched = std::future::poll_fn(|cx| {
                        ups.retain_mut(|up| up.quiet(cx));
                        read.as_mut().poll(cx)
                    });
                    let watched = coarse::timeout_at(deadline, watched);
                    until_drained(watched, self.drain, signal.as_mut(), armed)
                        .await
                        .and_then(Result::ok)
                }
            };
            match got {
                Some(Ok(n)) if n > 0 => {}
                _ => return Ok(None),
            }
        }
    }

    /// Answers a head that could not be read (431, 400) and closes.
    async fn refuse(&mut self, error: HeadError) {
        tracing::debug!("request head: {error}");
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        let mut out = bufs::take_out();
        encode::response_head(&mut out, head::status_for(error), &headers);
        let _ = self.write_client(&out).await;
        bufs::give_out(out);
        let _ = self.io.shutdown().await;
    }

    /// Consumes `n` bytes of the client's buffer (a head).
    pub(super) fn consume(&mut self, n: usize) {
        if let Some(b) = &mut self.cbuf {
            b.consume(n);
        }
        bufs::release(&mut self.cbuf);
    }

    /// Gives `out` back and returns `step`.
    pub(super) fn finish(&mut self, out: Vec<u8>, step: Step) -> Step {
        bufs::give_out(out);
        step
    }

    /// Writes `bytes` to the client, flushed (TLS).
    pub(super) async fn write_client(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Writes one of the gateway's own answers (`close`: and closes).
    pub(super) async fn write_own(&mut self, answer: Answer, reply: Reply, close: bool) -> Step {
        let text = answer.1;
        let (mut parts, _) = own::response(answer).into_parts();
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(text.len()));
        let close = close || reply.closes(self.drain);
        reply.connection(&mut parts.headers, close);
        let mut out = bufs::take_out();
        encode::response_head(&mut out, parts.status, &parts.headers);
        if !reply.head_only {
            out.extend_from_slice(text.as_bytes());
        }
        let written = self.write_client(&out).await;
        bufs::give_out(out);
        if close || written.is_err() {
            Step::Close
        } else {
            Step::Next
        }
    }
}

/// What the client's response depends on of its request.
#[derive(Clone, Copy)]
pub(super) struct Reply {
    /// The client keeps the connection open.
    pub(super) keep_alive: bool,
    pub(super) version: Version,
    /// HEAD: an own answer's text is not written.
    pub(super) head_only: bool,
}

impl Reply {
    /// Whether the connection closes after this response: the client
    /// said so, or the worker drains.
    pub(super) fn closes(self, drain: &Drain) -> bool {
        !self.keep_alive || drain.draining()
    }

    /// `Connection: close` when `close`; an HTTP/1.0 client that asked
    /// for keep-alive is told it is kept.
    pub(super) fn connection(self, headers: &mut HeaderMap, close: bool) {
        if close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        } else if self.version == Version::HTTP_10 {
            headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        }
    }
}

/// `fut`, unless the worker's drain starts and [`DRAIN_IDLE`] passes
/// first (an idle connection in a drain is closed). `signal` is polled
/// only until `armed`; then the drain's flag is read when the task wakes.
async fn until_drained<F: Future>(
    fut: F,
    drain: &Drain,
    mut signal: Pin<&mut WaitForCancellationFuture<'_>>,
    armed: &mut bool,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    if !drain.draining() {
        let first = std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(out));
            }
            if !*armed {
                *armed = true;
                if signal.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
            }
            if drain.draining() {
                return Poll::Ready(None);
            }
            Poll::Pending
        });
        if let Some(out) = first.await {
            return Some(out);
        }
    }
    coarse::timeout_at(coarse::now() + DRAIN_IDLE, fut)
        .await
        .ok()
}
