use super::rng::Rng;
use super::{Balance, Endpoint, PickContext, Snapshot};
use std::sync::atomic::{AtomicU64, Ordering};

/// 2^64 / φ: adding it walks the Weyl sequence `frac(n·φ)` in 64-bit fixed
/// point.
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// Picks new sessions in proportion to the backends' weights
/// (`backendRefs[].weight`); weight 0 takes no new sessions. Sessions already
/// pinned ignore weights (the trait's default `resolve`).
///
/// By default the picks follow a low-discrepancy sequence: pick `n` lands at
/// `frac(n·φ)` on the line of cumulative weights. Consecutive points are
/// about 0.618 apart, so a handful of new sessions already covers several
/// equal-weight backends and a 70/30 split is 70/30 within a few requests,
/// with no lock and no randomness to get unlucky with.
/// [`random`](Self::random) and [`with_seed`](Self::with_seed) draw at
/// random instead (several proxies then do not move in step).
///
/// ```
/// use tower_sticky::balance::{Balance, Backends, BackendId, PickContext, Weighted};
///
/// let backends: Backends<&str> = [
///     (BackendId::from_name("a"), "a", 70),
///     (BackendId::from_name("b"), "b", 30),
///     (BackendId::from_name("c"), "c", 0),
/// ].into_iter().collect();
/// let req = http::Request::new(());
/// let ctx = PickContext { method: req.method(), uri: req.uri(), headers: req.headers() };
/// let snap = backends.snapshot();
///
/// let w = Weighted::new();
/// let mut counts = [0; 3];
/// for _ in 0..100 {
///     counts[w.pick(&ctx, &snap).unwrap()] += 1;
/// }
/// assert_eq!(counts, [70, 30, 0]);
///
/// let r = Weighted::with_seed(1);
/// let mut counts = [0; 3];
/// for _ in 0..10_000 {
///     counts[r.pick(&ctx, &snap).unwrap()] += 1;
/// }
/// assert!((6_700..7_300).contains(&counts[0]), "{counts:?}");
/// assert_eq!(counts[2], 0);
/// ```
#[derive(Debug)]
pub struct Weighted {
    source: Source,
}

#[derive(Debug)]
enum Source {
    Sequence(AtomicU64),
    Random(Rng),
}

impl Weighted {
    /// Low-discrepancy picks, starting at the first backend.
    #[must_use]
    pub fn new() -> Self {
        Weighted {
            source: Source::Sequence(AtomicU64::new(0)),
        }
    }

    /// Random picks, seeded from the process's entropy.
    #[must_use]
    pub fn random() -> Self {
        Weighted {
            source: Source::Random(Rng::from_entropy()),
        }
    }

    /// Random picks, seeded for reproducible tests.
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Weighted {
            source: Source::Random(Rng::seeded(seed)),
        }
    }

    /// A point uniform (or evenly spread) over `0..2^64`.
    fn point(&self) -> u64 {
        match &self.source {
            Source::Sequence(next) => next.fetch_add(GOLDEN, Ordering::Relaxed),
            Source::Random(rng) => rng.next_u64(),
        }
    }
}

impl Default for Weighted {
    fn default() -> Self {
        Self::new()
    }
}

impl Weighted {
    /// The weighted pick over the endpoints for which `eligible` holds
    /// (what [`pick`](Balance::pick) does with those that take new
    /// sessions; the engine's panic rule with those that would, health
    /// aside).
    pub(crate) fn pick_where<T>(
        &self,
        backends: &Snapshot<T>,
        eligible: impl Fn(&Endpoint<T>) -> bool,
    ) -> Option<usize> {
        let list = backends.endpoints();
        let weight = |i: usize| {
            let e = &list[i];
            if eligible(e) {
                u64::from(e.weight())
            } else {
                0
            }
        };
        let total: u64 = (0..list.len()).map(weight).sum();
        if total == 0 {
            return None;
        }
        let mut r = ((u128::from(self.point()) * u128::from(total)) >> 64) as u64;
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

impl<T: Send + Sync + 'static> Balance<T> for Weighted {
    fn pick(&self, _: &PickContext<'_>, backends: &Snapshot<T>) -> Option<usize> {
        self.pick_where(backends, Endpoint::takes_new_sessions)
    }
}
