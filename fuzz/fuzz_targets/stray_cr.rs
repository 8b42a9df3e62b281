//! The stray-CR head rewriter against a reference; see `checks/stray_cr.rs`.
#![no_main]

#[path = "../checks/stray_cr.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
