//! Gateway API `sessionPersistence`, deserialized verbatim and validated once.
//!
//! [`SessionPersistence`] is the block users write on an HTTPRoute rule, in any
//! of the three schema generations found in the wild:
//!
//! | field | v1.1–v1.5 | v1.6 | main |
//! |---|---|---|---|
//! | `sessionName` | yes | yes | `cookie.name` / `header.name` |
//! | `absoluteTimeout` | yes | yes | yes |
//! | `idleTimeout` | yes | removed | removed (accepted here as an extension) |
//! | `type` | yes | yes | yes |
//! | `cookieConfig.lifetimeType` | yes | yes | `cookie.lifetimeType` |
//! | `cookie: {name, path, lifetimeType}` / `header: {name}` | — | — | yes |
//!
//! [`SessionPersistence::validate`] applies the CRD's rules and yields one
//! normalized [`SessionPolicy`], or a [`PolicyError`] naming the field and the
//! rule it broke.
//!
//! ```
//! use tower_sticky::policy::{CookieConfig, RuleContext, SessionPersistence, LifetimeType, PersistenceType};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The seed's route, as serde reads it from YAML or JSON.
//! let spec: SessionPersistence = serde_json::from_str(r#"{
//!     "sessionName": "Session-A",
//!     "type": "Cookie",
//!     "absoluteTimeout": "10s",
//!     "cookieConfig": {"lifetimeType": "Permanent"}
//! }"#)?;
//! let policy = spec.validate(&RuleContext::new("httproute-default-cookie-rule-0")).unwrap();
//! assert_eq!(policy.name(), "Session-A");
//! assert_eq!(policy.kind(), PersistenceType::Cookie);
//! assert_eq!(policy.lifetime(), LifetimeType::Permanent);
//! assert_eq!(policy.absolute_timeout().unwrap().to_string(), "10s");
//!
//! // Permanent without absoluteTimeout breaks a CRD rule. The structs are
//! // `#[non_exhaustive]` (the Gateway API grows): start from `default()`.
//! let mut cookie_config = CookieConfig::default();
//! cookie_config.lifetime_type = Some("Permanent".into());
//! let mut bad = SessionPersistence::default();
//! bad.cookie_config = Some(cookie_config);
//! let err = bad.validate(&RuleContext::new("r")).unwrap_err();
//! assert_eq!(err.field(), "absoluteTimeout");
//! assert!(err.to_string().contains("AbsoluteTimeout must be specified"));
//! # Ok(())
//! # }
//! ```

mod cookie_path;
mod error;
mod name;
mod session_policy;
mod spec;
mod validate;

pub use cookie_path::{PathMatchKind, derive_cookie_path};
pub use error::{PolicyError, PolicyErrorKind};
pub use session_policy::{LifetimeType, PersistenceType, SchemaGeneration, SessionPolicy};
pub use spec::{CookieConfig, CookieSpec, HeaderSpec, SessionPersistence};
pub use validate::RuleContext;

/// Checks an HTTP token (a cookie or header name): 1..=`max` characters of
/// `[A-Za-z0-9!#$%&'*+\-.^_`|~]`. The error says what is wrong (it becomes a
/// [`PolicyError`]'s reason). Used by `route`, which needs `serde`.
#[cfg(feature = "serde")]
pub(crate) fn check_token(name: &str, max: usize) -> Result<(), error::Problem> {
    name::check(name, max)
}
