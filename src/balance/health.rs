use super::BackendState;
use std::sync::atomic::{AtomicU32, Ordering};

/// One backend's health, in a cell that several [`Endpoint`](super::Endpoint)s
/// (one per [`Backends`](super::Backends) set the backend belongs to) can
/// share through an `Arc`: a change made through any of them is seen by all
/// at once, with no polling and no copies.
///
/// # Two voices, the strictest wins
///
/// * The **membership voice** ([`set_membership`](Self::set_membership)):
///   what discovery or the operator says: serving, draining (keeps its
///   sessions, takes no new ones; a drain deadline is the caller's timer
///   setting [`BackendState::Down`] when it passes), or down (not ready).
/// * The **health voice** ([`eject`](Self::eject) and
///   [`revive`](Self::revive)): what passive health
///   ([`PassiveHealth`](crate::failover::PassiveHealth)) and an active prober
///   observe. An ejected backend is down whatever the membership says; a
///   prober's success revives it.
///
/// [`state`](Self::state) is the stricter of the two (down over draining
/// over serving), read with one atomic load. Only the health voice is
/// subject to the panic rule (see
/// [`Snapshot::health`](super::Snapshot::health)): when every backend of a
/// set would be down because of health, none is, as with Envoy's panic
/// threshold; a backend the membership voice took down stays down.
///
/// ```
/// use std::sync::Arc;
/// use tower_sticky::balance::{BackendId, BackendState, Ejection, Endpoint, HealthCell};
///
/// // One cell for the pod, shared by the endpoints of two route rules.
/// let cell = Arc::new(HealthCell::new());
/// let rule_1 = Endpoint::with_health(BackendId::from_name("pod-a"), "10.0.0.1:80", 1, Arc::clone(&cell));
/// let rule_2 = Endpoint::with_health(BackendId::from_name("pod-a"), "10.0.0.1:80", 5, Arc::clone(&cell));
///
/// rule_1.health().eject(Ejection::Refused);
/// assert_eq!(rule_2.state(), BackendState::Down);
///
/// cell.set_membership(BackendState::Draining);
/// cell.revive(); // the prober reached it again
/// assert_eq!(rule_2.state(), BackendState::Draining);
/// ```
#[derive(Debug, Default)]
pub struct HealthCell {
    /// Bits 0-1: membership state; bits 2-3: ejection; bit 4: an ejection
    /// the cap held back. One word, so that `state` is one load.
    bits: AtomicU32,
    /// Consecutive failures that might be the backend's (reset by a
    /// success or a revival).
    failures: AtomicU32,
}

const MEMBERSHIP: u32 = 0b11;
const EJECTION_SHIFT: u32 = 2;
const EJECTION: u32 = 0b11 << EJECTION_SHIFT;
const HELD_BACK: u32 = 1 << 4;

/// Why the health voice took a backend down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ejection {
    /// A connection was refused (or could not be made): the request cannot
    /// have caused it, so it takes the backend down at once.
    Refused,
    /// Consecutive failures after the request was written reached the
    /// threshold (`down_after`), within the ejection cap.
    Failures,
    /// An active health check failed.
    Probe,
}

impl Ejection {
    fn bits(self) -> u32 {
        let code = match self {
            Ejection::Refused => 1,
            Ejection::Failures => 2,
            Ejection::Probe => 3,
        };
        code << EJECTION_SHIFT
    }

    fn from_bits(bits: u32) -> Option<Self> {
        match (bits & EJECTION) >> EJECTION_SHIFT {
            0 => None,
            1 => Some(Ejection::Refused),
            2 => Some(Ejection::Failures),
            _ => Some(Ejection::Probe),
        }
    }

    /// A short, stable label: `refused`, `failures`, `probe`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Ejection::Refused => "refused",
            Ejection::Failures => "failures",
            Ejection::Probe => "probe",
        }
    }
}

fn membership_bits(state: BackendState) -> u32 {
    match state {
        BackendState::Serving => 0,
        BackendState::Draining => 1,
        BackendState::Down => 2,
    }
}

fn membership_from_bits(bits: u32) -> BackendState {
    match bits & MEMBERSHIP {
        0 => BackendState::Serving,
        1 => BackendState::Draining,
        _ => BackendState::Down,
    }
}

impl HealthCell {
    /// Serving, not ejected, no failures counted.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The effective state: the stricter of the membership and health
    /// voices.
    #[must_use]
    pub fn state(&self) -> BackendState {
        let bits = self.bits.load(Ordering::Relaxed);
        if bits & EJECTION != 0 {
            BackendState::Down
        } else {
            membership_from_bits(bits)
        }
    }

    /// What the membership voice (discovery, the operator, a drain) says.
    #[must_use]
    pub fn membership(&self) -> BackendState {
        membership_from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// Sets the membership voice; the health voice is left as it is.
    pub fn set_membership(&self, state: BackendState) {
        self.update(|bits| (bits & !MEMBERSHIP) | membership_bits(state));
    }

    /// Why the health voice took the backend down, if it did.
    #[must_use]
    pub fn ejection(&self) -> Option<Ejection> {
        Ejection::from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// The health voice takes the backend down. A later ejection replaces
    /// the reason of an earlier one.
    pub fn eject(&self, why: Ejection) {
        self.update(|bits| (bits & !(EJECTION | HELD_BACK)) | why.bits());
    }

    /// Takes the backend down unless the health voice already has; true if
    /// this call did. Of several callers racing on the same cell, exactly
    /// one gets true per ejection, so that an ejection is counted and
    /// logged once.
    pub(crate) fn eject_unless_ejected(&self, why: Ejection) -> bool {
        self.update_if(|bits| (bits & EJECTION == 0).then(|| (bits & !HELD_BACK) | why.bits()))
    }

    /// The health voice brings the backend back (a probe succeeded): not
    /// ejected, no failure counted.
    pub fn revive(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.update(|bits| bits & !(EJECTION | HELD_BACK));
    }

    /// Consecutive failures counted against the backend since its last
    /// success or revival.
    #[must_use]
    pub fn consecutive_failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Whether the backend reached the failure threshold but the ejection
    /// cap kept it in service.
    #[must_use]
    pub fn held_back(&self) -> bool {
        self.bits.load(Ordering::Relaxed) & HELD_BACK != 0
    }

    /// Counts one failure; returns the new count.
    pub(crate) fn count_failure(&self) -> u32 {
        self.failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// A request succeeded: the failure count starts again, and a held-back
    /// ejection is forgotten. An ejection stays (only a revival ends it).
    pub(crate) fn count_success(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        if self.held_back() {
            self.update(|bits| bits & !HELD_BACK);
        }
    }

    /// Marks the backend held back unless it is ejected (an ejection is
    /// stricter than a hold-back); true if it is now held back.
    pub(crate) fn hold_back_unless_ejected(&self) -> bool {
        self.update_if(|bits| (bits & EJECTION == 0).then_some(bits | HELD_BACK))
    }

    fn update(&self, f: impl Fn(u32) -> u32) {
        self.update_if(|bits| Some(f(bits)));
    }

    /// Applies `f` atomically; `None` from `f` leaves the bits as they are.
    /// True if `f` returned `Some`.
    fn update_if(&self, f: impl Fn(u32) -> Option<u32>) -> bool {
        self.bits
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, f)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strictest_voice_wins_and_each_voice_keeps_its_own_word() {
        let cell = HealthCell::new();
        assert_eq!(cell.state(), BackendState::Serving);
        cell.set_membership(BackendState::Draining);
        assert_eq!(cell.state(), BackendState::Draining);
        cell.eject(Ejection::Probe);
        assert_eq!(cell.state(), BackendState::Down);
        assert_eq!(cell.membership(), BackendState::Draining);
        cell.set_membership(BackendState::Serving);
        assert_eq!(cell.state(), BackendState::Down, "health still says down");
        cell.revive();
        assert_eq!(cell.state(), BackendState::Serving);
        cell.set_membership(BackendState::Down);
        cell.revive();
        assert_eq!(
            cell.state(),
            BackendState::Down,
            "membership still says down"
        );
    }

    #[test]
    fn failures_count_until_a_success_or_revival() {
        let cell = HealthCell::new();
        assert_eq!(cell.count_failure(), 1);
        assert_eq!(cell.count_failure(), 2);
        assert!(cell.hold_back_unless_ejected());
        assert!(cell.held_back());
        cell.count_success();
        assert_eq!(cell.consecutive_failures(), 0);
        assert!(!cell.held_back());
        cell.count_failure();
        cell.eject(Ejection::Failures);
        cell.count_success();
        assert_eq!(cell.ejection(), Some(Ejection::Failures));
        cell.revive();
        assert_eq!(cell.ejection(), None);
    }

    #[test]
    fn only_the_first_of_two_ejections_changes_anything() {
        let cell = HealthCell::new();
        assert!(cell.hold_back_unless_ejected());
        assert!(cell.eject_unless_ejected(Ejection::Failures));
        assert!(!cell.held_back(), "an ejection ends the hold-back");
        assert!(!cell.eject_unless_ejected(Ejection::Refused));
        assert_eq!(
            cell.ejection(),
            Some(Ejection::Failures),
            "the first reason stays"
        );
        assert!(!cell.hold_back_unless_ejected());
        assert!(!cell.held_back(), "an ejected backend is not held back");
        cell.revive();
        assert!(
            cell.eject_unless_ejected(Ejection::Refused),
            "a new ejection after a revival"
        );
    }
}
