use super::decision::{Decision, RequestRewrite, SessionHeader};
use super::observe::Observer;
use super::{Outcome, RequestHead};
use crate::balance::{
    BackendId, BackendState, Backends, Balance, Endpoint, Resolution, RoundRobin, Snapshot,
    Weighted,
};
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
/// Then [`Decision::apply`] (or [`SessionHeader`]'s parts) writes the response
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
            .field("policy", &self.shared.rules.as_ref().map(|r| &r.policy))
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared<T, B> {
    /// `None`: plain mode, a rule without `sessionPersistence`.
    pub(super) rules: Option<SessionRules>,
    pub(super) backends: Backends<T>,
    pub(super) balancer: B,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) on_outcome: Option<OnOutcome>,
    pub(super) observer: Observer,
    /// Where the engine's own picks (the panic rule) are on the weighted
    /// sequence.
    pub(super) fallback: Weighted,
}

/// What sessions need, checked once by the builder.
pub(crate) struct SessionRules {
    pub(super) policy: SessionPolicy,
    pub(super) codec: TokenCodec,
    pub(super) lifetime: Lifetime,
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

    /// The policy the sessions follow; `None` in plain mode
    /// ([`StickyBuilder::plain`](super::StickyBuilder::plain)).
    pub fn policy(&self) -> Option<&SessionPolicy> {
        self.shared.rules.as_ref().map(|r| &r.policy)
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
    /// let set_cookie = first.session_header().expect("a new session is written back").value().to_str()?;
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
        let snapshot = s.backends.load();
        let Some(r) = &s.rules else {
            return self.pick_plain(&head, &snapshot, &[]);
        };
        let now = s.clock.now();

        let mut rejected = Outcome::New;
        let mut pinned = None;
        let rewrite;
        {
            let mut judge = |value: &[u8]| match self.judge(r, value, now, &snapshot) {
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
            let cookie = CookieName::checked(r.policy.name().as_bytes(), r.cookie_name_plain);
            rewrite = match (r.policy.kind(), r.forward) {
                (PersistenceType::Cookie, false) => {
                    find_and_rewrite(headers, cookie, &mut judge).map(RequestRewrite::cookies)
                }
                (PersistenceType::Cookie, true) => {
                    find_cookie(headers, cookie, &mut judge);
                    None
                }
                (PersistenceType::Header, forward) => {
                    header_values(headers, &r.header).any(|v| judge(v.as_bytes()));
                    (!forward && headers.contains_key(&r.header))
                        .then(|| RequestRewrite::remove(r.header.clone()))
                }
            };
        }
        match pinned {
            Some((endpoint, outcome, reissue, since)) => {
                let issue = reissue.map(|t| self.render(r, &t, now, head.is_tls()));
                let age = now.millis_since(since);
                self.decided(outcome, Some(endpoint), rewrite, issue, Some(age))
            }
            None if r.strict
                && matches!(rejected, Outcome::RepinnedDown | Outcome::RepinnedGone) =>
            {
                self.decided(Outcome::PinnedUnavailable, None, rewrite, None, None)
            }
            None => self.new_session(&head, rejected, rewrite, now, &snapshot, &[]),
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
        self.repin_excluding(head, outcome, &[])
    }

    /// [`repin`](Self::repin) on a backend other than those in `tried` (the
    /// backends the request already failed on, see
    /// [`Attempts::tried`](crate::failover::Attempts::tried)): one new
    /// session, one new cookie. The balancer is asked once
    /// ([`Balance::pick_excluding`]), so weights and load still decide;
    /// whatever the balancer, a different backend is found whenever one
    /// takes new sessions, and [`Outcome::NoBackend`] is returned when none
    /// does. In plain mode, the decision is [`Outcome::Picked`] with nothing
    /// to write back.
    ///
    /// ```
    /// use http::{HeaderMap, Method, Uri};
    /// use tower_sticky::balance::{BackendId, Backends, Weighted};
    /// use tower_sticky::policy::SessionPolicy;
    /// use tower_sticky::sticky::{Outcome, RequestHead, StickyBuilder};
    /// use tower_sticky::token::{KeySet, SigningKey};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let pods: Backends<&str> = [("pod-a", 98), ("pod-b", 1), ("pod-c", 1)]
    ///     .into_iter()
    ///     .map(|(p, w)| (BackendId::from_name(p), p, w))
    ///     .collect();
    /// let keys = KeySet::new(SigningKey::new([7; 32])?);
    /// let sessions = StickyBuilder::new(SessionPolicy::cookie("Session-A")?, keys, pods)
    ///     .balancer(Weighted::new())
    ///     .build()?;
    ///
    /// let (method, uri, headers) = (Method::GET, Uri::from_static("/"), HeaderMap::new());
    /// let head = RequestHead::new(&method, &uri, &headers);
    /// // pod-a (weight 98) failed: the retry goes elsewhere, with a new cookie.
    /// let tried = [BackendId::from_name("pod-a")];
    /// for _ in 0..20 {
    ///     let retry = sessions.repin_excluding(head, Outcome::RepinnedDown, &tried);
    ///     assert_ne!(retry.target(), Some(&"pod-a"));
    ///     assert!(retry.session_header().is_some());
    /// }
    /// let all = ["pod-a", "pod-b", "pod-c"].map(BackendId::from_name);
    /// assert_eq!(sessions.repin_excluding(head, Outcome::RepinnedDown, &all).outcome(), Outcome::NoBackend);
    /// # Ok(())
    /// # }
    /// ```
    pub fn repin_excluding(
        &self,
        head: RequestHead<'_>,
        outcome: Outcome,
        tried: &[BackendId],
    ) -> Decision<T> {
        let snapshot = self.shared.backends.load();
        if self.shared.rules.is_none() {
            return self.pick_plain(&head, &snapshot, tried);
        }
        let now = self.shared.clock.now();
        self.new_session(&head, outcome, None, now, &snapshot, tried)
    }

    /// Plain mode: a backend, no session.
    fn pick_plain(
        &self,
        head: &RequestHead<'_>,
        snapshot: &Snapshot<T>,
        tried: &[BackendId],
    ) -> Decision<T> {
        match self.pick_new(head, snapshot, tried) {
            Some(e) => self.decided(Outcome::Picked, Some(Arc::clone(e)), None, None, None),
            None => self.decided(Outcome::NoBackend, None, None, None, None),
        }
    }

    /// A backend for a new session, not in `tried`: the balancer's pick;
    /// when there is none and the set is in panic (every backend that could
    /// serve is ejected), one of the ejected ones, by weight.
    fn pick_new<'s>(
        &self,
        head: &RequestHead<'_>,
        snapshot: &'s Snapshot<T>,
        tried: &[BackendId],
    ) -> Option<&'s Arc<Endpoint<T>>> {
        let s = &*self.shared;
        let picked = if tried.is_empty() {
            s.balancer.pick(&head.pick_context(), snapshot)
        } else {
            s.balancer
                .pick_excluding(&head.pick_context(), snapshot, tried)
        };
        if let Some(e) = picked
            .and_then(|i| snapshot.endpoints().get(i))
            .filter(|e| e.takes_new_sessions() && !tried.contains(&e.id()))
        {
            return Some(e);
        }
        if !snapshot.in_panic() {
            return None;
        }
        let i = s.fallback.pick_where(snapshot, |e| {
            e.takes_new_sessions_ignoring_health() && !tried.contains(&e.id())
        })?;
        snapshot.endpoints().get(i)
    }

    fn new_session(
        &self,
        head: &RequestHead<'_>,
        outcome: Outcome,
        rewrite: Option<RequestRewrite>,
        now: Timestamp,
        snapshot: &Snapshot<T>,
        tried: &[BackendId],
    ) -> Decision<T> {
        let rules = self.shared.rules.as_ref();
        match (self.pick_new(head, snapshot, tried), rules) {
            (Some(endpoint), Some(r)) => {
                let token = SessionToken::new(endpoint.id(), now);
                let issue = self.render(r, &token, now, head.is_tls());
                self.decided(
                    outcome,
                    Some(Arc::clone(endpoint)),
                    rewrite,
                    Some(issue),
                    None,
                )
            }
            (Some(e), None) => self.decided(Outcome::Picked, Some(Arc::clone(e)), None, None, None),
            (None, _) => self.decided(Outcome::NoBackend, None, rewrite, None, None),
        }
    }

    fn judge(
        &self,
        s: &SessionRules,
        value: &[u8],
        now: Timestamp,
        snapshot: &Snapshot<T>,
    ) -> Judged<T> {
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
        match self.shared.balancer.resolve(snapshot, token.backend()) {
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
            // The panic rule: when every backend that could serve is
            // ejected, none is, and sessions on them stay where they are.
            Resolution::Down => match snapshot.get(token.backend()) {
                Some(e) if e.health().membership() != BackendState::Down && snapshot.in_panic() => {
                    Judged::Pinned(Arc::clone(e), Outcome::Resumed, None, token.issued_at())
                }
                _ => Judged::Rejected(Outcome::RepinnedDown),
            },
            Resolution::Gone => Judged::Rejected(Outcome::RepinnedGone),
        }
    }

    fn render(
        &self,
        s: &SessionRules,
        token: &SessionToken,
        now: Timestamp,
        tls: bool,
    ) -> SessionHeader {
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
        SessionHeader {
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
        issue: Option<SessionHeader>,
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
