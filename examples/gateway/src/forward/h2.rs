//! The upstream cleartext HTTP/2 (h2c) connections of one worker thread:
//! gRPC's transport, and what `h2c://` endpoints get.
//!
//! One connection carries many requests at once (HTTP/2 streams), so a
//! connection is not checked out and in as an HTTP/1.1 one is: a request
//! takes a handle to it ([`SendRequest`] is a cheap clone) and the
//! connection stays in the pool meanwhile. `--http-reuse` decides who may
//! take it, exactly as for HTTP/1.1 ([`super::upstream`]):
//!
//! * `safe`: a connection serves only the client connection that opened
//!   it: its streams multiplex that client's concurrent requests (a gRPC
//!   channel's calls), and nobody else's. What is shared is the worker's
//!   per-endpoint cap and nothing more; the connection closes when its
//!   client connection ends.
//! * `always`: one connection per endpoint and worker carries every
//!   client's requests (the aggressive mode: a backend that confused two
//!   streams would confuse two clients).
//! * `never`: every request opens a connection, which closes after it.
//!
//! Each connection holds one place of its endpoint's
//! `--max-upstream-connections` (the same cap HTTP/1.1 connections count
//! against), given back when it ends; at the cap a request takes another
//! client's least recently used connection out of the pool (it closes once
//! its streams are done: closing never lends it) and waits up to
//! `--upstream-queue-timeout` for the place. Concurrent streams per connection are
//! bounded by the backend's `SETTINGS_MAX_CONCURRENT_STREAMS` (hyper
//! queues a request until a stream is free).
//!
//! A stream the backend refused (`REFUSED_STREAM`, RFC 9113 §8.7) was not
//! processed: it is [`Failure::StreamRefused`], which may go again
//! whatever the method. Everything else follows the HTTP/1.1 rules: a
//! request hyper hands back was not written; one that went out may have
//! been acted on.

use super::attempt::{Failed, Failure};
use super::upstream::{CONNECT_TIMEOUT, Owner, OwnerId, UPSTREAM_IDLE_MAX};
use super::{Options, UpstreamBody, error_chain};
use crate::cli::Reuse;
use http::header::{CONTENT_TYPE, HOST, TE};
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, Uri, Version};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::{Notify, OwnedSemaphorePermit};

thread_local! {
    /// This worker's h2c connections to each backend address.
    static POOL: RefCell<HashMap<String, Conns, foldhash::fast::FixedState>> =
        const { RefCell::new(HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0))) };
}

/// This worker's h2c connections to one address, and those being opened.
#[derive(Default)]
struct Conns {
    open: Vec<H2conn>,
    /// Who is opening one now, and the signal it gives when done: the
    /// owner's other requests wait for it instead of each opening its own
    /// (ten concurrent calls of a client would open ten connections).
    opening: Vec<(OwnerId, Arc<Notify>)>,
}

/// One h2c connection to a backend.
struct H2conn {
    sender: SendRequest<UpstreamBody>,
    /// Who may send on it.
    owner: OwnerId,
    /// When a request last took it: idle ones close after
    /// [`UPSTREAM_IDLE_MAX`].
    used: Instant,
}

/// The connections to `addr`, made on first use (no key allocated after).
fn conns_of<'a>(
    pool: &'a mut HashMap<String, Conns, foldhash::fast::FixedState>,
    addr: &str,
) -> &'a mut Conns {
    if !pool.contains_key(addr) {
        pool.insert(addr.to_owned(), Conns::default());
    }
    pool.get_mut(addr).expect("inserted above")
}

/// What [`checkout`] found for an owner.
enum Found {
    /// A handle to an open connection.
    Open(SendRequest<UpstreamBody>),
    /// One is being opened: wait for this, then look again.
    Opening(tokio::sync::futures::OwnedNotified),
    /// None: the caller opens one, and tells the others with this guard.
    Nothing(Opening),
}

/// A handle to a pooled connection to `addr` that `owner` may use, or the
/// signal of the one being opened for it, or the duty to open one.
fn checkout(addr: &str, owner: OwnerId) -> Found {
    POOL.with_borrow_mut(|pool| {
        let conns = conns_of(pool, addr);
        conns.open.retain(|c| !c.sender.is_closed());
        if let Some(conn) = conns.open.iter_mut().find(|c| c.owner == owner) {
            conn.used = crate::listen::coarse::now();
            return Found::Open(conn.sender.clone());
        }
        if let Some((_, done)) = conns.opening.iter().find(|(o, _)| *o == owner) {
            // Registered now, before any await: no wake-up is missed.
            return Found::Opening(Arc::clone(done).notified_owned());
        }
        let done = Arc::new(Notify::new());
        conns.opening.push((owner, Arc::clone(&done)));
        Found::Nothing(Opening {
            addr: addr.to_owned(),
            owner,
            done,
        })
    })
}

/// The duty to open a connection for an owner: when dropped (opened,
/// failed or cancelled), the owner's waiting requests look again.
struct Opening {
    addr: String,
    owner: OwnerId,
    done: Arc<Notify>,
}

impl Drop for Opening {
    fn drop(&mut self) {
        let _ = POOL.try_with(|pool| {
            if let Some(conns) = pool.borrow_mut().get_mut(&self.addr) {
                conns
                    .opening
                    .retain(|(o, d)| !(*o == self.owner && Arc::ptr_eq(d, &self.done)));
            }
        });
        self.done.notify_waiters();
    }
}

/// A connection for one request: a pooled one `owner` may use, the one
/// being opened for it, or a new one (always new when not `pooled`).
/// `Ok((sender, reused))`.
async fn acquire(
    addr: &str,
    owner: &Owner,
    options: &Options,
    pooled: bool,
) -> Result<(SendRequest<UpstreamBody>, bool), Failure> {
    if !pooled {
        let pool = owner.reuse() != Reuse::Never;
        return Ok((open(addr, owner, options, pool).await?, false));
    }
    // Bounded: at most 3 waits for another request's opening, then open.
    for _ in 0..3 {
        match checkout(addr, owner.id()) {
            Found::Open(sender) => return Ok((sender, true)),
            Found::Nothing(opening) => {
                let sender = open(addr, owner, options, true).await?;
                drop(opening);
                return Ok((sender, false));
            }
            Found::Opening(done) => {
                let limit = CONNECT_TIMEOUT + options.queue_timeout;
                let _ = tokio::time::timeout(limit, done).await;
            }
        }
    }
    Ok((open(addr, owner, options, true).await?, false))
}

/// Closes the connections of a client connection that ended (their
/// streams in flight finish first: hyper closes a connection once no
/// handle and no stream is left).
pub(super) fn forget(owner: OwnerId) {
    let gone: Vec<H2conn> = POOL
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let mut gone = Vec::new();
            for conns in pool.values_mut() {
                let conns = &mut conns.open;
                let mut i = 0;
                // Bounded by the list's length.
                while i < conns.len() {
                    if conns[i].owner == owner {
                        gone.push(conns.swap_remove(i));
                    } else {
                        i += 1;
                    }
                }
            }
            gone
        })
        .unwrap_or_default();
    drop(gone);
}

/// Drops the handles of connections no request took for
/// [`UPSTREAM_IDLE_MAX`] (called by the worker's purge tick).
pub(super) fn purge(now: Instant) {
    let gone: Vec<H2conn> = POOL.with_borrow_mut(|pool| {
        let mut gone = Vec::new();
        for conns in pool.values_mut() {
            let conns = &mut conns.open;
            let mut i = 0;
            // Bounded by the list's length.
            while i < conns.len() {
                let idle = now.saturating_duration_since(conns[i].used) > UPSTREAM_IDLE_MAX;
                if idle || conns[i].sender.is_closed() {
                    gone.push(conns.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        gone
    });
    drop(gone);
}

/// At the cap: takes another owner's least recently used connection to
/// `addr` out of the pool, to make room. Its streams in flight finish (the
/// connection closes after them and gives its place back); it is closed,
/// never lent.
fn evict_one(addr: &str, owner: OwnerId) {
    let evicted = POOL.with_borrow_mut(|pool| {
        let open = &mut pool.get_mut(addr)?.open;
        let (i, _) = open
            .iter()
            .enumerate()
            .filter(|(_, c)| c.owner != owner)
            .min_by_key(|(_, c)| c.used)?;
        Some(open.swap_remove(i))
    });
    drop(evicted);
}

/// Sends `req` to the h2c endpoint `addr` over a connection `owner` may
/// use (a new one when `fresh`, or under `never`).
pub(super) async fn send(
    addr: &str,
    req: Request<UpstreamBody>,
    owner: &Owner,
    options: &Options,
    fresh: bool,
) -> Result<Response<Incoming>, Failed> {
    let req = for_h2(req, addr);
    let pooled = !fresh && owner.reuse() != Reuse::Never;
    let (mut sender, reused) = match acquire(addr, owner, options, pooled).await {
        Ok(got) => got,
        Err(failure) => {
            return Err(Failed {
                failure,
                unsent: Some(req),
            });
        }
    };
    let watch = match req.body() {
        Either::Right(s) => Some(Arc::clone(&s.watch)),
        Either::Left(_) => None,
    };
    let deadline = crate::listen::coarse::now() + super::RESPONSE_TIMEOUT;
    match crate::listen::coarse::timeout_at(deadline, sender.try_send_request(req)).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(mut e)) => {
            let unsent = e.take_message();
            let error = e.into_error();
            let detail = format!("{addr}: {}", error_chain(&error));
            if watch.is_some_and(|w| w.client_error.load(Ordering::Relaxed)) {
                return Err(Failure::ClientBody(format!("client body: {detail}")).into());
            }
            let failure = if unsent.is_some() {
                Failure::NotWritten { reused, detail }
            } else if refused_stream(&error) {
                Failure::StreamRefused(detail)
            } else {
                Failure::AfterWrite { reused, detail }
            };
            Err(Failed { failure, unsent })
        }
        Err(_) => Err(Failure::Timeout.into()),
    }
}

/// Whether the backend reset the stream with `REFUSED_STREAM`: it did not
/// process it (RFC 9113 §8.7).
fn refused_stream(error: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    // Bounded: error chains are short; stop at 8 links regardless.
    for _ in 0..8 {
        let Some(e) = source else { return false };
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.reason() == Some(h2::Reason::REFUSED_STREAM);
        }
        source = e.source();
    }
    false
}

/// The HTTP/1.1-shaped request of an attempt made an HTTP/2 one: the
/// client's `Host` becomes `:authority` (RFC 9113 §8.3.1; the backend's
/// address when the client sent none), `:scheme` is `http`, and a gRPC
/// call keeps `te: trailers`, which gRPC servers may require (the one `TE`
/// value HTTP/2 allows; the hop-by-hop strip took it away).
fn for_h2(mut req: Request<UpstreamBody>, addr: &str) -> Request<UpstreamBody> {
    let host = req.headers_mut().remove(HOST);
    let authority = host
        .as_ref()
        .and_then(|h| Authority::try_from(h.as_bytes()).ok())
        .or_else(|| Authority::try_from(addr).ok());
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_2;
    let grpc = req
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        req.headers_mut()
            .insert(TE, HeaderValue::from_static("trailers"));
    }
    req
}

/// A new connection to `addr` within `--max-upstream-connections`, its
/// task spawned on this worker, pooled for `owner` when `pool` (always but
/// under `never`: a fresh attempt's connection replaces the one that
/// failed).
async fn open(
    addr: &str,
    owner: &Owner,
    options: &Options,
    pool: bool,
) -> Result<SendRequest<UpstreamBody>, Failure> {
    let evict = || evict_one(addr, owner.id());
    let place = super::upstream::place(addr, options, evict)
        .await
        .ok_or(Failure::Saturated)?;
    let sender = Box::pin(connect(addr, place))
        .await
        .map_err(Failure::Refused)?;
    if pool {
        let conn = H2conn {
            sender: sender.clone(),
            owner: owner.id(),
            used: crate::listen::coarse::now(),
        };
        POOL.with_borrow_mut(|pool| conns_of(pool, addr).open.push(conn));
    }
    Ok(sender)
}

/// TCP (`TCP_NODELAY`) and the HTTP/2 handshake (prior knowledge); the
/// connection's task holds `place` until it ends. The error is for the log.
async fn connect(
    addr: &str,
    place: OwnedSemaphorePermit,
) -> Result<SendRequest<UpstreamBody>, String> {
    let connecting = tokio::net::TcpStream::connect(addr);
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect to {addr}: {e}")),
        Err(_) => {
            return Err(format!(
                "connect to {addr}: timed out after {CONNECT_TIMEOUT:?}"
            ));
        }
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("h2c handshake with {addr}: {}", error_chain(&e)))?;
    tokio::spawn(async move {
        // Ends when the backend closes (GOAWAY), or when no handle and no
        // stream is left.
        if let Err(e) = conn.await {
            tracing::debug!("upstream h2c connection: {e}");
        }
        drop(place);
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::for_h2;
    use http::Request;
    use http_body_util::{Either, Full};
    use hyper::body::Bytes;

    fn request(host: Option<&str>, content_type: &str) -> Request<super::UpstreamBody> {
        let mut b = Request::builder()
            .uri("/chat.v1.Chat/Join?x=1")
            .header("content-type", content_type);
        if let Some(h) = host {
            b = b.header("host", h);
        }
        b.body(Either::Left(Full::new(Bytes::new()))).unwrap()
    }

    #[test]
    fn host_becomes_authority_and_grpc_keeps_te_trailers() {
        let req = for_h2(
            request(Some("chat.example:8080"), "application/grpc+proto"),
            "127.0.0.1:9",
        );
        assert_eq!(req.uri(), "http://chat.example:8080/chat.v1.Chat/Join?x=1");
        assert!(req.headers().get("host").is_none());
        assert_eq!(req.headers()["te"], "trailers");
        assert_eq!(req.version(), http::Version::HTTP_2);
    }

    #[test]
    fn no_host_is_the_backend_address_and_plain_requests_get_no_te() {
        let req = for_h2(request(Some(""), "text/plain"), "127.0.0.1:9");
        assert_eq!(req.uri(), "http://127.0.0.1:9/chat.v1.Chat/Join?x=1");
        assert!(req.headers().get("te").is_none());
        let req = for_h2(request(None, "text/plain"), "[::1]:9");
        assert_eq!(req.uri().authority().unwrap().as_str(), "[::1]:9");
    }
}
