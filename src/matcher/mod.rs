//! Match: an embedding in, the gallery's top-k candidates out (exact scan or HNSW, chosen by the gallery's size).
//!
//! A step of the track stage, not a thread of its own: the track stage asks for the candidates of the faces it
//! embedded, in the same frame, from a [`Snapshot`] of the gallery. The gallery may change on disk while the daemon
//! runs (`facewatch enroll`): a watcher thread (`gallery`) looks for changes every [`GALLERY_POLL`], reads them and
//! builds the new snapshot's index there (minutes for HNSW at 100k embeddings), and [`Matcher::refresh`] swaps it
//! in when it is ready. The track stage never waits for a rebuild.

mod config;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, TryRecvError};
use tracing::{info, warn};

use crate::base::{Candidate, Embedding};
use crate::gallery::{Gallery, Snapshot};
pub use config::MatcherConfig;

/// How often the watcher looks for gallery changes made by other processes (`facewatch enroll` while running).
pub const GALLERY_POLL: Duration = Duration::from_secs(2);

/// Gallery search for the track stage.
pub struct Matcher {
    current: Snapshot,
    top_k: usize,
    updates: Receiver<Snapshot>,
    stop: Arc<AtomicBool>,
}

impl Matcher {
    /// Searches `gallery` for the `top_k` best persons (`[matcher] top_k`); its snapshot is built now, and a
    /// watcher thread takes the gallery to follow its changes.
    pub fn new(gallery: Gallery, top_k: usize) -> Self {
        let current = gallery.snapshot();
        let (tx, updates) = crossbeam_channel::bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let watching = stop.clone();
        let watcher = std::thread::Builder::new().name("gallery".into()).spawn(move || watch(gallery, &tx, &watching));
        if let Err(e) = watcher {
            warn!(error = %e, "Could not start the gallery watcher; changes on disk need a restart.");
        }
        Self { current, top_k: top_k.max(1), updates, stop }
    }

    /// Persons in the snapshot searched now.
    pub fn persons(&self) -> usize {
        self.current.persons()
    }

    /// Swaps in the snapshot of a changed gallery when the watcher has one ready; never waits.
    pub fn refresh(&mut self) {
        match self.updates.try_recv() {
            Ok(next) => {
                info!(persons = next.persons(), embeddings = next.len(), "Gallery changed on disk; reloaded.");
                self.current = next;
            }
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
        }
    }

    /// The best candidates for `e`, best first.
    pub fn search(&self, e: &Embedding) -> Vec<Candidate> {
        self.current.search(e, self.top_k)
    }
}

impl Drop for Matcher {
    fn drop(&mut self) {
        // The watcher ends at its next look (a rebuild in progress finishes first, off every other thread).
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The watcher: reads the gallery's changes and hands over a snapshot of each, built on this thread.
fn watch(mut gallery: Gallery, tx: &crossbeam_channel::Sender<Snapshot>, stop: &AtomicBool) {
    let mut looked = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if looked.elapsed() < GALLERY_POLL {
            continue;
        }
        looked = Instant::now();
        match gallery.reload_if_changed() {
            Ok(true) => {
                let started = Instant::now();
                let snapshot = gallery.snapshot();
                info!(embeddings = snapshot.len(), build_ms = started.elapsed().as_millis() as u64, "Gallery re-indexed.");
                // One snapshot waits at a time: the next is built only after the track stage took this one.
                if tx.send(snapshot).is_err() {
                    return;
                }
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, "Reading the changed gallery failed; matching against the previous one."),
        }
    }
}
