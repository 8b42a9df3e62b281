//! Which endpoints each Service of the routes has now, whatever the source.
//!
//! A `backendRef` is served, in this order, by the first `--backend` flag
//! that maps its name (and port), by the EndpointSlices of its Service
//! (`--endpoints`), or, in demo mode only, by in-process echo replicas.
//! With any `--backend` or `--endpoints` given, a `backendRef` that none of
//! them serves is an error naming file, route, rule and Service: a typo must
//! not be served by echo pods that reflect request headers.

use super::ServiceKey;
use super::app_protocol::AppProtocol;
use super::dns::DnsName;
use super::endpoint_slice::EndpointSlice;
use super::membership::Desired;
use crate::cli::BackendSpec;
use crate::config::LoadedRoute;
use crate::echo::{self, EchoInfo};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use tower_sticky::balance::{BackendId, BackendState};
use tower_sticky::route::BackendRef;

/// Everything the endpoints come from.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `--backend` flags: fixed lists and DNS names.
    pub specs: Vec<BackendSpec>,
    /// The slices of every `--endpoints` file, as last read successfully.
    pub slices: Vec<EndpointSlice>,
    /// The last good answer for each DNS name.
    pub dns: HashMap<DnsName, Vec<String>>,
    /// Demo mode: echo replicas per `(namespace, Service)`, pod and address.
    pub echo: HashMap<(String, String), Vec<(String, String)>>,
    /// Keys the ids of endpoints known by address.
    pub id_secret: [u8; 32],
    /// Demo mode: no `--backend` and no `--endpoints`.
    pub demo: bool,
}

/// Why the routes' Services cannot all get endpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A backendRef that no `--backend` and no slice serves.
    #[error(
        "{at}: spec.rules[{rule}].backendRefs[{backend}]: HTTPRoute {route}{}: Service {service}{} \
         is not mapped by any --backend and has no EndpointSlice in any --endpoints file; \
         with --backend or --endpoints in use every backendRef needs one (in-process echo \
         replicas serve only when neither is given)",
        rule_name.as_ref().map(|n| format!(" (rule {n:?})")).unwrap_or_default(),
        port.map(|p| format!(" port {p}")).unwrap_or_default()
    )]
    Unserved {
        /// `file: document n`.
        at: String,
        /// The rule's index.
        rule: usize,
        /// The backendRef's index.
        backend: usize,
        /// `namespace/name` of the route.
        route: String,
        /// The rule's name, if it has one.
        rule_name: Option<String>,
        /// `namespace/name` of the Service.
        service: String,
        /// The backendRef's port, if given.
        port: Option<u16>,
    },
    /// Demo mode: an echo replica cannot listen.
    #[error("cannot start an echo replica: {0}")]
    Echo(std::io::Error),
}

/// The Service a `backendRef` of a route in `route_namespace` names.
pub fn service_key(route_namespace: &str, backend: &BackendRef) -> ServiceKey {
    ServiceKey {
        namespace: backend
            .namespace
            .clone()
            .unwrap_or_else(|| route_namespace.to_owned()),
        name: backend.name.clone(),
        port: backend.port,
    }
}

impl Sources {
    /// Every Service the routes name, with the endpoints it has now.
    pub fn desired(
        &self,
        routes: &[LoadedRoute],
    ) -> Result<HashMap<ServiceKey, Vec<Desired>>, SourceError> {
        let mut out: HashMap<ServiceKey, Vec<Desired>> = HashMap::new();
        for loaded in routes {
            let route = &loaded.route;
            for (i, rule) in route.rules().iter().enumerate() {
                for (b, backend) in rule.backend_refs().iter().enumerate() {
                    let key = service_key(route.namespace(), backend);
                    if out.contains_key(&key) {
                        continue;
                    }
                    let endpoints = self.endpoints(&key).ok_or_else(|| SourceError::Unserved {
                        at: loaded.source.clone(),
                        rule: i,
                        backend: b,
                        route: format!("{}/{}", route.namespace(), route.name()),
                        rule_name: rule.name().map(str::to_owned),
                        service: key.qualified(),
                        port: key.port,
                    })?;
                    out.insert(key, endpoints);
                }
            }
        }
        Ok(out)
    }

    /// The endpoints of `key`, or `None` when no source serves it.
    fn endpoints(&self, key: &ServiceKey) -> Option<Vec<Desired>> {
        let by_addr = |addr: &String, protocol, state| Desired {
            addr: addr.clone(),
            label: addr.clone(),
            id: BackendId::from_addr(addr, &self.id_secret),
            protocol,
            state,
        };
        if let Some(spec) = self.specs.iter().find(|s| s.maps(&key.name, key.port)) {
            let addrs = match &spec.dns {
                Some(name) => self.dns.get(name).cloned().unwrap_or_default(),
                None => spec.endpoints.clone(),
            };
            return Some(
                addrs
                    .iter()
                    .map(|a| by_addr(a, spec.protocol, BackendState::Serving))
                    .collect(),
            );
        }
        let mut slices = self
            .slices
            .iter()
            .filter(|s| s.namespace == key.namespace && s.service == key.name)
            .peekable();
        if slices.peek().is_some() {
            return Some(
                slices
                    .flat_map(|s| {
                        let protocol = s.app_protocol_for(key.port);
                        let endpoints = s.endpoints_for(key.port);
                        endpoints.into_iter().map(move |(a, st)| (a, protocol, st))
                    })
                    .map(|(addr, protocol, state)| by_addr(&addr, protocol, state))
                    .collect(),
            );
        }
        if self.demo {
            let pods = self.echo.get(&(key.namespace.clone(), key.name.clone()))?;
            return Some(
                pods.iter()
                    .map(|(pod, addr)| Desired {
                        addr: addr.clone(),
                        label: pod.clone(),
                        id: BackendId::from_name(pod),
                        protocol: AppProtocol::Http1,
                        state: BackendState::Serving,
                    })
                    .collect(),
            );
        }
        None
    }

    /// Demo mode: starts `replicas` echo replicas for each Service of
    /// `routes` that has none yet.
    pub async fn start_echo(
        &mut self,
        routes: &[LoadedRoute],
        replicas: usize,
    ) -> Result<(), SourceError> {
        if !self.demo {
            return Ok(());
        }
        for loaded in routes {
            for backend in loaded.route.rules().iter().flat_map(|r| r.backend_refs()) {
                let key = service_key(loaded.route.namespace(), backend);
                if let Entry::Vacant(slot) = self.echo.entry((key.namespace, key.name)) {
                    let (namespace, name) = slot.key();
                    let pods = start_replicas(namespace, name, replicas).await?;
                    slot.insert(pods);
                }
            }
        }
        Ok(())
    }
}

/// Starts `count` echo replicas of a Service on ephemeral 127.0.0.1 ports;
/// returns each one's pod name and address. They live as long as the
/// gateway's main runtime.
async fn start_replicas(
    namespace: &str,
    service: &str,
    count: usize,
) -> Result<Vec<(String, String)>, SourceError> {
    let mut pods = Vec::with_capacity(count);
    for pod in echo::pod_names(service, count) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(SourceError::Echo)?;
        let addr = listener
            .local_addr()
            .map_err(SourceError::Echo)?
            .to_string();
        let info = Arc::new(EchoInfo {
            pod: pod.clone(),
            service: service.to_owned(),
            namespace: namespace.to_owned(),
            ingress: "tower-sticky-gateway".into(),
        });
        tokio::spawn(echo::serve(listener, info, std::future::pending()));
        pods.push((pod, addr));
    }
    Ok(pods)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::endpoint_slice::parse_str;

    const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: prod}
spec:
  rules:
    - name: cart
      backendRefs: [{name: cart, port: 80}, {name: pay, port: 80}]
";

    fn slices(service: &str, ip: &str) -> Vec<EndpointSlice> {
        parse_str(
            "s",
            &format!(
                "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {{name: x, namespace: prod, labels: {{kubernetes.io/service-name: {service}}}}}
ports: [{{name: http, port: 8080}}]
endpoints: [{{addresses: [\"{ip}\"], conditions: {{ready: false, serving: true, terminating: true}}}}]
"
            ),
        )
        .unwrap()
    }

    #[test]
    fn flags_come_first_then_slices_and_an_unserved_ref_is_an_error() {
        let routes = crate::config::load_str("r.yaml", ROUTE).unwrap();
        let mut sources = Sources {
            specs: vec![crate::cli::parse_backend("cart=10.0.0.1:80").unwrap()],
            slices: slices("cart", "10.9.9.9"),
            ..Sources::default()
        };
        let err = sources.desired(&routes).unwrap_err().to_string();
        for needle in [
            "r.yaml: document 1: spec.rules[0].backendRefs[1]",
            "HTTPRoute prod/shop (rule \"cart\")",
            "Service prod/pay port 80 is not mapped by any --backend",
        ] {
            assert!(err.contains(needle), "{needle:?} missing from {err}");
        }
        sources.slices.extend(slices("pay", "10.0.0.2"));
        let desired = sources.desired(&routes).unwrap();
        let key = |name: &str| ServiceKey {
            namespace: "prod".into(),
            name: name.into(),
            port: Some(80),
        };
        // The flag wins over cart's slice.
        let cart: Vec<&str> = desired[&key("cart")]
            .iter()
            .map(|d| d.addr.as_str())
            .collect();
        assert_eq!(cart, ["10.0.0.1:80"]);
        // pay's slice: its only port, its terminating-but-serving endpoint.
        let pay = &desired[&key("pay")];
        assert_eq!(
            (pay[0].addr.as_str(), pay[0].state),
            ("10.0.0.2:8080", BackendState::Draining)
        );
        assert_eq!(pay[0].id, BackendId::from_addr("10.0.0.2:8080", &[0; 32]));
    }
}
