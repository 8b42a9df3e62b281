//! With the `metrics` feature, every outcome is counted per session name.
#![cfg(feature = "metrics")]

use metrics::{
    Counter, CounterFn, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tower_sticky::balance::{BackendId, Backends};
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::StickyBuilder;
use tower_sticky::token::{KeySet, SigningKey};

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

/// Keeps every counter by its rendered key.
#[derive(Default)]
struct Capture(Mutex<BTreeMap<String, Arc<Count>>>);

impl Capture {
    fn get(&self, outcome: &str) -> u64 {
        let key = format!("tower_sticky_requests_total{{session=Session-A,outcome={outcome}}}");
        self.0
            .lock()
            .unwrap()
            .get(&key)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let c = Arc::clone(self.0.lock().unwrap().entry(name).or_default());
        Counter::from_arc(c)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn outcomes_are_counted() {
    let capture = Capture::default();
    let backends: Backends<&str> = [(BackendId::from_name("a"), "a", 1)].into_iter().collect();
    let sessions = metrics::with_local_recorder(&capture, || {
        StickyBuilder::new(
            SessionPolicy::cookie("Session-A").unwrap(),
            KeySet::new(SigningKey::new([1; 32]).unwrap()),
            backends,
        )
        .build()
        .unwrap()
    });
    let mut req = http::Request::new(());
    let d = sessions.route(&mut req);
    let value = d
        .issue()
        .unwrap()
        .value()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        let mut req = http::Request::builder()
            .header("cookie", &value)
            .body(())
            .unwrap();
        let _ = sessions.route(&mut req);
    }
    let mut req = http::Request::builder()
        .header("cookie", "Session-A=forged")
        .body(())
        .unwrap();
    let _ = sessions.route(&mut req);
    assert_eq!(capture.get("new"), 1);
    assert_eq!(capture.get("resumed"), 3);
    assert_eq!(capture.get("invalid"), 1);
    assert_eq!(capture.get("expired"), 0);
}
