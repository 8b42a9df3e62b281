//! Instructions per resumed request through the whole `Sticky` service, for
//! callgrind: `valgrind --tool=callgrind target/release/deps/instructions-* MODE`
//! with MODE `clone` (cloning the request only), `bare` (clone and call the
//! trivial inner service alone, no layer), `route` (clone and
//! `StickySessions::route`), `layer` (clone and call through `Sticky`) or
//! `hand_off` (clone and call through `StickyHandOff`); the difference to
//! `clone` over N is the cost per request.

// The other benches use the rest of it.
#[allow(dead_code)]
mod support;

use support::{Path, call_now, fixture, hand_off_inner, inner};
use tower::Layer;
use tower_sticky::sticky::{StickyHandOffLayer, StickyLayer};

const N: usize = 20_000;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let fx = fixture(4, false);
    let mut svc = StickyLayer::from_sessions(fx.sessions.clone()).layer(inner());
    let mut hand_off =
        StickyHandOffLayer::from_sessions(fx.sessions.clone()).layer(hand_off_inner());
    let mut bare = inner();
    let template = fx.request(Path::Resumed);
    // Warm the memo and the lazy statics.
    for _ in 0..100 {
        std::hint::black_box(call_now(&mut svc, template.clone()));
        std::hint::black_box(call_now(&mut hand_off, template.clone()));
    }
    for _ in 0..N {
        let req = template.clone();
        match mode.as_str() {
            "bare" => drop(std::hint::black_box(call_now(&mut bare, req))),
            "layer" => drop(std::hint::black_box(call_now(&mut svc, req))),
            "hand_off" => drop(std::hint::black_box(call_now(&mut hand_off, req))),
            "route" => {
                let mut req = req;
                let decision = fx.sessions.route(&mut req);
                drop(std::hint::black_box((req, decision)));
            }
            _ => drop(std::hint::black_box(req)),
        }
    }
}
