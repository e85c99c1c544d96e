//! `enroll DIR`: one sub-folder per person, every photo with exactly one face becomes an embedding.
//!
//! Photos with no face, several faces (which one would be the person?) or unreadable data are skipped and
//! reported with the reason. Each person is written in one transaction after all their photos are processed, so
//! an interrupted run leaves every person either fully enrolled or untouched; re-running skips photos already
//! enrolled (by content hash).

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::JobError;
use crate::engine::{Engine, EngineError};
use crate::folders::{person_dirs, photos_in, FolderError};
use crate::gallery::{Gallery, NewEmbedding};
use crate::model::hex;

/// A photo left out, and why.
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// The photo.
    pub file: PathBuf,
    /// Why (no face, several faces, unreadable).
    pub reason: String,
}

/// One person's enrolment.
#[derive(Debug, Serialize)]
pub struct PersonOut {
    /// The person (the folder's name).
    pub name: String,
    /// Photos in the folder.
    pub photos: usize,
    /// Embeddings added.
    pub added: usize,
    /// Photos enrolled before (same content).
    pub already_enrolled: usize,
    /// Photos left out.
    pub skipped: Vec<Skipped>,
}

/// The result of `enroll`.
#[derive(Debug, Serialize)]
pub struct EnrollOut {
    /// The gallery file.
    pub gallery: PathBuf,
    /// The recognizer its embeddings belong to.
    pub recognizer: String,
    /// Every person.
    pub persons: Vec<PersonOut>,
    /// Embeddings added in all.
    pub added: usize,
    /// Photos left out in all.
    pub skipped: usize,
    /// Embeddings in the gallery now.
    pub gallery_embeddings: usize,
}

/// The photos of each person folder of `dir`, by name; an error when there is no person folder.
pub fn people(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, JobError> {
    let people = person_dirs(dir)?;
    if people.is_empty() {
        return Err(JobError::Input(format!(
            "{} has no sub-folders: put each person's photos in a folder named after them",
            dir.display()
        )));
    }
    Ok(people
        .iter()
        .map(|d| Ok((d.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), photos_in(d)?)))
        .collect::<Result<_, FolderError>>()?)
}

/// Enrolls `people` (from [`people`]) into `gallery`, one transaction per person; `progress` is told each photo's
/// person as it is done.
pub fn enroll(
    engine: &mut Engine,
    gallery: &mut Gallery,
    people: Vec<(String, Vec<PathBuf>)>,
    progress: &mut dyn FnMut(&str),
) -> Result<EnrollOut, JobError> {
    let mut persons = Vec::new();
    for (name, photos) in people {
        let mut items = Vec::new();
        let mut skipped = Vec::new();
        for path in &photos {
            match embed_photo(engine, path) {
                Ok(item) => items.push(item),
                Err(e) => skipped.push(Skipped { file: path.clone(), reason: e.to_string() }),
            }
            progress(&name);
        }
        let added = if items.is_empty() { 0 } else { gallery.enroll(&name, &items)? };
        persons.push(PersonOut { name, photos: photos.len(), added, already_enrolled: items.len() - added, skipped });
    }
    Ok(EnrollOut {
        gallery: gallery.path().to_path_buf(),
        recognizer: gallery.model().to_string(),
        added: persons.iter().map(|p| p.added).sum(),
        skipped: persons.iter().map(|p| p.skipped.len()).sum(),
        gallery_embeddings: gallery.len(),
        persons,
    })
}

/// A photo's one face as a gallery embedding, with the photo's content hash.
pub fn embed_photo(engine: &mut Engine, path: &Path) -> Result<NewEmbedding, JobError> {
    let bytes = std::fs::read(path).map_err(JobError::file("read", path))?;
    let file_sha256 = hex(&Sha256::digest(&bytes));
    let frame = engine.decode(&bytes, path).map_err(EngineError::from)?;
    let face = engine.one_face(&frame, path)?;
    Ok(NewEmbedding {
        embedding: face.embedding,
        source_path: path.to_string_lossy().into_owned(),
        file_sha256,
        det_score: face.detection.score,
    })
}
