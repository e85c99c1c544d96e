//! The interface a gallery is kept behind ([`GalleryStore`]): SQLite for one node ([`super::sqlite::SqliteStore`]),
//! PostgreSQL for several ([`super::pg::PgStore`]). A store keeps persons, their photos' embeddings and what they were enrolled from; every write is
//! one transaction, so a crash leaves nothing half-written. Searching is not the store's: [`super::Gallery`] holds
//! every embedding in memory and [`crate::matcher`] searches them.

use std::path::Path;
use std::time::Duration;

use super::copy::GalleryDump;
use super::strangers::{FaceTarget, MovedFace, NewStrangerFace, StoredStranger, Versions};
use super::{GalleryError, NewEmbedding, PersonSummary, PhotoSummary, RemovedPhoto};

/// One stored embedding, as a store gives it back.
#[derive(Debug, Clone)]
pub struct StoredEmbedding {
    /// Its id in the store.
    pub id: i64,
    /// Whose it is.
    pub name: String,
    /// The vector (unit length).
    pub vector: Vec<f32>,
    /// The photo it was enrolled from.
    pub source_path: String,
}

/// Where a gallery is kept. Writes are transactions; reads see what is committed, by any process.
pub trait GalleryStore: Send {
    /// Where it is, for messages (a file path, later a server).
    fn location(&self) -> &Path;
    /// The recognizer whose embeddings it holds.
    fn model(&self) -> &str;
    /// Their length.
    fn dim(&self) -> usize;
    /// Every embedding, by person name, then id.
    fn embeddings(&self) -> Result<Vec<StoredEmbedding>, GalleryError>;
    /// A number that changes whenever anyone commits a change (cheap: the daemon polls it).
    fn version(&self) -> Result<i64, GalleryError>;
    /// Waits up to `timeout` for a change another process announces; true when one may have happened (look at
    /// [`GalleryStore::version`] then). A store that is not told of changes (SQLite) waits and returns false: the
    /// caller polls the version.
    fn wait_change(&mut self, timeout: Duration) -> bool {
        std::thread::sleep(timeout);
        false
    }
    /// Adds `items` to `name` (creating the person) in one transaction, skipping photos already enrolled for them;
    /// returns the positions in `items` of those added, with their ids in the store.
    fn enroll(&mut self, name: &str, items: &[NewEmbedding]) -> Result<Vec<(usize, i64)>, GalleryError>;
    /// Every person, by name.
    fn persons(&self) -> Result<Vec<PersonSummary>, GalleryError>;
    /// A person's photos, oldest first.
    fn photos(&self, name: &str) -> Result<Vec<PhotoSummary>, GalleryError>;
    /// Who has the photo with content hash `file_sha256`.
    fn owners_of(&self, file_sha256: &str) -> Result<Vec<String>, GalleryError>;
    /// Embeddings stored now.
    fn stored(&self) -> Result<usize, GalleryError>;
    /// Removes one photo; a person left with none goes too.
    fn remove_photo(&mut self, id: i64) -> Result<RemovedPhoto, GalleryError>;
    /// Removes a person and their embeddings; how many went.
    fn remove(&mut self, name: &str) -> Result<usize, GalleryError>;
    /// Renames a person.
    fn rename(&mut self, old: &str, new: &str) -> Result<(), GalleryError>;
    /// The crop kept with a photo, JPEG.
    fn photo_crop(&self, id: i64) -> Result<Option<Vec<u8>>, GalleryError>;
    /// Moves a photo given to the wrong person to another, or back among the strangers.
    fn move_face(&mut self, id: i64, to: &FaceTarget) -> Result<MovedFace, GalleryError>;

    /// The change counters (persons, strangers as people edit them).
    fn versions(&self) -> Result<Versions, GalleryError>;
    /// Every stranger with their faces, most recently seen first.
    fn strangers(&self) -> Result<Vec<StoredStranger>, GalleryError>;
    /// A new stranger with its first face.
    fn stranger_add(&mut self, label: &str, face: &NewStrangerFace) -> Result<(), GalleryError>;
    /// One more face of a stranger, keeping their `keep` best.
    fn stranger_add_face(&mut self, label: &str, face: &NewStrangerFace, keep: usize) -> Result<(), GalleryError>;
    /// A stranger seen again (a new track) by a camera.
    fn stranger_seen(&mut self, label: &str, camera: &str, at: i64) -> Result<(), GalleryError>;
    /// A stranger named: their faces become the person's photos.
    fn stranger_name(&mut self, label: &str, person: &str) -> Result<usize, GalleryError>;
    /// Two strangers found to be one.
    fn stranger_merge(&mut self, into: &str, from: &str) -> Result<usize, GalleryError>;
    /// A stranger forgotten.
    fn stranger_forget(&mut self, label: &str) -> Result<usize, GalleryError>;
    /// Retention: strangers last seen before `before`, then beyond `max`, forgotten.
    fn strangers_prune(&mut self, before: i64, max: usize) -> Result<usize, GalleryError>;
    /// A stranger face's crop, or with `context` its scene.
    fn stranger_face_image(&self, face: i64, context: bool) -> Result<Option<Vec<u8>>, GalleryError>;

    /// Everything kept for this store's recognizer (`gallery copy`).
    fn dump(&self) -> Result<GalleryDump, GalleryError>;
    /// Writes `dump` into this store in one transaction; refused unless the store is empty.
    fn load(&mut self, dump: &GalleryDump) -> Result<(), GalleryError>;
}
