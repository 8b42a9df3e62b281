//! Validated routes plus the Services' members become the gateway's rules:
//! each a set of [`Backends`] and, with `sessionPersistence`, a
//! [`StickySessions`] engine; plus the [`Router`] that selects them.

use crate::cli::BackendSpec;
use crate::config::LoadedRoute;
use crate::config::grpc_route::RouteKind;
use crate::config::keys::Keys;
use crate::discover::ServiceKey;
use crate::discover::membership::{Member, Plan};
use crate::discover::sources::service_key;
use crate::route::{Entry, Router};
use std::sync::Arc;
use tower_sticky::balance::Weighted;
use tower_sticky::balance::{BackendState, Backends, Endpoint};
use tower_sticky::policy::PersistenceType;
use tower_sticky::route::Hostname;
use tower_sticky::sticky::{StickyBuilder, StickySessions};

/// Why routes cannot become rules.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A rule's `sessionPersistence` cannot make a session engine.
    #[error("{at}: spec.rules[{index}].sessionPersistence: {source}")]
    Sticky {
        /// `file: document n`.
        at: String,
        /// The rule's index.
        index: usize,
        /// Why.
        source: tower_sticky::sticky::BuildError,
    },
    /// A `--backend` flag no route uses (a typo, most likely).
    #[error("--backend {spec}: no route has a backendRef to {what}")]
    UnusedBackend {
        /// The flag.
        spec: String,
        /// `Service "name"` and its port, if given.
        what: String,
    },
}

/// What the proxy needs to reach one backend endpoint: the Service
/// endpoint it is (address, label, passive health, state and counters that
/// outlive this snapshot) and this rule's request counter.
#[derive(Debug)]
pub struct Upstream {
    /// The Service endpoint.
    pub member: Arc<Member>,
    /// Requests this rule forwarded to it, as
    /// `gateway_backend_requests_total{route,rule,service,backend}` (kept
    /// across snapshots while the endpoint stays).
    pub requests_metric: metrics::Counter,
    /// The count `requests_metric` increments, which `/metrics` reads
    /// ([`backend_series`](super::backend_series)).
    pub requests: Arc<std::sync::atomic::AtomicU64>,
}

/// How a rule spreads requests: the library's session engine, with
/// `sessionPersistence`, or in its plain mode (a weighted pick, no session)
/// without.
pub type Target = StickySessions<Upstream, Weighted>;

/// One HTTPRoute rule, ready to serve.
#[derive(Debug)]
pub struct Rule {
    /// `namespace/name` of its route.
    pub route: String,
    /// Its index in the route.
    pub index: usize,
    /// Its `name` (GEP-995), if the route gives one.
    pub name: Option<String>,
    /// Strict sessions (`--strict-sessions`): a session whose backend fails
    /// gets 503, not another backend.
    pub strict: bool,
    /// The session scope its engine was built with, the `scope` label of
    /// its `tower_sticky_requests_total` series: what the gateway counts
    /// there itself carries it too ([`crate::pin::refused_strictly`]).
    pub scope: Arc<str>,
    /// Where its requests go.
    pub target: Target,
    /// The rule names no backend: the Gateway API says answer 500.
    pub no_backend_refs: bool,
    /// Its backendRefs: the Service and `weight` of each.
    pub refs: Vec<(ServiceKey, u32)>,
}

impl PartialEq for Upstream {
    /// The same member, as the library's `apply_discovered` asks when it
    /// tells a state change from a new endpoint.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.member, &other.member)
    }
}

/// The members behind a rule's backendRefs, each with the state discovery
/// gives it and its weight for new sessions.
fn rule_members(refs: &[(ServiceKey, u32)], plan: &Plan) -> Vec<(Arc<Member>, BackendState, u32)> {
    let mut weighted: Vec<(Arc<Member>, BackendState, u32)> = Vec::new();
    // Where each id is in `weighted`: a lookup, not a scan, per endpoint.
    let mut at: std::collections::BTreeMap<tower_sticky::balance::BackendId, usize> =
        std::collections::BTreeMap::new();
    for (key, ref_weight) in refs {
        let members = plan.members(key);
        let weight = endpoint_weight(*ref_weight, members.len());
        for (member, state) in members {
            // The same endpoint behind two backendRefs adds up.
            match at.get(&member.id) {
                Some(&i) => weighted[i].2 = weighted[i].2.saturating_add(weight),
                None => {
                    at.insert(member.id, weighted.len());
                    weighted.push((Arc::clone(member), *state, weight));
                }
            }
        }
    }
    weighted
}

/// A rule's endpoint of `member`.
fn upstream(member: &Arc<Member>, route: &str, rule: usize) -> Upstream {
    let requests = super::backend_series::counter(route, rule, &member.service.name, &member.label);
    Upstream {
        requests_metric: metrics::Counter::from_arc(Arc::clone(&requests)),
        requests,
        member: Arc::clone(member),
    }
}

/// A membership change without a configuration change (a slice file or a
/// DNS answer): every rule's [`Backends`] of the current snapshot changes in
/// place.
pub fn apply_members(compiled: &Compiled, plan: &Plan) {
    for rule in &compiled.rules {
        let backends = rule.target.backends();
        apply_rule_members(backends, &rule.refs, plan, &rule.route, rule.index);
    }
}

/// Tells a rule's `backends` its members in `plan`, in one swap (linear in
/// endpoints: a slice of 10,000 is one pass, issue 19 finding 3): an endpoint
/// present with the same member and weight is kept as it is (its state is
/// its member's cell), a new one is built on its member's health cell (one
/// health store per endpoint, shared by every rule), one that left is gone.
/// A new rule's empty `backends` is filled the same way.
fn apply_rule_members(
    backends: &Backends<Upstream>,
    refs: &[(ServiceKey, u32)],
    plan: &Plan,
    route: &str,
    index: usize,
) {
    let present = backends.snapshot();
    let endpoints = rule_members(refs, plan)
        .into_iter()
        .map(|(member, _, weight)| match present.get(member.id) {
            Some(e) if Arc::ptr_eq(&e.target().member, &member) && e.weight() == weight => {
                Arc::clone(e)
            }
            _ => {
                let target = upstream(&member, route, index);
                let cell = Arc::clone(&member.cell);
                Arc::new(Endpoint::with_health(member.id, target, weight, cell))
            }
        });
    backends.replace_all(endpoints.collect::<Vec<_>>());
}

/// Everything the proxy serves: one immutable snapshot of the
/// configuration ([`crate::reload`] swaps whole ones in).
#[derive(Debug)]
pub struct Compiled {
    /// The rules, in load order.
    pub rules: Vec<Rule>,
    /// Selects a rule per request.
    pub router: Router,
}

/// The scope session tokens of a rule are bound to: its route and its
/// `name` (GEP-995) when it has one, so that adding, removing or reordering
/// other rules leaves its sessions valid; only unnamed rules fall back to
/// their index. (`rulename/` and `rule/` keep a rule named `0` apart from
/// the unnamed first rule.)
pub fn session_scope(namespace: &str, route: &str, index: usize, name: Option<&str>) -> String {
    match name {
        Some(name) => format!("httproute/{namespace}/{route}/rulename/{name}"),
        None => format!("httproute/{namespace}/{route}/rule/{index}"),
    }
}

/// [`session_scope`] for a route of `kind`: a GRPCRoute's scope starts
/// with `grpcroute/`, so that its tokens never pass for those of an
/// HTTPRoute of the same namespace/name.
fn kind_scope(
    kind: RouteKind,
    namespace: &str,
    route: &str,
    index: usize,
    name: Option<&str>,
) -> String {
    let scope = session_scope(namespace, route, index, name);
    match kind {
        RouteKind::Http => scope,
        RouteKind::Grpc => scope.replacen("httproute/", "grpcroute/", 1),
    }
}

/// Builds the rules over the Services' members in `plan` (whose endpoints
/// outlive this snapshot); `strict` is `--strict-sessions`, `cookie` the
/// `--cookie-*` attributes.
pub fn compile(
    routes: &[LoadedRoute],
    plan: &Plan,
    keys: &Keys,
    strict: bool,
    cookie: &crate::config::edge::Cookie,
) -> Result<Compiled, RuleError> {
    warn_shared_cookies(routes);
    let mut rules = Vec::new();
    let mut router = Router::default();
    for loaded in routes {
        let route = &loaded.route;
        let ns = route.namespace();
        let hostnames: Arc<[Hostname]> = route.hostnames().into();
        for (i, rule) in route.rules().iter().enumerate() {
            let refs: Vec<(ServiceKey, u32)> = rule
                .backend_refs()
                .iter()
                .map(|b| (service_key(ns, b), b.weight()))
                .collect();
            let route_name = format!("{ns}/{}", route.name());
            let backends: Backends<Upstream> = Backends::new();
            apply_rule_members(&backends, &refs, plan, &route_name, i);
            let builder = match rule.session_policy() {
                Some(policy) => StickyBuilder::new(policy.clone(), keys.set.clone(), backends),
                None => StickyBuilder::plain(backends),
            };
            let scope = kind_scope(loaded.kind, ns, route.name(), i, rule.name());
            let target = builder
                .balancer(Weighted::new())
                .scope(scope.clone())
                .strict(strict)
                .cookie_attributes(cookie.attributes.clone())
                .build()
                .map_err(|source| RuleError::Sticky {
                    at: loaded.source.clone(),
                    index: i,
                    source,
                })?;
            let index = rules.len();
            for matched in rule.matches() {
                let entry = Entry::new(index, Arc::clone(&hostnames), matched.clone());
                router.push(match loaded.kind {
                    RouteKind::Grpc => entry.grpc(),
                    RouteKind::Http => entry,
                });
            }
            rules.push(Rule {
                refs,
                route: route_name,
                index: i,
                name: rule.name().map(str::to_owned),
                strict,
                scope: scope.into(),
                target,
                no_backend_refs: rule.backend_refs().is_empty(),
            });
        }
    }
    Ok(Compiled { rules, router })
}

/// Every `--backend` must name a Service (and port) some route refers to.
pub fn check_specs(routes: &[LoadedRoute], specs: &[BackendSpec]) -> Result<(), RuleError> {
    for spec in specs {
        let used = routes.iter().any(|r| {
            r.route
                .rules()
                .iter()
                .flat_map(|rule| rule.backend_refs())
                .any(|b| spec.maps(&b.name, b.port))
        });
        if !used {
            let what = match spec.port {
                Some(p) => format!("Service {:?} port {p}", spec.name),
                None => format!("Service {:?}", spec.name),
            };
            return Err(RuleError::UnusedBackend {
                spec: spec.to_string(),
                what,
            });
        }
    }
    Ok(())
}

/// Warns about two sticky rules whose sessions travel in the same cookie
/// (name and Path) or header on hosts they may share: each rule's tokens are
/// invalid for the other, so a client alternating between them keeps
/// getting new sessions.
fn warn_shared_cookies(routes: &[LoadedRoute]) {
    // What carries each sticky rule's sessions (cookie names are
    // case-sensitive, header names are not), where the rule is, its hosts.
    let mut seen: Vec<(String, String, &[Hostname])> = Vec::new();
    for loaded in routes {
        let route = &loaded.route;
        for (i, rule) in route.rules().iter().enumerate() {
            let Some(policy) = rule.session_policy() else {
                continue;
            };
            let carrier = match policy.kind() {
                PersistenceType::Cookie => {
                    format!(
                        "cookie {:?} with Path {}",
                        policy.name(),
                        policy.cookie_path()
                    )
                }
                _ => format!("header {:?}", policy.name().to_ascii_lowercase()),
            };
            let at = format!(
                "{}: {} {}/{} spec.rules[{i}]",
                loaded.source,
                loaded.kind.as_str(),
                route.namespace(),
                route.name()
            );
            let hosts = route.hostnames();
            for (other, other_at, other_hosts) in &seen {
                let hosts_meet = hosts.is_empty()
                    || other_hosts.is_empty()
                    || hosts.iter().any(|h| other_hosts.contains(h));
                if *other == carrier && hosts_meet {
                    tracing::warn!(
                        "{other_at} and {at} both keep sessions in the {carrier}: their sessions will keep replacing each other; give one a sessionName of its own"
                    );
                }
            }
            seen.push((carrier, at, hosts));
        }
    }
}

/// The weight of each of a backendRef's `count` endpoints, so that the
/// Service's total share follows `backendRefs[].weight` whatever its number
/// of endpoints; weight 0 stays 0.
fn endpoint_weight(ref_weight: u32, count: usize) -> u32 {
    if ref_weight == 0 || count == 0 {
        return 0;
    }
    let per = u64::from(ref_weight) * 1000 / count as u64;
    u32::try_from(per.max(1)).unwrap_or(u32::MAX)
}
