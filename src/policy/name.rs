//! Name rules shared by cookie and header names (RFC 9110 `token`).

/// Whether `b` is a `tchar`: `[A-Za-z0-9!#$%&'*+\-.^_`|~]`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks a cookie or header name: 1..=`max` `tchar`s.
pub(crate) fn check(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > max {
        return Err(format!(
            "must be at most {max} characters, got {}",
            name.len()
        ));
    }
    if let Some(c) = name.bytes().find(|b| !is_tchar(*b)) {
        return Err(format!(
            "must consist of [A-Za-z0-9!#$%&'*+\\-.^_`|~], found {:?}",
            char::from(c)
        ));
    }
    Ok(())
}
