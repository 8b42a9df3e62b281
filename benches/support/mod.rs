//! What `layer.rs` and `allocations.rs` share: one engine configuration and
//! one request per path, so both benches measure exactly the same work.
//!
//! The clock is a [`ManualClock`] that never moves, so a token minted as
//! "seen 1 s ago" stays resumable and one "seen 10 s ago" stays due for a
//! refresh for the whole run: every iteration takes the same path.

use http::{Request, Response};
use std::cell::RefCell;
use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use tower::Service;
use tower_sticky::balance::{BackendId, Backends, RoundRobin};
use tower_sticky::duration::Duration;
use tower_sticky::policy::SessionPolicy;
use tower_sticky::sticky::{Outcome, Pinned, StickyBuilder, StickySessions};
use tower_sticky::token::{KeySet, ManualClock, SessionToken, SigningKey, Timestamp, TokenCodec};

/// The fixed "now" of every bench: 2023-11-14, in wall-clock milliseconds.
pub const NOW: u64 = 1_700_000_000_000;
pub const KEY: [u8; 32] = *b"benchmark key, 32 bytes or more!";
/// Tokens are bound to a scope; the bench sets its own so that it can mint
/// tokens with chosen times through a codec of its own.
pub const SCOPE: &str = "bench/route/rule-0";
pub const COOKIE: &str = "Session-A";

/// The request paths the issue asks to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Valid token among other cookies: verify, resolve, no `Set-Cookie`.
    Resumed,
    /// No session cookie (other cookies present): pick, sign, `Set-Cookie`.
    New,
    /// Valid token last seen past the refresh step: re-sign, `Set-Cookie`.
    IdleRefresh,
    /// One character of a valid token changed: rejected, then a new session.
    Tampered,
}

impl Path {
    pub const ALL: [Path; 4] = [Path::Resumed, Path::New, Path::IdleRefresh, Path::Tampered];

    /// What the engine must report for this path; [`Fixture::check`]
    /// makes sure each bench measures the path it claims to.
    pub fn outcome(self) -> Outcome {
        match self {
            Path::Resumed => Outcome::Resumed,
            Path::New => Outcome::New,
            Path::IdleRefresh => Outcome::Refreshed,
            Path::Tampered => Outcome::Forged,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Path::Resumed => "resumed",
            Path::New => "new",
            Path::IdleRefresh => "idle_refresh",
            Path::Tampered => "tampered",
        }
    }
}

/// An engine over `backends` serving backends and the requests to feed it.
pub struct Fixture {
    pub sessions: StickySessions<usize, RoundRobin>,
    pub codec: TokenCodec,
    /// The backend the minted tokens are pinned to (the last one, so that a
    /// scan would be at its slowest).
    pub pinned: BackendId,
}

/// The seed's cookie with HAProxy-like limits (`maxlife 60s`, `maxidle 30s`),
/// so that both the absolute and the idle checks run; refresh step 7.5 s.
pub fn fixture(backends: usize, forward: bool) -> Fixture {
    fixture_with(backends, forward, true)
}

/// [`fixture`], choosing whether verified tokens are remembered per thread
/// (on by default); off, every resumed request verifies its HMAC, as the
/// first request of a session on a thread does.
pub fn fixture_with(backends: usize, forward: bool, remember: bool) -> Fixture {
    let policy = SessionPolicy::cookie(COOKIE)
        .unwrap()
        .permanent(Duration::from_secs(60))
        .unwrap()
        .with_idle_timeout(Duration::from_secs(30))
        .unwrap();
    let ids: Vec<BackendId> = (0..backends)
        .map(|i| BackendId::from_name(&format!("backend-765694d47f-{i:05}")))
        .collect();
    let list: Backends<usize> = ids.iter().enumerate().map(|(i, &id)| (id, i, 1)).collect();
    let sessions = StickyBuilder::new(policy, keys(), list)
        .clock(ManualClock::new(NOW))
        .scope(SCOPE)
        .forward_session_value(forward)
        .remember_verified_tokens(remember)
        .build()
        .unwrap();
    Fixture {
        sessions,
        codec: TokenCodec::new(keys(), SCOPE),
        pinned: *ids.last().unwrap(),
    }
}

pub fn keys() -> KeySet {
    KeySet::new(SigningKey::new(KEY).unwrap())
}

impl Fixture {
    /// Routes one request of each path and checks its outcome, whether a
    /// header is written back, and whether the cookie was stripped.
    pub fn check(&self, forward: bool) {
        for path in Path::ALL {
            let mut req = self.request(path);
            let decision = self.sessions.route(&mut req);
            assert_eq!(decision.outcome(), path.outcome(), "{path:?}");
            assert_eq!(
                decision.session_header().is_some(),
                path != Path::Resumed,
                "{path:?}"
            );
            let cookie = req.headers()["cookie"].to_str().unwrap();
            let has_session = cookie.contains("Session-A=");
            assert_eq!(
                has_session,
                forward && path != Path::New,
                "{path:?}: {cookie}"
            );
        }
    }

    /// A token issued 20 s ago and last seen `seen_ago_ms` ago.
    pub fn token(&self, seen_ago_ms: u64) -> String {
        let token = self.session_token(seen_ago_ms);
        self.codec.encode(&token).as_str().to_owned()
    }

    /// The session behind [`token`](Self::token), before encoding.
    pub fn session_token(&self, seen_ago_ms: u64) -> SessionToken {
        SessionToken::from_parts(
            self.pinned,
            Timestamp::from_millis(NOW - 20_000),
            Timestamp::from_millis(NOW - seen_ago_ms),
        )
    }

    /// The request for `path`: a browser-like `Cookie` header holding the
    /// application's cookies around the session cookie.
    pub fn request(&self, path: Path) -> Request<()> {
        let session = match path {
            Path::Resumed => Some(self.token(1_000)),
            Path::New => None,
            Path::IdleRefresh => Some(self.token(10_000)),
            Path::Tampered => {
                let mut t = self.token(1_000).into_bytes();
                t[40] = if t[40] == b'A' { b'B' } else { b'A' };
                Some(String::from_utf8(t).unwrap())
            }
        };
        let mut cookie = String::from("theme=dark; lang=en-GB; _ga=GA1.2.1234567890.1700000000");
        if let Some(s) = session {
            cookie.push_str("; ");
            cookie.push_str(COOKIE);
            cookie.push('=');
            cookie.push_str(&s);
        }
        cookie.push_str("; csrftoken=4f1c2a9e0b7d4e3f8a6c5b2d1e0f9a8b");
        Request::builder()
            .uri("/api/items?page=2")
            .header("host", "example.com")
            .header("user-agent", "bench/1.0")
            .header("accept", "application/json")
            .header("cookie", cookie)
            .body(())
            .unwrap()
    }
}

/// The trivial inner service: what a proxy does first with the request
/// (find the pinned backend), then an immediate empty response. It drops
/// the request before answering; `layer.rs` times [`forwarding_inner`]
/// instead (see [`Upstream`]).
pub type Inner = tower::util::ServiceFn<fn(Request<()>) -> Ready<Result<Response<()>, Infallible>>>;

pub fn inner() -> Inner {
    fn answer(req: Request<()>) -> Ready<Result<Response<()>, Infallible>> {
        std::hint::black_box(req.extensions().get::<Pinned<usize>>().map(|p| *p.target()));
        ready(Ok(Response::new(())))
    }
    tower::service_fn(answer as fn(_) -> _)
}

/// The trivial inner service behind
/// [`StickyHandOffLayer`](tower_sticky::sticky::StickyHandOffLayer): the
/// same work as [`inner`], with the pinned backend handed over beside the
/// request.
pub type HandOffInner = tower::util::ServiceFn<
    fn((Pinned<usize>, Request<()>)) -> Ready<Result<Response<()>, Infallible>>,
>;

pub fn hand_off_inner() -> HandOffInner {
    fn answer(
        (pinned, req): (Pinned<usize>, Request<()>),
    ) -> Ready<Result<Response<()>, Infallible>> {
        std::hint::black_box((*pinned.target(), req));
        ready(Ok(Response::new(())))
    }
    tower::service_fn(answer as fn(_) -> _)
}

/// Where the forwarding inner services put each request, with its
/// [`Pinned`] when handed one: a proxy's queue to its upstream.
///
/// Why: a proxy forwards the request; it does not free it while the layer
/// is working. The services that drop it ([`inner`], [`hand_off_inner`])
/// put that drop (the header map, the rewritten `Cookie` value) inside the
/// timed region of `layer.rs`, while `route/*` hands its request and
/// decision back to criterion, which drops them after the timed region.
/// `layer.rs` empties the queue in the batch's setup, outside the timed
/// region, so the `layer*` and `route/*` rows time the same kind of work.
#[derive(Clone, Debug, Default)]
pub struct Upstream {
    sent: Rc<RefCell<Vec<Sent>>>,
}

/// A request sent upstream, with the [`Pinned`] it was handed, if any.
type Sent = (Option<Pinned<usize>>, Request<()>);

impl Upstream {
    /// A queue with room for `n` requests, so that sending never allocates
    /// once warm.
    pub fn with_capacity(n: usize) -> Self {
        Upstream {
            sent: Rc::new(RefCell::new(Vec::with_capacity(n))),
        }
    }

    fn send(&self, pinned: Option<Pinned<usize>>, req: Request<()>) {
        self.sent.borrow_mut().push((pinned, req));
    }

    /// Drops what was sent (call it outside the timed region).
    pub fn clear(&self) {
        self.sent.borrow_mut().clear();
    }
}

/// [`inner`], moving the request to `upstream` instead of dropping it.
pub fn forwarding_inner(
    upstream: Upstream,
) -> impl Service<Request<()>, Response = Response<()>, Error = Infallible> {
    tower::service_fn(move |req: Request<()>| {
        std::hint::black_box(req.extensions().get::<Pinned<usize>>().map(|p| *p.target()));
        upstream.send(None, req);
        ready(Ok(Response::new(())))
    })
}

/// [`hand_off_inner`], moving the request and its [`Pinned`] to `upstream`
/// instead of dropping them.
pub fn forwarding_hand_off_inner(
    upstream: Upstream,
) -> impl Service<(Pinned<usize>, Request<()>), Response = Response<()>, Error = Infallible> {
    tower::service_fn(move |(pinned, req): (Pinned<usize>, Request<()>)| {
        std::hint::black_box(*pinned.target());
        upstream.send(Some(pinned), req);
        ready(Ok(Response::new(())))
    })
}

/// Calls a service whose future is ready at once (as with [`inner`]) and
/// returns the response, without a runtime.
pub fn call_now<S, B>(svc: &mut S, req: Request<()>) -> Response<B>
where
    S: Service<Request<()>, Response = Response<B>, Error = Infallible>,
{
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => unreachable!("the inner service is always ready"),
    }
    let fut = pin!(svc.call(req));
    match fut.poll(&mut cx) {
        Poll::Ready(Ok(res)) => res,
        _ => unreachable!("the inner future is ready at once"),
    }
}
