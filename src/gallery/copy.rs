//! Moving a gallery between stores (`facewatch gallery copy --to postgres://…`, and back to a file): everything a
//! store keeps for one recognizer, read whole ([`GalleryDump`]), written into an empty store in one transaction,
//! and checked by counts and a content hash read back from the destination.

use serde::Serialize;

use super::{GalleryError, GalleryStore};
use sha2::{Digest, Sha256};

/// Everything a store keeps for one recognizer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GalleryDump {
    /// Persons by name, each with their photos.
    pub persons: Vec<DumpPerson>,
    /// Strangers by label, each with their faces.
    pub strangers: Vec<DumpStranger>,
}

/// A person and their photos.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpPerson {
    /// Name.
    pub name: String,
    /// Enrolment time.
    pub created_at: i64,
    /// Photos, by content hash.
    pub photos: Vec<DumpPhoto>,
}

/// One enrolled photo.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpPhoto {
    /// The embedding, little-endian f32.
    pub vector: Vec<u8>,
    /// Where it was enrolled from.
    pub source_path: String,
    /// Its content hash.
    pub file_sha256: String,
    /// The detector's score.
    pub det_score: f64,
    /// When.
    pub created_at: i64,
    /// The aligned crop, JPEG.
    pub crop: Option<Vec<u8>>,
}

/// A stranger and their faces.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpStranger {
    /// `stranger-…`.
    pub label: String,
    /// First sighting.
    pub first_seen: i64,
    /// Last sighting.
    pub last_seen: i64,
    /// Tracks.
    pub sightings: i64,
    /// Cameras, comma-separated.
    pub cameras: String,
    /// Faces, by time then quality.
    pub faces: Vec<DumpStrangerFace>,
}

/// One face of a stranger.
#[derive(Debug, Clone, PartialEq)]
pub struct DumpStrangerFace {
    /// The embedding, little-endian f32.
    pub vector: Vec<u8>,
    /// Face quality.
    pub quality: f64,
    /// The aligned crop, JPEG.
    pub crop: Vec<u8>,
    /// The scene, JPEG.
    pub context: Option<Vec<u8>>,
    /// The camera.
    pub camera: String,
    /// When.
    pub seen_at: i64,
}

/// How much a gallery holds, and a hash of all of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DumpSummary {
    /// Persons.
    pub persons: usize,
    /// Their photos (embeddings).
    pub embeddings: usize,
    /// Strangers.
    pub strangers: usize,
    /// Their faces.
    pub stranger_faces: usize,
    /// sha256 of everything above, in a fixed order (ids left out: a copy numbers its rows anew).
    pub sha256: String,
}

impl GalleryDump {
    /// Puts everything in the order the hash reads it (names, content hashes, labels, times).
    pub fn sort(&mut self) {
        self.persons.sort_by(|a, b| a.name.cmp(&b.name));
        for p in &mut self.persons {
            p.photos.sort_by(|a, b| a.file_sha256.cmp(&b.file_sha256));
        }
        self.strangers.sort_by(|a, b| a.label.cmp(&b.label));
        for s in &mut self.strangers {
            s.faces.sort_by(|a, b| {
                (a.seen_at, a.quality.to_bits(), &a.crop, &a.vector).cmp(&(b.seen_at, b.quality.to_bits(), &b.crop, &b.vector))
            });
        }
    }

    /// Counts and the content hash.
    pub fn summary(&self) -> DumpSummary {
        let mut sorted = self.clone();
        sorted.sort();
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        for p in &sorted.persons {
            field(b"person");
            field(p.name.as_bytes());
            field(&p.created_at.to_le_bytes());
            for f in &p.photos {
                field(&f.vector);
                field(f.source_path.as_bytes());
                field(f.file_sha256.as_bytes());
                field(&f.det_score.to_le_bytes());
                field(&f.created_at.to_le_bytes());
                field(f.crop.as_deref().unwrap_or(b"-"));
            }
        }
        for s in &sorted.strangers {
            field(b"stranger");
            field(s.label.as_bytes());
            for n in [s.first_seen, s.last_seen, s.sightings] {
                field(&n.to_le_bytes());
            }
            field(s.cameras.as_bytes());
            for f in &s.faces {
                field(&f.vector);
                field(&f.quality.to_le_bytes());
                field(&f.crop);
                field(f.context.as_deref().unwrap_or(b"-"));
                field(f.camera.as_bytes());
                field(&f.seen_at.to_le_bytes());
            }
        }
        DumpSummary {
            persons: sorted.persons.len(),
            embeddings: sorted.persons.iter().map(|p| p.photos.len()).sum(),
            strangers: sorted.strangers.len(),
            stranger_faces: sorted.strangers.iter().map(|s| s.faces.len()).sum(),
            sha256: crate::model::hex(&h.finalize()),
        }
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.persons.is_empty() && self.strangers.is_empty()
    }
}

/// What a copy did: what was copied, checked against what the destination gives back.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    /// The source.
    pub from: String,
    /// The destination.
    pub to: String,
    /// Counts and hash, the same on both sides.
    #[serde(flatten)]
    pub copied: DumpSummary,
}

/// Copies everything `from` keeps into `to` (empty; one transaction), then reads the destination back and
/// compares counts and content hash.
pub fn copy_between(from: &dyn GalleryStore, to: &mut dyn GalleryStore) -> Result<CopyReport, GalleryError> {
    let dump = from.dump()?;
    let want = dump.summary();
    to.load(&dump)?;
    let got = to.dump()?.summary();
    if got != want {
        return Err(GalleryError::CopyDiffers {
            path: to.location().display().to_string(),
            detail: format!(
                "{} persons, {} embeddings, {} strangers, {} faces, sha256 {} written; {} persons, {} embeddings, {} strangers, {} faces, sha256 {} read back",
                want.persons, want.embeddings, want.strangers, want.stranger_faces, want.sha256,
                got.persons, got.embeddings, got.strangers, got.stranger_faces, got.sha256
            ),
        });
    }
    Ok(CopyReport { from: from.location().display().to_string(), to: to.location().display().to_string(), copied: want })
}
