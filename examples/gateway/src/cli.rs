//! Command-line flags.

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

    /// Endpoints of a backendRef Service: `NAME[:PORT]=HOST:PORT[,HOST:PORT...]`;
    /// repeatable. Services without one get in-process echo replicas.
    #[arg(long = "backend", value_name = "SPEC", value_parser = parse_backend)]
    pub backends: Vec<BackendSpec>,

    /// In-process echo replicas per Service that no `--backend` maps.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub replicas: usize,

    /// Address to serve clients on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:8888", value_name = "ADDR")]
    pub listen: String,

    /// Session signing key file (at least 32 bytes); repeatable: the first
    /// signs, every one verifies. Without one a random key is generated.
    #[arg(long = "key-file", value_name = "PATH")]
    pub key_files: Vec<PathBuf>,

    /// Address for `/healthz` and Prometheus `/metrics`.
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<String>,

    /// Worker threads (default: one per core), each with its own
    /// single-threaded runtime and `SO_REUSEPORT` listener.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// One `--backend` flag: a Service (optionally one port of it) and its
/// endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    /// The Service name, as in `backendRefs[].name`.
    pub name: String,
    /// Only this `backendRefs[].port`, if given.
    pub port: Option<u16>,
    /// `host:port` endpoints.
    pub endpoints: Vec<String>,
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
        write!(f, "={}", self.endpoints.join(","))
    }
}

/// Parses `NAME[:PORT]=HOST:PORT[,HOST:PORT...]`.
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
    let endpoints: Vec<String> = endpoints
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| {
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
    Ok(BackendSpec {
        name: name.to_owned(),
        port,
        endpoints,
    })
}
