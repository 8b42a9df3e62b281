//! The session token codec: round-trips, tampering, truncation, keys.

use proptest::prelude::*;
use tower_sticky::balance::BackendId;
use tower_sticky::duration::Duration;
use tower_sticky::token::{
    DecodeError, KeySet, Lifetime, SessionToken, SigningKey, TOKEN_LEN, Timestamp, TokenCodec,
    Verdict,
};

fn codec(key: [u8; 32], scope: &str) -> TokenCodec {
    TokenCodec::new(KeySet::new(SigningKey::new(key).unwrap()), scope)
}

fn token(id: [u8; 16], issued: u64, seen: u64) -> SessionToken {
    SessionToken::from_parts(
        BackendId::from_bytes(id),
        Timestamp::from_millis(issued),
        Timestamp::from_millis(seen),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn round_trips(key in any::<[u8; 32]>(), id in any::<[u8; 16]>(), issued in any::<u64>(), seen in any::<u64>(), scope in ".{0,40}") {
        let c = codec(key, &scope);
        let t = token(id, issued, seen);
        let enc = c.encode(&t);
        prop_assert_eq!(enc.as_str().len(), TOKEN_LEN);
        prop_assert!(enc.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        let dec = c.decode(enc.as_str()).unwrap();
        prop_assert_eq!(dec.token(), t);
        prop_assert!(!dec.signed_by_old_key());
    }

    #[test]
    fn any_single_byte_change_is_rejected(key in any::<[u8; 32]>(), id in any::<[u8; 16]>(), issued in any::<u64>(), pos in 0..TOKEN_LEN, byte in any::<u8>()) {
        let c = codec(key, "s");
        let enc = c.encode(&token(id, issued, issued));
        let mut bytes = enc.as_str().as_bytes().to_vec();
        prop_assume!(bytes[pos] != byte);
        bytes[pos] = byte;
        let changed = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert!(c.decode(&changed).is_err());
    }

    #[test]
    fn remembered_decoding_agrees_with_decoding(key in any::<[u8; 32]>(), id in any::<[u8; 16]>(), issued in any::<u64>(), pos in 0..TOKEN_LEN, byte in any::<u8>()) {
        let c = codec(key, "s");
        let enc = c.encode(&token(id, issued, issued));
        let enc = enc.as_str();
        // Verified, then remembered: both give what `decode` gives.
        prop_assert_eq!(c.decode_remembered(enc), c.decode(enc));
        prop_assert_eq!(c.decode_remembered(enc), c.decode(enc));
        prop_assert_eq!(c.clone().decode_remembered(enc), c.decode(enc));
        // A near-copy of a remembered token is not remembered as valid.
        let mut bytes = enc.as_bytes().to_vec();
        prop_assume!(bytes[pos] != byte);
        bytes[pos] = byte;
        let changed = String::from_utf8_lossy(&bytes).into_owned();
        prop_assert!(c.decode_remembered(&changed).is_err());
        // Nor by a codec with the same key and another scope, or another key.
        prop_assert_eq!(codec(key, "t").decode_remembered(enc), Err(DecodeError::BadSignature));
        let mut other = key;
        other[0] ^= 1;
        prop_assert_eq!(codec(other, "s").decode_remembered(enc), Err(DecodeError::BadSignature));
    }

    #[test]
    fn any_truncation_or_extension_is_rejected(key in any::<[u8; 32]>(), id in any::<[u8; 16]>(), cut in 0..TOKEN_LEN, extra in "[A-Za-z0-9_-]{1,8}") {
        let c = codec(key, "s");
        let enc = c.encode(&token(id, 5, 5));
        prop_assert_eq!(c.decode(&enc.as_str()[..cut]), Err(DecodeError::Malformed));
        let longer = format!("{}{extra}", enc.as_str());
        prop_assert_eq!(c.decode(&longer), Err(DecodeError::Malformed));
    }

    #[test]
    fn arbitrary_strings_never_panic_and_never_verify(s in "\\PC{0,100}", raw in "[A-Za-z0-9_-]{66}") {
        let c = codec([3; 32], "s");
        prop_assert!(c.decode(&s).is_err());
        // Well-formed base64 of the right length is still not signed.
        prop_assert!(c.decode(&raw).is_err());
    }

    #[test]
    fn foreign_key_or_scope_is_rejected(k1 in any::<[u8; 32]>(), k2 in any::<[u8; 32]>(), id in any::<[u8; 16]>()) {
        prop_assume!(k1 != k2);
        let enc = codec(k1, "rule-a").encode(&token(id, 1, 1));
        prop_assert_eq!(codec(k2, "rule-a").decode(enc.as_str()), Err(DecodeError::BadSignature));
        prop_assert_eq!(codec(k1, "rule-b").decode(enc.as_str()), Err(DecodeError::BadSignature));
    }
}

#[test]
fn rotation_old_key_verifies_new_key_signs() {
    let old = SigningKey::new([1; 32]).unwrap();
    let new = SigningKey::new([2; 32]).unwrap();
    let before = TokenCodec::new(KeySet::new(old.clone()), "s");
    let during = TokenCodec::new(KeySet::new(new.clone()).with_verify_only(old), "s");
    let after = TokenCodec::new(KeySet::new(new), "s");
    let t = token([7; 16], 100, 100);
    let legacy = before.encode(&t);
    let dec = during.decode(legacy.as_str()).unwrap();
    assert!(dec.signed_by_old_key());
    assert_eq!(dec.token(), t);
    let resigned = during.encode(&dec.token());
    assert!(
        !during
            .decode(resigned.as_str())
            .unwrap()
            .signed_by_old_key()
    );
    assert_eq!(after.decode(resigned.as_str()).unwrap().token(), t);
    assert_eq!(
        after.decode(legacy.as_str()),
        Err(DecodeError::BadSignature)
    );
    // Remembered or not, the old key is reported, so the token is re-signed.
    for _ in 0..2 {
        let dec = during.decode_remembered(legacy.as_str()).unwrap();
        assert!(dec.signed_by_old_key());
    }
    assert_eq!(
        after.decode_remembered(legacy.as_str()),
        Err(DecodeError::BadSignature)
    );
}

#[test]
fn no_backend_address_or_name_in_the_token() {
    let c = codec([5; 32], "s");
    let id = BackendId::from_addr("10.1.2.3:3000", &[5; 32]);
    let enc = c.encode(&SessionToken::new(id, Timestamp::from_millis(0)));
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(enc.as_str())
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("10.1.2.3"));
    assert!(!raw.windows(4).any(|w| w == [10, 1, 2, 3]));
}

#[test]
fn short_keys_are_refused() {
    assert!(SigningKey::new([0u8; 31]).is_err());
    assert!(
        SigningKey::new([0u8; 31])
            .unwrap_err()
            .to_string()
            .contains("at least 32 bytes")
    );
    assert_eq!(
        format!("{:?}", SigningKey::new([9; 32]).unwrap()),
        "SigningKey(..)"
    );
}

#[test]
fn lifetime_boundaries() {
    let t = token([0; 16], 1_000, 1_000);
    let abs = Lifetime::new(Some(Duration::from_secs(10)), None);
    assert_eq!(
        abs.check(&t, Timestamp::from_millis(10_999)),
        Verdict::Valid { refresh: false }
    );
    assert_eq!(
        abs.check(&t, Timestamp::from_millis(11_000)),
        Verdict::Expired
    );

    let idle = Lifetime::new(None, Some(Duration::from_secs(2)));
    assert_eq!(
        idle.check(&t, Timestamp::from_millis(1_499)),
        Verdict::Valid { refresh: false }
    );
    assert_eq!(
        idle.check(&t, Timestamp::from_millis(1_500)),
        Verdict::Valid { refresh: true }
    );
    assert_eq!(
        idle.check(&t, Timestamp::from_millis(2_999)),
        Verdict::Valid { refresh: true }
    );
    assert_eq!(
        idle.check(&t, Timestamp::from_millis(3_000)),
        Verdict::IdleExpired
    );

    // Skew: at most 2 s in the future by default, configurable.
    let future = token([0; 16], 5_000, 5_000);
    assert_eq!(
        abs.check(&future, Timestamp::from_millis(3_000)),
        Verdict::Valid { refresh: false }
    );
    assert_eq!(
        abs.check(&future, Timestamp::from_millis(2_999)),
        Verdict::Invalid
    );
    let strict = abs.skew(Duration::ZERO);
    assert_eq!(
        strict.check(&future, Timestamp::from_millis(4_999)),
        Verdict::Invalid
    );
    // Seen before issued: never minted by us.
    assert_eq!(
        abs.check(&token([0; 16], 10, 9), Timestamp::from_millis(20)),
        Verdict::Invalid
    );
    // Max-Age left, rounded up.
    assert_eq!(
        abs.remaining_secs(&t, Timestamp::from_millis(1_000)),
        Some(10)
    );
    assert_eq!(
        abs.remaining_secs(&t, Timestamp::from_millis(10_001)),
        Some(1)
    );
    assert_eq!(
        abs.remaining_secs(&t, Timestamp::from_millis(11_000)),
        Some(0)
    );
}
