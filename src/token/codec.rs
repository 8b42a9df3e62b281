use super::{KeySet, SessionToken, Timestamp};
use crate::balance::BackendId;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

const VERSION: u8 = 1;
const BODY_LEN: usize = 33;
const TAG_LEN: usize = 16;
const RAW_LEN: usize = BODY_LEN + TAG_LEN;
/// The length of an encoded token: 49 bytes in unpadded base64.
pub const TOKEN_LEN: usize = 66;
/// Separates the MAC input of this format from any other use of a key.
const DOMAIN: &[u8] = b"tower-sticky/token/v1\0";
/// SHA-256's block size: the inner hash has absorbed one block (the padded
/// key) before the prefix.
const BLOCK_LEN: usize = 64;

/// Signs and verifies session tokens for one scope.
///
/// Each key's HMAC state is prepared once, with the scope already absorbed
/// and padded to a whole SHA-256 block, so signing or verifying costs two
/// compressions (the token's 33 bytes and the outer hash) and allocates
/// nothing.
#[derive(Clone)]
pub struct TokenCodec {
    /// One prepared state per key; the first signs.
    macs: Vec<Hmac<Sha256>>,
    /// Names these keys and this scope in the per-thread memo of verified
    /// tokens; clones share it, as they share the keys.
    id: u64,
}

/// The next [`TokenCodec::id`]; 0 marks an empty memo slot.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCodec")
            .field("keys", &self.macs.len())
            .finish()
    }
}

impl TokenCodec {
    /// A codec for tokens valid only within `scope` (for example the route
    /// rule they were issued on).
    #[must_use]
    pub fn new(keys: KeySet, scope: impl AsRef<[u8]>) -> Self {
        let scope = scope.as_ref();
        let macs = keys
            .keys
            .into_iter()
            .map(|k| {
                let mut mac = k.mac;
                mac.update(DOMAIN);
                mac.update(&(scope.len() as u64).to_be_bytes());
                mac.update(scope);
                // Zeros up to the next block boundary: the prefix is then
                // compressed here, once, instead of staying buffered and
                // costing a third compression per token. The scope's length
                // comes first, so the padding cannot make two scopes collide.
                let buffered = (DOMAIN.len() + 8 + scope.len()) % BLOCK_LEN;
                mac.update(&[0u8; BLOCK_LEN][..(BLOCK_LEN - buffered) % BLOCK_LEN]);
                mac
            })
            .collect();
        TokenCodec {
            macs,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// Signs and encodes a token.
    #[must_use]
    pub fn encode(&self, token: &SessionToken) -> EncodedToken {
        let mut raw = [0u8; RAW_LEN];
        raw[0] = VERSION;
        raw[1..17].copy_from_slice(token.backend.as_bytes());
        raw[17..25].copy_from_slice(&token.issued_at.as_millis().to_be_bytes());
        raw[25..33].copy_from_slice(&token.last_seen.as_millis().to_be_bytes());
        let mut mac = self.macs[0].clone();
        mac.update(&raw[..BODY_LEN]);
        raw[BODY_LEN..].copy_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
        let mut buf = [0u8; TOKEN_LEN];
        let n = URL_SAFE_NO_PAD
            .encode_slice(raw, &mut buf)
            .expect("66 bytes hold 49 in base64");
        debug_assert_eq!(n, TOKEN_LEN);
        EncodedToken { buf }
    }

    /// [`encode`](Self::encode), and remembers the token on this thread so
    /// that [`decode_remembered`](Self::decode_remembered) finds it without
    /// verifying it again.
    #[must_use]
    pub fn encode_remembered(&self, token: &SessionToken) -> EncodedToken {
        let encoded = self.encode(token);
        let decoded = Decoded {
            token: *token,
            key_index: 0,
        };
        super::verified::remember(self.id, &encoded.buf, decoded);
        encoded
    }

    /// [`decode`](Self::decode), with a per-thread memo of the tokens this
    /// codec (or a clone) verified or signed: a token seen before on this
    /// thread costs a table lookup and a constant-time comparison instead of
    /// base64 and an HMAC. The result is always the one `decode` gives.
    ///
    /// ```
    /// use tower_sticky::balance::BackendId;
    /// use tower_sticky::token::{KeySet, SessionToken, SigningKey, Timestamp, TokenCodec};
    ///
    /// let codec = TokenCodec::new(KeySet::new(SigningKey::new([7u8; 32]).unwrap()), "rule/0");
    /// let token = SessionToken::new(BackendId::from_name("pod-a"), Timestamp::from_millis(1_000));
    /// let encoded = codec.encode(&token);
    /// // Verified the first time, remembered after.
    /// assert_eq!(codec.decode_remembered(encoded.as_str()).unwrap().token(), token);
    /// assert_eq!(codec.decode_remembered(encoded.as_str()).unwrap().token(), token);
    ///
    /// // Another codec (other keys or scope) remembers nothing of it.
    /// let other = TokenCodec::new(KeySet::new(SigningKey::new([8u8; 32]).unwrap()), "rule/0");
    /// assert!(other.decode_remembered(encoded.as_str()).is_err());
    /// ```
    pub fn decode_remembered(&self, value: &str) -> Result<Decoded, DecodeError> {
        match self.recall(value.as_bytes()) {
            Some(decoded) => Ok(decoded),
            None => self.decode_and_remember(value),
        }
    }

    /// What this thread remembers of `value` for this codec (only ever a
    /// token that verified, so only ever ASCII).
    pub(crate) fn recall(&self, value: &[u8]) -> Option<Decoded> {
        let encoded = <&[u8; TOKEN_LEN]>::try_from(value).ok()?;
        super::verified::recall(self.id, encoded)
    }

    /// [`decode`](Self::decode), remembering the token if it verifies.
    pub(crate) fn decode_and_remember(&self, value: &str) -> Result<Decoded, DecodeError> {
        let decoded = self.decode(value)?;
        let encoded = <&[u8; TOKEN_LEN]>::try_from(value.as_bytes()).expect("decoded: 66 bytes");
        super::verified::remember(self.id, encoded, decoded);
        Ok(decoded)
    }

    /// Decodes and verifies a token. Any value that is not a token this codec
    /// signed (with any of its keys) is an error, never a panic.
    pub fn decode(&self, value: &str) -> Result<Decoded, DecodeError> {
        let value = value.as_bytes();
        if value.len() != TOKEN_LEN {
            return Err(DecodeError::Malformed);
        }
        // base64 wants slack in the output slice; only 49 bytes may land.
        let mut raw = [0u8; RAW_LEN + 3];
        match URL_SAFE_NO_PAD.decode_slice(value, &mut raw) {
            Ok(RAW_LEN) => {}
            _ => return Err(DecodeError::Malformed),
        }
        if raw[0] != VERSION {
            return Err(DecodeError::Malformed);
        }
        let (body, tag) = raw[..RAW_LEN].split_at(BODY_LEN);
        let key_index = self
            .macs
            .iter()
            .position(|m| {
                let mut mac = m.clone();
                mac.update(body);
                mac.verify_truncated_left(tag).is_ok()
            })
            .ok_or(DecodeError::BadSignature)?;
        let mut id = [0u8; 16];
        id.copy_from_slice(&body[1..17]);
        let issued = u64::from_be_bytes(body[17..25].try_into().expect("8 bytes"));
        let seen = u64::from_be_bytes(body[25..33].try_into().expect("8 bytes"));
        Ok(Decoded {
            token: SessionToken {
                backend: BackendId::from_bytes(id),
                issued_at: Timestamp::from_millis(issued),
                last_seen: Timestamp::from_millis(seen),
            },
            key_index,
        })
    }
}

/// A token that verified, and which key verified it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    token: SessionToken,
    key_index: usize,
}

impl Decoded {
    /// The verified token.
    #[must_use]
    pub fn token(&self) -> SessionToken {
        self.token
    }

    /// Whether a key other than the signing key verified it: the token
    /// should be re-issued under the current key.
    #[must_use]
    pub fn signed_by_old_key(&self) -> bool {
        self.key_index != 0
    }
}

/// Why a value is not a valid token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Wrong length, not base64, or an unknown format version.
    Malformed,
    /// Well-formed, but no configured key signed it (forged, tampered, or
    /// from another deployment or scope).
    BadSignature,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Malformed => "malformed session token",
            DecodeError::BadSignature => "session token signature does not verify",
        })
    }
}

impl std::error::Error for DecodeError {}

/// An encoded token: 66 URL-safe base64 characters, held inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncodedToken {
    buf: [u8; TOKEN_LEN],
}

impl EncodedToken {
    /// The token as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf).expect("base64 output is ASCII")
    }
}

impl fmt::Debug for EncodedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for EncodedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
