//! Chunked bodies (RFC 9112 §7.1) forwarded as they are: the framing is
//! followed, never rewritten, so that the connection stays in step and
//! the end of the body is known.
//!
//! Never looser than hyper's decoder: every line ends in CRLF (a bare LF
//! or a CR not followed by LF is refused, in size lines, after data and in
//! trailers); the size is hex digits, at most 16 of them, then optional
//! spaces or tabs, then optional `;extensions` (no control bytes but HTAB).
//! A size line, and the trailer section, are bounded by [`MAX_LINE`] bytes
//! (HAProxy bounds them too), so a client cannot keep the gateway reading
//! one line forever.

use super::head::is_token_byte;

/// The longest chunk-size line, and the longest trailer section.
pub const MAX_LINE: usize = 4096;

/// The most hex digits of a chunk size (`u64`).
const MAX_DIGITS: u8 = 16;

/// Why a chunked body is malformed (400 from a client, 502 from a
/// backend). The reason is for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed chunked body: {0}")]
pub struct BadChunk(pub &'static str);

/// Where in the chunked framing the next byte falls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// The first digit of a chunk size.
    #[default]
    SizeStart,
    /// More digits, spaces, `;` or CR.
    Size,
    /// Spaces or tabs after the size: more of them, `;` or CR.
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
#[derive(Clone, Debug, Default)]
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
            State::SizeLf => self.size_lf(byte)?,
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
            (State::Size | State::SizeSpace | State::Extension, b'\r') => Ok(State::SizeLf),
            (State::Size | State::SizeSpace, b';') => Ok(State::Extension),
            (State::Extension, _) if byte == b'\t' || !byte.is_ascii_control() => {
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
            (State::TrailerLf, b'\n') => Ok(State::LineStart),
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
