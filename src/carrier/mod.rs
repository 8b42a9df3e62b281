//! Where the session value travels: a cookie or a header.
//!
//! Reading never allocates and tolerates what real clients send (see
//! [`cookie_values`] and [`header_values`]). Writing produces a `Set-Cookie`
//! with secure defaults (`HttpOnly`, `SameSite=Lax`, `Secure` on TLS; see
//! [`CookieAttributes`]) or a response header. Before the request goes
//! upstream the persistence cookie is removed with [`strip_cookie`] so the
//! application never sees it, unless the layer is told to forward it. The
//! rewritten `Cookie` value and the `Set-Cookie` value are carved from a
//! per-thread buffer, so neither costs an allocation per request.
//!
//! ```
//! use tower_sticky::carrier::{CookieAttributes, SameSite, Secure};
//!
//! let attrs = CookieAttributes::default()
//!     .same_site(SameSite::Strict)
//!     .secure(Secure::Always);
//! # let _ = attrs;
//! ```

mod cookie_header;
mod header_value;
mod set_cookie;
mod value_arena;

pub use cookie_header::{CookieValues, cookie_values, strip_cookie};
pub use header_value::header_values;
pub use set_cookie::{CookieAttributes, SameSite, Secure};

pub(crate) use cookie_header::{KeptCookies, Name as CookieName, find_and_rewrite, find_cookie};
pub(crate) use set_cookie::render as render_set_cookie;

/// A request extension a proxy inserts when the client connection is TLS, so
/// that [`Secure::Auto`] adds the `Secure` attribute.
///
/// ```
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(tower_sticky::carrier::ClientTls);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientTls;
