//! `Partitioned` (CHIPS, `--cookie-partitioned`) on the session cookie.
//! The library writes `HttpOnly`, `SameSite`, `Secure` and `Domain` itself
//! but has no `Partitioned` yet, so the gateway appends it to the
//! `Set-Cookie` the library just wrote for the rule's session cookie.
//! Start-up refuses the flag unless every cookie carries `Secure`
//! ([`crate::config::edge`]), as browsers require.

use crate::config::rules::Rule;
use http::header::{Entry, SET_COOKIE};
use http::{HeaderMap, HeaderValue};
use tower_sticky::policy::PersistenceType;

/// Appends `; Partitioned` to the session cookie's `Set-Cookie` when the
/// rule asks for it.
pub fn partition(headers: &mut HeaderMap, rule: &Rule) {
    if !rule.partitioned {
        return;
    }
    let Some(policy) = rule.target.policy() else {
        return;
    };
    if policy.kind() != PersistenceType::Cookie {
        return;
    }
    let Entry::Occupied(mut cookies) = headers.entry(SET_COOKIE) else {
        return;
    };
    let prefix = [policy.name().as_bytes(), b"="].concat();
    for value in cookies.iter_mut() {
        if value.as_bytes().starts_with(&prefix) {
            let mut bytes = value.as_bytes().to_vec();
            bytes.extend_from_slice(b"; Partitioned");
            if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                *value = v;
            }
        }
    }
}
