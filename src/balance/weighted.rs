use super::rng::Rng;
use super::{Balance, PickContext, Snapshot};

/// Picks new sessions in proportion to the backends' weights
/// (`backendRefs[].weight`); weight 0 takes no new sessions. Sessions already
/// pinned ignore weights.
///
/// ```
/// use tower_sticky::balance::{Balance, Backends, BackendId, PickContext, Weighted};
///
/// let backends: Backends<&str> = [
///     (BackendId::from_name("a"), "a", 70),
///     (BackendId::from_name("b"), "b", 30),
///     (BackendId::from_name("c"), "c", 0),
/// ].into_iter().collect();
/// let w = Weighted::with_seed(1);
/// let req = http::Request::new(());
/// let ctx = PickContext { method: req.method(), uri: req.uri(), headers: req.headers() };
/// let snap = backends.snapshot();
/// let mut counts = [0; 3];
/// for _ in 0..10_000 {
///     counts[w.pick(&ctx, &snap).unwrap()] += 1;
/// }
/// assert!((6_700..7_300).contains(&counts[0]), "{counts:?}");
/// assert_eq!(counts[2], 0);
/// ```
#[derive(Debug)]
pub struct Weighted {
    rng: Rng,
}

impl Weighted {
    /// Seeded from the process's entropy.
    #[must_use]
    pub fn new() -> Self {
        Weighted {
            rng: Rng::from_entropy(),
        }
    }

    /// Seeded for reproducible tests.
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Weighted {
            rng: Rng::seeded(seed),
        }
    }
}

impl Default for Weighted {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + Sync + 'static> Balance<T> for Weighted {
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
        let mut r = ((u128::from(self.rng.next_u64()) * u128::from(total)) >> 64) as u64;
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
