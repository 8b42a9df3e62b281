//! Session signing keys from `--key-file`, and the secret that `--backend`
//! endpoint ids are keyed with (`--backend-id-key`).
//!
//! The two are separate on purpose. Signing keys rotate: a new key first,
//! the old one second, later the old one dropped. A backend id is written
//! into every live token, so if ids were derived from a signing key, every
//! rotation would rename every backend and move every session. Ids are
//! instead keyed by a dedicated secret that never needs to rotate: leaking
//! it forges nothing (tokens are still signed by `--key-file`), it only lets
//! someone who also holds tokens test guesses of backend addresses.
//!
//! Why keyed at all: an unkeyed hash of `10.0.0.7:3000` can be reversed by
//! hashing every address of `10.0.0.0/8` on a few common ports, 2^24 guesses
//! per port, seconds of work. Under a 32-byte secret there is nothing to
//! brute-force.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};
use tower_sticky::token::{KeySet, SigningKey};

/// The shortest `--backend-id-key` accepted, as for signing keys.
const MIN_ID_KEY_LEN: usize = 32;

/// Why the keys cannot be had; each names its flag and file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A `--key-file` cannot be read.
    #[error("--key-file {path}: cannot read: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A `--key-file` is no signing key (too short).
    #[error("--key-file {path}: {source}")]
    Signing {
        /// The file.
        path: String,
        /// Why.
        source: tower_sticky::token::KeyError,
    },
    /// `--backend` with `--key-file` but no `--backend-id-key`.
    #[error(
        "--backend with --key-file needs --backend-id-key FILE: the secret (at least 32 bytes, \
         e.g. `head -c 32 /dev/urandom`) that keys backend ids in session tokens; share it \
         between replicas and keep it when you rotate --key-file, or every session moves"
    )]
    NoIdKey,
    /// The `--backend-id-key` cannot be read.
    #[error("--backend-id-key {path}: cannot read: {source}")]
    ReadIdKey {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The `--backend-id-key` is too short.
    #[error("--backend-id-key {path}: {len} bytes, at least {MIN_ID_KEY_LEN} are needed")]
    ShortIdKey {
        /// The file.
        path: String,
        /// Its length.
        len: usize,
    },
    /// The operating system gave no random bytes.
    #[error("cannot generate a random key: {0}")]
    Random(getrandom::Error),
}

/// The keys and what is derived from them.
#[derive(Debug)]
pub struct Keys {
    /// The first key signs, every key verifies.
    pub set: KeySet,
    /// Keys `--backend` endpoint ids (`BackendId::from_addr`): derived from
    /// `--backend-id-key`, never from a signing key, so that ids survive key
    /// rotation and gateways sharing the id key agree on them.
    pub id_secret: [u8; 32],
    /// No `--key-file` was given: the key is random, per process.
    pub generated: bool,
}

/// Where the keys come from: the `--key-file`, `--backend-id-key` and
/// `--backend` flags.
#[derive(Clone, Copy, Debug)]
pub struct KeySources<'a> {
    /// `--key-file`, in order.
    pub key_files: &'a [PathBuf],
    /// `--backend-id-key`.
    pub id_key: Option<&'a Path>,
    /// Whether any `--backend` is given (ids of real endpoints are needed).
    pub backends: bool,
}

/// Reads the key files, or generates a random key when there are none, and
/// the id key.
///
/// `--backend` with `--key-file` needs `--backend-id-key`: sessions are
/// meant to outlive the process and be shared by replicas, so the ids in
/// them must be stable, and no stable secret other than a signing key is
/// known otherwise. Without `--key-file` the sessions end with the process
/// anyway, and the id secret is random too.
pub fn load(sources: KeySources<'_>) -> Result<Keys, KeyError> {
    let mut keys = Vec::with_capacity(sources.key_files.len().max(1));
    for path in sources.key_files {
        let shown = || path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: shown(),
            source,
        })?;
        let key = SigningKey::new(&bytes).map_err(|source| KeyError::Signing {
            path: shown(),
            source,
        })?;
        keys.push(key);
    }
    let generated = keys.is_empty();
    let first = if generated {
        SigningKey::new(random_secret()?).map_err(|source| KeyError::Signing {
            path: "<random>".into(),
            source,
        })?
    } else {
        keys.remove(0)
    };
    let mut set = KeySet::new(first);
    for key in keys {
        set = set.with_verify_only(key);
    }
    let id_secret = match sources.id_key {
        Some(path) => id_secret_from_file(path)?,
        None if sources.backends && !generated => return Err(KeyError::NoIdKey),
        None => random_secret()?,
    };
    Ok(Keys {
        set,
        id_secret,
        generated,
    })
}

/// The id secret from a `--backend-id-key` file: an HMAC of a fixed label
/// under the file's bytes, so that the same bytes used elsewhere (even,
/// against advice, as a signing key) give an unrelated secret.
fn id_secret_from_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let shown = || path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| KeyError::ReadIdKey {
        path: shown(),
        source,
    })?;
    if bytes.len() < MIN_ID_KEY_LEN {
        return Err(KeyError::ShortIdKey {
            path: shown(),
            len: bytes.len(),
        });
    }
    // HMAC takes a key of any length: this cannot fail.
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&bytes).map_err(|_| KeyError::ShortIdKey {
            path: shown(),
            len: bytes.len(),
        })?;
    mac.update(b"tower-sticky gateway: backend ids");
    Ok(mac.finalize().into_bytes().into())
}

/// 32 bytes from the operating system's generator.
fn random_secret() -> Result<[u8; 32], KeyError> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(KeyError::Random)?;
    Ok(random)
}
