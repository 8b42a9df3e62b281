//! The signed session token: which backend, since when, last seen when.
//!
//! A token is 49 bytes, URL-safe base64 without padding (66 characters), so it
//! is a valid cookie value and a valid header value as it stands:
//!
//! | bytes | field |
//! |---|---|
//! | 0 | format version (1) |
//! | 1..17 | [`BackendId`](crate::balance::BackendId): opaque, never an address |
//! | 17..25 | issued at, ms since the Unix epoch, big-endian |
//! | 25..33 | last seen at, ms since the Unix epoch, big-endian |
//! | 33..49 | HMAC-SHA256 tag, truncated to 128 bits |
//!
//! The tag covers the bytes before it and a *scope* (for example the route
//! rule), so a token minted for one rule is worthless on another even when
//! both share a cookie name and a key. Keys rotate: the first key of a
//! [`KeySet`] signs, every key verifies. Tag comparison is constant-time.
//!
//! `TokenCodec::decode_remembered` adds a per-thread memo of tokens that
//! verified: a session sends the same token until it is refreshed, so most
//! requests cost a table lookup and a constant-time comparison instead of an
//! HMAC (the session engine uses it unless told otherwise).
//!
//! Times are wall-clock milliseconds: several proxy replicas behind one
//! balancer must agree on when a session ends, which a monotonic clock local to
//! one process cannot give. The time rules allow a configurable clock skew for
//! tokens minted by a replica whose clock runs ahead, and no more.
//!
//! The codec, the token and its time rules are the crate's internals: they
//! are public only with the `token-internals` feature (for benchmarks,
//! fuzzing and tests; not covered by semver). What a proxy needs is
//! [`KeySet`] and [`SigningKey`] (and a [`Clock`] in tests; `ManualClock`
//! comes with the `test-util` feature).
//!
//! ```
//! # #[cfg(feature = "token-internals")] {
//! use tower_sticky::balance::BackendId;
//! use tower_sticky::token::{KeySet, SessionToken, SigningKey, Timestamp, TokenCodec};
//!
//! let keys = KeySet::new(SigningKey::new([7u8; 32]).unwrap());
//! let codec = TokenCodec::new(keys, "httproute/default/cookie/rule/0");
//!
//! let token = SessionToken::new(BackendId::from_name("backend-0"), Timestamp::from_millis(1_700_000_000_000));
//! let encoded = codec.encode(&token);
//! assert_eq!(encoded.as_str().len(), 66);
//!
//! let decoded = codec.decode(encoded.as_str()).unwrap();
//! assert_eq!(decoded.token(), token);
//! assert!(!decoded.signed_by_old_key());
//!
//! // Anything else is simply not a session.
//! assert!(codec.decode("hello").is_err());
//! # }
//! ```

mod clock;
// Without the `token-internals` feature these modules' `pub` items are only
// used inside the crate.
#[cfg_attr(not(feature = "token-internals"), allow(unreachable_pub, dead_code))]
mod codec;
mod keys;
#[cfg_attr(not(feature = "token-internals"), allow(unreachable_pub, dead_code))]
mod lifetime;
#[cfg_attr(not(feature = "token-internals"), allow(unreachable_pub, dead_code))]
mod session_token;
mod verified;

#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock, Timestamp};
pub use keys::{KeyError, KeySet, MIN_KEY_LEN, SigningKey};
pub use lifetime::DEFAULT_SKEW;

#[cfg(feature = "token-internals")]
pub use codec::{DecodeError, Decoded, EncodedToken, TOKEN_LEN, TokenCodec};
#[cfg(feature = "token-internals")]
pub use lifetime::{Lifetime, Verdict};
#[cfg(feature = "token-internals")]
pub use session_token::SessionToken;

#[cfg(not(feature = "token-internals"))]
pub(crate) use codec::{DecodeError, Decoded, TOKEN_LEN, TokenCodec};
#[cfg(not(feature = "token-internals"))]
pub(crate) use lifetime::{Lifetime, Verdict};
#[cfg(not(feature = "token-internals"))]
pub(crate) use session_token::SessionToken;
