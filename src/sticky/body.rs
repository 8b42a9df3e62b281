use crate::balance::InFlight;
use bytes::Buf;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// A response body that keeps its request counted in flight on its
    /// backend until the body has ended (or is dropped), so that streamed
    /// answers (server-sent events, long downloads) stay counted for
    /// [`PowerOfTwoChoices`](crate::balance::PowerOfTwoChoices).
    ///
    /// The body of every response [`Sticky`](super::Sticky) returns.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use http_body_util::BodyExt;
    /// use tower_sticky::balance::{BackendId, Endpoint, InFlight};
    /// use tower_sticky::sticky::InFlightBody;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pod = Arc::new(Endpoint::new(BackendId::from_name("pod-a"), (), 1));
    /// let body = InFlightBody::new(String::from("hello"), Some(InFlight::start(Arc::clone(&pod))));
    /// assert_eq!(pod.in_flight(), 1);
    /// let bytes = body.collect().await.unwrap().to_bytes();
    /// assert_eq!(bytes, "hello");
    /// assert_eq!(pod.in_flight(), 0);
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct InFlightBody<B> {
        #[pin]
        inner: B,
        in_flight: Option<InFlight>,
    }
}

impl<B> InFlightBody<B> {
    /// `inner`, counted by `in_flight` until it ends.
    pub fn new(inner: B, in_flight: Option<InFlight>) -> Self {
        InFlightBody { inner, in_flight }
    }

    /// The wrapped body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }

    /// The wrapped body; the request stops counting in flight.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B: Default> Default for InFlightBody<B> {
    fn default() -> Self {
        InFlightBody::new(B::default(), None)
    }
}

impl<B: Body> Body for InFlightBody<B>
where
    B::Data: Buf,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) {
            // Ended, or failed: the backend is done with this request.
            this.in_flight.take();
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
