use crate::balance::PickContext;
use crate::carrier::ClientTls;
use http::{HeaderMap, Method, Request, Uri};

/// What the session engine reads of a request: method, target, headers, and
/// whether the client connection is TLS. Borrowed, never changed, so any
/// proxy can build one from what it holds (an `http::Request`, its
/// `Parts`, Pingora's `RequestHeader`, ...).
///
/// ```
/// use http::{HeaderMap, Method, Uri};
/// use tower_sticky::sticky::RequestHead;
///
/// let (method, uri, headers) = (Method::GET, Uri::from_static("/cart"), HeaderMap::new());
/// let head = RequestHead::new(&method, &uri, &headers).tls(true);
/// assert!(head.is_tls());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    tls: bool,
}

impl<'a> RequestHead<'a> {
    /// A request over plain TCP, unless its URI has the `https` scheme.
    #[must_use]
    pub fn new(method: &'a Method, uri: &'a Uri, headers: &'a HeaderMap) -> Self {
        RequestHead {
            method,
            uri,
            headers,
            tls: uri.scheme() == Some(&http::uri::Scheme::HTTPS),
        }
    }

    /// Says whether the client connection is TLS (it decides the cookie's
    /// `Secure` attribute under [`Secure::Auto`](crate::carrier::Secure)).
    #[must_use]
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// A request's head; TLS when it carries the [`ClientTls`] extension or
    /// its URI has the `https` scheme.
    #[must_use]
    pub fn of<B>(req: &'a Request<B>) -> Self {
        Self::from_parts(req.method(), req.uri(), req.headers(), req.extensions())
    }

    pub(crate) fn from_parts(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        extensions: &http::Extensions,
    ) -> Self {
        let head = Self::new(method, uri, headers);
        if extensions.get::<ClientTls>().is_some() {
            head.tls(true)
        } else {
            head
        }
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// The request target.
    #[must_use]
    pub fn uri(&self) -> &'a Uri {
        self.uri
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &'a HeaderMap {
        self.headers
    }

    /// Whether the client connection is TLS.
    #[must_use]
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// What a [`Balance`](crate::balance::Balance) sees of the request.
    #[must_use]
    pub fn pick_context(&self) -> PickContext<'a> {
        PickContext {
            method: self.method,
            uri: self.uri,
            headers: self.headers,
        }
    }
}
