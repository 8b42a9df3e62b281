//! Session signing keys from `--key-file`, and the secret backend ids are
//! derived with.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::io::Read;
use std::path::PathBuf;
use tower_sticky::token::{KeySet, SigningKey};

/// The keys and what is derived from them.
#[derive(Debug)]
pub struct Keys {
    /// The first key signs, every key verifies.
    pub set: KeySet,
    /// Keys `--backend` endpoint ids (`BackendId::from_addr`), derived from
    /// the first key so that gateways sharing `--key-file` agree on ids.
    pub id_secret: [u8; 32],
    /// No `--key-file` was given: the key is random, per process.
    pub generated: bool,
}

/// Reads the key files, or generates a random key when there are none.
pub fn load(paths: &[PathBuf]) -> Result<Keys, String> {
    let mut secrets = Vec::with_capacity(paths.len().max(1));
    for path in paths {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("--key-file {}: cannot read: {e}", path.display()))?;
        secrets.push(bytes);
    }
    let generated = secrets.is_empty();
    if generated {
        let mut random = vec![0u8; 32];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut random))
            .map_err(|e| format!("cannot read /dev/urandom for a session key: {e}"))?;
        secrets.push(random);
    }
    let mut keys = secrets
        .iter()
        .zip(paths.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(secret, path)| {
            SigningKey::new(secret).map_err(|e| match path {
                Some(p) => format!("--key-file {}: {e}", p.display()),
                None => e.to_string(),
            })
        });
    let first = keys.next().ok_or("no key")??;
    let mut set = KeySet::new(first);
    for key in keys {
        set = set.with_verify_only(key?);
    }
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(&secrets[0]).map_err(|e| format!("key: {e}"))?;
    mac.update(b"tower-sticky gateway: backend ids");
    let id_secret = mac.finalize().into_bytes().into();
    Ok(Keys {
        set,
        id_secret,
        generated,
    })
}
