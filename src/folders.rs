//! Photo folders as users keep them: one sub-folder per person, named after them, holding their photos.

use std::path::{Path, PathBuf};

/// File extensions read as photos (compared case-insensitively).
pub const PHOTO_EXTENSIONS: [&str; 9] = ["jpg", "jpeg", "png", "bmp", "webp", "tif", "tiff", "pgm", "ppm"];

/// Sorted photo files directly inside `dir`.
pub fn photos_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| PHOTO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str())))
        .collect();
    out.sort();
    Ok(out)
}

/// Sorted person folders inside `dir`.
pub fn person_dirs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect();
    out.sort();
    Ok(out)
}

/// Every photo under `dir`, recursively, sorted; links are not followed.
pub fn photos_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = photos_in(dir)?;
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        if entry.file_type()?.is_dir() {
            out.extend(photos_under(&entry.path())?);
        }
    }
    out.sort();
    Ok(out)
}
