use super::Blame;
use crate::balance::{Ejection, Endpoint, Snapshot};
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};

/// Passive health: what failed requests do to a backend's
/// [`HealthCell`](crate::balance::HealthCell), so that no client can turn
/// its own requests into an outage.
///
/// * [`Blame::Down`] (a refused connection) ejects the backend at once: a
///   backend that really died loses its sessions at once.
/// * [`Blame::Suspect`] (written, then reset, closed or timed out) counts
///   one consecutive failure; at [`down_after`](Self::down_after) (3 by
///   default) the backend is ejected, unless the set already has its cap of
///   such ejections: one endpoint in ten, and at least one
///   ([`cap`](Self::cap), Envoy's `max_ejection_percent` at 10 %). A
///   backend the cap keeps in service is
///   [held back](crate::balance::HealthCell::held_back).
/// * A success ([`succeeded`](Self::succeeded)) resets the count. Only a
///   revival (a prober, or the caller) ends an ejection.
///
/// And when every backend of a set that could serve is ejected, none is
/// (the panic rule, [`Snapshot::in_panic`]): the engine then serves them
/// all.
///
/// ```
/// use std::num::NonZeroU32;
/// use tower_sticky::balance::{BackendId, Backends, Ejection};
/// use tower_sticky::failover::{Blame, HealthChange, PassiveHealth};
///
/// let backends: Backends<&str> = ["a", "b", "c"].into_iter().map(|p| (BackendId::from_name(p), p, 1)).collect();
/// let snap = backends.snapshot();
/// let [a, b, _] = [0, 1, 2].map(|i| &snap.endpoints()[i]);
/// let health = PassiveHealth::new().down_after(NonZeroU32::new(2).unwrap());
///
/// // Poison requests: a takes two suspect failures and is ejected (the
/// // cap for 3 endpoints is 1); b's are held back by the cap.
/// assert_eq!(health.failed(&snap, a, Blame::Suspect), HealthChange::Counted { failures: 1 });
/// assert_eq!(health.failed(&snap, a, Blame::Suspect), HealthChange::Ejected(Ejection::Failures));
/// health.failed(&snap, b, Blame::Suspect);
/// assert_eq!(health.failed(&snap, b, Blame::Suspect), HealthChange::HeldBack);
/// assert!(snap.health().cap_holding());
/// assert_eq!(snap.health().taking_new_sessions, 2);
///
/// // A refused connection is not capped.
/// assert_eq!(health.failed(&snap, b, Blame::Down), HealthChange::Ejected(Ejection::Refused));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct PassiveHealth {
    down_after: NonZeroU32,
}

/// What recording a failure did to the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HealthChange {
    /// Nothing: no blame, or the backend was already ejected.
    Unchanged,
    /// One more consecutive failure, below the threshold.
    Counted {
        /// Consecutive failures now.
        failures: u32,
    },
    /// The backend is now down.
    Ejected(Ejection),
    /// The threshold was reached, but the set has its cap of ejections:
    /// the backend stays in service.
    HeldBack,
}

/// Serialises the cap's check-then-eject, so that two failures at once
/// cannot both take the last allowed ejection. Only failures reaching the
/// threshold take it.
static EJECTING: Mutex<()> = Mutex::new(());

impl Default for PassiveHealth {
    fn default() -> Self {
        Self::new()
    }
}

impl PassiveHealth {
    /// Ejects after 3 consecutive suspect failures.
    pub const fn new() -> Self {
        PassiveHealth {
            down_after: NonZeroU32::new(3).expect("3 is not zero"),
        }
    }

    /// How many consecutive suspect failures eject a backend.
    pub const fn down_after(mut self, failures: NonZeroU32) -> Self {
        self.down_after = failures;
        self
    }

    /// The threshold set by [`down_after`](Self::down_after).
    #[must_use]
    pub const fn threshold(&self) -> NonZeroU32 {
        self.down_after
    }

    /// How many endpoints of a set of `endpoints` suspect failures may
    /// eject at once: one in ten, and at least one.
    #[must_use]
    pub const fn cap(endpoints: usize) -> usize {
        let tenth = endpoints / 10;
        if tenth == 0 { 1 } else { tenth }
    }

    /// Records a failure with `blame` on `endpoint`, a member of `set`.
    ///
    /// Safe to call from many threads at once: of several failures racing
    /// on the same endpoint, exactly one returns [`HealthChange::Ejected`]
    /// per ejection (the others return [`HealthChange::Unchanged`]), so a
    /// caller counting or logging ejections sees each once, and an endpoint
    /// just ejected is never also [held back](HealthChange::HeldBack).
    pub fn failed<T>(
        &self,
        set: &Snapshot<T>,
        endpoint: &Endpoint<T>,
        blame: Blame,
    ) -> HealthChange {
        let cell = endpoint.health();
        if cell.ejection().is_some() {
            return HealthChange::Unchanged;
        }
        // Failures on the same endpoint can pass the check above together:
        // the changes below are made only if the endpoint is still not
        // ejected, so that exactly one of them reports each ejection (the
        // gateway counts and logs what this returns).
        let ejected_now = |why| {
            if cell.eject_unless_ejected(why) {
                HealthChange::Ejected(why)
            } else {
                HealthChange::Unchanged
            }
        };
        match blame {
            Blame::None => HealthChange::Unchanged,
            Blame::Down => ejected_now(Ejection::Refused),
            Blame::Suspect => {
                let failures = cell.count_failure();
                if failures < self.down_after.get() {
                    return HealthChange::Counted { failures };
                }
                let _one_at_a_time = EJECTING.lock().unwrap_or_else(PoisonError::into_inner);
                if cell.ejection().is_some() {
                    // A failure racing this one ejected it meanwhile.
                    return HealthChange::Unchanged;
                }
                let ejected = set
                    .endpoints()
                    .iter()
                    .filter(|e| e.health().ejection() == Some(Ejection::Failures))
                    .count();
                if ejected < Self::cap(set.len()) {
                    ejected_now(Ejection::Failures)
                } else if cell.hold_back_unless_ejected() {
                    HealthChange::HeldBack
                } else {
                    // A refused connection (which takes no lock) ejected it.
                    HealthChange::Unchanged
                }
            }
        }
    }

    /// Records a success on `endpoint`: its consecutive failures start
    /// again from zero. Cheap when there were none.
    pub fn succeeded<T>(&self, endpoint: &Endpoint<T>) {
        endpoint.health().count_success();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::{BackendId, Backends};
    use std::sync::Barrier;

    /// Rounds of the race below: each starts from a fresh set, so each is
    /// one more chance for two failures to slip past the ejected check
    /// (before the fix, one round in about a hundred did on 2 cores).
    const ROUNDS: usize = 1000;
    const RACERS: usize = 8;

    /// `RACERS` threads record a failure with `blame` on the same endpoint
    /// of a fresh set of `size` endpoints at once; what each call returned.
    fn race(health: PassiveHealth, blame: Blame, size: usize) -> Vec<HealthChange> {
        let backends: Backends<usize> = (0..size)
            .map(|i| (BackendId::from_name(&format!("pod-{i}")), i, 1))
            .collect();
        let set = backends.snapshot();
        let endpoint = &set.endpoints()[0];
        let start = Barrier::new(RACERS);
        std::thread::scope(|s| {
            let racers: Vec<_> = (0..RACERS)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        health.failed(&set, endpoint, blame)
                    })
                })
                .collect();
            racers
                .into_iter()
                .map(|r| r.join().expect("racer"))
                .collect()
        })
    }

    fn ejections(changes: &[HealthChange]) -> usize {
        changes
            .iter()
            .filter(|c| matches!(c, HealthChange::Ejected(_)))
            .count()
    }

    #[test]
    fn refused_connections_at_once_eject_the_endpoint_exactly_once() {
        for round in 0..ROUNDS {
            let changes = race(PassiveHealth::new(), Blame::Down, 3);
            assert_eq!(ejections(&changes), 1, "round {round}: {changes:?}");
            assert!(
                changes.iter().all(|c| matches!(
                    c,
                    HealthChange::Ejected(Ejection::Refused) | HealthChange::Unchanged
                )),
                "round {round}: {changes:?}"
            );
        }
    }

    #[test]
    fn suspect_failures_at_once_eject_exactly_once_and_never_hold_back_the_ejected() {
        let health = PassiveHealth::new().down_after(NonZeroU32::MIN);
        for round in 0..ROUNDS {
            // 3 endpoints: cap 1, so a second failure used to be held back.
            let changes = race(health, Blame::Suspect, 3);
            assert_eq!(ejections(&changes), 1, "round {round}: {changes:?}");
            assert!(
                !changes.contains(&HealthChange::HeldBack),
                "round {round}: the ejected endpoint was also held back: {changes:?}"
            );
        }
    }

    #[test]
    fn suspect_failures_at_once_under_a_cap_of_two_eject_exactly_once() {
        let health = PassiveHealth::new().down_after(NonZeroU32::MIN);
        for round in 0..ROUNDS {
            // 20 endpoints: cap 2, so a second failure used to eject again.
            let changes = race(health, Blame::Suspect, 20);
            assert_eq!(ejections(&changes), 1, "round {round}: {changes:?}");
            assert!(
                changes.iter().all(|c| matches!(
                    c,
                    HealthChange::Ejected(Ejection::Failures) | HealthChange::Unchanged
                )),
                "round {round}: {changes:?}"
            );
        }
    }
}
