//! How the gateway speaks to an endpoint: HTTP/1.1 (the default) or
//! cleartext HTTP/2 (`h2c`), which gRPC needs.
//!
//! An endpoint is h2c when its `--backend` address is written
//! `h2c://HOST:PORT`, or when its EndpointSlice port says
//! `appProtocol: kubernetes.io/h2c` (the name Kubernetes standardised in
//! KEP-3726). Every other `appProtocol` (`http`, `kubernetes.io/ws`, a
//! vendor's own) stays HTTP/1.1.

/// The protocol of the gateway's connections to one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AppProtocol {
    /// HTTP/1.1, one request at a time per connection.
    #[default]
    Http1,
    /// Cleartext HTTP/2 with prior knowledge: multiplexed streams.
    H2c,
}

/// The `appProtocol` that marks an h2c port.
pub const H2C_APP_PROTOCOL: &str = "kubernetes.io/h2c";
/// The `--backend` scheme that marks an h2c endpoint.
pub const H2C_SCHEME: &str = "h2c://";

impl AppProtocol {
    /// The protocol an EndpointSlice port's `appProtocol` asks for.
    pub fn from_app_protocol(app_protocol: Option<&str>) -> Self {
        match app_protocol {
            Some(p) if p.eq_ignore_ascii_case(H2C_APP_PROTOCOL) => AppProtocol::H2c,
            _ => AppProtocol::Http1,
        }
    }

    /// `--backend` endpoint text without its scheme, and the protocol the
    /// scheme asks for (`h2c://`; none is HTTP/1.1).
    pub fn split_scheme(endpoint: &str) -> (Self, &str) {
        match endpoint.strip_prefix(H2C_SCHEME) {
            Some(rest) => (AppProtocol::H2c, rest),
            None => (AppProtocol::Http1, endpoint),
        }
    }

    /// The `--backend` prefix that writes this protocol.
    pub fn scheme(self) -> &'static str {
        match self {
            AppProtocol::Http1 => "",
            AppProtocol::H2c => H2C_SCHEME,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AppProtocol;

    #[test]
    fn only_the_h2c_app_protocol_and_scheme_mean_h2c() {
        let from = AppProtocol::from_app_protocol;
        assert_eq!(from(Some("kubernetes.io/h2c")), AppProtocol::H2c);
        assert_eq!(from(Some("http")), AppProtocol::Http1);
        assert_eq!(from(Some("kubernetes.io/ws")), AppProtocol::Http1);
        assert_eq!(from(None), AppProtocol::Http1);
        assert_eq!(
            AppProtocol::split_scheme("h2c://127.0.0.1:50051"),
            (AppProtocol::H2c, "127.0.0.1:50051")
        );
        assert_eq!(
            AppProtocol::split_scheme("127.0.0.1:80"),
            (AppProtocol::Http1, "127.0.0.1:80")
        );
    }
}
