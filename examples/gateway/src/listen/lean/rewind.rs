//! The hand-over to hyper: the bytes the lean path read and did not
//! consume are read again first, then the connection itself.

use super::bufs::Buf;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A client connection whose first bytes were already read.
#[derive(Debug)]
pub struct Rewind<C> {
    read: Option<Buf>,
    inner: C,
}

impl<C> Rewind<C> {
    pub(super) fn new(read: Option<Buf>, inner: C) -> Self {
        Rewind { read, inner }
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for Rewind<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(buf) = &mut self.read {
            let n = buf.len().min(out.remaining());
            out.put_slice(&buf.bytes()[..n]);
            buf.consume(n);
            super::bufs::release(&mut self.read);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Rewind<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
