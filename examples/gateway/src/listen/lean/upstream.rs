//! The upstream sockets a lean client connection owns: at most one kept
//! per backend address, reused only by this connection (`--http-reuse
//! safe`; `never`: one per request), closed when it ends. Each holds a
//! place under `--max-upstream-connections`, the same per-worker semaphore
//! as the hyper path's connections.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::futures::OwnedNotified;
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// Opens connections to backends: TCP in the gateway ([`Tcp`]), in-memory
/// streams in the fuzz harness.
pub trait Connector {
    /// A connection to a backend.
    type Io: AsyncRead + AsyncWrite + Unpin;
    /// Connects to `addr` (`host:port`).
    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Io>>;
}

/// TCP, with [`CONNECT_TIMEOUT`](crate::forward::upstream::CONNECT_TIMEOUT)
/// and `TCP_NODELAY`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tcp;

impl Connector for Tcp {
    type Io = tokio::net::TcpStream;

    async fn connect(&self, addr: &str) -> io::Result<tokio::net::TcpStream> {
        let timeout = crate::forward::upstream::CONNECT_TIMEOUT;
        let stream = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await
        {
            Ok(connected) => connected?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("timed out after {timeout:?}"),
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// One upstream socket of a client connection.
pub(super) struct Up<U> {
    /// The backend's address.
    pub addr: std::sync::Arc<str>,
    pub io: U,
    /// Its place under `--max-upstream-connections`.
    _place: OwnedSemaphorePermit,
    /// Completes when a request waiting at that cap needs this socket's
    /// place: it is closed as soon as it is idle.
    evict: Pin<Box<OwnedNotified>>,
}

impl<U: AsyncRead + Unpin> Up<U> {
    pub fn new(
        addr: std::sync::Arc<str>,
        io: U,
        (place, evict): (OwnedSemaphorePermit, std::sync::Arc<Notify>),
    ) -> Self {
        Up {
            addr,
            io,
            _place: place,
            evict: Box::pin(evict.notified_owned()),
        }
    }

    /// Whether a kept socket is still quiet: no byte waiting, not closed,
    /// and its place not wanted at the cap (one non-blocking read; `cx` is
    /// woken when that changes).
    pub fn quiet(&mut self, cx: &mut Context<'_>) -> bool {
        if self.evict.as_mut().poll(cx).is_ready() {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut rb = ReadBuf::new(&mut probe);
        matches!(Pin::new(&mut self.io).poll_read(cx, &mut rb), Poll::Pending)
    }

    /// Whether a kept socket can take another request: nothing is waiting
    /// on it (a stray byte means the backend is out of step) and the
    /// backend has not closed it. One non-blocking read.
    pub fn reusable(&mut self) -> bool {
        self.quiet(&mut Context::from_waker(Waker::noop()))
    }
}
