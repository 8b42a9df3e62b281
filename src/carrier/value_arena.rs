//! A per-thread buffer that rewritten header values are carved from.
//!
//! Stripping the session cookie from a `Cookie` header that holds other
//! cookies needs a new header value on every request. `HeaderValue` can
//! take over a `Bytes` without copying, and `Bytes` carved from one shared
//! buffer cost no allocation each: once every value carved from the buffer
//! has been dropped (requests finish), the buffer is reused in place. Values
//! still alive (requests in flight) keep their chunk; a new one is taken when
//! the current chunk is full, so memory held is bounded by the values alive,
//! as with the read buffers hyper parses headers out of.

use bytes::{Bytes, BytesMut};
use std::cell::RefCell;

/// Size of a chunk: forty `Cookie` values of a typical 100 bytes.
const CHUNK: usize = 4096;

thread_local! {
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Runs `write` on an empty buffer with room for `len` bytes; keeps what it
/// wrote if it returns true, discards it otherwise.
pub(super) fn write(len: usize, write: impl FnOnce(&mut BytesMut) -> bool) -> Option<Bytes> {
    let mut write = Some(write);
    let mut carve = |buf: &mut BytesMut| {
        let write = write.take()?;
        if buf.capacity() < len {
            // Reuses the chunk in place when nothing carved from it is
            // alive, else starts a new one.
            buf.reserve(len.max(CHUNK));
        }
        if !write(buf) {
            buf.clear();
            return None;
        }
        if buf.is_empty() {
            return Some(Bytes::new());
        }
        Some(buf.split().freeze())
    };
    match ARENA.try_with(|arena| carve(&mut arena.borrow_mut())) {
        Ok(carved) => carved,
        // During thread teardown: a buffer of its own.
        Err(_) => carve(&mut BytesMut::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carved_stay_intact_while_the_chunk_is_reused() {
        let a = write(3, |b| {
            b.extend_from_slice(b"a=1");
            true
        })
        .unwrap();
        assert!(
            write(3, |b| {
                b.extend_from_slice(b"zzz");
                false
            })
            .is_none()
        );
        let mut many = Vec::new();
        for i in 0..3 * CHUNK / 10 {
            many.push(
                write(10, |b| {
                    b.extend_from_slice(format!("{i:010}").as_bytes());
                    true
                })
                .unwrap(),
            );
        }
        assert_eq!(&a[..], b"a=1");
        for (i, v) in many.iter().enumerate() {
            assert_eq!(&v[..], format!("{i:010}").as_bytes());
        }
        assert_eq!(write(0, |_| true).unwrap().len(), 0);
    }
}
