#[cfg(feature = "serde")]
use serde::{Deserialize, Serialize};

/// The `sessionPersistence` block of an HTTPRoute rule (or of a
/// `BackendLBPolicy` / `XBackendTrafficPolicy`), exactly as written.
///
/// Every field is optional and kept as written (strings included), so that
/// [`validate`](Self::validate) can name the field that is wrong instead of
/// failing inside the YAML parser. Unknown fields are rejected, as the
/// Kubernetes API server does with strict field validation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "camelCase", deny_unknown_fields)
)]
#[non_exhaustive]
pub struct SessionPersistence {
    /// v1.1–v1.6: the cookie or header name (at most 128 characters).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub session_name: Option<String>,
    /// How long a session lasts from its creation (a GEP-2257 duration).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub absolute_timeout: Option<String>,
    /// v1.1–v1.5: how long a session may sit unused (a GEP-2257 duration).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub idle_timeout: Option<String>,
    /// `Cookie` (default) or `Header`.
    #[cfg_attr(
        feature = "serde",
        serde(rename = "type", default, skip_serializing_if = "Option::is_none")
    )]
    pub kind: Option<String>,
    /// v1.1–v1.6: cookie settings.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub cookie_config: Option<CookieConfig>,
    /// main branch: cookie settings, required when `type` is `Cookie`.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub cookie: Option<CookieSpec>,
    /// main branch: header settings, required when `type` is `Header`.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub header: Option<HeaderSpec>,
}

/// v1.1–v1.6 `cookieConfig`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "camelCase", deny_unknown_fields)
)]
#[non_exhaustive]
pub struct CookieConfig {
    /// `Session` (default) or `Permanent`.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub lifetime_type: Option<String>,
}

/// main-branch `cookie`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "camelCase", deny_unknown_fields)
)]
#[non_exhaustive]
pub struct CookieSpec {
    /// The cookie name (1–256 token characters); generated when absent.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub name: Option<String>,
    /// The cookie `Path` attribute; `/` when absent.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub path: Option<String>,
    /// `Session` (default) or `Permanent`.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub lifetime_type: Option<String>,
}

/// main-branch `header`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Serialize, Deserialize),
    serde(rename_all = "camelCase", deny_unknown_fields)
)]
#[non_exhaustive]
pub struct HeaderSpec {
    /// The header name (1–256 token characters).
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub name: Option<String>,
}
