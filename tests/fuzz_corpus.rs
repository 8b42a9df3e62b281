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

use std::path::PathBuf;

/// Runs `check` on every file of `fuzz/corpus/<target>/`, naming the file
/// that fails; a missing or empty corpus fails too.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fuzz/corpus/{target}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no corpus", dir.display());
    for file in &files {
        let data = std::fs::read(file).expect("read corpus file");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            panic!("{target}: {} fails its check", file.display());
        }
    }
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
