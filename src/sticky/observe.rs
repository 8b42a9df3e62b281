//! What the engine reports per decision: a `tracing` event (feature
//! `tracing`) and `metrics` counters and a histogram (feature `metrics`).

use super::Outcome;
use crate::balance::BackendId;
use std::sync::Arc;

/// Reports each decision of one [`StickySessions`](super::StickySessions),
/// labelled with its scope.
pub(crate) struct Observer {
    #[cfg_attr(not(any(feature = "tracing", feature = "metrics")), allow(dead_code))]
    scope: Arc<str>,
    #[cfg(feature = "metrics")]
    metrics: metered::Metered,
}

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observer")
            .field("scope", &self.scope)
            .finish()
    }
}

impl Observer {
    pub(crate) fn new(scope: Arc<str>) -> Self {
        Observer {
            #[cfg(feature = "metrics")]
            metrics: metered::Metered::new(Arc::clone(&scope)),
            scope,
        }
    }

    /// One decision: its outcome, backend, and, for a session that went on,
    /// how long ago it began.
    // `backend` is only read by the tracing event (metrics alone, as the
    // gateway builds it, does not).
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    #[inline]
    pub(crate) fn observe(
        &self,
        outcome: Outcome,
        backend: Option<BackendId>,
        session_age_ms: Option<u64>,
    ) {
        #[cfg(feature = "metrics")]
        self.metrics.record(outcome, session_age_ms);
        #[cfg(feature = "tracing")]
        trace_decision(&self.scope, outcome, backend, session_age_ms);
    }
}

#[cfg(feature = "tracing")]
fn trace_decision(
    scope: &str,
    outcome: Outcome,
    backend: Option<BackendId>,
    session_age_ms: Option<u64>,
) {
    // The reason a session value was refused is the outcome itself
    // (malformed, forged, future_dated, expired, idle_expired); a token
    // issued for another scope does not verify here, so it is `forged`.
    let rejected = outcome.is_rejected().then(|| outcome.as_str());
    tracing::debug!(
        target: "tower_sticky",
        scope,
        outcome = outcome.as_str(),
        backend = backend.map(tracing::field::display),
        rejected,
        session_age_ms,
        "sticky session decision"
    );
}

#[cfg(feature = "metrics")]
mod metered {
    use super::Outcome;
    use arc_swap::ArcSwapOption;
    use metrics::{Counter, Histogram, Label, Recorder, SharedString, Unit};
    use std::sync::Arc;

    /// Requests per scope and outcome.
    pub(super) const REQUESTS: &str = "tower_sticky_requests_total";
    /// Age of a session when a request resumed it.
    pub(super) const SESSION_AGE: &str = "tower_sticky_session_age_seconds";

    /// The handles of one scope's metrics, resolved against the recorder
    /// installed when they were first needed, and again whenever another
    /// recorder has been installed since: a recorder installed after the
    /// layer was built still gets every request.
    pub(super) struct Metered {
        scope: Arc<str>,
        handles: ArcSwapOption<Handles>,
    }

    struct Handles {
        /// Which recorder these came from (its address).
        recorder: usize,
        requests: [Counter; Outcome::ALL.len()],
        session_age: Histogram,
    }

    /// The current recorder's address, or `None` when there is none (the
    /// no-op recorder, or any recorder without state, cannot keep counts).
    fn current_recorder() -> Option<usize> {
        metrics::with_recorder(|r: &dyn Recorder| {
            (std::mem::size_of_val(r) != 0)
                .then(|| (r as *const dyn Recorder).cast::<()>() as usize)
        })
    }

    impl Metered {
        pub(super) fn new(scope: Arc<str>) -> Self {
            Metered {
                scope,
                handles: ArcSwapOption::empty(),
            }
        }

        pub(super) fn record(&self, outcome: Outcome, session_age_ms: Option<u64>) {
            let Some(recorder) = current_recorder() else {
                return;
            };
            let guard = self.handles.load();
            let handles = match &*guard {
                Some(h) if h.recorder == recorder => h,
                _ => {
                    drop(guard);
                    let fresh = Arc::new(self.resolve(recorder));
                    self.handles.store(Some(Arc::clone(&fresh)));
                    return fresh.record(outcome, session_age_ms);
                }
            };
            handles.record(outcome, session_age_ms);
        }

        fn resolve(&self, recorder: usize) -> Handles {
            metrics::describe_counter!(
                REQUESTS,
                Unit::Count,
                "Requests through tower-sticky, by scope (route rule) and session outcome"
            );
            metrics::describe_histogram!(
                SESSION_AGE,
                Unit::Seconds,
                "Age of a sticky session when a request resumed it"
            );
            let scope = SharedString::from(Arc::clone(&self.scope));
            Handles {
                recorder,
                requests: Outcome::ALL.map(|o| {
                    metrics::counter!(
                        REQUESTS,
                        [
                            Label::new("scope", scope.clone()),
                            Label::from_static_parts("outcome", o.as_str()),
                        ]
                        .iter()
                    )
                }),
                session_age: metrics::histogram!(SESSION_AGE, "scope" => scope),
            }
        }
    }

    impl Handles {
        fn record(&self, outcome: Outcome, session_age_ms: Option<u64>) {
            self.requests[outcome.index()].increment(1);
            if let Some(ms) = session_age_ms {
                self.session_age.record(ms as f64 / 1000.0);
            }
        }
    }
}
