//! Sticky sessions for a [Pingora](https://github.com/cloudflare/pingora)
//! reverse proxy, through tower-sticky's header-level entry point.
//!
//! Pingora picks the upstream in one callback, rewrites the upstream request
//! in a second and the response in a third; [`StickyProxy`] keeps the
//! [`Decision`] in the request context between them:
//!
//! * `upstream_peer`: [`StickySessions::decide`] from the request head (no
//!   copy of the request), and the chosen backend's address;
//! * `upstream_request_filter`: the [`RequestRewrite`] takes the session
//!   cookie out of what the backend receives;
//! * `response_filter`: the [`SessionHeader`](tower_sticky::sticky::SessionHeader) writes
//!   `Set-Cookie` (and `Cache-Control: private`) when the session is new or
//!   re-issued.
//!
//! The request counts in flight on its backend until Pingora drops the
//! context, after the response body, so `PowerOfTwoChoices` works here too.

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use std::net::SocketAddr;
use tower_sticky::balance::InFlight;
use tower_sticky::sticky::{Decision, RequestHead, RequestRewrite, StickySessions};

/// A Pingora proxy that pins each client to a backend address.
#[derive(Debug)]
pub struct StickyProxy {
    /// The session engine over the backends' addresses.
    pub sessions: StickySessions<SocketAddr>,
}

/// What one request keeps between Pingora's callbacks.
#[derive(Debug, Default)]
pub struct Ctx {
    decision: Option<Decision<SocketAddr>>,
    _in_flight: Option<InFlight>,
}

#[async_trait]
impl ProxyHttp for StickyProxy {
    type CTX = Ctx;

    fn new_ctx(&self) -> Ctx {
        Ctx::default()
    }

    async fn upstream_peer(&self, session: &mut Session, ctx: &mut Ctx) -> Result<Box<HttpPeer>> {
        let req = session.req_header();
        let decision = self
            .sessions
            .decide(RequestHead::new(&req.method, &req.uri, &req.headers));
        let Some(&addr) = decision.target() else {
            return Err(Error::explain(HTTPStatus(503), "no backend available"));
        };
        ctx._in_flight = decision.in_flight();
        ctx.decision = Some(decision);
        Ok(Box::new(HttpPeer::new(addr, false, String::new())))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        if let Some(rewrite) = ctx.decision.as_mut().and_then(Decision::take_rewrite) {
            rewrite_request(upstream, &rewrite)?;
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut Ctx,
    ) -> Result<()> {
        let Some(issue) = ctx
            .decision
            .as_mut()
            .and_then(Decision::take_session_header)
        else {
            return Ok(());
        };
        if issue.cache_private(response.headers.contains_key("cache-control")) {
            response.insert_header("cache-control", "private")?;
        }
        if issue.appends() {
            response.append_header(issue.name().clone(), issue.value().clone())?;
        } else {
            response.insert_header(issue.name().clone(), issue.value().clone())?;
        }
        Ok(())
    }
}

/// Makes a [`RequestRewrite`] on Pingora's request header, which has no
/// `&mut HeaderMap` to hand out.
fn rewrite_request(upstream: &mut RequestHeader, rewrite: &RequestRewrite) -> Result<()> {
    upstream.remove_header(rewrite.name());
    for value in rewrite.values() {
        upstream.append_header(rewrite.name().clone(), value.clone())?;
    }
    Ok(())
}
