//! With the `metrics` feature, every decision is counted by scope and
//! outcome, and resumed sessions record their age, through whatever recorder
//! is installed when the request is routed (not when the layer was built).
#![cfg(feature = "metrics")]

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tower_sticky::balance::{BackendId, Backends};
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::{StickyBuilder, StickySessions};
use tower_sticky::token::{KeySet, ManualClock, SigningKey};

#[derive(Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

/// Keeps every counter and histogram by its rendered key, and every
/// description.
#[derive(Default)]
struct Capture {
    counters: Mutex<BTreeMap<String, Arc<Count>>>,
    histograms: Mutex<BTreeMap<String, Arc<Samples>>>,
    described: Mutex<Vec<(String, Option<Unit>)>>,
}

fn render(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Capture {
    fn count(&self, scope: &str, outcome: &str) -> u64 {
        let key = format!("tower_sticky_requests_total{{scope={scope},outcome={outcome}}}");
        self.counters
            .lock()
            .unwrap()
            .get(&key)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }

    fn ages(&self, scope: &str) -> Vec<f64> {
        let key = format!("tower_sticky_session_age_seconds{{scope={scope}}}");
        self.histograms
            .lock()
            .unwrap()
            .get(&key)
            .map_or_else(Vec::new, |h| h.0.lock().unwrap().clone())
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, name: KeyName, unit: Option<Unit>, _: SharedString) {
        self.described
            .lock()
            .unwrap()
            .push((name.as_str().to_owned(), unit));
    }
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, name: KeyName, unit: Option<Unit>, _: SharedString) {
        self.described
            .lock()
            .unwrap()
            .push((name.as_str().to_owned(), unit));
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let c = Arc::clone(
            self.counters
                .lock()
                .unwrap()
                .entry(render(key))
                .or_default(),
        );
        Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let h = Arc::clone(
            self.histograms
                .lock()
                .unwrap()
                .entry(render(key))
                .or_default(),
        );
        Histogram::from_arc(h)
    }
}

fn sessions(scope: &str, clock: &ManualClock) -> StickySessions<&'static str> {
    let backends: Backends<&str> = [(BackendId::from_name("a"), "a", 1)].into_iter().collect();
    StickyBuilder::new(
        SessionPolicy::cookie("Session-A").unwrap(),
        KeySet::new(SigningKey::new([1; 32]).unwrap()),
        backends,
    )
    .scope(scope)
    .clock(clock.clone())
    .build()
    .unwrap()
}

fn route(sessions: &StickySessions<&'static str>, cookie: Option<&str>) -> Option<String> {
    let mut req = http::Request::builder();
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let mut req = req.body(()).unwrap();
    let d = sessions.route(&mut req);
    d.session_header().map(|i| {
        let v = i.value().to_str().unwrap();
        v.split(';').next().unwrap().to_owned()
    })
}

#[test]
fn outcomes_are_counted_per_scope_with_a_recorder_installed_after_build() {
    let clock = ManualClock::new(1_000_000);
    // Built with no recorder installed: nothing may be resolved yet.
    let rule0 = sessions("httproute/default/r/rule/0", &clock);
    let rule1 = sessions("httproute/default/r/rule/1", &clock);
    // Routed with no recorder: counted nowhere, and no panic.
    let early = route(&rule0, None).unwrap();

    let capture = Capture::default();
    metrics::with_local_recorder(&capture, || {
        let value = route(&rule0, None).unwrap();
        for step in 1..=3 {
            clock.advance_millis(1_500);
            assert_eq!(route(&rule0, Some(&value)), None, "resumed {step}");
        }
        // The first session, begun before the recorder existed, resumes too.
        assert_eq!(route(&rule0, Some(&early)), None);
        route(&rule0, Some("Session-A=forged")).unwrap();
        // A token of rule 0 on rule 1 (same cookie name, same key) does not
        // verify there: forged, and counted under rule 1 only.
        route(&rule1, Some(&value)).unwrap();
    });

    let r0 = "httproute/default/r/rule/0";
    let r1 = "httproute/default/r/rule/1";
    assert_eq!(capture.count(r0, "new"), 1);
    assert_eq!(capture.count(r0, "resumed"), 4);
    assert_eq!(capture.count(r0, "malformed"), 1);
    assert_eq!(capture.count(r0, "forged"), 0);
    assert_eq!(capture.count(r1, "forged"), 1);
    assert_eq!(capture.count(r1, "new"), 0);
    assert_eq!(capture.count(r0, "expired"), 0);
    // Session ages at resume: 1.5 s, 3 s, 4.5 s for the second session and
    // 4.5 s for the first (the clock moved 4.5 s since both began).
    assert_eq!(capture.ages(r0), [1.5, 3.0, 4.5, 4.5]);
    assert!(capture.ages(r1).is_empty());
    let described = capture.described.lock().unwrap();
    assert!(described.contains(&("tower_sticky_requests_total".to_owned(), Some(Unit::Count))));
    assert!(described.contains(&(
        "tower_sticky_session_age_seconds".to_owned(),
        Some(Unit::Seconds)
    )));
}

#[test]
fn default_scope_names_the_cookie_and_path() {
    let clock = ManualClock::new(1_000_000);
    let backends: Backends<&str> = [(BackendId::from_name("a"), "a", 1)].into_iter().collect();
    let s = StickyBuilder::new(
        SessionPolicy::cookie("Session-A")
            .unwrap()
            .with_path("/cart")
            .unwrap(),
        KeySet::new(SigningKey::new([1; 32]).unwrap()),
        backends,
    )
    .clock(clock)
    .build()
    .unwrap();
    let capture = Capture::default();
    metrics::with_local_recorder(&capture, || route(&s, None));
    assert_eq!(capture.count("cookie:Session-A:/cart", "new"), 1);
}
