//! TLS termination (`--tls-cert`, `--tls-key`): rustls over the accepted
//! TCP connection, then HTTP/2 or HTTP/1.1 as ALPN chose (HTTP/1.1 when the
//! client offered no ALPN). The pair in force sits behind an `ArcSwap`: a
//! reload ([`crate::reload`], SIGHUP and `POST /reload`) swaps in a new
//! one for new connections, and connections already up keep theirs.
//!
//! [`Edge`] is what every worker knows of the client side besides HTTP:
//! the certificates and `--trusted-proxies`.

use crate::config::certs::{CertError, CertFiles};
use crate::config::edge::TrustedProxies;
use arc_swap::ArcSwap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;

/// How long a client gets to finish its TLS handshake.
pub const HANDSHAKE_MAX: Duration = Duration::from_secs(10);

/// The certificate pair serving new TLS connections, and where it is read
/// from.
pub struct Certs {
    files: CertFiles,
    current: ArcSwap<ServerConfig>,
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certs").field("files", &self.files).finish()
    }
}

impl Certs {
    /// Reads the pair; an error (naming the file) stops start-up.
    pub fn load(files: CertFiles) -> Result<Arc<Certs>, CertError> {
        let config = files.load()?;
        Ok(Arc::new(Certs {
            files,
            current: ArcSwap::new(config),
        }))
    }

    /// Reads the files again, without serving them yet: a broken pair
    /// leaves the one in force alone.
    pub fn read_again(&self) -> Result<Arc<ServerConfig>, CertError> {
        self.files.load()
    }

    /// New connections are served with `config` from now on.
    pub fn install(&self, config: Arc<ServerConfig>) {
        self.current.store(config);
    }

    /// The handshake with the pair in force, bounded by [`HANDSHAKE_MAX`].
    /// `None`: it failed or timed out (logged at debug level).
    pub async fn accept(&self, stream: TcpStream) -> Option<(TlsStream<TcpStream>, Alpn)> {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.current.load_full());
        let stream = match tokio::time::timeout(HANDSHAKE_MAX, acceptor.accept(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!("TLS handshake: {e}");
                return None;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return None;
            }
        };
        let alpn = match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") => Alpn::H2,
            _ => Alpn::Http1,
        };
        Some((stream, alpn))
    }
}

/// The protocol ALPN settled on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alpn {
    /// `h2`.
    H2,
    /// `http/1.1`, or no ALPN.
    Http1,
}

/// The client side beyond HTTP: TLS (if `--listen` serves it) and the
/// trusted proxies.
#[derive(Clone, Debug, Default)]
pub struct Edge {
    /// `--tls-cert`, `--tls-key`.
    pub tls: Option<Arc<Certs>>,
    /// `--trusted-proxies`.
    pub trusted: TrustedProxies,
}
