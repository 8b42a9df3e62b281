//! Who may ask the admin port: no browser page of another site, no host
//! name the operator did not give (issue 19, finding 2).
//!
//! * DNS rebinding: a page at `rebind.evil.example`, whose name the
//!   attacker then points at 127.0.0.1, reads and drives the admin API as a
//!   same-origin page. Its requests still say `Host: rebind.evil.example`,
//!   so a request whose `Host` is not `localhost`, an IP address (loopback
//!   or the one the client connected to) or an `--admin-host` name gets 421.
//! * Cross-site requests: any page may make a browser send a no-cors
//!   `POST` (a form, `fetch`) to `http://127.0.0.1:9901/backends/drain`. A
//!   state-changing request whose `Sec-Fetch-Site` is not `same-origin` or
//!   `none`, or whose `Origin` names another host, gets 403.
//!
//! curl, kubectl port-forward and Prometheus send neither `Origin` nor
//! `Sec-Fetch-Site`, and `Host` is the address they connected to: they pass.

use http::{HeaderMap, Request, Version};
use std::net::IpAddr;

/// The names the admin port answers to besides `localhost` and IP
/// addresses: `--admin-host`, lowercase, validated once.
#[derive(Clone, Debug, Default)]
pub struct Hosts {
    names: Vec<String>,
}

impl Hosts {
    /// `--admin-host` names (case and a final dot do not matter).
    #[must_use]
    pub fn new(names: &[String]) -> Self {
        Hosts {
            names: names.iter().map(|n| normalise(n).to_owned()).collect(),
        }
    }

    /// Whether `host` (a `Host` value or an `Origin`'s host, port allowed)
    /// names this admin port for a client connected to `local`.
    fn allows(&self, host: &str, local: IpAddr) -> bool {
        let host = normalise(strip_port(host));
        if host == "localhost" {
            return true;
        }
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return ip.is_loopback() || ip == local || ip.to_canonical() == local.to_canonical();
        }
        self.names.contains(&host)
    }
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// HTTP/1.1 without `Host` (RFC 9112 §3.2): 400.
    NoHost,
    /// A `Host` that is not this admin port's: 421.
    ForeignHost,
    /// A state-changing request from a browser page of another site: 403.
    CrossSite,
}

/// Checks `req`, which arrived on a connection to `local`.
pub fn check<B>(req: &Request<B>, hosts: &Hosts, local: IpAddr) -> Result<(), Refusal> {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    match host {
        Some(h) if !hosts.allows(h, local) => return Err(Refusal::ForeignHost),
        Some(_) => {}
        None if req.version() == Version::HTTP_11 => return Err(Refusal::NoHost),
        None => {}
    }
    let changes_state = !matches!(*req.method(), http::Method::GET | http::Method::HEAD);
    if changes_state && cross_site(req.headers(), hosts, local) {
        return Err(Refusal::CrossSite);
    }
    Ok(())
}

/// Whether a browser says the request comes from a page of another site.
fn cross_site(headers: &HeaderMap, hosts: &Hosts, local: IpAddr) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        // `none`: the user typed it; `same-origin`: the admin port's own
        // page. `same-site` and `cross-site` are other pages.
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return true;
        }
    }
    headers.get_all(http::header::ORIGIN).iter().any(|origin| {
        let Ok(origin) = origin.to_str() else {
            return true;
        };
        // `null` (sandboxed pages, redirects, `file:`) is no host of ours.
        let host = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        !host.is_some_and(|h| !h.contains('/') && hosts.allows(h, local))
    })
}

/// `host` without `:port` (`[::1]:80` → `[::1]`, `a:80` → `a`).
fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, port))
            if port.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']')) =>
        {
            h
        }
        _ => host,
    }
}

fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut r = Request::builder().method(method).uri("/backends/drain");
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(()).unwrap()
    }

    #[test]
    fn foreign_hosts_and_cross_site_pages_are_refused_plain_clients_pass() {
        let hosts = Hosts::new(&["Admin.Internal.".into()]);
        let local: IpAddr = "10.0.0.5".parse().unwrap();
        let ok = |h: &[(&str, &str)]| check(&req("POST", h), &hosts, local);
        for host in [
            "localhost:9901",
            "LOCALHOST",
            "127.0.0.1:9901",
            "[::1]:9901",
            "10.0.0.5:9901",
            "admin.internal",
            "admin.internal.:80",
        ] {
            assert_eq!(ok(&[("host", host)]), Ok(()), "{host}");
        }
        for host in [
            "rebind.evil.example",
            "10.0.0.6:9901",
            "localhost.evil.example",
            "",
        ] {
            assert_eq!(ok(&[("host", host)]), Err(Refusal::ForeignHost), "{host}");
        }
        assert_eq!(ok(&[]), Err(Refusal::NoHost));
        let h = ("host", "127.0.0.1:9901");
        assert_eq!(
            ok(&[h, ("sec-fetch-site", "cross-site")]),
            Err(Refusal::CrossSite)
        );
        assert_eq!(
            ok(&[h, ("sec-fetch-site", "same-site")]),
            Err(Refusal::CrossSite)
        );
        assert_eq!(ok(&[h, ("sec-fetch-site", "same-origin")]), Ok(()));
        assert_eq!(ok(&[h, ("sec-fetch-site", "none")]), Ok(()));
        assert_eq!(
            ok(&[h, ("origin", "https://evil.example")]),
            Err(Refusal::CrossSite)
        );
        assert_eq!(ok(&[h, ("origin", "null")]), Err(Refusal::CrossSite));
        assert_eq!(ok(&[h, ("origin", "http://127.0.0.1:9901")]), Ok(()));
        // Reading is not refused for its origin: without CORS headers the
        // page cannot read the answer.
        let get = req("GET", &[h, ("origin", "https://evil.example")]);
        assert_eq!(check(&get, &hosts, local), Ok(()));
    }
}
