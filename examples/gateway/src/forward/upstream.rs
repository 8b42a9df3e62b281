//! The upstream HTTP/1.1 connections of one worker thread, and who may use
//! them (`--http-reuse`).
//!
//! * `safe` (the default): a client connection's requests reuse the
//!   upstream connections that **it** opened; no other client connection
//!   ever gets one of them, and they are closed when it ends. This is what
//!   keeps a backend that desynchronises (a CL.0 bug, a smuggled request)
//!   from handing one client's pending response to another.
//! * `always`: every idle connection of the worker is shared by every
//!   request, and outlives its client connection (the aggressive mode).
//! * `never`: every request opens a connection and closes it after.
//!
//! An idle connection that receives any byte or half-closes is closed at
//! once (hyper's client connection does so when it reads while no request is
//! in flight), and is never handed out again.
//!
//! Each open connection holds a permit of its endpoint's tokio
//! [`Semaphore`] for `--max-upstream-connections` (per worker), given back
//! when its task ends: at the cap, a request waits for a place
//! (`--upstream-queue-timeout`), and closes an idle connection of another
//! client to make one: closing never lends it.
//!
//! Every worker runs a single-threaded runtime, so a connection, its task
//! and the requests sent over it stay on one thread: the pool is a
//! thread-local, with no locks and no channel between threads.

use crate::cli::Reuse;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Options, UpstreamBody};

/// How long connecting to a backend may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle upstream connections kept per backend address and worker thread.
const MAX_IDLE_PER_UPSTREAM: usize = 256;
/// An idle upstream connection unused for this long is closed (HAProxy's
/// `pool-purge-delay` is 5 s too).
pub const UPSTREAM_IDLE_MAX: Duration = Duration::from_secs(5);

/// Who may take an idle connection: the client connection that opened it
/// (`safe`), or anyone (`always`, the id 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct OwnerId(u64);

/// The shared owner of `--http-reuse always`.
const SHARED: OwnerId = OwnerId(0);

/// A client connection's claim on the upstream connections it opens. Made
/// once per client connection; when it is dropped (the client connection
/// ended), its idle upstream connections are closed.
#[derive(Debug)]
pub struct Owner {
    id: OwnerId,
    reuse: Reuse,
}

impl Owner {
    /// A new client connection under `reuse`.
    pub fn new(reuse: Reuse) -> Owner {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = match reuse {
            Reuse::Safe => OwnerId(NEXT.fetch_add(1, Ordering::Relaxed)),
            Reuse::Always | Reuse::Never => SHARED,
        };
        Owner { id, reuse }
    }

    /// Who may take the connections it opens.
    pub(super) fn id(&self) -> OwnerId {
        self.id
    }

    /// `--http-reuse`.
    pub(super) fn reuse(&self) -> Reuse {
        self.reuse
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.id == SHARED {
            return;
        }
        let id = self.id;
        super::h2::forget(id);
        // Dropped outside the borrow: a sender's drop may run other code.
        // `try_with`: a worker's runtime may drop its connections while its
        // thread ends.
        let closed: Vec<Vec<Upconn>> = POOL
            .try_with(|pool| {
                let mut pool = pool.borrow_mut();
                let mut closed = Vec::new();
                for up in pool.values_mut() {
                    if let Some(conns) = up.idle.remove(&id) {
                        up.idle_count -= conns.len();
                        closed.push(conns);
                    }
                }
                closed
            })
            .unwrap_or_default();
        drop(closed);
    }
}

thread_local! {
    /// This worker's HTTP/1.1 connections to each backend address. A sender
    /// goes back in as soon as its response head is out, and is only taken
    /// again once `is_ready()` says the previous response is done with.
    ///
    /// hyper-util's pool cannot say "only for the client connection that
    /// opened it" or "at most N per endpoint, then queue", hence this one.
    static POOL: RefCell<HashMap<String, Upstreams, AddrHash>> =
        const { RefCell::new(HashMap::with_hasher(AddrHash::with_seed(0))) };
}

/// foldhash for the pool's keys: backend addresses come from the
/// operator's configuration and owner ids from a counter, not from
/// clients, so SipHash's flooding resistance buys nothing on these
/// per-request lookups.
type AddrHash = foldhash::fast::FixedState;

/// This worker's connections to one backend address.
struct Upstreams {
    /// Checked in, and reusable by their owner once `is_ready()`: by owner,
    /// so that a request finds its client's own in one lookup.
    idle: HashMap<OwnerId, Vec<Upconn>, AddrHash>,
    /// How many `idle` holds in all (at most [`MAX_IDLE_PER_UPSTREAM`]).
    idle_count: usize,
    /// A permit per open connection (idle, busy or being opened), held by
    /// its task: `--max-upstream-connections`.
    places: Arc<Semaphore>,
    /// Woken when one is checked in, for requests waiting at the cap (under
    /// `always` they may take it).
    checked_in: Arc<tokio::sync::Notify>,
}

/// One HTTP/1.1 connection to a backend.
pub(super) struct Upconn {
    pub(super) sender: SendRequest<UpstreamBody>,
    /// When it was last checked in.
    since: Instant,
    /// Bytes the backend has sent on it so far: whether an attempt that
    /// failed got any of its answer.
    pub(super) read: Arc<AtomicU64>,
    /// Who may take it when it is idle.
    owner: OwnerId,
}

/// An idle connection to `addr` that `owner` may use, ready for a request.
fn checkout(addr: &str, owner: OwnerId) -> Option<Upconn> {
    POOL.with_borrow_mut(|pool| {
        let up = pool.get_mut(addr)?;
        let conns = up.idle.get_mut(&owner)?;
        // Bounded by MAX_IDLE_PER_UPSTREAM (usually one or two).
        let mut i = conns.len();
        while i > 0 {
            i -= 1;
            if conns[i].sender.is_closed() {
                conns.swap_remove(i);
                up.idle_count -= 1;
            } else if conns[i].sender.is_ready() {
                up.idle_count -= 1;
                return Some(conns.swap_remove(i));
            }
        }
        None
    })
}

/// Puts a connection back, to be reused by its owner once its response is
/// done; under `never` it is dropped instead, and closes after its response.
pub(super) fn checkin(addr: &str, owner: &Owner, mut conn: Upconn) {
    if conn.sender.is_closed() || owner.reuse == Reuse::Never {
        return;
    }
    conn.since = crate::listen::coarse::now();
    POOL.with_borrow_mut(|pool| {
        // One lookup: a connection checked in was reserved, so its address
        // is there.
        let Some(up) = pool.get_mut(addr) else {
            return;
        };
        if up.idle_count < MAX_IDLE_PER_UPSTREAM {
            up.idle.entry(conn.owner).or_default().push(conn);
            up.idle_count += 1;
        }
        up.checked_in.notify_one();
    });
}

/// Closes this worker's upstream connections idle for more than
/// [`UPSTREAM_IDLE_MAX`], every second, for ever (each worker runs it on
/// its own runtime, which ends with the worker).
pub async fn purge_idle() {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        super::h2::purge(now);
        // Dropping a sender ends its connection's task, which then releases
        // its place (later, outside this borrow).
        POOL.with_borrow_mut(|pool| {
            for up in pool.values_mut() {
                for conns in up.idle.values_mut() {
                    let before = conns.len();
                    conns.retain(|c| now.saturating_duration_since(c.since) <= UPSTREAM_IDLE_MAX);
                    up.idle_count -= before - conns.len();
                }
            }
        });
    }
}

/// The cap's semaphore of `addr` and its check-in signal.
fn places(addr: &str, cap: usize) -> (Arc<Semaphore>, Arc<tokio::sync::Notify>) {
    POOL.with_borrow_mut(|pool| {
        if !pool.contains_key(addr) {
            let up = Upstreams {
                idle: HashMap::with_hasher(AddrHash::with_seed(0)),
                idle_count: 0,
                places: Arc::new(Semaphore::new(cap.clamp(1, Semaphore::MAX_PERMITS))),
                checked_in: Arc::default(),
            };
            pool.insert(addr.to_owned(), up);
        }
        let up = pool.get_mut(addr).expect("inserted above");
        (Arc::clone(&up.places), Arc::clone(&up.checked_in))
    })
}

/// At the cap: closes an idle connection to `addr` to make room (its task
/// ends once its response is done, and gives its place back). It is
/// closed, never lent.
fn evict_one(addr: &str) {
    let evicted = POOL.with_borrow_mut(|pool| {
        let up = pool.get_mut(addr)?;
        let conn = up.idle.values_mut().find_map(Vec::pop)?;
        up.idle_count -= 1;
        Some(conn)
    });
    drop(evicted);
}

/// A place under `--max-upstream-connections` for a new connection to
/// `addr` (an h2c one: [`super::h2`]); at the cap, `evict` closes a
/// connection to make room, and the request waits up to
/// `--upstream-queue-timeout` for its place. `None` when none freed in time.
pub(super) async fn place(
    addr: &str,
    options: &Options,
    evict: impl FnOnce(),
) -> Option<OwnedSemaphorePermit> {
    let (places, _) = places(addr, options.max_upstream);
    if let Ok(place) = Arc::clone(&places).try_acquire_owned() {
        return Some(place);
    }
    evict();
    let waited = tokio::time::timeout(options.queue_timeout, places.acquire_owned());
    waited.await.ok()?.ok()
}

/// Why [`acquire`] gave no connection.
pub(super) enum Acquire {
    /// Connecting failed (refused, timed out).
    Connect(ConnectError),
    /// `--max-upstream-connections` reached and none freed in time.
    Saturated,
}

/// A connection for one attempt: one that `owner` may reuse unless
/// `fresh`, else a new one within `--max-upstream-connections`, waiting up
/// to `--upstream-queue-timeout` at the cap. `Ok((conn, reused))`.
pub(super) async fn acquire(
    addr: &str,
    owner: &Owner,
    options: &Options,
    fresh: bool,
) -> Result<(Upconn, bool), Acquire> {
    let fresh = fresh || owner.reuse == Reuse::Never;
    let deadline = tokio::time::Instant::now() + options.queue_timeout;
    // Bounded by the deadline: every turn waits for a place or a check-in.
    loop {
        if !fresh && let Some(c) = checkout(addr, owner.id) {
            return Ok((c, true));
        }
        let (places, checked_in) = places(addr, options.max_upstream);
        let place = match Arc::clone(&places).try_acquire_owned() {
            Ok(place) => place,
            Err(_) => {
                evict_one(addr);
                let waited = tokio::time::timeout_at(deadline, async {
                    tokio::select! {
                        place = places.acquire_owned() => place.ok(),
                        () = checked_in.notified() => None,
                    }
                });
                match waited.await {
                    Err(_) => return Err(Acquire::Saturated),
                    // A connection came back: maybe one this request may
                    // take; else another turn.
                    Ok(None) => continue,
                    Ok(Some(place)) => place,
                }
            }
        };
        // Boxed: opening a connection is rare next to reusing one, and its
        // future (hyper's handshake) would otherwise widen every request's
        // future, which is moved around.
        return match Box::pin(connect(addr, owner.id, place)).await {
            Ok(c) => Ok((c, false)),
            Err(e) => Err(Acquire::Connect(e)),
        };
    }
}

/// Why a connection to a backend could not be made (for the log: it
/// names the address).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The TCP connect failed (refused, unreachable).
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The backend's address.
        addr: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The TCP connect took longer than [`CONNECT_TIMEOUT`].
    #[error("connect to {addr}: timed out after {CONNECT_TIMEOUT:?}")]
    Timeout {
        /// The backend's address.
        addr: String,
    },
    /// The HTTP/1.1 handshake failed.
    #[error("handshake with {addr}: {source}")]
    Handshake {
        /// The backend's address.
        addr: String,
        /// What hyper said.
        source: hyper::Error,
    },
}

/// A new connection to `addr` (`TCP_NODELAY`), its task spawned on this
/// worker; the task holds `place` (under the cap) until it ends.
async fn connect(
    addr: &str,
    owner: OwnerId,
    place: OwnedSemaphorePermit,
) -> Result<Upconn, ConnectError> {
    let connecting = tokio::net::TcpStream::connect(addr);
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(s)) => s,
        Ok(Err(source)) => {
            let addr = addr.to_owned();
            return Err(ConnectError::Connect { addr, source });
        }
        Err(_) => {
            let addr = addr.to_owned();
            return Err(ConnectError::Timeout { addr });
        }
    };
    let _ = stream.set_nodelay(true);
    let read = Arc::new(AtomicU64::new(0));
    let io = Counted {
        inner: stream,
        read: Arc::clone(&read),
    };
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        // Request heads are small: one buffer, one plain send.
        .writev(false)
        .handshake(TokioIo::new(io))
        .await
        .map_err(|source| ConnectError::Handshake {
            addr: addr.to_owned(),
            source,
        })?;
    tokio::spawn(async move {
        // Ends when the backend closes, when bytes arrive while no request
        // is in flight, or when every sender is dropped.
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!("upstream connection: {e}");
        }
        drop(place);
    });
    Ok(Upconn {
        sender,
        read,
        since: crate::listen::coarse::now(),
        owner,
    })
}

/// An upstream socket that counts the bytes read from it.
struct Counted {
    inner: tokio::net::TcpStream,
    read: Arc<AtomicU64>,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
