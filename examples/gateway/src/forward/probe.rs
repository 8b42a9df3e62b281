//! The prober: it brings back the endpoints that passive health took down.
//!
//! Passive health itself is the library's
//! [`PassiveHealth`](tower_sticky::failover::PassiveHealth), called by
//! [`forward`](crate::forward) after each failed attempt: a refused
//! connection ejects the endpoint at once; `--down-after` consecutive
//! failures after the request went out eject it, within the cap of one
//! endpoint in ten of a Service (at least one); and when every endpoint of
//! a rule would be down, none is (the panic rule).
//!
//! Every second the prober connects to every ejected endpoint and revives
//! it ([`HealthCell::revive`](tower_sticky::balance::HealthCell::revive))
//! when it accepts connections (new sessions may land on it; old sessions
//! have moved on with their new cookies). With `--health-check-path PATH`
//! it also sends `GET PATH` on that connection and revives the endpoint
//! only on a 2xx or 3xx answer (HAProxy's `option httpchk`): a backend that
//! accepts connections and then resets them (a wedged process behind a live
//! socket) stays down instead of flapping between down and serving. A
//! drained, deadline-passed or discovery-down endpoint is not the prober's:
//! it stays down however well it connects.

use crate::discover::membership::Member;
use crate::forward::Proxy;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often ejected endpoints are probed.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Runs until `stop` turns true; `check_path` is `--health-check-path`.
pub async fn run(proxy: Arc<Proxy>, check_path: Option<String>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {}
        }
        for member in ejected(&proxy) {
            let probe = healthy(&member.addr, check_path.as_deref());
            if tokio::time::timeout(PROBE_TIMEOUT, probe).await == Ok(true) {
                member.cell.revive();
                tracing::info!(backend = %member.label, addr = %member.addr, service = %member.service, state = member.state_name(), "backend accepts connections again");
            }
        }
    }
}

/// The members of the current snapshot that passive health ejected, once
/// each.
fn ejected(proxy: &Proxy) -> Vec<Arc<Member>> {
    let mut out: Vec<Arc<Member>> = Vec::new();
    for rule in &proxy.snapshot().rules {
        for e in rule.target.backends().snapshot().endpoints() {
            let member = &e.target().member;
            if member.unhealthy() && !out.iter().any(|m| Arc::ptr_eq(m, member)) {
                out.push(Arc::clone(member));
            }
        }
    }
    out
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
