//! End-to-end tests of the example gateway: the real `examples/gateway` and
//! `examples/echo` binaries on 127.0.0.1, driven by `curl` and hyper.

#[path = "../../examples/gateway/stray_cr.rs"]
mod stray_cr;
