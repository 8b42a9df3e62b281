//! How many usable endpoints each Service has, and a warning when that
//! number drops to nothing or by more than half (issue 19, findings 4 and
//! 5).
//!
//! A slice with `ports: null`, `ports: []` or `endpoints: null` is valid
//! Kubernetes and leaves its Service with no endpoint: every session of it
//! gets 503. That is logged as a warning and listed by `/readyz`. A change
//! that shrinks a Service by more than half is often a file caught while it
//! was written in place: the warning says to write it atomically.

use super::ServiceKey;
use super::membership::Desired;
use std::collections::HashMap;
use tower_sticky::balance::BackendState;

/// The usable (not down) endpoints of each Service, as last applied.
#[derive(Debug, Default)]
pub struct Sizes {
    usable: HashMap<ServiceKey, usize>,
}

impl Sizes {
    /// Takes the endpoints about to be applied, logs a warning for each
    /// Service left with none or with less than half of what it had.
    pub fn update(&mut self, desired: &HashMap<ServiceKey, Vec<Desired>>) {
        let mut next = HashMap::with_capacity(desired.len());
        for (service, endpoints) in desired {
            let usable = endpoints
                .iter()
                .filter(|d| d.state != BackendState::Down)
                .count();
            let before = self.usable.get(service).copied();
            if usable == 0 {
                if before != Some(0) {
                    tracing::warn!(
                        %service,
                        "Service {service} has 0 usable endpoints: every request for it gets 503 (an EndpointSlice with `ports: null`, `ports: []` or `endpoints: null`, or none ready?)"
                    );
                }
            } else if let Some(before) = before
                && usable * 2 < before
            {
                tracing::warn!(
                    %service,
                    before,
                    now = usable,
                    "Service {service} shrank from {before} to {usable} usable endpoints; if an --endpoints file was being written in place, write it to a temporary file and rename it over the old one instead"
                );
            }
            next.insert(service.clone(), usable);
        }
        self.usable = next;
    }

    /// The Services without a usable endpoint, sorted.
    pub fn empty(&self) -> Vec<String> {
        let mut empty: Vec<String> = self
            .usable
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(s, _)| s.to_string())
            .collect();
        empty.sort();
        empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_sticky::balance::BackendId;

    fn want(states: &[BackendState]) -> HashMap<ServiceKey, Vec<Desired>> {
        let key = ServiceKey {
            namespace: "default".into(),
            name: "backend".into(),
            port: Some(80),
        };
        let endpoints = states
            .iter()
            .enumerate()
            .map(|(i, s)| Desired {
                addr: format!("127.0.0.{}:80", i + 2),
                label: format!("pod-{i}"),
                id: BackendId::from_name(&format!("pod-{i}")),
                protocol: Default::default(),
                state: *s,
            })
            .collect();
        HashMap::from([(key, endpoints)])
    }

    #[test]
    fn only_services_without_a_usable_endpoint_are_empty() {
        use BackendState::{Down, Draining, Serving};
        let mut sizes = Sizes::default();
        sizes.update(&want(&[Serving, Serving, Serving]));
        assert!(sizes.empty().is_empty());
        // Draining still serves its sessions: usable.
        sizes.update(&want(&[Draining, Down]));
        assert!(sizes.empty().is_empty());
        sizes.update(&want(&[Down, Down]));
        assert_eq!(sizes.empty(), ["default/backend:80"]);
        sizes.update(&want(&[]));
        assert_eq!(sizes.empty(), ["default/backend:80"]);
        sizes.update(&want(&[Serving]));
        assert!(sizes.empty().is_empty());
    }
}
