//! End-to-end tests of the example gateway: the real `examples/gateway` and
//! `examples/echo` binaries on 127.0.0.1 with ephemeral ports, driven by
//! `curl` (the seed's lines, verbatim) and by hyper.

mod bad_input;
mod gep1619;
mod proxying;
mod sessions;
mod support;
mod walkthrough;

/// The gateway's stray-CR reader, unit-tested here (examples' own tests do
/// not run under `cargo test`).
#[path = "../../examples/gateway/stray_cr.rs"]
#[allow(dead_code, unreachable_pub)]
mod stray_cr;
