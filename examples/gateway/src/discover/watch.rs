//! Noticing that a file changed: `--endpoints` files are re-read within 2 s.
//!
//! The files are polled (every [`INTERVAL`]) and their bytes compared, not
//! watched with inotify: a ConfigMap mounted by kubelet changes by swapping
//! a symlink two directories up (`..data`), a file replaced by rename is a
//! new inode, and an editor may write in place. Reading a few small files a
//! few times a second sees all three the same way.
//!
//! A change counts once the bytes are the same on two polls in a row, so a
//! file being written in place is not read while the writer keeps writing;
//! but a writer that pauses for longer than a poll is read half-written
//! (issue 19, finding 4). Files must be replaced atomically (written
//! beside, then renamed over), as kubelet and `kubectl` do; a change that
//! shrinks a Service by more than half is logged as a warning
//! ([`super::sizes`]).

use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// How often the files are read.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// One file: what the last poll read and what the last reload saw.
struct Watched {
    path: PathBuf,
    seen: Option<Vec<u8>>,
    applied: Option<Vec<u8>>,
}

/// Files to watch, with the contents they have now.
pub struct Watcher {
    files: Vec<Watched>,
}

impl Watcher {
    /// Reads `paths` now: later contents are compared with these.
    pub fn new(paths: Vec<PathBuf>) -> Self {
        let files = paths
            .into_iter()
            .map(|path| {
                let now = std::fs::read(&path).ok();
                Watched {
                    path,
                    seen: now.clone(),
                    applied: now,
                }
            })
            .collect();
        Watcher { files }
    }

    /// Polls until `stop` turns true; sends the changed file on `changed`
    /// each time one settles on new contents.
    pub async fn run(
        mut self,
        changed: mpsc::UnboundedSender<PathBuf>,
        mut stop: watch::Receiver<bool>,
    ) {
        if self.files.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tick.tick() => {}
            }
            for f in &mut self.files {
                let now = tokio::fs::read(&f.path).await.ok();
                if now != f.applied && now == f.seen {
                    f.applied.clone_from(&now);
                    if changed.send(f.path.clone()).is_err() {
                        return;
                    }
                }
                f.seen = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("watch-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<PathBuf>) -> PathBuf {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a change within 10 s")
            .expect("watcher alive")
    }

    #[tokio::test]
    async fn in_place_writes_renames_and_symlink_swaps_are_all_seen() {
        let d = dir("all");
        let file = d.join("slices.yaml");
        std::fs::write(&file, "one").unwrap();
        // A kubelet-style mount: file -> ..data/file, ..data -> ..v1.
        std::fs::create_dir_all(d.join("..v1")).unwrap();
        std::fs::write(d.join("..v1/k.yaml"), "v1").unwrap();
        std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/k.yaml", d.join("k.yaml")).unwrap();

        let (tx, mut rx) = mpsc::unbounded_channel();
        let (_stop_tx, stop) = watch::channel(false);
        tokio::spawn(Watcher::new(vec![file.clone(), d.join("k.yaml")]).run(tx, stop));

        std::fs::write(&file, "two").unwrap();
        assert_eq!(next(&mut rx).await, file);

        let tmp = d.join(".slices.yaml.tmp");
        std::fs::write(&tmp, "three").unwrap();
        std::fs::rename(&tmp, &file).unwrap();
        assert_eq!(next(&mut rx).await, file);

        std::fs::create_dir_all(d.join("..v2")).unwrap();
        std::fs::write(d.join("..v2/k.yaml"), "v2").unwrap();
        std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).unwrap();
        std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
        assert_eq!(next(&mut rx).await, d.join("k.yaml"));
        // Nothing else changed: no further notice.
        assert!(tokio::time::timeout(INTERVAL * 4, rx.recv()).await.is_err());
    }
}
