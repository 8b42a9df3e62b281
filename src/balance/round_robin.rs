use super::{Balance, PickContext, Snapshot};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Takes the backends that accept new sessions in turn.
///
/// ```
/// use tower_sticky::balance::{Balance, Backends, BackendId, PickContext, RoundRobin};
///
/// let backends: Backends<u8> = (0..3).map(|i| (BackendId::from_name(&i.to_string()), i, 1)).collect();
/// let rr = RoundRobin::new();
/// let req = http::Request::new(());
/// let ctx = PickContext { method: req.method(), uri: req.uri(), headers: req.headers() };
/// let snap = backends.snapshot();
/// let picks: Vec<_> = (0..6).map(|_| rr.pick(&ctx, &snap).unwrap()).collect();
/// assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
/// ```
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// Starts at the first backend.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: Send + Sync + 'static> Balance<T> for RoundRobin {
    fn pick(&self, _: &PickContext<'_>, backends: &Snapshot<T>) -> Option<usize> {
        let n = backends.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start.wrapping_add(k)) % n)
            .find(|&i| backends.endpoints()[i].takes_new_sessions())
    }
}
