use super::{BackendRef, Route};
use crate::balance::{BackendId, Backends, Weighted};
use crate::sticky::StickyBuilder;
use crate::token::KeySet;

impl Route {
    /// The engine for one rule, from its `backendRefs` and weights: every
    /// reference goes through `resolve` (the caller's discovery: a
    /// Service's endpoints, each with a stable id), and the reference's
    /// weight is shared by its endpoints, so a Service with weight 3 and
    /// three endpoints weighs as much as one with weight 1 and one
    /// endpoint. An endpoint two references resolve to gets both shares.
    /// New sessions are spread by [`Weighted`]; a rule without
    /// `sessionPersistence` gets [plain mode](StickyBuilder::plain). The
    /// scope (what tokens are bound to, and what metrics carry) is
    /// `{namespace}/{route}/rule/{rule name or index}`. `None` when there
    /// is no rule `index`.
    ///
    /// ```
    /// use std::net::SocketAddr;
    /// use tower_sticky::balance::BackendId;
    /// use tower_sticky::route::HttpRoute;
    /// use tower_sticky::token::{KeySet, SigningKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let route: HttpRoute = serde_json::from_str(r#"{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
    ///   "metadata": {"name": "web"}, "spec": {"rules": [{
    ///     "backendRefs": [{"name": "v1", "port": 80, "weight": 90}, {"name": "v2", "port": 80, "weight": 10}],
    ///     "sessionPersistence": {"sessionName": "Session-A"}}]}}"#)?;
    /// let route = route.validate()?;
    /// let keys = KeySet::new(SigningKey::new([1; 32])?);
    /// // The caller's discovery: v1 has two endpoints, v2 one.
    /// let resolve = |r: &tower_sticky::route::BackendRef| -> Vec<(BackendId, SocketAddr)> {
    ///     let ports: &[u16] = if r.name == "v1" { &[3001, 3002] } else { &[3003] };
    ///     ports.iter().map(|p| (BackendId::from_name(&format!("{}-{p}", r.name)), SocketAddr::from(([127, 0, 0, 1], *p)))).collect()
    /// };
    /// let sessions = route.rule_builder(0, keys, resolve).expect("rule 0").build()?;
    /// let weights: Vec<u32> = sessions.backends().snapshot().endpoints().iter().map(|e| e.weight()).collect();
    /// assert_eq!(weights, [90, 90, 20]); // 90 % and 10 % of new sessions
    /// # Ok(())
    /// # }
    /// ```
    pub fn rule_builder<T, R>(
        &self,
        index: usize,
        keys: KeySet,
        resolve: R,
    ) -> Option<StickyBuilder<T, Weighted>>
    where
        T: Send + Sync + 'static,
        R: Fn(&BackendRef) -> Vec<(BackendId, T)>,
    {
        let rule = self.rules().get(index)?;
        let backends = weighted_backends(rule.backend_refs(), resolve);
        let builder = match rule.session_policy() {
            Some(policy) => StickyBuilder::new(policy.clone(), keys, backends),
            None => StickyBuilder::plain(backends),
        };
        let rule_name = rule.name().map_or_else(|| index.to_string(), str::to_owned);
        Some(builder.balancer(Weighted::new()).scope(format!(
            "{}/{}/rule/{rule_name}",
            self.namespace(),
            self.name()
        )))
    }
}

/// Each reference's weight shared by its endpoints: per endpoint,
/// `weight × L / n`, where `n` is the reference's endpoint count and `L`
/// the least common multiple of the counts, so every share is whole.
fn weighted_backends<T, R>(refs: &[BackendRef], resolve: R) -> Backends<T>
where
    R: Fn(&BackendRef) -> Vec<(BackendId, T)>,
{
    let resolved: Vec<(u32, Vec<(BackendId, T)>)> =
        refs.iter().map(|r| (r.weight(), resolve(r))).collect();
    let lcm = resolved
        .iter()
        .map(|(_, eps)| eps.len() as u64)
        .filter(|&n| n > 0)
        .fold(1u64, |l, n| (l / gcd(l, n)).saturating_mul(n).min(1 << 20));
    let mut list: Vec<(BackendId, T, u32)> = Vec::new();
    for (weight, endpoints) in resolved {
        let n = endpoints.len() as u64;
        for (id, target) in endpoints {
            let share = (u64::from(weight) * lcm / n).min(u64::from(u32::MAX)) as u32;
            match list.iter_mut().find(|(seen, _, _)| *seen == id) {
                Some(entry) => entry.2 = entry.2.saturating_add(share),
                None => list.push((id, target, share)),
            }
        }
    }
    list.into_iter().collect()
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}
