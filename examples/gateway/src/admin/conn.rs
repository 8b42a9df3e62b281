//! One admin connection, and how much of the gateway it may hold.
//!
//! The admin port must never cost the data plane its file descriptors or
//! its memory (issue 19, finding 1: 3,000 half-sent heads held 47 MB, and
//! under a 1,024-descriptor limit clients went unserved). So:
//!
//! * at most `--admin-max-connections` are open: the accept loop takes a
//!   slot before it accepts, and while none is free new connections wait in
//!   the kernel's listen backlog, holding no descriptor of ours;
//! * a request head must arrive within `--admin-head-timeout` of the
//!   connection opening or of the previous answer (hyper's header-read
//!   timeout, HAProxy's `timeout http-request`);
//! * a connection on which no byte moved either way for
//!   `--admin-idle-timeout` is closed (`Activity`), whatever it was doing;
//! * HTTP/1 only: curl, kubectl port-forward and Prometheus speak it, and
//!   an HTTP/2 connection would need limits of its own.

use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Largest admin request head: the admin API's requests are a line and a
/// few headers.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// When bytes last moved on a connection, in milliseconds since it opened.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// Resolves once no byte moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let due = self.last() + idle;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

/// A connection that notes each read and write that moved bytes.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one admin connection until the client closes it or a limit ends
/// it.
pub async fn serve<S>(stream: TcpStream, head_timeout: Duration, idle_timeout: Duration, service: S)
where
    S: Service<http::Request<Incoming>, Response = http::Response<crate::forward::ClientBody>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        stream,
        activity: Arc::clone(&activity),
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, service);
    tokio::select! {
        _ = conn => {}
        () = activity.idle_for(idle_timeout) => {}
    }
}
