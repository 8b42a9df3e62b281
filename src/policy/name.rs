//! Name rules shared by cookie and header names (RFC 9110 `token`).

use super::error::{PolicyErrorKind, Problem};

/// Whether `b` is a `tchar`: `[A-Za-z0-9!#$%&'*+\-.^_`|~]`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a cookie or header name: 1..=`max` `tchar`s.
pub(crate) fn check(name: &str, max: usize) -> Result<(), Problem> {
    if name.is_empty() {
        return Err((PolicyErrorKind::Missing, "must not be empty".into()));
    }
    if name.len() > max {
        return Err((
            PolicyErrorKind::OutOfRange,
            format!("must be at most {max} characters, got {}", name.len()),
        ));
    }
    if let Some(c) = name.bytes().find(|b| !is_tchar(*b)) {
        return Err((
            PolicyErrorKind::Invalid,
            format!(
                "must consist of [A-Za-z0-9!#$%&'*+\\-.^_`|~], found {:?}",
                char::from(c)
            ),
        ));
    }
    Ok(())
}
