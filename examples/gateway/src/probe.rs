//! Brings backends marked down back: a TCP connect every second.
//!
//! The proxy marks a backend down the moment it refuses a connection, so its
//! sessions re-pin at once; this task notices when it accepts connections
//! again and sets it serving (new sessions may land on it; old sessions have
//! moved on with their new cookies).

use crate::proxy::Proxy;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tower_sticky::balance::BackendState;

/// How often down backends are probed.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Runs until `stop` turns true.
pub async fn run(proxy: Arc<Proxy>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        let down: HashSet<String> = proxy
            .rules()
            .iter()
            .flat_map(|r| r.target.backends().snapshot().endpoints().to_vec())
            .filter(|e| e.state() == BackendState::Down)
            .map(|e| e.target().addr.clone())
            .collect();
        for addr in down {
            let alive = matches!(
                tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await,
                Ok(Ok(_))
            );
            if alive {
                revive(&proxy, &addr);
            }
        }
    }
}

fn revive(proxy: &Proxy, addr: &str) {
    for rule in proxy.rules() {
        for e in rule.target.backends().snapshot().endpoints() {
            if e.target().addr == addr && e.state() == BackendState::Down {
                e.set_state(BackendState::Serving);
                tracing::info!(backend = %e.target().label, addr, route = %rule.route, rule = rule.index, "backend accepts connections again: serving");
            }
        }
    }
}
