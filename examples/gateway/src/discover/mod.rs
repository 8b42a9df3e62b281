//! Where backends come from, and how they come and go while serving.
//!
//! Three sources say which endpoints a Service has:
//!
//! * `--backend NAME[:PORT]=HOST:PORT,...`: a fixed list;
//! * `--backend NAME[:PORT]=dns:HOST:PORT`: the A/AAAA records of a name,
//!   re-resolved every `--dns-refresh` ([`dns`]);
//! * `--endpoints FILE`: Kubernetes EndpointSlices, read verbatim and
//!   re-read when the file changes ([`endpoint_slice`], [`watch`]).
//!
//! Whatever the source, a change reaches the library's
//! [`Backends`](tower_sticky::balance::Backends) of that Service as
//! `tower::discover::Change` events ([`membership`]): a new endpoint is
//! inserted serving (sessions elsewhere stay where they are), a removed one
//! is removed (its sessions re-pin with a new cookie), a terminating one
//! drains. The membership outlives route reloads, so drain states and
//! health survive them.

pub mod app_protocol;
pub mod dns;
pub mod endpoint_slice;
pub mod membership;
pub mod sizes;
pub mod sources;
pub mod watch;

use std::fmt;

/// A Service as a `backendRef` names it: namespace, name and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// `backendRefs[].namespace`, else the route's.
    pub namespace: String,
    /// `backendRefs[].name`.
    pub name: String,
    /// `backendRefs[].port`.
    pub port: Option<u16>,
}

impl ServiceKey {
    /// `namespace/name`, as the admin API names Services.
    pub fn qualified(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}
