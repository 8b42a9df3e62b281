//! Replays a fuzz corpus through its target's check, for `cargo test`:
//! included by `tests/fuzz_corpus.rs` (the library's targets) and by
//! `examples/gateway/tests/fuzz_corpus.rs` (the gateway's).

use std::path::{Path, PathBuf};

/// Runs `check` on every file of `<corpora>/<target>/`, naming the file
/// that fails; a missing or empty corpus fails too.
pub fn replay(corpora: &Path, target: &str, check: fn(&[u8])) {
    let dir = corpora.join(target);
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
