//! End-to-end tests of the example gateway: the real `tower-sticky-gateway` and
//! `tower-sticky-echo` binaries on 127.0.0.1 with ephemeral ports, driven by
//! `curl` (the seed's lines, verbatim) and by hyper.

mod admin_guard;
mod bad_input;
mod control_plane;
mod counters;
mod dns;
mod failures;
mod gep1619;
mod grpc;
mod grpc_support;
mod h2c;
mod hardening;
mod health_check;
mod in_flight;
mod loops;
mod operations;
mod ownership;
mod poison;
mod proxying;
mod raw;
mod retries;
mod reuse_and_limits;
mod route_order;
mod sessions;
mod shutdown;
mod stalled_bodies;
mod support;
mod survive;
mod tls;
mod walkthrough;
mod websocket;
