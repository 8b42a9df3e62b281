//! Instructions per resumed request through the whole `Sticky` service, for
//! callgrind: `valgrind --tool=callgrind target/release/deps/instructions-* MODE`
//! with MODE `clone` (cloning the request only) or `layer` (clone and call);
//! the difference over N is the layer's own cost.

// The other benches use the rest of it.
#[allow(dead_code)]
mod support;

use support::{Path, call_now, fixture, inner};
use tower::Layer;
use tower_sticky::sticky::StickyLayer;

const N: usize = 20_000;

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let fx = fixture(4, false);
    let mut svc = StickyLayer::from_sessions(fx.sessions.clone()).layer(inner());
    let template = fx.request(Path::Resumed);
    // Warm the memo and the lazy statics.
    for _ in 0..100 {
        std::hint::black_box(call_now(&mut svc, template.clone()));
    }
    for _ in 0..N {
        let req = template.clone();
        if mode == "layer" {
            std::hint::black_box(call_now(&mut svc, req));
        } else {
            std::hint::black_box(req);
        }
    }
}
