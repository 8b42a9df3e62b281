use super::sessions::Issue;
use crate::balance::InFlight;
use http::{HeaderValue, Response, StatusCode};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// Response future of [`Sticky`](super::Sticky).
    pub struct ResponseFuture<F, T> {
        #[pin]
        kind: Kind<F, T>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, T> {
        Called {
            #[pin]
            future: F,
            issue: Option<Issue>,
            in_flight: Option<InFlight<T>>,
        },
        NoBackend,
    }
}

impl<F, T> ResponseFuture<F, T> {
    pub(crate) fn called(future: F, issue: Option<Issue>, in_flight: InFlight<T>) -> Self {
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

impl<F, T, B, E> Future for ResponseFuture<F, T>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called {
                future,
                issue,
                in_flight,
            } => {
                let result = ready!(future.poll(cx));
                // The backend has answered: it no longer counts as loaded.
                in_flight.take();
                let mut response = result?;
                if let Some(issue) = issue.take() {
                    issue.apply(response.headers_mut());
                }
                Poll::Ready(Ok(response))
            }
            KindProj::NoBackend => {
                let mut response = Response::new(B::default());
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
                Poll::Ready(Ok(response))
            }
        }
    }
}
