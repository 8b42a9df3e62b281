use super::{API_VERSIONS, HttpRoute, HttpRouteRule};
use crate::policy::{PathMatchKind, PolicyError, RuleContext, SessionPolicy};

/// An HTTPRoute that breaks a rule: the same field-and-reason error as a
/// `sessionPersistence` block's, with the full path of the field
/// (`spec.rules[0].sessionPersistence.absoluteTimeout`).
pub type RouteError = PolicyError;

/// The `PathMatchKind` and value of a `path` block, with defaults applied.
pub(crate) fn path_kind(kind: Option<&str>) -> Option<PathMatchKind> {
    match kind {
        None | Some("PathPrefix") => Some(PathMatchKind::PathPrefix),
        Some("Exact") => Some(PathMatchKind::Exact),
        Some("RegularExpression") => Some(PathMatchKind::RegularExpression),
        Some(_) => None,
    }
}

impl HttpRoute {
    /// Checks the route and returns, per rule, its validated session policy
    /// (`None` for rules without `sessionPersistence`).
    pub fn validate(&self) -> Result<Vec<Option<SessionPolicy>>, RouteError> {
        if !API_VERSIONS.contains(&self.api_version.as_str()) {
            return Err(PolicyError::new(
                "apiVersion",
                format!(
                    "must be one of {}, got {:?}",
                    API_VERSIONS.join(", "),
                    self.api_version
                ),
            ));
        }
        if self.kind != "HTTPRoute" {
            return Err(PolicyError::new(
                "kind",
                format!("must be HTTPRoute, got {:?}", self.kind),
            ));
        }
        if self.name().is_empty() {
            return Err(PolicyError::new("metadata.name", "is required"));
        }
        for (i, h) in self.spec.hostnames.iter().enumerate() {
            check_hostname(h).map_err(|r| PolicyError::new(format!("spec.hostnames[{i}]"), r))?;
        }
        if self.spec.rules.is_empty() {
            return Err(PolicyError::new(
                "spec.rules",
                "must have at least one rule",
            ));
        }
        self.spec
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| self.validate_rule(i, rule))
            .collect()
    }

    fn validate_rule(
        &self,
        index: usize,
        rule: &HttpRouteRule,
    ) -> Result<Option<SessionPolicy>, RouteError> {
        let at = format!("spec.rules[{index}]");
        let mut paths = Vec::new();
        for (m, matched) in rule.matches.iter().enumerate() {
            let mat = format!("{at}.matches[{m}]");
            if let Some(path) = &matched.path {
                let kind = path_kind(path.kind.as_deref()).ok_or_else(|| {
                    PolicyError::new(
                        format!("{mat}.path.type"),
                        format!(
                            "must be Exact, PathPrefix or RegularExpression, got {:?}",
                            path.kind.as_deref().unwrap_or_default()
                        ),
                    )
                })?;
                let value = path.value.as_deref().unwrap_or("/");
                if kind != PathMatchKind::RegularExpression && !value.starts_with('/') {
                    return Err(PolicyError::new(
                        format!("{mat}.path.value"),
                        format!("must start with '/', got {value:?}"),
                    ));
                }
                if value.len() > 1024 {
                    return Err(PolicyError::new(
                        format!("{mat}.path.value"),
                        "must be at most 1024 characters",
                    ));
                }
                paths.push((kind, value));
            } else {
                paths.push((PathMatchKind::PathPrefix, "/"));
            }
            for (h, header) in matched.headers.iter().enumerate() {
                check_kind(header.kind.as_deref())
                    .map_err(|r| PolicyError::new(format!("{mat}.headers[{h}].type"), r))?;
                if crate::policy::check_token(&header.name, 256).is_err() {
                    return Err(PolicyError::new(
                        format!("{mat}.headers[{h}].name"),
                        format!("is not a valid header name: {:?}", header.name),
                    ));
                }
            }
            for (q, param) in matched.query_params.iter().enumerate() {
                check_kind(param.kind.as_deref())
                    .map_err(|r| PolicyError::new(format!("{mat}.queryParams[{q}].type"), r))?;
                if param.name.is_empty() {
                    return Err(PolicyError::new(
                        format!("{mat}.queryParams[{q}].name"),
                        "must not be empty",
                    ));
                }
            }
            if let Some(method) = &matched.method {
                const METHODS: [&str; 9] = [
                    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
                ];
                if !METHODS.contains(&method.as_str()) {
                    return Err(PolicyError::new(
                        format!("{mat}.method"),
                        format!("must be one of {}, got {method:?}", METHODS.join(", ")),
                    ));
                }
            }
        }
        for (b, backend) in rule.backend_refs.iter().enumerate() {
            let field = format!("{at}.backendRefs[{b}]");
            if backend.name.is_empty() {
                return Err(PolicyError::new(format!("{field}.name"), "is required"));
            }
            if let Some(kind) = &backend.kind
                && kind != "Service"
            {
                return Err(PolicyError::new(
                    format!("{field}.kind"),
                    format!("only Service is supported, got {kind:?}"),
                ));
            }
            if backend.port.is_none() {
                return Err(PolicyError::new(
                    format!("{field}.port"),
                    "is required when referring to a Service",
                ));
            }
            if backend.weight() > 1_000_000 {
                return Err(PolicyError::new(
                    format!("{field}.weight"),
                    "must be between 0 and 1000000",
                ));
            }
        }
        let Some(spec) = &rule.session_persistence else {
            return Ok(None);
        };
        let default_name = format!(
            "httproute-{}-{}-rule-{index}",
            self.namespace(),
            self.name()
        );
        let mut ctx = RuleContext::new(default_name);
        // Several matches: derive the cookie path only when they agree, so a
        // narrow Path never hides the cookie from one of the rule's own paths.
        let first = paths.first().copied();
        if let Some((kind, value)) = first
            && paths.iter().all(|p| {
                crate::policy::derive_cookie_path(Some(*p))
                    == crate::policy::derive_cookie_path(Some((kind, value)))
            })
        {
            ctx = ctx.path_match(kind, value);
        }
        spec.validate(&ctx)
            .map(Some)
            .map_err(|e| e.prefix(&format!("{at}.sessionPersistence")))
    }
}

fn check_kind(kind: Option<&str>) -> Result<(), String> {
    match kind {
        None | Some("Exact") | Some("RegularExpression") => Ok(()),
        Some(other) => Err(format!("must be Exact or RegularExpression, got {other:?}")),
    }
}

fn check_hostname(h: &str) -> Result<(), String> {
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
    if ok {
        Ok(())
    } else {
        Err(format!(
            "must be a lowercase DNS name, optionally prefixed by '*.', got {h:?}"
        ))
    }
}
