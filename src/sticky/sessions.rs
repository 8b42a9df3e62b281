use super::decision::{Decision, Issue, RequestRewrite};
use super::observe::Observer;
use super::{Outcome, RequestHead};
use crate::balance::{BackendId, Backends, Balance, Endpoint, Resolution, RoundRobin};
use crate::carrier::{
    CookieAttributes, CookieName, Secure, find_and_rewrite, find_cookie, header_values,
};
use crate::policy::{LifetimeType, PersistenceType, SessionPolicy};
use crate::token::{Clock, DecodeError, Lifetime, SessionToken, Timestamp, TokenCodec, Verdict};
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use std::fmt;
use std::sync::Arc;

pub(crate) type OnOutcome = Arc<dyn Fn(Outcome, Option<BackendId>) + Send + Sync>;

/// The session engine behind [`StickyLayer`](super::StickyLayer): decides,
/// per request, which backend serves it and what to write back.
///
/// Proxies that do not fit the tower `Layer` shape (Pingora, a retry loop
/// that needs to re-pin, ...) call it themselves:
///
/// * [`decide`](Self::decide) from a borrowed [`RequestHead`] (method, URI,
///   headers, TLS): nothing is changed, the [`Decision`] says what to change;
/// * [`route`](Self::route), [`route_parts`](Self::route_parts) or
///   [`route_headers`](Self::route_headers): the same, with the request's
///   session value already taken out;
/// * [`repin`](Self::repin): a new session after the chosen backend failed.
///
/// Then [`Decision::apply`] (or [`Issue`]'s parts) writes the response
/// headers. Cloning is cheap and shares everything.
pub struct StickySessions<T, B = RoundRobin> {
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
    /// Whether the policy's name is one a cookie pair can start with,
    /// checked once here rather than on every request.
    pub(super) cookie_name_plain: bool,
    pub(super) cache_private: bool,
    pub(super) remember_tokens: bool,
    /// [`StickyBuilder::strict`](super::StickyBuilder::strict).
    pub(super) strict: bool,
    pub(super) on_outcome: Option<OnOutcome>,
    pub(super) observer: Observer,
}

enum Judged<T> {
    /// The session goes on: its backend, outcome, token to re-issue, and
    /// when it began.
    Pinned(Arc<Endpoint<T>>, Outcome, Option<SessionToken>, Timestamp),
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

    /// Decides where one request goes, from its head alone: verifies its
    /// session value, resolves or picks the backend, and says how the
    /// request headers change before they go upstream (the session value
    /// taken out, unless told to forward it) and what to add to the
    /// response. Changes nothing. Never fails: a bad value is a new session,
    /// no backend is [`Outcome::NoBackend`].
    ///
    /// ```
    /// use http::{HeaderMap, Method, Uri};
    /// use tower_sticky::balance::{BackendId, Backends};
    /// use tower_sticky::policy::SessionPolicy;
    /// use tower_sticky::sticky::{Outcome, RequestHead, StickyBuilder};
    /// use tower_sticky::token::{KeySet, SigningKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let policy = SessionPolicy::cookie("Session-A")?;
    /// let keys = KeySet::new(SigningKey::new([7; 32])?);
    /// let pods: Backends<&str> = ["pod-a", "pod-b"].into_iter().map(|p| (BackendId::from_name(p), p, 1)).collect();
    /// let sessions = StickyBuilder::new(policy, keys, pods).build()?;
    ///
    /// let (method, uri) = (Method::GET, Uri::from_static("/"));
    /// let first = sessions.decide(RequestHead::new(&method, &uri, &HeaderMap::new()));
    /// assert_eq!(first.outcome(), Outcome::New);
    /// let set_cookie = first.issue().expect("a new session is written back").value().to_str()?;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("cookie", format!("theme=dark; {}", set_cookie.split(';').next().unwrap_or("")).parse()?);
    /// let again = sessions.decide(RequestHead::new(&method, &uri, &headers));
    /// assert_eq!(again.outcome(), Outcome::Resumed);
    /// assert_eq!(again.target(), first.target());
    /// // The session cookie is for the proxy: the backend gets the others.
    /// assert_eq!(again.rewrite().map(|r| r.values()), Some(&["theme=dark".parse()?][..]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn decide(&self, head: RequestHead<'_>) -> Decision<T> {
        let s = &*self.shared;
        let now = s.clock.now();
        let snapshot = s.backends.load();

        let mut rejected = Outcome::New;
        let mut pinned = None;
        let rewrite;
        {
            let mut judge = |value: &[u8]| match self.judge(value, now, &snapshot) {
                Judged::Pinned(e, o, t, since) => {
                    pinned = Some((e, o, t, since));
                    true
                }
                Judged::Rejected(o) => {
                    rejected = o;
                    false
                }
                Judged::NotText => false,
            };
            let headers = head.headers();
            let cookie = CookieName::checked(s.policy.name().as_bytes(), s.cookie_name_plain);
            rewrite = match (s.policy.kind(), s.forward) {
                (PersistenceType::Cookie, false) => {
                    find_and_rewrite(headers, cookie, &mut judge).map(RequestRewrite::cookies)
                }
                (PersistenceType::Cookie, true) => {
                    find_cookie(headers, cookie, &mut judge);
                    None
                }
                (PersistenceType::Header, forward) => {
                    header_values(headers, &s.header).any(|v| judge(v.as_bytes()));
                    (!forward && headers.contains_key(&s.header))
                        .then(|| RequestRewrite::remove(s.header.clone()))
                }
            };
        }
        match pinned {
            Some((endpoint, outcome, reissue, since)) => {
                let issue = reissue.map(|t| self.render(&t, now, head.is_tls()));
                let age = now.millis_since(since);
                self.decided(outcome, Some(endpoint), rewrite, issue, Some(age))
            }
            None if s.strict
                && matches!(rejected, Outcome::RepinnedDown | Outcome::RepinnedGone) =>
            {
                self.decided(Outcome::PinnedUnavailable, None, rewrite, None, None)
            }
            None => self.new_session(&head, rejected, rewrite, now, &snapshot),
        }
    }

    /// [`decide`](Self::decide) for a request, and its session value taken
    /// out of it (unless told to forward it). The client connection counts
    /// as TLS when the request carries the
    /// [`ClientTls`](crate::carrier::ClientTls) extension or its URI has the
    /// `https` scheme.
    pub fn route<Body>(&self, req: &mut Request<Body>) -> Decision<T> {
        let mut decision = self.decide(RequestHead::of(req));
        decision.rewrite_request(req.headers_mut());
        decision
    }

    /// [`route`](Self::route) for a request's [`Parts`].
    pub fn route_parts(&self, parts: &mut Parts) -> Decision<T> {
        let mut decision = self.decide(RequestHead::from_parts(
            &parts.method,
            &parts.uri,
            &parts.headers,
            &parts.extensions,
        ));
        decision.rewrite_request(&mut parts.headers);
        decision
    }

    /// [`route`](Self::route) for a proxy that holds the headers apart from
    /// the rest of the request.
    pub fn route_headers(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &mut HeaderMap,
        tls: bool,
    ) -> Decision<T> {
        let mut decision = self.decide(RequestHead::new(method, uri, headers).tls(tls));
        decision.rewrite_request(headers);
        decision
    }

    /// Starts a new session for the request on a freshly picked backend,
    /// reporting `outcome` (for example [`Outcome::RepinnedDown`] after the
    /// proxy found the pinned backend refusing connections and marked it
    /// down). The decision has no request rewrite: the request's session
    /// value was already taken out by the first decision.
    pub fn repin(&self, head: RequestHead<'_>, outcome: Outcome) -> Decision<T> {
        let now = self.shared.clock.now();
        let snapshot = self.shared.backends.load();
        self.new_session(&head, outcome, None, now, &snapshot)
    }

    fn new_session(
        &self,
        head: &RequestHead<'_>,
        outcome: Outcome,
        rewrite: Option<RequestRewrite>,
        now: Timestamp,
        snapshot: &crate::balance::Snapshot<T>,
    ) -> Decision<T> {
        let picked = self
            .shared
            .balancer
            .pick(&head.pick_context(), snapshot)
            .and_then(|i| snapshot.endpoints().get(i))
            .filter(|e| e.takes_new_sessions());
        match picked {
            Some(endpoint) => {
                let token = SessionToken::new(endpoint.id(), now);
                let issue = self.render(&token, now, head.is_tls());
                self.decided(
                    outcome,
                    Some(Arc::clone(endpoint)),
                    rewrite,
                    Some(issue),
                    None,
                )
            }
            None => self.decided(Outcome::NoBackend, None, rewrite, None, None),
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
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(DecodeError::Malformed) => return Judged::Rejected(Outcome::Malformed),
            Err(DecodeError::BadSignature) => return Judged::Rejected(Outcome::Forged),
        };
        let token = decoded.token();
        let refresh = match s.lifetime.check(&token, now) {
            Verdict::Valid { refresh } => refresh,
            Verdict::Expired => return Judged::Rejected(Outcome::Expired),
            Verdict::IdleExpired => return Judged::Rejected(Outcome::IdleExpired),
            Verdict::Invalid => return Judged::Rejected(Outcome::FutureDated),
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
                Judged::Pinned(Arc::clone(e), outcome, reissue, token.issued_at())
            }
            Resolution::Down => Judged::Rejected(Outcome::RepinnedDown),
            Resolution::Gone => Judged::Rejected(Outcome::RepinnedGone),
        }
    }

    fn render(&self, token: &SessionToken, now: Timestamp, tls: bool) -> Issue {
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
                    Secure::Auto => tls,
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
        rewrite: Option<RequestRewrite>,
        issue: Option<Issue>,
        session_age_ms: Option<u64>,
    ) -> Decision<T> {
        let backend = endpoint.as_ref().map(|e| e.id());
        self.shared
            .observer
            .observe(outcome, backend, session_age_ms);
        if let Some(f) = &self.shared.on_outcome {
            f(outcome, backend);
        }
        Decision {
            outcome,
            endpoint,
            rewrite,
            issue,
        }
    }
}
