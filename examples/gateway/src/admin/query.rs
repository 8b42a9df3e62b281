//! The query of `/backends/drain` and `/backends/undrain`.

use super::quoted;
use std::time::Duration;

/// `service`, `endpoint` and, for a drain, `deadline`.
#[derive(Debug, PartialEq, Eq)]
pub struct Target {
    /// `NS/NAME`.
    pub service: String,
    /// `HOST:PORT`.
    pub endpoint: String,
    /// `deadline`, a Gateway API duration (`30s`, `10m`, `1h30m`).
    pub deadline: Option<Duration>,
}

/// Why a query is refused with 400; the `Display` says it, quoting what
/// the client sent only escaped and cut short.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(String);

impl From<String> for QueryError {
    fn from(why: String) -> Self {
        QueryError(why)
    }
}

impl From<&str> for QueryError {
    fn from(why: &str) -> Self {
        QueryError(why.to_owned())
    }
}

/// Parses the query.
pub fn parse(query: &str, deadline_allowed: bool) -> Result<Target, QueryError> {
    let (mut service, mut endpoint, mut deadline) = (None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = decode(v).ok_or_else(|| format!("{}: bad percent-encoding", quoted(k)))?;
        let slot = match k {
            "service" => &mut service,
            "endpoint" => &mut endpoint,
            "deadline" if deadline_allowed => &mut deadline,
            other => return Err(format!("unknown parameter {}", quoted(other)).into()),
        };
        if slot.replace(v).is_some() {
            return Err(format!("{k} given twice").into());
        }
    }
    let service = service.ok_or("missing service=NS/NAME")?;
    match service.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {}
        _ => return Err(format!("service must be NS/NAME, got {}", quoted(&service)).into()),
    }
    let endpoint = endpoint.ok_or("missing endpoint=HOST:PORT")?;
    match endpoint.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
        _ => {
            return Err(format!("endpoint must be HOST:PORT, got {}", quoted(&endpoint)).into());
        }
    }
    let deadline = deadline
        .map(|d| {
            d.parse::<tower_sticky::duration::Duration>()
                .map(|d| Duration::from_millis(d.as_millis()))
                .map_err(|e| {
                    format!(
                        "deadline {}: {e} (a duration such as 30s, 10m, 1h30m)",
                        quoted(&d)
                    )
                })
        })
        .transpose()?;
    Ok(Target {
        service,
        endpoint,
        deadline,
    })
}

/// Percent-decoding (`%2F` → `/`, `+` stays `+`).
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            // Two hex digits exactly: `from_str_radix` alone would take
            // `+1` as 0x01.
            let hex = b.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse(
                "service=default%2Fbackend&endpoint=10.0.0.7:3000&deadline=1m30s",
                true
            ),
            Ok(Target {
                service: "default/backend".into(),
                endpoint: "10.0.0.7:3000".into(),
                deadline: Some(Duration::from_secs(90)),
            })
        );
        assert_eq!(
            parse("service=default/backend&endpoint=[::1]:80", false)
                .unwrap()
                .endpoint,
            "[::1]:80"
        );
        let err = |q: &str| parse(q, true).unwrap_err().to_string();
        assert_eq!(err("endpoint=a:1"), "missing service=NS/NAME");
        assert_eq!(err("service=a/b"), "missing endpoint=HOST:PORT");
        assert!(err("service=backend&endpoint=a:1").contains("NS/NAME"));
        assert!(err("service=a/b&endpoint=a").contains("HOST:PORT"));
        assert!(err("service=a/b&endpoint=a:1&deadline=soon").starts_with("deadline \"soon\""));
        assert!(err("service=a/b&endpoint=a:1&x=1").contains("unknown parameter"));
        assert!(err("service=a/b&service=a/c&endpoint=a:1").contains("twice"));
        assert!(
            parse("service=a/b&endpoint=a:1&deadline=1s", false)
                .unwrap_err()
                .to_string()
                .contains("unknown parameter \"deadline\"")
        );
        assert!(err("service=a%2&endpoint=a:1").contains("percent"));
        assert!(err("service=a/b%+1&endpoint=a:1").contains("percent"));
        assert!(err("service=a/b%-1&endpoint=a:1").contains("percent"));
    }
}
