//! The stray-CR scanner's byte searches: `memchr` against the hand-written
//! loops it replaced (issue 17, point 7), in the same run.
//!
//! `cargo bench -p tower-sticky-gateway --bench scans` (about a minute).
//! Groups, each on three realistic request heads ([`heads`]):
//! * `scan/<finder>/<head>`: the whole scanner
//!   ([`stray_cr::scan_all`]) over the head, as a fresh connection reads it;
//! * `line_ends/<finder>/<head>`: only the search for the next CR or LF,
//!   walked over the whole head: the scanner's inner loop.
//!
//! `<finder>` is `memchr` ([`stray_cr::Memchr`], what the gateway uses:
//! `memchr2` for CR or LF, `memchr` for `:`) or `hand` ([`HandLoops`] below:
//! the eight-bytes-at-a-time loop and the iterator searches the scanner had
//! before). `memmem` has no use here: the scanner never looks for a
//! multi-byte needle.
//!
//! The heads hold no stray CR, so scanning one in place leaves it as it was
//! and every iteration does the same work.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use tower_sticky_gateway::listen::stray_cr::{self, Find, Memchr};

/// The scanner's searches as they were before `memchr`.
enum HandLoops {}

impl Find for HandLoops {
    /// Eight bytes at a time, the first CR or LF in a word located from its
    /// bit mask, then byte by byte for the last few bytes.
    fn plain_run(data: &[u8]) -> usize {
        const CR: u8 = b'\r';
        const LF: u8 = b'\n';
        const ONES: u64 = u64::from_le_bytes([0x01; 8]);
        const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
        // The high bit of each byte of `v` that is zero, plus possibly of
        // bytes above a zero one: the lowest set bit is always a real zero.
        let zeros = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
        let mut i = 0;
        while let Some(word) = data.get(i..i + 8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
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

    fn colon(data: &[u8]) -> Option<usize> {
        data.iter().position(|&b| b == b':')
    }
}

/// The seed's walkthrough, second step: curl with the session cookie.
const CURL: &str = "GET /get HTTP/1.1\r\nHost: localhost:8888\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nCookie: Session-A=AZ2n0Qy8c4Vt1mJbX9kLs3PqR7wE5uHd-Gf6Ta2YhNe0KjWz4Xc_BvMl8Sp1Io3UrDq7Ft5Gy9Hw2Ex6Cz0Ab4Nd8Km1Lj\r\n\r\n";

/// A browser's navigation request, padded with a cookie to `size` bytes.
fn browser(size: usize) -> String {
    let mut head = String::from(
        "GET /app/dashboard?tab=overview&range=7d HTTP/1.1\r\n\
         Host: www.example.com\r\n\
         Connection: keep-alive\r\n\
         sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\", \"Google Chrome\";v=\"131\"\r\n\
         sec-ch-ua-mobile: ?0\r\n\
         sec-ch-ua-platform: \"Linux\"\r\n\
         Upgrade-Insecure-Requests: 1\r\n\
         User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n\
         Sec-Fetch-Site: same-origin\r\n\
         Sec-Fetch-Mode: navigate\r\n\
         Sec-Fetch-User: ?1\r\n\
         Sec-Fetch-Dest: document\r\n\
         Referer: https://www.example.com/app/login?next=%2Fapp%2Fdashboard\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: en-GB,en-US;q=0.9,en;q=0.8,de;q=0.7\r\n\
         Cookie: Session-A=AZ2n0Qy8c4Vt1mJbX9kLs3PqR7wE5uHd-Gf6Ta2YhNe0KjWz4Xc_BvMl8Sp1Io3UrDq7Ft5Gy9Hw2Ex6Cz0Ab4Nd8Km1Lj",
    );
    // Analytics and preference cookies, as sites pile them up.
    let mut n = 0;
    while head.len() + 4 < size {
        let pair = format!("; _pref{n}=v{n}x7Qm2Lp9Zr4Tk8Wn3Yb6Hc1Jd5Fs0Gv");
        let room = size - 4 - head.len();
        head.push_str(&pair[..pair.len().min(room)]);
        n += 1;
    }
    head.push_str("\r\n\r\n");
    head
}

/// The three heads, by name.
fn heads() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("curl", CURL.as_bytes().to_vec()),
        ("browser_1k", browser(1024).into_bytes()),
        ("head_16k", browser(16 * 1024).into_bytes()),
    ]
}

/// Walks `head` from one CR or LF to the next, as the scanner does.
fn line_ends<F: Find>(head: &[u8]) -> usize {
    let mut i = 0;
    let mut ends = 0;
    while i < head.len() {
        i += F::plain_run(&head[i..]) + 1;
        ends += 1;
    }
    ends
}

fn bench(c: &mut Criterion) {
    for (name, mut head) in heads() {
        // Both finders must do the same thing before their speed matters.
        assert_eq!(line_ends::<Memchr>(&head), line_ends::<HandLoops>(&head));
        let before = head.clone();
        assert_eq!(stray_cr::scan_all::<Memchr>(&mut head), head.len());
        assert_eq!(stray_cr::scan_all::<HandLoops>(&mut head), head.len());
        assert_eq!(
            head, before,
            "{name} has a stray CR: the scan would change it"
        );

        let mut scan = c.benchmark_group("scan");
        scan.throughput(Throughput::Bytes(head.len() as u64));
        scan.bench_with_input(BenchmarkId::new("memchr", name), &(), |b, ()| {
            b.iter(|| stray_cr::scan_all::<Memchr>(black_box(&mut head)))
        });
        scan.bench_with_input(BenchmarkId::new("hand", name), &(), |b, ()| {
            b.iter(|| stray_cr::scan_all::<HandLoops>(black_box(&mut head)))
        });
        scan.finish();

        let mut ends = c.benchmark_group("line_ends");
        ends.throughput(Throughput::Bytes(head.len() as u64));
        ends.bench_with_input(BenchmarkId::new("memchr", name), &head, |b, h| {
            b.iter(|| line_ends::<Memchr>(black_box(h)))
        });
        ends.bench_with_input(BenchmarkId::new("hand", name), &head, |b, h| {
            b.iter(|| line_ends::<HandLoops>(black_box(h)))
        });
        ends.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
