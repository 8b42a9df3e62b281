//! One attempt of a request on the lean path: an upstream socket (kept or
//! fresh), the request and the rest of a streamed body written to it, and
//! the response head read back.

use super::body::{self, CopyError, Remaining};
use super::bufs::{self, Buf};
use super::conn::{CONTINUE, Conn};
use super::head::{self, HeadError, ResponseHead};
use super::upstream::{Connector, Up};
use crate::config::rules::Upstream;
use crate::forward;
use crate::forward::attempt::Failure;
use crate::listen::coarse;
use http::{Method, StatusCode};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tower_sticky::balance::Endpoint;

impl<C, K> Conn<'_, C, K>
where
    C: AsyncRead + AsyncWrite + Unpin,
    K: Connector,
{
    /// One attempt: the request (and the rest of a streamed body) goes
    /// out over a kept socket or a fresh one, and the response head comes
    /// back, with the socket and what was read past the head.
    pub(super) async fn attempt(
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
}

/// The largest backend response head and most fields read (hyper's
/// client reads up to ~400 KiB; the gateway's request limits apply when
/// larger).
const RESPONSE_HEAD_BYTES: usize = 64 * 1024;

const RESPONSE_HEADERS: usize = 100;

/// One attempt's request.
pub(super) struct Attempt<'a> {
    pub(super) endpoint: &'a Endpoint<Upstream>,
    pub(super) method: &'a Method,
    /// The head, and the body or what was buffered of it.
    pub(super) request: &'a [u8],
    pub(super) upgrade: bool,
    pub(super) fresh: bool,
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
                    if h.status.is_informational()
                        && h.status != StatusCode::SWITCHING_PROTOCOLS =>
                {
                    // 1xx: skipped, as hyper's client does.
                    b.consume(h.len);
                    bufs::release(&mut ubuf);
                    continue;
                }
                Ok(h) if h.status == StatusCode::SWITCHING_PROTOCOLS && !a.upgrade => {
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
