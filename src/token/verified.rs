//! A per-thread memo of tokens that already verified.
//!
//! A session sends the same token on every request until it is refreshed,
//! so the HMAC a resumed request costs is almost always work done before.
//! Like Envoy's `jwt_cache_config`, this remembers verified tokens; a token
//! is served from here only if it is byte for byte one that a codec with the
//! same keys and scope verified (or signed) on this thread. Expiry is still
//! checked on every request: what is remembered is the token's content, not
//! a verdict.
//!
//! Per thread, so the request path takes no lock and shares no cache line;
//! direct-mapped and fixed in size, so a flood of distinct tokens only
//! evicts (falling back to the full verification), never grows memory.

use super::{Decoded, TOKEN_LEN};
use std::cell::RefCell;

/// Slots per thread: about 100 KiB, enough for the sessions one worker
/// serves at a time; more only means more verifications.
const SLOTS: usize = 1024;

#[derive(Clone, Copy)]
struct Slot {
    /// The codec that verified it; 0 is an empty slot.
    codec: u64,
    encoded: [u8; TOKEN_LEN],
    decoded: Option<Decoded>,
}

const EMPTY: Slot = Slot {
    codec: 0,
    encoded: [0; TOKEN_LEN],
    decoded: None,
};

thread_local! {
    static SLOTS_OF_THIS_THREAD: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// The slot for `encoded`: its bytes 48..56 are base64 of the MAC tag, which
/// is uniform, so a multiplicative hash spreads them over the table.
fn index(encoded: &[u8; TOKEN_LEN]) -> usize {
    let word = u64::from_le_bytes(encoded[48..56].try_into().expect("8 bytes"));
    (word.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - SLOTS.trailing_zeros())) as usize
}

/// Equality in time independent of where the first difference is, so a
/// client probing with near-copies of someone else's token learns nothing
/// from timing. Hand-written rather than `subtle`'s `ct_eq`: that one puts
/// an optimization barrier on every byte, and measured 543 and 518 ns for
/// `codec/decode_remembered` against 58 and 67 ns for this fold with one
/// barrier at the end (same sitting, see BENCHMARKS.md).
fn same(a: &[u8; TOKEN_LEN], b: &[u8; TOKEN_LEN]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What `codec` remembered for `encoded` on this thread, if anything.
pub(super) fn recall(codec: u64, encoded: &[u8; TOKEN_LEN]) -> Option<Decoded> {
    SLOTS_OF_THIS_THREAD
        .try_with(|slots| {
            let slots = slots.borrow();
            let slot = slots.get(index(encoded))?;
            (slot.codec == codec && same(&slot.encoded, encoded))
                .then_some(slot.decoded)
                .flatten()
        })
        .ok()
        .flatten()
}

/// Remembers that `codec` verified (or signed) `encoded` as `decoded`.
pub(super) fn remember(codec: u64, encoded: &[u8; TOKEN_LEN], decoded: Decoded) {
    // During thread teardown there is nothing to remember into.
    let _ = SLOTS_OF_THIS_THREAD.try_with(|slots| {
        let mut slots = slots.borrow_mut();
        if slots.is_empty() {
            slots.resize(SLOTS, EMPTY);
        }
        slots[index(encoded)] = Slot {
            codec,
            encoded: *encoded,
            decoded: Some(decoded),
        };
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_is_exact() {
        let a = [b'A'; TOKEN_LEN];
        let mut b = a;
        assert!(same(&a, &b));
        for i in [0, 33, TOKEN_LEN - 1] {
            b = a;
            b[i] = b'B';
            assert!(!same(&a, &b), "difference at {i}");
        }
    }

    #[test]
    fn index_stays_in_the_table() {
        let mut e = [b'z'; TOKEN_LEN];
        assert!(index(&e) < SLOTS);
        e[50] = b'-';
        assert!(index(&e) < SLOTS);
    }
}
