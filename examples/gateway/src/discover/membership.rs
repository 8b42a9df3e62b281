//! The endpoints of every Service, and their state, across reloads.
//!
//! A [`Member`] is one endpoint of one Service. It outlives configuration
//! snapshots: a route reload builds new rules whose endpoints point at the
//! same members, so an operator's drain, passive-health marks and counters
//! survive it.
//!
//! **One health store.** A member owns one
//! [`tower_sticky::balance::HealthCell`], and every rule's
//! endpoint of the member is built on that same cell: a change is seen by
//! the data path, `/backends` and `/metrics` at once, with no copy and no
//! poll. Each voice has one writer:
//!
//! * discovery (an EndpointSlice condition: serving, draining, down) and
//!   the operator (`POST /backends/drain`: draining, then down once its
//!   deadline passes, pushed by a timer; `/backends/undrain`) make the
//!   cell's membership voice, the stricter of the two, written here only;
//! * passive health (the data path, through the library's
//!   [`PassiveHealth`](tower_sticky::failover::PassiveHealth)) ejects, and
//!   the prober ([`crate::forward::probe`]) revives: the cell's health
//!   voice.
//!
//! The strictest voice wins ([`Member::state`]).

use super::ServiceKey;
use super::app_protocol::AppProtocol;
use http::uri::Authority;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tower_sticky::balance::{BackendId, BackendState, HealthCell};

/// One endpoint of one Service.
#[derive(Debug)]
pub struct Member {
    /// The Service.
    pub service: ServiceKey,
    /// `host:port`.
    pub addr: String,
    /// The pod name (echo replicas) or the address, for logs.
    pub label: String,
    /// Its id in session tokens.
    pub id: BackendId,
    /// HTTP/1.1 or h2c.
    pub protocol: AppProtocol,
    /// What discovery says, and the operator's drain.
    voices: Mutex<Voices>,
    /// Its one health store, shared by every rule's endpoint of it.
    pub cell: Arc<HealthCell>,
    /// Requests it answered, since start.
    pub requests: AtomicU64,
    /// Sessions it was given (new or re-pinned), since start.
    pub sessions: AtomicU64,
    /// Requests sent to it whose response head has not come back yet.
    pub waiting: AtomicU64,
}

/// A backend address that is no `host:port`.
#[derive(Debug, thiserror::Error)]
#[error("backend address {addr:?}: {source}")]
pub struct BadAddress {
    /// The address as given.
    pub addr: String,
    /// Why it is no URI authority.
    pub source: http::uri::InvalidUri,
}

/// Counts a request in [`Member::waiting`] until dropped.
#[derive(Debug)]
pub struct Waiting<'a>(&'a Member);

impl<'a> Waiting<'a> {
    /// Starts counting a request sent to `member`.
    pub fn start(member: &'a Member) -> Self {
        member.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(member)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What discovery and the operator say about a member.
#[derive(Clone, Copy, Debug)]
struct Voices {
    discovered: BackendState,
    drain: Option<Drain>,
}

/// An operator's drain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    /// When its sessions move on; `None`: never, until undrained.
    pub deadline: Option<Instant>,
}

impl Member {
    /// A new member in the state discovery gives it.
    pub fn new(
        service: ServiceKey,
        addr: String,
        label: String,
        id: BackendId,
        protocol: AppProtocol,
        discovered: BackendState,
    ) -> Result<Self, BadAddress> {
        // An address that is no URI authority (`host:port`) is refused here,
        // when the configuration loads.
        if let Err(source) = addr.parse::<Authority>() {
            return Err(BadAddress { addr, source });
        }
        let cell = HealthCell::new();
        cell.set_membership(discovered);
        Ok(Member {
            service,
            addr,
            label,
            id,
            protocol,
            voices: Mutex::new(Voices {
                discovered,
                drain: None,
            }),
            cell: Arc::new(cell),
            requests: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            waiting: AtomicU64::new(0),
        })
    }

    /// Its state now: the strictest of discovery, the operator's drain and
    /// health (the cell every rule's endpoint reads).
    pub fn state(&self) -> BackendState {
        self.cell.state()
    }

    /// The membership voice: the stricter of discovery and the drain (down
    /// once the drain's deadline passed).
    fn membership(voices: Voices) -> BackendState {
        if voices.discovered == BackendState::Down {
            return BackendState::Down;
        }
        match voices.drain {
            Some(Drain { deadline: Some(d) }) if Instant::now() >= d => BackendState::Down,
            Some(_) => BackendState::Draining,
            None => voices.discovered,
        }
    }

    fn voices(&self) -> std::sync::MutexGuard<'_, Voices> {
        self.voices.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes the membership voice into the cell (under the voices' lock,
    /// so that two writers cannot leave a stale one last).
    pub fn refresh(&self) {
        let voices = self.voices();
        self.cell.set_membership(Self::membership(*voices));
    }

    /// What discovery says.
    pub fn discovered(&self) -> BackendState {
        self.voices().discovered
    }

    /// Discovery's new word.
    pub fn set_discovered(&self, s: BackendState) {
        let mut voices = self.voices();
        voices.discovered = s;
        self.cell.set_membership(Self::membership(*voices));
    }

    /// The operator's drain, if any.
    pub fn drain(&self) -> Option<Drain> {
        self.voices().drain
    }

    /// Drains (`Some`) or undrains (`None`). A deadline is pushed when it
    /// passes, by a timer on the current runtime: no polling.
    pub fn set_drain(self: &Arc<Self>, drain: Option<Drain>) {
        {
            let mut voices = self.voices();
            voices.drain = drain;
            self.cell.set_membership(Self::membership(*voices));
        }
        let Some(Drain { deadline: Some(at) }) = drain else {
            return;
        };
        if at <= Instant::now() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let member = Arc::downgrade(self);
        runtime.spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            if let Some(member) = member.upgrade() {
                member.refresh();
            }
        });
    }

    /// Whether passive health took it down (the prober may revive it).
    pub fn unhealthy(&self) -> bool {
        self.cell.ejection().is_some()
    }

    /// `"serving"`, `"draining"` or `"down"`.
    pub fn state_name(&self) -> &'static str {
        state_name(self.state())
    }
}

/// `"serving"`, `"draining"` or `"down"`, as the admin API says it.
pub fn state_name(state: BackendState) -> &'static str {
    match state {
        BackendState::Serving => "serving",
        BackendState::Draining => "draining",
        _ => "down",
    }
}

/// One endpoint a source wants a Service to have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// `host:port`.
    pub addr: String,
    /// Pod name or address.
    pub label: String,
    /// Its id.
    pub id: BackendId,
    /// HTTP/1.1 or h2c.
    pub protocol: AppProtocol,
    /// What discovery says about it.
    pub state: BackendState,
}

/// Every Service's members, kept across snapshots.
#[derive(Debug, Default)]
pub struct Membership {
    members: Mutex<HashMap<ServiceKey, Vec<Arc<Member>>>>,
}

/// The members a new configuration would have, before it is committed.
#[derive(Debug, Default)]
pub struct Plan {
    services: HashMap<ServiceKey, Vec<(Arc<Member>, BackendState)>>,
    /// Members that would join or leave.
    changed: usize,
}

impl Plan {
    /// How many members would join or leave.
    pub fn changed(&self) -> usize {
        self.changed
    }

    /// The members of `service`, each with the state it would have.
    pub fn members(&self, service: &ServiceKey) -> &[(Arc<Member>, BackendState)] {
        self.services.get(service).map_or(&[], Vec::as_slice)
    }
}

impl Membership {
    /// The members `desired` asks for, reusing the current member of every
    /// endpoint already known (same Service, address and id), so that its
    /// drain, health and counters carry over. Nothing changes until
    /// [`commit`](Self::commit).
    pub fn plan(&self, desired: &HashMap<ServiceKey, Vec<Desired>>) -> Result<Plan, BadAddress> {
        let current = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let mut plan = Plan::default();
        // Linear in endpoints (hash lookups): a slice of 10,000 endpoints
        // was a quadratic scan here (issue 19, finding 3).
        for (service, wanted) in desired {
            let known: HashMap<&str, &Arc<Member>> = current
                .get(service)
                .map(|ms| ms.iter().map(|m| (m.addr.as_str(), m)).collect())
                .unwrap_or_default();
            let mut seen: HashSet<&str> = HashSet::with_capacity(wanted.len());
            let mut members = Vec::with_capacity(wanted.len());
            let mut kept = 0;
            for d in wanted {
                if !seen.insert(d.addr.as_str()) {
                    continue; // the same address twice (two slices): once
                }
                let member = match known
                    .get(d.addr.as_str())
                    // A port that changed protocol is a new member: its
                    // connections are of another kind.
                    .filter(|m| m.id == d.id && m.protocol == d.protocol)
                {
                    Some(m) => {
                        kept += 1;
                        Arc::clone(m)
                    }
                    None => Arc::new(Member::new(
                        service.clone(),
                        d.addr.clone(),
                        d.label.clone(),
                        d.id,
                        d.protocol,
                        d.state,
                    )?),
                };
                members.push((member, d.state));
            }
            plan.changed += (members.len() - kept) + (known.len() - kept);
            plan.services.insert(service.clone(), members);
        }
        plan.changed += current
            .iter()
            .filter(|(service, _)| !desired.contains_key(*service))
            .map(|(_, members)| members.len())
            .sum::<usize>();
        Ok(plan)
    }

    /// Makes `plan` the membership; logs who joined and who left.
    pub fn commit(&self, plan: &Plan) {
        let mut current = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next: HashMap<ServiceKey, Vec<Arc<Member>>> = HashMap::new();
        for (service, members) in &plan.services {
            let before = current.get(service).map_or(&[][..], Vec::as_slice);
            let was: HashSet<*const Member> = before.iter().map(Arc::as_ptr).collect();
            let is: HashSet<*const Member> = members.iter().map(|(m, _)| Arc::as_ptr(m)).collect();
            for (m, state) in members {
                m.set_discovered(*state);
                if !before.is_empty() && !was.contains(&Arc::as_ptr(m)) {
                    tracing::info!(service = %service, endpoint = %m.addr, state = m.state_name(), "endpoint joined");
                }
            }
            for b in before {
                if !is.contains(&Arc::as_ptr(b)) {
                    tracing::info!(service = %service, endpoint = %b.addr, "endpoint left");
                }
            }
            next.insert(
                service.clone(),
                members.iter().map(|(m, _)| Arc::clone(m)).collect(),
            );
        }
        *current = next;
    }

    /// Every member, by Service then address.
    pub fn all(&self) -> Vec<Arc<Member>> {
        let current = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<Arc<Member>> = current.values().flatten().cloned().collect();
        all.sort_by(|a, b| (a.service.to_string(), &a.addr).cmp(&(b.service.to_string(), &b.addr)));
        all
    }

    /// The members at `endpoint` of every Service `namespace/name` (one per
    /// port of the Service that routes use); `Err` says whether the Service
    /// or the endpoint is unknown.
    pub fn find(&self, service: &str, endpoint: &str) -> Result<Vec<Arc<Member>>, Unknown> {
        let current = self.members.lock().unwrap_or_else(PoisonError::into_inner);
        let mut service_known = false;
        let mut found = Vec::new();
        for (key, members) in current.iter() {
            if key.qualified() != service {
                continue;
            }
            service_known = true;
            found.extend(members.iter().filter(|m| m.addr == endpoint).cloned());
        }
        match (service_known, found.is_empty()) {
            (false, _) => Err(Unknown::Service),
            (true, true) => Err(Unknown::Endpoint),
            (true, false) => Ok(found),
        }
    }
}

/// What [`Membership::find`] did not find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unknown {
    /// No such Service.
    Service,
    /// The Service has no such endpoint.
    Endpoint,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key() -> ServiceKey {
        ServiceKey {
            namespace: "default".into(),
            name: "backend".into(),
            port: Some(3000),
        }
    }

    fn desired(addr: &str, state: BackendState) -> Desired {
        Desired {
            addr: addr.into(),
            label: addr.into(),
            id: BackendId::from_name(addr),
            protocol: AppProtocol::Http1,
            state,
        }
    }

    #[test]
    fn members_carry_over_plans_and_the_strictest_voice_wins() {
        let m = Membership::default();
        let mut want =
            HashMap::from([(key(), vec![desired("127.0.0.1:1", BackendState::Serving)])]);
        let plan = m.plan(&want).unwrap();
        m.commit(&plan);
        let a = Arc::clone(&m.find("default/backend", "127.0.0.1:1").unwrap()[0]);
        a.set_drain(Some(Drain { deadline: None }));
        assert_eq!(a.state(), BackendState::Draining);

        // A second plan (a reload) keeps the drained member, adds one.
        want.get_mut(&key())
            .unwrap()
            .push(desired("127.0.0.1:2", BackendState::Draining));
        m.commit(&m.plan(&want).unwrap());
        let again = m.find("default/backend", "127.0.0.1:1").unwrap();
        assert!(Arc::ptr_eq(&a, &again[0]));
        assert_eq!(again[0].state(), BackendState::Draining);
        assert_eq!(
            m.find("default/backend", "127.0.0.1:2").unwrap()[0].state(),
            BackendState::Draining
        );

        assert_eq!(
            m.find("default/other", "127.0.0.1:1").unwrap_err(),
            Unknown::Service
        );
        assert_eq!(
            m.find("default/backend", "127.0.0.1:9").unwrap_err(),
            Unknown::Endpoint
        );

        // Health and discovery can only make it stricter.
        a.set_drain(Some(Drain {
            deadline: Some(Instant::now() - Duration::from_millis(1)),
        }));
        assert_eq!(a.state(), BackendState::Down);
        a.set_drain(None);
        assert_eq!(a.state(), BackendState::Serving);
        a.cell.eject(tower_sticky::balance::Ejection::Refused);
        assert_eq!(a.state(), BackendState::Down);
        assert!(a.unhealthy());
        a.cell.revive();
        assert_eq!(a.state(), BackendState::Serving);
        a.set_discovered(BackendState::Down);
        assert_eq!(a.state(), BackendState::Down);
        a.set_discovered(BackendState::Serving);

        // Another Service's endpoint at the same address is another member,
        // with a health store of its own.
        let other = ServiceKey {
            name: "other".into(),
            ..key()
        };
        want.insert(
            other,
            vec![
                desired("127.0.0.1:1", BackendState::Serving),
                desired("127.0.0.1:3", BackendState::Serving),
            ],
        );
        m.commit(&m.plan(&want).unwrap());
        let same = &m.find("default/other", "127.0.0.1:1").unwrap()[0];
        assert!(!Arc::ptr_eq(same, &a));
        assert!(!Arc::ptr_eq(&same.cell, &a.cell));
    }
}
