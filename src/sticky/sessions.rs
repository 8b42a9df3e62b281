use super::{Outcome, Pinned};
use crate::balance::{BackendId, Backends, Balance, Endpoint, PickContext, Resolution};
use crate::carrier::{
    ClientTls, CookieAttributes, Secure, find_and_strip, find_cookie, header_values,
};
use crate::policy::{LifetimeType, PersistenceType, SessionPolicy};
use crate::token::{Clock, Lifetime, SessionToken, Timestamp, TokenCodec, Verdict};
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use std::fmt;
use std::sync::Arc;

pub(crate) type OnOutcome = Arc<dyn Fn(Outcome, Option<BackendId>) + Send + Sync>;

/// The session engine behind [`StickyLayer`](super::StickyLayer): decides,
/// per request, which backend serves it and what to write back.
///
/// Proxies that do not fit the tower `Layer` shape (a retry loop that needs
/// to re-pin, say) call [`route`](Self::route) and
/// [`Decision::apply`] themselves. Cloning is cheap and shares everything.
pub struct StickySessions<T, B> {
    shared: Arc<Shared<T, B>>,
}

impl<T, B> Clone for StickySessions<T, B> {
    fn clone(&self) -> Self {
        StickySessions {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T, B> fmt::Debug for StickySessions<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StickySessions")
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared<T, B> {
    pub(super) policy: SessionPolicy,
    pub(super) codec: TokenCodec,
    pub(super) lifetime: Lifetime,
    pub(super) backends: Backends<T>,
    pub(super) balancer: B,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) attributes: CookieAttributes,
    pub(super) forward: bool,
    pub(super) header: HeaderName,
    pub(super) cache_private: bool,
    pub(super) remember_tokens: bool,
    pub(super) on_outcome: Option<OnOutcome>,
    #[cfg(feature = "metrics")]
    pub(super) counters: [metrics::Counter; Outcome::ALL.len()],
}

/// One counter per outcome, registered once when the layer is built (so the
/// recorder must be installed before).
#[cfg(feature = "metrics")]
pub(super) fn counters(policy: &SessionPolicy) -> [metrics::Counter; Outcome::ALL.len()] {
    Outcome::ALL.map(|o| {
        metrics::counter!(
            "tower_sticky_requests_total",
            "session" => policy.name().to_owned(),
            "outcome" => o.as_str()
        )
    })
}

/// What to do with one request: where it goes, what happened to its
/// session, and the header (if any) to add to the response.
#[derive(Debug)]
#[must_use]
pub struct Decision<T> {
    outcome: Outcome,
    endpoint: Option<Arc<Endpoint<T>>>,
    issue: Option<Issue>,
}

impl<T> Decision<T> {
    /// What happened to the session.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }

    /// The chosen backend; `None` means no backend can take the request
    /// (answer 503).
    pub fn endpoint(&self) -> Option<&Arc<Endpoint<T>>> {
        self.endpoint.as_ref()
    }

    /// The chosen backend and outcome as the request extension the layer
    /// inserts.
    pub fn pinned(&self) -> Option<Pinned<T>> {
        self.endpoint
            .as_ref()
            .map(|e| Pinned::new(Arc::clone(e), self.outcome))
    }

    /// The `Set-Cookie` or session header to add to the response, if the
    /// session was created or re-issued.
    pub fn issue(&self) -> Option<&Issue> {
        self.issue.as_ref()
    }

    pub(crate) fn into_parts(self) -> (Outcome, Option<Arc<Endpoint<T>>>, Option<Issue>) {
        (self.outcome, self.endpoint, self.issue)
    }

    /// Adds the session header (if any) to a response's headers.
    pub fn apply(self, response: &mut HeaderMap) {
        if let Some(issue) = self.issue {
            issue.apply(response);
        }
    }
}

/// A session value to write back: `Set-Cookie: …` or `<name>: <token>`.
#[derive(Clone, Debug)]
pub struct Issue {
    name: HeaderName,
    value: HeaderValue,
    cache_private: bool,
}

impl Issue {
    /// The header name (`set-cookie`, or the session header).
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The header value.
    pub fn value(&self) -> &HeaderValue {
        &self.value
    }

    /// Adds the header to a response, next to any the application set.
    pub fn apply(self, response: &mut HeaderMap) {
        if self.cache_private && !response.contains_key(http::header::CACHE_CONTROL) {
            response.insert(
                http::header::CACHE_CONTROL,
                HeaderValue::from_static("private"),
            );
        }
        if self.name == http::header::SET_COOKIE {
            response.append(self.name, self.value);
        } else {
            response.insert(self.name, self.value);
        }
    }
}

enum Judged<T> {
    Pinned(Arc<Endpoint<T>>, Outcome, Option<SessionToken>),
    Rejected(Outcome),
    /// Not UTF-8: not a value at all, as `cookie_values` would skip it.
    NotText,
}

impl<T: Send + Sync + 'static, B: Balance<T>> StickySessions<T, B> {
    pub(crate) fn from_shared(shared: Shared<T, B>) -> Self {
        StickySessions {
            shared: Arc::new(shared),
        }
    }

    /// The policy the sessions follow.
    pub fn policy(&self) -> &SessionPolicy {
        &self.shared.policy
    }

    /// The backends; change membership or states through it at run time.
    pub fn backends(&self) -> &Backends<T> {
        &self.shared.backends
    }

    /// Routes one request: verifies its session value, resolves or picks the
    /// backend, and removes the session value from the request unless told to
    /// forward it. Never fails: a bad value is a new session, no backend is
    /// [`Outcome::NoBackend`].
    pub fn route<Body>(&self, req: &mut Request<Body>) -> Decision<T> {
        let s = &*self.shared;
        let now = s.clock.now();
        let snapshot = s.backends.snapshot();

        let mut rejected = Outcome::New;
        let mut pinned = None;
        {
            let mut judge = |value: &[u8]| match self.judge(value, now, &snapshot) {
                Judged::Pinned(e, o, t) => {
                    pinned = Some((e, o, t));
                    true
                }
                Judged::Rejected(o) => {
                    rejected = o;
                    false
                }
                Judged::NotText => false,
            };
            match (s.policy.kind(), s.forward) {
                (PersistenceType::Cookie, false) => {
                    find_and_strip(req.headers_mut(), s.policy.name(), &mut judge);
                }
                (PersistenceType::Cookie, true) => {
                    find_cookie(req.headers(), s.policy.name(), &mut judge);
                }
                (PersistenceType::Header, forward) => {
                    header_values(req.headers(), &s.header).any(|v| judge(v.as_bytes()));
                    if !forward {
                        req.headers_mut().remove(&s.header);
                    }
                }
            }
        }
        match pinned {
            Some((endpoint, outcome, reissue)) => {
                let issue = reissue.map(|t| self.render(&t, now, req));
                self.decided(outcome, Some(endpoint), issue)
            }
            None => self.new_session(req, rejected, now, &snapshot),
        }
    }

    /// Starts a new session for `req` on a freshly picked backend, reporting
    /// `outcome` (for example [`Outcome::RepinnedDown`] after the proxy found
    /// the pinned backend refusing connections and marked it down).
    pub fn repin<Body>(&self, req: &Request<Body>, outcome: Outcome) -> Decision<T> {
        let now = self.shared.clock.now();
        let snapshot = self.shared.backends.snapshot();
        self.new_session(req, outcome, now, &snapshot)
    }

    fn new_session<Body>(
        &self,
        req: &Request<Body>,
        outcome: Outcome,
        now: Timestamp,
        snapshot: &crate::balance::Snapshot<T>,
    ) -> Decision<T> {
        let ctx = PickContext {
            method: req.method(),
            uri: req.uri(),
            headers: req.headers(),
        };
        let picked = self
            .shared
            .balancer
            .pick(&ctx, snapshot)
            .and_then(|i| snapshot.endpoints().get(i))
            .filter(|e| e.takes_new_sessions());
        match picked {
            Some(endpoint) => {
                let token = SessionToken::new(endpoint.id(), now);
                let issue = self.render(&token, now, req);
                self.decided(outcome, Some(Arc::clone(endpoint)), Some(issue))
            }
            None => self.decided(Outcome::NoBackend, None, None),
        }
    }

    fn judge(
        &self,
        value: &[u8],
        now: Timestamp,
        snapshot: &crate::balance::Snapshot<T>,
    ) -> Judged<T> {
        let s = &*self.shared;
        let decoded = match s.remember_tokens.then(|| s.codec.recall(value)).flatten() {
            Some(decoded) => Ok(decoded),
            None => {
                let Ok(value) = std::str::from_utf8(value) else {
                    return Judged::NotText;
                };
                if s.remember_tokens {
                    s.codec.decode_and_remember(value)
                } else {
                    s.codec.decode(value)
                }
            }
        };
        let Ok(decoded) = decoded else {
            return Judged::Rejected(Outcome::Invalid);
        };
        let token = decoded.token();
        let refresh = match s.lifetime.check(&token, now) {
            Verdict::Valid { refresh } => refresh,
            Verdict::Expired => return Judged::Rejected(Outcome::Expired),
            Verdict::IdleExpired => return Judged::Rejected(Outcome::IdleExpired),
            Verdict::Invalid => return Judged::Rejected(Outcome::Invalid),
        };
        match s.balancer.resolve(snapshot, token.backend()) {
            Resolution::Pinned(e) => {
                let (outcome, reissue) = if decoded.signed_by_old_key() {
                    (Outcome::Rekeyed, Some(token.touched(now)))
                } else if refresh {
                    (Outcome::Refreshed, Some(token.touched(now)))
                } else {
                    (Outcome::Resumed, None)
                };
                Judged::Pinned(Arc::clone(e), outcome, reissue)
            }
            Resolution::Down => Judged::Rejected(Outcome::RepinnedDown),
            Resolution::Gone => Judged::Rejected(Outcome::RepinnedGone),
        }
    }

    fn render<Body>(&self, token: &SessionToken, now: Timestamp, req: &Request<Body>) -> Issue {
        let s = &*self.shared;
        let encoded = if s.remember_tokens {
            s.codec.encode_remembered(token)
        } else {
            s.codec.encode(token)
        };
        let value = match s.policy.kind() {
            PersistenceType::Cookie => {
                let max_age = match s.policy.lifetime() {
                    LifetimeType::Permanent => s.lifetime.remaining_secs(token, now),
                    LifetimeType::Session => None,
                };
                let secure = match s.attributes.secure {
                    Secure::Always => true,
                    Secure::Never => false,
                    Secure::Auto => {
                        req.extensions().get::<ClientTls>().is_some()
                            || req.uri().scheme() == Some(&http::uri::Scheme::HTTPS)
                    }
                };
                crate::carrier::render_set_cookie(
                    s.policy.name(),
                    encoded.as_str(),
                    max_age,
                    s.policy.cookie_path(),
                    &s.attributes,
                    secure,
                )
            }
            PersistenceType::Header => {
                HeaderValue::from_str(encoded.as_str()).expect("base64url is a valid header value")
            }
        };
        Issue {
            name: s.header.clone(),
            value,
            cache_private: s.cache_private && s.policy.kind() == PersistenceType::Cookie,
        }
    }

    fn decided(
        &self,
        outcome: Outcome,
        endpoint: Option<Arc<Endpoint<T>>>,
        issue: Option<Issue>,
    ) -> Decision<T> {
        #[cfg(feature = "metrics")]
        self.shared.counters[outcome.index()].increment(1);
        if let Some(f) = &self.shared.on_outcome {
            f(outcome, endpoint.as_ref().map(|e| e.id()));
        }
        Decision {
            outcome,
            endpoint,
            issue,
        }
    }
}
