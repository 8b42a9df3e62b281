//! The carriers on arbitrary header bytes: reading never panics, and
//! `strip_cookie` removes exactly the named cookie and keeps every other pair.
#![no_main]

#[path = "../checks/cookie_header.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
