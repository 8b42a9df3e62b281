use super::Duration;
use std::fmt;

const HOUR: u64 = 3_600_000;
const MINUTE: u64 = 60_000;
const SECOND: u64 = 1_000;
/// The largest hour count one part may carry (five digits).
const MAX_PART_HOURS: u64 = 99_999;

impl fmt::Display for Duration {
    /// The canonical form: largest units first, zero parts omitted, `0s` for
    /// zero. Values of 100000h or more (possible only as a sum of parts) repeat
    /// `99999h` so that every part stays within five digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        let mut hours = ms / HOUR;
        while hours > MAX_PART_HOURS {
            f.write_str("99999h")?;
            hours -= MAX_PART_HOURS;
        }
        let parts = [
            (hours, "h"),
            (ms % HOUR / MINUTE, "m"),
            (ms % MINUTE / SECOND, "s"),
            (ms % SECOND, "ms"),
        ];
        for (value, unit) in parts {
            if value > 0 {
                write!(f, "{value}{unit}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms() {
        for (ms, s) in [
            (0, "0s"),
            (500, "500ms"),
            (10_000, "10s"),
            (300_000, "5m"),
            (9_000_000, "2h30m"),
            (5_410_000, "1h30m10s"),
            (3_600_001, "1h1ms"),
            (10_000_000, "2h46m40s"),
        ] {
            assert_eq!(Duration::from_millis(ms).to_string(), s);
        }
    }

    #[test]
    fn huge_sums_stay_parseable() {
        let d: Duration = "99999h99999h".parse().unwrap();
        assert_eq!(d.to_string(), "99999h99999h");
        assert_eq!(d.to_string().parse::<Duration>().unwrap(), d);
    }
}
