//! Configuration parsing on arbitrary input: `sessionPersistence` blocks and
//! whole HTTPRoutes from YAML (then `validate`), and GEP-2257 durations.
//! Nothing panics; durations agree with the grammar and round-trip.
#![no_main]

#[path = "../checks/policy_parse.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::run(data));
