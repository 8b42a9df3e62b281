//! Replays the gateway's fuzz corpora (`fuzz/corpus/<target>/`) through the
//! same checks the fuzz targets run (`fuzz/checks/<target>.rs`), so that
//! `cargo test` exercises every seed without cargo-fuzz.

#[path = "../../../fuzz/checks/endpoint_slice.rs"]
mod endpoint_slice;
#[path = "../../../fuzz/checks/route_config.rs"]
mod route_config;
#[path = "../../../fuzz/checks/stray_cr.rs"]
mod stray_cr;

#[path = "../../../fuzz/checks/replay.rs"]
mod replay;

/// Runs `check` on every file of `fuzz/corpus/<target>/`.
fn replay(target: &str, check: fn(&[u8])) {
    let corpora = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    replay::replay(&corpora, target, check);
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
