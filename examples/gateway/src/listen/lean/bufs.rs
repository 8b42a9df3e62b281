//! Read buffers taken when bytes arrive and given back when they are all
//! consumed, so that an idle connection holds none (issue 21: ≤ 4 KiB per
//! idle keep-alive client connection).
//!
//! Each worker runs a single-threaded runtime, so the free list is a
//! thread-local: taking and giving back is a borrow, no lock. A read
//! borrows a buffer only for the poll that fills it: a poll that finds no
//! byte gives it straight back.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::Poll;
use tokio::io::{AsyncRead, ReadBuf};

/// The size of a pooled buffer: a whole head at the default
/// `--max-header-bytes` fits, and bodies are copied in pieces this large.
pub const SIZE: usize = 16 * 1024;
/// Free buffers kept per worker (more are freed).
const KEPT: usize = 256;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static FREE_OUT: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Bytes read and not consumed yet: `data[start..end]`.
#[derive(Debug)]
pub struct Buf {
    data: Vec<u8>,
    start: usize,
    end: usize,
}

impl Buf {
    /// A buffer from the free list (or a new one).
    fn take() -> Buf {
        let data = FREE
            .with_borrow_mut(Vec::pop)
            .unwrap_or_else(|| vec![0; SIZE]);
        Buf {
            data,
            start: 0,
            end: 0,
        }
    }

    /// Back to the free list (a grown one is freed).
    fn give(self) {
        if self.data.len() == SIZE {
            FREE.with_borrow_mut(|free| {
                if free.len() < KEPT {
                    free.push(self.data);
                }
            });
        }
    }

    /// The bytes not consumed yet.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    /// How many bytes are not consumed yet.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// No byte left.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Marks `n` bytes consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Room to read into: the unconsumed bytes are moved to the front when
    /// the end is reached, and the buffer grows up to `max` bytes in all
    /// when it is full. Empty when `max` bytes are buffered.
    fn room(&mut self, max: usize) -> &mut [u8] {
        if self.end == self.data.len() && self.start > 0 {
            self.data.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.data.len() && self.data.len() < max {
            let grown = (self.data.len() * 2).clamp(SIZE, max);
            self.data.resize(grown, 0);
        }
        &mut self.data[self.end..]
    }
}

/// Keeps `buf` in `slot` while it has bytes; else gives it back.
pub fn settle(slot: &mut Option<Buf>, buf: Buf) {
    if buf.is_empty() {
        buf.give();
    } else {
        *slot = Some(buf);
    }
}

/// Gives `slot`'s buffer back if it has no byte left.
pub fn release(slot: &mut Option<Buf>) {
    if let Some(buf) = slot.take() {
        settle(slot, buf);
    }
}

/// Reads what `io` has into `slot`'s buffer (taken for the read when there
/// is none), growing it up to `max` bytes buffered. `Ok(0)`: end of
/// stream, or `max` bytes are already buffered (the caller knows which:
/// it checks the length first).
pub async fn read<R: AsyncRead + Unpin>(
    io: &mut R,
    slot: &mut Option<Buf>,
    max: usize,
) -> io::Result<usize> {
    poll_fn(|cx| {
        let mut buf = slot.take().unwrap_or_else(Buf::take);
        let room = buf.room(max);
        if room.is_empty() {
            *slot = Some(buf);
            return Poll::Ready(Ok(0));
        }
        let mut rb = ReadBuf::new(room);
        let polled = Pin::new(&mut *io).poll_read(cx, &mut rb);
        let n = rb.filled().len();
        buf.end += n;
        settle(slot, buf);
        match polled {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(n)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// An output buffer for one exchange (heads, bodies read whole), from the
/// free list; give it back with [`give_out`] when the exchange ends.
pub fn take_out() -> Vec<u8> {
    FREE_OUT
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| Vec::with_capacity(4096))
}

/// Gives an output buffer back (emptied; a large one is freed).
pub fn give_out(mut out: Vec<u8>) {
    if out.capacity() > 4 * SIZE {
        return;
    }
    out.clear();
    FREE_OUT.with_borrow_mut(|free| {
        if free.len() < KEPT {
            free.push(out);
        }
    });
}
