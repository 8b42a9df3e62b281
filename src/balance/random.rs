use super::rng::Rng;
use super::{Balance, PickContext, Snapshot};

/// Picks uniformly among the backends that accept new sessions.
#[derive(Debug)]
pub struct Random {
    rng: Rng,
}

impl Random {
    /// Seeded from the process's entropy.
    #[must_use]
    pub fn new() -> Self {
        Random {
            rng: Rng::from_entropy(),
        }
    }

    /// Seeded for reproducible tests.
    #[must_use]
    pub fn with_seed(seed: u64) -> Self {
        Random {
            rng: Rng::seeded(seed),
        }
    }
}

impl Default for Random {
    fn default() -> Self {
        Self::new()
    }
}

/// Uniform among eligible endpoints: a few blind draws, then a scan.
pub(crate) fn eligible<T>(rng: &Rng, backends: &Snapshot<T>) -> Option<usize> {
    let list = backends.endpoints();
    if list.is_empty() {
        return None;
    }
    for _ in 0..4 {
        let i = rng.below(list.len());
        if list[i].takes_new_sessions() {
            return Some(i);
        }
    }
    let count = list.iter().filter(|e| e.takes_new_sessions()).count();
    if count == 0 {
        return None;
    }
    let nth = rng.below(count);
    list.iter()
        .enumerate()
        .filter(|(_, e)| e.takes_new_sessions())
        .nth(nth)
        .map(|(i, _)| i)
}

impl<T: Send + Sync + 'static> Balance<T> for Random {
    fn pick(&self, _: &PickContext<'_>, backends: &Snapshot<T>) -> Option<usize> {
        eligible(&self.rng, backends)
    }
}
