//! Writing the `Set-Cookie` header.

use http::HeaderValue;

/// The `SameSite` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
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
#[non_exhaustive]
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
    let len = name.len() + value.len() + path.len() + 64;
    // Pieces appended as bytes: `write!` and its formatting machinery cost
    // more than the rest of the header together.
    let rendered = super::value_arena::write(len, |s| {
        for piece in [name.as_bytes(), b"=", value.as_bytes()] {
            s.extend_from_slice(piece);
        }
        if let Some(age) = max_age {
            s.extend_from_slice(b"; Max-Age=");
            s.extend_from_slice(decimal(age, &mut [0; 20]));
        }
        s.extend_from_slice(b"; Path=");
        s.extend_from_slice(path.as_bytes());
        if let Some(d) = &attrs.domain {
            s.extend_from_slice(b"; Domain=");
            s.extend_from_slice(d.as_bytes());
        }
        if attrs.http_only {
            s.extend_from_slice(b"; HttpOnly");
        }
        match attrs.same_site {
            SameSite::Strict => s.extend_from_slice(b"; SameSite=Strict"),
            SameSite::Lax => s.extend_from_slice(b"; SameSite=Lax"),
            SameSite::None => s.extend_from_slice(b"; SameSite=None"),
            SameSite::Omit => {}
        }
        if secure {
            s.extend_from_slice(b"; Secure");
        }
        true
    })
    .expect("kept: the writer returns true");
    // Name, path and domain were validated when the layer was built; the
    // value is base64url.
    HeaderValue::from_maybe_shared(rendered).expect("validated cookie parts")
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
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
    pub(crate) fn check(&self) -> Result<(), crate::sticky::BuildErrorKind> {
        use crate::sticky::BuildErrorKind;
        if self.same_site == SameSite::None && self.secure == Secure::Never {
            return Err(BuildErrorKind::SameSiteNoneWithoutSecure);
        }
        if let Some(d) = &self.domain {
            let ok = !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(BuildErrorKind::InvalidCookieDomain(d.clone()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimal_matches_display() {
        for n in [0, 7, 10, 99, 300, 86_400, 1_000_000_007, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
