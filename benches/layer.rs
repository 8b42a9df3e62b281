//! Per-request cost of sticky sessions, through the public API only.
//!
//! `cargo bench --bench layer` (a few minutes). Groups:
//! * `route/{strip,forward}/<path>`: `StickySessions::route` alone;
//! * `route/strip_verify_always/<path>`: the same with the per-thread memo of
//!   verified tokens off, so a resumed session pays the HMAC every time (as
//!   the first request of a session on a thread does);
//! * `layer/<path>`: the whole `Sticky` service around a trivial inner one
//!   that forwards the request (see below);
//! * `layer_hand_off/<path>`: the same through `StickyHandOff`, which hands
//!   the choice over as an argument instead of a request extension;
//! * `bare/resumed`: the trivial inner service alone, no layer, on the same
//!   request and in the same harness: the floor under the `layer*` rows;
//! * `bare_inner_drops/resumed`, `layer_inner_drops/resumed` and
//!   `layer_hand_off_inner_drops/resumed`: the same three with inner
//!   services that drop the request inside the call, as every `layer*` row
//!   did until 2026-11-29;
//! * `codec/*`: the token codec alone, and `floor/hmac_sha256_33b`, the bare
//!   HMAC-SHA256 over the same 33 bytes a token signs (the floor for
//!   `decode`, and so for a resumed session);
//! * `resolve/<n>` and `route_resumed_at/<n>`: a session's backend found
//!   among 10, 1,000 and 10,000 backends.
//!
//! Requests are cloned from a template outside the timed region
//! (`iter_batched`), because `route` strips the session cookie from them.
//! Batches are small ([`BATCH`]) so that the cloned requests are still in
//! cache when they are routed, as a request just parsed by a server is:
//! large batches measured page faults and cache misses of the bench's own
//! copies instead.
//!
//! Outputs are dropped by criterion after the timed region. `route/*`
//! returns the request and its decision, so it never timed their drop. The
//! trivial inner services of the `layer*` rows used to drop the request
//! (its header map, the rewritten `Cookie` value) inside the call, and so
//! inside the timed region, though the layer itself drops nothing and a
//! proxy forwards the request rather than freeing it. Since 2026-11-29 they
//! move it (and the hand-off's `Pinned`) into a queue, [`support::Upstream`],
//! which each batch's setup empties outside the timed region, so both kinds
//! of row time the same kind of work. The `*_inner_drops` rows keep the old
//! harness so that the two can be compared in one run (BENCHMARKS-HISTORY.md 7.1.1).

mod support;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::convert::Infallible;
use std::hint::black_box;
use std::time::Duration;
use support::{
    KEY, Path, Upstream, call_now, fixture, fixture_with, forwarding_hand_off_inner,
    forwarding_inner, hand_off_inner, inner,
};
use tower::Layer;
use tower_sticky::balance::{Balance, RoundRobin};
use tower_sticky::sticky::{StickyHandOffLayer, StickyLayer};

/// Requests per timed batch.
const BATCH: u64 = 32;

fn route(c: &mut Criterion) {
    for (mode, forward, remember) in [
        ("strip", false, true),
        ("forward", true, true),
        ("strip_verify_always", false, false),
    ] {
        let fx = fixture_with(4, forward, remember);
        fx.check(forward);
        let mut group = c.benchmark_group(format!("route/{mode}"));
        for path in Path::ALL {
            let template = fx.request(path);
            group.bench_function(path.name(), |b| route_batched(b, &fx, &template));
        }
        group.finish();
    }
}

/// Routes fresh clones of `template`, cloned outside the timed region.
fn route_batched(
    b: &mut criterion::Bencher<'_>,
    fx: &support::Fixture,
    template: &http::Request<()>,
) {
    b.iter_batched(
        || template.clone(),
        |mut req| {
            let decision = fx.sessions.route(&mut req);
            (req, decision)
        },
        BatchSize::NumIterations(BATCH),
    );
}

fn layer(c: &mut Criterion) {
    let fx = fixture(4, false);
    let resumed = fx.request(Path::Resumed);
    let upstream = Upstream::with_capacity(BATCH as usize);
    // The harness floor: the inner service alone on the same request.
    one_row(
        c,
        "bare",
        &upstream,
        &resumed,
        forwarding_inner(upstream.clone()),
    );
    let layer = StickyLayer::from_sessions(fx.sessions.clone());
    let svc = layer.layer(forwarding_inner(upstream.clone()));
    layer_group(c, "layer", &upstream, &fx, svc);
    let hand_off = StickyHandOffLayer::from_sessions(fx.sessions.clone());
    let svc = hand_off.layer(forwarding_hand_off_inner(upstream.clone()));
    layer_group(c, "layer_hand_off", &upstream, &fx, svc);

    // The same with inner services that drop the request inside the timed
    // region: what `layer*` measured until 2026-11-29 (BENCHMARKS-HISTORY.md 7.1.1).
    one_row(c, "bare_inner_drops", &upstream, &resumed, inner());
    one_row(
        c,
        "layer_inner_drops",
        &upstream,
        &resumed,
        layer.layer(inner()),
    );
    let svc = hand_off.layer(hand_off_inner());
    one_row(c, "layer_hand_off_inner_drops", &upstream, &resumed, svc);
}

/// `<name>/<path>`: every path through the whole service `svc`.
fn layer_group<S, B>(
    c: &mut Criterion,
    name: &str,
    upstream: &Upstream,
    fx: &support::Fixture,
    mut svc: S,
) where
    S: tower::Service<http::Request<()>, Response = http::Response<B>, Error = Infallible>,
{
    let mut group = c.benchmark_group(name);
    for path in Path::ALL {
        let template = fx.request(path);
        group.bench_function(path.name(), |b| {
            call_batched(b, upstream, &mut svc, &template);
        });
    }
    group.finish();
}

/// `<name>/resumed`: `svc` on the resumed request only.
fn one_row<S, B>(
    c: &mut Criterion,
    name: &str,
    upstream: &Upstream,
    template: &http::Request<()>,
    mut svc: S,
) where
    S: tower::Service<http::Request<()>, Response = http::Response<B>, Error = Infallible>,
{
    let mut group = c.benchmark_group(name);
    group.bench_function(Path::Resumed.name(), |b| {
        call_batched(b, upstream, &mut svc, template);
    });
    group.finish();
}

/// Calls `svc` on fresh clones of `template`, cloned outside the timed
/// region; what the previous batch sent upstream is dropped there too, the
/// responses after it.
fn call_batched<S, B>(
    b: &mut criterion::Bencher<'_>,
    upstream: &Upstream,
    svc: &mut S,
    template: &http::Request<()>,
) where
    S: tower::Service<http::Request<()>, Response = http::Response<B>, Error = Infallible>,
{
    b.iter_batched(
        || {
            upstream.clear();
            template.clone()
        },
        |req| call_now(svc, req),
        BatchSize::NumIterations(BATCH),
    );
}

fn codec(c: &mut Criterion) {
    let fx = fixture(4, false);
    let token = fx.session_token(1_000);
    let encoded = fx.codec.encode(&token);
    c.bench_function("codec/encode", |b| {
        b.iter(|| fx.codec.encode(black_box(&token)));
    });
    c.bench_function("codec/decode", |b| {
        b.iter(|| fx.codec.decode(black_box(encoded.as_str())));
    });
    c.bench_function("codec/decode_remembered", |b| {
        b.iter(|| fx.codec.decode_remembered(black_box(encoded.as_str())));
    });

    // The floor: what `decode` cannot avoid. The codec keeps a keyed HMAC
    // state (with its scope absorbed) and clones it per token; so does this.
    let keyed = <Hmac<Sha256> as KeyInit>::new_from_slice(&KEY).unwrap();
    let body = [0x5au8; 33];
    c.bench_function("floor/hmac_sha256_33b", |b| {
        b.iter(|| {
            let mut mac = keyed.clone();
            mac.update(black_box(&body));
            mac.finalize().into_bytes()
        });
    });
}

fn resolve(c: &mut Criterion) {
    let mut group = c.benchmark_group("resolve");
    for n in [10usize, 1_000, 10_000] {
        let fx = fixture(n, false);
        let snapshot = fx.sessions.backends().snapshot();
        let balancer = RoundRobin::new();
        group.bench_function(n.to_string(), |b| {
            b.iter(|| {
                let r = Balance::<usize>::resolve(&balancer, &snapshot, black_box(fx.pinned));
                matches!(r, tower_sticky::balance::Resolution::Pinned(_))
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("route_resumed_at");
    for n in [10usize, 1_000, 10_000] {
        let fx = fixture(n, false);
        let template = fx.request(Path::Resumed);
        group.bench_function(n.to_string(), |b| route_batched(b, &fx, &template));
    }
    group.finish();
}

fn config() -> Criterion {
    // Modest settings so the whole file runs in a few minutes on two shared
    // cores; the per-iteration costs are sub-microsecond, so 50 samples of
    // 3 s are still millions of iterations.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = route, layer, codec, resolve
}
criterion_main!(benches);
