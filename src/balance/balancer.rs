use super::{BackendId, BackendState, Endpoint, Snapshot};
use http::{HeaderMap, Method, Uri};
use std::sync::Arc;

/// The request a balancer picks a backend for.
#[derive(Clone, Copy, Debug)]
pub struct PickContext<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The request target.
    pub uri: &'a Uri,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

/// What a session's backend id resolves to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Resolution<'a, T> {
    /// The backend takes the session (serving or draining).
    Pinned(&'a Arc<Endpoint<T>>),
    /// The backend exists but is down: re-pin.
    Down,
    /// No such backend (removed, or never here): re-pin.
    Gone,
}

/// Chooses backends for new sessions and decides whether a session's backend
/// may still take it.
///
/// The shape follows tower's `steer::Picker`: one method that returns an
/// index. `resolve` has a default that honours sessions on serving and
/// draining backends, whatever their weight, and re-pins those on down or
/// departed ones.
///
/// Closures `Fn(&PickContext, &Snapshot<T>) -> Option<usize>` are balancers:
///
/// ```
/// use tower_sticky::balance::{Balance, Backends, BackendId, PickContext, Snapshot};
///
/// // Always the first backend that takes new sessions.
/// let first = |_: &PickContext<'_>, s: &Snapshot<&str>| {
///     s.endpoints().iter().position(|e| e.takes_new_sessions())
/// };
/// let backends: Backends<&str> = [(BackendId::from_name("a"), "a", 1)].into_iter().collect();
/// let req = http::Request::new(());
/// let ctx = PickContext { method: req.method(), uri: req.uri(), headers: req.headers() };
/// assert_eq!(first.pick(&ctx, &backends.snapshot()), Some(0));
/// ```
pub trait Balance<T>: Send + Sync + 'static {
    /// The index in `backends` of the backend for a new session, or `None`
    /// when no backend can take one. Must only return backends that
    /// [take new sessions](Endpoint::takes_new_sessions).
    fn pick(&self, ctx: &PickContext<'_>, backends: &Snapshot<T>) -> Option<usize>;

    /// The index in `backends` of a backend for a new session other than
    /// those in `tried` (the backends a request already failed on), or
    /// `None` when every backend that takes new sessions was tried.
    ///
    /// The default asks [`pick`](Self::pick) once, over a snapshot without
    /// the tried backends, so the balancer's own spread (weights, load,
    /// round robin) holds for retries too; if the balancer still answers
    /// nothing usable, the first untried backend that takes new sessions is
    /// taken. So it terminates, and finds a different backend whenever one
    /// exists, whatever the balancer, in the spirit of Pingora's
    /// `select_with` but without a bound on attempts.
    ///
    /// ```
    /// use tower_sticky::balance::{Balance, Backends, BackendId, PickContext, Snapshot};
    ///
    /// // A balancer that always wants pod-a.
    /// let stubborn = |_: &PickContext<'_>, s: &Snapshot<&str>| s.position(BackendId::from_name("pod-a"));
    /// let backends: Backends<&str> = ["pod-a", "pod-b", "pod-c"]
    ///     .into_iter()
    ///     .map(|p| (BackendId::from_name(p), p, 1))
    ///     .collect();
    /// let (req, snap) = (http::Request::new(()), backends.snapshot());
    /// let ctx = PickContext { method: req.method(), uri: req.uri(), headers: req.headers() };
    ///
    /// let tried = [BackendId::from_name("pod-a")];
    /// let other = stubborn.pick_excluding(&ctx, &snap, &tried).unwrap();
    /// assert_ne!(*snap.endpoints()[other].target(), "pod-a");
    /// let all = ["pod-a", "pod-b", "pod-c"].map(BackendId::from_name);
    /// assert_eq!(stubborn.pick_excluding(&ctx, &snap, &all), None);
    /// ```
    fn pick_excluding(
        &self,
        ctx: &PickContext<'_>,
        backends: &Snapshot<T>,
        tried: &[BackendId],
    ) -> Option<usize> {
        let fits = |i: usize| {
            backends
                .endpoints()
                .get(i)
                .is_some_and(|e| e.takes_new_sessions() && !tried.contains(&e.id()))
        };
        let picked = if tried.is_empty() {
            self.pick(ctx, backends)
        } else {
            let rest = backends.without(tried);
            self.pick(ctx, &rest)
                .and_then(|i| rest.endpoints().get(i))
                .and_then(|e| backends.position(e.id()))
        };
        picked
            .filter(|&i| fits(i))
            .or_else(|| (0..backends.len()).find(|&i| fits(i)))
    }

    /// Whether the backend a session is pinned to may still take it.
    fn resolve<'a>(&self, backends: &'a Snapshot<T>, id: BackendId) -> Resolution<'a, T> {
        match backends.get(id) {
            Some(e) if e.state() == BackendState::Down => Resolution::Down,
            Some(e) => Resolution::Pinned(e),
            None => Resolution::Gone,
        }
    }
}

impl<T, F> Balance<T> for F
where
    F: Fn(&PickContext<'_>, &Snapshot<T>) -> Option<usize> + Send + Sync + 'static,
{
    fn pick(&self, ctx: &PickContext<'_>, backends: &Snapshot<T>) -> Option<usize> {
        self(ctx, backends)
    }
}
