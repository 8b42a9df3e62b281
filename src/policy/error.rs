use std::fmt;

/// A configuration field that breaks a validation rule.
///
/// [`field`](Self::field) is the path of the offending field: relative to a
/// `sessionPersistence` block (`cookie.name`, `absoluteTimeout`, ...) when
/// the block is validated alone, from the resource's root when a whole
/// HTTPRoute is (`route::RouteError` is this type).
/// Callers embedding a block in a larger document can
/// [`prefix`](Self::prefix) it. [`kind`](Self::kind) says which sort of
/// rule was broken, for callers that react differently (say, a controller
/// that reports a conflict in a status condition of its own);
/// [`reason`](Self::reason) says it in words.
///
/// ```
/// use tower_sticky::duration::Duration;
/// use tower_sticky::policy::{PolicyErrorKind, SessionPolicy};
///
/// let err = SessionPolicy::cookie("Session-A").unwrap().permanent(Duration::ZERO).unwrap_err();
/// assert_eq!(err.kind(), PolicyErrorKind::OutOfRange);
/// assert_eq!(err.to_string(), "absoluteTimeout: must be greater than zero");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    field: String,
    kind: PolicyErrorKind,
    reason: String,
}

/// Which sort of rule a [`PolicyError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// A required field is absent or empty (`metadata.name`, a Permanent
    /// cookie's `absoluteTimeout`, an HTTPRoute without rules).
    Missing,
    /// A value the field does not accept: not one of its allowed values, or
    /// not of its syntax (a cookie name, a duration, a hostname, a regular
    /// expression).
    Invalid,
    /// A number or length outside the allowed range (a zero timeout, a name
    /// longer than its limit, a weight above 1,000,000). Out-of-range
    /// values are always this error, never clamped.
    OutOfRange,
    /// Fields that cannot be set together, a field its `type` does not
    /// allow, or a name repeated where it must be unique.
    Conflict,
    /// Allowed by the Gateway API, not implemented by this crate (a
    /// `backendRef` of another kind than `Service`).
    Unsupported,
}

/// A broken rule before it is placed at a field: what
/// [`PolicyError::at`] turns into an error.
pub(crate) type Problem = (PolicyErrorKind, String);

impl PolicyError {
    pub(crate) fn new(
        field: impl Into<String>,
        kind: PolicyErrorKind,
        reason: impl Into<String>,
    ) -> Self {
        PolicyError {
            field: field.into(),
            kind,
            reason: reason.into(),
        }
    }

    /// `problem` at `field`.
    pub(crate) fn at(field: impl Into<String>, (kind, reason): Problem) -> Self {
        Self::new(field, kind, reason)
    }

    pub(crate) fn missing(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(field, PolicyErrorKind::Missing, reason)
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(field, PolicyErrorKind::Invalid, reason)
    }

    pub(crate) fn out_of_range(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(field, PolicyErrorKind::OutOfRange, reason)
    }

    pub(crate) fn conflict(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(field, PolicyErrorKind::Conflict, reason)
    }

    // Only the route module (behind `serde`) refuses unsupported values.
    #[cfg(feature = "serde")]
    pub(crate) fn unsupported(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(field, PolicyErrorKind::Unsupported, reason)
    }

    /// The offending field, e.g. `cookieConfig.lifetimeType`.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Which sort of rule the field breaks.
    #[must_use]
    pub fn kind(&self) -> PolicyErrorKind {
        self.kind
    }

    /// What rule the field breaks, in words.
    #[must_use]
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Puts `path` in front of the field, e.g.
    /// `spec.rules[0].sessionPersistence`.
    #[must_use]
    pub fn prefix(mut self, path: &str) -> Self {
        self.field = if self.field.is_empty() {
            path.to_owned()
        } else {
            format!("{path}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for PolicyError {}
