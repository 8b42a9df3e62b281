//! Chunked bodies (RFC 9112 §7.1) forwarded as they are: the framing is
//! followed, never rewritten, so that the connection stays in step and
//! the end of the body is known.
//!
//! Never looser than hyper's decoder: every line ends in CRLF (a bare LF
//! or a CR not followed by LF is refused, in size lines, after data and in
//! trailers); the size is hex digits, at most 16 of them, then either the
//! CRLF or `;extensions` (no control bytes but HTAB), with optional spaces
//! or tabs before the `;` (RFC 9112's BWS). Spaces between the size and the
//! CRLF, which hyper reads, are refused: the body is forwarded as it came,
//! and RFC 9112 §7.1 has no such form, so a backend might read it otherwise
//! (the lean path may be stricter than hyper, never looser).
//! A size line, and the trailer section, are bounded by [`MAX_LINE`] bytes
//! (HAProxy bounds them too), so a client cannot keep the gateway reading
//! one line forever; the trailer fields by [`MAX_TRAILERS`] (or the count
//! given), and a body's chunk extensions by hyper's 16 KiB.

use super::head::is_token_byte;

/// The longest chunk-size line, and the longest trailer section.
pub const MAX_LINE: usize = 4096;

/// The most trailer fields, unless told otherwise: hyper's default
/// (`--max-headers` sets hyper's; [`Chunked::with_max_trailers`] takes it).
pub const MAX_TRAILERS: usize = 100;

/// Chunk-extension bytes a whole body may carry, as hyper allows (it
/// refuses the 16 384th): extensions cost reading but carry nothing here.
const MAX_EXTENSION_BYTES: usize = 16 * 1024 - 1;

/// The most hex digits of a chunk size (`u64`).
const MAX_DIGITS: u8 = 16;

/// Why a chunked body is malformed (400 from a client, 502 from a
/// backend). The reason is for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body: {0}")]
pub struct BadChunk(pub &'static str);

/// Where in the chunked framing the next byte falls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// The first digit of a chunk size.
    SizeStart,
    /// More digits, spaces, `;` or CR.
    Size,
    /// Spaces or tabs after the size: more of them, or `;`.
    SizeSpace,
    /// A chunk extension, up to CR.
    Extension,
    /// The LF ending a size line.
    SizeLf,
    /// Chunk data: this many bytes are left.
    Data(u64),
    /// The CR after chunk data.
    DataCr,
    /// The LF after chunk data.
    DataLf,
    /// After the last chunk, at the start of a trailer line (or the final
    /// CRLF).
    LineStart,
    /// Inside a trailer field line, up to CR.
    Trailer,
    /// The LF ending a trailer line.
    TrailerLf,
    /// The LF of the final CRLF.
    EndLf,
    /// The body has ended.
    Done,
}

/// Where a chunked body's framing stands, fed bytes as they arrive.
#[derive(Clone, Debug)]
pub struct Chunked {
    state: State,
    /// The chunk size read so far.
    size: u64,
    /// Hex digits read in the current size.
    digits: u8,
    /// Bytes of the current size line, or of the trailer section so far.
    line: usize,
    /// The current trailer line has had its colon.
    colon: bool,
    /// Chunk-extension bytes in the body so far.
    extension_bytes: usize,
    /// Trailer fields so far, and the most allowed.
    trailers: usize,
    max_trailers: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Self::with_max_trailers(MAX_TRAILERS)
    }
}

impl Chunked {
    /// At the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// At the start of a body that may carry at most `max` trailer fields
    /// (`--max-headers`, as the hyper path allows).
    pub fn with_max_trailers(max: usize) -> Self {
        Chunked {
            state: State::SizeStart,
            size: 0,
            digits: 0,
            line: 0,
            colon: false,
            extension_bytes: 0,
            trailers: 0,
            max_trailers: max,
        }
    }

    /// Follows `bytes`, the next bytes of the stream. Returns how many of
    /// them belong to the body: all of them, or fewer when the body (last
    /// chunk, trailers, final CRLF) ends inside `bytes`, after which
    /// [`done`](Self::done) is true. Chunk-size lines and trailer sections
    /// are bounded (a few KiB), as HAProxy bounds them.
    ///
    /// After an error the stream is out of step for good: the connection
    /// is to be closed (bytes before the error may already be forwarded;
    /// the receiver then sees a body cut short, never a second message).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, BadChunk> {
        let mut at = 0;
        while at < bytes.len() {
            match self.state {
                State::Done => break,
                State::Data(left) => {
                    // Data is skipped in one go, not looked at.
                    let room = bytes.len() - at;
                    let take = usize::try_from(left).map_or(room, |left| left.min(room));
                    at += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                }
                _ => {
                    self.step(bytes[at])?;
                    at += 1;
                }
            }
        }
        Ok(at)
    }

    /// The body has ended.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// Takes one framing byte (never a data byte).
    fn step(&mut self, byte: u8) -> Result<(), BadChunk> {
        self.state = match self.state {
            State::SizeStart | State::Size | State::SizeSpace | State::Extension => {
                self.count_line(MAX_LINE, "chunk-size line too long")?;
                self.size_line(byte)?
            }
            State::SizeLf => {
                self.count_line(MAX_LINE, "chunk-size line too long")?;
                self.size_lf(byte)?
            }
            State::DataCr => expect(byte, b'\r', State::DataLf, "no CR after chunk data")?,
            State::DataLf => expect(byte, b'\n', State::SizeStart, "no LF after chunk data")?,
            State::LineStart | State::Trailer | State::TrailerLf | State::EndLf => {
                self.count_line(MAX_LINE, "trailer section too long")?;
                self.trailer(byte)?
            }
            State::Data(_) | State::Done => self.state,
        };
        Ok(())
    }

    /// One byte of a chunk-size line, before its LF.
    fn size_line(&mut self, byte: u8) -> Result<State, BadChunk> {
        match (self.state, byte) {
            (State::SizeStart | State::Size, _) if byte.is_ascii_hexdigit() => {
                self.add_digit(byte)?;
                Ok(State::Size)
            }
            (State::SizeStart, _) => Err(BadChunk("chunk size not hex")),
            (State::Size | State::SizeSpace, b' ' | b'\t') => Ok(State::SizeSpace),
            (State::Size | State::Extension, b'\r') => Ok(State::SizeLf),
            (State::SizeSpace, b'\r') => Err(BadChunk("space before the end of a chunk-size line")),
            (State::Size | State::SizeSpace, b';') => Ok(State::Extension),
            (State::Extension, _) if byte == b'\t' || !byte.is_ascii_control() => {
                self.extension_bytes += 1;
                if self.extension_bytes > MAX_EXTENSION_BYTES {
                    return Err(BadChunk("chunk extensions too long"));
                }
                Ok(State::Extension)
            }
            (State::Extension, _) => Err(BadChunk("control byte in chunk extension")),
            _ => Err(BadChunk("chunk size not hex")),
        }
    }

    /// The LF of a size line: data follows, or the last chunk's trailers.
    fn size_lf(&mut self, byte: u8) -> Result<State, BadChunk> {
        if byte != b'\n' {
            return Err(BadChunk("bare CR in chunk-size line"));
        }
        let size = std::mem::take(&mut self.size);
        self.digits = 0;
        self.line = 0;
        Ok(if size == 0 {
            State::LineStart
        } else {
            State::Data(size)
        })
    }

    /// One more hex digit of the chunk size.
    fn add_digit(&mut self, byte: u8) -> Result<(), BadChunk> {
        self.digits += 1;
        if self.digits > MAX_DIGITS {
            return Err(BadChunk("chunk size too large"));
        }
        let digit = char::from(byte).to_digit(16).unwrap_or(0);
        self.size = (self.size << 4) | u64::from(digit);
        Ok(())
    }

    /// One byte of the trailer section (after the last chunk's size line):
    /// field lines (`name:value`, the name a token, no obs-fold), then the
    /// final CRLF.
    fn trailer(&mut self, byte: u8) -> Result<State, BadChunk> {
        let value_byte = byte == b'\t' || !byte.is_ascii_control();
        match (self.state, byte) {
            (State::LineStart, b'\r') => Ok(State::EndLf),
            (State::EndLf, b'\n') => Ok(State::Done),
            (State::TrailerLf, b'\n') => {
                self.trailers += 1;
                if self.trailers > self.max_trailers {
                    return Err(BadChunk("too many trailer fields"));
                }
                Ok(State::LineStart)
            }
            (State::EndLf | State::TrailerLf, _) => Err(BadChunk("bare CR in trailers")),
            (State::LineStart, _) if is_token_byte(byte) => {
                self.colon = false;
                Ok(State::Trailer)
            }
            (State::Trailer, b'\r') if self.colon => Ok(State::TrailerLf),
            (State::Trailer, b':') if !self.colon => {
                self.colon = true;
                Ok(State::Trailer)
            }
            (State::Trailer, _)
                if (!self.colon && is_token_byte(byte)) || (self.colon && value_byte) =>
            {
                Ok(State::Trailer)
            }
            _ => Err(BadChunk("malformed trailer field")),
        }
    }

    /// Counts one more byte of a bounded line or section.
    fn count_line(&mut self, max: usize, reason: &'static str) -> Result<(), BadChunk> {
        self.line += 1;
        if self.line > max {
            return Err(BadChunk(reason));
        }
        Ok(())
    }
}

/// `next` if `byte` is `wanted`, else the error `reason`.
fn expect(byte: u8, wanted: u8, next: State, reason: &'static str) -> Result<State, BadChunk> {
    if byte == wanted {
        Ok(next)
    } else {
        Err(BadChunk(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds `body` in one piece: how many bytes were the body.
    fn whole(body: &[u8]) -> Result<usize, BadChunk> {
        let mut chunked = Chunked::new();
        let used = chunked.feed(body)?;
        assert!(chunked.done(), "not done after {used} bytes");
        Ok(used)
    }

    /// Feeds `body` one byte at a time.
    fn bytewise(body: &[u8]) -> Result<(usize, bool), BadChunk> {
        let mut chunked = Chunked::new();
        let mut used = 0;
        for byte in body {
            used += chunked.feed(std::slice::from_ref(byte))?;
        }
        Ok((used, chunked.done()))
    }

    #[test]
    fn a_body_ends_at_its_final_crlf() {
        let body = b"5\r\nhello\r\nA;x=y\r\n0123456789\r\n0\r\n\r\n";
        let mut stream = body.to_vec();
        stream.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(whole(&stream), Ok(body.len()));
        assert_eq!(bytewise(&stream), Ok((body.len(), true)));
    }

    #[test]
    fn trailers_and_size_spacing_are_followed() {
        for body in [
            &b"0\r\nX-Sum: 1\r\nY:\r\n\r\n"[..],
            b"3 \t;name=\"v\"\r\nabc\r\n0 ;last\r\n\r\n",
            b"00000000000000ff\r\n",
            b"1\r\n\r\r\n0\r\n\r\n",
        ] {
            let mut chunked = Chunked::new();
            assert_eq!(chunked.feed(body), Ok(body.len()), "{body:?}");
        }
        assert_eq!(whole(b"0\r\nX-Sum: 1\r\n\r\nnext"), Ok(15));
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        let mut chunked = Chunked::new();
        assert_eq!(chunked.feed(b"5\r\nhel"), Ok(6));
        assert!(!chunked.done());
        assert_eq!(chunked.feed(b"lo\r\n0\r\n\r"), Ok(8));
        assert!(!chunked.done());
        assert_eq!(chunked.feed(b"\nmore"), Ok(1));
        assert!(chunked.done());
        assert_eq!(chunked.feed(b"more"), Ok(0));
    }

    #[test]
    fn malformed_framing_is_refused() {
        let long_size = format!("1;{}\r\n", "x".repeat(MAX_LINE));
        let long_trailer = format!("0\r\nX: {}\r\n\r\n", "v".repeat(MAX_LINE));
        for body in [
            &b"g\r\n"[..],
            b"-1\r\n",
            b"+1\r\n",
            b" 1\r\n",
            b"0x1\r\n",
            b"\r\n",
            b"1 2\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"0\t\r\n\r\n",
            b"10000000000000000\r\n",
            b"1\nx\r\n",
            b"1\r\rx",
            b"1\r\nxy\r\n",
            b"1\r\nx\n0\r\n\r\n",
            b"1\r\nx\r0",
            b"1;a\nb\r\n",
            b"1;a\0\r\n",
            b"0\r\n\n",
            b"0\r\n\rx",
            b"0\r\nX: 1\n\r\n",
            b"0\r\nX: 1\r\r\n",
            b"0\r\n X: 1\r\n\r\n",
            b"0\r\nX 1\r\n\r\n",
            b"0\r\nX\r\n\r\n",
            b"0\r\nX: a\0b\r\n\r\n",
            long_size.as_bytes(),
            long_trailer.as_bytes(),
        ] {
            assert!(Chunked::new().feed(body).is_err(), "accepted {body:?}");
            assert!(bytewise(body).is_err(), "accepted {body:?} byte by byte");
        }
    }

    #[test]
    fn the_line_bounds_are_inclusive() {
        // "1;" + extension + CRLF is exactly MAX_LINE bytes.
        let at_limit = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_LINE - 4));
        assert_eq!(whole(at_limit.as_bytes()), Ok(at_limit.len()));
        let over = format!("1;{}\r\n", "e".repeat(MAX_LINE - 3));
        assert!(Chunked::new().feed(over.as_bytes()).is_err());
        // Trailers and the final CRLF together: MAX_LINE bytes.
        let trailers = format!("X: {}\r\n\r\n", "v".repeat(MAX_LINE - 7));
        let at_limit = format!("0\r\n{trailers}");
        assert_eq!(whole(at_limit.as_bytes()), Ok(at_limit.len()));
        let over = format!("0\r\nX: {}\r\n\r\n", "v".repeat(MAX_LINE - 6));
        assert!(Chunked::new().feed(over.as_bytes()).is_err());
    }

    #[test]
    fn extensions_and_trailer_fields_are_bounded_as_hyper_bounds_them() {
        // 16 383 extension bytes in the whole body pass, one more does not.
        let chunk = |n: usize| format!("1;{}\r\nx\r\n", "e".repeat(n));
        let body = format!("{}{}0\r\n\r\n", chunk(4000).repeat(4), chunk(383));
        assert_eq!(whole(body.as_bytes()), Ok(body.len()));
        let body = format!("{}{}0\r\n\r\n", chunk(4000).repeat(4), chunk(384));
        assert!(Chunked::new().feed(body.as_bytes()).is_err());
        // Trailer fields: up to the limit.
        let trailers = |n: usize| format!("0\r\n{}\r\n", "T:\r\n".repeat(n));
        let mut chunked = Chunked::with_max_trailers(3);
        assert_eq!(chunked.feed(trailers(3).as_bytes()), Ok(trailers(3).len()));
        assert!(chunked.done());
        assert!(
            Chunked::with_max_trailers(3)
                .feed(trailers(4).as_bytes())
                .is_err()
        );
        let at_default = trailers(MAX_TRAILERS);
        assert_eq!(whole(at_default.as_bytes()), Ok(at_default.len()));
        assert!(
            Chunked::new()
                .feed(trailers(MAX_TRAILERS + 1).as_bytes())
                .is_err()
        );
    }

    #[test]
    fn the_largest_size_is_taken() {
        let mut chunked = Chunked::new();
        assert_eq!(chunked.feed(b"ffffffffffffffff\r\nabc"), Ok(21));
        assert_eq!(chunked.state, State::Data(u64::MAX - 3));
    }

    /// A valid chunked body: chunks, the last chunk, trailers.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        let chunk = (
            proptest::collection::vec(any::<u8>(), 1..64),
            "(;[a-z]{1,5}(=[a-z0-9]{1,5})?)?",
            any::<bool>(),
        );
        let trailer = ("[A-Za-z-]{1,10}", "[ -~]{0,20}");
        (
            proptest::collection::vec(chunk, 0..8),
            proptest::collection::vec(trailer, 0..3),
        )
            .prop_map(|(chunks, trailers)| {
                let mut body = Vec::new();
                for (data, extension, upper) in chunks {
                    let size = if upper {
                        format!("{:X}", data.len())
                    } else {
                        format!("{:x}", data.len())
                    };
                    body.extend_from_slice(format!("{size}{extension}\r\n").as_bytes());
                    body.extend_from_slice(&data);
                    body.extend_from_slice(b"\r\n");
                }
                body.extend_from_slice(b"0\r\n");
                for (name, value) in trailers {
                    body.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                body.extend_from_slice(b"\r\n");
                body
            })
    }

    proptest! {
        #[test]
        fn a_valid_body_split_anywhere_ends_where_it_ends(
            body in body(),
            next in proptest::collection::vec(any::<u8>(), 0..32),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut stream = body.clone();
            stream.extend_from_slice(&next);
            let mut at: Vec<usize> = cuts.iter().map(|cut| cut.index(stream.len() + 1)).collect();
            at.push(stream.len());
            at.sort_unstable();
            let mut chunked = Chunked::new();
            let (mut start, mut used) = (0, 0);
            for end in at {
                let piece = &stream[start..end];
                let took = chunked.feed(piece).unwrap();
                prop_assert!(took == piece.len() || chunked.done());
                used += took;
                start = end;
            }
            prop_assert!(chunked.done());
            prop_assert_eq!(used, body.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            cut in any::<prop::sample::Index>(),
        ) {
            let (a, b) = bytes.split_at(cut.index(bytes.len() + 1));
            let mut chunked = Chunked::new();
            if let Ok(took) = chunked.feed(a) {
                prop_assert!(took <= a.len());
                if let Ok(took) = chunked.feed(b) {
                    prop_assert!(took <= b.len());
                }
            }
        }
    }

    /// Whether hyper's server reads `body` as a whole chunked request body
    /// (its service answers 200 only after reading it to its end).
    async fn hyper_accepts(body: &[u8]) -> bool {
        use http_body_util::BodyExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (ours, mut theirs) = tokio::io::duplex(64 * 1024);
        let service =
            hyper::service::service_fn(|request: http::Request<hyper::body::Incoming>| async {
                let _ = request.into_body().collect().await?;
                let ok = http::Response::new(http_body_util::Empty::<hyper::body::Bytes>::new());
                Ok::<_, hyper::Error>(ok)
            });
        // Half-close, as the gateway: the end of our bytes is not the end
        // of the exchange.
        let server = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(hyper_util::rt::TokioIo::new(ours), service);
        let driver = tokio::spawn(server);
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        theirs.write_all(head).await.unwrap();
        theirs.write_all(body).await.unwrap();
        theirs.shutdown().await.unwrap();
        let mut status = [0; 12];
        let read = theirs.read_exact(&mut status).await;
        driver.abort();
        read.is_ok() && &status[9..] == b"200"
    }

    /// Whether `body` is, for [`Chunked`], one whole body and nothing more.
    fn lean_accepts(body: &[u8]) -> bool {
        let mut chunked = Chunked::new();
        chunked.feed(body) == Ok(body.len()) && chunked.done()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn mutated_bodies_hyper_refuses_are_refused(
            body in body(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(vec![b'\r', b'\n', 0u8, b' ', b';', b'\t', b'0', b'f', b':']),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            prop_assert!(lean_accepts(&body));
            prop_assert!(runtime.block_on(hyper_accepts(&body)));
            let mut mutated = body.clone();
            mutated.insert(at.index(body.len() + 1), byte);
            if !runtime.block_on(hyper_accepts(&mutated)) {
                prop_assert!(!lean_accepts(&mutated), "hyper refuses, lean takes {:?}", String::from_utf8_lossy(&mutated));
            }
        }
    }
}
