//! The byte streams the differential test sends, and the backend's
//! scripted responses.

use super::backend::Script;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use std::sync::LazyLock;

/// The request every case ends with, so that a gateway in step closes.
const END: &[u8] = b"GET /__end HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

/// One client byte stream.
pub struct Case {
    pub name: String,
    /// Written one after the other (one write each).
    pub pieces: Vec<Vec<u8>>,
    /// `head_at[k]`: response `k` answers a HEAD.
    pub head_at: Vec<bool>,
}

impl Case {
    fn new(name: impl Into<String>, bytes: &[u8]) -> Case {
        Case {
            name: name.into(),
            pieces: vec![bytes.to_vec()],
            head_at: Vec::new(),
        }
    }

    /// The pieces, then [`END`].
    pub fn stream(&self) -> Vec<Vec<u8>> {
        let mut all = self.pieces.clone();
        all.push(END.to_vec());
        all
    }
}

/// Each request smuggling vector of the gateway's tests (bad_input.rs,
/// hardening.rs, raw.rs), and the classic set around them.
pub fn smuggling() -> Vec<Case> {
    let get = |extra: &str| format!("GET /get HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    let post = |fields: &str, body: &str| {
        format!(
            "POST /post HTTP/1.1\r\nHost: x\r\n{fields}\r\n{body}GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        )
    };
    let mut out = vec![
        // bad_input.rs
        Case::new("no colon", b"GET / HTTP/1.1\r\nHost localhost\r\n\r\n"),
        Case::new("space in name", b"GET / HTTP/1.1\r\nHo st: x\r\n\r\n"),
        Case::new(
            "TLS hello",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n",
        ),
        Case::new("CR in request line", b"GET /a\rHTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("CR CR LF after request line", b"GET / HTTP/1.1\r\r\nHost: x\r\n\r\n"),
        Case::new("CR in name", b"GET / HTTP/1.1\r\nHost: x\r\nX\r-Y: 1\r\n\r\n"),
        Case::new("CR after name", b"GET / HTTP/1.1\r\nHost: x\r\nX-Y\r\r\n\r\n"),
        Case::new("CR inside value", b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r b\r\n\r\n"),
        Case::new("CR in the blank line", b"GET / HTTP/1.1\r\nHost: x\r\n\r\r\n"),
        Case::new(
            "bare CR hides a Content-Length",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: 1\rContent-Length: 35\r\n\r\nGET /get HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        Case::new(
            "pipelined: CR at the end of a value, then a bare CR",
            b"GET /get HTTP/1.1\r\nHost: x\r\nA: 1\r\r\n\r\nGET /get HTTP/1.1\r\nHost: x\r\nX: 1\rY: 2\r\n\r\n",
        ),
        Case::new(
            "the seed's awk CR at the end of a value",
            b"GET /get HTTP/1.1\r\nHost: x\r\nX-Seed: tok\r\r\n\r\n",
        ),
        Case::new(
            "eight CRs at the end of a value",
            b"GET /get HTTP/1.1\r\nHost: x\r\nX-Seed: tok\r\r\r\r\r\r\r\r\r\n\r\n",
        ),
        Case::new(
            "nine CRs at the end of a value",
            b"GET /get HTTP/1.1\r\nHost: x\r\nX-Seed: tok\r\r\r\r\r\r\r\r\r\r\n\r\n",
        ),
        // hardening.rs
        Case::new(
            "malformed chunk size",
            b"POST /post HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
        ),
        Case::new("HTTP/1.1 without Host", b"GET /get HTTP/1.1\r\n\r\n"),
        Case::new("Connection: host", get("Connection: host\r\n").as_bytes()),
        Case::new("HTTP/1.0 without Host", b"GET /get HTTP/1.0\r\n\r\n"),
        // raw.rs: the CL.0 backend's request.
        Case::new("POST with a body", post("Content-Length: 3\r\n", "abc").as_bytes()),
        // Several Hosts, absolute and odd targets, odd versions.
        Case::new("two Hosts", get("Host: y\r\n").as_bytes()),
        // The gateway's own 400 to an HTTP/1.0 request: `HTTP/1.0 400` from
        // hyper, `HTTP/1.1 400` from the lean path (a generated case found
        // it in CI; the comparison takes the code, not the version).
        Case::new("two Hosts, HTTP/1.0", b"GET /get HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n"),
        Case::new(
            "TE chunked, chunked, HTTP/1.0",
            b"POST /post HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        Case::new("absolute-form", b"GET http://x/get HTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("absolute-form, other Host", b"GET http://y/get HTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("asterisk", b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"),
        // Targets that are not origin-form (the fuzz target's first find:
        // the lean path sends `/` for a target without a path).
        Case::new("authority-form GET", b"GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("target without a slash", b"GET 'get HTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("query only", b"GET ?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("absolute-form without a path", b"GET http://x HTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("HTTP/1.2", b"GET /get HTTP/1.2\r\nHost: x\r\n\r\n"),
        Case::new("HTTP/2.0 line", b"GET /get HTTP/2.0\r\nHost: x\r\n\r\n"),
        Case::new("lower-case method", b"get /get HTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("two spaces", b"GET  /get HTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("LF line ends", b"GET /get HTTP/1.1\nHost: x\n\n"),
        Case::new("empty line first", b"\r\nGET /get HTTP/1.1\r\nHost: x\r\n\r\n"),
        Case::new("obs-fold", get("X-A: 1\r\n 2\r\n").as_bytes()),
        Case::new("space before colon", get("X-A : 1\r\n").as_bytes()),
        Case::new("tab in value", get("X-A: 1\t2\r\n").as_bytes()),
        Case::new("DEL in value", get("X-A: 1\x7f2\r\n").as_bytes()),
        Case::new("high bytes in value", b"GET /get HTTP/1.1\r\nHost: x\r\nX-A: \xc3\xa9\xff\r\n\r\n"),
        Case::new("Expect 100-continue", post("Expect: 100-continue\r\nContent-Length: 3\r\n", "abc").as_bytes()),
        Case::new("Expect other", post("Expect: 200-ok\r\nContent-Length: 3\r\n", "abc").as_bytes()),
        Case::new("Upgrade without Connection", get("Upgrade: websocket\r\n").as_bytes()),
        Case::new("Connection: close, then more", get("Connection: close\r\n").as_bytes()),
        Case::new("HTTP/1.0 keep-alive", b"GET /get HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"),
        Case::new("hop-by-hop named in Connection", get("Connection: x-hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n").as_bytes()),
        Case::new("the session cookie and others", get("Cookie: a=1; Session-A=forged; b=2\r\n").as_bytes()),
        Case::new("long target", format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(8000)).as_bytes()),
        Case::new("head over --max-header-bytes", get(&format!("X-Big: {}\r\n", "a".repeat(17_000))).as_bytes()),
        Case::new("head at 16 KiB - 1", get(&format!("X-Big: {}\r\n", "a".repeat(16 * 1024 - 47))).as_bytes()),
        Case::new("101 header fields", get(&"X-N: 1\r\n".repeat(100)).as_bytes()),
        Case::new("99 header fields", get(&"X-N: 1\r\n".repeat(98)).as_bytes()),
        Case::new("NUL in target", b"GET /a\0b HTTP/1.1\r\nHost: x\r\n\r\n"),
        // From the generator: bad framing and no Host, which is refused first.
        Case::new(
            "TE gzip, chunked and a word for CL, without Host",
            b"GET /lj HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: identity\r\n\r\nhello",
        ),
        Case::new(
            "bad CL without Host",
            b"GET /lj HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        ),
        Case::new(
            "TE and CL without Host",
            b"POST /lj HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        ),
    ];
    // CL.TE, TE.CL, TE.TE and Content-Length forms.
    for (name, fields, body) in [
        (
            "CL.TE",
            "Content-Length: 13\r\nTransfer-Encoding: chunked\r\n",
            "0\r\n\r\nSMUGGLED",
        ),
        (
            "TE.CL",
            "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            "8\r\nSMUGGLED\r\n0\r\n\r\n",
        ),
        (
            "TE chunked",
            "Transfer-Encoding: chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE Chunked",
            "Transfer-Encoding: Chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE chunked, identity",
            "Transfer-Encoding: chunked, identity\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE identity, chunked",
            "Transfer-Encoding: identity, chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE gzip, chunked",
            "Transfer-Encoding: gzip, chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE chunked, chunked",
            "Transfer-Encoding: chunked, chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE twice",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE gzip then chunked lines",
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE xchunked",
            "Transfer-Encoding: xchunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE leading space",
            "Transfer-Encoding:  chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE tab",
            "Transfer-Encoding:\tchunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE trailing garbage",
            "Transfer-Encoding: chunked x\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        ("TE identity", "Transfer-Encoding: identity\r\n", ""),
        ("TE empty", "Transfer-Encoding: \r\n", ""),
        (
            "TE obs-fold",
            "Transfer-Encoding:\r\n chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE space before colon",
            "Transfer-Encoding : chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "TE underscore",
            "Transfer_Encoding: chunked\r\n",
            "3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "CL twice, same",
            "Content-Length: 3\r\nContent-Length: 3\r\n",
            "abc",
        ),
        (
            "CL twice, different",
            "Content-Length: 1\r\nContent-Length: 2\r\n",
            "ab",
        ),
        ("CL list, same", "Content-Length: 3, 3\r\n", "abc"),
        ("CL list, different", "Content-Length: 3, 4\r\n", "abcd"),
        ("CL +3", "Content-Length: +3\r\n", "abc"),
        ("CL -1", "Content-Length: -1\r\n", "abc"),
        ("CL 0x3", "Content-Length: 0x3\r\n", "abc"),
        ("CL empty", "Content-Length: \r\n", ""),
        ("CL 03", "Content-Length: 03\r\n", "abc"),
        ("CL with spaces", "Content-Length:  3 \r\n", "abc"),
        ("CL 3 3", "Content-Length: 3 3\r\n", "abc"),
        ("CL huge", "Content-Length: 99999999999999999999\r\n", "abc"),
        ("CL 0", "Content-Length: 0\r\n", ""),
        ("CL larger than sent", "Content-Length: 9\r\n", "abc"),
    ] {
        out.push(Case::new(name, post(fields, body).as_bytes()));
    }
    out.push(Case::new(
        "TE in HTTP/1.0",
        b"POST /post HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ));
    out.push(Case::new(
        "GET with a chunked body",
        b"GET /get HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    ));
    out
}

/// CONNECT: after a 2xx the connection is a tunnel, not requests.
pub fn connect() -> Vec<Case> {
    vec![
        Case::new("CONNECT", b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n"),
        Case::new(
            "CONNECT with a body",
            b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\nContent-Length: 3\r\n\r\nabc",
        ),
    ]
}

/// The valid heads whose every byte is replaced by, or preceded by, a CR,
/// an LF and a NUL.
const MUTATED: [&[u8]; 2] = [
    b"GET /get?a=1 HTTP/1.1\r\nHost: x\r\nX-A: b c\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
];

/// CR, LF and NUL at every position of [`MUTATED`] (bounded: 3 bytes, 2
/// ways, about 90 positions).
pub fn mutations() -> Vec<Case> {
    let mut out = Vec::new();
    for (h, head) in MUTATED.iter().enumerate() {
        for at in 0..head.len() {
            for (b, name) in [(b'\r', "CR"), (b'\n', "LF"), (0, "NUL")] {
                let mut over = head.to_vec();
                over[at] = b;
                out.push(Case::new(format!("head {h}: {name} over byte {at}"), &over));
                let mut before = head.to_vec();
                before.insert(at, b);
                out.push(Case::new(
                    format!("head {h}: {name} before byte {at}"),
                    &before,
                ));
            }
        }
    }
    out
}

/// Pipelined requests, and chunked bodies in odd chunks and odd writes.
pub fn pipelined_and_chunked() -> Vec<Case> {
    let chunked = |body: &str| {
        format!("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{body}")
    };
    let mut out = vec![
        Case::new(
            "three GETs",
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        Case::new(
            "GET, POST, GET",
            b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /3 HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        Case::new(
            "chunked POST, then GET",
            format!("{}GET /after HTTP/1.1\r\nHost: x\r\n\r\n", chunked("5\r\nhello\r\n0\r\n\r\n")).as_bytes(),
        ),
        Case::new(
            "HEAD then GET",
            b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    ];
    for (name, body) in [
        ("one-byte chunks", "1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n"),
        ("leading zeros", "0003\r\nabc\r\n0000\r\n\r\n"),
        ("upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n"),
        ("extension", "3;ext=1\r\nabc\r\n0;x\r\n\r\n"),
        ("quoted extension", "3;ext=\"a b\"\r\nabc\r\n0\r\n\r\n"),
        ("trailers", "3\r\nabc\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"),
        ("LF-only lines", "3\nabc\n0\n\n"),
        ("space after size", "3 \r\nabc\r\n0\r\n\r\n"),
        ("size overflow", "ffffffffffffffffff\r\nabc\r\n0\r\n\r\n"),
        ("data longer than size", "2\r\nabc\r\n0\r\n\r\n"),
        ("no final CRLF, then GET", "3\r\nabc\r\n0\r\n"),
        ("negative size", "-3\r\nabc\r\n0\r\n\r\n"),
        ("0x size", "0x3\r\nabc\r\n0\r\n\r\n"),
        ("bare CR in size line", "3\rabc\r\n0\r\n\r\n"),
    ] {
        out.push(Case::new(
            format!("chunked: {name}"),
            chunked(body).as_bytes(),
        ));
    }
    // The same valid body in writes split at every kind of boundary.
    let whole = chunked("5\r\nhello\r\n3;e\r\nabc\r\n0\r\nX-T: 1\r\n\r\n").into_bytes();
    let head_len = whole
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    let mut bytewise = Case::new("chunked: a write per byte", b"");
    bytewise.pieces = whole.iter().map(|&b| vec![b]).collect();
    out.push(bytewise);
    for cut in [
        head_len - 2,
        head_len + 1,
        head_len + 2,
        head_len + 4,
        head_len + 9,
    ] {
        let mut split = Case::new(format!("chunked: split at {cut}"), b"");
        split.pieces = vec![whole[..cut].to_vec(), whole[cut..].to_vec()];
        out.push(split);
    }
    out
}

/// Header names the generator picks from: framing, hop-by-hop, routing
/// and plain ones, and a few malformed.
const NAMES: &[&str] = &[
    "Host",
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Expect",
    "Cookie",
    "Upgrade",
    "TE",
    "Keep-Alive",
    "X-A",
    "x-b",
    "Accept",
    "X-Forwarded-For",
    "Via",
    "Host ",
    "X A",
    "",
    "Content-Length\t",
];

/// Values the generator picks from besides arbitrary printable text.
const VALUES: &[&str] = &[
    "chunked",
    "chunked, identity",
    "identity",
    "gzip, chunked",
    " chunked",
    "0",
    "3",
    "5",
    "-1",
    "+3",
    "3, 3",
    "close",
    "keep-alive",
    "100-continue",
    "upgrade",
    "x",
    "a\rb",
    "",
];

/// Bodies: none, plain, chunked (valid and not).
const BODIES: &[&str] = &[
    "",
    "abc",
    "hello",
    "3\r\nabc\r\n0\r\n\r\n",
    "0\r\n\r\n",
    "zz\r\n",
    "5\r\nabc\r\n0\r\n\r\n",
];

/// Bytes a near-valid request gets one of, somewhere.
const STRAY: &[u8] = b"\r\n\0 :\t\x7f\x80";

fn request() -> impl Strategy<Value = Vec<u8>> {
    let method =
        prop::sample::select(&["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "get"][..]);
    let target = "/[a-zA-Z0-9._~%/?=&-]{0,16}";
    let version =
        prop::sample::select(&["HTTP/1.1", "HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/1.2"][..]);
    let value = prop_oneof![
        prop::sample::select(VALUES).prop_map(str::to_owned),
        "[ -~]{0,12}"
    ];
    let field = (prop::sample::select(NAMES), value);
    let fields = prop::collection::vec(field, 0..6);
    let body = prop::sample::select(BODIES);
    let stray = prop::option::weighted(
        0.3,
        (any::<prop::sample::Index>(), prop::sample::select(STRAY)),
    );
    (method, target, version, any::<bool>(), fields, body, stray).prop_map(
        |(method, target, version, host, fields, body, stray)| {
            let mut head = format!("{method} {target} {version}\r\n");
            if host {
                head.push_str("Host: x\r\n");
            }
            for (name, value) in fields {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            let mut bytes = format!("{head}\r\n{body}").into_bytes();
            if let Some((at, b)) = stray {
                let at = at.index(bytes.len());
                bytes[at] = b;
            }
            bytes
        },
    )
}

/// `n` requests from the generator (a fresh random seed each run: a
/// failing one is printed whole, to be added to [`smuggling`]).
pub fn generated(n: usize) -> Vec<Case> {
    let mut runner = TestRunner::default();
    let strategy = request();
    (0..n)
        .map(|i| {
            let bytes = strategy.new_tree(&mut runner).expect("a request").current();
            Case::new(format!("generated {i}"), &bytes)
        })
        .collect()
}

/// The backend's scripted responses, `/resp/<n>` (bytes, close after).
pub fn scripts() -> &'static [Script] {
    static SCRIPTS: LazyLock<Vec<Script>> = LazyLock::new(|| {
        let huge = format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\nok",
            "a".repeat(70_000)
        );
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}Content-Length: 2\r\n\r\nok",
            "X-N: 1\r\n".repeat(120)
        );
        [
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;e\r\nabc\r\n0\r\nX-T: 1\r\n\r\n", false),
            ("HTTP/1.1 200 OK\r\n\r\nuntil close", true),
            ("HTTP/1.1 204 No Content\r\n\r\n", false),
            ("HTTP/1.1 304 Not Modified\r\nETag: \"a\"\r\n\r\n", false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false),
            ("HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello", true),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", true),
            (huge.as_str(), true),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", true),
            ("HTTP/1.1 200 OK\r\nSet-Cookie: Session-A=evil; Path=/\r\nSet-Cookie: theme=dark\r\nCache-Control: public, max-age=600\r\nContent-Length: 2\r\n\r\nok", false),
            ("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", true),
            ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", true),
            ("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true),
            ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive, x-hop\r\nX-Hop: 1\r\n\r\nok", false),
            ("HTTP/1.1 200 OK\r\nX-A: b\r\r\nContent-Length: 2\r\n\r\nok", true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", true),
            ("HTTP/1.1 599 Weird\r\nContent-Length: 2\r\n\r\nok", false),
            ("HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", false),
            ("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", false),
            ("HTTP/1.1 200 OK\r\nContent-Length: +3\r\n\r\nabc", true),
            (many.as_str(), true),
            ("HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false),
            ("garbage\r\n\r\n", true),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", true),
            // From the generator: a 204 with a Content-Length (RFC 9110
            // §8.6: a server must not send one), and a chunked body that
            // is not chunked.
            ("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false),
            ("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false),
            ("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\nabc", true),
        ]
        .into_iter()
        .map(|(b, close)| (b.as_bytes().to_vec(), close))
        .chain(generated_responses(GENERATED_RESPONSES))
        .collect()
    });
    &SCRIPTS
}

/// How many of the scripts are generated (after the written ones).
const GENERATED_RESPONSES: usize = 32;

/// Response header names the generator picks from.
const RESPONSE_NAMES: &[&str] = &[
    "Content-Length",
    "Transfer-Encoding",
    "Connection",
    "Set-Cookie",
    "Cache-Control",
    "Keep-Alive",
    "X-A",
    "Content-Type",
    "Location",
    "Trailer",
    "Upgrade",
    "X B",
];

/// Response header values the generator picks from besides printable text.
const RESPONSE_VALUES: &[&str] = &[
    "chunked",
    "5",
    "3",
    "0",
    "close",
    "keep-alive",
    "Session-A=evil; Path=/",
    "theme=dark",
    "private",
    "public, max-age=60",
    "gzip, chunked",
    "-1",
    "5, 5",
    "",
];

fn response() -> impl Strategy<Value = Script> {
    let status = prop::sample::select(
        &[
            "200 OK",
            "201 Created",
            "204 No Content",
            "304 Not Modified",
            "404 Not Found",
            "500 Internal Server Error",
            "599 Weird",
            "200",
            "100 Continue\r\n\r\nHTTP/1.1 200 OK",
        ][..],
    );
    let version = prop::sample::select(&["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"][..]);
    let value = prop_oneof![
        prop::sample::select(RESPONSE_VALUES).prop_map(str::to_owned),
        "[ -~]{0,10}"
    ];
    let fields = prop::collection::vec((prop::sample::select(RESPONSE_NAMES), value), 0..5);
    let body = prop::sample::select(&["", "hello", "5\r\nhello\r\n0\r\n\r\n", "abc", "zz\r\n"][..]);
    let stray = prop::option::weighted(
        0.2,
        (any::<prop::sample::Index>(), prop::sample::select(STRAY)),
    );
    (version, status, fields, body, stray).prop_map(|(version, status, fields, body, stray)| {
        let mut head = format!("{version} {status}\r\n");
        for (name, value) in fields {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let mut bytes = format!("{head}\r\n{body}").into_bytes();
        if let Some((at, b)) = stray {
            let at = at.index(bytes.len());
            bytes[at] = b;
        }
        // The backend closes after it: a response without framing
        // ends there (kept open, both paths would wait for it).
        (bytes, true)
    })
}

/// `n` backend responses from the generator (a fresh seed each run; the
/// process's two backends share them).
fn generated_responses(n: usize) -> Vec<Script> {
    let mut runner = TestRunner::default();
    let strategy = response();
    (0..n)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .expect("a response")
                .current()
        })
        .collect()
}

/// The 204 with a `Content-Length` (its own test).
const NO_CONTENT_WITH_LENGTH: &[u8] = b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n";

/// Its place among the scripts.
fn no_content_with_length_at() -> usize {
    scripts()
        .iter()
        .position(|(bytes, _)| bytes == NO_CONTENT_WITH_LENGTH)
        .expect("the 204 script")
}

/// A GET of the 204 with a `Content-Length`: hyper drops the field (RFC
/// 9110 §8.6), so the client cannot take the next response for a body.
pub fn no_content_with_length() -> Vec<Case> {
    let n = no_content_with_length_at();
    let get = format!("GET /resp/{n} HTTP/1.1\r\nHost: x\r\n\r\n");
    vec![Case::new("a 204 with Content-Length: 5", get.as_bytes())]
}

/// A GET of each scripted response (the written ones and 32 generated
/// valid and near-valid ones), and a HEAD of three.
pub fn responses() -> Vec<Case> {
    let mut out: Vec<Case> = (0..scripts().len())
        .filter(|&n| n != no_content_with_length_at())
        .map(|n| {
            let get = format!("GET /resp/{n} HTTP/1.1\r\nHost: x\r\n\r\n");
            let written = scripts().len() - GENERATED_RESPONSES;
            let name = if n < written {
                format!("response {n}")
            } else {
                let bytes = String::from_utf8_lossy(&scripts()[n].0).into_owned();
                format!("generated response {bytes:?}")
            };
            Case::new(name, get.as_bytes())
        })
        .collect();
    for n in [0, 1, 5] {
        let mut head = Case::new(
            format!("HEAD, response {n}"),
            format!("HEAD /resp/{n} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        );
        head.head_at = vec![true];
        out.push(head);
    }
    out
}
