use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};

/// The request body the failover layer sends to its inner service: the
/// client's body held whole (so that it can be sent again, to another
/// backend), or, when it is larger than the buffer bound, the part read so
/// far followed by the rest as it streams (sent once).
#[derive(Debug)]
pub struct ReplayBody<B> {
    kind: Kind<B>,
}

#[derive(Debug)]
enum Kind<B> {
    Whole {
        data: Option<Bytes>,
        trailers: Option<HeaderMap>,
    },
    Streamed {
        prefix: Option<Bytes>,
        rest: B,
    },
}

impl<B> ReplayBody<B> {
    /// Whether the body is held whole, so it can be sent again.
    #[must_use]
    pub fn is_replayable(&self) -> bool {
        matches!(self.kind, Kind::Whole { .. })
    }

    /// A copy for one more attempt, if the body is held whole (cheap:
    /// `Bytes` are shared).
    pub(crate) fn replay(&self) -> Option<Self> {
        match &self.kind {
            Kind::Whole { data, trailers } => Some(ReplayBody {
                kind: Kind::Whole {
                    data: data.clone(),
                    trailers: trailers.clone(),
                },
            }),
            Kind::Streamed { .. } => None,
        }
    }
}

impl<B> ReplayBody<B>
where
    B: Body + Unpin,
    B::Data: Buf,
{
    /// Reads `body` whole if it is at most `limit` bytes; otherwise keeps
    /// what was read and streams the rest. A body that says (by its size
    /// hint, `Content-Length`) it is larger is not read at all.
    pub(crate) async fn read(mut body: B, limit: usize) -> Result<Self, B::Error> {
        if body.size_hint().lower() > limit as u64 {
            return Ok(ReplayBody {
                kind: Kind::Streamed {
                    prefix: None,
                    rest: body,
                },
            });
        }
        let mut buf = BytesMut::new();
        let mut trailers = None;
        while !body.is_end_stream() {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
            let Some(frame) = frame.transpose()? else {
                break;
            };
            match frame.into_data() {
                Ok(mut data) => {
                    while data.has_remaining() {
                        let chunk = data.chunk();
                        buf.extend_from_slice(chunk);
                        let n = chunk.len();
                        data.advance(n);
                    }
                    if buf.len() > limit {
                        return Ok(ReplayBody {
                            kind: Kind::Streamed {
                                prefix: Some(buf.freeze()),
                                rest: body,
                            },
                        });
                    }
                }
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers = Some(t);
                    }
                }
            }
        }
        Ok(ReplayBody {
            kind: Kind::Whole {
                data: (!buf.is_empty()).then(|| buf.freeze()),
                trailers,
            },
        })
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body + Unpin,
    B::Data: Buf,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match &mut self.kind {
            Kind::Whole { data, trailers } => Poll::Ready(
                data.take()
                    .map(Frame::data)
                    .or_else(|| trailers.take().map(Frame::trailers))
                    .map(Ok),
            ),
            Kind::Streamed { prefix, rest } => {
                if let Some(prefix) = prefix.take() {
                    return Poll::Ready(Some(Ok(Frame::data(prefix))));
                }
                Pin::new(rest).poll_frame(cx).map(|frame| {
                    frame.map(|r| r.map(|f| f.map_data(|mut d| d.copy_to_bytes(d.remaining()))))
                })
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Whole { data, trailers } => data.is_none() && trailers.is_none(),
            Kind::Streamed { prefix, rest } => prefix.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Whole { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Streamed { prefix, rest } => {
                let extra = prefix.as_ref().map_or(0, |p| p.len() as u64);
                let inner = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower().saturating_add(extra));
                if let Some(u) = inner.upper() {
                    hint.set_upper(u.saturating_add(extra));
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Full, StreamBody};
    use std::convert::Infallible;

    async fn collect<B: Body<Data = Bytes> + Unpin>(body: B) -> (Bytes, Option<HeaderMap>)
    where
        B::Error: std::fmt::Debug,
    {
        let collected = body.collect().await.unwrap();
        let trailers = collected.trailers().cloned();
        (collected.to_bytes(), trailers)
    }

    #[tokio::test]
    async fn a_body_within_the_bound_is_replayed_whole_with_its_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "42".parse().unwrap());
        let chunks = ["ab", "cd", "ef"].map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from(c))));
        let body = StreamBody::new(futures_util::stream::iter(chunks))
            .with_trailers(std::future::ready(Some(Ok(trailers.clone()))));
        let held = ReplayBody::read(body, 6).await.unwrap();
        assert!(held.is_replayable());
        let again = held.replay().unwrap();
        assert_eq!(again.size_hint().exact(), Some(6));
        for body in [again, held] {
            assert_eq!(
                collect(body).await,
                (Bytes::from("abcdef"), Some(trailers.clone()))
            );
        }
    }

    #[tokio::test]
    async fn a_body_over_the_bound_streams_once_with_nothing_lost() {
        let chunks =
            ["abc", "def", "ghi"].map(|c| Ok::<_, Infallible>(Frame::data(Bytes::from(c))));
        let body = StreamBody::new(futures_util::stream::iter(chunks));
        let held = ReplayBody::read(body, 4).await.unwrap();
        assert!(!held.is_replayable() && held.replay().is_none());
        assert_eq!(collect(held).await.0, Bytes::from("abcdefghi"));
    }

    #[tokio::test]
    async fn a_body_that_says_it_is_too_big_is_not_read_at_all() {
        let held = ReplayBody::read(Full::new(Bytes::from("0123456789")), 9)
            .await
            .unwrap();
        assert!(!held.is_replayable());
        assert_eq!(held.size_hint().exact(), Some(10));
        assert_eq!(collect(held).await.0, Bytes::from("0123456789"));
        let empty = ReplayBody::read(Full::new(Bytes::new()), 0).await.unwrap();
        assert!(empty.is_replayable() && empty.is_end_stream());
    }
}
