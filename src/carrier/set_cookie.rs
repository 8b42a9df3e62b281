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
    pub(crate) partitioned: bool,
}

impl Default for CookieAttributes {
    /// `HttpOnly; SameSite=Lax`, `Secure` on TLS connections, no `Domain`,
    /// not `Partitioned`.
    fn default() -> Self {
        CookieAttributes {
            http_only: true,
            same_site: SameSite::Lax,
            secure: Secure::Auto,
            domain: None,
            partitioned: false,
        }
    }
}

/// A rendered `Set-Cookie` value:
/// `name=value[; Max-Age=N]; Path=p[; Domain=d]; HttpOnly; SameSite=Lax[; Secure[; Partitioned]]`,
/// the attribute order Envoy Gateway's e2e test expects (`Partitioned`,
/// which it does not test, last).
pub(crate) fn render(
    name: &str,
    value: &str,
    max_age: Option<u64>,
    path: &str,
    attrs: &CookieAttributes,
    secure: bool,
) -> HeaderValue {
    // The fixed attributes take at most 94 bytes (`Max-Age` of 20 digits
    // to `; Partitioned`).
    let domain = attrs.domain.as_ref().map_or(0, String::len);
    let len = name.len() + value.len() + path.len() + domain + 96;
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
            // Only with `Secure`: browsers reject a `Partitioned` cookie
            // without it, while an unpartitioned one still keeps the
            // session (plain HTTP under `Secure::Auto`, e.g. localhost).
            if attrs.partitioned {
                s.extend_from_slice(b"; Partitioned");
            }
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

    /// Sets `Partitioned` (CHIPS, default off): in a cross-site frame the
    /// browser keeps the cookie in a jar of the top-level site, so the
    /// embedded app stays sticky where third-party cookies are blocked,
    /// and no other site's frame sees the same session.
    ///
    /// Browsers require `Secure` with it, so it is written only next to
    /// `Secure` (over plain HTTP under [`Secure::Auto`] the cookie goes
    /// unpartitioned, and the session still works), and `Partitioned` with
    /// [`Secure::Never`] fails when the layer is built
    /// ([`BuildErrorKind::PartitionedWithoutSecure`](crate::sticky::BuildErrorKind::PartitionedWithoutSecure)).
    #[must_use]
    pub fn partitioned(mut self, on: bool) -> Self {
        self.partitioned = on;
        self
    }

    /// Checks the combination once, when the layer is built.
    pub(crate) fn check(&self) -> Result<(), crate::sticky::BuildErrorKind> {
        use crate::sticky::BuildErrorKind;
        if self.same_site == SameSite::None && self.secure == Secure::Never {
            return Err(BuildErrorKind::SameSiteNoneWithoutSecure);
        }
        if self.partitioned && self.secure == Secure::Never {
            return Err(BuildErrorKind::PartitionedWithoutSecure);
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
    use super::*;

    fn rendered(attrs: &CookieAttributes, secure: bool) -> String {
        let v = render("Session-A", "tok", Some(60), "/", attrs, secure);
        v.to_str().expect("ascii").to_owned()
    }

    #[test]
    fn partitioned_is_written_last_and_only_next_to_secure() {
        let attrs = CookieAttributes::default()
            .same_site(SameSite::None)
            .secure(Secure::Always)
            .domain("shop.example")
            .partitioned(true);
        assert_eq!(attrs.check(), Ok(()));
        assert_eq!(
            rendered(&attrs, true),
            "Session-A=tok; Max-Age=60; Path=/; Domain=shop.example; HttpOnly; SameSite=None; Secure; Partitioned"
        );
        let auto = CookieAttributes::default().partitioned(true);
        assert_eq!(auto.check(), Ok(()));
        assert_eq!(
            rendered(&auto, true),
            "Session-A=tok; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure; Partitioned"
        );
        assert_eq!(
            rendered(&auto, false),
            "Session-A=tok; Max-Age=60; Path=/; HttpOnly; SameSite=Lax",
            "a plain-HTTP client under Secure::Auto gets a cookie it keeps"
        );
        assert_eq!(
            rendered(&CookieAttributes::default(), true),
            "Session-A=tok; Max-Age=60; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }

    #[test]
    fn partitioned_with_secure_never_is_refused() {
        let never = CookieAttributes::default()
            .secure(Secure::Never)
            .partitioned(true);
        assert_eq!(
            never.check(),
            Err(crate::sticky::BuildErrorKind::PartitionedWithoutSecure)
        );
        let off = CookieAttributes::default()
            .secure(Secure::Never)
            .partitioned(false);
        assert_eq!(off.check(), Ok(()));
    }

    #[test]
    fn decimal_matches_display() {
        for n in [0, 7, 10, 99, 300, 86_400, 1_000_000_007, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
