//! A backend's response on the lean path: its head edited as on the hyper
//! path and written back, its body copied by framing, the upstream socket
//! kept for the next request; or, after a 101, the two sockets spliced.

use super::body::{self, Remaining};
use super::bufs::{self, Buf};
use super::conn::{Conn, Reply, Step};
use super::encode;
use super::head::{Framing, ResponseHead};
use super::upstream::{Connector, Up};
use crate::answer::own::Access;
use crate::config::rules::Rule;
use crate::forward;
use crate::pin::Choice;
use http::header::TRANSFER_ENCODING;
use http::{HeaderValue, StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

impl<C, K> Conn<'_, C, K>
where
    C: AsyncRead + AsyncWrite + Unpin,
    K: Connector,
{
    /// Writes the backend's response back (the hyper path's edits), its
    /// body by framing; keeps the upstream socket when it can take another
    /// request; splices the two for a 101 that completes an upgrade.
    pub(super) async fn respond(
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

/// A response head and where it came from.
pub(super) struct Answered<'a, U> {
    pub(super) access: Option<&'a Access>,
    pub(super) rule: &'a Rule,
    pub(super) response: ResponseHead,
    pub(super) up: Up<U>,
    pub(super) ubuf: Option<Buf>,
    pub(super) upgrade: bool,
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
    if parts.status.is_informational() || parts.status == http::StatusCode::NO_CONTENT {
        // RFC 9110 §8.6: never on a 1xx or 204 (it has no body; a client
        // that honoured one would read the next response as its body).
        // hyper's server drops it too.
        parts.headers.remove(http::header::CONTENT_LENGTH);
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

/// Turns the status line at the start of `out` into an HTTP/1.0 one.
fn http10(out: &mut [u8]) {
    if let Some(version) = out.get_mut(..8)
        && version == b"HTTP/1.1"
    {
        version.copy_from_slice(b"HTTP/1.0");
    }
}
