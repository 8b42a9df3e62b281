//! DNS discovery: `--backend NAME[:PORT]=dns:HOST:PORT`.
//!
//! `HOST`'s A and AAAA records, each with `PORT`, are the Service's
//! endpoints: what a Kubernetes headless Service (or any round-robin DNS
//! name) publishes. They are resolved with hickory-resolver every
//! `--dns-refresh`, through `--resolver IP:PORT` or the system's resolver
//! (`/etc/resolv.conf`). The resolver's cache is off: the refresh period
//! is the only staleness.
//!
//! A failed resolution (timeout, SERVFAIL, NXDOMAIN, no records) keeps the
//! last good set and logs why: a DNS hiccup must not empty a Service and
//! move every session. Endpoints that really went away are noticed by the
//! data path (a refused connection marks them down) until DNS answers again.

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Why a `dns:` name cannot be used or resolved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// `dns:` is not followed by `HOST:PORT`.
    #[error("dns:{0}: expected dns:HOST:PORT")]
    NotHostPort(String),
    /// The port is not 1-65535.
    #[error("dns:{input}: bad port {port:?}")]
    BadPort {
        /// All of it.
        input: String,
        /// The port part.
        port: String,
    },
    /// The host is no DNS name.
    #[error("dns:{input}: bad host name {host:?}")]
    BadHost {
        /// All of it.
        input: String,
        /// The host part.
        host: String,
    },
    /// `/etc/resolv.conf` cannot be used.
    #[error("cannot read the system's resolver configuration: {0}")]
    SystemConfig(hickory_resolver::net::NetError),
    /// The resolver cannot be built.
    #[error("cannot build the DNS resolver: {0}")]
    Build(hickory_resolver::net::NetError),
    /// A lookup failed.
    #[error("{0}")]
    Lookup(hickory_resolver::net::NetError),
    /// A lookup found nothing.
    #[error("no A or AAAA records")]
    NoRecords,
}

/// `dns:HOST:PORT` of a `--backend` flag.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnsName {
    /// The name to resolve.
    pub host: String,
    /// The port every address gets.
    pub port: u16,
}

impl DnsName {
    /// Parses what follows `dns:`: `HOST:PORT`.
    pub fn parse(s: &str) -> Result<Self, DnsError> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| DnsError::NotHostPort(s.to_owned()))?;
        let port =
            port.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| DnsError::BadPort {
                    input: s.to_owned(),
                    port: port.to_owned(),
                })?;
        if host.is_empty()
            || host.len() > 253
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return Err(DnsError::BadHost {
                input: s.to_owned(),
                host: host.to_owned(),
            });
        }
        Ok(DnsName {
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for DnsName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dns:{}:{}", self.host, self.port)
    }
}

/// A resolver for DNS backends.
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// Asks `server` (UDP, then TCP for truncated answers), or the system's
    /// resolvers when `None`.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, DnsError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = match server {
            Some(addr) => {
                let mut udp = ConnectionConfig::udp();
                udp.port = addr.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = addr.port();
                let ns = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
                let mut b = TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    provider,
                );
                // Only the chosen server answers, not /etc/hosts.
                b.options_mut().use_hosts_file = ResolveHosts::Never;
                b
            }
            None => TokioResolver::builder(provider).map_err(DnsError::SystemConfig)?,
        };
        let opts = builder.options_mut();
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
        opts.cache_size = 0;
        opts.timeout = Duration::from_secs(2);
        opts.attempts = 2;
        let inner = builder.build().map_err(DnsError::Build)?;
        Ok(Resolver { inner })
    }

    /// `ip:port` of every A/AAAA record of `name`, sorted; an error when
    /// there are none.
    pub async fn resolve(&self, name: &DnsName) -> Result<Vec<String>, DnsError> {
        // A trailing dot: the name is absolute, no search domains.
        let fqdn = if name.host.ends_with('.') {
            name.host.clone()
        } else {
            format!("{}.", name.host)
        };
        let lookup = self
            .inner
            .lookup_ip(fqdn.as_str())
            .await
            .map_err(DnsError::Lookup)?;
        let mut ips: Vec<IpAddr> = lookup.iter().collect();
        if ips.is_empty() {
            return Err(DnsError::NoRecords);
        }
        ips.sort();
        ips.dedup();
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, name.port).to_string())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_parse_and_bad_ones_say_why() {
        assert_eq!(
            DnsName::parse("backend.default.svc.cluster.local:3000").ok(),
            Some(DnsName {
                host: "backend.default.svc.cluster.local".into(),
                port: 3000
            })
        );
        let err = |s: &str| DnsName::parse(s).unwrap_err().to_string();
        assert!(err("backend").contains("HOST:PORT"));
        assert!(err("backend:0").contains("bad port"));
        assert!(err(":80").contains("bad host"));
        assert!(err("a b:80").contains("bad host"));
    }
}
