//! The glue every proxy writes: pointing a request at the backend the
//! layer pinned it to, and the `X-Forwarded-*` headers.
//!
//! * [`Upstream`]: what a backend target says about how to reach it (a
//!   `SocketAddr`, an `http::uri::Authority`, or either with a scheme).
//! * [`point_at`] / [`point_at_pinned`]: the request's URI becomes
//!   `scheme://authority/path?query`, and the client's `Host` is kept (set
//!   from the URI's authority when the client sent none, as HTTP/2 does).
//! * [`XForwarded`]: `X-Forwarded-For` (appended), `-Proto` and `-Host`.
//! * [`strip_hop_by_hop`]: the headers a proxy must not forward
//!   (RFC 9110 §7.6.1).
//!
//! ```
//! use std::net::SocketAddr;
//! use http::Request;
//! use tower_sticky::forward::{XForwarded, point_at};
//!
//! let mut req = Request::builder().uri("/cart?id=7").header("host", "shop.example").body(()).unwrap();
//! let backend: SocketAddr = "127.0.0.1:3001".parse().unwrap();
//! point_at(&mut req, &backend);
//! XForwarded::new("203.0.113.9".parse().unwrap()).apply(req.headers_mut());
//! assert_eq!(req.uri(), "http://127.0.0.1:3001/cart?id=7");
//! assert_eq!(req.headers()["host"], "shop.example");
//! assert_eq!(req.headers()["x-forwarded-for"], "203.0.113.9");
//! assert_eq!(req.headers()["x-forwarded-proto"], "http");
//! assert_eq!(req.headers()["x-forwarded-host"], "shop.example");
//! ```

mod hop_by_hop;
mod upstream;
mod x_forwarded;

pub use hop_by_hop::strip_hop_by_hop;
pub use upstream::{Upstream, point_at, point_at_pinned};
pub use x_forwarded::XForwarded;
