//! Match: an embedding in, the gallery's top-k candidates out (exact scan or HNSW, chosen by the gallery's size).
//!
//! A step of the track stage, not a thread of its own: the track stage asks for the candidates of the faces it
//! embedded, in the same frame. The gallery may change on disk while the daemon runs (`facewatch enroll`): the
//! matcher looks for changes every [`GALLERY_POLL`] and, when there are some, reads them and swaps them in.

mod config;

use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::base::{Candidate, Embedding};
use crate::gallery::Gallery;
pub use config::MatcherConfig;

/// How often the matcher looks for gallery changes made by other processes (`facewatch enroll` while running).
pub const GALLERY_POLL: Duration = Duration::from_secs(2);

/// Gallery search for the track stage.
pub struct Matcher {
    gallery: Gallery,
    top_k: usize,
    polled: Instant,
}

impl Matcher {
    /// Searches `gallery` for the `top_k` best persons (`[matcher] top_k`).
    pub fn new(gallery: Gallery, top_k: usize) -> Self {
        Self { gallery, top_k: top_k.max(1), polled: Instant::now() }
    }

    /// The gallery matched against.
    pub fn gallery(&self) -> &Gallery {
        &self.gallery
    }

    /// Reads the gallery again when another process changed it, at most every [`GALLERY_POLL`]; a failed read
    /// keeps the previous gallery (logged).
    pub fn refresh(&mut self) {
        if self.polled.elapsed() < GALLERY_POLL {
            return;
        }
        self.polled = Instant::now();
        match self.gallery.reload_if_changed() {
            Ok(true) => info!(
                persons = self.gallery.persons().map_or(0, |p| p.len()),
                embeddings = self.gallery.len(),
                "Gallery changed on disk; reloaded."
            ),
            Ok(false) => {}
            Err(e) => warn!(error = %e, "Reading the changed gallery failed; matching against the previous one."),
        }
    }

    /// The best candidates for `e`, best first.
    pub fn search(&self, e: &Embedding) -> Vec<Candidate> {
        self.gallery.search(e, self.top_k)
    }
}
