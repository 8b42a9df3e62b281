use super::StickyHandOffLayer;
use super::StickySessions;
use super::layer::StickyLayer;
use super::observe::Observer;
use super::sessions::{OnOutcome, SessionRules, Shared};
use crate::balance::{Backends, Balance, RoundRobin, Weighted};
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
    /// `None`: plain mode.
    session: Option<(SessionPolicy, KeySet)>,
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
    strict: bool,
    on_outcome: Option<OnOutcome>,
}

impl<T, B> fmt::Debug for StickyBuilder<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StickyBuilder")
            .field("policy", &self.session.as_ref().map(|(p, _)| p))
            .field("attributes", &self.attributes)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> StickyBuilder<T, RoundRobin> {
    /// Sessions under `policy`, signed with `keys`, over `backends`, new
    /// sessions spread round-robin.
    pub fn new(policy: SessionPolicy, keys: KeySet, backends: Backends<T>) -> Self {
        Self::with_session(Some((policy, keys)), backends)
    }

    /// Plain mode, for a rule without `sessionPersistence`: the same engine,
    /// backends and balancer, but no session. [`decide`](StickySessions::decide)
    /// only picks a backend ([`Outcome::Picked`](super::Outcome::Picked)),
    /// issues nothing and strips nothing from the request;
    /// [`repin_excluding`](StickySessions::repin_excluding) picks another.
    /// The session options (cookie attributes, strict, ...) have no effect.
    ///
    /// ```
    /// use http::{HeaderMap, Method, Uri};
    /// use tower_sticky::balance::{BackendId, Backends};
    /// use tower_sticky::sticky::{Outcome, RequestHead, StickyBuilder};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pods: Backends<&str> = ["pod-a", "pod-b"].into_iter().map(|p| (BackendId::from_name(p), p, 1)).collect();
    /// let plain = StickyBuilder::plain(pods).scope("httproute/default/web/rule/1").build()?;
    /// assert!(plain.policy().is_none());
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("cookie", "Session-A=whatever".parse()?);
    /// let (method, uri) = (Method::GET, Uri::from_static("/"));
    /// let picks: Vec<_> = (0..4)
    ///     .map(|_| plain.decide(RequestHead::new(&method, &uri, &headers)))
    ///     .inspect(|d| {
    ///         assert_eq!(d.outcome(), Outcome::Picked);
    ///         assert!(d.session_header().is_none() && d.rewrite().is_none());
    ///     })
    ///     .map(|d| *d.target().unwrap())
    ///     .collect();
    /// assert_eq!(picks, ["pod-a", "pod-b", "pod-a", "pod-b"]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn plain(backends: Backends<T>) -> Self {
        Self::with_session(None, backends)
    }

    fn with_session(session: Option<(SessionPolicy, KeySet)>, backends: Backends<T>) -> Self {
        StickyBuilder {
            session,
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
            strict: false,
            on_outcome: None,
        }
    }
}

impl<T: Send + Sync + 'static, B: Balance<T>> StickyBuilder<T, B> {
    /// Chooses how new sessions are spread.
    pub fn balancer<B2: Balance<T>>(self, balancer: B2) -> StickyBuilder<T, B2> {
        StickyBuilder {
            session: self.session,
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
            strict: self.strict,
            on_outcome: self.on_outcome,
        }
    }

    /// Reads time from `clock` instead of the system clock.
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Sets the cookie's `HttpOnly`, `SameSite`, `Secure`, `Domain` and
    /// `Partitioned`.
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

    /// What tokens are bound to, and the `scope` that `tracing` events and
    /// `metrics` carry. Tokens from another scope do not verify, so two
    /// rules sharing a cookie name and a key still never share sessions. Use
    /// the route rule (`httproute/<namespace>/<name>/rule/<index>`, say).
    /// By default: the policy's type, name and cookie path
    /// (`cookie:Session-A:/`).
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
    /// `TokenCodec::decode_remembered`). Expiry is still checked on every
    /// request. On by default; about 100 KiB per thread that routes requests.
    pub fn remember_verified_tokens(mut self, on: bool) -> Self {
        self.remember_tokens = on;
        self
    }

    /// Strict sessions (Envoy's strict mode): a request whose session names a
    /// backend that is down or no longer a member gets no backend
    /// ([`Outcome::PinnedUnavailable`](super::Outcome::PinnedUnavailable);
    /// answer 503) instead of a new session elsewhere, for applications whose
    /// session state cannot move. Requests without a valid session, and
    /// sessions on serving or draining backends, are served as usual. Off by
    /// default.
    pub fn strict(mut self, on: bool) -> Self {
        self.strict = on;
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
        let (rules, label) = match self.session {
            Some((policy, keys)) => {
                let (rules, label) = session_rules(
                    policy,
                    keys,
                    self.attributes,
                    self.skew,
                    self.refresh_after,
                    self.scope,
                )?;
                let rules = SessionRules {
                    forward: self.forward,
                    cache_private: self.cache_private,
                    remember_tokens: self.remember_tokens,
                    strict: self.strict,
                    ..rules
                };
                (Some(rules), label)
            }
            None => (
                None,
                self.scope.unwrap_or_else(|| "plain".to_owned()).into(),
            ),
        };
        Ok(StickySessions::from_shared(Shared {
            observer: Observer::new(label),
            rules,
            backends: self.backends,
            balancer: self.balancer,
            clock: self.clock,
            on_outcome: self.on_outcome,
            fallback: Weighted::new(),
        }))
    }

    /// Builds a [`StickyLayer`].
    pub fn layer(self) -> Result<StickyLayer<T, B>, BuildError> {
        self.build().map(StickyLayer::from_sessions)
    }

    /// Builds a [`StickyHandOffLayer`]: the inner service takes
    /// `(Pinned<T>, Request<B>)` instead of finding the choice in the
    /// request's extensions, and a resumed request allocates nothing.
    pub fn hand_off_layer(self) -> Result<StickyHandOffLayer<T, B>, BuildError> {
        self.build().map(StickyHandOffLayer::from_sessions)
    }
}

/// The session half of [`StickyBuilder::build`]: checks the policy's
/// options and derives the token scope and the metrics label. The flags the
/// caller sets afterwards start off.
fn session_rules(
    policy: SessionPolicy,
    keys: KeySet,
    attributes: CookieAttributes,
    skew: Option<Duration>,
    refresh_after: Option<Duration>,
    scope: Option<String>,
) -> Result<(SessionRules, Arc<str>), BuildError> {
    attributes.check()?;
    let mut lifetime = Lifetime::for_policy(&policy);
    if let Some(skew) = skew {
        lifetime = lifetime.skew(skew);
    }
    if let Some(step) = refresh_after {
        match policy.idle_timeout() {
            None => return Err(BuildError::new(BuildErrorKind::RefreshWithoutIdleTimeout)),
            Some(idle) if step > idle || step.is_zero() => {
                return Err(BuildError::new(BuildErrorKind::RefreshOutOfRange {
                    idle_timeout: idle,
                    refresh_after: step,
                }));
            }
            Some(_) => lifetime = lifetime.refresh_after(step),
        }
    }
    let header = match policy.kind() {
        PersistenceType::Cookie => http::header::SET_COOKIE,
        PersistenceType::Header => {
            let name = HeaderName::from_bytes(policy.name().as_bytes())
                .map_err(|_| BuildError::new(BuildErrorKind::InvalidHeaderName))?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(BuildError::new(BuildErrorKind::ReservedHeader(name)));
            }
            name
        }
    };
    let (token_scope, label): (Vec<u8>, Arc<str>) = match scope {
        Some(scope) => (scope.as_bytes().to_vec(), scope.into()),
        None => (
            // Kept as it always was: tokens issued before the scope label
            // existed still verify.
            format!(
                "{:?}\0{}\0{}",
                policy.kind(),
                policy.name(),
                policy.cookie_path()
            )
            .into_bytes(),
            format!(
                "{}:{}:{}",
                match policy.kind() {
                    PersistenceType::Cookie => "cookie",
                    PersistenceType::Header => "header",
                },
                policy.name(),
                policy.cookie_path()
            )
            .into(),
        ),
    };
    let codec = TokenCodec::new(keys, token_scope);
    let cookie_name_plain = crate::carrier::CookieName::new(policy.name().as_bytes()).is_plain();
    let rules = SessionRules {
        policy,
        codec,
        lifetime,
        attributes,
        forward: false,
        header,
        cookie_name_plain,
        cache_private: false,
        remember_tokens: false,
        strict: false,
    };
    Ok((rules, label))
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

/// A layer configuration that cannot work; [`kind`](Self::kind) says why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    kind: BuildErrorKind,
}

/// Why [`StickyBuilder::build`] refused a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildErrorKind {
    /// `SameSite=None` without `Secure`: browsers reject such a cookie.
    SameSiteNoneWithoutSecure,
    /// `Partitioned` with [`Secure::Never`](crate::carrier::Secure::Never):
    /// browsers reject a partitioned cookie without `Secure`.
    PartitionedWithoutSecure,
    /// The cookie `Domain` is empty or has characters other than ASCII
    /// letters, digits, `-` and `.`.
    InvalidCookieDomain(String),
    /// [`refresh_after`](StickyBuilder::refresh_after) on a policy without
    /// an idle timeout.
    RefreshWithoutIdleTimeout,
    /// [`refresh_after`](StickyBuilder::refresh_after) is zero or longer
    /// than the idle timeout.
    RefreshOutOfRange {
        /// The policy's idle timeout.
        idle_timeout: Duration,
        /// What was asked for.
        refresh_after: Duration,
    },
    /// A header policy's name is not a valid header name.
    InvalidHeaderName,
    /// A header policy names a header the proxy or HTTP itself owns
    /// (`cookie`, `host`, `authorization`, hop-by-hop headers, ...).
    ReservedHeader(HeaderName),
}

impl BuildError {
    pub(crate) fn new(kind: BuildErrorKind) -> Self {
        BuildError { kind }
    }

    /// Why the configuration was refused.
    #[must_use]
    pub fn kind(&self) -> &BuildErrorKind {
        &self.kind
    }
}

impl From<BuildErrorKind> for BuildError {
    fn from(kind: BuildErrorKind) -> Self {
        BuildError::new(kind)
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid sticky session configuration: ")?;
        match &self.kind {
            BuildErrorKind::SameSiteNoneWithoutSecure => {
                f.write_str("SameSite=None requires Secure; browsers reject it otherwise")
            }
            BuildErrorKind::PartitionedWithoutSecure => {
                f.write_str("Partitioned requires Secure; browsers reject it otherwise")
            }
            BuildErrorKind::InvalidCookieDomain(d) => write!(f, "invalid cookie Domain {d:?}"),
            BuildErrorKind::RefreshWithoutIdleTimeout => {
                f.write_str("refresh_after needs a policy with an idle timeout")
            }
            BuildErrorKind::RefreshOutOfRange {
                idle_timeout,
                refresh_after,
            } => write!(
                f,
                "refresh_after must be between 1ms and the idle timeout ({idle_timeout}), got {refresh_after}"
            ),
            BuildErrorKind::InvalidHeaderName => {
                f.write_str("the session name is not a valid header name")
            }
            BuildErrorKind::ReservedHeader(name) => write!(
                f,
                "{name} cannot carry a session: the proxy or HTTP itself owns it"
            ),
        }
    }
}

impl std::error::Error for BuildError {}
