//! Which Gateway API kind a loaded route was: HTTPRoute or GRPCRoute.
//!
//! The library validates both into the same typed [`Route`](tower_sticky::route::Route)
//! (a GRPCRoute's method matches become path matches); the gateway keeps
//! the kind because three things depend on it:
//! * routing: a GRPCRoute matches gRPC calls only, with its own precedence
//!   ([`crate::route::grpc`]);
//! * identity: an HTTPRoute and a GRPCRoute may share a namespace/name, and
//!   are two objects;
//! * sessions: a GRPCRoute rule's tokens are bound to a scope of its own
//!   (`grpcroute/…`), so they never pass for the same-named HTTPRoute's.

/// The kind of a loaded route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RouteKind {
    /// `HTTPRoute`.
    #[default]
    Http,
    /// `GRPCRoute`.
    Grpc,
}

impl RouteKind {
    /// `HTTPRoute` or `GRPCRoute`, as messages write it.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        }
    }

    /// The first part of the session scope of the kind's rules.
    pub fn scope_prefix(self) -> &'static str {
        match self {
            RouteKind::Http => "httproute",
            RouteKind::Grpc => "grpcroute",
        }
    }
}
