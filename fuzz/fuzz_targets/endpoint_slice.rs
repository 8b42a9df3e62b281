//! EndpointSlice YAML through the gateway's reader; see `checks/endpoint_slice.rs`.
#![no_main]

#[path = "../checks/endpoint_slice.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
