//! Route files through the loader and the router; see `checks/route_config.rs`.
#![no_main]

#[path = "../checks/route_config.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
