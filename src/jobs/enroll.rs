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
use crate::folders::{files_in, is_photo, person_dirs, person_name, FolderError, PHOTO_EXTENSIONS};
use crate::gallery::{check_name, Gallery, NewEmbedding};
use crate::model::hex;
use crate::stills::{Engine, EngineError};

/// A photo left out, and why.
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// The photo.
    #[serde(rename = "path")]
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

/// The files of each person folder of `dir`, by name (files that are not photos are reported as skipped). Every folder is checked before anything is enrolled: no
/// person folder, or a folder whose name cannot be a person's (`unknown`, too long, control characters), is an
/// error naming all of them, and nothing is written.
pub fn people(dir: &Path) -> Result<Vec<(String, Vec<PathBuf>)>, JobError> {
    let people = person_dirs(dir)?;
    if people.is_empty() {
        return Err(JobError::Input(format!(
            "{} has no sub-folders: put each person's photos in a folder named after them",
            dir.display()
        )));
    }
    let bad: Vec<String> =
        people.iter().filter_map(|d| check_name(&person_name(d)).err().map(|e| format!("{}: {e}", d.display()))).collect();
    if !bad.is_empty() {
        return Err(JobError::Input(format!("nothing enrolled; rename these folders first:\n  {}", bad.join("\n  "))));
    }
    Ok(people.iter().map(|d| Ok((person_name(d), files_in(d)?))).collect::<Result<_, FolderError>>()?)
}

/// Photos of one person, `name`, for [`enroll`]: the name is checked and every photo must exist (a folder is
/// refused: one person's photos are given as files).
pub fn one_person(name: &str, photos: &[PathBuf]) -> Result<Vec<(String, Vec<PathBuf>)>, JobError> {
    check_name(name)?;
    for p in photos {
        let meta = std::fs::metadata(p).map_err(JobError::file("read", p))?;
        if meta.is_dir() {
            return Err(JobError::Input(format!("{} is a folder: with --name, give the person's photos", p.display())));
        }
    }
    Ok(vec![(name.to_string(), photos.to_vec())])
}

/// Enrolls `people` (from [`people`] or [`one_person`]) into `gallery`, one transaction per person; `progress` is told each photo's
/// person as it is done.
pub fn enroll(
    engine: &mut Engine,
    gallery: &mut Gallery,
    people: Vec<(String, Vec<PathBuf>)>,
    progress: &mut dyn FnMut(&str),
) -> Result<EnrollOut, JobError> {
    let mut persons = Vec::new();
    for (name, photos) in people {
        let (mut items, mut skipped, mut known) = (Vec::new(), Vec::new(), 0);
        for path in &photos {
            if !is_photo(path) {
                let reason = format!("not a photo facewatch reads (.{})", PHOTO_EXTENSIONS.join(", ."));
                skipped.push(Skipped { file: path.clone(), reason });
                progress(&name);
                continue;
            }
            // The content hash first: a photo already in the gallery costs a read, not a detection.
            let read = std::fs::read(path).map_err(JobError::file("read", path)).and_then(|bytes| {
                let hash = hex(&Sha256::digest(&bytes));
                Ok((gallery.owners_of(&hash)?, hash, bytes))
            });
            match read {
                Ok((owners, _, _)) if owners.contains(&name) => known += 1,
                Ok((owners, _, _)) if !owners.is_empty() => {
                    let reason = format!("the same photo is already enrolled as {}", owners.join(", "));
                    skipped.push(Skipped { file: path.clone(), reason });
                }
                Ok((_, hash, bytes)) => match embed_photo(engine, path, &bytes, hash) {
                    Ok(item) => items.push(item),
                    Err(e) => skipped.push(Skipped { file: path.clone(), reason: e.to_string() }),
                },
                Err(e) => skipped.push(Skipped { file: path.clone(), reason: e.to_string() }),
            }
            progress(&name);
        }
        let added = if items.is_empty() { 0 } else { gallery.enroll(&name, &items)? };
        persons.push(PersonOut { name, photos: photos.len(), added, already_enrolled: known + items.len() - added, skipped });
    }
    Ok(EnrollOut {
        gallery: gallery.path().to_path_buf(),
        recognizer: gallery.model().to_string(),
        added: persons.iter().map(|p| p.added).sum(),
        skipped: persons.iter().map(|p| p.skipped.len()).sum(),
        // What the file holds, other runs' enrolments included (not this process's view of it).
        gallery_embeddings: gallery.stored()?,
        persons,
    })
}

/// A photo's one face (`bytes` read from `path`) as a gallery embedding, with the photo's content hash.
pub fn embed_photo(engine: &mut Engine, path: &Path, bytes: &[u8], file_sha256: String) -> Result<NewEmbedding, JobError> {
    let frame = engine.decode(bytes, path).map_err(EngineError::from)?;
    let face = engine.one_face(&frame, path)?;
    // The aligned crop is kept with the photo: the web page shows it, and a face given to the wrong person can go.
    let crop = crate::image::encode_jpeg(&face.aligned.bgr, 90).ok();
    Ok(NewEmbedding {
        embedding: face.embedding,
        source_path: path.to_string_lossy().into_owned(),
        file_sha256,
        det_score: face.detection.score,
        crop,
    })
}
