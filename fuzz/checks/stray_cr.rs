//! The stray-CR head rewriter (`tower_sticky_gateway::listen::stray_cr`) against a
//! reference written from its specification:
//!
//! * the bytes come out the same however the stream is split into reads and
//!   however small the reader's buffer is;
//! * the output is the reference's, byte for byte: only a run of at most
//!   `MAX_TRAILING_CRS` CRs right before a header line's CRLF, after a
//!   colon, becomes spaces; a head with a CR anywhere else, and everything
//!   after it, is left exactly as it came; `Content-Length` bodies are never
//!   touched; `Transfer-Encoding`, `Upgrade`, `CONNECT` and odd lengths end
//!   rewriting for good;
//! * framing never changes: httparse accepts the rewritten head iff it
//!   accepts the head with those CRs deleted (what the client meant), with
//!   the same request line, header names and (trimmed) values, and it
//!   refuses every head the reference found a bad CR in (hyper answers 400).
//!
//! Shared by the `stray_cr` fuzz target and the gateway's corpus replay test.
//! Input layout: one byte choosing the read sizes, then the request stream.

use tower_sticky_gateway::listen::stray_cr::{MAX_TRAILING_CRS, read_through, rewrite_all};

const CR: u8 = b'\r';
const LF: u8 = b'\n';
const SP: u8 = b' ';
/// The scanner keeps this much of each line; a `Content-Length` line longer
/// than that is one it will not guess a body length from.
const LINE_KEEP: usize = 64;

/// Checks one fuzz input; panics on any disagreement.
pub fn run(data: &[u8]) {
    let Some((&knob, input)) = data.split_first() else {
        return;
    };
    let whole = rewrite_all(input);

    // However the bytes arrive, the same bytes leave.
    let step = usize::from(knob & 0x0f) + 1;
    let out = [1, 2, 3, 5, 9, 10, 64, 4096][usize::from(knob >> 4) & 7];
    for (step, out) in [(step, out), (1, 1), (input.len().max(1), 4096)] {
        let (streamed, _) = read_through(input, step, out);
        assert_eq!(
            streamed, whole,
            "reads of {step} into a buffer of {out} differ from one pass"
        );
    }

    // Only CRs become spaces, nothing moves.
    assert_eq!(whole.len(), input.len());
    for (i, (&a, &b)) in input.iter().zip(&whole).enumerate() {
        assert!(
            a == b || (a == CR && b == SP),
            "byte {i}: {a:#x} became {b:#x}"
        );
    }

    let reference = Reference::walk(input);
    let upto = reference.upto;
    assert_eq!(
        String::from_utf8_lossy(&whole[..upto]),
        String::from_utf8_lossy(&reference.out[..upto]),
        "the rewriter and the reference disagree"
    );
    for head in &reference.heads {
        check_framing(&whole, input, head);
    }
}

/// What the reference found in one request head.
struct Head {
    /// Where it starts (after empty lines before the request line, if any).
    start: usize,
    /// Where it ends (after its empty line), if it does.
    end: Option<usize>,
    /// A CR the rewriter must leave for hyper to refuse.
    bad_cr: bool,
    /// Positions of the CRs that became spaces.
    rewritten: Vec<usize>,
}

struct Reference {
    out: Vec<u8>,
    heads: Vec<Head>,
    /// How much of `out` is specified: after a head httparse refuses, hyper
    /// answers 400 and closes, so what the rewriter does with the bytes
    /// after it does not matter.
    upto: usize,
}

impl Reference {
    /// Walks the stream head by head, as the specification says.
    fn walk(input: &[u8]) -> Reference {
        let mut out = input.to_vec();
        let mut heads = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let mut head = Head {
                start: pos,
                end: None,
                bad_cr: false,
                rewritten: Vec::new(),
            };
            let mut p = pos;
            let mut request_line: Option<&[u8]> = None;
            let mut opaque = false;
            let mut content_length: Option<u64> = None;
            let mut end = None;
            while let Some(lf) = input[p..].iter().position(|&b| b == LF) {
                let line = &input[p..p + lf];
                let crs = line.iter().rev().take_while(|&&b| b == CR).count();
                let text = &line[..line.len() - crs];
                if text.contains(&CR) {
                    head.bad_cr = true;
                    break;
                }
                if text.is_empty() && crs <= 1 {
                    if request_line.is_none() {
                        // An empty line before the request line.
                        p += lf + 1;
                        head.start = p;
                        continue;
                    }
                    end = Some(p + lf + 1);
                    break;
                }
                if crs >= 2 {
                    let stray = crs - 1;
                    if request_line.is_none() || !text.contains(&b':') || stray > MAX_TRAILING_CRS {
                        head.bad_cr = true;
                        break;
                    }
                    let at = p + text.len();
                    out[at..at + stray].fill(SP);
                    head.rewritten.extend(at..at + stray);
                }
                match request_line {
                    None => {
                        request_line = Some(text);
                        if text.starts_with(b"PRI * HTTP/2.0") || text.starts_with(b"CONNECT ") {
                            // Nothing after these is a head, nor is the
                            // rest of this one rewritten.
                            return Reference::done(out, heads);
                        }
                    }
                    Some(_) => {
                        let Some(colon) = text.iter().position(|&b| b == b':') else {
                            p += lf + 1;
                            continue;
                        };
                        let name = &text[..colon];
                        let value = trim(&text[colon + 1..]);
                        if name.eq_ignore_ascii_case(b"transfer-encoding")
                            || name.eq_ignore_ascii_case(b"upgrade")
                        {
                            opaque = true;
                        } else if name.eq_ignore_ascii_case(b"content-length") {
                            match (digits(value), content_length) {
                                (Some(n), None) if line.len() <= LINE_KEEP => {
                                    content_length = Some(n)
                                }
                                (Some(n), Some(m)) if n == m && line.len() <= LINE_KEEP => {}
                                _ => opaque = true,
                            }
                        }
                    }
                }
                p += lf + 1;
            }
            let bad = head.bad_cr;
            head.end = end.filter(|_| !bad);
            if head.start < input.len() {
                heads.push(head);
            }
            let Some(end) = end.filter(|_| !bad) else {
                // A bad CR, or the stream ends inside the head: the rest
                // is as it came.
                return Reference::done(out, heads);
            };
            if !matches!(parse(&out[pos..end]), Parsed::Complete { .. }) {
                return Reference {
                    out,
                    heads,
                    upto: end,
                };
            }
            if opaque {
                return Reference::done(out, heads);
            }
            pos = end
                .saturating_add(usize::try_from(content_length.unwrap_or(0)).unwrap_or(usize::MAX));
        }
        Reference::done(out, heads)
    }

    fn done(out: Vec<u8>, heads: Vec<Head>) -> Reference {
        let upto = out.len();
        Reference { out, heads, upto }
    }
}

/// Space and tab off both ends (what the rewriter's `trim_ascii` does to a
/// value httparse accepts).
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// A `Content-Length` the rewriter follows: digits only, fits in a u64.
fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The parts of a request head that decide what a server does with it.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    Complete {
        /// The head's length.
        len: usize,
        method: Option<String>,
        path: Option<String>,
        version: Option<u8>,
        headers: Vec<(String, Vec<u8>)>,
    },
    Partial,
    Error,
}

fn parse(bytes: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => Parsed::Complete {
            len,
            method: req.method.map(str::to_owned),
            path: req.path.map(str::to_owned),
            version: req.version,
            headers: req
                .headers
                .iter()
                .map(|h| (h.name.to_ascii_lowercase(), trim(h.value).to_vec()))
                .collect(),
        },
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Error,
    }
}

/// httparse on the rewritten head agrees with httparse on what the client
/// meant (the head with the rewritten CRs deleted), and refuses a head with
/// a bad CR.
fn check_framing(out: &[u8], input: &[u8], head: &Head) {
    let got = parse(&out[head.start..]);
    if head.bad_cr {
        assert_eq!(
            got,
            Parsed::Error,
            "a bad CR must reach hyper and be refused"
        );
        return;
    }
    let meant: Vec<u8> = input[head.start..]
        .iter()
        .enumerate()
        .filter(|(i, _)| !head.rewritten.contains(&(head.start + i)))
        .map(|(_, &b)| b)
        .collect();
    let mut meant = parse(&meant);
    if let Parsed::Complete { len, .. } = &mut meant {
        let end = head
            .end
            .expect("httparse found the end of a head the reference did not");
        assert_eq!(*len, end - head.start - head.rewritten.len(), "head length");
        // The rewritten CRs are still there, as spaces.
        *len += head.rewritten.len();
    }
    assert_eq!(got, meant, "the rewritten head reads differently");
}
