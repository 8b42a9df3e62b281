use super::random::eligible;
use super::rng::Rng;
use super::{Balance, PickContext, Snapshot};

/// Power of two choices: draws two eligible backends at random and takes the
/// one with fewer requests in flight (tower's `p2c` over `PendingRequests`).
#[derive(Debug)]
pub struct PowerOfTwoChoices {
    rng: Rng,
}

impl PowerOfTwoChoices {
    /// Seeded from the process's entropy.
    #[must_use]
    pub fn new() -> Self {
        PowerOfTwoChoices {
            rng: Rng::from_entropy(),
        }
    }

    /// Seeded for reproducible tests.
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        PowerOfTwoChoices {
            rng: Rng::seeded(seed),
        }
    }
}

impl Default for PowerOfTwoChoices {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + Sync + 'static> Balance<T> for PowerOfTwoChoices {
    fn pick(&self, _: &PickContext<'_>, backends: &Snapshot<T>) -> Option<usize> {
        let a = eligible(&self.rng, backends)?;
        let b = eligible(&self.rng, backends)?;
        let list = backends.endpoints();
        Some(if list[b].in_flight() < list[a].in_flight() {
            b
        } else {
            a
        })
    }
}
