use super::{InFlightBody, ResponseBody, SessionHeader};
use crate::balance::InFlight;
use http::{HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response future of [`Sticky`](super::Sticky).
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called {
            #[pin]
            future: F,
            issue: Option<SessionHeader>,
            in_flight: Option<InFlight>,
        },
        NoBackend,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn called(future: F, issue: Option<SessionHeader>, in_flight: InFlight) -> Self {
        ResponseFuture {
            kind: Kind::Called {
                future,
                issue,
                in_flight: Some(in_flight),
            },
        }
    }

    pub(crate) fn no_backend() -> Self {
        ResponseFuture {
            kind: Kind::NoBackend,
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
                future,
                issue,
                in_flight,
            } => {
                // An error drops the count with the future; a response keeps
                // it until its body has ended.
                let mut response = ready!(future.poll(cx))?;
                if let Some(issue) = issue.take() {
                    issue.apply(response.headers_mut());
                }
                let in_flight = in_flight.take();
                Poll::Ready(Ok(response.map(|body| {
                    ResponseBody::backend(InFlightBody::new(body, in_flight))
                })))
            }
            KindProj::NoBackend => Poll::Ready(Ok(no_backend())),
        }
    }
}

/// The layer's own answer when no backend can take a request: `503`,
/// `Retry-After: 1`, an empty body.
pub(super) fn no_backend<B>() -> Response<ResponseBody<B>> {
    let mut response = Response::new(ResponseBody::generated());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    response
        .headers_mut()
        .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}
