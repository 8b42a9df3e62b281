use super::Duration;
use std::fmt;

/// Units, largest first, in milliseconds.
const UNITS: [(u64, &str); 4] = [(3_600_000, "h"), (60_000, "m"), (1_000, "s"), (1, "ms")];
/// The largest value one part may carry (five digits).
const MAX_PART: u64 = 99_999;
/// The most parts the grammar allows.
const MAX_PARTS: usize = 4;

impl fmt::Display for Duration {
    /// The canonical form: largest units first, each unit taking as much as
    /// it can, zero parts omitted, `0s` for zero (`1h30m10s`, `2h46m40s`).
    ///
    /// Values of 100000h or more exist only as sums of several parts; they
    /// print as parts of at most five digits (`99999h99999h`), trading larger
    /// units for smaller ones where that keeps within four parts, so that the
    /// output always matches the grammar.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        let mut parts = Vec::with_capacity(MAX_PARTS);
        if !fit(ms, &UNITS, MAX_PARTS, &mut parts) {
            // Unreachable for values that came from parsing; say so plainly
            // for values built with `from_millis` beyond what the grammar can
            // write.
            return write!(f, "{ms}ms");
        }
        for (value, unit) in parts {
            write!(f, "{value}{unit}")?;
        }
        Ok(())
    }
}

/// Writes `ms` as at most `budget` parts of `units`, largest units first.
fn fit(
    ms: u64,
    units: &[(u64, &'static str)],
    budget: usize,
    out: &mut Vec<(u64, &'static str)>,
) -> bool {
    if ms == 0 {
        return true;
    }
    let Some((&(unit, name), smaller)) = units.split_first() else {
        return false;
    };
    for parts in (0..=budget).rev() {
        let take = (ms / unit).min(parts as u64 * MAX_PART);
        if take.div_ceil(MAX_PART) as usize != parts {
            continue;
        }
        let mark = out.len();
        let mut left = take;
        while left > 0 {
            let chunk = left.min(MAX_PART);
            out.push((chunk, name));
            left -= chunk;
        }
        if fit(ms - take * unit, smaller, budget - parts, out) {
            return true;
        }
        out.truncate(mark);
    }
    false
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
        for input in [
            "99999h99999h",
            "99999h99999h99999h99999m",
            "99999h20864h99999s99999ms",
            "99999h99999h99999h99999h",
        ] {
            let d: Duration = input.parse().unwrap();
            let text = d.to_string();
            assert_eq!(text.parse::<Duration>().unwrap(), d, "{input} -> {text}");
        }
    }
}
