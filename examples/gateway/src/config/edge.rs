//! The client-facing edge of the gateway (issue 20): TLS termination,
//! trusted proxies, and the attributes of the session cookie.
//!
//! Checked once at start-up: `SameSite=None` (and `Partitioned`, which
//! browsers also accept only with `Secure`) is refused unless every cookie
//! will carry `Secure`, that is unless `--listen` serves TLS or
//! `--cookie-secure always` says a TLS edge sits in front.

use crate::config::certs::CertFiles;
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::PathBuf;
use tower_sticky::carrier::{CookieAttributes, SameSite, Secure};

/// The flags of the edge.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct EdgeFlags {
    /// PEM certificate chain: `--listen` serves HTTPS (ALPN `h2`,
    /// `http/1.1`). Re-read on SIGHUP and `POST /reload`. Needs `--tls-key`.
    #[arg(long = "tls-cert", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--tls-cert`.
    #[arg(long = "tls-key", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Peers whose `X-Forwarded-Proto` and `X-Forwarded-For` are kept (and
    /// whose `X-Forwarded-Proto: https` counts as TLS for `Secure`):
    /// `CIDR[,CIDR...]`. From any other peer they are replaced.
    #[arg(long = "trusted-proxies", value_name = "CIDR[,CIDR...]",
          value_delimiter = ',', value_parser = parse_cidr)]
    pub trusted_proxies: Vec<IpNet>,

    /// The session cookie's `SameSite`.
    #[arg(long = "cookie-same-site", value_enum, default_value_t = SameSiteFlag::Lax,
          value_name = "strict|lax|none")]
    pub cookie_same_site: SameSiteFlag,

    /// When the session cookie carries `Secure`: `auto` (on TLS
    /// connections, or `X-Forwarded-Proto: https` from a trusted proxy) or
    /// `always`.
    #[arg(long = "cookie-secure", value_enum, default_value_t = SecureFlag::Auto,
          value_name = "auto|always")]
    pub cookie_secure: SecureFlag,

    /// The session cookie's `Domain`.
    #[arg(long = "cookie-domain", value_name = "DOMAIN")]
    pub cookie_domain: Option<String>,

    /// Marks the session cookie `Partitioned` (CHIPS).
    #[arg(long = "cookie-partitioned")]
    pub cookie_partitioned: bool,
}

/// `--cookie-same-site`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SameSiteFlag {
    Strict,
    #[default]
    Lax,
    None,
}

/// `--cookie-secure`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum SecureFlag {
    #[default]
    Auto,
    Always,
}

/// A cookie flag combination refused at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieError {
    /// Browsers drop `SameSite=None` and `Partitioned` cookies without
    /// `Secure`, and without TLS the gateway would send them without it.
    #[error(
        "{0} needs Secure, which browsers require of it: serve TLS (--tls-cert, --tls-key) or say --cookie-secure always (a TLS edge in front)"
    )]
    NeedsSecure(&'static str),
    /// Not a domain name.
    #[error("--cookie-domain {0:?}: not a domain name")]
    Domain(String),
}

/// What the rules' session engines write into the cookie.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cookie {
    /// For the library's engine (`Partitioned` included).
    pub attributes: CookieAttributes,
}

impl EdgeFlags {
    /// The certificate files, when `--listen` serves TLS.
    pub fn cert_files(&self) -> Option<CertFiles> {
        Some(CertFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        })
    }

    /// The cookie's attributes, checked.
    pub fn cookie(&self) -> Result<Cookie, CookieError> {
        let always_secure = self.cookie_secure == SecureFlag::Always || self.cert_files().is_some();
        if self.cookie_same_site == SameSiteFlag::None && !always_secure {
            return Err(CookieError::NeedsSecure("--cookie-same-site none"));
        }
        if self.cookie_partitioned && !always_secure {
            return Err(CookieError::NeedsSecure("--cookie-partitioned"));
        }
        let mut attributes = CookieAttributes::default()
            .same_site(match self.cookie_same_site {
                SameSiteFlag::Strict => SameSite::Strict,
                SameSiteFlag::Lax => SameSite::Lax,
                SameSiteFlag::None => SameSite::None,
            })
            .secure(match self.cookie_secure {
                SecureFlag::Auto => Secure::Auto,
                SecureFlag::Always => Secure::Always,
            })
            .partitioned(self.cookie_partitioned);
        if let Some(domain) = &self.cookie_domain {
            let ok = !domain.is_empty()
                && domain.len() <= 253
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(CookieError::Domain(domain.clone()));
            }
            attributes = attributes.domain(domain.clone());
        }
        Ok(Cookie { attributes })
    }

    /// The trusted peers.
    pub fn trusted(&self) -> TrustedProxies {
        TrustedProxies(self.trusted_proxies.clone().into())
    }
}

fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    // A bare address is a /32 (or /128).
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not a CIDR (like 10.0.0.0/8) or an IP address"))
}

/// `--trusted-proxies`.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(std::sync::Arc<[IpNet]>);

impl TrustedProxies {
    /// Whether `peer` is one of them (an IPv4-mapped IPv6 peer counts as
    /// its IPv4 address).
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|net| net.contains(&peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        edge: EdgeFlags,
    }

    fn edge(args: &[&str]) -> EdgeFlags {
        Flags::try_parse_from(std::iter::once("gw").chain(args.iter().copied()))
            .expect("flags")
            .edge
    }

    #[test]
    fn same_site_none_and_partitioned_need_secure() {
        let none = edge(&["--cookie-same-site", "none"]);
        assert_eq!(
            none.cookie(),
            Err(CookieError::NeedsSecure("--cookie-same-site none"))
        );
        let always = edge(&["--cookie-same-site", "none", "--cookie-secure", "always"]);
        assert!(always.cookie().is_ok());
        let tls = edge(&[
            "--cookie-same-site",
            "none",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
        ]);
        assert!(tls.cookie().is_ok());
        assert_eq!(
            edge(&["--cookie-partitioned"]).cookie(),
            Err(CookieError::NeedsSecure("--cookie-partitioned"))
        );
        assert!(edge(&["--cookie-domain", "shop example"]).cookie().is_err());
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let t = edge(&["--trusted-proxies", "10.0.0.0/8, 192.0.2.7,::1"]).trusted();
        assert!(t.contains("10.1.2.3".parse().expect("ip")));
        assert!(t.contains("192.0.2.7".parse().expect("ip")));
        assert!(t.contains("::ffff:10.9.9.9".parse().expect("ip")));
        assert!(t.contains("::1".parse().expect("ip")));
        assert!(!t.contains("192.0.2.8".parse().expect("ip")));
        assert!(!t.contains("127.0.0.1".parse().expect("ip")));
        let bad = Flags::try_parse_from(["gw", "--trusted-proxies", "10.0.0.0/33"]);
        assert!(bad.is_err());
    }
}
