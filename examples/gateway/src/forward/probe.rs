//! Backend health: passive (every request's attempt counts) and a prober
//! that brings backends marked down back.
//!
//! Passive: a connection refused, reset, or closed before any response byte
//! is a failure of the backend at that address, whichever rule the request
//! came through; a response head is a success and clears the count. After
//! `--down-after` consecutive failures (default 3) every endpoint at that
//! address is marked down: sessions on it re-pin (or get 503 under
//! `--strict-sessions`) before anything is sent, and new sessions avoid it.
//!
//! The prober connects to every down backend each second and sets it
//! serving again when it accepts connections (new sessions may land on it;
//! old sessions have moved on with their new cookies). With
//! `--health-check-path PATH` it also sends `GET PATH` on that connection
//! and revives the backend only on a 2xx or 3xx answer (HAProxy's
//! `option httpchk`): a backend that accepts connections and then resets
//! them (a wedged process behind a live socket) stays down instead of
//! flapping between down and serving.

use crate::proxy::Proxy;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tower_sticky::balance::BackendState;

/// How often down backends are probed.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The passive health of one backend address, shared by every rule's
/// endpoint at that address.
#[derive(Debug, Default)]
pub struct Health {
    /// Failed attempts since the last success.
    failures: AtomicU32,
}

impl Health {
    /// Records a failed attempt; returns the consecutive failures so far.
    pub fn failed(&self) -> u32 {
        self.failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// Records a response: the count starts again.
    pub fn succeeded(&self) {
        // A load first: the common case (no failures) writes nothing, so
        // workers do not contend on the cache line.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
    }
}

/// Runs until `stop` turns true; `check_path` is `--health-check-path`.
pub async fn run(proxy: Arc<Proxy>, check_path: Option<String>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        // Only what failed requests took down: a drained, deadline-passed
        // or discovery-down endpoint stays down however well it connects.
        let down: HashSet<String> = proxy
            .snapshot()
            .rules
            .iter()
            .flat_map(|r| r.target.backends().snapshot().endpoints().to_vec())
            .filter(|e| e.target().member.unhealthy())
            .map(|e| e.target().member.addr.clone())
            .collect();
        for addr in down {
            let probe = healthy(&addr, check_path.as_deref());
            if tokio::time::timeout(PROBE_TIMEOUT, probe).await == Ok(true) {
                revive(&proxy, &addr);
            }
        }
    }
}

/// Whether `addr` accepts a connection and, with `check_path`, answers
/// `GET check_path` with a 2xx or 3xx.
async fn healthy(addr: &str, check_path: Option<&str>) -> bool {
    let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    let Some(path) = check_path else {
        return true;
    };
    let io = hyper_util::rt::TokioIo::new(stream);
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(io).await else {
        return false;
    };
    tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr)
        .header(http::header::CONNECTION, "close")
        .header(
            http::header::USER_AGENT,
            "tower-sticky-gateway health check",
        )
        .body(http_body_util::Empty::<hyper::body::Bytes>::new());
    let Ok(request) = request else { return false };
    match sender.send_request(request).await {
        Ok(resp) => resp.status().is_success() || resp.status().is_redirection(),
        Err(_) => false,
    }
}

fn revive(proxy: &Proxy, addr: &str) {
    for rule in &proxy.snapshot().rules {
        for e in rule.target.backends().snapshot().endpoints() {
            let member = &e.target().member;
            if e.target().member.addr == addr
                && (member.unhealthy()
                    || e.state() == BackendState::Down && member.state() != BackendState::Down)
            {
                e.target().member.health.succeeded();
                member.set_unhealthy(false);
                let state = member.state();
                e.set_state(state);
                tracing::info!(backend = %e.target().member.label, addr, route = %rule.route, rule = rule.index, ?state, "backend accepts connections again");
            }
        }
    }
}
