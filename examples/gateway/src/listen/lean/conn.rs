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
use std::time::Duration;
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

    /// One request and its response.
    async fn exchange(&mut self, head: RequestHead) -> Step {
        let RequestHead {
            parts,
            framing,
            keep_alive,
            mut expect_continue,
            len,
        } = head;
        let mut req = http::Request::from_parts(parts, ());
        // gRPC; HTTP/1.0 (hyper writes a chunked response to such a client
        // as one delimited by close; this path never re-encodes); CONNECT
        // (a 2xx to it has no body whatever its framing headers say, and
        // the connection then is a tunnel or nothing: hyper's rules).
        if crate::route::grpc::is_grpc(&req)
            || req.version() != Version::HTTP_11
            || req.method() == Method::CONNECT
        {
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
        let forward::Decided { rule, mut choice } =
            match forward::decide(&compiled, access, &mut req) {
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
        let (parts, ()) = req.into_parts();
        let (method, uri, mut headers) = (parts.method, parts.uri, parts.headers);
        let has_host = crate::answer::headers::prepare_request(
            &mut headers,
            &uri,
            &self.client.ip,
            upgrade.as_ref(),
            self.client.origin,
            version,
        );
        if !has_host {
            // RFC 9112 §3.2: no authority, an empty Host (as the hyper path).
            headers.insert(HOST, HeaderValue::from_static(""));
        }
        if framing == Framing::Chunked {
            // Dropped as hop-by-hop: the body goes as it came.
            headers.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        }
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut out = bufs::take_out();
        encode::request_head(&mut out, &method, target, &headers);
        let head_len = out.len();

        // The body: read whole when the request may be retried, else
        // streamed after the head (what is buffered goes with it).
        let mut rest = Remaining::of(framing);
        let mut kept = true;
        if let Some(r) = rest.as_mut() {
            let bound = if tower_sticky::failover::is_idempotent(&method) {
                self.proxy.options().retry_buffer
            } else {
                0
            };
            let fits = match r {
                Remaining::Length(n) => *n <= bound as u64,
                _ => bound > 0,
            };
            let read = if fits {
                if expect_continue {
                    expect_continue = false;
                    if self.write_client(CONTINUE).await.is_err() {
                        return self.finish(out, Step::Close);
                    }
                }
                let deadline = coarse::now() + forward::BODY_TIMEOUT;
                let (io, cbuf) = (&mut self.io, &mut self.cbuf);
                body::read_whole(io, cbuf, &mut out, head_len, r, bound, deadline).await
            } else {
                r.move_buffered(&mut self.cbuf, &mut out)
                    .map(|()| false)
                    .map_err(|e| CopyError::Read(e.to_string()))
            };
            match read {
                Ok(true) => rest = None,
                Ok(false) => kept = false,
                Err(e) => {
                    let (answer, why) = match e {
                        CopyError::Read(why) if why == "timed out" => (own::SLOW_BODY, why),
                        CopyError::Read(why) => (own::BAD_BODY, why),
                        CopyError::Write(e) => (own::BAD_BODY, e.to_string()),
                    };
                    let line = Line {
                        rule: Some(rule),
                        outcome: Some(choice.outcome),
                        endpoint: None,
                    };
                    let detail = format!("client body: {why}");
                    let own = own::logged(access, line, answer, Some(&detail));
                    bufs::give_out(out);
                    return self.write_own(own, reply, true).await;
                }
            }
        }

        // Attempts, until one gets a response head or `Retry` says stop.
        let is_upgrade = upgrade.is_some();
        let mut retry = Retry::new(&method);
        let mut fresh = false;
        let mut sent = false;
        let failure = loop {
            if !kept && sent {
                break Failure::BadResponse("request body already sent".into());
            }
            let endpoint = std::sync::Arc::clone(&choice.endpoint);
            let attempt = Attempt {
                endpoint: &endpoint,
                method: &method,
                request: &out,
                upgrade: is_upgrade,
                fresh,
            };
            let failure = match self
                .attempt(attempt, &mut rest, &mut sent, &mut expect_continue)
                .await
            {
                Ok((response, up, ubuf)) => {
                    health::succeeded(self.proxy.passive(), &endpoint);
                    let answered = Answered {
                        access,
                        rule,
                        response,
                        up,
                        ubuf,
                        upgrade: is_upgrade,
                    };
                    let step = self.respond(answered, &mut choice, reply, &mut out).await;
                    return self.finish(out, step);
                }
                Err(f) => f,
            };
            forward::log_failure(rule, &endpoint, &failure);
            let (next, blame) = retry.after_failure(endpoint.id(), failure, kept || !sent);
            health::failed(self.proxy.passive(), rule, &endpoint, blame);
            fresh = false;
            match next {
                Next::SameFresh => fresh = true,
                Next::Stop(failure) => break failure,
                Next::Other => {
                    if rule.strict && choice.resumed() {
                        let why = Some("the session's backend failed (strict sessions)");
                        let outcome = Some(Outcome::PinnedUnavailable);
                        let own = forward::unavailable_answer(
                            access,
                            rule,
                            outcome,
                            Some(&choice.endpoint),
                            why,
                        );
                        let close = rest.is_some();
                        bufs::give_out(out);
                        return self.write_own(own, reply, close).await;
                    }
                    let head = pin::Head {
                        method: &method,
                        uri: &uri,
                        headers: &headers,
                    };
                    match pin::repick(rule, &head, retry.tried()) {
                        Some(next) => choice = next,
                        None => break Failure::BadResponse("no other backend to retry on".into()),
                    }
                }
            }
        };
        let line = Line {
            rule: Some(rule),
            outcome: Some(choice.outcome),
            endpoint: Some(&choice.endpoint),
        };
        // A body not read to its end leaves the connection out of step.
        let close =
            rest.as_ref().is_some_and(|r| !r.done()) || matches!(failure, Failure::ClientBody(_));
        let (answer, detail) = forward::answer_for(failure, &method, kept);
        let own = own::logged(access, line, answer, Some(&detail));
        bufs::give_out(out);
        self.write_own(own, reply, close).await
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
        let mut kept = None;
        if !a.fresh
            && !a.upgrade
            && let Some(i) = self.ups.iter().position(|u| &*u.addr == addr)
        {
            let mut up = self.ups.swap_remove(i);
            // A socket with a stray byte waiting, or closed, is dropped.
            if up.reusable() {
                kept = Some(up);
            }
        }
        let (mut up, reused) = match kept {
            Some(up) => (up, true),
            None => {
                // Boxed: opening a socket is rare next to reusing one, and
                // these futures would widen every connection's task.
                let options = self.proxy.options();
                let place = Box::pin(crate::forward::upstream::lean_place(addr, options));
                let Some(place) = place.await else {
                    return Err(Failure::Saturated);
                };
                match Box::pin(self.connector.connect(addr)).await {
                    Ok(io) => (Up::new(addr.into(), io, place), false),
                    Err(e) => return Err(Failure::Refused(format!("connect to {addr}: {e}"))),
                }
            }
        };
        let deadline = coarse::now() + forward::RESPONSE_TIMEOUT;
        let mut written = 0;
        let wrote =
            coarse::timeout_at(deadline, write_counted(&mut up.io, a.request, &mut written));
        match wrote.await {
            Err(_) => return Err(Failure::Timeout),
            Ok(Err(e)) => {
                let detail = format!("{addr}: {e}");
                if written > 0 {
                    *sent = true;
                    return Err(Failure::AfterWrite { reused, detail });
                }
                return Err(Failure::NotWritten { reused, detail });
            }
            Ok(Ok(())) => *sent = true,
        }
        if let Some(r) = rest.as_mut() {
            if *expect_continue {
                *expect_continue = false;
                if let Err(e) = self.write_client(CONTINUE).await {
                    return Err(Failure::ClientBody(format!("client: {e}")));
                }
            }
            let (io, cbuf) = (&mut self.io, &mut self.cbuf);
            match body::copy(io, cbuf, &mut up.io, r, Some(deadline)).await {
                Ok(()) => *rest = None,
                Err(CopyError::Read(why)) => {
                    return Err(Failure::ClientBody(format!("client body: {why}")));
                }
                Err(CopyError::Write(e)) => {
                    let detail = format!("{addr}: {e}");
                    return Err(Failure::AfterWrite { reused, detail });
                }
            }
        }
        let limits = head::Limits {
            max_head_bytes: self.limits.max_head_bytes.max(RESPONSE_HEAD_BYTES),
            max_headers: self.limits.max_headers.max(RESPONSE_HEADERS),
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
                    Ok(h) => return Ok((h, up, ubuf)),
                    Err(HeadError::Partial) if b.len() < limits.max_head_bytes => {}
                    Err(e) => return Err(Failure::BadResponse(format!("{addr}: {e}"))),
                }
            }
            let read = bufs::read(&mut up.io, &mut ubuf, limits.max_head_bytes);
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
            let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
            let reason = reason.map(hyper::ext::ReasonPhrase::as_bytes);
            encode::response_head_with_reason(out, parts.status, reason, &parts.headers);
            // Boxed: rare, and its future would widen every task.
            return Box::pin(self.tunnel(up, ubuf, choice, out)).await;
        }
        if framing == Framing::Chunked {
            // Dropped as hop-by-hop: the body goes as it came.
            parts
                .headers
                .insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        }
        let mut rest = Remaining::of(framing);
        let until_close = matches!(rest, Some(Remaining::UntilClose));
        let close = until_close || reply.closes(self.drain);
        reply.connection(&mut parts.headers, close);
        let reason = parts.extensions.get::<hyper::ext::ReasonPhrase>();
        let reason = reason.map(hyper::ext::ReasonPhrase::as_bytes);
        encode::response_head_with_reason(out, parts.status, reason, &parts.headers);
        if parts.version == Version::HTTP_10 {
            // hyper's server answers in the backend's version.
            http10(out);
        }
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
        let stray = ubuf.as_ref().is_some_and(|b| !b.is_empty());
        if let Some(mut b) = ubuf.take() {
            b.consume(b.len());
            bufs::settle(&mut ubuf, b);
        }
        let reuse = self.proxy.options().reuse;
        if backend_keeps && !until_close && !stray && !upgrade && reuse != crate::cli::Reuse::Never
        {
            self.ups.retain(|u| u.addr != up.addr);
            self.ups.push(up);
        }
        if close { Step::Close } else { Step::Next }
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
