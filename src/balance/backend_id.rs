use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use std::fmt;

/// A backend's stable, opaque identity: what a session token carries.
///
/// Sixteen bytes derived from an operator-given name (a pod name, an
/// endpoint id) or from a keyed hash of the address; the address itself is
/// never used, so a token reveals nothing of the network behind the proxy.
/// Every proxy replica derives the same id from the same input.
///
/// ```
/// use tower_sticky::balance::BackendId;
///
/// let a = BackendId::from_name("backend-765694d47f-lxwdf");
/// assert_eq!(a, BackendId::from_name("backend-765694d47f-lxwdf"));
/// assert_ne!(a, BackendId::from_name("backend-765694d47f-kvwqb"));
///
/// // Addresses are hashed with a secret, so they cannot be guessed from ids.
/// let secret = [9u8; 32];
/// let b = BackendId::from_addr("10.0.0.7:3000", &secret);
/// assert_ne!(b, BackendId::from_addr("10.0.0.7:3000", &[8u8; 32]));
/// assert!(!b.to_string().contains("10.0.0.7"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct BackendId([u8; 16]);

impl BackendId {
    /// The id of the backend an operator calls `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"tower-sticky/backend-name\0");
        h.update(name.as_bytes());
        Self::truncate(&h.finalize())
    }

    /// The id of the backend at `addr`, keyed by `secret` so that the address
    /// cannot be recovered by trying every address.
    #[must_use]
    pub fn from_addr(addr: &str, secret: &[u8]) -> Self {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"tower-sticky/backend-addr\0");
        mac.update(addr.as_bytes());
        Self::truncate(&mac.finalize().into_bytes())
    }

    /// An id from its raw bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        BackendId(bytes)
    }

    /// The raw bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    fn truncate(digest: &[u8]) -> Self {
        let mut id = [0u8; 16];
        id.copy_from_slice(&digest[..16]);
        BackendId(id)
    }
}

impl std::hash::Hash for BackendId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Ids are already uniform hash output.
        state.write_u64(u64::from_le_bytes(self.0[..8].try_into().expect("8 bytes")));
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BackendId({self})")
    }
}
