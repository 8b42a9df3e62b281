/// How one attempt to send a request to a backend failed: what the proxy
/// knows about whether the backend saw the request, which is what decides
/// both a retry (RFC 9110 §9.2.2) and whether the failure counts against
/// the backend.
///
/// The proxy classifies its own transport errors into these (hyper-util's
/// `Error::is_connect`, an `io::ErrorKind::ConnectionRefused`, h2's
/// `REFUSED_STREAM`, whether any byte of the request was written, whether
/// any byte of the response was read).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// No connection: refused, unreachable, reset during the handshake, or
    /// the connect timed out. Nothing was sent.
    Connect,
    /// A connection existed (a pooled one, say) but provably nothing of
    /// the request was written to it before it failed.
    NotWritten,
    /// HTTP/2: the backend refused the stream (`REFUSED_STREAM`, or a
    /// `GOAWAY` whose last stream id is below the request's): by the
    /// protocol, it did not process it.
    StreamRefused,
    /// The request was written (all or part), then the connection was
    /// reset or closed before any byte of a response: the backend may have
    /// acted on it.
    AfterWrite,
    /// The request was written and no response came in time: the backend
    /// may have acted on it.
    Timeout,
    /// A response had started (status line or body bytes were forwarded to
    /// the client) and then broke. It cannot be retried: the client
    /// already has part of an answer.
    ResponseBroken,
}

impl Failure {
    /// Every failure, in a fixed order.
    pub const ALL: [Failure; 6] = [
        Failure::Connect,
        Failure::NotWritten,
        Failure::StreamRefused,
        Failure::AfterWrite,
        Failure::Timeout,
        Failure::ResponseBroken,
    ];

    /// Whether the backend provably did not act on the request, so that
    /// even a non-idempotent one may be sent again: a connect failure,
    /// nothing written, or a refused HTTP/2 stream.
    #[must_use]
    pub const fn provably_not_acted_on(self) -> bool {
        matches!(
            self,
            Failure::Connect | Failure::NotWritten | Failure::StreamRefused
        )
    }

    /// Whether the request itself might have caused the failure (a request
    /// that crashes its handler, say): true once it was written. Such a
    /// failure is only a suspicion against the backend.
    #[must_use]
    pub const fn may_be_caused_by_request(self) -> bool {
        matches!(
            self,
            Failure::AfterWrite | Failure::Timeout | Failure::ResponseBroken
        )
    }

    /// A short, stable label: `connect`, `not_written`, `stream_refused`,
    /// `after_write`, `timeout`, `response_broken`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::NotWritten => "not_written",
            Failure::StreamRefused => "stream_refused",
            Failure::AfterWrite => "after_write",
            Failure::Timeout => "timeout",
            Failure::ResponseBroken => "response_broken",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
