//! Command-line flags.

use crate::discover::app_protocol::AppProtocol;
use clap::Parser;
use std::fmt;
use std::path::PathBuf;

/// An HTTPRoute gateway with Gateway API session persistence.
///
/// With no flags it runs the seed's cookie route over four in-process echo
/// replicas on 127.0.0.1:8888.
#[derive(Debug, Parser)]
#[command(name = "gateway", version)]
pub struct Args {
    /// HTTPRoute YAML file (one or several `---` documents); repeatable.
    /// Without any, the embedded default route is used.
    #[arg(long = "route", value_name = "FILE")]
    pub routes: Vec<PathBuf>,

    /// Endpoints of a backendRef Service: `NAME[:PORT]=HOST:PORT[,HOST:PORT...]`,
    /// or `NAME[:PORT]=dns:HOST:PORT` for the A/AAAA records of a name;
    /// repeatable. `h2c://HOST:PORT` endpoints get cleartext HTTP/2 (gRPC). With any `--backend` or `--endpoints`, every backendRef of
    /// every route must be served by one of them (start-up fails otherwise);
    /// without either, every Service gets in-process echo replicas (demo
    /// mode).
    #[arg(long = "backend", value_name = "SPEC", value_parser = parse_backend)]
    pub backends: Vec<BackendSpec>,

    /// In-process echo replicas per Service in demo mode (no `--backend`,
    /// no `--endpoints`).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub replicas: usize,

    /// Address to serve clients on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8888", value_name = "ADDR")]
    pub listen: String,

    /// Session signing key file (at least 32 bytes); repeatable: the first
    /// signs, every one verifies. Without one a random key is generated.
    #[arg(long = "key-file", value_name = "PATH")]
    pub key_files: Vec<PathBuf>,

    /// Secret file (at least 32 bytes) keying the ids of `--backend`
    /// endpoints in session tokens. Not a signing key: keep it across
    /// `--key-file` rotations and share it between replicas. Required with
    /// `--backend` and `--key-file`.
    #[arg(long = "backend-id-key", value_name = "PATH")]
    pub backend_id_key: Option<PathBuf>,

    /// A session whose backend is down or gone gets 503 instead of a new
    /// backend (Envoy's strict mode); new visitors are served as usual.
    #[arg(long = "strict-sessions")]
    pub strict_sessions: bool,

    /// Consecutive failures after the request went out (reset, or closed
    /// before any response byte) that mark a backend down until the prober
    /// revives it, at most 1 in 10 of a Service's endpoints (at least 1). A
    /// refused connection marks it down at once.
    #[arg(long = "down-after", default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub down_after: u32,

    /// The prober, which revives backends that failed requests marked down,
    /// also sends `GET PATH` and revives one only on a 2xx or 3xx answer
    /// (HAProxy's `option httpchk`). Without it, a backend that accepts a
    /// TCP connection is revived.
    #[arg(long = "health-check-path", value_name = "PATH", value_parser = parse_check_path)]
    pub health_check_path: Option<String>,

    /// Bodies of idempotent requests (GET, HEAD, OPTIONS, TRACE, PUT,
    /// DELETE) up to this many bytes are buffered, so that one whose backend
    /// failed before answering can be retried elsewhere; other bodies stream.
    #[arg(long = "retry-buffer", default_value_t = 64 * 1024, value_name = "BYTES")]
    pub retry_buffer: usize,

    /// Worker threads (default: one per core), each with its own
    /// single-threaded runtime and `SO_REUSEPORT` listener.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    // ---- Operating it live (issue 9): admin API, discovery, reload ----
    /// Admin address: `/healthz`, `/readyz`, `/metrics`, `/backends`,
    /// `POST /backends/drain`, `/backends/undrain` and `/reload`. Bind it to
    /// loopback (or a private interface): it changes what the gateway does.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,

    #[command(flatten)]
    pub admin_limits: AdminFlags,

    /// Kubernetes EndpointSlice YAML (`discovery.k8s.io/v1`, as `kubectl get
    /// endpointslices -o yaml` prints it); repeatable. Services without a
    /// `--backend` get their endpoints from the slices labelled
    /// `kubernetes.io/service-name` in their namespace. Re-read within 2 s
    /// of a change, and on SIGHUP; replace it atomically (write beside it,
    /// then rename over it), never in place.
    #[arg(long = "endpoints", value_name = "FILE")]
    pub endpoints: Vec<PathBuf>,

    /// How often `--backend NAME=dns:HOST:PORT` names are resolved again.
    #[arg(long = "dns-refresh", default_value = "5s", value_name = "DURATION",
          value_parser = parse_duration)]
    pub dns_refresh: std::time::Duration,

    /// DNS server for `dns:` backends (default: the system's resolvers).
    #[arg(long, value_name = "IP:PORT")]
    pub resolver: Option<std::net::SocketAddr>,

    #[command(flatten)]
    pub limits: Limits,

    /// TLS, trusted proxies, cookie attributes (issue 20).
    #[command(flatten)]
    pub edge: crate::config::edge::EdgeFlags,
}

impl Args {
    /// What the control plane needs of the flags.
    #[must_use]
    pub fn control_settings(&self) -> crate::reload::Settings {
        crate::reload::Settings {
            routes: self.routes.clone(),
            backends: self.backends.clone(),
            endpoints: self.endpoints.clone(),
            key_files: self.key_files.clone(),
            backend_id_key: self.backend_id_key.clone(),
            replicas: self.replicas,
            strict_sessions: self.strict_sessions,
            dns_refresh: self.dns_refresh,
            resolver: self.resolver,
            // Checked and read in `run` (start-up errors name the flag).
            cookie: crate::config::edge::Cookie::default(),
            tls: None,
        }
    }
}

// ---- The admin port's guards (issue 19, findings 1, 2 and 9) ----

/// Who may talk to the admin port, and how much of it a client may hold.
#[derive(Clone, Debug, clap::Args)]
pub struct AdminFlags {
    /// A name the admin port answers to besides `localhost`, loopback
    /// addresses and the address a client connected to (a `Host` naming
    /// anything else gets 421, against DNS rebinding); repeatable.
    #[arg(long = "admin-host", value_name = "NAME")]
    pub admin_hosts: Vec<String>,

    /// A request head must arrive within this long of the connection
    /// opening or of the previous answer, and its body within as long again
    /// (HAProxy's `timeout http-request`); then the connection is closed.
    #[arg(long = "admin-head-timeout", default_value = "10s", value_name = "DURATION",
          value_parser = parse_duration)]
    pub admin_head_timeout: std::time::Duration,

    /// An admin connection on which no byte moved either way for this long
    /// is closed (a stalled body, a client that stopped reading).
    #[arg(long = "admin-idle-timeout", default_value = "30s", value_name = "DURATION",
          value_parser = parse_duration)]
    pub admin_idle_timeout: std::time::Duration,

    /// Admin connections at once; more wait in the listen backlog, holding
    /// none of the gateway's file descriptors.
    #[arg(long = "admin-max-connections", default_value_t = 32, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub admin_max_connections: u32,

    /// Largest admin request body; beyond it, 413.
    #[arg(long = "admin-max-body", default_value_t = 16 * 1024, value_name = "BYTES")]
    pub admin_max_body: usize,
}

// ---- Connection reuse and limits (issue 12, findings 1-3) ----

/// Whether a request may ride an idle upstream connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Reuse {
    /// Every request on a connection of its own.
    Never,
    /// A client connection reuses only the upstream connections it opened;
    /// they close when it ends, and no other client ever gets one.
    Safe,
    /// Any request may ride any idle connection of the worker, which
    /// outlives its client (the aggressive mode: a backend that
    /// desynchronises can hand one client's response to another).
    Always,
}

/// Which HTTP/1 implementation serves client connections. Only hyper's:
/// the gateway's own path (`--http1 lean`, issue 21) was built, raced and
/// removed again, since it did not reach the race's bar (BENCHMARKS.md,
/// section 1); the flag stays so that scripts passing `--http1 hyper` keep
/// working.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Http1 {
    /// hyper's server and client connections.
    Hyper,
}

/// Connection reuse and limits.
#[derive(Clone, Debug, clap::Args)]
pub struct Limits {
    /// The HTTP/1 implementation: `hyper` (the only one).
    #[arg(long = "http1", value_enum, default_value_t = Http1::Hyper, value_name = "IMPL")]
    pub http1: Http1,

    /// Upstream connection reuse: `never`, `safe` or `always`.
    #[arg(long = "http-reuse", value_enum, default_value_t = Reuse::Safe, value_name = "MODE")]
    pub reuse: Reuse,

    /// Connections per backend endpoint and worker thread; requests beyond
    /// wait for one (`--upstream-queue-timeout`), then get 503.
    #[arg(
        long = "max-upstream-connections",
        default_value_t = 128,
        value_name = "N"
    )]
    pub max_upstream_connections: usize,

    /// How long a request waits for an upstream connection at the limit.
    #[arg(long = "upstream-queue-timeout", default_value = "5s", value_name = "DURATION",
          value_parser = parse_duration)]
    pub upstream_queue_timeout: std::time::Duration,

    /// Client connections at once, in all (more wait in the listen backlog).
    #[arg(long = "max-connections", default_value_t = 10_000, value_name = "N")]
    pub max_connections: usize,

    /// Concurrent streams per HTTP/2 client connection (HAProxy: 100).
    #[arg(
        long = "h2-max-concurrent-streams",
        default_value_t = 100,
        value_name = "N"
    )]
    pub h2_max_concurrent_streams: u32,

    /// An HTTP/2 client connection without a request in flight for this
    /// long is closed (GOAWAY).
    #[arg(long = "h2-idle-timeout", default_value = "60s", value_name = "DURATION",
          value_parser = parse_duration)]
    pub h2_idle_timeout: std::time::Duration,

    /// HTTP/2 keep-alive PING interval; a client that does not answer one
    /// within the same time is disconnected.
    #[arg(long = "h2-keepalive-interval", default_value = "20s", value_name = "DURATION",
          value_parser = parse_duration)]
    pub h2_keepalive_interval: std::time::Duration,

    /// Largest request head (HTTP/1 read buffer, HTTP/2 header list);
    /// beyond it, 431. At least 8192 (HAProxy's buffer: 16384).
    #[arg(long = "max-header-bytes", default_value_t = 16 * 1024, value_name = "BYTES",
          value_parser = clap::value_parser!(u32).range(8192..))]
    pub max_header_bytes: u32,

    /// Most header fields in an HTTP/1 request; beyond it, 431 (HAProxy: 101).
    #[arg(long = "max-headers", default_value_t = 100, value_name = "N")]
    pub max_headers: usize,
}

/// One `--backend` flag: a Service (optionally one port of it) and its
/// endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// The Service name, as in `backendRefs[].name`.
    pub name: String,
    /// Only this `backendRefs[].port`, if given.
    pub port: Option<u16>,
    /// `host:port` endpoints (none with `dns`).
    pub endpoints: Vec<String>,
    /// `dns:HOST:PORT`: the endpoints are the name's A/AAAA records.
    pub dns: Option<crate::discover::dns::DnsName>,
    /// `h2c://` before every endpoint: cleartext HTTP/2 to them.
    pub protocol: AppProtocol,
}

impl BackendSpec {
    /// Whether this flag maps the backendRef `name`:`port`.
    pub fn maps(&self, name: &str, port: Option<u16>) -> bool {
        self.name == name && (self.port.is_none() || self.port == port)
    }
}

impl fmt::Display for BackendSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        let scheme = self.protocol.scheme();
        match &self.dns {
            Some(dns) => write!(f, "={dns}"),
            None => {
                f.write_str("=")?;
                for (i, e) in self.endpoints.iter().enumerate() {
                    let comma = if i == 0 { "" } else { "," };
                    write!(f, "{comma}{scheme}{e}")?;
                }
                Ok(())
            }
        }
    }
}

/// An origin-form path for `--health-check-path`: `/` and then no space.
pub fn parse_check_path(s: &str) -> Result<String, String> {
    if s.starts_with('/') && s.parse::<http::uri::PathAndQuery>().is_ok() {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?}: expected a path such as /healthz"))
    }
}

/// A Gateway API duration (`5s`, `1m30s`), not zero.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let d: tower_sticky::duration::Duration = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if d.as_millis() == 0 {
        return Err(format!("{s:?}: must be more than zero"));
    }
    Ok(std::time::Duration::from_millis(d.as_millis()))
}

/// Parses `NAME[:PORT]=HOST:PORT[,HOST:PORT...]` (each `h2c://HOST:PORT` for
/// cleartext HTTP/2) or `NAME[:PORT]=dns:HOST:PORT`.
pub fn parse_backend(s: &str) -> Result<BackendSpec, String> {
    let (service, endpoints) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME[:PORT]=HOST:PORT[,HOST:PORT...], got {s:?}"))?;
    let (name, port) = match service.split_once(':') {
        Some((name, port)) => {
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("bad Service port {port:?} in {s:?}"))?;
            (name, Some(port))
        }
        None => (service, None),
    };
    if name.is_empty() {
        return Err(format!("missing Service name in {s:?}"));
    }
    if let Some(dns) = endpoints.strip_prefix("dns:") {
        return Ok(BackendSpec {
            name: name.to_owned(),
            port,
            endpoints: Vec::new(),
            dns: Some(crate::discover::dns::DnsName::parse(dns).map_err(|e| e.to_string())?),
            protocol: AppProtocol::Http1,
        });
    }
    let mut protocols = Vec::new();
    let endpoints: Vec<String> = endpoints
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (protocol, e) = AppProtocol::split_scheme(e);
            protocols.push(protocol);
            let (host, port) = e
                .rsplit_once(':')
                .ok_or_else(|| format!("endpoint {e:?} must be HOST:PORT"))?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(format!("endpoint {e:?} must be HOST:PORT"));
            }
            Ok(e.to_owned())
        })
        .collect::<Result<_, _>>()?;
    if endpoints.is_empty() {
        return Err(format!("no endpoints in {s:?}"));
    }
    // One Service port speaks one protocol, as an EndpointSlice port does.
    let protocol = protocols[0];
    if protocols.iter().any(|p| *p != protocol) {
        return Err(format!(
            "{s:?} mixes h2c:// and plain endpoints: write h2c:// before every endpoint or none"
        ));
    }
    Ok(BackendSpec {
        name: name.to_owned(),
        port,
        endpoints,
        dns: None,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::{AppProtocol, parse_backend};

    #[test]
    fn h2c_endpoints_are_marked_and_mixed_ones_refused() {
        let spec = parse_backend("who:50051=h2c://127.0.0.1:1,h2c://127.0.0.1:2").unwrap();
        assert_eq!(spec.protocol, AppProtocol::H2c);
        assert_eq!(spec.endpoints, ["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(
            spec.to_string(),
            "who:50051=h2c://127.0.0.1:1,h2c://127.0.0.1:2"
        );
        let plain = parse_backend("web=127.0.0.1:1").unwrap();
        assert_eq!(plain.protocol, AppProtocol::Http1);
        let mixed = parse_backend("who=h2c://127.0.0.1:1,127.0.0.1:2").unwrap_err();
        assert!(
            mixed.contains("mixes h2c:// and plain endpoints"),
            "{mixed}"
        );
        assert!(parse_backend("who=h2c://").is_err());
    }
}
