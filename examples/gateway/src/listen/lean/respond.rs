//! A backend's response on the lean path: its head edited as on the hyper
//! path and written back, its body copied by framing, the upstream socket
//! kept for the next request; or, after a 101, the two sockets spliced.

use super::body::{self, Remaining};
use super::bufs::{self, Buf};
use super::conn::{Conn, Reply, Step};
use super::encode;
use super::head::{self, Framing, ResponseHead};
use super::upstream::{Connector, Up};
use crate::answer::headers;
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
        let switching = upgrade && response.status == StatusCode::SWITCHING_PROTOCOLS;
        let framing = response.framing;
        let until_close = framing == Framing::UntilClose;
        let close = until_close || reply.closes(self.drain);
        out.clear();
        // The head's bytes are still at the start of the upstream buffer.
        let head = ubuf.as_ref().map_or(&[][..], Buf::bytes);
        let plain = choice
            .decision
            .as_ref()
            .is_none_or(|d| d.session_header().is_none());
        if plain && !switching {
            // The common case (a resumed session): nothing to write back,
            // so the head goes back from the bytes it came in.
            forward::count_response(access, rule, choice, response.status);
            choice.decision = None;
            plain_head(out, head, &response, rule, reply, close);
        } else {
            let mut parts = response.parts(head);
            forward::edit_response(access, rule, choice, &mut parts, switching);
            if switching {
                encode_with_reason(out, &parts);
            } else {
                client_response_head(out, &mut parts, framing, reply, close);
            }
        }
        if let Some(b) = &mut ubuf {
            b.consume(response.len);
        }
        bufs::release(&mut ubuf);
        let backend_keeps = response.keep_alive;
        drop(response);
        if switching {
            // Boxed: rare, and its future would widen every task.
            return Box::pin(self.tunnel(up, ubuf, choice, out)).await;
        }
        let mut rest = Remaining::of(framing);
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

/// Encodes the client's response head into `out` from the backend's
/// bytes (`bytes`, parsed as `r`), for a response with no session value to
/// write back: the same edits as [`forward::edit_response`] and
/// [`client_response_head`] make on a `HeaderMap` (hop-by-hop fields out,
/// with those `Connection` names; the backend's own session value out; no
/// `Content-Length` on a 1xx or 204; the framing and `Connection` this path
/// writes), names lower-cased as hyper writes them, fields in the order
/// they came.
fn plain_head(
    out: &mut Vec<u8>,
    bytes: &[u8],
    r: &ResponseHead,
    rule: &Rule,
    reply: Reply,
    close: bool,
) {
    let at = |range: &std::ops::Range<usize>| bytes.get(range.clone()).unwrap_or_default();
    encode::status_line(out, r.status, r.reason.as_ref().map(at));
    let named = head::connection_named(bytes, &r.fields);
    let bodiless = r.status.is_informational() || r.status == StatusCode::NO_CONTENT;
    let policy = rule.target.policy();
    let mut buf = [0u8; encode::STACK_NAME];
    for f in &r.fields {
        let (name, value) = (at(&f.name), at(&f.value));
        // Longer than any name checked by its lower-case spelling.
        let lower = encode::lower_case(name, &mut buf).unwrap_or(b"");
        let dropped = headers::is_hop_by_hop_lower(lower)
            || named.iter().any(|n| n.eq_ignore_ascii_case(name))
            || (bodiless && lower == b"content-length")
            || policy.is_some_and(|p| headers::sets_session(p, name, value));
        if dropped {
            continue;
        }
        if lower.is_empty() {
            encode::field_lower_case(out, name, value);
        } else {
            encode::field(out, lower, value);
        }
    }
    if r.framing == Framing::Chunked {
        // Dropped as hop-by-hop: the body goes as it came.
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    } else if reply.version == Version::HTTP_10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if r.version == Version::HTTP_10 {
        // hyper's server answers in the backend's version.
        http10(out);
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
