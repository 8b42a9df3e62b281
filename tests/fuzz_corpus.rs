//! Replays the library's fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same checks the fuzz targets run (`fuzz/checks/<target>.rs`), so that
//! `cargo test` exercises every seed without cargo-fuzz. The gateway's
//! corpora are replayed by `examples/gateway/tests/fuzz_corpus.rs`.

#[path = "../fuzz/checks/cookie_header.rs"]
mod cookie_header;
#[path = "../fuzz/checks/policy_parse.rs"]
mod policy_parse;
#[path = "../fuzz/checks/token_decode.rs"]
mod token_decode;

#[path = "../fuzz/checks/replay.rs"]
mod replay;

/// Runs `check` on every file of `fuzz/corpus/<target>/`.
fn replay(target: &str, check: fn(&[u8])) {
    let corpora = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    replay::replay(&corpora, target, check);
}

#[test]
fn token_decode_corpus() {
    replay("token_decode", token_decode::run);
}

#[test]
fn cookie_header_corpus() {
    replay("cookie_header", cookie_header::run);
}

#[test]
fn policy_parse_corpus() {
    replay("policy_parse", policy_parse::run);
}
