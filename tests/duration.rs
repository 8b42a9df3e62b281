//! GEP-2257 durations: the parser agrees with the grammar; format round-trips.

use proptest::prelude::*;
use regex::Regex;
use tower_sticky::duration::Duration;

const GRAMMAR: &str = "^([0-9]{1,5}(h|m|s|ms)){1,4}$";

fn value_of(parts: &[(u64, &str)]) -> u64 {
    parts
        .iter()
        .map(|(v, u)| {
            v * match *u {
                "h" => 3_600_000,
                "m" => 60_000,
                "s" => 1_000,
                _ => 1,
            }
        })
        .sum()
}

fn part() -> impl Strategy<Value = (u64, &'static str, usize)> {
    (
        0u64..=99_999,
        prop::sample::select(vec!["h", "m", "s", "ms"]),
        0usize..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn grammar_strings_parse_to_the_sum(parts in prop::collection::vec(part(), 1..=4)) {
        // Optional leading zeros, within five digits.
        let text: String = parts
            .iter()
            .map(|(v, u, zeros)| {
                let digits = v.to_string();
                let pad = (*zeros).min(5 - digits.len());
                format!("{}{digits}{u}", "0".repeat(pad))
            })
            .collect();
        let d: Duration = text.parse().unwrap();
        let plain: Vec<_> = parts.iter().map(|(v, u, _)| (*v, *u)).collect();
        prop_assert_eq!(d.as_millis(), value_of(&plain));
    }

    #[test]
    fn parser_agrees_with_the_grammar(s in "[0-9hms.d -]{0,24}") {
        let re = Regex::new(GRAMMAR).unwrap();
        prop_assert_eq!(s.parse::<Duration>().is_ok(), re.is_match(&s), "{:?}", s);
    }

    #[test]
    fn parser_agrees_with_the_grammar_on_anything(s in "\\PC{0,16}") {
        let re = Regex::new(GRAMMAR).unwrap();
        prop_assert_eq!(s.parse::<Duration>().is_ok(), re.is_match(&s));
    }

    #[test]
    fn format_round_trips_and_matches_grammar(ms in 0u64..(100_000 * 3_600_000)) {
        let d = Duration::from_millis(ms);
        let text = d.to_string();
        prop_assert!(Regex::new(GRAMMAR).unwrap().is_match(&text), "{}", text);
        prop_assert_eq!(text.parse::<Duration>().unwrap(), d);
    }

    #[test]
    fn parse_then_format_is_canonical(parts in prop::collection::vec(part(), 1..=4)) {
        let text: String = parts.iter().map(|(v, u, _)| format!("{v}{u}")).collect();
        let d: Duration = text.parse().unwrap();
        let canonical = d.to_string();
        prop_assert_eq!(canonical.parse::<Duration>().unwrap(), d);
    }
}

#[test]
fn serde_reads_and_writes_strings() {
    let d: Duration = serde_json::from_str("\"1h30m\"").unwrap();
    assert_eq!(d.as_millis(), 5_400_000);
    assert_eq!(serde_json::to_string(&d).unwrap(), "\"1h30m\"");
    let e = serde_json::from_str::<Duration>("\"1d\"").unwrap_err();
    assert!(e.to_string().contains("invalid duration \"1d\""), "{e}");
}
