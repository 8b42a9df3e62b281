use hmac::{Hmac, KeyInit};
use sha2::Sha256;
use std::fmt;

/// The least key length accepted: HMAC-SHA256 gets no stronger past the
/// hash's block size, but is weakened below its output size.
pub const MIN_KEY_LEN: usize = 32;

/// A secret used to sign and verify session tokens.
///
/// Its `Debug` output never shows the secret.
#[derive(Clone)]
pub struct SigningKey {
    pub(crate) mac: Hmac<Sha256>,
}

impl SigningKey {
    /// A key from at least 32 secret bytes.
    ///
    /// ```
    /// use tower_sticky::token::SigningKey;
    /// assert!(SigningKey::new(b"too short").is_err());
    /// assert!(SigningKey::new([0x42; 32]).is_ok());
    /// ```
    pub fn new(secret: impl AsRef<[u8]>) -> Result<Self, KeyError> {
        let secret = secret.as_ref();
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError { len: secret.len() });
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
            .map_err(|_| KeyError { len: secret.len() })?;
        Ok(SigningKey { mac })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// A signing key shorter than 32 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyError {
    len: usize,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a signing key must be at least {MIN_KEY_LEN} bytes, got {}",
            self.len
        )
    }
}

impl std::error::Error for KeyError {}

/// The keys of a deployment: the first signs, every one verifies.
///
/// To rotate without dropping sessions: put the new key first and keep the
/// old one after it for at least the longest session lifetime, then drop it.
///
/// ```
/// use tower_sticky::token::{KeySet, SigningKey};
/// let keys = KeySet::new(SigningKey::new([1; 32]).unwrap())
///     .with_verify_only(SigningKey::new([2; 32]).unwrap());
/// assert_eq!(keys.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct KeySet {
    pub(crate) keys: Vec<SigningKey>,
}

impl KeySet {
    /// A set whose only key signs and verifies.
    #[must_use]
    pub fn new(signing: SigningKey) -> Self {
        KeySet {
            keys: vec![signing],
        }
    }

    /// Adds a key that only verifies (an older key being rotated out).
    #[must_use]
    pub fn with_verify_only(mut self, key: SigningKey) -> Self {
        self.keys.push(key);
        self
    }

    /// How many keys verify.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a set holds its signing key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key that signs.
    #[must_use]
    pub fn signing_key(&self) -> &SigningKey {
        &self.keys[0]
    }
}
