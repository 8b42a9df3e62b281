//! Bodies forwarded by their framing, as they arrive, never re-encoded:
//! `Content-Length` bytes are counted, a chunked body is copied verbatim
//! while [`Chunked`] follows its framing, a response delimited by close
//! is copied to the end of the stream.

use super::bufs::{self, Buf};
use super::chunked::{BadChunk, Chunked};
use super::head::Framing;
use std::io;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

/// What is left of a body.
#[derive(Debug)]
pub enum Remaining {
    /// This many bytes.
    Length(u64),
    /// Chunks, up to the last one and the trailers.
    Chunked(Chunked),
    /// Everything up to the end of the stream.
    UntilClose,
}

impl Remaining {
    /// The whole body of a message with `framing`; `None`: no body.
    pub fn of(framing: Framing) -> Option<Remaining> {
        match framing {
            Framing::None | Framing::Length(0) => None,
            Framing::Length(n) => Some(Remaining::Length(n)),
            Framing::Chunked => Some(Remaining::Chunked(Chunked::new())),
            Framing::UntilClose => Some(Remaining::UntilClose),
        }
    }

    /// How many of `bytes`, the next bytes of the stream, belong to the
    /// body (all of them, or fewer when it ends inside them).
    pub fn take(&mut self, bytes: &[u8]) -> Result<usize, BadChunk> {
        match self {
            Remaining::Length(n) => {
                let k = usize::try_from(*n).unwrap_or(usize::MAX).min(bytes.len());
                *n -= k as u64;
                Ok(k)
            }
            Remaining::Chunked(c) => c.feed(bytes),
            Remaining::UntilClose => Ok(bytes.len()),
        }
    }

    /// The body has ended (never for one delimited by close).
    pub fn done(&self) -> bool {
        match self {
            Remaining::Length(n) => *n == 0,
            Remaining::Chunked(c) => c.done(),
            Remaining::UntilClose => false,
        }
    }

    /// Moves what `buf` holds of the body to `out` (one write with the
    /// head that `out` already holds).
    pub fn move_buffered(
        &mut self,
        buf: &mut Option<Buf>,
        out: &mut Vec<u8>,
    ) -> Result<(), BadChunk> {
        if let Some(b) = buf {
            let k = self.take(b.bytes())?;
            out.extend_from_slice(&b.bytes()[..k]);
            b.consume(k);
            bufs::release(buf);
        }
        Ok(())
    }
}

/// Why a body could not be copied.
#[derive(Debug)]
pub enum CopyError {
    /// The sending side failed: closed early, a malformed chunk, too slow.
    Read(String),
    /// The receiving side failed.
    Write(io::Error),
}

/// Copies the rest of a body from `from` (what `buf` holds first) to `to`
/// until `rest` is done (or, delimited by close, `from` ends), each read
/// before `deadline` when one is given. Bytes after the body stay in `buf`.
pub async fn copy<R, W>(
    from: &mut R,
    buf: &mut Option<Buf>,
    to: &mut W,
    rest: &mut Remaining,
    deadline: Option<Instant>,
) -> Result<(), CopyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // Bounded: every turn consumes bytes of a finite body or reads more
    // (each read bounded by the deadline, or by the sender's end).
    loop {
        if rest.done() {
            bufs::release(buf);
            return Ok(());
        }
        if buf.as_ref().is_none_or(Buf::is_empty) {
            let read = bufs::read(from, buf, bufs::SIZE);
            let n = match deadline {
                Some(at) => crate::listen::coarse::timeout_at(at, read)
                    .await
                    .map_err(|_| CopyError::Read("timed out".into()))?,
                None => read.await,
            }
            .map_err(|e| CopyError::Read(e.to_string()))?;
            if n == 0 {
                if matches!(rest, Remaining::UntilClose) {
                    return Ok(());
                }
                return Err(CopyError::Read("closed before the end of the body".into()));
            }
        }
        let Some(b) = buf.as_mut() else { continue };
        let k = rest
            .take(b.bytes())
            .map_err(|e| CopyError::Read(e.to_string()))?;
        to.write_all(&b.bytes()[..k])
            .await
            .map_err(CopyError::Write)?;
        b.consume(k);
        bufs::release(buf);
    }
}

/// Reads the rest of a body into `out` while it fits in `bound` bytes in
/// all (`out` holds `base` bytes before the body). `Ok(true)`: read
/// whole; `Ok(false)`: larger, what was read is in `out` and the rest is
/// to be streamed.
pub async fn read_whole<R: AsyncRead + Unpin>(
    from: &mut R,
    buf: &mut Option<Buf>,
    out: &mut Vec<u8>,
    base: usize,
    rest: &mut Remaining,
    bound: usize,
    deadline: Instant,
) -> Result<bool, CopyError> {
    // Bounded: every turn consumes body bytes or reads more (each read
    // before the deadline), and stops past `bound`.
    loop {
        rest.move_buffered(buf, out)
            .map_err(|e| CopyError::Read(e.to_string()))?;
        if rest.done() {
            return Ok(true);
        }
        if out.len() - base > bound {
            return Ok(false);
        }
        let read = bufs::read(from, buf, bufs::SIZE);
        let n = crate::listen::coarse::timeout_at(deadline, read)
            .await
            .map_err(|_| CopyError::Read("timed out".into()))?
            .map_err(|e| CopyError::Read(e.to_string()))?;
        if n == 0 {
            return Err(CopyError::Read("closed before the end of the body".into()));
        }
    }
}
