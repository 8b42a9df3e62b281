//! Validated routes plus `--backend` flags become the gateway's rules: each
//! a set of [`Backends`] and, with `sessionPersistence`, a
//! [`StickySessions`] engine; plus the [`Router`] that selects them.

use crate::cli::BackendSpec;
use crate::config::LoadedRoute;
use crate::echo::{self, EchoInfo};
use crate::keys::Keys;
use crate::router::{Entry, Router};
use http::uri::Authority;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tower_sticky::balance::Weighted;
use tower_sticky::balance::{BackendId, Backends};
use tower_sticky::route::Hostname;
use tower_sticky::sticky::{Outcome, StickyBuilder, StickySessions};

/// What the proxy needs to reach one backend endpoint.
#[derive(Debug)]
pub struct Upstream {
    /// `host:port`.
    pub addr: String,
    /// The same, parsed once for request URIs.
    pub authority: Authority,
    /// The pod name (in-process replicas) or the address, for logs.
    pub label: String,
    /// The Service it belongs to.
    pub service: String,
    /// Requests forwarded to it by this rule.
    pub requests: AtomicU64,
}

/// How a rule spreads requests.
#[derive(Debug)]
pub enum Target {
    /// `sessionPersistence`: the core's session engine.
    Sticky(StickySessions<Upstream, Weighted>),
    /// No persistence: plain weighted balancing.
    Plain {
        /// The endpoints.
        backends: Backends<Upstream>,
        /// Follows `backendRefs[].weight`.
        balancer: Weighted,
    },
}

impl Target {
    /// The rule's endpoints.
    pub fn backends(&self) -> &Backends<Upstream> {
        match self {
            Target::Sticky(s) => s.backends(),
            Target::Plain { backends, .. } => backends,
        }
    }
}

/// Session outcome counters of one rule, indexed by [`Outcome::index`].
pub type OutcomeCounters = [AtomicU64; Outcome::ALL.len()];

/// One HTTPRoute rule, ready to serve.
#[derive(Debug)]
pub struct Rule {
    /// `namespace/name` of its route.
    pub route: String,
    /// Its index in the route.
    pub index: usize,
    /// Its `name` (GEP-995), if the route gives one.
    pub name: Option<String>,
    /// Where its requests go.
    pub target: Target,
    /// Session outcomes, counted by the core's `on_outcome` callback.
    pub outcomes: Arc<OutcomeCounters>,
    /// The rule names no backend: the Gateway API says answer 500.
    pub no_backend_refs: bool,
}

/// In-process echo replicas of one Service.
#[derive(Debug)]
pub struct ReplicaSet {
    /// `namespace/name`.
    pub service: String,
    /// Pod name and address of each replica.
    pub pods: Vec<(String, String)>,
}

/// Everything the proxy serves.
#[derive(Debug)]
pub struct Compiled {
    /// The rules, in load order.
    pub rules: Vec<Rule>,
    /// Selects a rule per request.
    pub router: Router,
    /// The in-process replicas started, for the start-up banner.
    pub replicas: Vec<ReplicaSet>,
}

/// An endpoint of a Service, before it joins a rule's [`Backends`].
#[derive(Clone, Debug)]
struct EndpointInfo {
    id: BackendId,
    addr: String,
    label: String,
    service: String,
}

/// Builds the rules, starting in-process echo replicas for Services no
/// `--backend` maps.
pub async fn compile(
    routes: &[LoadedRoute],
    specs: &[BackendSpec],
    replicas: usize,
    keys: &Keys,
) -> Result<Compiled, String> {
    check_specs(routes, specs)?;
    let mut started: HashMap<(String, String), Vec<EndpointInfo>> = HashMap::new();
    let mut replica_sets = Vec::new();
    let mut rules = Vec::new();
    let mut router = Router::default();
    for loaded in routes {
        let route = &loaded.route;
        let ns = route.namespace();
        let hostnames: Arc<[Hostname]> = route.hostnames().into();
        for (i, rule) in route.rules().iter().enumerate() {
            let mut weighted: Vec<(EndpointInfo, u32)> = Vec::new();
            for backend in rule.backend_refs() {
                let svc_ns = backend.namespace.as_deref().unwrap_or(ns);
                let endpoints = match specs.iter().find(|s| s.maps(&backend.name, backend.port)) {
                    Some(spec) => spec
                        .endpoints
                        .iter()
                        .map(|a| EndpointInfo {
                            id: BackendId::from_addr(a, &keys.id_secret),
                            addr: a.clone(),
                            label: a.clone(),
                            service: backend.name.clone(),
                        })
                        .collect(),
                    None => {
                        let key = (svc_ns.to_owned(), backend.name.clone());
                        if !started.contains_key(&key) {
                            let (set, eps) =
                                start_replicas(svc_ns, &backend.name, replicas).await?;
                            replica_sets.push(set);
                            started.insert(key.clone(), eps);
                        }
                        started.get(&key).cloned().unwrap_or_default()
                    }
                };
                let weight = endpoint_weight(backend.weight(), endpoints.len());
                for ep in endpoints {
                    // The same endpoint behind two backendRefs adds up.
                    match weighted.iter_mut().find(|(e, _)| e.id == ep.id) {
                        Some((_, w)) => *w = w.saturating_add(weight),
                        None => weighted.push((ep, weight)),
                    }
                }
            }
            let backends: Backends<Upstream> = Backends::new();
            for (ep, weight) in weighted {
                let authority: Authority = ep
                    .addr
                    .parse()
                    .map_err(|e| format!("backend address {:?}: {e}", ep.addr))?;
                backends.insert(
                    ep.id,
                    Upstream {
                        addr: ep.addr,
                        authority,
                        label: ep.label,
                        service: ep.service,
                        requests: AtomicU64::new(0),
                    },
                    weight,
                );
            }
            let outcomes: Arc<OutcomeCounters> =
                Arc::new(std::array::from_fn(|_| AtomicU64::new(0)));
            let target = match rule.session_policy() {
                Some(policy) => {
                    let counters = Arc::clone(&outcomes);
                    let sessions = StickyBuilder::new(policy.clone(), keys.set.clone(), backends)
                        .balancer(Weighted::new())
                        .scope(format!("httproute/{ns}/{}/rule/{i}", route.name()))
                        .on_outcome(move |o, _| {
                            counters[o.index()].fetch_add(1, Ordering::Relaxed);
                        })
                        .build()
                        .map_err(|e| {
                            format!("{}: spec.rules[{i}].sessionPersistence: {e}", loaded.source)
                        })?;
                    Target::Sticky(sessions)
                }
                None => Target::Plain {
                    backends,
                    balancer: Weighted::new(),
                },
            };
            let index = rules.len();
            for matched in rule.matches() {
                router.push(Entry::new(index, Arc::clone(&hostnames), matched.clone()));
            }
            rules.push(Rule {
                route: format!("{ns}/{}", route.name()),
                index: i,
                name: rule.name().map(str::to_owned),
                target,
                outcomes,
                no_backend_refs: rule.backend_refs().is_empty(),
            });
        }
    }
    Ok(Compiled {
        rules,
        router,
        replicas: replica_sets,
    })
}

/// Every `--backend` must name a Service (and port) some route refers to.
fn check_specs(routes: &[LoadedRoute], specs: &[BackendSpec]) -> Result<(), String> {
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
            return Err(format!(
                "--backend {spec}: no route has a backendRef to {what}"
            ));
        }
    }
    Ok(())
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

/// Starts `count` echo replicas of a Service on ephemeral 127.0.0.1 ports.
async fn start_replicas(
    namespace: &str,
    service: &str,
    count: usize,
) -> Result<(ReplicaSet, Vec<EndpointInfo>), String> {
    let mut pods = Vec::with_capacity(count);
    let mut endpoints = Vec::with_capacity(count);
    for pod in echo::pod_names(service, count) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot start an echo replica: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot start an echo replica: {e}"))?
            .to_string();
        let info = Arc::new(EchoInfo {
            pod: pod.clone(),
            service: service.to_owned(),
            namespace: namespace.to_owned(),
            ingress: "tower-sticky-gateway".into(),
        });
        // Replicas live as long as the gateway's runtime.
        tokio::spawn(echo::serve(listener, info, std::future::pending()));
        endpoints.push(EndpointInfo {
            id: BackendId::from_name(&pod),
            addr: addr.clone(),
            label: pod.clone(),
            service: service.to_owned(),
        });
        pods.push((pod, addr));
    }
    Ok((
        ReplicaSet {
            service: format!("{namespace}/{service}"),
            pods,
        },
        endpoints,
    ))
}
