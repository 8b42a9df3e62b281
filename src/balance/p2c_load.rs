use super::random::eligible;
use super::rng::Rng;
use super::{Balance, PickContext, Snapshot};
use tower::load::Load;

/// Power of two choices by the backends' own load metric: draws two
/// eligible backends at random and takes the one whose target reports the
/// lower [`tower::load::Load`] (tower's `p2c` over any `Load`, such as
/// `PeakEwma`, `PendingRequests` or a metric of the proxy's own). Feature
/// `tower-load`.
///
/// [`PowerOfTwoChoices`](super::PowerOfTwoChoices) compares the requests
/// this crate counts in flight; this one asks the target, so a proxy that
/// already measures latency or queue depth per backend steers new sessions
/// by that. Like every balancer here it only places new sessions: a
/// session stays on its backend however loaded it becomes.
///
/// ```
/// use tower::load::Constant;
/// use tower_sticky::balance::{BackendId, Backends, Balance, P2cByLoad, PickContext};
///
/// // `Constant` wraps a target with a fixed load: pod-b is the busier.
/// let backends: Backends<Constant<&str, u32>> = [("pod-a", 1), ("pod-b", 9)]
///     .into_iter()
///     .map(|(pod, load)| (BackendId::from_name(pod), Constant::new(pod, load), 1))
///     .collect();
/// let balancer = P2cByLoad::with_seed(7);
/// let req = http::Request::new(());
/// let ctx = PickContext { method: req.method(), uri: req.uri(), headers: req.headers() };
/// let snapshot = backends.snapshot();
/// let to_a = (0..100).filter(|_| balancer.pick(&ctx, &snapshot) == Some(0)).count();
/// assert!(to_a > 60, "{to_a}"); // pod-b only when both draws are pod-b
/// ```
#[derive(Debug)]
pub struct P2cByLoad {
    rng: Rng,
}

impl P2cByLoad {
    /// Seeded from the process's entropy.
    #[must_use]
    pub fn new() -> Self {
        P2cByLoad {
            rng: Rng::from_entropy(),
        }
    }

    /// Seeded for reproducible tests.
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        P2cByLoad {
            rng: Rng::seeded(seed),
        }
    }
}

impl Default for P2cByLoad {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Balance<T> for P2cByLoad
where
    T: Load + Send + Sync + 'static,
{
    fn pick(&self, _: &PickContext<'_>, backends: &Snapshot<T>) -> Option<usize> {
        let a = eligible(&self.rng, backends)?;
        let b = eligible(&self.rng, backends)?;
        if a == b {
            return Some(a);
        }
        let list = backends.endpoints();
        // A metric that does not compare (NaN) keeps the first draw.
        Some(if list[b].target().load() < list[a].target().load() {
            b
        } else {
            a
        })
    }
}
