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

impl crate::base::exit::Exit for FolderError {
    fn exit_code(&self) -> u8 {
        crate::base::exit::INPUT
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

/// Expands a leading `~/` with `$HOME`; other paths are returned as they are.
pub fn resolve_path(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

/// Where a relative path of the installation (`models/…`, `lib/…`) is, so the binary runs from any directory:
/// the working directory first (a checkout), then the checkout the binary was built in (`target/*/facewatch`),
/// the user's data directory (`$XDG_DATA_HOME/facewatch`, or `~/.local/share/facewatch`), and the install prefix
/// of the binary, `/usr/local` and `/usr` (`<prefix>/share/facewatch/models/…`, `<prefix>/lib/facewatch/…`). The
/// first that exists wins; absolute paths, `~/` paths and paths found nowhere are returned as they are (the error
/// then names them).
pub fn locate(p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() || p.starts_with("~/") || path.exists() {
        return p.to_string();
    }
    let exe = std::env::current_exe().ok();
    let mut roots: Vec<PathBuf> = exe.iter().flat_map(|e| e.ancestors().skip(1).take(3).map(Path::to_path_buf)).collect();
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
    roots.extend(data.map(|d| d.join("facewatch")));
    let prefixes: Vec<PathBuf> =
        exe.iter().filter_map(|e| e.ancestors().nth(2).map(Path::to_path_buf)).chain(["/usr/local".into(), "/usr".into()]).collect();
    for prefix in &prefixes {
        roots.push(match path.strip_prefix("lib") {
            Ok(_) => prefix.clone(),
            Err(_) => prefix.join("share/facewatch"),
        });
    }
    let candidates = roots.iter().map(|root| match (path.strip_prefix("lib"), prefixes.contains(root)) {
        (Ok(rest), true) => root.join("lib/facewatch").join(rest),
        _ => root.join(path),
    });
    candidates.into_iter().find(|c| c.exists()).map_or_else(|| p.to_string(), |c| c.display().to_string())
}

/// Why a secret file (a password, API keys) could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// It could not be read.
    #[error("{0}")]
    Unreadable(#[from] std::io::Error),
    /// Other users may read it.
    #[error("readable by other users (mode {0:o}); chmod 600 it")]
    Exposed(u32),
}

/// The text of a file holding a secret, refused when other users may read or write it.
pub fn read_secret_file(path: &Path) -> Result<String, SecretFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Exposed(mode & 0o777));
    }
    Ok(std::fs::read_to_string(path)?)
}
