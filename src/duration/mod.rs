//! Gateway API durations ([GEP-2257]).
//!
//! A duration is written as one to four parts, each one to five digits followed
//! by a unit (`h`, `m`, `s`, `ms`); its value is the sum of the parts. The
//! grammar is exactly `^([0-9]{1,5}(h|m|s|ms)){1,4}$`: no signs, no fractions,
//! no days, no whitespace.
//!
//! ```
//! use tower_sticky::duration::Duration;
//!
//! let d: Duration = "1h30m10s".parse().unwrap();
//! assert_eq!(d.as_millis(), 5_410_000);
//! assert_eq!(d.to_string(), "1h30m10s");
//!
//! // Parts may repeat and come in any order; the value is their sum.
//! assert_eq!("10s30m1h".parse::<Duration>().unwrap(), d);
//!
//! // Canonical form: zero prints as `0s`.
//! assert_eq!("0h0m0s".parse::<Duration>().unwrap().to_string(), "0s");
//!
//! assert!("1.5h".parse::<Duration>().is_err());
//! assert!("1d".parse::<Duration>().is_err());
//! ```
//!
//! [GEP-2257]: https://gateway-api.sigs.k8s.io/geps/gep-2257/

mod format;
mod parse;

pub use parse::ParseDurationError;

/// A non-negative span of time with millisecond resolution, as written in
/// Gateway API resources.
///
/// Parse one with [`str::parse`]; print it with [`Display`](std::fmt::Display)
/// to get the canonical form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration {
    millis: u64,
}

impl Duration {
    /// The zero duration.
    pub const ZERO: Duration = Duration { millis: 0 };

    /// A duration of `millis` milliseconds.
    ///
    /// ```
    /// # use tower_sticky::duration::Duration;
    /// assert_eq!(Duration::from_millis(1500).to_string(), "1s500ms");
    /// ```
    #[must_use]
    pub const fn from_millis(millis: u64) -> Self {
        Duration { millis }
    }

    /// A duration of `secs` seconds.
    ///
    /// ```
    /// # use tower_sticky::duration::Duration;
    /// assert_eq!(Duration::from_secs(300).to_string(), "5m");
    /// ```
    #[must_use]
    pub const fn from_secs(secs: u64) -> Self {
        Duration {
            millis: secs.saturating_mul(1000),
        }
    }

    /// The value in milliseconds.
    #[must_use]
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// The value in whole seconds, rounded up (what a `Max-Age` must carry so
    /// that a cookie never disappears before the proxy's own deadline).
    ///
    /// ```
    /// # use tower_sticky::duration::Duration;
    /// assert_eq!(Duration::from_millis(10_000).as_secs_ceil(), 10);
    /// assert_eq!(Duration::from_millis(10_001).as_secs_ceil(), 11);
    /// ```
    #[must_use]
    pub const fn as_secs_ceil(self) -> u64 {
        self.millis.div_ceil(1000)
    }

    /// Whether this is the zero duration.
    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.millis == 0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        std::time::Duration::from_millis(d.millis)
    }
}

impl TryFrom<std::time::Duration> for Duration {
    type Error = std::num::TryFromIntError;

    /// Truncates to whole milliseconds; fails only past `u64::MAX` ms.
    fn try_from(d: std::time::Duration) -> Result<Self, Self::Error> {
        Ok(Duration {
            millis: u64::try_from(d.as_millis())?,
        })
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(de)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}
