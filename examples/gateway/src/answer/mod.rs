//! Step 5 of a request: **answer**. What goes back to the client is the
//! backend's response with its hop-by-hop headers removed, the backend's own
//! copy of the session cookie (or header) stripped, `Cache-Control: private`
//! whenever a token is issued, and the session decision written as
//! `Set-Cookie` (or the session header) by the library's
//! [`Decision::apply`](tower_sticky::sticky::Decision::apply); or one of
//! the gateway's own fixed error lines ([`own`], every answer the gateway writes itself). On the way in,
//! [`headers`] also prepares the request (`X-Forwarded-*`, `Host`). A gRPC
//! call gets the gateway's own answers as gRPC statuses ([`grpc`]).

pub mod grpc;
pub mod headers;
pub mod own;
