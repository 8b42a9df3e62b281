//! Heap allocations per request on each path, for `StickySessions::route`,
//! for the whole `Sticky` service and for the whole `StickyHandOff` service
//! (the choice handed over as an argument), with the session cookie
//! stripped (the default) and forwarded (`forward_session_value(true)`).
//!
//! `cargo bench --bench allocations` prints a table; it asserts nothing, so
//! that a regression is reported rather than hidden behind a failed run.
//! Counts are exact (not timed), so one run is enough.

// `layer.rs` uses the rest of it.
#[allow(dead_code)]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use support::{Path, call_now, fixture, hand_off_inner, inner};
use tower::Layer;
use tower_sticky::carrier::ClientTls;
use tower_sticky::sticky::{StickyHandOffLayer, StickyLayer};

/// `System`, counting every allocation (a `realloc` counts as one: it may
/// move the block) and the bytes asked for.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counters are side effects that touch no memory of theirs.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Requests measured per row; the counts are per request, so any
/// allocation that happens only now and then still shows as a fraction.
const N: usize = 10_000;

/// Allocations and bytes per call of `f` over `inputs`; the inputs are made
/// and the outputs dropped outside the counted region.
fn per_call<I, O>(inputs: Vec<I>, mut f: impl FnMut(I) -> O) -> (f64, f64) {
    let mut outputs = Vec::with_capacity(inputs.len());
    let n = inputs.len() as f64;
    let (a0, b0) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    for input in inputs {
        outputs.push(f(input));
    }
    let (a1, b1) = (ALLOCS.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst));
    drop(black_box(outputs));
    ((a1 - a0) as f64 / n, (b1 - b0) as f64 / n)
}

/// [`per_call`], dropping each output before the next call, as a server
/// does once a request is done: what a steady stream of requests costs.
fn per_call_one_at_a_time<I, O>(inputs: Vec<I>, mut f: impl FnMut(I) -> O) -> (f64, f64) {
    per_call(inputs, |i| drop(black_box(f(i))))
}

fn cell((allocs, bytes): (f64, f64)) -> String {
    format!("{allocs:>6.2} / {bytes:>6.0} B")
}

fn main() {
    println!("heap allocations per request (allocations / bytes), {N} requests per cell");
    println!();
    println!(
        "(\"all alive\": the {N} requests and responses stay alive until the end; \"one at a time\": each is dropped before the next)"
    );
    println!();
    println!(
        "| {:<12} | {:<7} | {:<17} | {:<17} | {:<17} | {:<17} | {:<17} | {:<17} |",
        "path",
        "cookie",
        "route, all alive",
        "route, one at a time",
        "layer, all alive",
        "layer, one at a time",
        "hand-off, all alive",
        "hand-off, one at a time"
    );
    println!(
        "|{:-<14}|{:-<9}|{:-<19}|{:-<22}|{:-<19}|{:-<22}|{:-<22}|{:-<25}|",
        "", "", "", "", "", "", "", ""
    );
    for (mode, forward) in [("strip", false), ("forward", true)] {
        let fx = fixture(4, forward);
        fx.check(forward);
        let mut svc = StickyLayer::from_sessions(fx.sessions.clone()).layer(inner());
        let mut hand_off =
            StickyHandOffLayer::from_sessions(fx.sessions.clone()).layer(hand_off_inner());
        for path in Path::ALL {
            let template = fx.request(path);
            let make = || (0..N).map(|_| template.clone()).collect::<Vec<_>>();
            // Warm up: first-use allocations (lazy statics, a round-robin
            // counter's first touch) are not per request.
            let _ = per_call(make(), |mut req| fx.sessions.route(&mut req));
            let route = per_call(make(), |mut req| {
                let decision = fx.sessions.route(&mut req);
                (req, decision)
            });
            let route_steady = per_call_one_at_a_time(make(), |mut req| {
                let decision = fx.sessions.route(&mut req);
                (req, decision)
            });
            let layer = per_call(make(), |req| call_now(&mut svc, req));
            let layer_steady = per_call_one_at_a_time(make(), |req| call_now(&mut svc, req));
            let hand_off_alive = per_call(make(), |req| call_now(&mut hand_off, req));
            let hand_off_steady =
                per_call_one_at_a_time(make(), |req| call_now(&mut hand_off, req));
            println!(
                "| {:<12} | {:<7} | {} | {}    | {} | {}    | {}    | {}       |",
                path.name(),
                mode,
                cell(route),
                cell(route_steady),
                cell(layer),
                cell(layer_steady),
                cell(hand_off_alive),
                cell(hand_off_steady)
            );
        }
    }

    // A request that already carries an extension (a TLS proxy's
    // `ClientTls`): `http::Extensions` has its map and table, so the
    // extension layer adds only the boxed `Pinned`.
    let fx = fixture(4, false);
    let mut svc = StickyLayer::from_sessions(fx.sessions.clone()).layer(inner());
    let mut hand_off =
        StickyHandOffLayer::from_sessions(fx.sessions.clone()).layer(hand_off_inner());
    let mut template = fx.request(Path::Resumed);
    template.extensions_mut().insert(ClientTls);
    let make = || (0..N).map(|_| template.clone()).collect::<Vec<_>>();
    let _ = per_call(make(), |req| call_now(&mut svc, req));
    let layer = per_call_one_at_a_time(make(), |req| call_now(&mut svc, req));
    let hand_off_steady = per_call_one_at_a_time(make(), |req| call_now(&mut hand_off, req));
    println!();
    println!(
        "resumed, strip, request already carrying an extension (ClientTls), one at a time: layer {}, hand-off {}",
        cell(layer),
        cell(hand_off_steady)
    );

    let token = fx.session_token(1_000);
    let encoded = fx.codec.encode(&token);
    let encode = per_call(vec![(); N], |()| fx.codec.encode(black_box(&token)));
    let decode = per_call(vec![(); N], |()| {
        fx.codec.decode(black_box(encoded.as_str())).is_ok()
    });
    println!();
    println!("codec/encode: {}", cell(encode));
    println!("codec/decode: {}", cell(decode));
}
