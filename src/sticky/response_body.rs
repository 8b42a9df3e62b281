use super::InFlightBody;
use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll};

pin_project! {
    /// The body of every response [`Sticky`](super::Sticky) (and
    /// [`StickyHandOff`](super::StickyHandOff)) returns: the backend's body,
    /// counted [in flight](InFlightBody) until it ends, or the empty body of
    /// an answer the layer writes itself (`503` when no backend can take the
    /// request, `502` when failover gives up).
    ///
    /// A type of its own, as tower-http does for its generated responses, so
    /// that the inner body needs no `Default`: hyper's `Incoming` has none.
    #[derive(Debug)]
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Backend { #[pin] body: InFlightBody<B> },
        Generated,
    }
}

impl<B> ResponseBody<B> {
    /// The backend's body, counted in flight.
    pub fn backend(body: InFlightBody<B>) -> Self {
        ResponseBody {
            kind: Kind::Backend { body },
        }
    }

    /// The empty body of an answer the layer wrote itself.
    pub fn generated() -> Self {
        ResponseBody {
            kind: Kind::Generated,
        }
    }

    /// The backend's body; `None` for an answer the layer wrote.
    pub fn get_ref(&self) -> Option<&B> {
        match &self.kind {
            Kind::Backend { body } => Some(body.get_ref()),
            Kind::Generated => None,
        }
    }

    /// The backend's body (the request stops counting in flight); `None`
    /// for an answer the layer wrote.
    pub fn into_inner(self) -> Option<B> {
        match self.kind {
            Kind::Backend { body } => Some(body.into_inner()),
            Kind::Generated => None,
        }
    }

    /// Whether the layer wrote this answer itself.
    pub fn is_generated(&self) -> bool {
        matches!(self.kind, Kind::Generated)
    }
}

impl<B: Body> Body for ResponseBody<B>
where
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Backend { body } => body.poll_frame(cx),
            KindProj::Generated => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Backend { body } => body.is_end_stream(),
            Kind::Generated => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Backend { body } => body.size_hint(),
            Kind::Generated => SizeHint::with_exact(0),
        }
    }
}
