//! Tolerating a stray CR at the end of an HTTP/1 field value (RFC 9110 §5.5),
//! and nowhere else.
//!
//! The seed's header walkthrough extracts the session value with
//! `grep "session-a" | awk '{print $3}'`, which keeps the `\r` that ended the
//! response line, so `curl -H "Session-A: $HEADER"` sends
//! `Session-A: <token>\r\r\n`. A strict parser (hyper's) rejects the bare CR
//! and the user gets a 400. RFC 9110 §5.5 lets a recipient replace CR, LF or
//! NUL inside a field value with SP before processing it. [`StrayCr`] does
//! that, on the raw bytes before hyper sees them, for exactly one shape:
//!
//! * in a header line that has a `:` before it, a run of at most
//!   [`MAX_TRAILING_CRS`] CRs directly before the line's CRLF becomes spaces
//!   (`Session-A: tok\r\r\n` → `Session-A: tok \r\n`); that only adds
//!   trailing whitespace to the value, which parsers trim, so framing and
//!   every other byte stay as they were;
//! * a CR anywhere else (in the request line, in a field name, inside a value
//!   before other bytes as in `X: 1\rContent-Length: 35`, on the empty line
//!   that ends the head) is left alone, so hyper answers 400, as HAProxy does.
//!   A proxy in front that took a bare CR for a line end would otherwise see
//!   different headers than we do. After such a CR the scanner stops
//!   rewriting: hyper closes the connection after its 400.
//!
//! To know whether a CR run ends its line, the run is held back (at most
//! [`MAX_TRAILING_CRS`] + 1 bytes) until the next byte is known. The end of
//! the head is tracked; a body announced by `Content-Length` passes through
//! untouched, byte-exactly, and the next pipelined head is scanned again.
//! `Transfer-Encoding`, `Upgrade`, `CONNECT`, the h2 preface
//! (`PRI * HTTP/2.0`), or a head this scanner cannot follow switch the
//! connection to plain pass-through for good: the bytes then are bodies,
//! tunnels or HTTP/2 frames, and rewriting them would corrupt them.
//!
//! Writes pass straight through. The scan is a single pass with O(1) state;
//! runs of head bytes without CR or LF are skipped eight bytes at a time for
//! their first [`SHORT`] bytes, and with `memchr2` beyond
//! ([`WordsThenMemchr`]): most head lines end within those bytes, where a
//! call into `memchr` costs more than it saves; the bench `benches/scans.rs`
//! measures both ways and this one in the same run.

use std::io;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const SP: u8 = b' ';
/// The start of a header line this scanner keeps: enough for the names and
/// values it needs (`transfer-encoding:`, a `content-length` number).
const LINE_KEEP: usize = 64;
/// The longest run of stray CRs tolerated at the end of a field value. The
/// seed's `awk` case has one; a longer run is refused like any other bare CR.
pub const MAX_TRAILING_CRS: usize = 8;
/// Room for bytes read with a caller's buffer too small for the held CRs
/// plus one fresh byte: at most `MAX_TRAILING_CRS + 1` held, and more.
const STASH: usize = 32;

/// How the scanner finds bytes in a head. The gateway uses
/// [`WordsThenMemchr`]; the bench `benches/scans.rs` also runs the scanner
/// with hand-written loops only and with `memchr` only (issue 17, point 7).
#[doc(hidden)]
pub trait Find {
    /// How many leading bytes of `data` are neither CR nor LF.
    fn plain_run(data: &[u8]) -> usize;
    /// Where the first `:` of `data` is.
    fn colon(data: &[u8]) -> Option<usize>;
}

/// Up to this many bytes, a search runs inline, word by word; beyond, it
/// calls `memchr`. In the bench (one run, medians of the whole scan): on the
/// seed's curl head, whose lines are short, `memchr` alone took ×1.12 the
/// hand loops' time and this way ×0.88; on a 1 KiB browser head ×1.02 and
/// ×1.00; on a 16 KiB head, whose cookie line is long, ×0.28 and ×0.26.
pub const SHORT: usize = 64;

/// [`Find`] as the gateway does it: the first [`SHORT`] bytes inline, the
/// rest with `memchr2` (CR or LF) or `memchr` (`:`).
#[doc(hidden)]
#[derive(Debug)]
pub enum WordsThenMemchr {}

// Inline: a call per line costs more than the search on most lines.
impl Find for WordsThenMemchr {
    #[inline]
    fn plain_run(data: &[u8]) -> usize {
        words_then_memchr(data, SHORT)
    }

    #[inline]
    fn colon(data: &[u8]) -> Option<usize> {
        if data.len() <= SHORT {
            data.iter().position(|&b| b == b':')
        } else {
            memchr::memchr(b':', data)
        }
    }
}

/// How many leading bytes of `data` are neither CR nor LF: eight bytes at a
/// time, the first CR or LF in a word located from its bit mask, then byte
/// by byte for the last few bytes. Inline, and faster than a call into
/// `memchr2` on a short line. The hand loop alone, for the bench.
#[doc(hidden)]
#[inline]
pub fn plain_run_words(data: &[u8]) -> usize {
    words_then_memchr(data, usize::MAX)
}

/// [`plain_run_words`] until `limit` bytes (a multiple of 8) are found
/// plain, then `memchr2` for the rest.
#[inline]
fn words_then_memchr(data: &[u8], limit: usize) -> usize {
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
        if i == limit {
            return i + memchr::memchr2(CR, LF, &data[i..]).unwrap_or(data.len() - i);
        }
    }
    while i < data.len() && data[i] != CR && data[i] != LF {
        i += 1;
    }
    i
}

/// Where in the request stream the scanner is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// In a request head: end-of-value CRs are rewritten.
    Head,
    /// In a `Content-Length` body: this many bytes pass untouched.
    Body(u64),
    /// Tunnel, chunked body, HTTP/2, or a head with a CR hyper will refuse:
    /// everything passes untouched.
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

/// An `AsyncRead + AsyncWrite` wrapper that rewrites stray CRs at the end of
/// HTTP/1 request field values into spaces; see the [module docs](self).
#[derive(Debug)]
pub struct StrayCr<S> {
    inner: S,
    mode: Mode,
    head: HeadFacts,
    line: [u8; LINE_KEEP],
    line_len: usize,
    /// The current line is longer than [`LINE_KEEP`].
    line_long: bool,
    /// The current line has a `:` beyond its first [`LINE_KEEP`] bytes
    /// (a `:` among those is looked for in `line` only when a stray CR
    /// asks, not on every line): a CR after it may be in a field value.
    colon: bool,
    /// CRs read but not yet passed on: whether they end their line is not
    /// known yet. They are the last bytes read, in a head.
    held: usize,
    /// Final bytes read for a caller whose buffer had no room for them.
    stash: [u8; STASH],
    stash_at: usize,
    stash_len: usize,
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
            colon: false,
            held: 0,
            stash: [0; STASH],
            stash_at: 0,
            stash_len: 0,
        }
    }

    /// Whether the scanner has stopped rewriting for this connection.
    pub fn is_passthrough(&self) -> bool {
        self.mode == Mode::Passthrough
    }

    /// Scans raw bytes in place. Returns how many are final; the rest (a run
    /// of CRs in a head whose successor is unknown, at most
    /// [`MAX_TRAILING_CRS`] + 1 of them) must be held until the next read.
    /// `eof` says no more bytes will come.
    pub(crate) fn scan(&mut self, data: &mut [u8], eof: bool) -> usize {
        self.scan_with::<WordsThenMemchr>(data, eof)
    }

    /// [`scan`](Self::scan), finding bytes with `F`.
    fn scan_with<F: Find>(&mut self, data: &mut [u8], eof: bool) -> usize {
        let mut i = 0;
        while i < data.len() {
            let step = match self.mode {
                Mode::Passthrough => return data.len(),
                Mode::Body(left) => ControlFlow::Continue(i + self.pass_body(left, data.len() - i)),
                Mode::Head => self.head_step::<F>(data, i, eof),
            };
            match step {
                ControlFlow::Continue(next) => i = next,
                ControlFlow::Break(done) => return done,
            }
        }
        data.len()
    }

    /// Lets up to `ready` bytes of a body with `left` bytes to go pass;
    /// returns how many.
    fn pass_body(&mut self, left: u64, ready: usize) -> usize {
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(ready);
        let left = left - take as u64;
        self.mode = if left == 0 {
            Mode::Head
        } else {
            Mode::Body(left)
        };
        take
    }

    /// Follows the head bytes at `data[i]`: a run without CR or LF, an LF,
    /// a CR LF, or a run of CRs. `Continue` with the index after them, or
    /// `Break` with how many bytes of `data` are final.
    fn head_step<F: Find>(
        &mut self,
        data: &mut [u8],
        i: usize,
        eof: bool,
    ) -> ControlFlow<usize, usize> {
        // Most head bytes are neither CR nor LF: they only extend the current
        // line, so skip them in one go.
        let run = F::plain_run(&data[i..]);
        if run > 0 {
            self.push_run::<F>(&data[i..i + run]);
            return ControlFlow::Continue(i + run);
        }
        if data[i] == LF {
            self.head_byte::<F>(LF);
            return ControlFlow::Continue(i + 1);
        }
        // A CR. The usual line end, CR LF, in one step (what `cr_run` does
        // with a run of one CR).
        if data.get(i + 1) == Some(&LF) {
            self.head_byte::<F>(CR);
            self.head_byte::<F>(LF);
            return ControlFlow::Continue(i + 2);
        }
        self.cr_run::<F>(data, i, eof)
    }

    /// Follows the run of CRs at `data[i]`: stray ones at the end of a field
    /// value become spaces; any other is left for hyper to refuse. Returns
    /// as [`head_step`](Self::head_step) does.
    fn cr_run<F: Find>(
        &mut self,
        data: &mut [u8],
        i: usize,
        eof: bool,
    ) -> ControlFlow<usize, usize> {
        let crs = data[i..].iter().take_while(|&&b| b == CR).count();
        match data.get(i + crs) {
            // The last CR ends the line; any before it are stray.
            Some(&LF) => {
                let stray = crs - 1;
                if stray > 0 {
                    if stray > MAX_TRAILING_CRS || !self.in_field_value::<F>() {
                        return ControlFlow::Break(self.refuse(data.len()));
                    }
                    data[i..i + stray].fill(SP);
                }
            }
            // A CR inside a line: hyper refuses it as it is.
            Some(_) => return ControlFlow::Break(self.refuse(data.len())),
            // The stream ends here: hyper judges the CRs.
            None if eof => {}
            None if crs <= MAX_TRAILING_CRS + 1 => return ControlFlow::Break(i),
            None => return ControlFlow::Break(self.refuse(data.len())),
        }
        for &b in &data[i..i + crs] {
            self.head_byte::<F>(b);
        }
        ControlFlow::Continue(i + crs)
    }

    /// Leaves the rest of the stream untouched: the head holds a CR hyper
    /// answers with 400, after which it closes the connection.
    fn refuse(&mut self, len: usize) -> usize {
        self.mode = Mode::Passthrough;
        len
    }

    /// A header line (not the request line, not an empty line) with a `:`
    /// seen so far: what follows the colon is the field value.
    fn in_field_value<F: Find>(&self) -> bool {
        self.head.started && (self.colon || F::colon(&self.line[..self.line_len]).is_some())
    }

    /// Follows a run of head bytes none of which is CR or LF: the same as
    /// [`head_byte`](Self::head_byte) on each.
    fn push_run<F: Find>(&mut self, run: &[u8]) {
        let room = LINE_KEEP - self.line_len;
        let take = run.len().min(room);
        self.line[self.line_len..self.line_len + take].copy_from_slice(&run[..take]);
        self.line_len += take;
        if run.len() > room {
            self.line_long = true;
            // The kept start has the colon of any field line with a name
            // shorter than LINE_KEEP: the rest is searched only without one.
            if !self.colon {
                self.colon = F::colon(&self.line).is_some() || F::colon(&run[take..]).is_some();
            }
        }
    }

    /// Follows one (already rewritten) head byte.
    fn head_byte<F: Find>(&mut self, b: u8) {
        if b != LF {
            if self.line_len < LINE_KEEP {
                self.line[self.line_len] = b;
                self.line_len += 1;
            } else {
                self.line_long = true;
                self.colon |= b == b':';
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
            self.header_line::<F>(len);
        }
        self.line_len = 0;
        self.line_long = false;
        self.colon = false;
    }

    /// Notes what a header line means for the bytes after the head.
    fn header_line<F: Find>(&mut self, len: usize) {
        let line = &self.line[..len];
        let Some(colon) = F::colon(line) else {
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

/// Rewrites a whole request stream at once: what [`StrayCr`] passes on for
/// `data`, however it arrives. For tests and fuzzing.
pub fn rewrite_all(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    let done = scan_all::<WordsThenMemchr>(&mut out);
    debug_assert_eq!(done, out.len());
    out
}

/// Scans a whole request stream in place with `F`, as a fresh connection
/// would; returns how many bytes are final (all of them). For the bench.
#[doc(hidden)]
pub fn scan_all<F: Find>(data: &mut [u8]) -> usize {
    StrayCr::new(()).scan_with::<F>(data, true)
}

impl<S: AsyncRead + Unpin> AsyncRead for StrayCr<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stash_len > 0 {
            let n = this.stash_len.min(buf.remaining());
            buf.put_slice(&this.stash[this.stash_at..this.stash_at + n]);
            this.stash_at += n;
            this.stash_len -= n;
            return Poll::Ready(Ok(()));
        }
        if this.mode == Mode::Passthrough && this.held == 0 {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // Bounded: a turn that does not return held every byte it read, so
        // `held` grew, and `scan` never holds more than MAX_TRAILING_CRS + 1.
        loop {
            let ready = if buf.remaining() > this.held {
                ready_in_place(this, cx, buf)
            } else {
                ready_via_stash(this, cx, buf)
            };
            match ready {
                Poll::Ready(Ok(true)) => continue,
                Poll::Ready(Ok(false)) => return Poll::Ready(Ok(())),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// One read into the caller's buffer after the held CRs, scanned in place.
/// `Ok(true)`: every byte read is held, read again.
fn ready_in_place<S: AsyncRead + Unpin>(
    this: &mut StrayCr<S>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<bool>> {
    let start = buf.filled().len();
    buf.put_slice(&[CR; MAX_TRAILING_CRS + 1][..this.held]);
    let before = buf.filled().len();
    match Pin::new(&mut this.inner).poll_read(cx, buf) {
        Poll::Ready(Ok(())) => {}
        other => {
            // The held CRs stay ours until fresh bytes arrive.
            buf.set_filled(start);
            return other.map_ok(|()| false);
        }
    }
    let eof = buf.filled().len() == before;
    let end = buf.filled().len();
    let done = this.scan(&mut buf.filled_mut()[start..end], eof);
    this.held = end - start - done;
    buf.set_filled(start + done);
    Poll::Ready(Ok(done == 0 && !eof))
}

/// [`ready_in_place`] for a caller's buffer without room for the held CRs
/// and a fresh byte: reads into the stash, hands out what fits.
fn ready_via_stash<S: AsyncRead + Unpin>(
    this: &mut StrayCr<S>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<bool>> {
    let mut tmp = [CR; STASH];
    let held = this.held;
    let mut rb = ReadBuf::new(&mut tmp[held..]);
    match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
        Poll::Ready(Ok(())) => {}
        other => return other.map_ok(|()| false),
    }
    let fresh = rb.filled().len();
    let eof = fresh == 0;
    let total = held + fresh;
    let done = this.scan(&mut tmp[..total], eof);
    this.held = total - done;
    let now = done.min(buf.remaining());
    buf.put_slice(&tmp[..now]);
    this.stash[..done - now].copy_from_slice(&tmp[now..done]);
    this.stash_at = 0;
    this.stash_len = done - now;
    Poll::Ready(Ok(done == 0 && !eof))
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

/// A source that hands out `data` `step` bytes per read, always ready.
struct Chunks<'a> {
    data: &'a [u8],
    pos: usize,
    step: usize,
}

impl AsyncRead for Chunks<'_> {
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

/// For the tests and the fuzz check (`fuzz/checks/stray_cr.rs`): everything
/// a [`StrayCr`] passes on for `data` handed out `step` bytes per read into
/// a buffer of `out` bytes, and whether it ended in pass-through.
#[doc(hidden)]
pub fn read_through(data: &[u8], step: usize, out: usize) -> (Vec<u8>, bool) {
    let mut s = StrayCr::new(Chunks { data, pos: 0, step });
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut got = Vec::with_capacity(data.len());
    let mut buf = vec![0u8; out];
    // Bounded: every read returns at least one byte until the end.
    for _ in 0..data.len() * 2 + 16 {
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut s).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => return (got, s.is_passthrough()),
            Poll::Ready(Ok(())) => got.extend_from_slice(rb.filled()),
            other => panic!("a source that is always ready gave {other:?}"),
        }
    }
    panic!("no end after {} reads", data.len() * 2 + 16);
}

#[cfg(test)]
mod tests {
    use super::{Find, MAX_TRAILING_CRS, SHORT, WordsThenMemchr, read_through};

    /// Runs `input` through the adapter for every read size of the source
    /// and of the reader, checking each result is `expected`.
    fn check(input: &[u8], expected: &[u8]) {
        for step in 1..=input.len().max(1) {
            for out in [1usize, 2, 3, 7, 4096] {
                let (got, _) = read_through(input, step, out);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(expected),
                    "source step {step}, reader buffer {out}"
                );
            }
        }
    }

    #[test]
    fn stray_cr_in_a_field_value_becomes_a_space() {
        check(
            b"GET /get HTTP/1.1\r\nSession-A: tok\r\r\nHost: x\r\n\r\n",
            b"GET /get HTTP/1.1\r\nSession-A: tok \r\nHost: x\r\n\r\n",
        );
    }

    #[test]
    fn several_stray_crs_and_pipelined_heads() {
        check(
            b"GET / HTTP/1.1\r\nA: 1\r\r\r\n\r\nGET / HTTP/1.1\r\nB: 2\r\r\nC:\r\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: 1  \r\n\r\nGET / HTTP/1.1\r\nB: 2 \r\nC: \r\n\r\n",
        );
        let most = format!(
            "GET / HTTP/1.1\r\nA: 1{}\r\n\r\n",
            "\r".repeat(MAX_TRAILING_CRS)
        );
        let spaced = format!(
            "GET / HTTP/1.1\r\nA: 1{}\r\n\r\n",
            " ".repeat(MAX_TRAILING_CRS)
        );
        check(most.as_bytes(), spaced.as_bytes());
    }

    /// A CR anywhere but at the end of a field value reaches hyper as it
    /// came (hyper answers 400), and nothing after it is rewritten.
    #[test]
    fn crs_elsewhere_are_left_for_hyper_to_refuse() {
        let too_many = format!(
            "GET / HTTP/1.1\r\nA: 1{}\r\nB: 2\r\r\n\r\n",
            "\r".repeat(MAX_TRAILING_CRS + 1)
        );
        for input in [
            &b"GET /a\rHTTP/1.1\r\nHost: x\r\nB: 2\r\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\r\nHost: x\r\n\r\n",
            b"GET\r/ HTTP/1.1\r\nHost: x\r\n\r\n",
            b"\r\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: 1\rContent-Length: 35\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r b\r\nB: 2\r\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\r\r b\r\n\r\n",
            b"GET / HTTP/1.1\r\nX\r: 1\r\nB: 2\r\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-Name\r\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n",
            too_many.as_bytes(),
        ] {
            check(input, input);
            let (_, passthrough) = read_through(input, 3, 4096);
            assert!(passthrough, "{:?}", String::from_utf8_lossy(input));
        }
        // Only the head with the bad CR is left alone.
        check(
            b"GET / HTTP/1.1\r\nA: 1\r\r\n\r\nGET / HTTP/1.1\r\nX: 1\rY: 2\r\r\n\r\n",
            b"GET / HTTP/1.1\r\nA: 1 \r\n\r\nGET / HTTP/1.1\r\nX: 1\rY: 2\r\r\n\r\n",
        );
    }

    #[test]
    fn a_long_field_name_still_has_a_value() {
        let name = "X-".repeat(50);
        let input = format!("GET / HTTP/1.1\r\n{name}: v\r\r\n\r\n");
        let expected = format!("GET / HTTP/1.1\r\n{name}: v \r\n\r\n");
        check(input.as_bytes(), expected.as_bytes());
    }

    #[test]
    fn content_length_bodies_pass_untouched() {
        check(
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\na\rb\rcGET / HTTP/1.1\r\nX: y\r\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\na\rb\rcGET / HTTP/1.1\r\nX: y \r\n\r\n",
        );
    }

    #[test]
    fn chunked_upgrade_connect_and_h2_stop_rewriting() {
        for input in [
            &b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na\rb\r\n0\r\n\r\nGET / HTTP/1.1\r\nX: \r\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n\r\x00\r\r",
            b"CONNECT a:1 HTTP/1.1\r\n\r\n\r\r",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\r\x01",
            // Lengths this scanner will not guess at.
            b"POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n\r\r\r\r\r",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n\r\r",
        ] {
            check(input, input);
        }
    }

    #[test]
    fn a_cr_at_the_end_of_the_stream_is_kept() {
        check(b"GET / HTTP/1.1\r", b"GET / HTTP/1.1\r");
        check(b"GET / HTTP/1.1\r\nA: 1\r\r", b"GET / HTTP/1.1\r\nA: 1\r\r");
        check(b"\r", b"\r");
        check(b"", b"");
    }

    #[test]
    fn plain_run_stops_at_the_first_cr_or_lf() {
        let data: Vec<u8> = (0u8..=255).cycle().take(600).collect();
        for start in 0..data.len() {
            for end in start..data.len().min(start + 2 * SHORT + 20) {
                let slice = &data[start..end];
                let expected = slice
                    .iter()
                    .position(|&b| b == b'\r' || b == b'\n')
                    .unwrap_or(slice.len());
                assert_eq!(
                    WordsThenMemchr::plain_run(slice),
                    expected,
                    "{start}..{end}"
                );
            }
        }
        let long = [b"x".repeat(37), b"\r".to_vec(), b"y".repeat(20)].concat();
        assert_eq!(WordsThenMemchr::plain_run(&long), 37);
        assert_eq!(WordsThenMemchr::plain_run(&b"z".repeat(50)), 50);
        // Beyond SHORT, memchr2 takes over.
        let longer = [b"x".repeat(SHORT + 37), b"\n".to_vec()].concat();
        assert_eq!(WordsThenMemchr::plain_run(&longer), SHORT + 37);
        assert_eq!(WordsThenMemchr::plain_run(&b"z".repeat(500)), 500);
        let mut line = b"x".repeat(200);
        line[150] = b':';
        assert_eq!(WordsThenMemchr::colon(&line), Some(150));
        assert_eq!(WordsThenMemchr::colon(&line[..SHORT]), None);
        assert_eq!(WordsThenMemchr::colon(b"Host: x"), Some(4));
    }

    #[test]
    fn long_lines_and_a_late_content_length() {
        let long = "v".repeat(200);
        let input = format!(
            "POST / HTTP/1.1\r\nX-Long: {long}\r\r\nContent-Length: 3\r\n\r\n\r\r\rGET / HTTP/1.1\r\nA: b\r\r\n\r\n"
        );
        let expected = format!(
            "POST / HTTP/1.1\r\nX-Long: {long} \r\nContent-Length: 3\r\n\r\n\r\r\rGET / HTTP/1.1\r\nA: b \r\n\r\n"
        );
        check(input.as_bytes(), expected.as_bytes());
    }

    #[test]
    fn passthrough_is_reported() {
        let (_, passthrough) = read_through(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 100, 4096);
        assert!(passthrough);
    }
}
