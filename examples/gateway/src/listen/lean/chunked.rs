//! Chunked bodies (RFC 9112 §7.1) forwarded as they are: the framing is
//! followed, never rewritten, so that the connection stays in step and
//! the end of the body is known.
//!
//! Skeleton (issue 21): signatures agreed between the helpers; the bodies
//! are filled in by the head helper.

/// Why a chunked body is malformed (400 from a client, 502 from a
/// backend). The reason is for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body: {0}")]
pub struct BadChunk(pub &'static str);

/// Where a chunked body's framing stands, fed bytes as they arrive.
#[derive(Clone, Debug, Default)]
pub struct Chunked {
    state: u8,
}

impl Chunked {
    /// At the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Follows `bytes`, the next bytes of the stream. Returns how many of
    /// them belong to the body: all of them, or fewer when the body (last
    /// chunk, trailers, final CRLF) ends inside `bytes`, after which
    /// [`done`](Self::done) is true. Chunk-size lines and trailer sections
    /// are bounded (a few KiB), as HAProxy bounds them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, BadChunk> {
        let _ = (bytes, self.state);
        todo!("issue 21: head helper")
    }

    /// The body has ended.
    pub fn done(&self) -> bool {
        todo!("issue 21: head helper")
    }
}
