//! Step 1 of a request: **accept**. Each worker thread has its own
//! `SO_REUSEPORT` listener and single-threaded runtime; `serve` accepts
//! clients (at most `--max-connections` in all), `conn` tells HTTP/1 from
//! h2c by the first bytes and watches idle HTTP/2 connections and the drain,
//! [`stray_cr`] tolerates the seed's stray CR at the end of a header value
//! (and nowhere else), and hyper parses the request within the head limits
//! (`--max-header-bytes`, `--max-headers`: 431 beyond). Each request then
//! goes to [`Proxy::serve`](crate::forward::Proxy::serve), which
//! [routes](crate::route) it.
//!
//! With `--tls-cert`, [`tls`] terminates TLS first and ALPN chooses HTTP/2
//! or HTTP/1.1; [`extended_connect`] carries WebSocket over HTTP/2 (RFC
//! 8441) to the backend as an HTTP/1.1 upgrade.
//!
//! `coarse` holds the cheap per-worker deadlines that the header-read and
//! upstream response timeouts use (BENCHMARKS-HISTORY.md, section 6).

pub(crate) mod coarse;
pub(crate) mod conn;
pub mod extended_connect;
pub mod stray_cr;
pub mod tls;

use crate::answer::headers;
use crate::{cli, forward};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpListener;

/// How long the drain after SIGINT/SIGTERM may take in all: connections
/// still open then are dropped.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// `threads` listeners on the same address, with `SO_REUSEPORT`, so that the
/// kernel spreads new connections over the workers. With port 0, the first
/// picks the port and the others join it.
///
/// `SO_REUSEPORT` would also let this process join a port that another
/// gateway (same user) already listens on, silently splitting clients
/// between two processes, each with its own keys unless they share
/// `--key-file`: about half the sessions would break at random. So the port
/// is first bound once without it, which fails if anything listens there.
pub(crate) async fn bind_all(listen: &str, threads: usize) -> std::io::Result<Vec<TcpListener>> {
    let mut last = None;
    for addr in tokio::net::lookup_host(listen).await? {
        if addr.port() != 0
            && let Err(e) = std::net::TcpListener::bind(addr)
        {
            last = Some(e);
            continue;
        }
        match bind_reuseport(addr) {
            Ok(first) => {
                let addr = first.local_addr()?;
                let mut all = Vec::with_capacity(threads);
                all.push(first);
                for _ in 1..threads {
                    all.push(bind_reuseport(addr)?);
                }
                return Ok(all);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

fn bind_reuseport(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// How this worker serves a client connection: the HTTP/1 and HTTP/2
/// settings (hyper's builders) and the proxy.
struct Server {
    proxy: Arc<forward::Proxy>,
    /// hyper's settings (HTTP/1, h2c and ALPN h2).
    hyper: Arc<Hyper>,
    reuse: cli::Reuse,
    /// This worker's drain.
    drain: conn::Drain,
    /// TLS and trusted proxies.
    edge: tls::Edge,
}

/// What the requests of one client connection share: the proxy, the
/// client (its address and the upstream connections it owns, closed when
/// this is dropped) and whether it is idle.
struct ClientConn {
    proxy: Arc<forward::Proxy>,
    client: forward::Client,
    activity: conn::Activity,
    drain: conn::Drain,
}

impl Server {
    fn new(proxy: Arc<forward::Proxy>, limits: &cli::Limits, edge: tls::Edge) -> Server {
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            // The header-read timeout is armed for every request: a coarse
            // per-worker deadline instead of a tokio timer entry each time.
            .timer(coarse::CoarseTimer)
            .header_read_timeout(Duration::from_secs(10))
            // Heads beyond these get 431 (hyper's own defaults let one
            // connection buffer ~400 KiB of an unfinished head).
            .max_buf_size(limits.max_header_bytes as usize)
            .max_headers(limits.max_headers)
            // No read from the client while its request is in flight:
            // hyper's EOF probe at that point reserved a fresh 8 KiB read
            // buffer for every request (the old one is still shared with
            // the request's header values). The cost: a client that goes
            // away before the response head is only noticed when the head
            // is written (within RESPONSE_TIMEOUT), and a client that
            // half-closes after its request now gets the response.
            .half_close(true)
            // Small responses: one copied buffer and a plain send is
            // cheaper than a vectored write of head and body.
            .writev(false);
        let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.h2_max_concurrent_streams)
            .max_header_list_size(limits.max_header_bytes)
            .keep_alive_interval(limits.h2_keepalive_interval)
            .keep_alive_timeout(limits.h2_keepalive_interval)
            // WebSocket over HTTP/2 (RFC 8441, `extended_connect`).
            .enable_connect_protocol();
        Server {
            proxy,
            hyper: Arc::new(Hyper {
                http1,
                http2,
                h2_idle: limits.h2_idle_timeout,
            }),
            reuse: limits.reuse,
            drain: conn::Drain::new(),
            edge,
        }
    }

    /// Serves a new client connection on a task of its own (HTTP/1 or h2c,
    /// chosen by its first bytes); `permit` is its place under
    /// `--max-connections`.
    fn accepted(
        &self,
        stream: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let _ = stream.set_nodelay(true);
        // One Arc clone per request for all three.
        let ctx = Arc::new(ClientConn {
            proxy: Arc::clone(&self.proxy),
            client: forward::Client {
                ip: headers::client_ip(peer),
                owner: forward::upstream::Owner::new(self.reuse),
                origin: headers::Origin {
                    tls: self.edge.tls.is_some(),
                    trusted: self.edge.trusted.contains(peer.ip()),
                },
            },
            activity: conn::Activity::new(),
            drain: self.drain.clone(),
        });
        let hyper = Arc::clone(&self.hyper);
        if let Some(certs) = &self.edge.tls {
            let certs = Arc::clone(certs);
            self.drain.spawn(async move {
                // Boxed: the handshake's future would widen the task for
                // the connection's whole life.
                let Some((stream, alpn)) = Box::pin(certs.accept(stream)).await else {
                    return;
                };
                let served = match alpn {
                    tls::Alpn::Http1 => Box::pin(hyper_http1(stream, &ctx, &hyper)).await,
                    tls::Alpn::H2 => Box::pin(hyper_http2(stream, &ctx, &hyper)).await,
                };
                if let Err(e) = served {
                    tracing::debug!(%peer, "TLS connection: {e}");
                }
                drop(permit);
            });
            return;
        }
        self.drain.spawn(async move {
            let served = match conn::sniff(&ctx.drain, &stream).await {
                None => return,
                Some(conn::Proto::Http1) => Box::pin(hyper_http1(stream, &ctx, &hyper)).await,
                Some(conn::Proto::Http2) => Box::pin(hyper_http2(stream, &ctx, &hyper)).await,
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "connection: {e}");
            }
            drop(permit);
        });
    }
}

/// hyper's server settings, shared by a worker's connections.
struct Hyper {
    http1: hyper::server::conn::http1::Builder,
    http2: hyper::server::conn::http2::Builder<TokioExecutor>,
    h2_idle: Duration,
}

/// An HTTP/1 connection served by hyper.
async fn hyper_http1<S>(stream: S, ctx: &Arc<ClientConn>, hyper: &Hyper) -> Result<(), hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stray_cr::StrayCr::new(stream));
    let c = hyper
        .http1
        .serve_connection(io, service(Arc::clone(ctx)))
        .with_upgrades();
    conn::watched(&ctx.drain, c, &ctx.activity, None).await
}

/// An HTTP/2 connection (h2c or ALPN h2), served by hyper.
async fn hyper_http2<S>(stream: S, ctx: &Arc<ClientConn>, hyper: &Hyper) -> Result<(), hyper::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let c = hyper
        .http2
        .serve_connection(TokioIo::new(stream), service(Arc::clone(ctx)));
    conn::watched(&ctx.drain, c, &ctx.activity, Some(hyper.h2_idle)).await
}

/// The hyper service of a client connection.
fn service(
    ctx: Arc<ClientConn>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<forward::ClientBody>,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<http::Response<forward::ClientBody>, std::convert::Infallible>>
             + Send,
> + Clone
+ Send
+ 'static {
    hyper::service::service_fn(move |req| request(Arc::clone(&ctx), req))
}

/// One request of a client connection, through the proxy.
async fn request(
    ctx: Arc<ClientConn>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<forward::ClientBody>, std::convert::Infallible> {
    ctx.activity.start();
    let mut req = req;
    if ctx.client.origin.client_tls(req.headers()) {
        // The library's `Secure::Auto` reads it.
        req.extensions_mut().insert(tower_sticky::ClientTls);
    }
    let http1 = req.version() < http::Version::HTTP_2;
    let h2_websocket = extended_connect::is_websocket(&req);
    if h2_websocket {
        extended_connect::as_http1_upgrade(&mut req);
    }
    let mut resp = ctx.proxy.serve(req, &ctx.client).await;
    if h2_websocket {
        extended_connect::as_h2_response(&mut resp);
    }
    ctx.activity.end();
    // In a drain the client closes after this response instead of sending
    // its next request onto a connection about to close (an upgrade's 101
    // keeps its own `Connection`).
    if http1 && ctx.drain.draining() && resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        resp.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    Ok(resp)
}

/// Accepts clients until `stop` turns true, then drains (up to
/// [`DRAIN_TIMEOUT`]): the connections the kernel has already completed are
/// still accepted, every connection is served until its client closes it
/// (told by `Connection: close` or GOAWAY) or it idles (see [`conn`]).
pub(crate) async fn serve(
    listener: TcpListener,
    proxy: Arc<forward::Proxy>,
    limits: &cli::Limits,
    connections: Arc<tokio::sync::Semaphore>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    edge: tls::Edge,
) {
    let server = Server::new(proxy, limits, edge);
    // This worker's idle upstream connections are closed after a while.
    tokio::spawn(forward::upstream::purge_idle());
    let room = || Arc::clone(&connections).acquire_owned();
    loop {
        let ((stream, peer), permit) = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            accepted = async {
                let permit = room().await.expect("the semaphore is never closed");
                listener.accept().await.map(|a| (a, permit))
            } => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        server.accepted(stream, peer, permit);
    }
    drain(&server, listener, &connections).await;
}

/// The drain after the stop, for at most [`DRAIN_TIMEOUT`].
async fn drain(server: &Server, listener: TcpListener, connections: &Arc<tokio::sync::Semaphore>) {
    tracing::info!("shutting down: finishing in-flight requests");
    server.drain.start();
    let drain = async {
        // Clients whose connection the kernel completed before the stop
        // have likely written a request already: closing the listener
        // would reset them, so they are served (and told to close) too.
        loop {
            let permit = Arc::clone(connections)
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            match std::future::poll_fn(|cx| Poll::Ready(listener.poll_accept(cx))).await {
                Poll::Ready(Ok((stream, peer))) => server.accepted(stream, peer, permit),
                _ => break,
            }
        }
        drop(listener);
        server.drain.drained().await;
    };
    match tokio::time::timeout(DRAIN_TIMEOUT, drain).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!("gave up waiting for connections after {DRAIN_TIMEOUT:?}"),
    }
}
