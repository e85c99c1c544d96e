//! `dedupe DIR`: groups of copies of the same photo (identical bytes, the same image resized or re-encoded, or
//! with faces compared the same face crop), and moving all but the best copy of each group out. Nothing is ever
//! deleted or overwritten.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{JobError, Progress};
use crate::base::face::largest;
use crate::dedupe::{self, Group, PhotoInfo, Thresholds};
use crate::model::hex;
use crate::stills::Engine;

/// A photo that could not be decoded (compared by its bytes only).
#[derive(Debug, Serialize)]
pub struct Unreadable {
    /// The photo.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// A copy moved out.
#[derive(Debug, Serialize)]
pub struct Moved {
    /// Where it was.
    pub from: PathBuf,
    /// Where it is now.
    pub to: PathBuf,
}

/// The result of `dedupe`.
#[derive(Debug, Serialize)]
pub struct DedupeOut {
    /// The folder.
    pub dir: PathBuf,
    /// Photos compared.
    pub photos: usize,
    /// Whether faces were compared.
    pub faces_compared: bool,
    /// The similarity thresholds.
    pub thresholds: Thresholds,
    /// Groups of copies, each with the copy kept.
    pub groups: Vec<Group>,
    /// Copies in all.
    pub copies: usize,
    /// Photos that could not be decoded: compared by their bytes only.
    pub unreadable: Vec<Unreadable>,
    /// Copies moved out.
    pub moved: Vec<Moved>,
    /// Copies that could not be moved, and why (they stay where they are).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub move_errors: Vec<String>,
    /// Whether nothing was to be moved.
    pub dry_run: bool,
}

/// What to compare and what to do.
pub struct DedupeOptions<'a> {
    /// Compare faces too (the models loaded).
    pub engine: Option<&'a mut Engine>,
    /// Pixel bound of a decoded photo.
    pub max_pixels: usize,
    /// Similarity thresholds.
    pub thresholds: Thresholds,
    /// Move every copy but the best of each group here, keeping paths relative to the folder.
    pub move_to: Option<&'a Path>,
}

/// Hashes every photo under `dir` (and with an engine its largest face), groups the copies and, with `move_to`,
/// moves them out; `progress` is told how many photos there are, then each one hashed.
pub fn dedupe(dir: &Path, options: DedupeOptions<'_>, progress: &mut dyn FnMut(Progress)) -> Result<DedupeOut, JobError> {
    let DedupeOptions { mut engine, max_pixels, thresholds, move_to } = options;
    let files = crate::folders::photos_under(dir)?;
    progress(Progress::Total(files.len()));
    let mut photos = Vec::with_capacity(files.len());
    let mut unreadable = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).map_err(JobError::file("read", path))?;
        let mut info = PhotoInfo {
            path: path.clone(),
            sha256: hex(&Sha256::digest(&bytes)),
            file_size: bytes.len() as u64,
            pixels: 0,
            dhash: None,
            face: None,
        };
        match crate::image::decode(&bytes, path, max_pixels) {
            Ok(frame) => {
                info.pixels = u64::from(frame.original_width) * u64::from(frame.original_height);
                info.dhash = Some(dedupe::dhash(&frame.bgr).map_err(hash_failed(path))?);
                if let Some(engine) = engine.as_deref_mut() {
                    // Photos without a face are still compared by bytes and image hash.
                    if let Ok(dets) = engine.detect(&frame) {
                        if let Some(det) = largest(&dets) {
                            let face = engine.face(&frame, det)?;
                            info.face = Some((face.embedding, dedupe::phash(&face.aligned.bgr).map_err(hash_failed(path))?));
                        }
                    }
                }
            }
            Err(e) => unreadable.push(Unreadable { path: path.clone(), reason: e.to_string() }),
        }
        photos.push(info);
        progress(Progress::Done);
    }
    let groups = dedupe::groups(&photos, &thresholds);
    let (mut moved, mut move_errors) = (Vec::new(), Vec::new());
    if let Some(dest) = move_to {
        for from in groups.iter().flat_map(|gr| gr.copies.iter().map(|c| &c.path)) {
            match move_out(from, dir, dest) {
                Ok(to) => moved.push(Moved { from: from.clone(), to }),
                Err(e) => move_errors.push(e.to_string()),
            }
        }
    }
    Ok(DedupeOut {
        dir: dir.to_path_buf(),
        photos: photos.len(),
        faces_compared: engine.is_some(),
        thresholds,
        copies: groups.iter().map(|gr| gr.copies.len()).sum(),
        groups,
        unreadable,
        moved,
        move_errors,
        dry_run: move_to.is_none(),
    })
}

fn hash_failed(path: &Path) -> impl FnOnce(opencv::Error) -> JobError + '_ {
    move |e| JobError::Input(format!("failed to hash {}: {e}", path.display()))
}

/// Moves `from` (under `root`) to the same relative path under `dest`; refuses to overwrite.
pub fn move_out(from: &Path, root: &Path, dest: &Path) -> Result<PathBuf, JobError> {
    let rel = from.strip_prefix(root).unwrap_or(from);
    let to = dest.join(rel);
    if to.exists() {
        return Err(JobError::Input(format!("not moving {}: {} already exists", from.display(), to.display())));
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(JobError::file("create", parent))?;
    }
    if std::fs::rename(from, &to).is_err() {
        // Another filesystem: copy, make sure the copy is on disk, then remove the original.
        std::fs::copy(from, &to).map_err(JobError::file("copy", from))?;
        std::fs::File::open(&to).and_then(|f| f.sync_all()).map_err(JobError::file("sync", &to))?;
        std::fs::remove_file(from).map_err(JobError::file("remove (after copying it)", from))?;
    }
    Ok(to)
}
