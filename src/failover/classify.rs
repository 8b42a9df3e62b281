use super::Failure;
use std::error::Error;
use std::io;

/// Decides which errors of the inner (proxy) service are backend failures,
/// and of which kind; `None`: not a backend failure, the error goes to the
/// caller as it is. In the spirit of tower-http's `classify`.
///
/// Closures `Fn(&E) -> Option<Failure>` are classifiers; with hyper-util's
/// client, for example:
///
/// ```
/// use tower_sticky::failover::{Classify, Failure};
///
/// let classify = |e: &hyper_util::client::legacy::Error| e.is_connect().then_some(Failure::Connect);
/// # fn check<C: Classify<hyper_util::client::legacy::Error>>(_: &C) {}
/// # check(&classify);
/// ```
pub trait Classify<E>: Send + Sync + 'static {
    /// The failure `error` stands for, if it is one.
    fn classify(&self, error: &E) -> Option<Failure>;
}

impl<E, F> Classify<E> for F
where
    F: Fn(&E) -> Option<Failure> + Send + Sync + 'static,
{
    fn classify(&self, error: &E) -> Option<Failure> {
        self(error)
    }
}

/// The default classifier: an error whose chain of sources holds an
/// `io::Error` of a connection that could not be made (refused, host or
/// network unreachable, address not available) is a
/// [`Failure::Connect`]; anything else is not a backend failure. hyper-util's
/// client reports a refused connection this way.
///
/// ```
/// use std::io;
/// use tower_sticky::failover::{Classify, ConnectErrors, Failure};
///
/// let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
/// assert_eq!(ConnectErrors.classify(&refused), Some(Failure::Connect));
/// let reset = io::Error::from(io::ErrorKind::ConnectionReset);
/// assert_eq!(ConnectErrors.classify(&reset), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnectErrors;

impl<E: Error + 'static> Classify<E> for ConnectErrors {
    fn classify(&self, error: &E) -> Option<Failure> {
        let mut next: Option<&(dyn Error + 'static)> = Some(error);
        while let Some(e) = next {
            if let Some(io) = e.downcast_ref::<io::Error>()
                && matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable
                        | io::ErrorKind::AddrNotAvailable
                )
            {
                return Some(Failure::Connect);
            }
            next = e.source();
        }
        None
    }
}
