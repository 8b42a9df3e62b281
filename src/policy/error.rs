use std::fmt;

/// A configuration field that breaks a validation rule.
///
/// [`field`](Self::field) is the path of the offending field: relative to a
/// `sessionPersistence` block (`cookie.name`, `absoluteTimeout`, ...) when
/// the block is validated alone, from the resource's root when a whole
/// HTTPRoute is (`route::RouteError` is this type).
/// Callers embedding a block in a larger document can
/// [`prefix`](Self::prefix) it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    field: String,
    reason: String,
}

impl PolicyError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        PolicyError {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// The offending field, e.g. `cookieConfig.lifetimeType`.
    #[must_use]
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What rule the field breaks.
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
