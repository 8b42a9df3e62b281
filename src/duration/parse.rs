use super::Duration;
use std::fmt;
use std::str::FromStr;

/// The grammar every Gateway API duration must match.
pub(crate) const GRAMMAR: &str = "^([0-9]{1,5}(h|m|s|ms)){1,4}$";

/// Why a string is not a GEP-2257 duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseDurationError {
    input: String,
}

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: must match {GRAMMAR} (for example 10s, 500ms, 1h30m)",
            self.input
        )
    }
}

impl std::error::Error for ParseDurationError {}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s.as_bytes()).ok_or_else(|| ParseDurationError {
            // Bound what we echo back: the input may be hostile.
            input: s.chars().take(64).collect(),
        })
    }
}

/// A hand-written matcher for [`GRAMMAR`]: no regex engine, no allocation.
fn parse(bytes: &[u8]) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut parts = 0;
    let mut i = 0;
    while i < bytes.len() {
        parts += 1;
        if parts > 4 {
            return None;
        }
        let start = i;
        let mut value: u64 = 0;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            value = value * 10 + u64::from(bytes[i] - b'0');
            i += 1;
            if i - start > 5 {
                return None;
            }
        }
        if i == start {
            return None;
        }
        let unit_ms = match bytes.get(i..) {
            Some([b'm', b's', ..]) => {
                i += 2;
                1
            }
            Some([b'h', ..]) => {
                i += 1;
                3_600_000
            }
            Some([b'm', ..]) => {
                i += 1;
                60_000
            }
            Some([b's', ..]) => {
                i += 1;
                1_000
            }
            _ => return None,
        };
        // At most 4 * 99999h: far from overflowing u64.
        total += value * unit_ms;
    }
    (parts > 0).then_some(Duration::from_millis(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_valid_vectors() {
        let cases = [
            ("0h", 0),
            ("0s", 0),
            ("0h0m0s", 0),
            ("1h", 3_600_000),
            ("30m", 1_800_000),
            ("10s", 10_000),
            ("500ms", 500),
            ("2h30m", 9_000_000),
            ("150m", 9_000_000),
            ("7230s", 7_230_000),
            ("1h30m10s", 5_410_000),
            ("10s30m1h", 5_410_000),
            ("100ms200ms300ms", 600),
            ("01h", 3_600_000),
            ("10000s", 10_000_000),
        ];
        for (input, ms) in cases {
            let d: Duration = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(d.as_millis(), ms, "{input}");
        }
    }

    #[test]
    fn reference_invalid_vectors() {
        for input in [
            "",
            "0",
            "1",
            "1m1",
            "1d",
            "1.5h",
            "-15m",
            "999999h",
            "100000s",
            "1h30m10s20ms50h",
            " 1s",
            "1s ",
            "1S",
            "ms",
            "1sm",
            "1h1",
        ] {
            assert!(
                input.parse::<Duration>().is_err(),
                "{input:?} must be rejected"
            );
        }
    }

    #[test]
    fn error_names_the_grammar() {
        let e = "1d".parse::<Duration>().unwrap_err().to_string();
        assert!(e.contains("\"1d\"") && e.contains(GRAMMAR), "{e}");
    }
}
