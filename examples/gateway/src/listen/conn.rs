//! Client connections: HTTP/1 or h2c (prior knowledge) chosen once per
//! connection, a process-wide limit on their number (`--max-connections`),
//! an idle timeout for HTTP/2 (`--h2-idle-timeout`; HTTP/1 has hyper's
//! header-read timeout), and a per-worker drain for graceful shutdown.
//!
//! The drain (SIGTERM) loses no request of a client that keeps sending, as
//! HAProxy's soft-stop and Envoy's drain do it: every connection is still
//! served; each HTTP/1 response from then on carries `Connection: close`
//! (the listener adds it, [`Drain::draining`]), so the client closes after the
//! request it has in flight instead of racing a new request against an idle
//! close; HTTP/2 connections get GOAWAY at once (their streams in flight
//! finish); and an HTTP/1 connection is closed while idle only once it has
//! been idle for [`DRAIN_IDLE`] since the drain began or its last request,
//! whichever is later. Closing an idle HTTP/1 connection is the one moment
//! a request can still be lost (HTTP/1 has no GOAWAY), so it only happens to
//! clients that have gone quiet.
//!
//! `hyper_util`'s `auto::Builder` makes the same choice by reading the first
//! bytes and then wraps the connection's IO in a rewinding reader for its
//! whole life. Here the first bytes are peeked (nothing to rewind) and the
//! hyper connection is served directly. A worker's [`Drain`] is tokio-util's
//! `CancellationToken` (the signal every connection of the worker listens
//! to) and `TaskTracker` (the connection tasks the drain waits for). Every
//! worker runs its accept loop and all its connections on one thread.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How long a new client gets for its first bytes (as long as the HTTP/1
/// header-read timeout), or for the rest of a preface it started.
const SNIFF_MAX: Duration = Duration::from_secs(10);
/// Pause between looks at a partial preface.
const SNIFF_PAUSE: Duration = Duration::from_millis(5);
/// In a drain, how long an HTTP/1 connection (or one that has sent nothing
/// yet) may stay idle before it is closed, counted from the drain's start or
/// its last request, whichever is later. Well under the drain's deadline
/// (`listen::DRAIN_TIMEOUT`), well over the gap between a client's
/// back-to-back requests.
pub const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// What a new client speaks.
pub enum Proto {
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// What the client speaks, from its first bytes: peeked, so they stay for
/// whoever reads them next. `None`: close the connection (it closed or
/// failed, sent nothing or only part of the preface within [`SNIFF_MAX`],
/// or sent nothing within [`DRAIN_IDLE`] of the worker's drain or, in a
/// drain, of its accept).
pub async fn sniff(drain: &Drain, stream: &TcpStream) -> Option<Proto> {
    let look = tokio::time::timeout(SNIFF_MAX, look(stream));
    // Counted from the drain's start, or from the accept for a connection
    // accepted in the drain.
    let grace = async {
        drain.token.cancelled().await;
        tokio::time::sleep(DRAIN_IDLE).await;
    };
    tokio::select! {
        biased;
        proto = look => proto.ok().flatten(),
        () = grace => None,
    }
}

async fn look(stream: &TcpStream) -> Option<Proto> {
    let mut buf = [0u8; PREFACE.len()];
    // Bounded: SNIFF_MAX / SNIFF_PAUSE turns (and by the caller's timeout).
    for _ in 0..(SNIFF_MAX.as_millis() / SNIFF_PAUSE.as_millis()) {
        let n = stream.peek(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        if buf[..n] != PREFACE[..n] {
            return Some(Proto::Http1);
        }
        if n == PREFACE.len() {
            return Some(Proto::Http2);
        }
        // A strict prefix of the preface: more bytes are needed, and a peek
        // would return the same ones at once, so wait a little.
        tokio::time::sleep(SNIFF_PAUSE).await;
    }
    None
}

/// A hyper server connection that can be asked to finish gracefully.
pub trait Graceful: Future {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::UpgradeableConnection::graceful_shutdown(self);
    }
}

impl<I, S, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::ResBody: hyper::body::Body + 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self);
    }
}

/// One worker's graceful drain: the signal its connections listen to, and
/// their tasks, which the drain waits for.
///
/// `CancellationToken::is_cancelled` and polling its future take a lock, and
/// a connection looks at the drain each time its task wakes (several times
/// per request): so the token only wakes the connections, once, and what
/// they read is a plain flag set just before (callgrind: ~330 instructions
/// per request less).
#[derive(Clone, Debug, Default)]
pub struct Drain {
    token: CancellationToken,
    started: Arc<AtomicBool>,
    tracker: TaskTracker,
}

impl Drain {
    /// A drain not started, tracking no connection yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves a connection on a task the drain waits for.
    pub fn spawn(&self, connection: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(connection);
    }

    /// Starts the drain: every connection is told (see [`watched`]).
    pub fn start(&self) {
        self.started.store(true, Ordering::Release);
        self.token.cancel();
    }

    /// Whether the drain has started: HTTP/1 responses then carry
    /// `Connection: close`.
    pub fn draining(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    /// Waits until every connection has ended (the caller bounds the wait).
    pub async fn drained(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// Drives `conn` (HTTP/2 when `h2_idle` is given, else HTTP/1) and asks it
/// to finish gracefully: an HTTP/2 one once no stream has been in flight for
/// `h2_idle`, or at once when this worker's drain begins (GOAWAY); an
/// HTTP/1 one in a drain, once idle for [`DRAIN_IDLE`]. In-flight requests
/// finish either way.
pub async fn watched<C: Graceful>(
    drain: &Drain,
    conn: C,
    activity: &Activity,
    h2_idle: Option<Duration>,
) -> C::Output {
    let mut conn = pin!(conn);
    let mut signal = pin!(drain.token.cancelled());
    // The signal is polled once, to leave this task's waker with the token
    // (a task's waker does not change); after that the flag is read.
    let mut listening = false;
    let mut asked = false;
    let mut drain_seen = false;
    // The idle limit in force (none for HTTP/1 until a drain).
    let mut idle = h2_idle;
    let mut timer = pin!(tokio::time::sleep(idle.unwrap_or(Duration::MAX / 4)));
    std::future::poll_fn(move |cx| {
        if !asked {
            let mut finish = false;
            let drained_now = if listening {
                drain.draining()
            } else {
                listening = true;
                signal.as_mut().poll(cx).is_ready()
            };
            if !drain_seen && drained_now {
                drain_seen = true;
                if h2_idle.is_some() {
                    finish = true;
                } else {
                    idle = Some(DRAIN_IDLE);
                    timer.as_mut().reset((Instant::now() + DRAIN_IDLE).into());
                }
            }
            if let Some(idle) = idle {
                // Bounded: each turn finishes or moves the timer into the
                // future (where it is pending).
                while !finish && timer.as_mut().poll(cx).is_ready() {
                    match activity.idle_deadline(idle) {
                        Some(at) if at <= Instant::now() => finish = true,
                        Some(at) => timer.as_mut().reset(at.into()),
                        None => timer.as_mut().reset(tokio::time::Instant::now() + idle),
                    }
                }
            }
            if finish {
                asked = true;
                conn.as_mut().graceful_shutdown();
            }
        }
        conn.as_mut().poll(cx)
    })
    .await
}

/// The client connections of the whole process (every worker), for
/// `--max-connections`: a permit per connection, held until it ends. The
/// accept loop waits for one before it accepts, and the listen backlog holds
/// the other clients meanwhile, as with HAProxy's `maxconn`.
pub fn connection_limit(max: usize) -> Arc<Semaphore> {
    Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS)))
}

/// Whether a client connection is idle, shared by its requests.
#[derive(Debug)]
pub struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds from `epoch` to the last request start or end.
    last: AtomicU64,
    epoch: Instant,
}

impl Activity {
    pub fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            last: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn stamp(&self) {
        let ms = crate::listen::coarse::now().saturating_duration_since(self.epoch);
        self.last.store(
            u64::try_from(ms.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// A request starts.
    pub fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.stamp();
    }

    /// A request's response head has gone back.
    pub fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.stamp();
    }

    /// When the connection will have been idle for `idle` if nothing
    /// happens meanwhile; `None` while a request is in flight.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        (self.in_flight.load(Ordering::Relaxed) == 0)
            .then(|| self.epoch + Duration::from_millis(self.last.load(Ordering::Relaxed)) + idle)
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}
