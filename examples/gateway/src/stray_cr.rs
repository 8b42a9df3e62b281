//! Tolerating a stray CR in HTTP/1 request heads (RFC 9110 §5.5).
//!
//! The seed's header walkthrough extracts the session value with
//! `grep "session-a" | awk '{print $3}'`, which keeps the `\r` that ended the
//! response line, so `curl -H "Session-A: $HEADER"` sends
//! `Session-A: <token>\r\r\n`. A strict parser (hyper's) rejects the bare CR
//! and the user gets a 400. RFC 9110 §5.5 lets a recipient replace CR, LF or
//! NUL inside a field value with SP before processing it, which is what
//! [`StrayCr`] does, on the raw bytes, before hyper sees them:
//!
//! * while in a request head, a CR not followed by LF becomes a space (a CR at
//!   the end of one read is held back until the next byte is known);
//! * the end of the head (an empty line) is tracked; a body announced by
//!   `Content-Length` is passed through untouched, byte-exactly, and the next
//!   pipelined head is rewritten again;
//! * `Transfer-Encoding`, `Upgrade`, `CONNECT`, the h2 preface
//!   (`PRI * HTTP/2.0`), or a head this scanner cannot follow switch the
//!   connection to plain pass-through for good: the bytes then are bodies,
//!   tunnels or HTTP/2 frames, and rewriting them would corrupt them.
//!
//! Writes pass straight through. The scan is a single pass with O(1) state;
//! runs of head bytes without CR or LF are skipped eight bytes at a time.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const SP: u8 = b' ';
/// The start of a header line this scanner keeps: enough for the names and
/// values it needs (`transfer-encoding:`, a `content-length` number).
const LINE_KEEP: usize = 64;

/// Where in the request stream the scanner is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// In a request head: stray CRs are rewritten.
    Head,
    /// In a `Content-Length` body: this many bytes pass untouched.
    Body(u64),
    /// Tunnel, chunked body or HTTP/2: everything passes untouched.
    Passthrough,
}

/// What the head seen so far says about the bytes after it.
#[derive(Clone, Copy, Debug, Default)]
struct HeadFacts {
    /// A non-empty line has been seen (empty lines before the request line
    /// are tolerated by parsers and ignored here).
    started: bool,
    /// `Content-Length`, if given.
    content_length: Option<u64>,
    /// Something after which the stream is no longer a series of heads and
    /// `Content-Length` bodies.
    opaque: bool,
}

/// An `AsyncRead + AsyncWrite` wrapper that rewrites stray CRs in HTTP/1
/// request heads into spaces; see the [module docs](self).
#[derive(Debug)]
pub struct StrayCr<S> {
    inner: S,
    mode: Mode,
    head: HeadFacts,
    line: [u8; LINE_KEEP],
    line_len: usize,
    /// The current line is longer than [`LINE_KEEP`].
    line_long: bool,
    /// A raw byte read but not yet scanned (a CR whose successor was not
    /// known yet, or the byte after one).
    carry: Option<u8>,
}

impl<S> StrayCr<S> {
    /// Wraps a freshly accepted connection.
    pub fn new(inner: S) -> Self {
        StrayCr {
            inner,
            mode: Mode::Head,
            head: HeadFacts::default(),
            line: [0; LINE_KEEP],
            line_len: 0,
            line_long: false,
            carry: None,
        }
    }

    /// Whether the scanner has stopped rewriting for this connection.
    #[allow(dead_code)] // used by the unit tests
    pub fn is_passthrough(&self) -> bool {
        self.mode == Mode::Passthrough
    }

    /// Scans raw bytes in place. Returns how many are final; the rest (at
    /// most one trailing CR in a head, whose successor is unknown) must be
    /// carried to the next read. `eof` says no more bytes will come.
    fn scan(&mut self, data: &mut [u8], eof: bool) -> usize {
        let mut i = 0;
        while i < data.len() {
            match self.mode {
                Mode::Passthrough => return data.len(),
                Mode::Body(left) => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(data.len() - i);
                    i += take;
                    let left = left - take as u64;
                    self.mode = if left == 0 {
                        Mode::Head
                    } else {
                        Mode::Body(left)
                    };
                }
                Mode::Head => {
                    // Most head bytes are neither CR nor LF: they only extend
                    // the current line, so skip them in one go.
                    let run = plain_run(&data[i..]);
                    if run > 0 {
                        self.push_run(&data[i..i + run]);
                        i += run;
                        continue;
                    }
                    if data[i] == CR {
                        match data.get(i + 1) {
                            Some(&LF) => {}
                            Some(_) => data[i] = SP,
                            None if eof => {}
                            None => return i,
                        }
                    }
                    self.head_byte(data[i]);
                    i += 1;
                }
            }
        }
        data.len()
    }

    /// Follows a run of head bytes none of which is CR or LF: the same as
    /// [`head_byte`](Self::head_byte) on each.
    fn push_run(&mut self, run: &[u8]) {
        let room = LINE_KEEP - self.line_len;
        let take = run.len().min(room);
        self.line[self.line_len..self.line_len + take].copy_from_slice(&run[..take]);
        self.line_len += take;
        if run.len() > room {
            self.line_long = true;
        }
    }

    /// Follows one (already rewritten) head byte.
    fn head_byte(&mut self, b: u8) {
        if b != LF {
            if self.line_len < LINE_KEEP {
                self.line[self.line_len] = b;
                self.line_len += 1;
            } else {
                self.line_long = true;
            }
            return;
        }
        let mut len = self.line_len;
        if len > 0 && self.line[len - 1] == CR && !self.line_long {
            len -= 1;
        }
        let empty = len == 0 && !self.line_long;
        if empty {
            if self.head.started {
                self.end_head();
            }
        } else if !self.head.started {
            self.head.started = true;
            let line = &self.line[..len];
            if line.starts_with(b"PRI * HTTP/2.0") || line.starts_with(b"CONNECT ") {
                self.head.opaque = true;
                // Nothing after the h2 preface is a head; stop at once.
                self.mode = Mode::Passthrough;
            }
        } else {
            self.header_line(len);
        }
        self.line_len = 0;
        self.line_long = false;
    }

    /// Notes what a header line means for the bytes after the head.
    fn header_line(&mut self, len: usize) {
        let line = &self.line[..len];
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return;
        };
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"transfer-encoding") || name.eq_ignore_ascii_case(b"upgrade")
        {
            self.head.opaque = true;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok());
            match (parsed, self.head.content_length) {
                // A truncated, odd or conflicting length: let hyper judge it,
                // and do not guess where the body ends.
                (None, _) => self.head.opaque = true,
                (Some(n), Some(m)) if n != m => self.head.opaque = true,
                (Some(_), _) if self.line_long => self.head.opaque = true,
                (Some(n), _) => self.head.content_length = Some(n),
            }
        }
    }

    fn end_head(&mut self) {
        let facts = std::mem::take(&mut self.head);
        self.mode = match (facts.opaque, facts.content_length) {
            (true, _) => Mode::Passthrough,
            (false, Some(n)) if n > 0 => Mode::Body(n),
            (false, _) => Mode::Head,
        };
    }
}

/// How many leading bytes of `data` are neither CR nor LF: eight bytes at a
/// time, the first CR or LF in a word located from its bit mask, then byte
/// by byte for the last few bytes.
fn plain_run(data: &[u8]) -> usize {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // The high bit of each byte of `v` that is zero, plus possibly of bytes
    // above a zero one (a borrow only moves upwards): the lowest set bit is
    // always a real zero byte.
    let zeros = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let mut i = 0;
    // Bounded by data.len() / 8.
    while let Some(word) = data.get(i..i + 8) {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        // Little-endian: byte k of the word is bits 8k..8k+8.
        let w = u64::from_le_bytes(bytes);
        let hits = zeros(w ^ (ONES * u64::from(CR))) | zeros(w ^ (ONES * u64::from(LF)));
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < data.len() && data[i] != CR && data[i] != LF {
        i += 1;
    }
    i
}

impl<S: AsyncRead + Unpin> AsyncRead for StrayCr<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.mode == Mode::Passthrough && this.carry.is_none() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let start = buf.filled().len();
        // Bounded: each turn either returns or consumes a read that ended in
        // a lone CR, which then sits at the front of a larger buffer, so a
        // second turn always has room for it plus fresh bytes.
        for _ in 0..64 {
            if buf.remaining() == 1 && this.carry.is_some() {
                return this.poll_read_one(cx, buf);
            }
            if let Some(c) = this.carry {
                buf.put_slice(&[c]);
            }
            let before = buf.filled().len();
            let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
            match polled {
                Poll::Pending => {
                    // Keep the carried byte ours until fresh bytes arrive.
                    buf.set_filled(start);
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => {
                    buf.set_filled(start);
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(())) => {}
            }
            let eof = buf.filled().len() == before;
            this.carry = None;
            let end = buf.filled().len();
            let done = this.scan(&mut buf.filled_mut()[start..end], eof);
            if start + done < end {
                this.carry = Some(buf.filled()[start + done]);
                buf.set_filled(start + done);
            }
            if done > 0 || eof {
                return Poll::Ready(Ok(()));
            }
        }
        // Only a peer sending single CRs one read at a time gets here.
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many reads of a lone CR",
        )))
    }
}

impl<S: AsyncRead + Unpin> StrayCr<S> {
    /// Room for one byte and a byte carried: a non-CR goes out at once; a CR
    /// needs its successor, read alone, which is carried in turn.
    fn poll_read_one(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(c) = self.carry else {
            return Poll::Ready(Ok(()));
        };
        if c != CR {
            // Only a CR can be held back by `scan`, so this byte is final.
            let mut one = [c];
            let _ = self.scan(&mut one, false);
            buf.put_slice(&one);
            self.carry = None;
            return Poll::Ready(Ok(()));
        }
        let mut next = [0u8; 1];
        let mut rb = ReadBuf::new(&mut next);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut rb))?;
        let got = !rb.filled().is_empty();
        // A carried CR comes from a head, so the mode is still `Head`.
        let out = if !got || next[0] == LF { CR } else { SP };
        self.head_byte(out);
        buf.put_slice(&[out]);
        self.carry = got.then_some(next[0]);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StrayCr<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::StrayCr;
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

    /// Hands out `data` in reads of `step` bytes.
    struct Chunks {
        data: Vec<u8>,
        pos: usize,
        step: usize,
    }

    impl AsyncRead for Chunks {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let n = self
                .step
                .min(self.data.len() - self.pos)
                .min(buf.remaining());
            let pos = self.pos;
            buf.put_slice(&self.data[pos..pos + n]);
            self.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    /// Runs `input` through the adapter for every read size of the source
    /// and of the reader, checking each result is `expected`.
    async fn check(input: &[u8], expected: &[u8]) {
        for step in 1..=input.len().max(1) {
            for out in [1usize, 2, 3, 7, 4096] {
                let mut s = StrayCr::new(Chunks {
                    data: input.to_vec(),
                    pos: 0,
                    step,
                });
                let mut got = Vec::new();
                let mut buf = vec![0u8; out];
                for _ in 0..input.len() * 4 + 8 {
                    let n = s.read(&mut buf).await.expect("read");
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(expected),
                    "source step {step}, reader buffer {out}"
                );
            }
        }
    }

    #[tokio::test]
    async fn stray_cr_in_a_field_value_becomes_a_space() {
        check(
            b"GET /get HTTP/1.1\r\nSession-A: tok\r\r\nHost: x\r\n\r\n",
            b"GET /get HTTP/1.1\r\nSession-A: tok \r\nHost: x\r\n\r\n",
        )
        .await;
    }

    #[tokio::test]
    async fn several_stray_crs_and_pipelined_heads() {
        check(
            b"GET / HTTP/1.1\r\nA: \r1\r\r\n\r\nGET / HTTP/1.1\r\nB: 2\r\r\n\r\n",
            b"GET / HTTP/1.1\r\nA:  1 \r\n\r\nGET / HTTP/1.1\r\nB: 2 \r\n\r\n",
        )
        .await;
    }

    #[tokio::test]
    async fn content_length_bodies_pass_untouched() {
        check(
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\na\rb\rcGET / HTTP/1.1\r\nX: y\r\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\na\rb\rcGET / HTTP/1.1\r\nX: y \r\n\r\n",
        )
        .await;
    }

    #[tokio::test]
    async fn chunked_upgrade_connect_and_h2_stop_rewriting() {
        for input in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na\rb\r\n0\r\n\r\nGET / HTTP/1.1\r\nX: \r\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\r\x00\r\r",
            b"CONNECT a:1 HTTP/1.1\r\n\r\n\r\r",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\r\x01",
            // Lengths this scanner will not guess at.
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n\r\r\r\r\r",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n\r\r",
        ] {
            check(input, input).await;
        }
    }

    #[tokio::test]
    async fn a_cr_at_the_end_of_the_stream_is_kept() {
        check(b"GET / HTTP/1.1\r", b"GET / HTTP/1.1\r").await;
        check(b"\r", b"\r").await;
        check(b"", b"").await;
    }

    #[test]
    fn plain_run_stops_at_the_first_cr_or_lf() {
        let data: Vec<u8> = (0u8..=255).cycle().take(600).collect();
        for start in 0..data.len() {
            for end in start..data.len().min(start + 40) {
                let slice = &data[start..end];
                let expected = slice
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(slice.len());
                assert_eq!(super::plain_run(slice), expected, "{start}..{end}");
            }
        }
        let long = [b"x".repeat(37), b"\r".to_vec(), b"y".repeat(20)].concat();
        assert_eq!(super::plain_run(&long), 37);
        assert_eq!(super::plain_run(&b"z".repeat(50)), 50);
    }

    #[tokio::test]
    async fn long_lines_and_a_late_content_length() {
        let long = "v".repeat(200);
        let input = format!(
            "POST / HTTP/1.1\r\nX-Long: {long}\r\r\nContent-Length: 3\r\n\r\n\r\r\rGET / HTTP/1.1\r\nA: b\r\r\n\r\n"
        );
        let expected = format!(
            "POST / HTTP/1.1\r\nX-Long: {long} \r\nContent-Length: 3\r\n\r\n\r\r\rGET / HTTP/1.1\r\nA: b \r\n\r\n"
        );
        check(input.as_bytes(), expected.as_bytes()).await;
    }

    #[tokio::test]
    async fn passthrough_is_reported() {
        let mut s = StrayCr::new(Chunks {
            data: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            pos: 0,
            step: 100,
        });
        let mut v = Vec::new();
        s.read_to_end(&mut v).await.expect("read");
        assert!(s.is_passthrough());
    }
}
