use super::{BackendId, BackendState, Endpoint};
use arc_swap::{ArcSwap, Guard};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use tower::discover::Change;

/// An immutable view of the membership at one moment: what a
/// [`Balance`](super::Balance) picks from and resolves sessions against,
/// taken from [`Backends::snapshot`]. Membership changes make a new one;
/// endpoint states (atomics) are live in every snapshot.
///
/// Lookups by id are O(1); [`endpoints`](Self::endpoints) keeps insertion
/// order for balancers that scan.
#[derive(Debug)]
pub struct Snapshot<T> {
    endpoints: Vec<Arc<Endpoint<T>>>,
    index: HashMap<BackendId, usize, IdHash>,
}

/// Ids are already uniform hash output (see `BackendId`'s `Hash`), and only
/// the operator chooses them (a client cannot forge a token's id), so the
/// index uses their bits as they are instead of SipHash on every lookup.
type IdHash = std::hash::BuildHasherDefault<IdHasher>;

/// See [`IdHash`].
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `BackendId`, which writes one u64; kept correct.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl<T> Snapshot<T> {
    fn build(endpoints: Vec<Arc<Endpoint<T>>>) -> Self {
        let index = endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id(), i))
            .collect();
        Snapshot { endpoints, index }
    }

    /// Every endpoint, in insertion order.
    #[must_use]
    pub fn endpoints(&self) -> &[Arc<Endpoint<T>>] {
        &self.endpoints
    }

    /// The endpoint with `id`, whatever its state.
    #[must_use]
    pub fn get(&self, id: BackendId) -> Option<&Arc<Endpoint<T>>> {
        self.index.get(&id).map(|&i| &self.endpoints[i])
    }

    /// How many endpoints there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// The position of the endpoint with `id` in
    /// [`endpoints`](Self::endpoints).
    #[must_use]
    pub fn position(&self, id: BackendId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// A snapshot of the endpoints whose ids are not in `ids` (the
    /// backends a request already tried), in the same order. Allocates:
    /// meant for the retry path.
    #[must_use]
    pub fn without(&self, ids: &[BackendId]) -> Snapshot<T> {
        Snapshot::build(
            self.endpoints
                .iter()
                .filter(|e| !ids.contains(&e.id()))
                .cloned()
                .collect(),
        )
    }

    /// Whether the panic rule holds: no endpoint takes new sessions, but
    /// some would if their health were not heard (every one that could
    /// serve is ejected). Then none is down: new sessions go to the
    /// ejected endpoints, and sessions on them stay, as with Envoy's panic
    /// threshold. Scans the endpoints; the request path calls it only when
    /// its backend is down or no backend was found.
    #[must_use]
    pub fn in_panic(&self) -> bool {
        let mut could = false;
        for e in &self.endpoints {
            if e.takes_new_sessions() {
                return false;
            }
            could |= e.takes_new_sessions_ignoring_health();
        }
        could
    }

    /// What the health of this set looks like now: for `/backends`,
    /// `/metrics` and logs.
    #[must_use]
    pub fn health(&self) -> SetHealth {
        let mut health = SetHealth {
            endpoints: self.endpoints.len(),
            taking_new_sessions: 0,
            ejected: 0,
            held_back: 0,
            in_panic: false,
        };
        for e in &self.endpoints {
            health.taking_new_sessions += usize::from(e.takes_new_sessions());
            health.ejected += usize::from(e.health().ejection().is_some());
            health.held_back += usize::from(e.health().held_back());
        }
        health.in_panic = self.in_panic();
        health
    }
}

/// The health of one [`Backends`] set at one moment; see
/// [`Snapshot::health`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetHealth {
    /// Endpoints in the set.
    pub endpoints: usize,
    /// Endpoints that take new sessions now.
    pub taking_new_sessions: usize,
    /// Endpoints the health voice took down
    /// ([`HealthCell::eject`](super::HealthCell::eject)).
    pub ejected: usize,
    /// Endpoints past the failure threshold that the ejection cap keeps in
    /// service ([`HealthCell::held_back`](super::HealthCell::held_back)):
    /// the cap is holding ejections back.
    pub held_back: usize,
    /// The panic rule holds ([`Snapshot::in_panic`]): every endpoint that
    /// could serve is ejected, so all of them serve.
    pub in_panic: bool,
}

impl SetHealth {
    /// Whether the ejection cap is holding ejections back.
    #[must_use]
    pub fn cap_holding(&self) -> bool {
        self.held_back > 0
    }
}

/// The backends behind one route rule; cheap to clone and share.
///
/// Membership changes (insert, remove) swap in a new [`Snapshot`] (one
/// writer at a time); the request path reads the current one through
/// `arc-swap`, without a lock or a shared reference-count increment, so
/// readers on many cores never contend. State changes (serving, draining,
/// down) are atomic on the endpoint and need no swap.
///
/// ```
/// use tower_sticky::balance::{BackendId, BackendState, Backends};
///
/// let backends = Backends::new();
/// backends.insert(BackendId::from_name("pod-a"), "127.0.0.1:3000", 1);
/// backends.insert(BackendId::from_name("pod-b"), "127.0.0.1:3001", 1);
/// backends.set_state(BackendId::from_name("pod-a"), BackendState::Draining);
///
/// let snap = backends.snapshot();
/// assert_eq!(snap.len(), 2);
/// assert_eq!(snap.get(BackendId::from_name("pod-a")).unwrap().state(), BackendState::Draining);
/// ```
pub struct Backends<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    current: ArcSwap<Snapshot<T>>,
    /// Serializes membership changes, so none is lost to a concurrent one.
    writer: Mutex<()>,
}

impl<T> Shared<T> {
    fn new(snapshot: Snapshot<T>) -> Arc<Self> {
        Arc::new(Shared {
            current: ArcSwap::from_pointee(snapshot),
            writer: Mutex::new(()),
        })
    }
}

impl<T> Clone for Backends<T> {
    fn clone(&self) -> Self {
        Backends {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Default for Backends<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Backends<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backends")
            .field("len", &self.snapshot().len())
            .finish()
    }
}

impl<T> Backends<T> {
    /// No backends.
    #[must_use]
    pub fn new() -> Self {
        Backends {
            shared: Shared::new(Snapshot::build(Vec::new())),
        }
    }

    /// The current membership.
    #[must_use]
    pub fn snapshot(&self) -> Arc<Snapshot<T>> {
        self.shared.current.load_full()
    }

    /// The current membership, for the length of one decision: no shared
    /// reference count is touched.
    pub(crate) fn load(&self) -> Guard<Arc<Snapshot<T>>> {
        self.shared.current.load()
    }

    /// Adds a serving backend, replacing one with the same id.
    pub fn insert(&self, id: BackendId, target: T, weight: u32) {
        self.insert_endpoint(Arc::new(Endpoint::new(id, target, weight)));
    }

    /// Adds an endpoint (in whatever state it is), replacing one with the
    /// same id.
    pub fn insert_endpoint(&self, endpoint: Arc<Endpoint<T>>) {
        self.update(|list| {
            list.retain(|e| e.id() != endpoint.id());
            list.push(endpoint);
        });
    }

    /// Removes a backend. Its sessions re-pin on their next request.
    pub fn remove(&self, id: BackendId) -> bool {
        let mut found = false;
        self.update(|list| {
            let before = list.len();
            list.retain(|e| e.id() != id);
            found = list.len() != before;
        });
        found
    }

    /// Applies a `tower::discover` change.
    pub fn apply(&self, change: Change<BackendId, (T, u32)>) {
        match change {
            Change::Insert(id, (target, weight)) => self.insert(id, target, weight),
            Change::Remove(id) => {
                self.remove(id);
            }
        }
    }

    /// The health of the set now; see [`Snapshot::health`].
    #[must_use]
    pub fn health(&self) -> SetHealth {
        self.load().health()
    }

    /// Sets a backend's state (its membership voice, see
    /// [`HealthCell`](super::HealthCell)); false if there is no such
    /// backend.
    pub fn set_state(&self, id: BackendId, state: BackendState) -> bool {
        match self.snapshot().get(id) {
            Some(e) => {
                e.set_state(state);
                true
            }
            None => false,
        }
    }

    fn update(&self, f: impl FnOnce(&mut Vec<Arc<Endpoint<T>>>)) {
        let _writer = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut list = self.shared.current.load().endpoints.clone();
        f(&mut list);
        self.shared.current.store(Arc::new(Snapshot::build(list)));
    }
}

impl<T> FromIterator<(BackendId, T, u32)> for Backends<T> {
    /// Serving backends; a repeated id replaces the earlier entry in place.
    fn from_iter<I: IntoIterator<Item = (BackendId, T, u32)>>(iter: I) -> Self {
        let mut list: Vec<Arc<Endpoint<T>>> = Vec::new();
        let mut seen: HashMap<BackendId, usize> = HashMap::new();
        for (id, target, weight) in iter {
            let endpoint = Arc::new(Endpoint::new(id, target, weight));
            match seen.get(&id) {
                Some(&i) => list[i] = endpoint,
                None => {
                    seen.insert(id, list.len());
                    list.push(endpoint);
                }
            }
        }
        Backends {
            shared: Shared::new(Snapshot::build(list)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_ids_replace_and_membership_changes_swap_snapshots() {
        let a = BackendId::from_name("a");
        let b = BackendId::from_name("b");
        let backends: Backends<u8> = [(a, 1, 1), (b, 2, 1), (a, 3, 5)].into_iter().collect();
        let before = backends.snapshot();
        assert_eq!(before.len(), 2);
        assert_eq!(*before.get(a).unwrap().target(), 3);
        assert_eq!(before.get(a).unwrap().weight(), 5);

        backends.apply(Change::Remove(a));
        backends.apply(Change::Insert(BackendId::from_name("c"), (4, 1)));
        // A snapshot taken earlier is unaffected; a new one sees the change.
        assert_eq!(before.len(), 2);
        let after = backends.snapshot();
        assert!(after.get(a).is_none());
        assert_eq!(after.len(), 2);
        assert!(!backends.set_state(a, BackendState::Down));
        assert!(backends.set_state(b, BackendState::Down));
        assert_eq!(after.get(b).unwrap().state(), BackendState::Down);
    }
}
