//! One client HTTP/1 connection on the lean path: a loop over its
//! requests, on the connection's own task, driving the upstream sockets
//! it owns ([`super::upstream`]).
//!
//! Each request: the head is read (one read when it arrives whole; a
//! buffer is taken only when bytes arrive, [`super::bufs`]) and parsed
//! ([`super::head`]); then the same steps as the hyper path decide
//! ([`forward::decide`]: Host, `Via` loop, route, pin), the upstream head
//! is encoded after `prepare_request`, and the head and what is buffered
//! of the body go out in one write. The body is read whole first when the
//! request may be retried (idempotent, up to `--retry-buffer`), otherwise
//! streamed after the head. Attempts follow the hyper path's rules
//! ([`Retry`], passive health): a request that is not idempotent is never
//! written twice once any byte of it went out. The response head gets the
//! hyper path's edits ([`forward::edit_response`]) and goes back in one
//! write with what is buffered of its body; the rest is copied by framing.
//!
//! What the path does not handle is handed to hyper on the same
//! connection ([`Served::HandOver`]): gRPC, and rules whose backend speaks
//! h2c.

use super::body::{self, CopyError, Remaining};
use super::bufs::{self, Buf};
use super::encode;
use super::head::{self, Framing, HeadError, RequestHead, ResponseHead};
use super::rewind::Rewind;
use super::upstream::{Connector, Up};
use crate::answer::own::{self, Access, Answer, Line};
use crate::config::rules::{Rule, Upstream};
use crate::discover::app_protocol::AppProtocol;
use crate::forward::attempt::{Failure, Next, Retry};
use crate::forward::{self, Client, Proxy, health};
use crate::listen::coarse;
use crate::listen::conn::{DRAIN_IDLE, Drain};
use crate::pin::{self, Choice};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::WaitForCancellationFuture;
use tower_sticky::balance::Endpoint;
use tower_sticky::sticky::Outcome;

/// How long a client may take to send a request head, counted from the
/// end of the previous exchange (hyper's `header_read_timeout` on the
/// hyper path, which closes idle keep-alive connections after it too).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest backend response head and most fields read (hyper's
/// client reads up to ~400 KiB; the gateway's request limits apply when
/// larger).
const RESPONSE_HEAD_BYTES: usize = 64 * 1024;
const RESPONSE_HEADERS: usize = 100;
/// What a client that sent `Expect: 100-continue` gets before its body is
/// read, even when the body came with the head (as hyper's server writes
/// it when the body is first read).
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

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
enum Step {
    Next,
    Close,
    HandOver,
}

/// One client connection's state.
struct Conn<'a, C, K: Connector> {
    io: C,
    /// What the client sent and was not consumed yet.
    cbuf: Option<Buf>,
    /// The upstream sockets kept for reuse, at most one per address.
    ups: Vec<Up<K::Io>>,
    proxy: &'a Proxy,
    client: &'a Client,
    connector: &'a K,
    limits: head::Limits,
    drain: &'a Drain,
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

    /// One request and its response, in the order it lives: handed over
    /// to hyper, or decided (the hyper path's steps), then forwarded
    /// ([`Self::forward`]).
    async fn exchange(&mut self, head: RequestHead) -> Step {
        let RequestHead {
            parts,
            framing,
            keep_alive,
            expect_continue,
            len,
        } = head;
        let mut req = http::Request::from_parts(parts, ());
        if handed_over(&req) {
            return Step::HandOver;
        }
        if self.client.origin.client_tls(req.headers()) {
            // The library's `Secure::Auto` reads it.
            req.extensions_mut().insert(tower_sticky::ClientTls);
        }
        let version = req.version();
        let head_only = req.method() == Method::HEAD;
        let reply = Reply {
            keep_alive,
            version,
            head_only,
        };
        let access = Access::start(&req);
        let access = access.as_ref();
        // In-flight requests finish on the snapshot they started with.
        let compiled = self.proxy.snapshot();
        let upgrade = crate::answer::headers::upgrade_protocol(&req);
        let forward::Decided { rule, choice } = match forward::decide(&compiled, access, &mut req) {
            Ok(decided) => decided,
            Err(own) => {
                self.consume(len);
                // Its body is not read: the connection closes after.
                let close = framing != Framing::None;
                return self.write_own(own, reply, close).await;
            }
        };
        if choice.endpoint.target().member.protocol == AppProtocol::H2c && upgrade.is_none() {
            return Step::HandOver;
        }
        self.consume(len);
        let forwarded = Forwarded {
            access,
            rule,
            reply,
            upgrade,
            framing,
            expect_continue,
        };
        let (parts, ()) = req.into_parts();
        self.forward(forwarded, parts, choice).await
    }

    /// A decided request: its upstream head, its body
    /// ([`Self::take_body`]), then the attempts ([`Self::attempts`]), or
    /// the gateway's answer.
    async fn forward(
        &mut self,
        f: Forwarded<'_>,
        mut parts: http::request::Parts,
        mut choice: Choice,
    ) -> Step {
        let mut expect_continue = f.expect_continue;
        let mut out = bufs::take_out();
        let upgrade = f.upgrade.as_ref();
        self.upstream_head(&mut out, &mut parts, upgrade, f.reply.version, f.framing);
        let mut rest = Remaining::of(f.framing);
        let mut kept = true;
        if let Some(r) = rest.as_mut() {
            let method = &parts.method;
            match self
                .take_body(r, method, &mut expect_continue, &mut out)
                .await
            {
                Ok(true) => rest = None,
                Ok(false) => kept = false,
                Err(BodyStop::ClientGone) => return self.finish(out, Step::Close),
                Err(BodyStop::Failed(e)) => {
                    let own = body_failed(f.access, f.rule, choice.outcome, e);
                    bufs::give_out(out);
                    return self.write_own(own, f.reply, true).await;
                }
            }
        }
        let outgoing = Outgoing {
            access: f.access,
            rule: f.rule,
            reply: f.reply,
            head: pin::Head {
                method: &parts.method,
                uri: &parts.uri,
                headers: &parts.headers,
            },
            upgrade: upgrade.is_some(),
            kept,
        };
        let (choice, rest) = (&mut choice, &mut rest);
        let ended = self
            .attempts(&outgoing, choice, rest, &mut expect_continue, &mut out)
            .await;
        bufs::give_out(out);
        match ended {
            Ended::Responded(step) => step,
            Ended::Own(own, close) => self.write_own(own, f.reply, close).await,
        }
    }

    /// Encodes the upstream head into `out`: the hyper path's request
    /// edits (`prepare_request`), then what this path puts back.
    fn upstream_head(
        &self,
        out: &mut Vec<u8>,
        parts: &mut http::request::Parts,
        upgrade: Option<&HeaderValue>,
        version: Version,
        framing: Framing,
    ) {
        let has_host = crate::answer::headers::prepare_request(
            &mut parts.headers,
            &parts.uri,
            &self.client.ip,
            upgrade,
            self.client.origin,
            version,
        );
        if !has_host {
            // RFC 9112 §3.2: no authority, an empty Host (as the hyper path).
            parts.headers.insert(HOST, HeaderValue::from_static(""));
        }
        if framing == Framing::Chunked {
            // Dropped as hop-by-hop: the body goes as it came.
            parts
                .headers
                .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        }
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        encode::request_head(out, &parts.method, target, &parts.headers);
    }

    /// The body before the first attempt: read whole into `out`, after
    /// the head, when the request may be retried (idempotent, up to
    /// `--retry-buffer`); otherwise what is buffered of it joins the head
    /// and the attempt streams the rest. `Ok(true)`: read whole.
    async fn take_body(
        &mut self,
        r: &mut Remaining,
        method: &Method,
        expect_continue: &mut bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, BodyStop> {
        let head_len = out.len();
        let bound = if tower_sticky::failover::is_idempotent(method) {
            self.proxy.options().retry_buffer
        } else {
            0
        };
        let fits = match r {
            Remaining::Length(n) => *n <= bound as u64,
            _ => bound > 0,
        };
        if !fits {
            return r
                .move_buffered(&mut self.cbuf, out)
                .map(|()| false)
                .map_err(|e| BodyStop::Failed(CopyError::Read(e.to_string())));
        }
        if *expect_continue {
            *expect_continue = false;
            if self.write_client(CONTINUE).await.is_err() {
                return Err(BodyStop::ClientGone);
            }
        }
        let deadline = coarse::now() + forward::BODY_TIMEOUT;
        let (io, cbuf) = (&mut self.io, &mut self.cbuf);
        body::read_whole(io, cbuf, out, head_len, r, bound, deadline)
            .await
            .map_err(BodyStop::Failed)
    }

    /// Attempts, until one gets a response head (sent back by
    /// [`Self::respond`]) or [`Retry`] says stop (the gateway answers).
    async fn attempts(
        &mut self,
        o: &Outgoing<'_>,
        choice: &mut Choice,
        rest: &mut Option<Remaining>,
        expect_continue: &mut bool,
        out: &mut Vec<u8>,
    ) -> Ended {
        let mut retry = Retry::new(o.head.method);
        let mut fresh = false;
        let mut sent = false;
        // Bounded: `Retry` stops after its attempts.
        loop {
            if !o.kept && sent {
                let failure = Failure::BadResponse("request body already sent".into());
                return failed(o, choice, rest.as_ref(), failure);
            }
            let endpoint = std::sync::Arc::clone(&choice.endpoint);
            let attempt = Attempt {
                endpoint: &endpoint,
                method: o.head.method,
                request: out,
                upgrade: o.upgrade,
                fresh,
            };
            let failure = match self
                .attempt(attempt, rest, &mut sent, expect_continue)
                .await
            {
                Ok((response, up, ubuf)) => {
                    health::succeeded(self.proxy.passive(), &endpoint);
                    let answered = Answered {
                        access: o.access,
                        rule: o.rule,
                        response,
                        up,
                        ubuf,
                        upgrade: o.upgrade,
                    };
                    return Ended::Responded(self.respond(answered, choice, o.reply, out).await);
                }
                Err(f) => f,
            };
            forward::log_failure(o.rule, &endpoint, &failure);
            let (next, blame) = retry.after_failure(endpoint.id(), failure, o.kept || !sent);
            health::failed(self.proxy.passive(), o.rule, &endpoint, blame);
            fresh = false;
            match next {
                Next::SameFresh => fresh = true,
                Next::Stop(failure) => return failed(o, choice, rest.as_ref(), failure),
                Next::Other => {
                    if let Err(ended) = other_backend(o, choice, rest.as_ref(), &retry) {
                        return ended;
                    }
                }
            }
        }
    }

    /// Consumes `n` bytes of the client's buffer (a head).
    fn consume(&mut self, n: usize) {
        if let Some(b) = &mut self.cbuf {
            b.consume(n);
        }
        bufs::release(&mut self.cbuf);
    }

    /// Gives `out` back and returns `step`.
    fn finish(&mut self, out: Vec<u8>, step: Step) -> Step {
        bufs::give_out(out);
        step
    }

    /// Writes `bytes` to the client, flushed (TLS).
    async fn write_client(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Writes one of the gateway's own answers (`close`: and closes).
    async fn write_own(&mut self, answer: Answer, reply: Reply, close: bool) -> Step {
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

    /// One attempt: the request (and the rest of a streamed body) goes
    /// out over a kept socket or a fresh one, and the response head comes
    /// back, with the socket and what was read past the head.
    async fn attempt(
        &mut self,
        a: Attempt<'_>,
        rest: &mut Option<Remaining>,
        sent: &mut bool,
        expect_continue: &mut bool,
    ) -> Result<(ResponseHead, Up<K::Io>, Option<Buf>), Failure> {
        let member = &a.endpoint.target().member;
        // Shown by `/backends` until the response head is in.
        let _waiting = crate::discover::membership::Waiting::start(member);
        let addr = member.addr.as_str();
        let (mut up, reused) = self.upstream(addr, !a.fresh && !a.upgrade).await?;
        let deadline = coarse::now() + forward::RESPONSE_TIMEOUT;
        write_request(&mut up.io, a.request, addr, reused, deadline, sent).await?;
        if let Some(r) = rest.as_mut() {
            let io = &mut up.io;
            self.stream_body(io, r, addr, reused, deadline, expect_continue)
                .await?;
            *rest = None;
        }
        let limits = &self.limits;
        let (response, ubuf) =
            read_response(&mut up.io, &a, limits, addr, reused, deadline).await?;
        Ok((response, up, ubuf))
    }

    /// The socket for an attempt to `addr`, and whether it was kept: a
    /// kept one when `reuse` and there is one still fit, else a fresh one
    /// (within the per-endpoint cap).
    async fn upstream(&mut self, addr: &str, reuse: bool) -> Result<(Up<K::Io>, bool), Failure> {
        let mut kept = None;
        if reuse && let Some(i) = self.ups.iter().position(|u| &*u.addr == addr) {
            let mut up = self.ups.swap_remove(i);
            // A socket with a stray byte waiting, or closed, is dropped.
            if up.reusable() {
                kept = Some(up);
            }
        }
        match kept {
            Some(up) => Ok((up, true)),
            None => {
                // Boxed: opening a socket is rare next to reusing one, and
                // these futures would widen every connection's task.
                let options = self.proxy.options();
                let place = Box::pin(crate::forward::upstream::lean_place(addr, options));
                let Some(place) = place.await else {
                    return Err(Failure::Saturated);
                };
                match Box::pin(self.connector.connect(addr)).await {
                    Ok(io) => Ok((Up::new(addr.into(), io, place), false)),
                    Err(e) => Err(Failure::Refused(format!("connect to {addr}: {e}"))),
                }
            }
        }
    }

    /// The rest of a streamed request body, from the client to `up`
    /// (after `100 Continue` when the client waits for it).
    async fn stream_body(
        &mut self,
        up: &mut K::Io,
        r: &mut Remaining,
        addr: &str,
        reused: bool,
        deadline: Instant,
        expect_continue: &mut bool,
    ) -> Result<(), Failure> {
        if *expect_continue {
            *expect_continue = false;
            if let Err(e) = self.write_client(CONTINUE).await {
                return Err(Failure::ClientBody(format!("client: {e}")));
            }
        }
        let (io, cbuf) = (&mut self.io, &mut self.cbuf);
        match body::copy(io, cbuf, up, r, Some(deadline)).await {
            Ok(()) => Ok(()),
            Err(CopyError::Read(why)) => Err(Failure::ClientBody(format!("client body: {why}"))),
            Err(CopyError::Write(e)) => {
                let detail = format!("{addr}: {e}");
                Err(Failure::AfterWrite { reused, detail })
            }
        }
    }

    /// Writes the backend's response back (the hyper path's edits), its
    /// body by framing; keeps the upstream socket when it can take another
    /// request; splices the two for a 101 that completes an upgrade.
    async fn respond(
        &mut self,
        a: Answered<'_, K::Io>,
        choice: &mut Choice,
        reply: Reply,
        out: &mut Vec<u8>,
    ) -> Step {
        let Answered {
            access,
            rule,
            response,
            mut up,
            mut ubuf,
            upgrade,
        } = a;
        let ResponseHead {
            mut parts,
            framing,
            keep_alive: backend_keeps,
            len,
        } = response;
        if let Some(b) = &mut ubuf {
            b.consume(len);
        }
        bufs::release(&mut ubuf);
        let switching = upgrade && parts.status == StatusCode::SWITCHING_PROTOCOLS;
        forward::edit_response(access, rule, choice, &mut parts, switching);
        out.clear();
        if switching {
            encode_with_reason(out, &parts);
            // Boxed: rare, and its future would widen every task.
            return Box::pin(self.tunnel(up, ubuf, choice, out)).await;
        }
        let mut rest = Remaining::of(framing);
        let until_close = matches!(rest, Some(Remaining::UntilClose));
        let close = until_close || reply.closes(self.drain);
        client_response_head(out, &mut parts, framing, reply, close);
        if let Some(r) = rest.as_mut()
            && r.move_buffered(&mut ubuf, out).is_err()
        {
            // Nothing went back yet, but the log line says 2xx: close.
            return Step::Close;
        }
        if self.write_client(out).await.is_err() {
            return Step::Close;
        }
        if let Some(r) = rest.as_mut()
            && !r.done()
        {
            let copied = body::copy(&mut up.io, &mut ubuf, &mut self.io, r, None).await;
            if copied.is_err() || self.io.flush().await.is_err() {
                return Step::Close;
            }
        }
        // Counted in flight until the body has gone back.
        drop(choice.in_flight.take());
        self.keep_upstream(up, ubuf, backend_keeps && !until_close && !upgrade);
        if close { Step::Close } else { Step::Next }
    }

    /// After a response: `ubuf` given back, and `up` kept for the next
    /// request when `fit` (the backend keeps it, and it was not an
    /// upgrade or delimited by close), nothing stray came past the body,
    /// and `--http-reuse` allows.
    fn keep_upstream(&mut self, up: Up<K::Io>, mut ubuf: Option<Buf>, fit: bool) {
        let stray = ubuf.as_ref().is_some_and(|b| !b.is_empty());
        if let Some(mut b) = ubuf.take() {
            b.consume(b.len());
            bufs::settle(&mut ubuf, b);
        }
        let reuse = self.proxy.options().reuse;
        if fit && !stray && reuse != crate::cli::Reuse::Never {
            self.ups.retain(|u| u.addr != up.addr);
            self.ups.push(up);
        }
    }

    /// After a 101: the head and what either side sent past it, then the
    /// two sockets spliced until either closes (or [`forward::TUNNEL_MAX`]),
    /// the request counted in flight meanwhile.
    async fn tunnel(
        &mut self,
        mut up: Up<K::Io>,
        mut ubuf: Option<Buf>,
        choice: &mut Choice,
        out: &mut Vec<u8>,
    ) -> Step {
        let _in_flight = choice.in_flight.take();
        if let Some(b) = ubuf.take() {
            out.extend_from_slice(b.bytes());
            let mut b = b;
            b.consume(b.len());
            bufs::settle(&mut ubuf, b);
        }
        if self.write_client(out).await.is_err() {
            return Step::Close;
        }
        if let Some(b) = self.cbuf.take() {
            let sent = up.io.write_all(b.bytes()).await;
            let mut b = b;
            b.consume(b.len());
            bufs::settle(&mut self.cbuf, b);
            if sent.is_err() {
                return Step::Close;
            }
        }
        let splice = tokio::io::copy_bidirectional(&mut self.io, &mut up.io);
        let _ = tokio::time::timeout(forward::TUNNEL_MAX, splice).await;
        Step::Close
    }
}

/// What the client's response depends on of its request.
#[derive(Clone, Copy)]
struct Reply {
    /// The client keeps the connection open.
    keep_alive: bool,
    version: Version,
    /// HEAD: an own answer's text is not written.
    head_only: bool,
}

impl Reply {
    /// Whether the connection closes after this response: the client
    /// said so, or the worker drains.
    fn closes(self, drain: &Drain) -> bool {
        !self.keep_alive || drain.draining()
    }

    /// `Connection: close` when `close`; an HTTP/1.0 client that asked
    /// for keep-alive is told it is kept.
    fn connection(self, headers: &mut HeaderMap, close: bool) {
        if close {
            headers.insert(CONNECTION, HeaderValue::from_static("close"));
        } else if self.version == Version::HTTP_10 {
            headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        }
    }
}

/// One attempt's request.
struct Attempt<'a> {
    endpoint: &'a Endpoint<Upstream>,
    method: &'a Method,
    /// The head, and the body or what was buffered of it.
    request: &'a [u8],
    upgrade: bool,
    fresh: bool,
}

/// A response head and where it came from.
struct Answered<'a, U> {
    access: Option<&'a Access>,
    rule: &'a Rule,
    response: ResponseHead,
    up: Up<U>,
    ubuf: Option<Buf>,
    upgrade: bool,
}

/// A request the gateway forwards, as decided: what forwarding it reads
/// of the decision and of the client's head.
struct Forwarded<'a> {
    access: Option<&'a Access>,
    rule: &'a Rule,
    reply: Reply,
    /// The protocol the client's `Upgrade` asks for.
    upgrade: Option<HeaderValue>,
    framing: Framing,
    /// The client waits for `100 Continue` before its body.
    expect_continue: bool,
}

/// Why a request body was not taken before the first attempt.
enum BodyStop {
    /// The client's connection failed (writing `100 Continue`).
    ClientGone,
    /// Reading it failed: the client is answered.
    Failed(CopyError),
}

/// What every attempt of a request reads.
struct Outgoing<'a> {
    access: Option<&'a Access>,
    rule: &'a Rule,
    reply: Reply,
    /// What [`pin::repick`] reads; its method, what [`Retry`] does.
    head: pin::Head<'a>,
    upgrade: bool,
    /// The body is whole in the request bytes (or there is none): the
    /// request can be written again.
    kept: bool,
}

/// How a request's attempts ended.
enum Ended {
    /// A response went back (or failed to): the connection's next step.
    Responded(Step),
    /// The gateway answers (and closes when `true`).
    Own(Answer, bool),
}

/// Turns the status line at the start of `out` into an HTTP/1.0 one.
fn http10(out: &mut [u8]) {
    if let Some(version) = out.get_mut(..8)
        && version == b"HTTP/1.1"
    {
        version.copy_from_slice(b"HTTP/1.0");
    }
}

/// Writes `bytes`, counting in `written` what went out.
async fn write_counted<W: AsyncWrite + Unpin>(
    io: &mut W,
    bytes: &[u8],
    written: &mut usize,
) -> std::io::Result<()> {
    // Bounded: every turn writes at least one byte or fails.
    while *written < bytes.len() {
        match io.write(&bytes[*written..]).await? {
            0 => return Err(std::io::ErrorKind::WriteZero.into()),
            n => *written += n,
        }
    }
    io.flush().await
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

/// Whether hyper serves this request (and the rest of the connection):
/// gRPC; HTTP/1.0 (hyper writes a chunked response to such a client as
/// one delimited by close; this path never re-encodes); CONNECT (a 2xx to
/// it has no body whatever its framing headers say, and the connection
/// then is a tunnel or nothing: hyper's rules).
fn handed_over(req: &http::Request<()>) -> bool {
    crate::route::grpc::is_grpc(req)
        || req.version() != Version::HTTP_11
        || req.method() == Method::CONNECT
}

/// The answer to a request whose body could not be read (logged).
fn body_failed(access: Option<&Access>, rule: &Rule, outcome: Outcome, e: CopyError) -> Answer {
    let (answer, why) = match e {
        CopyError::Read(why) if why == "timed out" => (own::SLOW_BODY, why),
        CopyError::Read(why) => (own::BAD_BODY, why),
        CopyError::Write(e) => (own::BAD_BODY, e.to_string()),
    };
    let line = Line {
        rule: Some(rule),
        outcome: Some(outcome),
        endpoint: None,
    };
    let detail = format!("client body: {why}");
    own::logged(access, line, answer, Some(&detail))
}

/// After a failure [`Retry`] moves on from: another backend in `choice`,
/// or the answer when there is none, or when the session's backend
/// failed and sessions are strict.
fn other_backend(
    o: &Outgoing<'_>,
    choice: &mut Choice,
    rest: Option<&Remaining>,
    retry: &Retry,
) -> Result<(), Ended> {
    if o.rule.strict && choice.resumed() {
        let why = Some("the session's backend failed (strict sessions)");
        let outcome = Some(Outcome::PinnedUnavailable);
        let endpoint = Some(&choice.endpoint);
        let own = forward::unavailable_answer(o.access, o.rule, outcome, endpoint, why);
        return Err(Ended::Own(own, rest.is_some()));
    }
    match pin::repick(o.rule, &o.head, retry.tried()) {
        Some(next) => {
            *choice = next;
            Ok(())
        }
        None => {
            let failure = Failure::BadResponse("no other backend to retry on".into());
            Err(failed(o, choice, rest, failure))
        }
    }
}

/// The gateway's answer when the attempts end without a response.
fn failed(o: &Outgoing<'_>, choice: &Choice, rest: Option<&Remaining>, failure: Failure) -> Ended {
    let line = Line {
        rule: Some(o.rule),
        outcome: Some(choice.outcome),
        endpoint: Some(&choice.endpoint),
    };
    // A body not read to its end leaves the connection out of step.
    let close = rest.is_some_and(|r| !r.done()) || matches!(failure, Failure::ClientBody(_));
    let (answer, detail) = forward::answer_for(failure, o.head.method, o.kept);
    Ended::Own(own::logged(o.access, line, answer, Some(&detail)), close)
}

/// Writes the request bytes of an attempt to `io` before `deadline`;
/// `sent` once any byte went out (it may have been acted on).
async fn write_request<W: AsyncWrite + Unpin>(
    io: &mut W,
    request: &[u8],
    addr: &str,
    reused: bool,
    deadline: Instant,
    sent: &mut bool,
) -> Result<(), Failure> {
    let mut written = 0;
    let wrote = coarse::timeout_at(deadline, write_counted(io, request, &mut written));
    match wrote.await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(e)) => {
            let detail = format!("{addr}: {e}");
            if written > 0 {
                *sent = true;
                return Err(Failure::AfterWrite { reused, detail });
            }
            Err(Failure::NotWritten { reused, detail })
        }
        Ok(Ok(())) => {
            *sent = true;
            Ok(())
        }
    }
}

/// The response head to attempt `a` from `io` before `deadline` (1xx
/// skipped, as hyper's client does), and what was read past it.
async fn read_response<U: AsyncRead + Unpin>(
    io: &mut U,
    a: &Attempt<'_>,
    limits: &head::Limits,
    addr: &str,
    reused: bool,
    deadline: Instant,
) -> Result<(ResponseHead, Option<Buf>), Failure> {
    let limits = head::Limits {
        max_head_bytes: limits.max_head_bytes.max(RESPONSE_HEAD_BYTES),
        max_headers: limits.max_headers.max(RESPONSE_HEADERS),
    };
    let mut ubuf: Option<Buf> = None;
    let mut any = false;
    // Bounded: every turn reads more of a head bounded by the limits
    // (1xx heads are skipped, each read before the deadline).
    loop {
        if let Some(b) = &mut ubuf {
            match head::parse_response(b.bytes(), a.method, &limits) {
                Ok(h)
                    if h.parts.status.is_informational()
                        && h.parts.status != StatusCode::SWITCHING_PROTOCOLS =>
                {
                    // 1xx: skipped, as hyper's client does.
                    b.consume(h.len);
                    bufs::release(&mut ubuf);
                    continue;
                }
                Ok(h) if h.parts.status == StatusCode::SWITCHING_PROTOCOLS && !a.upgrade => {
                    let detail = format!("{addr}: 101 to a request without Upgrade");
                    return Err(Failure::BadResponse(detail));
                }
                Ok(h) => return Ok((h, ubuf)),
                Err(HeadError::Partial) if b.len() < limits.max_head_bytes => {}
                Err(e) => return Err(Failure::BadResponse(format!("{addr}: {e}"))),
            }
        }
        let read = bufs::read(io, &mut ubuf, limits.max_head_bytes);
        match coarse::timeout_at(deadline, read).await {
            Err(_) => return Err(Failure::Timeout),
            Ok(Ok(n)) if n > 0 => any = true,
            Ok(got) => {
                let why = match got {
                    Err(e) => e.to_string(),
                    Ok(_) => "connection closed".to_owned(),
                };
                let detail = format!("{addr}: {why}");
                if any {
                    return Err(Failure::BadResponse(detail));
                }
                return Err(Failure::AfterWrite { reused, detail });
            }
        }
    }
}

/// Encodes the client's response head into `out`: the framing this path
/// keeps, `Connection` by `reply` and `close`, and the backend's version.
fn client_response_head(
    out: &mut Vec<u8>,
    parts: &mut http::response::Parts,
    framing: Framing,
    reply: Reply,
    close: bool,
) {
    if framing == Framing::Chunked {
        // Dropped as hop-by-hop: the body goes as it came.
        parts
            .headers
            .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
    }
    reply.connection(&mut parts.headers, close);
    encode_with_reason(out, parts);
    if parts.version == Version::HTTP_10 {
        // hyper's server answers in the backend's version.
        http10(out);
    }
}

/// Encodes a response head with the backend's reason phrase.
fn encode_with_reason(out: &mut Vec<u8>, parts: &http::response::Parts) {
    let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
    let reason = reason.map(hyper::ext::ReasonPhrase::as_bytes);
    encode::response_head_with_reason(out, parts.status, reason, &parts.headers);
}
