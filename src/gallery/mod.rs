//! Gallery: the enrolled people — a SQLite file of persons and their face embeddings, and an in-memory search
//! index over it ([`index`]).
//!
//! The file is created 0600 inside a 0700 directory (biometric data), runs in WAL mode, and every enrolment of a
//! person is one transaction: a crash mid-enrol loses nothing committed and leaves nothing half-written. The
//! gallery remembers the recognizer that made its embeddings; opening it with another one is refused, because
//! embeddings of different models are not comparable.

pub mod check;
mod config;
pub mod index;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::base::{Candidate, Embedding};
pub use config::GalleryConfig;
use index::{Index, Neighbour};

const SCHEMA_VERSION: &str = "1";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS persons (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    source_path TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    det_score REAL NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (person_id, file_sha256)
);
";

/// Errors of the gallery store.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    /// SQLite failed.
    #[error("gallery {path}: {source}")]
    Sqlite {
        /// The gallery file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Creating the file or directory, or setting its permissions, failed.
    #[error("failed to create gallery {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The gallery holds embeddings of another recognizer.
    #[error("gallery {path} was enrolled with recognizer `{gallery}` ({gallery_dim}-d), but `{configured}` is configured: embeddings of different models cannot be compared; re-enroll into a new gallery (--gallery NEW.db) or set models.recognizer = \"{gallery}\"")]
    ModelMismatch {
        /// The gallery file.
        path: PathBuf,
        /// Recognizer recorded in the gallery.
        gallery: String,
        /// Its embedding length.
        gallery_dim: usize,
        /// Recognizer in the configuration.
        configured: String,
    },
    /// There is no gallery at that path (read-only commands never create one).
    #[error("no gallery at {}: enroll people first (`facewatch enroll DIR`), or point --gallery / gallery.path at an existing gallery", .0.display())]
    Missing(PathBuf),
    /// No person has that name.
    #[error("no person named `{0}` in the gallery")]
    UnknownPerson(String),
    /// No photo has that id.
    #[error("no photo with id {0} in the gallery (`facewatch gallery photos NAME` lists them)")]
    UnknownPhoto(i64),
    /// The new name is taken.
    #[error("a person named `{0}` is already in the gallery")]
    NameTaken(String),
    /// A person name that cannot be used.
    #[error("invalid person name `{0}`: names must be non-empty, without control characters, at most 200 bytes, and not `unknown` (the name events give strangers)")]
    BadName(String),
    /// An embedding to enroll has another length than the gallery's recognizer produces.
    #[error("cannot enroll a {got}-d embedding into gallery {path}, which holds {want}-d embeddings")]
    WrongDimension {
        /// The gallery file.
        path: PathBuf,
        /// Length offered.
        got: usize,
        /// Length of the gallery's embeddings.
        want: usize,
    },
    /// A stored vector has the wrong length (the file was edited or is damaged).
    #[error("gallery {path}: embedding {id} has {got} values, expected {want}")]
    Damaged {
        /// The gallery file.
        path: PathBuf,
        /// Row id.
        id: i64,
        /// Values found.
        got: usize,
        /// Values expected.
        want: usize,
    },
}

impl crate::exit::Exit for GalleryError {
    fn exit_code(&self) -> u8 {
        crate::exit::GALLERY
    }
}

/// One embedding to add for a person.
#[derive(Debug, Clone)]
pub struct NewEmbedding {
    /// The vector.
    pub embedding: Embedding,
    /// Photo it came from.
    pub source_path: String,
    /// sha256 of that photo's bytes (re-enrolling the same photo is a no-op).
    pub file_sha256: String,
    /// Detector score of the face.
    pub det_score: f32,
}

/// A person and how many embeddings they have.
#[derive(Debug, Clone, Serialize)]
pub struct PersonSummary {
    /// Name.
    pub name: String,
    /// Number of embeddings.
    pub embeddings: usize,
    /// Enrolment time, seconds since the Unix epoch.
    pub created_at: i64,
}

/// One enrolled photo of a person.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoSummary {
    /// Its id in the gallery (`gallery remove-photo ID`).
    pub id: i64,
    /// The photo it was enrolled from, as given then.
    pub path: String,
    /// sha256 of the photo's bytes.
    pub sha256: String,
    /// The detector's confidence in its face.
    pub det_score: f32,
    /// Enrolment time, seconds since the Unix epoch.
    pub created_at: i64,
}

/// What removing one photo did.
#[derive(Debug, Clone, Serialize)]
pub struct RemovedPhoto {
    /// The photo's id.
    pub id: i64,
    /// Whose it was.
    pub name: String,
    /// The photo it was enrolled from.
    pub path: String,
    /// The person had no other photo and was removed too.
    pub person_removed: bool,
}

/// An enrolled embedding held in memory.
#[derive(Debug, Clone)]
struct Entry {
    person: usize,
    embedding: Embedding,
    source_path: String,
}

/// The gallery: the SQLite store plus an in-memory index of every embedding.
///
/// The index is built on the first search after a change, not at each change: enrolling a folder of people
/// is one transaction per person, and rebuilding after each would be quadratic (an HNSW build at 100k
/// embeddings takes minutes).
pub struct Gallery {
    conn: Connection,
    path: PathBuf,
    model: String,
    dim: usize,
    persons: Vec<String>,
    entries: Vec<Entry>,
    /// The search view of the entries, built on the first search after a change.
    index: OnceLock<Snapshot>,
    exact_search_max: usize,
    /// SQLite's `data_version` when the entries were last read: it changes when another connection commits.
    seen_version: i64,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

fn blob_from_embedding(e: &Embedding) -> Vec<u8> {
    e.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn embedding_from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Creates `path`'s directory 0700 and the file 0600 when they do not exist yet, and makes an existing gallery
/// private: a file (or its -wal/-shm companions) that others may read is narrowed to 0600.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    if !path.exists() {
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    }
    make_private(path).map(drop)
}

/// `path` with `suffix` appended (SQLite's `-wal` and `-shm` companions).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Whether this process may write `path` (access(2) with the real ids, as SQLite will find out).
fn writable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        // SAFETY: a valid NUL-terminated path; access(2) only reads it.
        .is_ok_and(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
}

/// `path` made absolute and percent-encoded where a SQLite URI needs it.
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for &b in abs.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Narrows the gallery file and its SQLite companions to 0600 when others may read or write them; returns each
/// file narrowed with its former mode.
pub fn make_private(path: &Path) -> std::io::Result<Vec<(PathBuf, u32)>> {
    use std::os::unix::fs::PermissionsExt;
    let files = [path.to_path_buf(), companion(path, "-wal"), companion(path, "-shm")];
    let mut narrowed = Vec::new();
    for f in files.iter().filter(|f| f.exists()) {
        let mode = std::fs::metadata(f)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o600))?;
            tracing::warn!(file = %f.display(), was = format!("{:o}", mode & 0o777), "Gallery file was readable by others; narrowed to 0600.");
            narrowed.push((f.clone(), mode & 0o777));
        }
    }
    Ok(narrowed)
}

/// How many embeddings the gallery at `path` holds, read without creating, migrating or changing anything (for
/// `check-config`); `None` when there is no readable gallery there.
pub fn count_embeddings(path: &Path) -> Option<u64> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row("SELECT COUNT(*) FROM embeddings", [], |r| r.get::<_, i64>(0)).ok().map(|n| n.max(0) as u64)
}

/// Checks a person name.
pub fn check_name(name: &str) -> Result<(), GalleryError> {
    // `unknown` is what events call a face that matches nobody.
    if name.trim().is_empty()
        || name.len() > 200
        || name.chars().any(char::is_control)
        || name.trim().eq_ignore_ascii_case(crate::base::UNKNOWN)
    {
        Err(GalleryError::BadName(name.into()))
    } else {
        Ok(())
    }
}

impl Gallery {
    /// Opens (creating when absent) the gallery for recognizer `model` producing `dim`-d embeddings.
    ///
    /// `exact_search_max`: galleries up to this many embeddings are searched exactly, larger ones by HNSW.
    pub fn open(path: &Path, model: &str, dim: usize, exact_search_max: usize) -> Result<Self, GalleryError> {
        let io = |source| GalleryError::Io { path: path.to_path_buf(), source };
        create_private(path).map_err(io)?;
        let conn = Connection::open(path).map_err(|source| GalleryError::Sqlite { path: path.into(), source })?;
        let mut g = Self::from_connection(conn, path.to_path_buf(), model, dim, exact_search_max)?;
        g.reload()?;
        Ok(g)
    }

    /// Opens an existing gallery for reading and matching (identify, gallery list, check): a missing file is an
    /// error naming the path, never silently created empty.
    pub fn open_existing(path: &Path, model: &str, dim: usize, exact_search_max: usize) -> Result<Self, GalleryError> {
        if !path.is_file() {
            return Err(GalleryError::Missing(path.to_path_buf()));
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if writable(path) && writable(dir) {
            return Self::open(path, model, dim, exact_search_max);
        }
        Self::open_read_only(path, dir, model, dim, exact_search_max)
    }

    /// Opens a gallery this process may not change (a read-only file or directory, another user's state
    /// directory): nothing is created, migrated or written, and changing it is refused by SQLite. In WAL mode
    /// SQLite keeps a shared-memory index (`-shm`) beside the file; when there is none and the directory is not
    /// writable it could not make one (`SQLITE_READONLY_DIRECTORY`), so the file is then read as immutable: as it
    /// lies, without locks.
    fn open_read_only(path: &Path, dir: &Path, model: &str, dim: usize, exact_search_max: usize) -> Result<Self, GalleryError> {
        use rusqlite::OpenFlags;
        let sqlite = |source| GalleryError::Sqlite { path: path.to_path_buf(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if writable(dir) || companion(path, "-shm").exists() {
            Connection::open_with_flags(path, flags).map_err(sqlite)?
        } else {
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).map_err(sqlite)?
        };
        let mut g = Self::bare(conn, path.to_path_buf(), model, dim, exact_search_max);
        g.check_model()?;
        g.seen_version = g.data_version()?;
        g.reload()?;
        Ok(g)
    }

    /// The struct around an open connection, nothing read yet.
    fn bare(conn: Connection, path: PathBuf, model: &str, dim: usize, exact_search_max: usize) -> Self {
        Self {
            conn,
            path,
            model: model.into(),
            dim,
            persons: Vec::new(),
            entries: Vec::new(),
            index: OnceLock::new(),
            exact_search_max,
            seen_version: 0,
        }
    }

    /// A gallery that lives in memory only (evaluation runs): nothing touches the disk.
    pub fn in_memory(model: &str, dim: usize, exact_search_max: usize) -> Result<Self, GalleryError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| GalleryError::Sqlite { path: path.clone(), source })?;
        Self::from_connection(conn, path, model, dim, exact_search_max)
    }

    /// Wraps an open connection: applies the schema and checks (or records) the recognizer.
    fn from_connection(conn: Connection, path: PathBuf, model: &str, dim: usize, exact_search_max: usize) -> Result<Self, GalleryError> {
        let mut g = Self::bare(conn, path, model, dim, exact_search_max);
        g.init()?;
        g.seen_version = g.data_version()?;
        Ok(g)
    }

    fn sql(&self, source: rusqlite::Error) -> GalleryError {
        GalleryError::Sqlite { path: self.path.clone(), source }
    }

    fn init(&mut self) -> Result<(), GalleryError> {
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| self.conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| self.conn.pragma_update(None, "foreign_keys", "ON"))
            .and_then(|()| self.conn.execute_batch(SCHEMA))
            .map_err(|e| self.sql(e))?;
        self.check_model()
    }

    /// Refuses a gallery made by another recognizer; records the configured one in a new gallery.
    fn check_model(&mut self) -> Result<(), GalleryError> {
        let meta = |k: &str| -> Result<Option<String>, rusqlite::Error> {
            self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0)).optional()
        };
        let stored_model = meta("model").map_err(|e| self.sql(e))?;
        let stored_dim = meta("dim").map_err(|e| self.sql(e))?;
        match stored_model {
            Some(m) if m != self.model => {
                return Err(GalleryError::ModelMismatch {
                    path: self.path.clone(),
                    gallery_dim: stored_dim.and_then(|d| d.parse().ok()).unwrap_or(0),
                    gallery: m,
                    configured: self.model.clone(),
                })
            }
            Some(_) => {}
            None => {
                let tx = self.conn.transaction().map_err(|e| GalleryError::Sqlite { path: self.path.clone(), source: e })?;
                for (k, v) in [("model", self.model.clone()), ("dim", self.dim.to_string()), ("schema_version", SCHEMA_VERSION.into())] {
                    tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![k, v])
                        .map_err(|e| GalleryError::Sqlite { path: self.path.clone(), source: e })?;
                }
                tx.commit().map_err(|e| GalleryError::Sqlite { path: self.path.clone(), source: e })?;
            }
        }
        Ok(())
    }

    /// Re-reads every embedding; the index is rebuilt on the next search.
    fn reload(&mut self) -> Result<(), GalleryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.id, p.name, e.vector, e.source_path FROM embeddings e JOIN persons p ON p.id = e.person_id ORDER BY p.name, e.id",
            )
            .map_err(|e| GalleryError::Sqlite { path: self.path.clone(), source: e })?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, String>(3)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| GalleryError::Sqlite { path: self.path.clone(), source: e })?;
        drop(stmt);
        let mut persons: Vec<String> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        let mut entries = Vec::with_capacity(rows.len());
        for (id, name, blob, source_path) in rows {
            let v = embedding_from_blob(&blob);
            if v.len() != self.dim {
                return Err(GalleryError::Damaged { path: self.path.clone(), id, got: v.len(), want: self.dim });
            }
            let person = *by_name.entry(name.clone()).or_insert_with(|| {
                persons.push(name);
                persons.len() - 1
            });
            entries.push(Entry { person, embedding: Embedding::from_unit(v), source_path });
        }
        self.persons = persons;
        self.entries = entries;
        self.index = OnceLock::new();
        Ok(())
    }

    /// Who already has the photo with content hash `file_sha256` (for this gallery's recognizer).
    pub fn owners_of(&self, file_sha256: &str) -> Result<Vec<String>, GalleryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.name FROM embeddings e JOIN persons p ON p.id = e.person_id WHERE e.file_sha256 = ?1 AND e.model = ?2 ORDER BY p.name",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt.query_map(params![file_sha256, self.model], |r| r.get(0)).map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    /// Embeddings stored now, as the file says (other processes' enrolments included).
    pub fn stored(&self) -> Result<usize, GalleryError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM embeddings WHERE model = ?1", [&self.model], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| self.sql(e))
    }

    fn data_version(&self) -> Result<i64, GalleryError> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(|e| self.sql(e))
    }

    /// Re-reads the gallery when another process (`facewatch enroll`, `gallery remove`) changed it since it was
    /// last read; returns whether it did. Cheap when nothing changed (one pragma), so the daemon polls it.
    pub fn reload_if_changed(&mut self) -> Result<bool, GalleryError> {
        let v = self.data_version()?;
        if v == self.seen_version {
            return Ok(false);
        }
        self.reload()?;
        self.seen_version = v;
        Ok(true)
    }

    /// The gallery file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Recognizer that made the embeddings.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Number of embeddings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nobody is enrolled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// "exact" or "hnsw": how searches run at this size.
    pub fn search_kind(&self) -> &'static str {
        index::kind_for(self.entries.len(), self.exact_search_max)
    }

    /// Adds embeddings for `name` (creating the person) in one transaction; photos already enrolled for this
    /// person (same file hash) are skipped. Returns how many were added.
    pub fn enroll(&mut self, name: &str, items: &[NewEmbedding]) -> Result<usize, GalleryError> {
        check_name(name)?;
        let path = self.path.clone();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("INSERT OR IGNORE INTO persons (name, created_at) VALUES (?1, ?2)", params![name, now()]).map_err(sql)?;
        let person_id: i64 = tx.query_row("SELECT id FROM persons WHERE name = ?1", [name], |r| r.get(0)).map_err(sql)?;
        let mut added = Vec::new();
        for item in items {
            if item.embedding.dim() != self.dim {
                return Err(GalleryError::WrongDimension { path: self.path.clone(), got: item.embedding.dim(), want: self.dim });
            }
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO embeddings (person_id, model, dim, vector, source_path, file_sha256, det_score, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        person_id,
                        self.model,
                        self.dim as i64,
                        blob_from_embedding(&item.embedding),
                        item.source_path,
                        item.file_sha256,
                        f64::from(item.det_score),
                        now()
                    ],
                )
                .map_err(sql)?;
            if inserted == 1 {
                added.push(item);
            }
        }
        tx.commit().map_err(sql)?;
        // Committed: mirror exactly the inserted rows in memory instead of re-reading the whole gallery.
        if !added.is_empty() {
            let person = match self.persons.iter().position(|p| p == name) {
                Some(i) => i,
                None => {
                    self.persons.push(name.to_string());
                    self.persons.len() - 1
                }
            };
            self.entries.extend(added.iter().map(|item| Entry {
                person,
                embedding: item.embedding.clone(),
                source_path: item.source_path.clone(),
            }));
            self.index = OnceLock::new();
        }
        Ok(added.len())
    }

    /// Every person, by name.
    pub fn persons(&self) -> Result<Vec<PersonSummary>, GalleryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.name, COUNT(e.id), p.created_at FROM persons p LEFT JOIN embeddings e ON e.person_id = p.id
                 GROUP BY p.id ORDER BY p.name",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([], |r| Ok(PersonSummary { name: r.get(0)?, embeddings: r.get::<_, i64>(1)? as usize, created_at: r.get(2)? }))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e));
        rows
    }

    /// A person's photos (one embedding each), oldest first.
    pub fn photos(&self, name: &str) -> Result<Vec<PhotoSummary>, GalleryError> {
        self.embeddings_of(name)?;
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.id, e.source_path, e.file_sha256, e.det_score, e.created_at FROM embeddings e
                 JOIN persons p ON p.id = e.person_id WHERE p.name = ?1 ORDER BY e.id",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt
            .query_map([name], |r| {
                Ok(PhotoSummary {
                    id: r.get(0)?,
                    path: r.get(1)?,
                    sha256: r.get(2)?,
                    det_score: r.get::<_, f64>(3)? as f32,
                    created_at: r.get(4)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.sql(e));
        rows
    }

    /// Removes one photo (its embedding) by id; a person left with no photo is removed too. Returns whose it was
    /// and whether the person went with it.
    pub fn remove_photo(&mut self, id: i64) -> Result<RemovedPhoto, GalleryError> {
        let tx = self.conn.transaction().map_err(|e| GalleryError::Sqlite { path: self.path.clone(), source: e })?;
        let sql = |e| GalleryError::Sqlite { path: self.path.clone(), source: e };
        let found: Option<(i64, String, String)> = tx
            .query_row(
                "SELECT p.id, p.name, e.source_path FROM embeddings e JOIN persons p ON p.id = e.person_id WHERE e.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sql)?;
        let (person_id, name, path) = found.ok_or(GalleryError::UnknownPhoto(id))?;
        tx.execute("DELETE FROM embeddings WHERE id = ?1", [id]).map_err(sql)?;
        let left: i64 = tx.query_row("SELECT COUNT(*) FROM embeddings WHERE person_id = ?1", [person_id], |r| r.get(0)).map_err(sql)?;
        if left == 0 {
            tx.execute("DELETE FROM persons WHERE id = ?1", [person_id]).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        self.reload()?;
        Ok(RemovedPhoto { id, name, path, person_removed: left == 0 })
    }

    /// Removes a person and their embeddings.
    pub fn remove(&mut self, name: &str) -> Result<usize, GalleryError> {
        let n = self.embeddings_of(name)?;
        self.conn.execute("DELETE FROM persons WHERE name = ?1", [name]).map_err(|e| self.sql(e))?;
        self.reload()?;
        Ok(n)
    }

    /// Renames a person.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), GalleryError> {
        check_name(new)?;
        self.embeddings_of(old)?;
        if self.embeddings_of(new).is_ok() {
            return Err(GalleryError::NameTaken(new.into()));
        }
        self.conn.execute("UPDATE persons SET name = ?2 WHERE name = ?1", [old, new]).map_err(|e| self.sql(e))?;
        self.reload()
    }

    fn embeddings_of(&self, name: &str) -> Result<usize, GalleryError> {
        let n: Option<i64> = self
            .conn
            .query_row(
                "SELECT COUNT(e.id) FROM persons p LEFT JOIN embeddings e ON e.person_id = p.id WHERE p.name = ?1 GROUP BY p.id",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.sql(e))?;
        n.map(|n| n as usize).ok_or_else(|| GalleryError::UnknownPerson(name.into()))
    }

    /// Every pair of enrolled embeddings with its cosine score and whether both belong to one person: the
    /// genuine and impostor scores of this gallery, for calibration. Quadratic: galleries of a few thousand
    /// embeddings give millions of pairs, which is fine for a one-off job.
    pub fn scored_pairs(&self) -> Vec<crate::base::face::ScoredPair> {
        let mut out = Vec::with_capacity(self.entries.len() * self.entries.len().saturating_sub(1) / 2);
        for (i, a) in self.entries.iter().enumerate() {
            for b in &self.entries[i + 1..] {
                out.push(crate::base::face::ScoredPair { score: a.embedding.cosine(&b.embedding), same: a.person == b.person });
            }
        }
        out
    }

    /// The `k` most similar persons to `query`, best first (each scored by their closest embedding).
    pub fn search(&self, query: &Embedding, k: usize) -> Vec<Candidate> {
        self.index.get_or_init(|| self.snapshot()).search(query, k)
    }

    /// A read-only copy of what searching needs, its index built now: what the daemon searches while this
    /// gallery reads the next change (building an HNSW index at 100k embeddings takes minutes).
    pub fn snapshot(&self) -> Snapshot {
        let vectors: Vec<&[f32]> = self.entries.iter().map(|e| e.embedding.as_slice()).collect();
        Snapshot {
            persons: self.persons.clone(),
            owners: self.entries.iter().map(|e| e.person).collect(),
            index: Index::build(&vectors, self.exact_search_max),
        }
    }
}

/// A read-only view of a gallery for searching ([`Gallery::snapshot`]): the names, whose each embedding is, and
/// the index over them.
pub struct Snapshot {
    persons: Vec<String>,
    owners: Vec<usize>,
    index: Index,
}

impl Snapshot {
    /// The best `k` persons for `query`, best first (as [`Gallery::search`]).
    /// Each person scores their best embedding among the nearest ones.
    pub fn search(&self, query: &Embedding, k: usize) -> Vec<Candidate> {
        let n = self.owners.len();
        if k == 0 || n == 0 {
            return Vec::new();
        }
        // Several embeddings may belong to one person: ask for more neighbours than persons wanted.
        let per_person = n / self.persons.len().max(1);
        let neighbours: Vec<Neighbour> = self.index.search(query.as_slice(), (k * per_person.clamp(1, 8)).max(k * 2));
        let mut best: Vec<Candidate> = Vec::with_capacity(k);
        for nb in neighbours {
            let name = &self.persons[self.owners[nb.id]];
            match best.iter_mut().find(|c| &c.name == name) {
                Some(c) => c.score = c.score.max(nb.score),
                None => best.push(Candidate { name: name.clone(), score: nb.score }),
            }
        }
        best.sort_by(|a, b| b.score.total_cmp(&a.score));
        best.truncate(k);
        best
    }

    /// Embeddings searched.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether there is nothing to search.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Persons enrolled.
    pub fn persons(&self) -> usize {
        self.persons.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn unit(seed: u32, dim: usize) -> Embedding {
        // Deterministic pseudo-random vectors (xorshift) are close to orthogonal in high dimensions.
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        let v = (0..dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) - 0.5
            })
            .collect();
        Embedding::from_raw(v).expect("non-zero")
    }

    fn item(e: Embedding, file: &str) -> NewEmbedding {
        NewEmbedding { embedding: e, source_path: file.into(), file_sha256: file.into(), det_score: 0.9 }
    }

    #[test]
    fn another_process_enrolling_is_seen_by_reload_if_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.db");
        let mut daemon = Gallery::open(&path, "m", 64, 1000).expect("open");
        assert!(!daemon.reload_if_changed().expect("poll"));
        let mut cli = Gallery::open(&path, "m", 64, 1000).expect("second handle");
        cli.enroll("carol", &[item(unit(9, 64), "c1")]).expect("enroll");
        assert!(daemon.reload_if_changed().expect("poll"), "the other connection's commit is noticed");
        assert_eq!(daemon.search(&unit(9, 64), 1)[0].name, "carol");
        assert!(!daemon.reload_if_changed().expect("poll"));
    }

    #[test]
    fn enroll_search_rename_remove_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/g.db");
        let mut g = Gallery::open(&path, "m", 64, 1000).expect("open");
        assert_eq!(g.enroll("alice", &[item(unit(1, 64), "a1"), item(unit(2, 64), "a2")]).expect("enroll"), 2);
        assert_eq!(g.enroll("bob", &[item(unit(3, 64), "b1")]).expect("enroll"), 1);
        // The same photo again adds nothing.
        assert_eq!(g.enroll("bob", &[item(unit(3, 64), "b1")]).expect("enroll"), 0);
        let hits = g.search(&unit(2, 64), 2);
        assert_eq!(hits[0].name, "alice");
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        assert_eq!(hits.len(), 2);
        g.rename("bob", "robert").expect("rename");
        assert!(matches!(g.rename("alice", "robert"), Err(GalleryError::NameTaken(_))));
        assert_eq!(g.remove("alice").expect("remove"), 2);
        assert!(matches!(g.remove("alice"), Err(GalleryError::UnknownPerson(_))));
        drop(g);
        // Reopened, the state persisted.
        let g = Gallery::open(&path, "m", 64, 1000).expect("reopen");
        let names: Vec<String> = g.persons().expect("persons").into_iter().map(|p| p.name).collect();
        assert_eq!(names, vec!["robert"]);
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn files_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("private/g.db");
        let mut g = Gallery::open(&path, "m", 8, 10).expect("open");
        g.enroll("x", &[item(unit(1, 8), "f")]).expect("enroll");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
        let wal = path.with_extension("db-wal");
        if wal.exists() {
            assert_eq!(mode(&wal) & 0o077, 0, "WAL file readable by others");
        }
    }

    #[test]
    fn an_existing_gallery_readable_by_others_is_made_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.db");
        let mut g = Gallery::open(&path, "m", 8, 10).expect("open");
        g.enroll("x", &[item(unit(1, 8), "f")]).expect("enroll");
        drop(g);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let g = Gallery::open_existing(&path, "m", 8, 10).expect("reopen");
        assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(g.len(), 1);
    }

    #[test]
    fn opening_a_missing_gallery_to_read_it_creates_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("typo/g.db");
        let err = Gallery::open_existing(&path, "m", 8, 10).err().expect("missing");
        assert!(matches!(err, GalleryError::Missing(_)) && err.to_string().contains("typo/g.db"), "{err}");
        assert!(!path.exists() && !path.parent().expect("dir").exists(), "nothing created");
    }

    #[test]
    fn another_model_is_refused_with_advice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.db");
        Gallery::open(&path, "faceplugin", 512, 10).expect("open");
        let err = Gallery::open(&path, "sface", 128, 10).err().expect("mismatch");
        let msg = err.to_string();
        assert!(msg.contains("faceplugin") && msg.contains("sface") && msg.contains("re-enroll"), "{msg}");
    }

    #[test]
    fn failed_enrolment_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.db");
        let mut g = Gallery::open(&path, "m", 8, 10).expect("open");
        // The second vector has the wrong length: the whole person's transaction must roll back.
        let err = g.enroll("carol", &[item(unit(1, 8), "c1"), item(unit(2, 4), "c2")]);
        assert!(matches!(err, Err(GalleryError::WrongDimension { got: 4, want: 8, .. })), "{err:?}");
        assert!(g.persons().expect("persons").is_empty());
        assert_eq!(g.len(), 0);
    }

    #[test]
    fn hnsw_and_exact_agree_on_the_nearest_person() {
        let dir = tempfile::tempdir().expect("tempdir");
        let items: Vec<NewEmbedding> = (0..300).map(|i| item(unit(i + 10, 32), &format!("f{i}"))).collect();
        let mut exact = Gallery::open(&dir.path().join("e.db"), "m", 32, 10_000).expect("open");
        let mut hnsw = Gallery::open(&dir.path().join("h.db"), "m", 32, 10).expect("open");
        for (i, chunk) in items.chunks(3).enumerate() {
            exact.enroll(&format!("p{i}"), chunk).expect("enroll");
            hnsw.enroll(&format!("p{i}"), chunk).expect("enroll");
        }
        assert_eq!(exact.search_kind(), "exact");
        assert_eq!(hnsw.search_kind(), "hnsw");
        for probe in [15u32, 120, 301] {
            let q = unit(probe, 32);
            assert_eq!(exact.search(&q, 1)[0].name, hnsw.search(&q, 1)[0].name, "probe {probe}");
        }
    }
}
