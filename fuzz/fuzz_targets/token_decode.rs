//! `TokenCodec::decode` on arbitrary input never panics, and whatever decodes
//! re-encodes to exactly the value that came in.
#![no_main]

#[path = "../checks/token_decode.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
