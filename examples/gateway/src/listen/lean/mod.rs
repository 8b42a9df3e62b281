//! The gateway's own HTTP/1.1 path (`--http1 lean`, issue 21), beside
//! hyper's.
//!
//! A general HTTP client and server stack spends most of a proxied
//! request's instructions on machinery a proxy does not need: a client
//! connection task, a pool and a dispatch channel per upstream connection,
//! a body channel, a `HeaderMap` per direction rebuilt and cloned. This
//! path does what a proxy needs and no more:
//!
//! * [`head`]: request and response heads parsed with `httparse` into stack
//!   storage, with the message framing decided once (RFC 9112 §6.3, and
//!   what HAProxy rejects is rejected); the one leniency is RFC 9110 §5.5's
//!   CR at the very end of a field value (the seed's `awk` case);
//! * [`encode`]: heads written back to bytes with the gateway's edits;
//! * [`chunked`]: chunked bodies forwarded as they are, their framing
//!   followed so that a connection stays in step;
//! * `conn`: one task per client connection: route, pin and answer
//!   through the same steps as the hyper path, and the upstream sockets
//!   that connection owns (so they never cross clients); each request's
//!   steps, in the order it lives, are in `exchange` (decide, upstream
//!   head, body, attempts), `attempt` (one socket, the request out, the
//!   response head in) and `respond` (the response back, or a tunnel).
//!
//! What the path does not handle goes to hyper on the same connection:
//! h2c backends, gRPC, and `--http-reuse always` (whose shared pool is
//! hyper's).

mod attempt;
mod body;
mod bufs;
pub mod chunked;
mod conn;
pub mod encode;
mod exchange;
/// In-memory runs of the lean path, for the fuzz target and the
/// differential tests (not part of the gateway's interface).
#[doc(hidden)]
pub mod fuzzing;
pub mod head;
mod respond;
mod rewind;
mod upstream;
mod upstream_head;

pub use conn::{HEAD_TIMEOUT, Served, serve};
pub use rewind::Rewind;
pub use upstream::{Connector, Tcp};
