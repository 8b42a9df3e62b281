//! Heap allocations of a resumed request through each layer, counted
//! exactly by a counting global allocator (per thread, so tests running in
//! parallel do not add to each other's counts). `benches/allocations.rs`
//! prints the full table; this guards the figures the docs promise.

use futures_util::FutureExt;
use http::{Request, Response};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::convert::Infallible;
use std::future::ready;
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_sticky::balance::{BackendId, Backends};
use tower_sticky::carrier::ClientTls;
use tower_sticky::duration::Duration;
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::{
    Outcome, Pinned, ResponseBody, StickyBuilder, StickyHandOffLayer, StickyLayer, StickySessions,
};
use tower_sticky::token::{KeySet, ManualClock, SigningKey};

/// `System`, counting the calling thread's allocations (a `realloc` counts
/// as one: it may move the block).
struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator may run while the thread is being torn down.
    let _ = ALLOCS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counter is a thread-local `Cell` with no destructor.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const REQUESTS: u64 = 1_000;

fn sessions() -> StickySessions<usize> {
    let policy = SessionPolicy::cookie("Session-A")
        .unwrap()
        .permanent(Duration::from_secs(60))
        .unwrap()
        .with_idle_timeout(Duration::from_secs(30))
        .unwrap();
    let pods: Backends<usize> = (0..4)
        .map(|i| (BackendId::from_name(&format!("pod-{i}")), i, 1))
        .collect();
    StickyBuilder::new(policy, KeySet::new(SigningKey::new([3; 32]).unwrap()), pods)
        .clock(ManualClock::new(1_700_000_000_000))
        .build()
        .unwrap()
}

/// A resumed request (the session cookie among others), made from the
/// `Set-Cookie` of a first request through `svc`.
fn resumed_request<S, B>(svc: &mut S) -> Request<()>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let first = call(svc, Request::new(()));
    let set_cookie = first.headers()["set-cookie"].to_str().unwrap();
    let session = set_cookie.split(';').next().unwrap();
    Request::builder()
        .uri("/api/items")
        .header("cookie", format!("theme=dark; {session}; lang=en"))
        .body(())
        .unwrap()
}

/// Calls `svc`, whose inner future is ready at once, without a runtime.
fn call<S, B>(svc: &mut S, req: Request<()>) -> Response<B>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let svc = svc.ready().now_or_never().unwrap().unwrap();
    svc.call(req).now_or_never().unwrap().unwrap()
}

/// Allocations per resumed request through `svc`, the requests cloned and
/// the responses dropped outside the counted region. The inner service
/// answers with the outcome it was handed as the body, which adds no
/// allocation of its own.
fn allocations_per_resumed_request<S>(svc: S) -> u64
where
    S: Service<Request<()>, Response = Response<ResponseBody<Option<Outcome>>>, Error = Infallible>,
{
    allocations_per_resumed_request_with(svc, |_| {})
}

/// [`allocations_per_resumed_request`], `prepare` applied to the request
/// template first.
fn allocations_per_resumed_request_with<S>(
    mut svc: S,
    prepare: impl FnOnce(&mut Request<()>),
) -> u64
where
    S: Service<Request<()>, Response = Response<ResponseBody<Option<Outcome>>>, Error = Infallible>,
{
    let mut template = resumed_request(&mut svc);
    prepare(&mut template);
    // Warm up: the per-thread memo of verified tokens, lazy statics.
    for _ in 0..10 {
        let res = call(&mut svc, template.clone());
        assert_eq!(res.body().get_ref(), Some(&Some(Outcome::Resumed)));
    }
    let requests: Vec<_> = (0..REQUESTS).map(|_| template.clone()).collect();
    let mut responses = Vec::with_capacity(requests.len());
    let before = ALLOCS.with(Cell::get);
    for req in requests {
        responses.push(call(&mut svc, req));
    }
    let after = ALLOCS.with(Cell::get);
    drop(responses);
    (after - before).div_ceil(REQUESTS)
}

#[test]
fn hand_off_layer_resumes_a_session_without_allocating() {
    let inner = service_fn(|(pinned, _req): (Pinned<usize>, Request<()>)| {
        ready(Ok::<_, Infallible>(Response::new(Some(pinned.outcome()))))
    });
    let svc = StickyHandOffLayer::from_sessions(sessions()).layer(inner);
    assert_eq!(allocations_per_resumed_request(svc), 0);
}

/// The extension layer's trivial inner service: reads the `Pinned` the
/// layer inserted.
fn reads_the_extension(
    req: Request<()>,
) -> std::future::Ready<Result<Response<Option<Outcome>>, Infallible>> {
    let pinned = req.extensions().get::<Pinned<usize>>().unwrap();
    ready(Ok(Response::new(Some(pinned.outcome()))))
}

#[test]
fn extension_layer_resumed_allocations_are_only_the_extension_map() {
    let svc = StickyLayer::from_sessions(sessions()).layer(service_fn(reads_the_extension));
    // The map's box, its table and the boxed `Pinned`: http::Extensions'
    // cost, which the hand-off layer exists to avoid.
    assert!(allocations_per_resumed_request(svc) <= 3);
}

#[test]
fn extension_layer_allocates_only_the_box_when_the_request_has_extensions() {
    let svc = StickyLayer::from_sessions(sessions()).layer(service_fn(reads_the_extension));
    // A request that already carries an extension (a TLS proxy's
    // `ClientTls`, say) has the map and its table: only the boxed `Pinned`
    // is left, the one allocation the issue allows.
    let with_tls = |req: &mut Request<()>| {
        req.extensions_mut().insert(ClientTls);
    };
    assert_eq!(allocations_per_resumed_request_with(svc, with_tls), 1);
}
