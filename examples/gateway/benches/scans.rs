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
//! `<finder>` is
//! * `hand` ([`HandLoops`]): the eight-bytes-at-a-time loop and the iterator
//!   search for `:` the scanner had before;
//! * `memchr` ([`Memchr`]): `memchr2` for CR or LF, `memchr` for `:`;
//! * `adopted` ([`stray_cr::WordsThenMemchr`], what the gateway uses): the
//!   hand loops for the first [`stray_cr::SHORT`] bytes, `memchr` beyond.
//!
//! `memmem` has no use here: the scanner never looks for a multi-byte
//! needle.
//!
//! The heads hold no stray CR, so scanning one in place leaves it as it was
//! and every iteration does the same work.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use std::hint::black_box;
use std::time::Duration;
use tower_sticky_gateway::listen::stray_cr::{self, Find, WordsThenMemchr};

/// The scanner's searches as they were before `memchr`.
enum HandLoops {}

impl Find for HandLoops {
    fn plain_run(data: &[u8]) -> usize {
        stray_cr::plain_run_words(data)
    }

    fn colon(data: &[u8]) -> Option<usize> {
        data.iter().position(|&b| b == b':')
    }
}

/// The scanner's searches with `memchr` only.
enum Memchr {}

impl Find for Memchr {
    fn plain_run(data: &[u8]) -> usize {
        memchr::memchr2(b'\r', b'\n', data).unwrap_or(data.len())
    }

    fn colon(data: &[u8]) -> Option<usize> {
        memchr::memchr(b':', data)
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
        // Every finder must do the same thing before their speed matters.
        let ends = line_ends::<HandLoops>(&head);
        assert_eq!(line_ends::<Memchr>(&head), ends);
        assert_eq!(line_ends::<WordsThenMemchr>(&head), ends);
        let before = head.clone();
        assert_eq!(stray_cr::scan_all::<HandLoops>(&mut head), head.len());
        assert_eq!(stray_cr::scan_all::<Memchr>(&mut head), head.len());
        assert_eq!(stray_cr::scan_all::<WordsThenMemchr>(&mut head), head.len());
        assert_eq!(
            head, before,
            "{name} has a stray CR: the scan would change it"
        );

        let mut scan = c.benchmark_group("scan");
        scan.throughput(Throughput::Bytes(head.len() as u64));
        bench_scan::<HandLoops>(&mut scan, "hand", name, &mut head);
        bench_scan::<Memchr>(&mut scan, "memchr", name, &mut head);
        bench_scan::<WordsThenMemchr>(&mut scan, "adopted", name, &mut head);
        scan.finish();

        let mut ends = c.benchmark_group("line_ends");
        ends.throughput(Throughput::Bytes(head.len() as u64));
        bench_line_ends::<HandLoops>(&mut ends, "hand", name, &head);
        bench_line_ends::<Memchr>(&mut ends, "memchr", name, &head);
        bench_line_ends::<WordsThenMemchr>(&mut ends, "adopted", name, &head);
        ends.finish();
    }
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn bench_scan<F: Find>(group: &mut Group<'_>, finder: &str, name: &str, head: &mut [u8]) {
    group.bench_function(BenchmarkId::new(finder, name), |b| {
        b.iter(|| stray_cr::scan_all::<F>(black_box(&mut *head)))
    });
}

fn bench_line_ends<F: Find>(group: &mut Group<'_>, finder: &str, name: &str, head: &[u8]) {
    group.bench_function(BenchmarkId::new(finder, name), |b| {
        b.iter(|| line_ends::<F>(black_box(head)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}

/// `SCANS_ONLY=<finder>/<head> SCANS_ITERS=n`: no criterion, only `n`
/// scans of that head with that finder, for an instruction count under
/// callgrind (the difference between `n` and 0 scans, over `n`), which the
/// other helpers compiling on the machine do not blur as they blur time.
fn scans_only(only: &str) {
    let iters: usize = std::env::var("SCANS_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    let (finder, name) = only.split_once('/').expect("SCANS_ONLY=<finder>/<head>");
    let (_, mut head) = heads()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("a head: curl, browser_1k or head_16k");
    let scan: fn(&mut [u8]) -> usize = match finder {
        "hand" => stray_cr::scan_all::<HandLoops>,
        "memchr" => stray_cr::scan_all::<Memchr>,
        "adopted" => stray_cr::scan_all::<WordsThenMemchr>,
        other => panic!("no finder {other}"),
    };
    for _ in 0..iters {
        black_box(scan(black_box(&mut head)));
    }
}

fn main() {
    if let Ok(only) = std::env::var("SCANS_ONLY") {
        return scans_only(&only);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
