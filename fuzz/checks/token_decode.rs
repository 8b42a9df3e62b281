//! `TokenCodec::decode` on arbitrary input never panics, and whatever decodes
//! re-encodes to exactly the value that came in.
//!
//! Shared by the `token_decode` fuzz target and the corpus replay test
//! (`tests/fuzz_corpus.rs`).

use std::sync::LazyLock;
use tower_sticky::balance::BackendId;
use tower_sticky::token::{KeySet, SessionToken, SigningKey, TOKEN_LEN, Timestamp, TokenCodec};

struct Codecs {
    /// Signs with the current key, also verifies the old one (rotation).
    current: TokenCodec,
    /// Signs with the old key only: its tokens exercise `signed_by_old_key`.
    old: TokenCodec,
}

static CODECS: LazyLock<Codecs> = LazyLock::new(|| {
    let current = SigningKey::new([0x11; 32]).unwrap();
    let old = SigningKey::new([0x22; 32]).unwrap();
    Codecs {
        current: TokenCodec::new(KeySet::new(current).with_verify_only(old.clone()), "fuzz"),
        old: TokenCodec::new(KeySet::new(old), "fuzz"),
    }
});

/// Checks one fuzz input; panics on any disagreement.
pub fn run(data: &[u8]) {
    let codecs = &*CODECS;

    // 1. Arbitrary text: never a panic; a value that verifies is canonical.
    // Forging a tag is out of reach, so this mostly drives the length,
    // base64 and version checks.
    let text = String::from_utf8_lossy(data);
    check_decoded(&codecs.current, &text);

    // 2. Build a real token from the input so the verified path, rotation and
    // tampering are reached too.
    if data.len() < 35 {
        return;
    }
    let id: [u8; 16] = data[..16].try_into().unwrap();
    let issued = u64::from_le_bytes(data[16..24].try_into().unwrap());
    let seen = u64::from_le_bytes(data[24..32].try_into().unwrap());
    let token = SessionToken::from_parts(
        BackendId::from_bytes(id),
        Timestamp::from_millis(issued),
        Timestamp::from_millis(seen),
    );
    let by_old = data[32] & 1 == 1;
    let encoded = if by_old {
        codecs.old.encode(&token)
    } else {
        codecs.current.encode(&token)
    };
    let s = encoded.as_str();
    assert_eq!(s.len(), TOKEN_LEN);
    let decoded = codecs
        .current
        .decode(s)
        .expect("a token we signed verifies");
    assert_eq!(decoded.token(), token);
    assert_eq!(decoded.signed_by_old_key(), by_old);
    check_decoded(&codecs.current, s);

    // Any other character at any position, or any truncation, is rejected.
    let pos = usize::from(data[33]) % TOKEN_LEN;
    let replacement = data[34];
    if replacement != s.as_bytes()[pos] {
        let mut tampered = s.as_bytes().to_vec();
        tampered[pos] = replacement;
        let tampered = String::from_utf8_lossy(&tampered);
        assert!(
            codecs.current.decode(&tampered).is_err(),
            "tampered token verified: {tampered}"
        );
    }
    assert!(codecs.current.decode(&s[..pos]).is_err());
}

/// Decodes `value`; if it verifies, re-encoding must give `value` back byte
/// for byte (no second spelling of one token), after re-signing for tokens
/// of the old key.
fn check_decoded(codec: &TokenCodec, value: &str) {
    let Ok(decoded) = codec.decode(value) else {
        return;
    };
    let again = codec.encode(&decoded.token());
    if decoded.signed_by_old_key() {
        let redecoded = codec
            .decode(again.as_str())
            .expect("re-signed token verifies");
        assert_eq!(redecoded.token(), decoded.token());
        assert!(!redecoded.signed_by_old_key());
    } else {
        assert_eq!(again.as_str(), value);
    }
}
