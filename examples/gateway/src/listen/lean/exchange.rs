//! One request on the lean path, in the order it lives: handed over to
//! hyper or decided (the hyper path's steps), its upstream head encoded,
//! its body taken, then the attempts, or the gateway's own answer.

use super::attempt::Attempt;
use super::body::{self, CopyError, Remaining};
use super::bufs;
use super::conn::{CONTINUE, Conn, Reply, Step};
use super::head::{Framing, RequestHead};
use super::respond::Answered;
use super::upstream::Connector;
use super::upstream_head;
use crate::answer::own::{self, Access, Answer, Line};
use crate::config::rules::Rule;
use crate::discover::app_protocol::AppProtocol;
use crate::forward::attempt::{Failure, Next, Retry};
use crate::forward::{self, health};
use crate::listen::coarse;
use crate::pin::{self, Choice};
use http::{HeaderValue, Method, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tower_sticky::sticky::Outcome;

impl<C, K> Conn<'_, C, K>
where
    C: AsyncRead + AsyncWrite + Unpin,
    K: Connector,
{
    /// One request and its response, in the order it lives: handed over
    /// to hyper, or decided (the hyper path's steps), then forwarded
    /// ([`Self::forward`]).
    pub(super) async fn exchange(&mut self, head: RequestHead) -> Step {
        let RequestHead {
            parts,
            framing,
            keep_alive,
            expect_continue,
            fields,
            len,
        } = head;
        let mut req = http::Request::from_parts(parts, ());
        if handed_over(&req) {
            return Step::HandOver;
        }
        if self.client.origin.client_tls(req.headers()) {
            // The library's `Secure::Auto` reads it.
            req.extensions_mut().insert(tower_sticky::ClientTls);
        }
        let version = req.version();
        let head_only = req.method() == Method::HEAD;
        let reply = Reply {
            keep_alive,
            version,
            head_only,
        };
        let access = Access::start(&req);
        let access = access.as_ref();
        // In-flight requests finish on the snapshot they started with.
        let compiled = self.proxy.snapshot();
        let upgrade = crate::answer::headers::upgrade_protocol(&req);
        let forward::Decided { rule, choice } = match forward::decide(&compiled, access, &mut req) {
            Ok(decided) => decided,
            Err(own) => {
                self.consume(len);
                // Its body is not read: the connection closes after.
                let close = framing != Framing::None;
                return self.write_own(own, reply, close).await;
            }
        };
        if choice.endpoint.target().member.protocol == AppProtocol::H2c && upgrade.is_none() {
            return Step::HandOver;
        }
        let (mut parts, ()) = req.into_parts();
        // Encoded while the client's head is still in the buffer.
        let mut out = bufs::take_out();
        let request = upstream_head::Request {
            parts: &mut parts,
            fields: fields.as_deref(),
            rule,
            upgrade: upgrade.as_ref(),
            version,
            framing,
        };
        self.upstream_head(&mut out, request);
        drop(fields);
        self.consume(len);
        let forwarded = Forwarded {
            access,
            rule,
            reply,
            upgrade,
            framing,
            expect_continue,
        };
        let mut choice = choice;
        // By reference: moved in, they would be held twice by the
        // connection's task (its future keeps an async fn's arguments).
        self.forward(&forwarded, &mut parts, &mut choice, out).await
    }

    /// A decided request, its upstream head in `out`: its body
    /// ([`Self::take_body`]), then the attempts ([`Self::attempts`]), or
    /// the gateway's answer.
    async fn forward(
        &mut self,
        f: &Forwarded<'_>,
        parts: &mut http::request::Parts,
        choice: &mut Choice,
        mut out: Vec<u8>,
    ) -> Step {
        let mut expect_continue = f.expect_continue;
        let upgrade = f.upgrade.as_ref();
        let mut rest = Remaining::of(f.framing);
        let mut kept = true;
        if let Some(r) = rest.as_mut() {
            let method = &parts.method;
            match self
                .take_body(r, method, &mut expect_continue, &mut out)
                .await
            {
                Ok(true) => rest = None,
                Ok(false) => kept = false,
                Err(BodyStop::ClientGone) => return self.finish(out, Step::Close),
                Err(BodyStop::Failed(e)) => {
                    let own = body_failed(f.access, f.rule, choice.outcome, e);
                    bufs::give_out(out);
                    return self.write_own(own, f.reply, true).await;
                }
            }
        }
        let outgoing = Outgoing {
            access: f.access,
            rule: f.rule,
            reply: f.reply,
            head: pin::Head {
                method: &parts.method,
                uri: &parts.uri,
                headers: &parts.headers,
            },
            upgrade: upgrade.is_some(),
            kept,
        };
        let rest = &mut rest;
        let ended = self
            .attempts(&outgoing, choice, rest, &mut expect_continue, &mut out)
            .await;
        bufs::give_out(out);
        match ended {
            Ended::Responded(step) => step,
            Ended::Own(own, close) => self.write_own(own, f.reply, close).await,
        }
    }

    /// The body before the first attempt: read whole into `out`, after
    /// the head, when the request may be retried (idempotent, up to
    /// `--retry-buffer`); otherwise what is buffered of it joins the head
    /// and the attempt streams the rest. `Ok(true)`: read whole.
    async fn take_body(
        &mut self,
        r: &mut Remaining,
        method: &Method,
        expect_continue: &mut bool,
        out: &mut Vec<u8>,
    ) -> Result<bool, BodyStop> {
        let head_len = out.len();
        let bound = if tower_sticky::failover::is_idempotent(method) {
            self.proxy.options().retry_buffer
        } else {
            0
        };
        let fits = match r {
            Remaining::Length(n) => *n <= bound as u64,
            _ => bound > 0,
        };
        if !fits {
            return r
                .move_buffered(&mut self.cbuf, out)
                .map(|()| false)
                .map_err(|e| BodyStop::Failed(CopyError::Read(e.to_string())));
        }
        if *expect_continue {
            *expect_continue = false;
            if self.write_client(CONTINUE).await.is_err() {
                return Err(BodyStop::ClientGone);
            }
        }
        let deadline = coarse::now() + forward::BODY_TIMEOUT;
        let (io, cbuf) = (&mut self.io, &mut self.cbuf);
        body::read_whole(io, cbuf, out, head_len, r, bound, deadline)
            .await
            .map_err(BodyStop::Failed)
    }

    /// Attempts, until one gets a response head (sent back by
    /// [`Self::respond`]) or [`Retry`] says stop (the gateway answers).
    async fn attempts(
        &mut self,
        o: &Outgoing<'_>,
        choice: &mut Choice,
        rest: &mut Option<Remaining>,
        expect_continue: &mut bool,
        out: &mut Vec<u8>,
    ) -> Ended {
        let mut retry = Retry::new(o.head.method);
        let mut fresh = false;
        let mut sent = false;
        // Bounded: `Retry` stops after its attempts.
        loop {
            if !o.kept && sent {
                let failure = Failure::BadResponse("request body already sent".into());
                return failed(o, choice, rest.as_ref(), failure);
            }
            let endpoint = std::sync::Arc::clone(&choice.endpoint);
            let attempt = Attempt {
                endpoint: &endpoint,
                method: o.head.method,
                request: out,
                upgrade: o.upgrade,
                fresh,
            };
            let failure = match self
                .attempt(attempt, rest, &mut sent, expect_continue)
                .await
            {
                Ok((response, up, ubuf)) => {
                    health::succeeded(self.proxy.passive(), &endpoint);
                    let answered = Answered {
                        access: o.access,
                        rule: o.rule,
                        response,
                        up,
                        ubuf,
                        upgrade: o.upgrade,
                    };
                    return Ended::Responded(self.respond(answered, choice, o.reply, out).await);
                }
                Err(f) => f,
            };
            forward::log_failure(o.rule, &endpoint, &failure);
            let (next, blame) = retry.after_failure(endpoint.id(), failure, o.kept || !sent);
            health::failed(self.proxy.passive(), o.rule, &endpoint, blame);
            fresh = false;
            match next {
                Next::SameFresh => fresh = true,
                Next::Stop(failure) => return failed(o, choice, rest.as_ref(), failure),
                Next::Other => {
                    if let Err(ended) = other_backend(o, choice, rest.as_ref(), &retry) {
                        return ended;
                    }
                }
            }
        }
    }
}

/// A request the gateway forwards, as decided: what forwarding it reads
/// of the decision and of the client's head.
struct Forwarded<'a> {
    access: Option<&'a Access>,
    rule: &'a Rule,
    reply: Reply,
    /// The protocol the client's `Upgrade` asks for.
    upgrade: Option<HeaderValue>,
    framing: Framing,
    /// The client waits for `100 Continue` before its body.
    expect_continue: bool,
}

/// Why a request body was not taken before the first attempt.
enum BodyStop {
    /// The client's connection failed (writing `100 Continue`).
    ClientGone,
    /// Reading it failed: the client is answered.
    Failed(CopyError),
}

/// What every attempt of a request reads.
struct Outgoing<'a> {
    access: Option<&'a Access>,
    rule: &'a Rule,
    reply: Reply,
    /// What [`pin::repick`] reads; its method, what [`Retry`] does.
    head: pin::Head<'a>,
    upgrade: bool,
    /// The body is whole in the request bytes (or there is none): the
    /// request can be written again.
    kept: bool,
}

/// How a request's attempts ended.
enum Ended {
    /// A response went back (or failed to): the connection's next step.
    Responded(Step),
    /// The gateway answers (and closes when `true`).
    Own(Answer, bool),
}

/// Whether hyper serves this request (and the rest of the connection):
/// gRPC; HTTP/1.0 (hyper writes a chunked response to such a client as
/// one delimited by close; this path never re-encodes); CONNECT (a 2xx to
/// it has no body whatever its framing headers say, and the connection
/// then is a tunnel or nothing: hyper's rules).
fn handed_over(req: &http::Request<()>) -> bool {
    crate::route::grpc::is_grpc(req)
        || req.version() != Version::HTTP_11
        || req.method() == Method::CONNECT
}

/// The answer to a request whose body could not be read (logged).
fn body_failed(access: Option<&Access>, rule: &Rule, outcome: Outcome, e: CopyError) -> Answer {
    let (answer, why) = match e {
        CopyError::Read(why) if why == "timed out" => (own::SLOW_BODY, why),
        CopyError::Read(why) => (own::BAD_BODY, why),
        CopyError::Write(e) => (own::BAD_BODY, e.to_string()),
    };
    let line = Line {
        rule: Some(rule),
        outcome: Some(outcome),
        endpoint: None,
    };
    let detail = format!("client body: {why}");
    own::logged(access, line, answer, Some(&detail))
}

/// After a failure [`Retry`] moves on from: another backend in `choice`,
/// or the answer when there is none, or when the session's backend
/// failed and sessions are strict.
fn other_backend(
    o: &Outgoing<'_>,
    choice: &mut Choice,
    rest: Option<&Remaining>,
    retry: &Retry,
) -> Result<(), Ended> {
    if o.rule.strict && choice.resumed() {
        let why = Some("the session's backend failed (strict sessions)");
        let outcome = Some(Outcome::PinnedUnavailable);
        let endpoint = Some(&choice.endpoint);
        let own = forward::unavailable_answer(o.access, o.rule, outcome, endpoint, why);
        return Err(Ended::Own(own, rest.is_some()));
    }
    match pin::repick(o.rule, &o.head, retry.tried()) {
        Some(next) => {
            *choice = next;
            Ok(())
        }
        None => {
            let failure = Failure::BadResponse("no other backend to retry on".into());
            Err(failed(o, choice, rest, failure))
        }
    }
}

/// The gateway's answer when the attempts end without a response.
fn failed(o: &Outgoing<'_>, choice: &Choice, rest: Option<&Remaining>, failure: Failure) -> Ended {
    let line = Line {
        rule: Some(o.rule),
        outcome: Some(choice.outcome),
        endpoint: Some(&choice.endpoint),
    };
    // A body not read to its end leaves the connection out of step.
    let close = rest.is_some_and(|r| !r.done()) || matches!(failure, Failure::ClientBody(_));
    let (answer, detail) = forward::answer_for(failure, o.head.method, o.kept);
    Ended::Own(own::logged(o.access, line, answer, Some(&detail)), close)
}
