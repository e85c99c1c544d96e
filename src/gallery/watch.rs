//! The gallery as it is now, for the daemon's cameras ([`LiveGallery`]): the track stage searches a
//! [`SearchView`] of it, in the same frame as it embedded the faces. The gallery may change while the daemon runs
//! (`facewatch enroll`, the API): a watcher thread (`gallery`) looks for changes every [`GALLERY_POLL`], reads them
//! and builds the new view's index there (about 2 s for a million embeddings' codes), and [`LiveGallery::refresh`] swaps
//! it in when it is ready. The track stage never waits for a rebuild. Several cameras share one view and one
//! watcher ([`LiveGallery::shared`]): the gallery is held and re-indexed once, not once per camera.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use tracing::{info, warn};

use super::Gallery;
use crate::base::{Candidate, Embedding};
use crate::matcher::strangers::StrangerBook;
use crate::matcher::SearchView;

/// How often the watcher looks for gallery changes made by other processes (`facewatch enroll` while running).
pub const GALLERY_POLL: Duration = Duration::from_secs(2);

/// The newest search view of the gallery, shared by the live galleries of every camera, with its generation (how many the
/// watcher has made); the atomic copy of the generation lets a live gallery look without taking the lock.
struct Latest {
    snapshot: RwLock<(u64, Arc<SearchView>)>,
    generation: AtomicU64,
    /// The strangers every camera matches against and adds to; read again whole when a person edits them.
    book: Arc<parking_lot::Mutex<StrangerBook>>,
}

/// The gallery's newest search view, for one camera's track stage.
pub struct LiveGallery {
    current: Arc<SearchView>,
    seen: u64,
    top_k: usize,
    /// Shared with the watcher, which runs while any live gallery holds it.
    latest: Arc<Latest>,
}

impl LiveGallery {
    /// Searches `gallery` for the `top_k` best persons (`[matcher] top_k`); its view is built now, and a
    /// watcher thread takes the gallery to follow its changes.
    pub fn new(gallery: Gallery, top_k: usize) -> Self {
        Self::shared(gallery, top_k, 1).pop().expect("one live gallery asked for")
    }

    /// `n` live galleries (one per camera) over one copy of `gallery`: one search view and index in memory, one watcher
    /// thread that re-reads and re-indexes a changed gallery once for all of them. A camera that takes no frames
    /// (its source lost) holds nobody back: each live gallery takes the newest view when it next looks.
    pub fn shared(gallery: Gallery, top_k: usize, n: usize) -> Vec<Self> {
        let current = Arc::new(gallery.search_view());
        let book = gallery.stranger_book().unwrap_or_else(|e| {
            warn!(error = %e, "The strangers could not be read; the daemon starts without them.");
            StrangerBook::new()
        });
        let latest = Arc::new(Latest {
            snapshot: RwLock::new((0, current.clone())),
            generation: AtomicU64::new(0),
            book: Arc::new(parking_lot::Mutex::new(book)),
        });
        let watching = Arc::downgrade(&latest);
        let watcher = crate::stage::thread("gallery", move || watch(gallery, &watching));
        if let Err(e) = watcher {
            warn!(error = %e, "Could not start the gallery watcher; changes on disk need a restart.");
        }
        (0..n.max(1)).map(|_| Self { current: current.clone(), seen: 0, top_k: top_k.max(1), latest: latest.clone() }).collect()
    }

    /// Persons in the view searched now.
    pub fn persons(&self) -> usize {
        self.current.persons()
    }

    /// Swaps in the view of a changed gallery when the watcher has one ready; never waits on a rebuild. Returns
    /// whether it did.
    pub fn refresh(&mut self) -> bool {
        if self.latest.generation.load(Ordering::Acquire) == self.seen {
            return false;
        }
        let (generation, snapshot) = self.latest.snapshot.read().clone();
        (self.seen, self.current) = (generation, snapshot);
        info!(persons = self.current.persons(), embeddings = self.current.len(), "Gallery changed on disk; reloaded.");
        true
    }

    /// How large the gallery every camera searches is, for the metrics; it follows the watcher's newest view.
    pub fn size(&self) -> GallerySize {
        GallerySize { latest: Arc::downgrade(&self.latest) }
    }

    /// The strangers of the gallery, shared by every camera.
    pub fn strangers(&self) -> Arc<parking_lot::Mutex<StrangerBook>> {
        self.latest.book.clone()
    }

    /// The best candidates for `e`, best first.
    pub fn search(&self, e: &Embedding) -> Vec<Candidate> {
        self.current.search(e, self.top_k)
    }
}

/// How large the daemon's gallery is in memory ([`LiveGallery::size`]): read from the newest search view and the
/// strangers' book, never from the store, so a reader (each metrics scrape) costs no query. It holds the live
/// galleries up in nothing: once the pipeline is gone it answers `None`.
#[derive(Clone)]
pub struct GallerySize {
    latest: Weak<Latest>,
}

/// What [`GallerySize::now`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GalleryFigures {
    /// Persons enrolled.
    pub persons: usize,
    /// Their embeddings (photos), all of them searched.
    pub embeddings: usize,
    /// Strangers known (`[strangers]`).
    pub strangers: usize,
}

impl GallerySize {
    /// The figures of the newest view (the one the cameras search, or take at their next frame).
    pub fn now(&self) -> Option<GalleryFigures> {
        let latest = self.latest.upgrade()?;
        let (persons, embeddings) = {
            let snapshot = latest.snapshot.read();
            (snapshot.1.persons(), snapshot.1.len())
        };
        let strangers = latest.book.lock().len();
        Some(GalleryFigures { persons, embeddings, strangers })
    }
}

/// The watcher: reads the gallery's changes and publishes a search view of each, built once on this thread, for every
/// live gallery; it ends when the live galleries are gone (at its next look; a rebuild in progress finishes first, off every
/// other thread).
fn watch(mut gallery: Gallery, latest: &Weak<Latest>) {
    let mut looked = Instant::now();
    let mut failing = false;
    while latest.strong_count() > 0 {
        // A store that is told of changes (PostgreSQL's notifications) wakes this at once; the version is looked
        // at every GALLERY_POLL in any case, which is also the resync after a lost connection.
        let told = gallery.wait_change(Duration::from_millis(100));
        if !told && looked.elapsed() < GALLERY_POLL {
            continue;
        }
        looked = Instant::now();
        match gallery.poll() {
            Ok(changes) => {
                if std::mem::take(&mut failing) {
                    info!(gallery = %gallery.path().display(), "The gallery can be read again.");
                }
                if !changes.strangers && !changes.persons && !changes.seen {
                    continue;
                }
                let Some(latest) = latest.upgrade() else { return };
                if changes.seen && !changes.strangers {
                    // Another node met new strangers: added beside this node's own (some not written yet).
                    match gallery.stranger_book() {
                        Ok(book) => {
                            let took = latest.book.lock().take_new(book);
                            if took > 0 {
                                info!(strangers = took, "Strangers another node met; added.");
                            }
                        }
                        Err(e) => {
                            warn!(error = %e, "Reading the strangers another node met failed; trying again at the next look.");
                            gallery.look_again_at_strangers();
                        }
                    }
                }
                if changes.strangers {
                    match gallery.stranger_book() {
                        Ok(book) => {
                            info!(strangers = book.len(), "Strangers changed; reloaded.");
                            *latest.book.lock() = book;
                        }
                        Err(e) => {
                            warn!(error = %e, "Reading the changed strangers failed; keeping the previous ones until the next try.");
                            gallery.look_again_at_strangers();
                        }
                    }
                }
                if !changes.persons {
                    continue;
                }
                let started = Instant::now();
                let snapshot = Arc::new(gallery.search_view());
                info!(embeddings = snapshot.len(), build_ms = started.elapsed().as_millis() as u64, "Gallery re-indexed.");
                let generation = latest.generation.load(Ordering::Relaxed) + 1;
                // The one it replaces is dropped after the lock is let go: freeing a large index takes a while.
                let replaced = std::mem::replace(&mut *latest.snapshot.write(), (generation, snapshot));
                latest.generation.store(generation, Ordering::Release);
                drop(replaced);
            }
            // Said once, not every poll, while the gallery stays unreadable (a PostgreSQL server down).
            Err(e) if !failing => {
                failing = true;
                warn!(error = %e, "Reading the gallery failed; matching goes on against the people in memory.");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gallery::NewEmbedding;

    fn person(angle: f32) -> Vec<NewEmbedding> {
        let embedding = Embedding::from_raw(vec![angle.cos(), angle.sin(), 0.0]).expect("non-zero");
        let id = format!("{angle}.jpg");
        vec![NewEmbedding { embedding, source_path: id.clone(), file_sha256: id, det_score: 0.9, crop: None }]
    }

    /// Refreshes `m` until it searches `persons` persons (the watcher looks every GALLERY_POLL).
    fn until_persons(m: &mut LiveGallery, persons: usize) -> bool {
        let deadline = Instant::now() + GALLERY_POLL * 10;
        while Instant::now() < deadline {
            m.refresh();
            if m.persons() == persons {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[test]
    fn cameras_share_one_snapshot_and_one_that_never_looks_holds_nobody_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.db");
        let mut gallery = Gallery::open(&path, "fake", 3, 100).expect("gallery");
        gallery.enroll("ann", &person(0.0)).expect("enroll");
        let mut cameras = LiveGallery::shared(gallery, 3, 2);
        let mut lost = cameras.pop().expect("two");
        let mut door = cameras.pop().expect("two");
        assert!(Arc::ptr_eq(&door.current, &lost.current), "one gallery in memory for both cameras");

        // Two changes on disk while one camera (its source lost) never refreshes: the other sees both.
        let mut writer = Gallery::open(&path, "fake", 3, 100).expect("second connection");
        writer.enroll("bob", &person(1.5)).expect("enroll");
        assert!(until_persons(&mut door, 2), "the first change reached the camera that looks");
        writer.enroll("cy", &person(3.0)).expect("enroll");
        assert!(until_persons(&mut door, 3), "the second change too, though the other camera took neither");
        // The camera that comes back takes the newest snapshot, the very one the other searches.
        lost.refresh();
        assert_eq!(lost.persons(), 3);
        assert!(Arc::ptr_eq(&door.current, &lost.current));
        assert_eq!(lost.search(&person(3.0)[0].embedding)[0].name, "cy");
        let size = door.size();
        assert_eq!(size.now(), Some(GalleryFigures { persons: 3, embeddings: 3, strangers: 0 }));
        drop((door, lost, cameras));
        // The watcher may still hold the view it just published for a moment.
        let deadline = Instant::now() + GALLERY_POLL;
        while size.now().is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(size.now(), None, "the figures hold no gallery up");
    }
}
