//! Photo folders as users keep them: one sub-folder per person, named after them, holding their photos.

use std::path::{Path, PathBuf};

/// A folder that could not be listed (missing, not a folder, no permission).
#[derive(Debug, thiserror::Error)]
#[error("failed to read folder {}: {source}", .path.display())]
pub struct FolderError {
    /// The folder.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

impl crate::exit::Exit for FolderError {
    fn exit_code(&self) -> u8 {
        crate::exit::INPUT
    }
}

fn listing(dir: &Path) -> Result<std::fs::ReadDir, FolderError> {
    std::fs::read_dir(dir).map_err(|source| FolderError { path: dir.to_path_buf(), source })
}

/// File extensions read as photos (compared case-insensitively).
pub const PHOTO_EXTENSIONS: [&str; 9] = ["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "pgm", "ppm"];

/// Whether `path` has a photo's extension ([`PHOTO_EXTENSIONS`]).
pub fn is_photo(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Sorted files directly inside `dir`, photos or not, hidden ones (`.DS_Store`) left out.
pub fn files_in(dir: &Path) -> Result<Vec<PathBuf>, FolderError> {
    let mut out: Vec<PathBuf> = listing(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    out.sort();
    Ok(out)
}

/// Sorted photo files directly inside `dir`.
pub fn photos_in(dir: &Path) -> Result<Vec<PathBuf>, FolderError> {
    let mut out: Vec<PathBuf> = listing(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())))
        .collect();
    out.sort();
    Ok(out)
}

/// The person a folder is named after.
pub fn person_name(dir: &Path) -> String {
    dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Sorted person folders inside `dir`.
pub fn person_dirs(dir: &Path) -> Result<Vec<PathBuf>, FolderError> {
    let mut out: Vec<PathBuf> = listing(dir)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    out.sort();
    Ok(out)
}

/// Every photo under `dir`, recursively, sorted; links are not followed.
pub fn photos_under(dir: &Path) -> Result<Vec<PathBuf>, FolderError> {
    let mut out = photos_in(dir)?;
    for entry in listing(dir)?.filter_map(Result::ok) {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(photos_under(&entry.path())?);
        }
    }
    out.sort();
    Ok(out)
}
