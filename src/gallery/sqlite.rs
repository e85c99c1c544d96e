//! The SQLite gallery store ([`SqliteStore`]): one file, created 0600 inside a 0700 directory (biometric data),
//! in WAL mode with `synchronous = FULL`; every enrolment of a person is one transaction, so a crash mid-enrol
//! loses nothing committed and leaves nothing half-written. It remembers the recognizer that made its embeddings;
//! opening it with another one is refused, because embeddings of different models are not comparable.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

use super::copy::{DumpPerson, DumpPhoto, DumpStranger, DumpStrangerFace, GalleryDump};
use super::store::{GalleryStore, StoredEmbedding};
use super::strangers::{FaceTarget, MovedFace, NewStrangerFace, StoredStranger, Versions};
use super::{check_name, GalleryError, NewEmbedding, PersonSummary, PhotoSummary, RemovedPhoto};
use crate::base::Embedding;

const SCHEMA_VERSION: &str = "2";

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

pub(super) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

pub(super) fn blob_from_embedding(e: &Embedding) -> Vec<u8> {
    e.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(super) fn embedding_from_blob(b: &[u8]) -> Vec<f32> {
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

/// Persons changed: a running daemon reads them again (see [`super::strangers`] for the counters).
fn bump(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'persons_version'", []).map(drop)
}

/// A gallery kept in one SQLite file: 0600 in a 0700 folder, WAL, one transaction per change.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    model: String,
    dim: usize,
}

/// Writes a consistent copy of the gallery file `from` to `to` (a new file, private like the gallery), whatever is
/// still in its write-ahead log included.
pub fn copy_gallery(from: &Path, to: &Path) -> Result<(), GalleryError> {
    use rusqlite::OpenFlags;
    if !from.is_file() {
        return Err(GalleryError::Missing(from.to_path_buf()));
    }
    let conn = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|source| GalleryError::Sqlite { path: from.into(), source })?;
    create_private(to).map_err(|source| GalleryError::Io { path: to.into(), source })?;
    let _ = std::fs::remove_file(to);
    conn.execute("VACUUM INTO ?1", [to.to_string_lossy().as_ref()]).map_err(|source| GalleryError::Sqlite { path: to.into(), source })?;
    std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|source| GalleryError::Io { path: to.into(), source })
}

impl SqliteStore {
    /// Opens (creating when absent) the gallery file for recognizer `model` producing `dim`-d embeddings.
    pub fn open(path: &Path, model: &str, dim: usize) -> Result<Self, GalleryError> {
        let io = |source| GalleryError::Io { path: path.to_path_buf(), source };
        create_private(path).map_err(io)?;
        let conn = Connection::open(path).map_err(|source| GalleryError::Sqlite { path: path.into(), source })?;
        Self::from_connection(conn, path.to_path_buf(), model, dim)
    }

    /// Opens an existing gallery for reading and matching (identify, gallery list, check): a missing file is an
    /// error naming the path, never silently created empty.
    pub fn open_existing(path: &Path, model: &str, dim: usize) -> Result<Self, GalleryError> {
        if !path.is_file() {
            return Err(GalleryError::Missing(path.to_path_buf()));
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if writable(path) && writable(dir) {
            return Self::open(path, model, dim);
        }
        Self::open_read_only(path, dir, model, dim)
    }

    /// Opens a gallery this process may not change (a read-only file or directory, another user's state
    /// directory): nothing is created, migrated or written, and changing it is refused by SQLite. In WAL mode
    /// SQLite keeps a shared-memory index (`-shm`) beside the file; when there is none and the directory is not
    /// writable it could not make one (`SQLITE_READONLY_DIRECTORY`), so the file is then read as immutable: as it
    /// lies, without locks.
    fn open_read_only(path: &Path, dir: &Path, model: &str, dim: usize) -> Result<Self, GalleryError> {
        use rusqlite::OpenFlags;
        let sqlite = |source| GalleryError::Sqlite { path: path.to_path_buf(), source };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = if writable(dir) || companion(path, "-shm").exists() {
            Connection::open_with_flags(path, flags).map_err(sqlite)?
        } else {
            let uri = format!("file:{}?immutable=1", uri_path(path));
            Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI).map_err(sqlite)?
        };
        let mut store = Self { conn, path: path.to_path_buf(), model: model.into(), dim };
        store.check_model()?;
        Ok(store)
    }

    /// A gallery that lives in memory only (evaluation runs): nothing touches the disk.
    pub fn in_memory(model: &str, dim: usize) -> Result<Self, GalleryError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| GalleryError::Sqlite { path: path.clone(), source })?;
        Self::from_connection(conn, path, model, dim)
    }

    /// Wraps an open connection: applies the schema and checks (or records) the recognizer.
    fn from_connection(conn: Connection, path: PathBuf, model: &str, dim: usize) -> Result<Self, GalleryError> {
        let mut store = Self { conn, path, model: model.into(), dim };
        store.init()?;
        Ok(store)
    }

    pub(super) fn sql(&self, source: rusqlite::Error) -> GalleryError {
        GalleryError::Sqlite { path: self.path.clone(), source }
    }

    pub(super) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(super) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn model_name(&self) -> &str {
        &self.model
    }

    pub(super) fn dim_of(&self) -> usize {
        self.dim
    }

    fn init(&mut self) -> Result<(), GalleryError> {
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .and_then(|()| self.conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| self.conn.pragma_update(None, "foreign_keys", "ON"))
            .and_then(|()| self.conn.execute_batch(SCHEMA))
            .map_err(|e| self.sql(e))?;
        self.migrate()?;
        self.check_model()
    }

    /// Brings a gallery of schema 1 to 2: photos keep their aligned crop, strangers, change counters.
    fn migrate(&mut self) -> Result<(), GalleryError> {
        let has_crop: bool = self
            .conn
            .prepare("SELECT 1 FROM pragma_table_info('embeddings') WHERE name = 'crop'")
            .and_then(|mut s| s.exists([]))
            .map_err(|e| self.sql(e))?;
        let tx = self.conn.transaction().map_err(|e| GalleryError::Sqlite { path: self.path.clone(), source: e })?;
        let sql = |e| GalleryError::Sqlite { path: self.path.clone(), source: e };
        if !has_crop {
            tx.execute("ALTER TABLE embeddings ADD COLUMN crop BLOB", []).map_err(sql)?;
        }
        tx.execute_batch(super::strangers::SCHEMA_V2).map_err(sql)?;
        tx.execute("UPDATE meta SET value = ?1 WHERE key = 'schema_version'", [SCHEMA_VERSION]).map_err(sql)?;
        tx.commit().map_err(sql)
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
}

impl GalleryStore for SqliteStore {
    fn location(&self) -> &Path {
        &self.path
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embeddings(&self) -> Result<Vec<StoredEmbedding>, GalleryError> {
        // One statement (one snapshot), sorted here by name then id: an ORDER BY made SQLite sort every row with
        // its vector, most of the time of reading a million embeddings.
        let sql = |e| self.sql(e);
        let mut stmt = self
            .conn
            .prepare("SELECT e.id, p.name, e.vector, e.source_path FROM embeddings e JOIN persons p ON p.id = e.person_id")
            .map_err(sql)?;
        let mut rows = stmt
            .query_map([], |r| {
                Ok(StoredEmbedding {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    vector: embedding_from_blob(r.get_ref(2)?.as_blob()?),
                    source_path: r.get(3)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql)?;
        rows.sort_unstable_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(rows)
    }

    fn version(&self) -> Result<i64, GalleryError> {
        self.conn.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(|e| self.sql(e))
    }

    fn enroll(&mut self, name: &str, items: &[NewEmbedding]) -> Result<Vec<(usize, i64)>, GalleryError> {
        check_name(name)?;
        let path = self.path.clone();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("INSERT OR IGNORE INTO persons (name, created_at) VALUES (?1, ?2)", params![name, now()]).map_err(sql)?;
        let person_id: i64 = tx.query_row("SELECT id FROM persons WHERE name = ?1", [name], |r| r.get(0)).map_err(sql)?;
        let mut added = Vec::new();
        for (i, item) in items.iter().enumerate() {
            if item.embedding.dim() != self.dim {
                return Err(GalleryError::WrongDimension { path: self.path.clone(), got: item.embedding.dim(), want: self.dim });
            }
            let inserted = tx
                .execute(
                    "INSERT OR IGNORE INTO embeddings (person_id, model, dim, vector, source_path, file_sha256, det_score, created_at, crop)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        person_id,
                        self.model,
                        self.dim as i64,
                        blob_from_embedding(&item.embedding),
                        item.source_path,
                        item.file_sha256,
                        f64::from(item.det_score),
                        now(),
                        item.crop
                    ],
                )
                .map_err(sql)?;
            if inserted == 1 {
                added.push((i, tx.last_insert_rowid()));
            }
        }
        if !added.is_empty() {
            bump(&tx).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(added)
    }

    fn persons(&self) -> Result<Vec<PersonSummary>, GalleryError> {
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

    fn photos(&self, name: &str) -> Result<Vec<PhotoSummary>, GalleryError> {
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

    fn owners_of(&self, file_sha256: &str) -> Result<Vec<String>, GalleryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT p.name FROM embeddings e JOIN persons p ON p.id = e.person_id WHERE e.file_sha256 = ?1 AND e.model = ?2 ORDER BY p.name",
            )
            .map_err(|e| self.sql(e))?;
        let rows = stmt.query_map(params![file_sha256, self.model], |r| r.get(0)).map_err(|e| self.sql(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.sql(e))
    }

    fn stored(&self) -> Result<usize, GalleryError> {
        self.conn
            .query_row("SELECT COUNT(*) FROM embeddings WHERE model = ?1", [&self.model], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(|e| self.sql(e))
    }

    fn remove_photo(&mut self, id: i64) -> Result<RemovedPhoto, GalleryError> {
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
        bump(&tx).map_err(sql)?;
        let left: i64 = tx.query_row("SELECT COUNT(*) FROM embeddings WHERE person_id = ?1", [person_id], |r| r.get(0)).map_err(sql)?;
        if left == 0 {
            tx.execute("DELETE FROM persons WHERE id = ?1", [person_id]).map_err(sql)?;
        }
        tx.commit().map_err(sql)?;
        Ok(RemovedPhoto { id, name, path, person_removed: left == 0 })
    }

    fn remove(&mut self, name: &str) -> Result<usize, GalleryError> {
        let n = self.embeddings_of(name)?;
        let path = self.path.clone();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("DELETE FROM persons WHERE name = ?1", [name]).map_err(sql)?;
        bump(&tx).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(n)
    }

    fn rename(&mut self, old: &str, new: &str) -> Result<(), GalleryError> {
        check_name(new)?;
        self.embeddings_of(old)?;
        if self.embeddings_of(new).is_ok() {
            return Err(GalleryError::NameTaken(new.into()));
        }
        let path = self.path.clone();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("UPDATE persons SET name = ?2 WHERE name = ?1", [old, new]).map_err(sql)?;
        bump(&tx).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    fn photo_crop(&self, id: i64) -> Result<Option<Vec<u8>>, GalleryError> {
        SqliteStore::photo_crop(self, id)
    }

    fn move_face(&mut self, id: i64, to: &FaceTarget) -> Result<MovedFace, GalleryError> {
        SqliteStore::move_face(self, id, to)
    }

    fn versions(&self) -> Result<Versions, GalleryError> {
        SqliteStore::versions(self)
    }

    fn strangers(&self) -> Result<Vec<StoredStranger>, GalleryError> {
        SqliteStore::strangers(self)
    }

    fn stranger_add(&mut self, label: &str, face: &NewStrangerFace) -> Result<(), GalleryError> {
        SqliteStore::stranger_add(self, label, face)
    }

    fn stranger_add_face(&mut self, label: &str, face: &NewStrangerFace, keep: usize) -> Result<(), GalleryError> {
        SqliteStore::stranger_add_face(self, label, face, keep)
    }

    fn stranger_seen(&mut self, label: &str, camera: &str, at: i64) -> Result<(), GalleryError> {
        SqliteStore::stranger_seen(self, label, camera, at)
    }

    fn stranger_name(&mut self, label: &str, person: &str) -> Result<usize, GalleryError> {
        SqliteStore::stranger_name(self, label, person)
    }

    fn stranger_merge(&mut self, into: &str, from: &str) -> Result<usize, GalleryError> {
        SqliteStore::stranger_merge(self, into, from)
    }

    fn stranger_forget(&mut self, label: &str) -> Result<usize, GalleryError> {
        SqliteStore::stranger_forget(self, label)
    }

    fn strangers_prune(&mut self, before: i64, max: usize) -> Result<usize, GalleryError> {
        SqliteStore::strangers_prune(self, before, max)
    }

    fn stranger_face_image(&self, face: i64, context: bool) -> Result<Option<Vec<u8>>, GalleryError> {
        SqliteStore::stranger_face_image(self, face, context)
    }

    fn dump(&self) -> Result<GalleryDump, GalleryError> {
        SqliteStore::dump(self)
    }

    fn load(&mut self, dump: &GalleryDump) -> Result<(), GalleryError> {
        SqliteStore::load(self, dump)
    }
}

impl SqliteStore {
    /// Everything kept for this gallery's recognizer.
    fn dump(&self) -> Result<GalleryDump, GalleryError> {
        let sql = |e| self.sql(e);
        // One read transaction: what a daemon writes meanwhile is in the copy whole or not at all.
        let tx = self.conn.unchecked_transaction().map_err(sql)?;
        let c: &Connection = &tx;
        let mut persons: Vec<(i64, DumpPerson)> = c
            .prepare("SELECT id, name, created_at FROM persons ORDER BY name")
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, DumpPerson { name: r.get(1)?, created_at: r.get(2)?, photos: Vec::new() })))?.collect()
            })
            .map_err(sql)?;
        let photos: Vec<(i64, DumpPhoto)> = c
            .prepare("SELECT person_id, vector, source_path, file_sha256, det_score, created_at, crop FROM embeddings WHERE model = ?1 ORDER BY id")
            .and_then(|mut st| {
                st.query_map([&self.model], |r| {
                    Ok((
                        r.get(0)?,
                        DumpPhoto {
                            vector: r.get(1)?,
                            source_path: r.get(2)?,
                            file_sha256: r.get(3)?,
                            det_score: r.get(4)?,
                            created_at: r.get(5)?,
                            crop: r.get(6)?,
                        },
                    ))
                })?
                .collect()
            })
            .map_err(sql)?;
        let index: std::collections::HashMap<i64, usize> = persons.iter().enumerate().map(|(i, p)| (p.0, i)).collect();
        for (person, photo) in photos {
            if let Some(&i) = index.get(&person) {
                persons[i].1.photos.push(photo);
            }
        }
        let has_strangers: bool = c
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'strangers'", [], |r| r.get::<_, i64>(0))
            .map_err(sql)?
            > 0;
        let mut strangers: Vec<(i64, DumpStranger)> = Vec::new();
        if has_strangers {
            strangers = c
                .prepare("SELECT id, label, first_seen, last_seen, sightings, cameras FROM strangers WHERE model = ?1 ORDER BY label")
                .and_then(|mut st| {
                    st.query_map([&self.model], |r| {
                        Ok((
                            r.get(0)?,
                            DumpStranger {
                                label: r.get(1)?,
                                first_seen: r.get(2)?,
                                last_seen: r.get(3)?,
                                sightings: r.get(4)?,
                                cameras: r.get(5)?,
                                faces: Vec::new(),
                            },
                        ))
                    })?
                    .collect()
                })
                .map_err(sql)?;
            let faces: Vec<(i64, DumpStrangerFace)> = c
                .prepare("SELECT stranger_id, vector, quality, crop, context, camera, seen_at FROM stranger_faces ORDER BY id")
                .and_then(|mut st| {
                    st.query_map([], |r| {
                        Ok((
                            r.get(0)?,
                            DumpStrangerFace {
                                vector: r.get(1)?,
                                quality: r.get(2)?,
                                crop: r.get(3)?,
                                context: r.get(4)?,
                                camera: r.get(5)?,
                                seen_at: r.get(6)?,
                            },
                        ))
                    })?
                    .collect()
                })
                .map_err(sql)?;
            let index: std::collections::HashMap<i64, usize> = strangers.iter().enumerate().map(|(i, s)| (s.0, i)).collect();
            for (stranger, face) in faces {
                if let Some(&i) = index.get(&stranger) {
                    strangers[i].1.faces.push(face);
                }
            }
        }
        Ok(GalleryDump { persons: persons.into_iter().map(|p| p.1).collect(), strangers: strangers.into_iter().map(|s| s.1).collect() })
    }

    /// Writes `dump` into this gallery, which must be empty, in one transaction.
    fn load(&mut self, dump: &GalleryDump) -> Result<(), GalleryError> {
        let (path, model, dim) = (self.path.clone(), self.model.clone(), self.dim as i64);
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction().map_err(sql)?;
        let persons: i64 = tx.query_row("SELECT COUNT(*) FROM persons", [], |r| r.get(0)).map_err(sql)?;
        let strangers: i64 = tx.query_row("SELECT COUNT(*) FROM strangers", [], |r| r.get(0)).map_err(sql)?;
        if persons + strangers > 0 {
            return Err(GalleryError::NotEmpty { path: path.display().to_string(), persons, strangers });
        }
        for p in &dump.persons {
            tx.execute("INSERT INTO persons (name, created_at) VALUES (?1, ?2)", params![p.name, p.created_at]).map_err(sql)?;
            let id = tx.last_insert_rowid();
            for f in &p.photos {
                tx.execute(
                    "INSERT INTO embeddings (person_id, model, dim, vector, source_path, file_sha256, det_score, created_at, crop)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![id, model, dim, f.vector, f.source_path, f.file_sha256, f.det_score, f.created_at, f.crop],
                )
                .map_err(sql)?;
            }
        }
        for s in &dump.strangers {
            tx.execute(
                "INSERT INTO strangers (label, model, first_seen, last_seen, sightings, cameras) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![s.label, model, s.first_seen, s.last_seen, s.sightings, s.cameras],
            )
            .map_err(sql)?;
            let id = tx.last_insert_rowid();
            for f in &s.faces {
                tx.execute(
                    "INSERT INTO stranger_faces (stranger_id, vector, quality, crop, context, camera, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![id, f.vector, f.quality, f.crop, f.context, f.camera, f.seen_at],
                )
                .map_err(sql)?;
            }
        }
        bump(&tx).map_err(sql)?;
        tx.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'strangers_version'", []).map_err(sql)?;
        tx.commit().map_err(sql)
    }
}
