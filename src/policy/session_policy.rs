use super::PolicyError;
use super::error::{PolicyErrorKind, Problem};
use super::name;
use crate::duration::Duration;

/// Where the session value travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PersistenceType {
    /// A cookie set with `Set-Cookie` and echoed by the client in `Cookie`.
    Cookie,
    /// A header returned in the response and echoed by the client.
    Header,
}

/// Whether the cookie outlives the browser session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LifetimeType {
    /// No `Max-Age`/`Expires`: the browser drops it when it closes. The proxy
    /// still enforces `absoluteTimeout` through the token.
    Session,
    /// `Max-Age` equal to `absoluteTimeout`.
    Permanent,
}

/// Which schema generation a block was written in; it decides how the cookie
/// `Path` is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SchemaGeneration {
    /// `sessionName` / `cookieConfig` (v1.1–v1.6): `Path` derives from the
    /// rule's path match, as Envoy Gateway does.
    V1,
    /// `cookie` / `header` (main branch): `Path` is `cookie.path` or `/`.
    Main,
}

/// A validated, normalized session persistence policy.
///
/// Build one from a [`SessionPersistence`](super::SessionPersistence) with
/// [`validate`](super::SessionPersistence::validate), or directly:
///
/// ```
/// use tower_sticky::policy::SessionPolicy;
/// use tower_sticky::duration::Duration;
///
/// # fn main() -> Result<(), tower_sticky::policy::PolicyError> {
/// let policy = SessionPolicy::cookie("Session-A")?
///     .permanent(Duration::from_secs(10))?
///     .with_idle_timeout(Duration::from_secs(2))?;
/// assert_eq!(policy.cookie_path(), "/");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    pub(crate) name: String,
    pub(crate) kind: PersistenceType,
    pub(crate) lifetime: LifetimeType,
    pub(crate) absolute_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) cookie_path: String,
    pub(crate) generation: SchemaGeneration,
}

impl SessionPolicy {
    /// A cookie policy: `Session` lifetime, `Path=/`, no timeouts.
    pub fn cookie(name: impl Into<String>) -> Result<Self, PolicyError> {
        Self::with_kind(name.into(), PersistenceType::Cookie)
    }

    /// A header policy with no timeouts.
    pub fn header(name: impl Into<String>) -> Result<Self, PolicyError> {
        Self::with_kind(name.into(), PersistenceType::Header)
    }

    fn with_kind(name: String, kind: PersistenceType) -> Result<Self, PolicyError> {
        name::check(&name, 256).map_err(|p| PolicyError::at("name", p))?;
        Ok(SessionPolicy {
            name,
            kind,
            lifetime: LifetimeType::Session,
            absolute_timeout: None,
            idle_timeout: None,
            cookie_path: "/".into(),
            generation: SchemaGeneration::Main,
        })
    }

    /// Makes the cookie `Permanent` with `Max-Age` = `absolute_timeout`, which
    /// the proxy also enforces.
    ///
    /// Out-of-range values are errors here as everywhere in this crate
    /// (never clamped): a zero timeout is refused, as the CRD refuses it.
    ///
    /// ```
    /// # use tower_sticky::{duration::Duration, policy::SessionPolicy};
    /// let cookie = SessionPolicy::cookie("Session-A").unwrap();
    /// assert!(cookie.clone().permanent(Duration::from_secs(10)).is_ok());
    /// assert_eq!(cookie.permanent(Duration::ZERO).unwrap_err().field(), "absoluteTimeout");
    /// ```
    pub fn permanent(mut self, absolute_timeout: Duration) -> Result<Self, PolicyError> {
        positive("absoluteTimeout", absolute_timeout)?;
        self.lifetime = LifetimeType::Permanent;
        self.absolute_timeout = Some(absolute_timeout);
        Ok(self)
    }

    /// Ends sessions `timeout` after creation, whatever the cookie lifetime.
    pub fn with_absolute_timeout(mut self, timeout: Duration) -> Result<Self, PolicyError> {
        positive("absoluteTimeout", timeout)?;
        self.absolute_timeout = Some(timeout);
        Ok(self)
    }

    /// Ends sessions unused for `timeout`.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Result<Self, PolicyError> {
        positive("idleTimeout", timeout)?;
        self.idle_timeout = Some(timeout);
        Ok(self)
    }

    /// Sets the cookie `Path` attribute.
    pub fn with_path(mut self, path: impl Into<String>) -> Result<Self, PolicyError> {
        let path = path.into();
        check_path(&path).map_err(|p| PolicyError::at("cookie.path", p))?;
        self.cookie_path = path;
        Ok(self)
    }

    /// The cookie or header name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Cookie or header.
    #[must_use]
    pub fn kind(&self) -> PersistenceType {
        self.kind
    }

    /// Session or Permanent.
    #[must_use]
    pub fn lifetime(&self) -> LifetimeType {
        self.lifetime
    }

    /// The absolute timeout, if any.
    #[must_use]
    pub fn absolute_timeout(&self) -> Option<Duration> {
        self.absolute_timeout
    }

    /// The idle timeout, if any.
    #[must_use]
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The cookie `Path` attribute.
    #[must_use]
    pub fn cookie_path(&self) -> &str {
        &self.cookie_path
    }

    /// The schema generation the policy was written in.
    #[must_use]
    pub fn generation(&self) -> SchemaGeneration {
        self.generation
    }
}

pub(crate) fn positive(field: &str, d: Duration) -> Result<(), PolicyError> {
    if d.is_zero() {
        return Err(PolicyError::out_of_range(
            field,
            "must be greater than zero",
        ));
    }
    Ok(())
}

/// A cookie path: starts with `/`, at most 1024 characters, and nothing that
/// would end or corrupt the `Set-Cookie` attribute.
pub(crate) fn check_path(path: &str) -> Result<(), Problem> {
    if !path.starts_with('/') {
        return Err((
            PolicyErrorKind::Invalid,
            format!("must start with '/', got {path:?}"),
        ));
    }
    if path.len() > 1024 {
        return Err((
            PolicyErrorKind::OutOfRange,
            format!("must be at most 1024 characters, got {}", path.len()),
        ));
    }
    if path
        .bytes()
        .any(|b| b == b';' || b.is_ascii_control() || b >= 0x7f)
    {
        return Err((
            PolicyErrorKind::Invalid,
            "must not contain ';', control or non-ASCII characters".into(),
        ));
    }
    Ok(())
}
