use super::{Outcome, Pinned};
use crate::balance::{Endpoint, InFlight};
use crate::carrier::KeptCookies;
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;

/// What to do with one request: where it goes, how its headers change
/// before they go upstream, and what to add to the response.
///
/// A decision is made from a borrowed request head and changes nothing by
/// itself. Apply its parts where the proxy holds them:
/// [`rewrite`](Self::rewrite) to the request going upstream,
/// [`session_header`](Self::session_header) to the response going back, and hold
/// [`in_flight`](Self::in_flight) until the response body ends. A proxy
/// that chooses the backend in one callback and writes the response in
/// another takes the decision apart with [`into_parts`](Self::into_parts)
/// or the `take_*` methods.
#[derive(Debug)]
#[must_use]
pub struct Decision<T> {
    pub(super) outcome: Outcome,
    pub(super) endpoint: Option<Arc<Endpoint<T>>>,
    pub(super) rewrite: Option<RequestRewrite>,
    pub(super) issue: Option<SessionHeader>,
}

/// A [`Decision`] taken apart; see [`Decision::into_parts`].
#[derive(Debug)]
#[non_exhaustive]
pub struct DecisionParts<T> {
    /// What happened to the session.
    pub outcome: Outcome,
    /// The chosen backend; `None`: no backend can take the request.
    pub endpoint: Option<Arc<Endpoint<T>>>,
    /// The change to the request headers before they go upstream.
    pub rewrite: Option<RequestRewrite>,
    /// The headers to add to the response.
    pub session_header: Option<SessionHeader>,
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

    /// What the proxy needs to reach the chosen backend.
    pub fn target(&self) -> Option<&T> {
        self.endpoint.as_deref().map(Endpoint::target)
    }

    /// The chosen backend and outcome as the request extension the layer
    /// inserts.
    pub fn pinned(&self) -> Option<Pinned<T>> {
        self.endpoint
            .as_ref()
            .map(|e| Pinned::new(Arc::clone(e), self.outcome))
    }

    /// Starts counting the request in flight on the chosen backend (what
    /// [`PowerOfTwoChoices`](crate::balance::PowerOfTwoChoices) compares).
    /// Keep the guard until the response has been sent, body included: wrap
    /// the body in an [`InFlightBody`](super::InFlightBody), or move the
    /// guard into the task that streams it (a WebSocket tunnel, say).
    pub fn in_flight(&self) -> Option<InFlight>
    where
        T: Send + Sync + 'static,
    {
        self.endpoint.clone().map(InFlight::start)
    }

    /// The change to make to the request headers before they go upstream
    /// (the session cookie or header taken out), if any.
    pub fn rewrite(&self) -> Option<&RequestRewrite> {
        self.rewrite.as_ref()
    }

    /// The `Set-Cookie` or session header to add to the response, if the
    /// session was created or re-issued.
    pub fn session_header(&self) -> Option<&SessionHeader> {
        self.issue.as_ref()
    }

    /// Takes the request rewrite out, leaving `None`.
    pub fn take_rewrite(&mut self) -> Option<RequestRewrite> {
        self.rewrite.take()
    }

    /// Takes the response headers out, leaving `None`.
    pub fn take_session_header(&mut self) -> Option<SessionHeader> {
        self.issue.take()
    }

    /// The old name of [`session_header`](Self::session_header).
    #[deprecated(
        since = "0.1.0",
        note = "renamed `session_header`: `Issue` read like a problem"
    )]
    pub fn issue(&self) -> Option<&SessionHeader> {
        self.session_header()
    }

    /// The old name of [`take_session_header`](Self::take_session_header).
    #[deprecated(since = "0.1.0", note = "renamed `take_session_header`")]
    pub fn take_issue(&mut self) -> Option<SessionHeader> {
        self.take_session_header()
    }

    /// Takes the decision apart.
    pub fn into_parts(self) -> DecisionParts<T> {
        DecisionParts {
            outcome: self.outcome,
            endpoint: self.endpoint,
            rewrite: self.rewrite,
            session_header: self.issue,
        }
    }

    /// Makes the request rewrite (if any) on a request's headers.
    pub fn rewrite_request(&mut self, request: &mut HeaderMap) {
        if let Some(rewrite) = self.rewrite.take() {
            rewrite.apply(request);
        }
    }

    /// Adds the session header (if any) to a response's headers.
    pub fn apply(self, response: &mut HeaderMap) {
        if let Some(issue) = self.issue {
            issue.apply(response);
        }
    }
}

/// How the request headers change before they go upstream: every value of
/// [`name`](Self::name) is replaced by [`values`](Self::values) (none: the
/// header is removed). For a cookie policy, `Cookie` keeps the client's
/// other cookies; for a header policy, the session header goes.
///
/// [`apply`](Self::apply) does it on an [`http::HeaderMap`]; a proxy with
/// its own header type removes `name` and appends each value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRewrite {
    kind: RewriteKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum RewriteKind {
    Cookies(KeptCookies),
    Remove(HeaderName),
}

impl RequestRewrite {
    pub(super) fn cookies(kept: KeptCookies) -> Self {
        RequestRewrite {
            kind: RewriteKind::Cookies(kept),
        }
    }

    pub(super) fn remove(name: HeaderName) -> Self {
        RequestRewrite {
            kind: RewriteKind::Remove(name),
        }
    }

    /// The header that changes: `cookie`, or the session header.
    #[must_use]
    pub fn name(&self) -> &HeaderName {
        match &self.kind {
            RewriteKind::Cookies(_) => &COOKIE,
            RewriteKind::Remove(name) => name,
        }
    }

    /// The values that replace all of the header's values, in order; empty
    /// when the header is removed.
    #[must_use]
    pub fn values(&self) -> &[HeaderValue] {
        match &self.kind {
            RewriteKind::Cookies(kept) => kept.as_slice(),
            RewriteKind::Remove(_) => &[],
        }
    }

    /// Makes the change on `headers`.
    pub fn apply(self, headers: &mut HeaderMap) {
        match self.kind {
            RewriteKind::Cookies(kept) => kept.apply(headers),
            RewriteKind::Remove(name) => {
                headers.remove(name);
            }
        }
    }
}

/// A session value to write back: `Set-Cookie: …` or `<name>: <token>`,
/// and (for cookies, unless turned off) `Cache-Control: private` when the
/// response has no `Cache-Control` of its own, so that a shared cache never
/// hands one client's session to another.
///
/// [`apply`](Self::apply) writes it into an [`http::HeaderMap`]; a proxy
/// with its own header type does the same from [`name`](Self::name),
/// [`value`](Self::value), [`appends`](Self::appends) and
/// [`cache_private`](Self::cache_private):
///
/// ```
/// # use http::HeaderMap;
/// # fn write(header: tower_sticky::sticky::SessionHeader, response: &mut HeaderMap) {
/// if header.cache_private(response.contains_key("cache-control")) {
///     response.insert("cache-control", "private".parse().unwrap());
/// }
/// if header.appends() {
///     response.append(header.name().clone(), header.value().clone());
/// } else {
///     response.insert(header.name().clone(), header.value().clone());
/// }
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SessionHeader {
    pub(super) name: HeaderName,
    pub(super) value: HeaderValue,
    pub(super) cache_private: bool,
}

/// The old name of [`SessionHeader`].
#[deprecated(
    since = "0.1.0",
    note = "renamed `SessionHeader`: `Issue` read like a problem"
)]
pub type Issue = SessionHeader;

impl SessionHeader {
    /// The header name (`set-cookie`, or the session header).
    #[must_use]
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The header value.
    #[must_use]
    pub fn value(&self) -> &HeaderValue {
        &self.value
    }

    /// Whether the header is appended next to any of the same name the
    /// application set (`Set-Cookie`) rather than replacing them (the
    /// session header).
    #[must_use]
    pub fn appends(&self) -> bool {
        self.name == SET_COOKIE
    }

    /// Whether to add `Cache-Control: private` to a response that has
    /// (`response_has_cache_control`) or lacks one: only when it lacks one,
    /// and only for a cookie, unless
    /// [`StickyBuilder::cache_private`](super::StickyBuilder::cache_private)
    /// turned it off.
    #[must_use]
    pub fn cache_private(&self, response_has_cache_control: bool) -> bool {
        self.cache_private && !response_has_cache_control
    }

    /// Adds the header to a response, next to any the application set.
    ///
    /// One session cookie, always: when the response already sets this
    /// session's cookie (the inner service re-pinned the request with
    /// [`StickySessions::repin`](super::StickySessions::repin) and wrote its
    /// newer cookie), that one stays and this one is dropped, since a
    /// browser keeps the last of two and this one is stale.
    pub fn apply(self, response: &mut HeaderMap) {
        if self.appends() && self.already_set(response) {
            return;
        }
        if self.cache_private(response.contains_key(CACHE_CONTROL)) {
            response.insert(CACHE_CONTROL, HeaderValue::from_static("private"));
        }
        if self.appends() {
            response.append(self.name, self.value);
        } else {
            response.insert(self.name, self.value);
        }
    }

    /// Whether `response` already has a `Set-Cookie` for this cookie name.
    fn already_set(&self, response: &HeaderMap) -> bool {
        let name = cookie_name(self.value.as_bytes());
        response
            .get_all(SET_COOKIE)
            .iter()
            .any(|v| cookie_name(v.as_bytes()) == name)
    }
}

/// The cookie name of a `Set-Cookie` value: the bytes before the first
/// `=`, without surrounding blanks.
fn cookie_name(set_cookie: &[u8]) -> &[u8] {
    let end = set_cookie
        .iter()
        .position(|&b| b == b'=')
        .unwrap_or(set_cookie.len());
    set_cookie[..end].trim_ascii()
}
