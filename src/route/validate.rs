use super::rules::{Hostname, PathMatcher, Pattern, Route, RouteMatch, Rule, ValueMatcher};
use super::{API_VERSIONS, HttpRoute, HttpRouteMatch, HttpRouteRule};
use crate::policy::{PathMatchKind, PolicyError, RuleContext, derive_cookie_path};
use http::{HeaderName, Method};

/// An HTTPRoute that breaks a rule: the same field-and-reason error as a
/// `sessionPersistence` block's, with the full path of the field
/// (`spec.rules[0].sessionPersistence.absoluteTimeout`).
pub type RouteError = PolicyError;

/// The methods `matches[].method` may name.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

impl HttpRoute {
    /// Checks the route against the Gateway API's rules and returns it
    /// typed: path matches as [`PathMatcher`]s, header names and methods
    /// parsed, regular expressions compiled, and per rule its validated
    /// [`SessionPolicy`](crate::policy::SessionPolicy).
    pub fn validate(&self) -> Result<Route, RouteError> {
        type_meta(&self.api_version, &API_VERSIONS, &self.kind, "HTTPRoute")?;
        self.typed("httproute")
    }

    /// Everything below `apiVersion` and `kind`, checked and typed; a
    /// rule's default session name starts with `resource` (`httproute`, or
    /// `grpcroute` for a GRPCRoute translated into this form).
    pub(super) fn typed(&self, resource: &str) -> Result<Route, RouteError> {
        if self.name().is_empty() {
            return Err(PolicyError::missing("metadata.name", "is required"));
        }
        let hostnames = self
            .spec
            .hostnames
            .iter()
            .enumerate()
            .map(|(i, h)| {
                hostname(h).map_err(|r| PolicyError::invalid(format!("spec.hostnames[{i}]"), r))
            })
            .collect::<Result<_, _>>()?;
        if self.spec.rules.is_empty() {
            return Err(PolicyError::missing(
                "spec.rules",
                "must have at least one rule",
            ));
        }
        let rules = self
            .spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| self.validate_rule(resource, i, rule))
            .collect::<Result<Vec<_>, _>>()?;
        for (i, rule) in self.spec.rules.iter().enumerate() {
            if let Some(name) = &rule.name
                && self.spec.rules[..i]
                    .iter()
                    .any(|r| r.name.as_ref() == Some(name))
            {
                return Err(PolicyError::conflict(
                    format!("spec.rules[{i}].name"),
                    format!("must be unique within the route, {name:?} is repeated"),
                ));
            }
        }
        Ok(Route {
            namespace: self.namespace().to_owned(),
            name: self.name().to_owned(),
            hostnames,
            rules,
        })
    }

    fn validate_rule(
        &self,
        resource: &str,
        index: usize,
        rule: &HttpRouteRule,
    ) -> Result<Rule, RouteError> {
        let at = format!("spec.rules[{index}]");
        if let Some(name) = &rule.name {
            section_name(name).map_err(|r| PolicyError::invalid(format!("{at}.name"), r))?;
        }
        let default_match = [HttpRouteMatch::default()];
        let written = if rule.matches.is_empty() {
            &default_match[..]
        } else {
            &rule.matches[..]
        };
        let mut paths = Vec::new();
        let mut matches = Vec::with_capacity(written.len());
        for (m, matched) in written.iter().enumerate() {
            let (compiled, path) = route_match(matched, &format!("{at}.matches[{m}]"))?;
            paths.push(path);
            matches.push(compiled);
        }
        for (b, backend) in rule.backend_refs.iter().enumerate() {
            let field = format!("{at}.backendRefs[{b}]");
            if backend.name.is_empty() {
                return Err(PolicyError::missing(format!("{field}.name"), "is required"));
            }
            if let Some(kind) = &backend.kind
                && kind != "Service"
            {
                return Err(PolicyError::unsupported(
                    format!("{field}.kind"),
                    format!("only Service is supported, got {kind:?}"),
                ));
            }
            if backend.port.is_none() {
                return Err(PolicyError::missing(
                    format!("{field}.port"),
                    "is required when referring to a Service",
                ));
            }
            if backend.weight() > 1_000_000 {
                return Err(PolicyError::out_of_range(
                    format!("{field}.weight"),
                    "must be between 0 and 1000000",
                ));
            }
        }
        let session_policy = match &rule.session_persistence {
            None => None,
            Some(spec) => {
                // A named rule's default cookie name follows its name, not
                // its position, so that editing other rules leaves its
                // sessions alone.
                let key = rule.name.clone().unwrap_or_else(|| index.to_string());
                let default_name =
                    format!("{resource}-{}-{}-rule-{key}", self.namespace(), self.name());
                let mut ctx = RuleContext::new(default_name);
                // Several matches: derive the cookie path only when they
                // agree, so a narrow Path never hides the cookie from one of
                // the rule's own paths. (Without `matches`, the default
                // `PathPrefix /` is not written, so nothing is derived.)
                if !rule.matches.is_empty()
                    && let Some(&(kind, value)) = paths.first()
                    && paths.iter().all(|p| {
                        derive_cookie_path(Some(*p)) == derive_cookie_path(Some((kind, value)))
                    })
                {
                    ctx = ctx.path_match(kind, value);
                }
                Some(
                    spec.validate(&ctx)
                        .map_err(|e| e.prefix(&format!("{at}.sessionPersistence")))?,
                )
            }
        };
        Ok(Rule {
            name: rule.name.clone(),
            matches,
            backend_refs: rule.backend_refs.clone(),
            session_policy,
        })
    }
}

/// Compiles one `matches[]` entry at `at`; also returns its path match as
/// written, from which the v1.x schema derives the cookie path.
fn route_match<'a>(
    matched: &'a HttpRouteMatch,
    at: &str,
) -> Result<(RouteMatch, (PathMatchKind, &'a str)), RouteError> {
    let kind = matched.path.as_ref().and_then(|p| p.kind.as_deref());
    let value = matched
        .path
        .as_ref()
        .and_then(|p| p.value.as_deref())
        .unwrap_or("/");
    let field = format!("{at}.path.value");
    if value.len() > 1024 {
        return Err(PolicyError::out_of_range(
            field,
            "must be at most 1024 characters",
        ));
    }
    let must_be_absolute = || {
        if value.starts_with('/') {
            Ok(())
        } else {
            Err(PolicyError::invalid(
                &*field,
                format!("must start with '/', got {value:?}"),
            ))
        }
    };
    let (path, kind) = match kind {
        None | Some("PathPrefix") => {
            must_be_absolute()?;
            let trimmed = value.trim_end_matches('/');
            let prefix = if trimmed.is_empty() { "/" } else { trimmed };
            (
                PathMatcher::PathPrefix(prefix.to_owned()),
                PathMatchKind::PathPrefix,
            )
        }
        Some("Exact") => {
            must_be_absolute()?;
            (PathMatcher::Exact(value.to_owned()), PathMatchKind::Exact)
        }
        Some("RegularExpression") => (
            PathMatcher::RegularExpression(pattern(value, &field)?),
            PathMatchKind::RegularExpression,
        ),
        Some(other) => {
            return Err(PolicyError::invalid(
                format!("{at}.path.type"),
                format!("must be Exact, PathPrefix or RegularExpression, got {other:?}"),
            ));
        }
    };
    let mut headers = Vec::with_capacity(matched.headers.len());
    for (h, header) in matched.headers.iter().enumerate() {
        let field = format!("{at}.headers[{h}]");
        let name = crate::policy::check_token(&header.name, 256)
            .ok()
            .and_then(|()| HeaderName::from_bytes(header.name.as_bytes()).ok())
            .ok_or_else(|| {
                PolicyError::invalid(
                    format!("{field}.name"),
                    format!("is not a valid header name: {:?}", header.name),
                )
            })?;
        headers.push((
            name,
            value_matcher(header.kind.as_deref(), &header.value, &field)?,
        ));
    }
    let mut query_params = Vec::with_capacity(matched.query_params.len());
    for (q, param) in matched.query_params.iter().enumerate() {
        let field = format!("{at}.queryParams[{q}]");
        if param.name.is_empty() {
            return Err(PolicyError::missing(
                format!("{field}.name"),
                "must not be empty",
            ));
        }
        query_params.push((
            param.name.clone(),
            value_matcher(param.kind.as_deref(), &param.value, &field)?,
        ));
    }
    let method = match &matched.method {
        None => None,
        Some(method) if METHODS.contains(&method.as_str()) => Some(
            Method::from_bytes(method.as_bytes())
                .map_err(|e| PolicyError::invalid(format!("{at}.method"), e.to_string()))?,
        ),
        Some(method) => {
            return Err(PolicyError::invalid(
                format!("{at}.method"),
                format!("must be one of {}, got {method:?}", METHODS.join(", ")),
            ));
        }
    };
    Ok((
        RouteMatch {
            path,
            method,
            headers,
            query_params,
        },
        (kind, value),
    ))
}

/// Checks a resource's `apiVersion` against `versions` and its `kind`.
pub(super) fn type_meta(
    api_version: &str,
    versions: &[&str],
    kind: &str,
    expected: &str,
) -> Result<(), RouteError> {
    if !versions.contains(&api_version) {
        return Err(PolicyError::invalid(
            "apiVersion",
            format!(
                "must be one of {}, got {api_version:?}",
                versions.join(", ")
            ),
        ));
    }
    if kind != expected {
        return Err(PolicyError::invalid(
            "kind",
            format!("must be {expected}, got {kind:?}"),
        ));
    }
    Ok(())
}

/// A header or query parameter condition at `field`.
fn value_matcher(kind: Option<&str>, value: &str, field: &str) -> Result<ValueMatcher, RouteError> {
    match kind {
        None | Some("Exact") => Ok(ValueMatcher::Exact(value.to_owned())),
        Some("RegularExpression") => {
            pattern(value, &format!("{field}.value")).map(ValueMatcher::RegularExpression)
        }
        Some(other) => Err(PolicyError::invalid(
            format!("{field}.type"),
            format!("must be Exact or RegularExpression, got {other:?}"),
        )),
    }
}

/// A regular expression at `field`, compiled (anchored) once.
pub(super) fn pattern(value: &str, field: &str) -> Result<Pattern, RouteError> {
    Pattern::new(value).map_err(|r| PolicyError::invalid(field, r))
}

fn hostname(h: &str) -> Result<Hostname, String> {
    let name = h.strip_prefix("*.").unwrap_or(h);
    let ok = !name.is_empty()
        && h.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !ok {
        return Err(format!(
            "must be a lowercase DNS name, optionally prefixed by '*.', got {h:?}"
        ));
    }
    Ok(match h.strip_prefix('*') {
        Some(suffix) => Hostname::Wildcard(suffix.to_owned()),
        None => Hostname::Exact(h.to_owned()),
    })
}

/// A rule `name` is a Gateway API `SectionName`: a lowercase RFC 1123
/// subdomain of at most 253 characters.
fn section_name(name: &str) -> Result<(), String> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!(
            "must be a lowercase RFC 1123 subdomain of at most 253 characters, got {name:?}"
        ))
    }
}
