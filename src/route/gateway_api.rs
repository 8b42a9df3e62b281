//! Interop with the kube-rs [`gateway-api`](https://docs.rs/gateway-api)
//! crate (feature `gateway-api`): a Kubernetes controller that watches
//! HTTPRoutes and GRPCRoutes through `kube` turns them into this crate's
//! validated types without writing or parsing YAML.
//!
//! `sessionPersistence` is in the Gateway API's experimental channel, so the
//! types are those of `gateway_api::experimental`.
//!
//! * `&HttpRoute` → [`Route`]: the whole route, checked as
//!   [`HttpRoute::validate`](super::HttpRoute::validate) checks one read
//!   from a file (rule names, matches, regular expressions, a
//!   [`SessionPolicy`] per rule);
//! * `&GrpcRoute` → [`GrpcRouteSessions`]: each rule's [`SessionPolicy`];
//! * either route's `sessionPersistence` block → [`SessionPersistence`],
//!   which [`SessionPersistence::validate`] checks with the rule's context.

use super::{HttpRoute as OurHttpRoute, Route, RouteError};
use crate::policy::{CookieConfig, PolicyError, RuleContext, SessionPersistence, SessionPolicy};
use gateway_api::experimental::grpcroutes::{
    GrpcRoute, GrpcRouteRulesSessionPersistence,
    GrpcRouteRulesSessionPersistenceCookieConfigLifetimeType as GrpcLifetime,
    GrpcRouteRulesSessionPersistenceType as GrpcType,
};
use gateway_api::experimental::httproutes::{
    HttpRoute, HttpRouteRulesSessionPersistence,
    HttpRouteRulesSessionPersistenceCookieConfigLifetimeType as HttpLifetime,
    HttpRouteRulesSessionPersistenceType as HttpType,
};
use std::fmt;

/// Why a `gateway-api` resource did not convert.
#[derive(Debug)]
#[non_exhaustive]
pub enum GatewayApiError {
    /// The resource does not have the shape of an HTTPRoute this crate
    /// reads (the message says where).
    Shape(String),
    /// It has the shape, and breaks a validation rule.
    Invalid(RouteError),
}

impl GatewayApiError {
    /// Whether the resource broke a validation rule (rather than having an
    /// unexpected shape).
    #[must_use]
    pub fn is_invalid(&self) -> bool {
        matches!(self, GatewayApiError::Invalid(_))
    }
}

impl fmt::Display for GatewayApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayApiError::Shape(e) => write!(f, "unexpected HTTPRoute shape: {e}"),
            GatewayApiError::Invalid(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for GatewayApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GatewayApiError::Shape(_) => None,
            GatewayApiError::Invalid(e) => Some(e),
        }
    }
}

impl TryFrom<&HttpRoute> for Route {
    type Error = GatewayApiError;

    /// Validates an HTTPRoute held by `kube`. Both crates mirror the same
    /// Kubernetes schema, so the value goes through its JSON form in memory
    /// (the serde field names are the API's), then through the same
    /// validation as a route read from a file.
    fn try_from(route: &HttpRoute) -> Result<Self, Self::Error> {
        let json =
            serde_json::to_value(route).map_err(|e| GatewayApiError::Shape(e.to_string()))?;
        let ours: OurHttpRoute =
            serde_json::from_value(json).map_err(|e| GatewayApiError::Shape(e.to_string()))?;
        ours.validate().map_err(GatewayApiError::Invalid)
    }
}

/// `From` a route kind's `sessionPersistence` block. The `gateway-api`
/// crate generates one set of types per route kind, with the same fields
/// and variants; one body serves them all.
macro_rules! session_persistence_from {
    ($block:ty, $kind:ident, $lifetime:ident) => {
        impl From<&$block> for SessionPersistence {
            fn from(sp: &$block) -> Self {
                let mut ours = SessionPersistence::default();
                ours.session_name.clone_from(&sp.session_name);
                ours.absolute_timeout.clone_from(&sp.absolute_timeout);
                ours.idle_timeout.clone_from(&sp.idle_timeout);
                ours.kind = sp.r#type.as_ref().map(|t| {
                    match t {
                        $kind::Cookie => "Cookie",
                        $kind::Header => "Header",
                    }
                    .to_owned()
                });
                ours.cookie_config = sp.cookie_config.as_ref().map(|c| CookieConfig {
                    lifetime_type: c.lifetime_type.as_ref().map(|l| {
                        match l {
                            $lifetime::Permanent => "Permanent",
                            $lifetime::Session => "Session",
                        }
                        .to_owned()
                    }),
                });
                ours
            }
        }
    };
}

session_persistence_from!(HttpRouteRulesSessionPersistence, HttpType, HttpLifetime);
session_persistence_from!(GrpcRouteRulesSessionPersistence, GrpcType, GrpcLifetime);

/// The validated `sessionPersistence` of each rule of a GRPCRoute, in rule
/// order (`None`: the rule has none). A rule without a session name gets
/// `grpcroute-<namespace>-<name>-rule-<index>`, Envoy Gateway's naming.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcRouteSessions {
    rules: Vec<Option<SessionPolicy>>,
}

impl GrpcRouteSessions {
    /// Each rule's policy, in rule order.
    #[must_use]
    pub fn rules(&self) -> &[Option<SessionPolicy>] {
        &self.rules
    }
}

impl TryFrom<&GrpcRoute> for GrpcRouteSessions {
    type Error = PolicyError;

    fn try_from(route: &GrpcRoute) -> Result<Self, Self::Error> {
        let namespace = route.metadata.namespace.as_deref().unwrap_or("default");
        let name = route.metadata.name.as_deref().unwrap_or_default();
        let rules = route.spec.rules.as_deref().unwrap_or_default();
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let Some(sp) = &rule.session_persistence else {
                    return Ok(None);
                };
                let context = RuleContext::new(format!("grpcroute-{namespace}-{name}-rule-{i}"));
                SessionPersistence::from(sp)
                    .validate(&context)
                    .map(Some)
                    .map_err(|e| e.prefix(&format!("spec.rules[{i}].sessionPersistence")))
            })
            .collect::<Result<_, _>>()?;
        Ok(GrpcRouteSessions { rules })
    }
}
