use super::StickySessions;
use super::layer::StickyLayer;
use super::sessions::{OnOutcome, Shared};
use crate::balance::{Backends, Balance, RoundRobin};
use crate::carrier::CookieAttributes;
use crate::duration::Duration;
use crate::policy::{PersistenceType, SessionPolicy};
use crate::token::{Clock, KeySet, Lifetime, SystemClock, TokenCodec};
use http::HeaderName;
use std::fmt;
use std::sync::Arc;

/// Builds [`StickySessions`] (and from them a [`StickyLayer`]); every option
/// is checked once, in [`build`](Self::build).
#[must_use]
pub struct StickyBuilder<T, B = RoundRobin> {
    policy: SessionPolicy,
    keys: KeySet,
    backends: Backends<T>,
    balancer: B,
    clock: Arc<dyn Clock>,
    attributes: CookieAttributes,
    forward: bool,
    skew: Option<Duration>,
    refresh_after: Option<Duration>,
    scope: Option<String>,
    cache_private: bool,
    remember_tokens: bool,
    on_outcome: Option<OnOutcome>,
}

impl<T, B> fmt::Debug for StickyBuilder<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StickyBuilder")
            .field("policy", &self.policy)
            .field("attributes", &self.attributes)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> StickyBuilder<T, RoundRobin> {
    /// Sessions under `policy`, signed with `keys`, over `backends`, new
    /// sessions spread round-robin.
    pub fn new(policy: SessionPolicy, keys: KeySet, backends: Backends<T>) -> Self {
        StickyBuilder {
            policy,
            keys,
            backends,
            balancer: RoundRobin::new(),
            clock: Arc::new(SystemClock),
            attributes: CookieAttributes::default(),
            forward: false,
            skew: None,
            refresh_after: None,
            scope: None,
            cache_private: true,
            remember_tokens: true,
            on_outcome: None,
        }
    }
}

impl<T: Send + Sync + 'static, B: Balance<T>> StickyBuilder<T, B> {
    /// Chooses how new sessions are spread.
    pub fn balancer<B2: Balance<T>>(self, balancer: B2) -> StickyBuilder<T, B2> {
        StickyBuilder {
            policy: self.policy,
            keys: self.keys,
            backends: self.backends,
            balancer,
            clock: self.clock,
            attributes: self.attributes,
            forward: self.forward,
            skew: self.skew,
            refresh_after: self.refresh_after,
            scope: self.scope,
            cache_private: self.cache_private,
            remember_tokens: self.remember_tokens,
            on_outcome: self.on_outcome,
        }
    }

    /// Reads time from `clock` instead of the system clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sets the cookie's `HttpOnly`, `SameSite`, `Secure` and `Domain`.
    pub fn cookie_attributes(mut self, attributes: CookieAttributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// Passes the persistence cookie or header on to the backend instead of
    /// removing it (HAProxy's cookie modes without `indirect`).
    pub fn forward_session_value(mut self, forward: bool) -> Self {
        self.forward = forward;
        self
    }

    /// How far in the future a token's times may lie (clock skew between
    /// proxy replicas); 2 s by default.
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.skew = Some(skew);
        self
    }

    /// How old an active session's last-seen time may grow before it is
    /// re-issued; a quarter of the idle timeout by default. Must not exceed
    /// the idle timeout.
    pub fn refresh_after(mut self, step: Duration) -> Self {
        self.refresh_after = Some(step);
        self
    }

    /// What tokens are bound to. Tokens from another scope do not verify, so
    /// two rules sharing a cookie name and a key still never share sessions.
    /// By default: the policy's name, type and cookie path.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Whether a response that sets the cookie and has no `Cache-Control`
    /// gets `Cache-Control: private`, so a shared cache never hands one
    /// client's session to others (HAProxy's `nocache`). On by default.
    pub fn cache_private(mut self, on: bool) -> Self {
        self.cache_private = on;
        self
    }

    /// Whether each thread remembers the tokens it verified or signed, so
    /// that a resumed session skips the HMAC (see
    /// [`TokenCodec::decode_remembered`]). Expiry is still checked on every
    /// request. On by default; about 100 KiB per thread that routes requests.
    pub fn remember_verified_tokens(mut self, on: bool) -> Self {
        self.remember_tokens = on;
        self
    }

    /// Calls `f` with the outcome and chosen backend of every request.
    pub fn on_outcome(
        mut self,
        f: impl Fn(super::Outcome, Option<crate::balance::BackendId>) + Send + Sync + 'static,
    ) -> Self {
        self.on_outcome = Some(Arc::new(f));
        self
    }

    /// Checks the configuration and builds the shared engine.
    pub fn build(self) -> Result<StickySessions<T, B>, BuildError> {
        self.attributes.check().map_err(BuildError)?;
        let mut lifetime = Lifetime::for_policy(&self.policy);
        if let Some(skew) = self.skew {
            lifetime = lifetime.skew(skew);
        }
        if let Some(step) = self.refresh_after {
            match self.policy.idle_timeout() {
                None => {
                    return Err(BuildError(
                        "refresh_after needs a policy with an idle timeout".into(),
                    ));
                }
                Some(idle) if step > idle || step.is_zero() => {
                    return Err(BuildError(format!(
                        "refresh_after must be between 1ms and the idle timeout ({idle}), got {step}"
                    )));
                }
                Some(_) => lifetime = lifetime.refresh_after(step),
            }
        }
        let header = match self.policy.kind() {
            PersistenceType::Cookie => http::header::SET_COOKIE,
            PersistenceType::Header => {
                let name = HeaderName::from_bytes(self.policy.name().as_bytes())
                    .map_err(|e| BuildError(format!("header name: {e}")))?;
                if RESERVED_HEADERS.contains(&name.as_str()) {
                    return Err(BuildError(format!(
                        "{name} cannot carry a session: the proxy or HTTP itself owns it"
                    )));
                }
                name
            }
        };
        let scope = self.scope.unwrap_or_else(|| {
            format!(
                "{:?}\0{}\0{}",
                self.policy.kind(),
                self.policy.name(),
                self.policy.cookie_path()
            )
        });
        let codec = TokenCodec::new(self.keys, scope.as_bytes());
        Ok(StickySessions::from_shared(Shared {
            #[cfg(feature = "metrics")]
            counters: super::sessions::counters(&self.policy),
            policy: self.policy,
            codec,
            lifetime,
            backends: self.backends,
            balancer: self.balancer,
            clock: self.clock,
            attributes: self.attributes,
            forward: self.forward,
            header,
            cache_private: self.cache_private,
            remember_tokens: self.remember_tokens,
            on_outcome: self.on_outcome,
        }))
    }

    /// Builds a [`StickyLayer`].
    pub fn layer(self) -> Result<StickyLayer<T, B>, BuildError> {
        self.build().map(StickyLayer::from_sessions)
    }
}

/// Header names a session must not travel in.
const RESERVED_HEADERS: &[&str] = &[
    "cookie",
    "set-cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "authorization",
];

/// A layer configuration that cannot work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError(String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid sticky session configuration: {}", self.0)
    }
}

impl std::error::Error for BuildError {}
