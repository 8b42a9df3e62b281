//! The lean HTTP/1 path over in-memory streams; see `checks/lean.rs`.
#![no_main]

#[path = "../checks/lean.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
