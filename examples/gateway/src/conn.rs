//! Client connections: HTTP/1 or h2c (prior knowledge) chosen once per
//! connection, and a per-worker drain for graceful shutdown.
//!
//! `hyper_util`'s `auto::Builder` makes the same choice by reading the first
//! bytes and then wraps the connection's IO in a rewinding reader for its
//! whole life; its `GracefulShutdown` polls a watch channel's `changed()`
//! each time the connection task wakes. Here the first bytes are peeked
//! (nothing to rewind) and the hyper connection is served directly; the
//! drain signal is a thread-local flag checked on each poll, whose
//! connection wakers are woken once when the drain starts. Every worker
//! runs its accept loop and all its connections on one thread.

use std::cell::RefCell;
use std::future::Future;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::net::TcpStream;

use slab::Slab;

/// The client connection preface of HTTP/2 (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How long a new client gets for its first bytes (as long as the HTTP/1
/// header-read timeout), or for the rest of a preface it started.
const SNIFF_MAX: Duration = Duration::from_secs(10);
/// Pause between looks at a partial preface.
const SNIFF_PAUSE: Duration = Duration::from_millis(5);

/// What a new client speaks.
pub enum Proto {
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// What the client speaks, from its first bytes: peeked, so they stay for
/// whoever reads them next. `None`: close the connection (it closed or
/// failed, sent nothing or only part of the preface within [`SNIFF_MAX`],
/// or the worker is draining).
pub async fn sniff(slot: &Slot, stream: &TcpStream) -> Option<Proto> {
    let mut look = pin!(tokio::time::timeout(SNIFF_MAX, look(stream)));
    std::future::poll_fn(|cx| {
        if slot.draining(cx) {
            return Poll::Ready(None);
        }
        look.as_mut().poll(cx).map(|r| r.ok().flatten())
    })
    .await
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

/// This worker's connections, for the drain.
#[derive(Default)]
struct Drain {
    draining: bool,
    /// A waker per live connection (`None` until its first poll).
    slots: Slab<Option<Waker>>,
    /// The drain, waiting for `live` to reach 0.
    waiter: Option<Waker>,
}

thread_local! {
    static DRAIN: RefCell<Drain> = RefCell::new(Drain::default());
}

/// A connection's place in [`DRAIN`], taken when it is accepted (so the
/// drain also waits for connections still being sniffed) and given back
/// when it ends or its task is dropped.
pub struct Slot(usize);

impl Slot {
    pub fn new() -> Self {
        DRAIN.with_borrow_mut(|d| Slot(d.slots.insert(None)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let waiter = DRAIN.with_borrow_mut(|d| {
            d.slots.try_remove(self.0);
            if d.slots.is_empty() {
                d.waiter.take()
            } else {
                None
            }
        });
        if let Some(w) = waiter {
            w.wake();
        }
    }
}

impl Slot {
    /// Whether this worker is draining; if not, `cx`'s waker is the one the
    /// drain wakes (usually already: a task's waker stays valid for its
    /// whole life).
    fn draining(&self, cx: &Context<'_>) -> bool {
        DRAIN.with_borrow_mut(|d| {
            if !d.draining {
                match d.slots.get_mut(self.0).expect("a live connection's slot") {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(cx.waker().clone()),
                }
            }
            d.draining
        })
    }
}

/// Drives `conn`, which this worker's [`drain`] asks to finish gracefully.
pub async fn watched<C: Graceful>(slot: Slot, conn: C) -> C::Output {
    let mut conn = pin!(conn);
    let mut asked = false;
    std::future::poll_fn(move |cx| {
        if !asked && slot.draining(cx) {
            asked = true;
            conn.as_mut().graceful_shutdown();
        }
        conn.as_mut().poll(cx)
    })
    .await
}

/// Asks every connection of this worker to finish and waits until all have
/// (the caller bounds the wait).
pub async fn drain() {
    let wakers: Vec<Waker> = DRAIN.with_borrow_mut(|d| {
        d.draining = true;
        d.slots.iter_mut().filter_map(|(_, w)| w.take()).collect()
    });
    for w in wakers {
        w.wake();
    }
    std::future::poll_fn(|cx| {
        DRAIN.with_borrow_mut(|d| {
            if d.slots.is_empty() {
                Poll::Ready(())
            } else {
                d.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    })
    .await;
}
