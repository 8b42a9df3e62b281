use super::cookie_path::{PathMatchKind, derive_cookie_path};
use super::session_policy::{check_path, positive};
use super::{
    LifetimeType, PersistenceType, PolicyError, SchemaGeneration, SessionPersistence,
    SessionPolicy, name,
};
use crate::duration::Duration;

/// What a `sessionPersistence` block needs to know about the rule it sits on.
#[derive(Clone, Debug)]
pub struct RuleContext {
    default_name: String,
    path_match: Option<(PathMatchKind, String)>,
}

impl RuleContext {
    /// `default_name` names the cookie or header when the block gives none;
    /// it must be unique and stable per rule (Envoy Gateway uses
    /// `httproute-<namespace>-<name>-rule-<index>`).
    #[must_use]
    pub fn new(default_name: impl Into<String>) -> Self {
        RuleContext {
            default_name: default_name.into(),
            path_match: None,
        }
    }

    /// The rule's path match, from which the v1.x schema derives the cookie
    /// `Path`.
    #[must_use]
    pub fn path_match(mut self, kind: PathMatchKind, value: impl Into<String>) -> Self {
        self.path_match = Some((kind, value.into()));
        self
    }
}

impl SessionPersistence {
    /// Applies the CRD validation rules and normalizes the block.
    pub fn validate(&self, rule: &RuleContext) -> Result<SessionPolicy, PolicyError> {
        let kind = match self.kind.as_deref() {
            None | Some("Cookie") => PersistenceType::Cookie,
            Some("Header") => PersistenceType::Header,
            Some(other) => {
                return Err(PolicyError::invalid(
                    "type",
                    format!("must be Cookie or Header, got {other:?}"),
                ));
            }
        };
        let main = self.cookie.is_some() || self.header.is_some();
        if main && self.session_name.is_some() {
            let other = if self.cookie.is_some() {
                "cookie"
            } else {
                "header"
            };
            return Err(PolicyError::conflict(
                "sessionName",
                format!("cannot be combined with {other} (use {other}.name)"),
            ));
        }
        if self.cookie_config.is_some() && self.cookie.is_some() {
            return Err(PolicyError::conflict(
                "cookieConfig",
                "cannot be combined with cookie (use cookie.lifetimeType)",
            ));
        }
        if self.cookie_config.is_some() && kind != PersistenceType::Cookie {
            return Err(PolicyError::conflict(
                "cookieConfig",
                "cookieConfig can only be set with type Cookie",
            ));
        }
        if self.cookie.is_some() && kind != PersistenceType::Cookie {
            return Err(PolicyError::conflict(
                "cookie",
                "cookie can only be set with type Cookie",
            ));
        }
        if self.header.is_some() && kind != PersistenceType::Header {
            return Err(PolicyError::conflict(
                "header",
                "header can only be set with type Header",
            ));
        }
        if main && kind == PersistenceType::Header && self.header.is_none() {
            return Err(PolicyError::missing(
                "header",
                "header is required when type is Header",
            ));
        }

        let absolute_timeout = duration("absoluteTimeout", self.absolute_timeout.as_deref())?;
        let idle_timeout = duration("idleTimeout", self.idle_timeout.as_deref())?;

        let (lifetime_field, lifetime) = match (&self.cookie_config, &self.cookie) {
            (Some(c), _) => ("cookieConfig.lifetimeType", c.lifetime_type.as_deref()),
            (_, Some(c)) => ("cookie.lifetimeType", c.lifetime_type.as_deref()),
            _ => ("", None),
        };
        let lifetime = match lifetime {
            None | Some("Session") => LifetimeType::Session,
            Some("Permanent") => LifetimeType::Permanent,
            Some(other) => {
                return Err(PolicyError::invalid(
                    lifetime_field,
                    format!("must be Permanent or Session, got {other:?}"),
                ));
            }
        };
        if lifetime == LifetimeType::Permanent && absolute_timeout.is_none() {
            return Err(PolicyError::missing(
                "absoluteTimeout",
                "AbsoluteTimeout must be specified when cookie lifetimeType is Permanent",
            ));
        }

        let (name_field, given_name, max) = if let Some(c) = &self.cookie {
            ("cookie.name", c.name.as_deref(), 256)
        } else if let Some(h) = &self.header {
            ("header.name", h.name.as_deref(), 256)
        } else {
            ("sessionName", self.session_name.as_deref(), 128)
        };
        if name_field == "header.name" && given_name.is_none() {
            return Err(PolicyError::missing(name_field, "is required"));
        }
        let name = match given_name {
            Some(n) => {
                name::check(n, max).map_err(|p| PolicyError::at(name_field, p))?;
                n.to_owned()
            }
            None => {
                name::check(&rule.default_name, 256).map_err(|(kind, r)| {
                    PolicyError::new(name_field, kind, format!("generated name {r}"))
                })?;
                rule.default_name.clone()
            }
        };

        let (generation, cookie_path) = if main {
            let path = self
                .cookie
                .as_ref()
                .and_then(|c| c.path.clone())
                .unwrap_or_else(|| "/".into());
            check_path(&path).map_err(|p| PolicyError::at("cookie.path", p))?;
            (SchemaGeneration::Main, path)
        } else {
            let m = rule.path_match.as_ref().map(|(k, v)| (*k, v.as_str()));
            (SchemaGeneration::V1, derive_cookie_path(m))
        };

        Ok(SessionPolicy {
            name,
            kind,
            lifetime,
            absolute_timeout,
            idle_timeout,
            cookie_path,
            generation,
        })
    }
}

fn duration(field: &str, value: Option<&str>) -> Result<Option<Duration>, PolicyError> {
    let Some(value) = value else { return Ok(None) };
    let d: Duration = value
        .parse()
        .map_err(|e: crate::duration::ParseDurationError| {
            PolicyError::invalid(field, e.to_string())
        })?;
    positive(field, d)?;
    Ok(Some(d))
}
