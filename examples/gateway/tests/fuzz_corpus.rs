//! Replays the gateway's fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same checks the fuzz targets run (`fuzz/checks/<target>.rs`), so that
//! `cargo test` exercises every seed without cargo-fuzz.

#[path = "../../../fuzz/checks/endpoint_slice.rs"]
mod endpoint_slice;
#[path = "../../../fuzz/checks/route_config.rs"]
mod route_config;
#[path = "../../../fuzz/checks/stray_cr.rs"]
mod stray_cr;

use std::path::PathBuf;

/// Runs `check` on every file of `fuzz/corpus/<target>/`, naming the file
/// that fails; a missing or empty corpus fails too.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../fuzz/corpus/{target}"));
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
fn stray_cr_corpus() {
    replay("stray_cr", stray_cr::run);
}

#[test]
fn route_config_corpus() {
    replay("route_config", route_config::run);
}

#[test]
fn endpoint_slice_corpus() {
    replay("endpoint_slice", endpoint_slice::run);
}
