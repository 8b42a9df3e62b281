//! The TLS certificate and key of `--tls-cert` and `--tls-key` (PEM),
//! read into a rustls server configuration that offers ALPN `h2` and
//! `http/1.1`, with the `ring` provider (no OpenSSL).
//!
//! A missing or malformed file stops start-up, and a reload that meets one
//! keeps the pair already serving; either way the error names the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocols offered, preferred first.
pub const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Why a certificate and key pair cannot serve; `Display` names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The file cannot be read.
    #[error("--tls-cert {0}: cannot read it: {1}")]
    ReadCert(PathBuf, std::io::Error),
    /// The file cannot be read.
    #[error("--tls-key {0}: cannot read it: {1}")]
    ReadKey(PathBuf, std::io::Error),
    /// No PEM `CERTIFICATE`, or a malformed one.
    #[error("--tls-cert {0}: {1}")]
    BadCert(PathBuf, String),
    /// No PEM private key, or a malformed one.
    #[error("--tls-key {0}: {1}")]
    BadKey(PathBuf, String),
    /// The key does not fit the certificate, or rustls refuses the pair.
    #[error("--tls-cert {0} with --tls-key {1}: {2}")]
    Pair(PathBuf, PathBuf, rustls::Error),
}

/// Where the pair is read from.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// `--tls-cert`: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// `--tls-key`: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl CertFiles {
    /// Reads both files and builds the server configuration.
    pub fn load(&self) -> Result<Arc<rustls::ServerConfig>, CertError> {
        let chain = read_chain(&self.cert)?;
        let key = read_key(&self.key)?;
        // ring keeps the build light (no C toolchain beyond ring's own);
        // rustls deprecates it only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.pair_error(e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| self.pair_error(e))?;
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    fn pair_error(&self, e: rustls::Error) -> CertError {
        CertError::Pair(self.cert.clone(), self.key.clone(), e)
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let pem = std::fs::read(path).map_err(|e| CertError::ReadCert(path.to_owned(), e))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::BadCert(path.to_owned(), format!("malformed PEM: {e}")))?;
    if chain.is_empty() {
        return Err(CertError::BadCert(
            path.to_owned(),
            "no PEM CERTIFICATE in it".into(),
        ));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let pem = std::fs::read(path).map_err(|e| CertError::ReadKey(path.to_owned(), e))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        CertError::BadKey(
            path.to_owned(),
            format!("no usable PEM private key in it ({e})"),
        )
    })
}
