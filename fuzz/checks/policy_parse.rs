//! Configuration parsing on arbitrary input: `sessionPersistence` blocks and
//! whole HTTPRoutes from YAML (then `validate`), and GEP-2257 durations.
//! Nothing panics; durations agree with the grammar and round-trip.
//!
//! Shared by the `policy_parse` fuzz target and the corpus replay test
//! (`tests/fuzz_corpus.rs`).

use tower_sticky::duration::Duration;
use tower_sticky::policy::{RuleContext, SessionPersistence};
use tower_sticky::route::HttpRoute;

/// Checks one fuzz input; panics on any disagreement.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(spec) = serde_saphyr::from_str::<SessionPersistence>(text) {
        let _ = spec.validate(&RuleContext::new("fuzz-rule-0"));
    }
    if let Ok(route) = serde_saphyr::from_str::<HttpRoute>(text) {
        let _ = route.validate();
    }

    let parsed = text.parse::<Duration>();
    assert_eq!(
        parsed.is_ok(),
        matches_grammar(text.as_bytes()),
        "parser and grammar disagree on {text:?}"
    );
    if let Ok(d) = parsed {
        // The canonical form parses back to the same value, sums of
        // several 99999h parts included.
        let canonical = d.to_string();
        let again = canonical
            .parse::<Duration>()
            .unwrap_or_else(|e| panic!("{text:?} -> {canonical:?} does not parse: {e}"));
        assert_eq!(again, d, "{text:?} -> {canonical:?}");
        assert_eq!(again.to_string(), canonical);
    }
}

/// `^([0-9]{1,5}(h|m|s|ms)){1,4}$`, written out by hand so that the check
/// does not share code with the parser it checks.
fn matches_grammar(mut s: &[u8]) -> bool {
    let mut parts = 0;
    while !s.is_empty() {
        let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
        if !(1..=5).contains(&digits) {
            return false;
        }
        s = &s[digits..];
        s = match s {
            [b'm', b's', rest @ ..] | [b'h' | b'm' | b's', rest @ ..] => rest,
            _ => return false,
        };
        parts += 1;
        if parts > 4 {
            return false;
        }
    }
    parts >= 1
}
