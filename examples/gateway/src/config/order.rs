//! The order routes compete in when everything else ties: the Gateway API's
//! "continuing on ties" rule, not file order (issue 19, finding 8).
//!
//! The HTTPRoute spec breaks a tie between rules of different routes by the
//! oldest `metadata.creationTimestamp`, then by `{namespace}/{name}`
//! alphabetically; within one route, rule order and then match order. The
//! router keeps the earlier entry on a tie ([`crate::route`]), so the routes
//! are put in that order once, when they are loaded ([`sort`]). A route
//! without a timestamp (a hand-written file) counts as newer than every
//! route with one.
//!
//! Two documents of the same kind with the same namespace and name, in one
//! file or in two, are one Kubernetes object written twice: an error naming both places.

use super::{ConfigError, LoadedRoute};
use std::cmp::Ordering;

/// A `metadata.creationTimestamp`: seconds and nanoseconds since the Unix
/// epoch, from RFC 3339 as Kubernetes writes it (`2026-11-28T09:00:00Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Created {
    seconds: i64,
    nanos: u32,
}

impl Created {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; `None` if it is
    /// not that.
    #[must_use]
    pub fn parse(s: &str) -> Option<Created> {
        let b = s.as_bytes();
        let num = |from: usize, len: usize| -> Option<i64> {
            let digits = b.get(from..from + len)?;
            digits
                .iter()
                .all(u8::is_ascii_digit)
                .then(|| std::str::from_utf8(digits).ok()?.parse().ok())?
        };
        let sep = |at: usize, c: &[u8]| b.get(at).is_some_and(|x| c.contains(x));
        if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
            return None;
        }
        let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
        let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
        if !(1..=12).contains(&month)
            || !(1..=days_in_month(year, month)).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let mut at = 19;
        let mut nanos = 0u32;
        if b.get(at) == Some(&b'.') {
            let digits = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 || digits > 9 {
                return None;
            }
            let frac = num(at + 1, digits)?;
            nanos = u32::try_from(frac * 10i64.pow(9 - digits as u32)).ok()?;
            at += 1 + digits;
        }
        let offset = match b.get(at..)? {
            b"Z" | b"z" => 0,
            [sign @ (b'+' | b'-'), ..] if b.len() == at + 6 && sep(at + 3, b":") => {
                let minutes = num(at + 1, 2)? * 60 + num(at + 4, 2)?;
                if *sign == b'+' { minutes } else { -minutes }
            }
            _ => return None,
        };
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset * 60;
        Some(Created { seconds, nanos })
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The Gateway API's order between two routes: the older first (a route
/// without a timestamp after every route with one), then by namespace and
/// name.
fn precedence(a: &LoadedRoute, b: &LoadedRoute) -> Ordering {
    let created = match (a.created, b.created) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    created
        .then_with(|| a.route.namespace().cmp(b.route.namespace()))
        .then_with(|| a.route.name().cmp(b.route.name()))
}

/// Puts `routes` in the order they win ties in, n log n; a namespace/name
/// given twice is an error naming both documents.
pub fn sort(routes: &mut [LoadedRoute]) -> Result<(), ConfigError> {
    // Stable, so that two copies of a name keep their load order in the
    // message.
    routes.sort_by(|a, b| {
        let key = |r: &LoadedRoute| {
            let (ns, name) = (r.route.namespace().to_owned(), r.route.name().to_owned());
            (r.kind, ns, name)
        };
        key(a).cmp(&key(b))
    });
    for pair in routes.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let same = a.kind == b.kind
            && a.route.namespace() == b.route.namespace()
            && a.route.name() == b.route.name();
        if same {
            return Err(ConfigError::duplicate(
                a.kind,
                format!("{}/{}", a.route.namespace(), a.route.name()),
                a.source.clone(),
                b.source.clone(),
            ));
        }
    }
    routes.sort_by(precedence);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_as_kubernetes_writes_them_and_order_in_time() {
        let t = |s: &str| Created::parse(s);
        assert_eq!(t("1970-01-01T00:00:00Z").unwrap().seconds, 0);
        assert_eq!(t("2026-11-28T09:00:00Z").unwrap().seconds, 1_795_856_400);
        assert_eq!(t("2000-03-01T00:00:00Z").unwrap().seconds, 951_868_800);
        assert_eq!(t("2026-11-28T10:00:00+01:00"), t("2026-11-28T09:00:00Z"));
        assert!(t("2026-11-28T09:00:00.5Z") > t("2026-11-28T09:00:00Z"));
        assert!(t("2025-12-31T23:59:59Z") < t("2026-01-01T00:00:00Z"));
        for bad in [
            "",
            "2026-11-28",
            "2026-11-28T09:00:00",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T09:00:00.Z",
            "2026-11-28T09:00:00Zjunk",
            "+026-11-28T09:00:00Z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
