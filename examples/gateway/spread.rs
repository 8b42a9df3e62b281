//! A deterministic weighted balancer: new sessions follow the weights
//! closely from the first request on, with no lock.
//!
//! Pick `n` takes the point `frac(n·φ)` (φ the golden ratio, a Weyl
//! sequence) on the line of cumulative weights. Consecutive points are
//! ≈0.618 apart, so a handful of new sessions already spreads over several
//! equal-weight pods (the seed's "responses spread over several pods" holds
//! every time, not with high probability), and a 70/30 split is 70/30 within
//! a few requests. The core's `Weighted` draws at random instead; both
//! implement [`Balance`], which is the point of the trait.

use std::sync::atomic::{AtomicU64, Ordering};
use tower_sticky::balance::{Balance, PickContext, Snapshot};

/// 2^64 / φ: adding it walks the Weyl sequence `frac(n·φ)` in 64-bit fixed
/// point.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Weighted, low-discrepancy, lock-free picks; weight 0 takes no new
/// sessions and pinned sessions ignore weights (the trait's default
/// `resolve`).
#[derive(Debug, Default)]
pub struct Spread {
    next: AtomicU64,
}

impl Spread {
    /// Starts the sequence at 0.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: Send + Sync + 'static> Balance<T> for Spread {
    fn pick(&self, _: &PickContext<'_>, backends: &Snapshot<T>) -> Option<usize> {
        let list = backends.endpoints();
        let weight = |i: usize| {
            let e = &list[i];
            if e.takes_new_sessions() {
                u64::from(e.weight())
            } else {
                0
            }
        };
        let total: u64 = (0..list.len()).map(weight).sum();
        if total == 0 {
            return None;
        }
        let point = self.next.fetch_add(GOLDEN, Ordering::Relaxed);
        let mut r = ((u128::from(point) * u128::from(total)) >> 64) as u64;
        (0..list.len()).find(|&i| {
            let w = weight(i);
            if r < w {
                true
            } else {
                r -= w;
                false
            }
        })
    }
}
