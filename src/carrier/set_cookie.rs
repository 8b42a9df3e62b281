//! Writing the `Set-Cookie` header.

use http::HeaderValue;
use std::fmt::Write as _;

/// The `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SameSite {
    /// Sent only on same-site requests.
    Strict,
    /// Sent on same-site requests and top-level navigations (the default:
    /// stickiness survives following a link, cross-site POSTs do not carry
    /// it).
    #[default]
    Lax,
    /// Sent on every request; browsers require `Secure` with it.
    None,
    /// No `SameSite` attribute at all.
    Omit,
}

/// When to add the `Secure` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Secure {
    /// When the client connection is TLS: the proxy says so with a
    /// [`ClientTls`](super::ClientTls) request extension, or the request URI
    /// has the `https` scheme. Browsers drop `Secure` cookies set over plain
    /// HTTP (except on localhost), so this is the safe default.
    #[default]
    Auto,
    /// Always (a TLS-terminating edge sits in front of the proxy).
    Always,
    /// Never.
    Never,
}

/// The attributes of the persistence cookie beyond name, value, `Path` and
/// `Max-Age`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieAttributes {
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) secure: Secure,
    pub(crate) domain: Option<String>,
}

impl Default for CookieAttributes {
    /// `HttpOnly; SameSite=Lax`, `Secure` on TLS connections, no `Domain`.
    fn default() -> Self {
        CookieAttributes {
            http_only: true,
            same_site: SameSite::Lax,
            secure: Secure::Auto,
            domain: None,
        }
    }
}

/// A rendered `Set-Cookie` value:
/// `name=value[; Max-Age=N]; Path=p[; Domain=d]; HttpOnly; SameSite=Lax[; Secure]`,
/// the attribute order Envoy Gateway's e2e test expects.
pub(crate) fn render(
    name: &str,
    value: &str,
    max_age: Option<u64>,
    path: &str,
    attrs: &CookieAttributes,
    secure: bool,
) -> HeaderValue {
    let mut s = String::with_capacity(name.len() + value.len() + path.len() + 64);
    let _ = write!(s, "{name}={value}");
    if let Some(age) = max_age {
        let _ = write!(s, "; Max-Age={age}");
    }
    let _ = write!(s, "; Path={path}");
    if let Some(d) = &attrs.domain {
        let _ = write!(s, "; Domain={d}");
    }
    if attrs.http_only {
        s.push_str("; HttpOnly");
    }
    match attrs.same_site {
        SameSite::Strict => s.push_str("; SameSite=Strict"),
        SameSite::Lax => s.push_str("; SameSite=Lax"),
        SameSite::None => s.push_str("; SameSite=None"),
        SameSite::Omit => {}
    }
    if secure {
        s.push_str("; Secure");
    }
    // Name, path and domain were validated when the layer was built; the
    // value is base64url.
    HeaderValue::try_from(s).expect("validated cookie parts")
}

impl CookieAttributes {
    /// Sets `HttpOnly` (default on: scripts cannot read the session value).
    #[must_use]
    pub fn http_only(mut self, on: bool) -> Self {
        self.http_only = on;
        self
    }

    /// Sets `SameSite`.
    #[must_use]
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Sets when `Secure` is added.
    #[must_use]
    pub fn secure(mut self, secure: Secure) -> Self {
        self.secure = secure;
        self
    }

    /// Sets a `Domain` attribute (checked when the layer is built).
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Checks the combination once, when the layer is built.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.same_site == SameSite::None && self.secure == Secure::Never {
            return Err("SameSite=None requires Secure; browsers reject it otherwise".into());
        }
        if let Some(d) = &self.domain {
            let ok = !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(format!("invalid cookie Domain {d:?}"));
            }
        }
        Ok(())
    }
}
