//! What of a request body is kept so that the request can be sent again.
//!
//! Bodies up to `--retry-buffer` bytes are read whole before anything is
//! sent: every attempt gets a copy (a reference count), so a request whose
//! backend failed before answering can go to another one. A larger body is
//! streamed after the part read so far, and can go out only once;
//! [`Streamed`] notes whether any of it left and whether the client broke
//! it, so that the proxy blames the right side.

use super::UpstreamBody;
use http::Request;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// The request body, as it stands before an attempt.
pub(super) enum ReqBody {
    /// Read whole: every attempt gets a copy (a reference count).
    Whole(Bytes),
    /// Too large to keep: streamed, so it can go out only once.
    Streamed(Option<Streamed>),
}

/// The client's body after the bytes already read from it, streamed
/// upstream. Notes whether anything of it went out and whether the client
/// broke it.
pub struct Streamed {
    prefix: Option<Bytes>,
    rest: Incoming,
    pub(super) watch: Arc<BodyWatch>,
}

/// What happened to a [`Streamed`] body once hyper has it.
#[derive(Debug, Default)]
pub(super) struct BodyWatch {
    /// Some of it was handed to the connection.
    pub(super) sent: AtomicBool,
    /// The client's side failed (a malformed chunk, a reset).
    pub(super) client_error: AtomicBool,
}

impl Body for Streamed {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(prefix) = this.prefix.take() {
            this.watch.sent.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        let polled = Pin::new(&mut this.rest).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(_))) => this.watch.sent.store(true, Ordering::Relaxed),
            Poll::Ready(Some(Err(_))) => this.watch.client_error.store(true, Ordering::Relaxed),
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let rest = self.rest.size_hint();
        let prefix = self.prefix.as_ref().map_or(0, |p| p.len() as u64);
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(prefix));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(prefix));
        }
        hint
    }
}

/// Reads the client's body whole when it fits in `bound` bytes, so that the
/// request can be sent again; otherwise keeps what was read and streams the
/// rest. A body whose declared length exceeds `bound` is not read at all.
pub(super) async fn read_body(body: Incoming, bound: usize) -> Result<ReqBody, hyper::Error> {
    if body.is_end_stream() {
        return Ok(ReqBody::Whole(Bytes::new()));
    }
    let streamed = |prefix: Option<Bytes>, rest| {
        ReqBody::Streamed(Some(Streamed {
            prefix,
            rest,
            watch: Arc::default(),
        }))
    };
    if bound == 0 || body.size_hint().lower() > bound as u64 {
        return Ok(streamed(None, body));
    }
    let mut body = body;
    let mut buf: Vec<u8> = Vec::new();
    loop {
        match body.frame().await {
            None => return Ok(ReqBody::Whole(Bytes::from(buf))),
            Some(Err(e)) => return Err(e),
            Some(Ok(frame)) => {
                // Trailers of a buffered body are dropped: HTTP/1.1
                // backends rarely read request trailers.
                if let Ok(data) = frame.into_data() {
                    buf.extend_from_slice(&data);
                    if buf.len() > bound {
                        return Ok(streamed(Some(Bytes::from(buf)), body));
                    }
                }
            }
        }
    }
}

impl ReqBody {
    /// The body for one attempt, if it can still be sent.
    pub(super) fn for_attempt(&mut self) -> Option<UpstreamBody> {
        match self {
            ReqBody::Whole(bytes) => Some(Either::Left(Full::new(bytes.clone()))),
            ReqBody::Streamed(s) => s.take().map(Either::Right),
        }
    }

    /// Gives back the body of an attempt that did not send it.
    pub(super) fn put_back(&mut self, unsent: Request<UpstreamBody>) {
        // A streamed body of which something left cannot go again.
        if let (ReqBody::Streamed(slot), Either::Right(s)) = (self, unsent.into_body())
            && !s.watch.sent.load(Ordering::Relaxed)
        {
            *slot = Some(s);
        }
    }

    /// Whether another attempt can send it.
    pub(super) fn replayable(&self) -> bool {
        match self {
            ReqBody::Whole(_) => true,
            ReqBody::Streamed(s) => s.is_some(),
        }
    }
}
