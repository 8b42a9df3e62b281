//! One attempt: the request goes out over a connection of this client's
//! (or a fresh one), and either a response head comes back or a
//! [`Failure`] says how far the request got.

use super::attempt::{Failed, Failure};
use super::upstream::{self, Acquire, Owner};
use super::{Options, UpstreamBody, error_chain};
use crate::config::rules::Upstream;
use crate::discover::app_protocol::AppProtocol;
use http::{Request, Response};
use http_body_util::Either;
use hyper::body::Incoming;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tower_sticky::balance::Endpoint;

/// How long a backend may take to send its response head.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends `req` to `endpoint`: over a connection `owner` may reuse, or a
/// fresh one (always fresh for an upgrade, whose connection becomes the
/// tunnel, and when `fresh`).
pub(super) async fn send(
    endpoint: &Endpoint<Upstream>,
    req: Request<UpstreamBody>,
    owner: &Owner,
    options: &Options,
    upgrade: bool,
    fresh: bool,
) -> Result<Response<Incoming>, Failed> {
    // Shown by `/backends` until the response head is in: an operator
    // who drained a backend sees when it has nothing left to answer.
    let _waiting = crate::discover::membership::Waiting::start(&endpoint.target().member);
    let addr = endpoint.target().member.addr.as_str();
    // An upgrade (WebSocket) stays HTTP/1.1: its connection becomes the
    // tunnel. Boxed: h2c's future would widen every request's.
    if endpoint.target().member.protocol == AppProtocol::H2c && !upgrade {
        return Box::pin(super::h2::send(addr, req, owner, options, fresh)).await;
    }
    let (conn, reused) = match upstream::acquire(addr, owner, options, fresh || upgrade).await {
        Ok(got) => got,
        Err(Acquire::Connect(e)) => {
            return Err(Failed {
                failure: Failure::Refused(e.to_string()),
                unsent: Some(req),
            });
        }
        Err(Acquire::Saturated) => {
            return Err(Failed {
                failure: Failure::Saturated,
                unsent: Some(req),
            });
        }
    };
    let watch = match req.body() {
        Either::Right(s) => Some(Arc::clone(&s.watch)),
        Either::Left(_) => None,
    };
    let mut conn = conn;
    let read_before = conn.read.load(Ordering::Relaxed);
    // A coarse per-worker deadline: no timer-wheel entry per request.
    let deadline = crate::listen::coarse::now() + RESPONSE_TIMEOUT;
    match crate::listen::coarse::timeout_at(deadline, conn.sender.try_send_request(req)).await {
        Ok(Ok(resp)) => {
            if !upgrade {
                upstream::checkin(addr, owner, conn);
            }
            Ok(resp)
        }
        Ok(Err(mut e)) => {
            let unsent = e.take_message();
            let detail = format!("{addr}: {}", error_chain(&e.into_error()));
            if watch.is_some_and(|w| w.client_error.load(Ordering::Relaxed)) {
                return Err(Failure::ClientBody(format!("client body: {detail}")).into());
            }
            if conn.read.load(Ordering::Relaxed) != read_before {
                return Err(Failure::BadResponse(detail).into());
            }
            let failure = match unsent {
                Some(_) => Failure::NotWritten { reused, detail },
                None => Failure::AfterWrite { reused, detail },
            };
            Err(Failed { failure, unsent })
        }
        Err(_) => Err(Failure::Timeout.into()),
    }
}
