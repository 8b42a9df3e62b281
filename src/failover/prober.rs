use crate::balance::{Backends, Endpoint};
use crate::forward::Upstream;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Revives ejected backends (feature `prober`, on tokio): every
/// [`interval`](Self::interval), each backend of the set that the health
/// voice took down is probed, by a TCP connect or an HTTP `GET` of a path
/// (any `2xx` or `3xx` passes), and one that passes is
/// [revived](crate::balance::HealthCell::revive). Backends that serve are
/// not probed: passive health watches them.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use std::time::Duration;
/// use tower_sticky::balance::Backends;
/// use tower_sticky::failover::Prober;
///
/// # #[tokio::main] async fn main() {
/// let backends: Backends<SocketAddr> = Backends::new();
/// let prober = Prober::http_get(backends.clone(), "/healthz")
///     .interval(Duration::from_millis(500))
///     .spawn();
/// // ... serve; then, to stop it:
/// prober.abort();
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Prober<T> {
    backends: Backends<T>,
    check: Check,
    interval: Duration,
    timeout: Duration,
}

#[derive(Debug, Clone)]
enum Check {
    Tcp,
    HttpGet(Arc<str>),
}

impl<T: Upstream + Send + Sync + 'static> Prober<T> {
    /// Probes by opening a TCP connection.
    pub fn tcp(backends: Backends<T>) -> Self {
        Self::with(backends, Check::Tcp)
    }

    /// Probes by `GET path` over HTTP/1.1 (`Connection: close`); a `2xx`
    /// or `3xx` status passes. A path that does not start with `/` is
    /// taken as `/`.
    pub fn http_get(backends: Backends<T>, path: &str) -> Self {
        let path = if path.starts_with('/') && !path.contains(['\r', '\n', ' ']) {
            path
        } else {
            "/"
        };
        Self::with(backends, Check::HttpGet(path.into()))
    }

    fn with(backends: Backends<T>, check: Check) -> Self {
        Prober {
            backends,
            check,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        }
    }

    /// How often ejected backends are probed (1 s by default).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long one probe may take (1 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Probes every ejected backend once; returns how many were revived.
    pub async fn probe_once(&self) -> usize {
        let snapshot = self.backends.snapshot();
        let mut revived = 0;
        for endpoint in snapshot.endpoints() {
            if endpoint.health().ejection().is_none() {
                continue;
            }
            if self.passes(endpoint).await {
                endpoint.health().revive();
                revived += 1;
            }
        }
        revived
    }

    /// Runs [`probe_once`](Self::probe_once) every interval on the current
    /// tokio runtime, until the handle is aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(self.interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                self.probe_once().await;
            }
        })
    }

    async fn passes(&self, endpoint: &Endpoint<T>) -> bool {
        let authority = endpoint.target().authority();
        let probe = async {
            let mut stream = TcpStream::connect(authority.as_str()).await.ok()?;
            let Check::HttpGet(path) = &self.check else {
                return Some(true);
            };
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: tower-sticky-prober\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.ok()?;
            // The status line is all that matters; read at most 64 bytes.
            let mut head = [0u8; 64];
            let mut len = 0;
            while len < 12 {
                let n = stream.read(&mut head[len..]).await.ok()?;
                if n == 0 {
                    break;
                }
                len += n;
            }
            Some(passing_status(&head[..len]))
        };
        matches!(
            tokio::time::timeout(self.timeout, probe).await,
            Ok(Some(true))
        )
    }
}

/// Whether an HTTP/1 status line starts `HTTP/1.x 2xx` or `3xx`.
fn passing_status(head: &[u8]) -> bool {
    head.len() >= 12
        && head.starts_with(b"HTTP/1.")
        && head[8] == b' '
        && matches!(head[9], b'2' | b'3')
        && head[10].is_ascii_digit()
        && head[11].is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::passing_status;

    #[test]
    fn only_2xx_and_3xx_status_lines_pass() {
        assert!(passing_status(b"HTTP/1.1 200 OK\r\n"));
        assert!(passing_status(b"HTTP/1.0 302 Found"));
        assert!(!passing_status(b"HTTP/1.1 503 Service Unavailable"));
        assert!(!passing_status(b"HTTP/1.1 20"));
        assert!(!passing_status(b"SSH-2.0-OpenSSH_9.6"));
    }
}
