//! The PostgreSQL gallery store ([`PgStore`]): one gallery shared by several nodes. PostgreSQL is the source of
//! truth, not the search engine: every node keeps the whole gallery in memory ([`super::Gallery`]) and matches
//! there. Every change is one transaction that moves the change counters and sends a notification on
//! [`CHANNEL`] (its version, what changed and the ids), delivered at commit; nodes listen and read the change at
//! once ([`GalleryStore::wait_change`]), and compare versions after every reconnect, since notifications are not
//! replayed.
//!
//! With the server down, reading and writing fail with [`GalleryError::Unavailable`] (nothing is half-written: a
//! transaction that did not commit left nothing); a node keeps matching from memory and connects again on the next
//! call. The schema is versioned ([`MIGRATIONS`]), applied under an advisory lock so that nodes starting together
//! do not race; a server whose schema is newer than this binary knows is refused.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use postgres::{Client, GenericClient, Transaction};

use super::copy::{DumpPerson, DumpPhoto, DumpStranger, DumpStrangerFace, GalleryDump};
use super::sqlite::{blob_from_embedding, embedding_from_blob, now};
use super::store::{GalleryStore, StoredEmbedding};
use super::strangers::{is_label, new_label, FaceTarget, MovedFace, NewStrangerFace, StoredStranger, StrangerFace, Versions};
use super::{check_name, GalleryConfig, GalleryError, NewEmbedding, PersonSummary, PhotoSummary, RemovedPhoto};
use crate::base::Embedding;

/// Environment variable holding the PostgreSQL password (wins over `gallery.password_file` and the URL's).
pub const PASSWORD_ENV: &str = "FACEWATCH_GALLERY_PASSWORD";

/// The notification channel of gallery changes.
pub const CHANNEL: &str = "facewatch_gallery";

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// After listening failed, the watcher polls the version this long before it tries again.
const LISTEN_RETRY: Duration = Duration::from_secs(2);

/// After a failed connection, calls fail at once for this long instead of waiting on the server again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The schema, one migration per version, applied in order and recorded in `schema_migrations`.
pub const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO counters (name, value) VALUES ('data', 0), ('persons', 0), ('strangers', 0), ('seen', 0);
CREATE TABLE persons (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE TABLE embeddings (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person_id BIGINT NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BYTEA NOT NULL,
    source_path TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    det_score DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL,
    crop BYTEA,
    UNIQUE (person_id, file_sha256)
);
CREATE INDEX embeddings_by_sha ON embeddings (file_sha256);
CREATE TABLE strangers (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    sightings BIGINT NOT NULL DEFAULT 1,
    cameras TEXT NOT NULL DEFAULT ''
);
CREATE TABLE stranger_faces (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stranger_id BIGINT NOT NULL REFERENCES strangers(id) ON DELETE CASCADE,
    vector BYTEA NOT NULL,
    quality DOUBLE PRECISION NOT NULL,
    crop BYTEA NOT NULL,
    context BYTEA,
    camera TEXT NOT NULL,
    seen_at BIGINT NOT NULL
);
CREATE INDEX stranger_faces_by_stranger ON stranger_faces (stranger_id);
",
)];

/// Advisory lock key under which migrations run (`facewatc` in ASCII).
const MIGRATION_LOCK: i64 = 0x6661_6365_7761_7463;

/// Why a statement failed: the server's error, or the gallery's own refusal.
enum Fail {
    Pg(postgres::Error),
    Gallery(GalleryError),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

impl From<GalleryError> for Fail {
    fn from(e: GalleryError) -> Self {
        Fail::Gallery(e)
    }
}

/// How to reach the server.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    tls: Option<rustls::ClientConfig>,
    shown: String,
}

impl PgTarget {
    /// The server of `[gallery]` (its `url`, the password from `FACEWATCH_GALLERY_PASSWORD`, else
    /// `password_file`, else the URL; TLS as the URL's `sslmode` asks, verified against `ca_file` or the system's
    /// roots).
    pub fn from_config(cfg: &GalleryConfig) -> Result<Self, GalleryError> {
        Self::from_config_with(cfg, true)
    }

    /// [`PgTarget::from_config`]; without `ambient`, neither `FACEWATCH_GALLERY_PASSWORD` nor
    /// `gallery.password_file` is used (a server other than the configured one must not be sent its password): the
    /// URL's own, if any. A password written in the URL wins in any case.
    pub fn from_config_with(cfg: &GalleryConfig, ambient: bool) -> Result<Self, GalleryError> {
        let shown = cfg.url.redacted();
        let bad = |message: String| GalleryError::Config { server: shown.clone(), message };
        let mut config: postgres::Config = cfg.url.expose().parse().map_err(|e| bad(format!("{e}")))?;
        if config.get_password().is_none() && ambient {
            let found = crate::private::secret_from(
                PASSWORD_ENV,
                (!cfg.password_file.is_empty()).then(|| crate::paths::resolve_path(&cfg.password_file)).as_deref(),
            )
            .map_err(|(path, e)| bad(format!("gallery.password_file {}: {e}", path.display())))?;
            if let Some(p) = found {
                config.password(p);
            }
        }
        // Faces and a password cross the network: TLS unless the URL says otherwise (`sslmode=disable` for a server
        // without it); `prefer` would let anyone on the way downgrade it.
        if !cfg.url.expose().contains("sslmode=") {
            config.ssl_mode(postgres::config::SslMode::Require);
        }
        if config.get_application_name().is_none() {
            config.application_name("facewatch");
        }
        config.connect_timeout(CONNECT_TIMEOUT);
        let tls = match config.get_ssl_mode() {
            postgres::config::SslMode::Disable => None,
            _ => Some(crate::tls::client_config(&cfg.ca_file).map_err(|e| bad(format!("gallery.ca_file: {e}")))?),
        };
        Ok(Self { config, tls, shown })
    }

    /// The server, for messages (no password).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            Some(tls) => self.config.connect(tokio_postgres_rustls::MakeRustlsConnect::new(tls.clone())),
            None => self.config.connect(postgres::NoTls),
        }
    }
}

/// A connection that is made again when lost, and refused at once for [`RETRY_AFTER`] after a failed try.
struct Link {
    client: Option<Client>,
    failed_at: Option<(Instant, String)>,
}

/// A gallery kept in PostgreSQL, shared by every node pointed at it.
pub struct PgStore {
    target: PgTarget,
    link: RefCell<Link>,
    /// The connection that listens for changes (the daemon's watcher only).
    listener: Option<Client>,
    /// When listening last failed: not tried again for [`LISTEN_RETRY`].
    listen_failed: Option<Instant>,
    location: PathBuf,
    model: String,
    dim: usize,
}

impl PgStore {
    /// Connects to the gallery server, brings its schema up to date, and checks (or records) the recognizer.
    pub fn open(target: PgTarget, model: &str, dim: usize) -> Result<Self, GalleryError> {
        let location = PathBuf::from(target.shown());
        let store = Self {
            target,
            link: RefCell::new(Link { client: None, failed_at: None }),
            listener: None,
            listen_failed: None,
            location,
            model: model.into(),
            dim,
        };
        store.with(|c| {
            let mut tx = c.transaction()?;
            migrate(&mut tx)?;
            tx.commit()?;
            Ok(())
        })?;
        store.check_model()?;
        Ok(store)
    }

    /// What the server holds, read without creating or changing anything (`check-config`): the recognizer its
    /// embeddings come from (`None`: a gallery never used) and how many there are.
    pub fn probe(target: &PgTarget) -> Result<(Option<String>, u64), GalleryError> {
        let unavailable = |e: postgres::Error| GalleryError::Unavailable { server: target.shown.clone(), message: chain(&e) };
        let failed = |e: postgres::Error| GalleryError::Postgres { server: target.shown.clone(), source: e };
        let mut c = target.connect().map_err(unavailable)?;
        let made: bool =
            c.query_one("SELECT to_regclass('meta') IS NOT NULL AND to_regclass('embeddings') IS NOT NULL", &[]).map_err(failed)?.get(0);
        if !made {
            return Ok((None, 0));
        }
        let model = c.query_opt("SELECT value FROM meta WHERE key = 'model'", &[]).map_err(failed)?.map(|r| r.get(0));
        let n: i64 = c.query_one("SELECT COUNT(*) FROM embeddings", &[]).map_err(failed)?.get(0);
        Ok((model, n.max(0) as u64))
    }

    fn unavailable(&self, message: String) -> GalleryError {
        GalleryError::Unavailable { server: self.target.shown.clone(), message }
    }

    /// Runs `f` on the connection (made again when it was lost); a lost connection is given up so that the next
    /// call connects again.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, Fail>) -> Result<T, GalleryError> {
        let mut guard = self.link.borrow_mut();
        let link = &mut *guard;
        if let Some(c) = link.client.as_mut() {
            // One round trip first: a server that went away is found out before anything is sent, so that the
            // error can say nothing was changed (a connection lost in the middle of a change says it may have been).
            if c.is_closed() || c.is_valid(CONNECT_TIMEOUT).is_err() {
                link.client = None;
            }
        }
        if link.client.is_none() {
            if let Some((at, why)) = &link.failed_at {
                if at.elapsed() < RETRY_AFTER {
                    return Err(self.unavailable(why.clone()));
                }
            }
            match self.target.connect() {
                Ok(c) => {
                    link.client = Some(c);
                    link.failed_at = None;
                }
                Err(e) => {
                    let why = chain(&e);
                    link.failed_at = Some((Instant::now(), why.clone()));
                    return Err(self.unavailable(why));
                }
            }
        }
        let Some(client) = link.client.as_mut() else { return Err(self.unavailable("not connected".into())) };
        let result = f(client);
        let client = link.client.as_mut().expect("still there");
        match result {
            Ok(v) => Ok(v),
            Err(Fail::Gallery(e)) => Err(e),
            Err(Fail::Pg(e)) => {
                if client.is_closed() || e.as_db_error().is_none() && is_connection_error(&e) {
                    link.client = None;
                    Err(GalleryError::ConnectionLost { server: self.target.shown.clone(), message: chain(&e) })
                } else {
                    Err(GalleryError::Postgres { server: self.target.shown.clone(), source: e })
                }
            }
        }
    }

    fn check_model(&self) -> Result<(), GalleryError> {
        let (model, dim) = (self.model.clone(), self.dim);
        let stored = self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('model', $1), ('dim', $2) ON CONFLICT (key) DO NOTHING",
                &[&model, &dim.to_string()],
            )?;
            let m: String = tx.query_one("SELECT value FROM meta WHERE key = 'model'", &[])?.get(0);
            let d: String = tx.query_one("SELECT value FROM meta WHERE key = 'dim'", &[])?.get(0);
            tx.commit()?;
            Ok((m, d))
        })?;
        if stored.0 != self.model {
            return Err(GalleryError::ModelMismatch {
                path: self.location.clone(),
                gallery: stored.0,
                gallery_dim: stored.1.parse().unwrap_or(0),
                configured: self.model.clone(),
            });
        }
        Ok(())
    }

    /// A second connection that listens on [`CHANNEL`]; made again when lost.
    fn listen(&mut self) -> Result<&mut Client, postgres::Error> {
        if self.listener.as_ref().is_some_and(Client::is_closed) {
            self.listener = None;
        }
        if self.listener.is_none() {
            let mut c = self.target.connect()?;
            c.batch_execute(&format!("LISTEN {CHANNEL}"))?;
            self.listener = Some(c);
        }
        Ok(self.listener.as_mut().expect("just made"))
    }
}

/// `e` with its causes (`error performing TLS handshake: invalid peer certificate: UnknownIssuer`).
fn chain(e: &postgres::Error) -> String {
    use std::error::Error as _;
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// Whether `e` is the connection failing rather than the server refusing a statement.
fn is_connection_error(e: &postgres::Error) -> bool {
    use std::error::Error as _;
    e.is_closed() || e.source().is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
}

/// Brings the schema up to date, one migration at a time, under an advisory lock (nodes starting together wait
/// for each other). A schema newer than this binary knows is refused.
fn migrate(tx: &mut Transaction<'_>) -> Result<(), Fail> {
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    // Up to date: nothing to create (a node's role may read and write the tables without the right to create any).
    let made: bool = tx.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?.get(0);
    if made {
        let applied: i32 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0);
        if applied == known {
            return Ok(());
        }
    }
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)")?;
    let applied: i32 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0);
    if applied > known {
        return Err(Fail::Gallery(GalleryError::NewerSchema { found: applied, known }));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > applied) {
        tx.batch_execute(sql)?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)", &[version, &now()])?;
    }
    Ok(())
}

/// Records a change: moves the `data` counter and `counters`, and notifies every node (delivered at commit).
fn changed(tx: &mut Transaction<'_>, counters: &[&str], kind: &str, ids: &[i64]) -> Result<(), postgres::Error> {
    let names: Vec<&str> = std::iter::once("data").chain(counters.iter().copied()).collect();
    tx.execute("UPDATE counters SET value = value + 1 WHERE name = ANY($1)", &[&names])?;
    let version: i64 = tx.query_one("SELECT value FROM counters WHERE name = 'data'", &[])?.get(0);
    // A notification holds at most 8000 bytes: a long list of ids is cut (a node reads the change whole anyway).
    let shown: Vec<i64> = ids.iter().copied().take(200).collect();
    let payload = serde_json::json!({ "version": version, "kind": kind, "ids": shown, "more": ids.len() > shown.len() }).to_string();
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &payload])?;
    Ok(())
}

fn stranger_id(tx: &mut Transaction<'_>, label: &str) -> Result<Option<i64>, postgres::Error> {
    Ok(tx.query_opt("SELECT id FROM strangers WHERE label = $1", &[&label])?.map(|r| r.get(0)))
}

fn insert_face(tx: &mut Transaction<'_>, stranger: i64, f: &NewStrangerFace) -> Result<i64, postgres::Error> {
    Ok(tx
        .query_one(
            "INSERT INTO stranger_faces (stranger_id, vector, quality, crop, context, camera, seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            &[&stranger, &blob_from_embedding(&f.embedding), &f64::from(f.quality), &f.crop, &f.context, &f.camera, &f.seen_at],
        )?
        .get(0))
}

fn person_id(tx: &mut Transaction<'_>, name: &str) -> Result<i64, postgres::Error> {
    tx.execute("INSERT INTO persons (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", &[&name, &now()])?;
    Ok(tx.query_one("SELECT id FROM persons WHERE name = $1", &[&name])?.get(0))
}

fn count(c: &mut impl GenericClient, sql: &str, id: i64) -> Result<i64, postgres::Error> {
    Ok(c.query_one(sql, &[&id])?.get(0))
}

impl GalleryStore for PgStore {
    fn location(&self) -> &Path {
        &self.location
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embeddings(&self) -> Result<Vec<StoredEmbedding>, GalleryError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT e.id, p.name, e.vector, e.source_path FROM embeddings e JOIN persons p ON p.id = e.person_id
                 WHERE e.model = $1 ORDER BY p.name, e.id",
                &[&self.model],
            )?;
            Ok(rows
                .iter()
                .map(|r| StoredEmbedding {
                    id: r.get(0),
                    name: r.get(1),
                    vector: embedding_from_blob(r.get::<_, &[u8]>(2)),
                    source_path: r.get(3),
                })
                .collect())
        })
    }

    fn version(&self) -> Result<i64, GalleryError> {
        self.with(|c| Ok(c.query_one("SELECT value FROM counters WHERE name = 'data'", &[])?.get(0)))
    }

    fn wait_change(&mut self, timeout: Duration) -> bool {
        if self.listen_failed.is_some_and(|t| t.elapsed() < LISTEN_RETRY) {
            std::thread::sleep(timeout);
            return false;
        }
        self.listen_failed = None;
        let listener = match self.listen() {
            Ok(l) => l,
            Err(_) => {
                // The server is away: wait as a poll would; the caller's version check finds out the rest (and says
                // so once).
                self.listen_failed = Some(Instant::now());
                std::thread::sleep(timeout);
                return false;
            }
        };
        use fallible_iterator::FallibleIterator;
        let mut notes = listener.notifications();
        let first = notes.timeout_iter(timeout).next();
        // Take what else arrived with it, without waiting again.
        let rest = first.as_ref().is_ok_and(Option::is_some).then(|| notes.iter().count());
        let lost = first.is_err() || rest.is_some_and(|r| r.is_err());
        drop(notes);
        if lost {
            // Lost: listen again next time, and have the caller compare versions (a resync).
            self.listener = None;
            return true;
        }
        matches!(first, Ok(Some(_)))
    }

    fn enroll(&mut self, name: &str, items: &[NewEmbedding]) -> Result<Vec<(usize, i64)>, GalleryError> {
        check_name(name)?;
        if let Some(bad) = items.iter().find(|i| i.embedding.dim() != self.dim) {
            return Err(GalleryError::WrongDimension { path: self.location.clone(), got: bad.embedding.dim(), want: self.dim });
        }
        let (model, dim) = (self.model.clone(), self.dim as i32);
        self.with(|c| {
            let mut tx = c.transaction()?;
            let person = person_id(&mut tx, name)?;
            let (mut added, mut ids) = (Vec::new(), Vec::new());
            for (i, item) in items.iter().enumerate() {
                let row = tx.query_opt(
                    "INSERT INTO embeddings (person_id, model, dim, vector, source_path, file_sha256, det_score, created_at, crop)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (person_id, file_sha256) DO NOTHING RETURNING id",
                    &[
                        &person,
                        &model,
                        &dim,
                        &blob_from_embedding(&item.embedding),
                        &item.source_path,
                        &item.file_sha256,
                        &f64::from(item.det_score),
                        &now(),
                        &item.crop,
                    ],
                )?;
                if let Some(r) = row {
                    let id = r.get::<_, i64>(0);
                    added.push((i, id));
                    ids.push(id);
                }
            }
            if !added.is_empty() {
                changed(&mut tx, &["persons"], "enroll", &ids)?;
            }
            tx.commit()?;
            Ok(added)
        })
    }

    fn persons(&self) -> Result<Vec<PersonSummary>, GalleryError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT p.name, COUNT(e.id), p.created_at FROM persons p LEFT JOIN embeddings e ON e.person_id = p.id
                 GROUP BY p.id ORDER BY p.name",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| PersonSummary { name: r.get(0), embeddings: r.get::<_, i64>(1).max(0) as usize, created_at: r.get(2) })
                .collect())
        })
    }

    fn photos(&self, name: &str) -> Result<Vec<PhotoSummary>, GalleryError> {
        self.with(|c| {
            if c.query_opt("SELECT 1 FROM persons WHERE name = $1", &[&name])?.is_none() {
                return Err(Fail::Gallery(GalleryError::UnknownPerson(name.into())));
            }
            let rows = c.query(
                "SELECT e.id, e.source_path, e.file_sha256, e.det_score, e.created_at FROM embeddings e
                 JOIN persons p ON p.id = e.person_id WHERE p.name = $1 ORDER BY e.id",
                &[&name],
            )?;
            Ok(rows
                .iter()
                .map(|r| PhotoSummary {
                    id: r.get(0),
                    path: r.get(1),
                    sha256: r.get(2),
                    det_score: r.get::<_, f64>(3) as f32,
                    created_at: r.get(4),
                })
                .collect())
        })
    }

    fn owners_of(&self, file_sha256: &str) -> Result<Vec<String>, GalleryError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT p.name FROM embeddings e JOIN persons p ON p.id = e.person_id WHERE e.file_sha256 = $1 AND e.model = $2 ORDER BY p.name",
                &[&file_sha256, &self.model],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    fn stored(&self) -> Result<usize, GalleryError> {
        self.with(|c| Ok(c.query_one("SELECT COUNT(*) FROM embeddings WHERE model = $1", &[&self.model])?.get::<_, i64>(0).max(0) as usize))
    }

    fn remove_photo(&mut self, id: i64) -> Result<RemovedPhoto, GalleryError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let row = tx.query_opt(
                "SELECT p.id, p.name, e.source_path FROM embeddings e JOIN persons p ON p.id = e.person_id WHERE e.id = $1 FOR UPDATE",
                &[&id],
            )?;
            let Some(row) = row else { return Err(Fail::Gallery(GalleryError::UnknownPhoto(id))) };
            let (person, name, path): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
            tx.execute("DELETE FROM embeddings WHERE id = $1", &[&id])?;
            let left = count(&mut tx, "SELECT COUNT(*) FROM embeddings WHERE person_id = $1", person)?;
            if left == 0 {
                tx.execute("DELETE FROM persons WHERE id = $1", &[&person])?;
            }
            changed(&mut tx, &["persons"], "remove-photo", &[id])?;
            tx.commit()?;
            Ok(RemovedPhoto { id, name, path, person_removed: left == 0 })
        })
    }

    fn remove(&mut self, name: &str) -> Result<usize, GalleryError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let Some(row) = tx.query_opt("SELECT id FROM persons WHERE name = $1 FOR UPDATE", &[&name])? else {
                return Err(Fail::Gallery(GalleryError::UnknownPerson(name.into())));
            };
            let person: i64 = row.get(0);
            let n = tx.execute("DELETE FROM embeddings WHERE person_id = $1", &[&person])?;
            tx.execute("DELETE FROM persons WHERE id = $1", &[&person])?;
            changed(&mut tx, &["persons"], "remove", &[person])?;
            tx.commit()?;
            Ok(n as usize)
        })
    }

    fn rename(&mut self, old: &str, new: &str) -> Result<(), GalleryError> {
        check_name(new)?;
        self.with(|c| {
            let mut tx = c.transaction()?;
            let Some(row) = tx.query_opt("SELECT id FROM persons WHERE name = $1 FOR UPDATE", &[&old])? else {
                return Err(Fail::Gallery(GalleryError::UnknownPerson(old.into())));
            };
            if tx.query_opt("SELECT 1 FROM persons WHERE name = $1", &[&new])?.is_some() {
                return Err(Fail::Gallery(GalleryError::NameTaken(new.into())));
            }
            let person: i64 = row.get(0);
            tx.execute("UPDATE persons SET name = $2 WHERE id = $1", &[&person, &new])?;
            changed(&mut tx, &["persons"], "rename", &[person])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn photo_crop(&self, id: i64) -> Result<Option<Vec<u8>>, GalleryError> {
        self.with(|c| Ok(c.query_opt("SELECT crop FROM embeddings WHERE id = $1", &[&id])?.and_then(|r| r.get::<_, Option<Vec<u8>>>(0))))
    }

    fn move_face(&mut self, id: i64, to: &FaceTarget) -> Result<MovedFace, GalleryError> {
        if let FaceTarget::Person(name) = to {
            check_name(name)?;
            if is_label(name) {
                return Err(GalleryError::BadName(name.clone()));
            }
        }
        let model = self.model.clone();
        self.with(|c| {
            let mut tx = c.transaction()?;
            let row = tx.query_opt(
                "SELECT p.id, p.name, e.vector, e.det_score, e.crop, e.created_at, e.file_sha256 FROM embeddings e
                 JOIN persons p ON p.id = e.person_id WHERE e.id = $1 FOR UPDATE",
                &[&id],
            )?;
            let Some(row) = row else { return Err(Fail::Gallery(GalleryError::UnknownPhoto(id))) };
            let (from_id, from, vector, quality, crop, created, sha): (i64, String, Vec<u8>, f64, Option<Vec<u8>>, i64, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5), row.get(6));
            let to_name = match to {
                FaceTarget::Person(name) => {
                    let person = person_id(&mut tx, name)?;
                    if person == from_id {
                        return Err(Fail::Gallery(GalleryError::NameTaken(format!("{name} (the photo is already theirs)"))));
                    }
                    // The person may have this photo already: their copy goes and the moved one takes its place (as
                    // SQLite's OR REPLACE).
                    tx.execute("DELETE FROM embeddings WHERE person_id = $1 AND file_sha256 = $2 AND id <> $3", &[&person, &sha, &id])?;
                    tx.execute("UPDATE embeddings SET person_id = $2 WHERE id = $1", &[&id, &person])?;
                    changed(&mut tx, &["persons"], "move-face", &[id])?;
                    name.clone()
                }
                FaceTarget::Stranger => {
                    let Some(crop) = crop else { return Err(Fail::Gallery(GalleryError::NoCrop(id))) };
                    let label = new_label();
                    let stranger: i64 = tx
                        .query_one(
                            "INSERT INTO strangers (label, model, first_seen, last_seen, sightings, cameras) VALUES ($1, $2, $3, $3, 1, '') RETURNING id",
                            &[&label, &model, &created],
                        )?
                        .get(0);
                    tx.execute(
                        "INSERT INTO stranger_faces (stranger_id, vector, quality, crop, context, camera, seen_at) VALUES ($1, $2, $3, $4, NULL, '', $5)",
                        &[&stranger, &vector, &quality, &crop, &created],
                    )?;
                    tx.execute("DELETE FROM embeddings WHERE id = $1", &[&id])?;
                    changed(&mut tx, &["persons", "strangers"], "move-face", &[id])?;
                    label
                }
            };
            let left = count(&mut tx, "SELECT COUNT(*) FROM embeddings WHERE person_id = $1", from_id)?;
            if left == 0 {
                tx.execute("DELETE FROM persons WHERE id = $1", &[&from_id])?;
            }
            tx.commit()?;
            Ok(MovedFace { id, from, to: to_name, person_removed: left == 0 })
        })
    }

    fn versions(&self) -> Result<Versions, GalleryError> {
        self.with(|c| {
            let rows = c.query("SELECT name, value FROM counters", &[])?;
            let get = |n: &str| rows.iter().find(|r| r.get::<_, &str>(0) == n).map_or(0, |r| r.get::<_, i64>(1));
            Ok(Versions { persons: get("persons"), strangers: get("strangers"), seen: get("seen"), counted: true })
        })
    }

    fn strangers(&self) -> Result<Vec<StoredStranger>, GalleryError> {
        self.with(|c| {
            let rows = c.query(
                "SELECT id, label, first_seen, last_seen, sightings, cameras FROM strangers WHERE model = $1 ORDER BY last_seen DESC, id",
                &[&self.model],
            )?;
            let faces = c.query(
                "SELECT f.stranger_id, f.id, f.vector, f.quality, f.camera, f.seen_at FROM stranger_faces f
                 JOIN strangers s ON s.id = f.stranger_id WHERE s.model = $1 ORDER BY f.quality DESC, f.id",
                &[&self.model],
            )?;
            let mut by_id: std::collections::HashMap<i64, Vec<StrangerFace>> = std::collections::HashMap::new();
            for r in &faces {
                by_id.entry(r.get(0)).or_default().push(StrangerFace {
                    id: r.get(1),
                    vector: embedding_from_blob(r.get::<_, &[u8]>(2)),
                    quality: r.get::<_, f64>(3) as f32,
                    camera: r.get(4),
                    seen_at: r.get(5),
                });
            }
            Ok(rows
                .iter()
                .map(|r| {
                    let cameras: String = r.get(5);
                    StoredStranger {
                        label: r.get(1),
                        first_seen: r.get(2),
                        last_seen: r.get(3),
                        sightings: r.get::<_, i64>(4).max(0) as u64,
                        cameras: cameras.split(',').filter(|c| !c.is_empty()).map(String::from).collect(),
                        faces: by_id.remove(&r.get::<_, i64>(0)).unwrap_or_default(),
                    }
                })
                .collect())
        })
    }

    fn stranger_add(&mut self, label: &str, face: &NewStrangerFace) -> Result<(), GalleryError> {
        let model = self.model.clone();
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute(
                "INSERT INTO strangers (label, model, first_seen, last_seen, sightings, cameras) VALUES ($1, $2, $3, $3, 1, $4)
                 ON CONFLICT (label) DO NOTHING",
                &[&label, &model, &face.seen_at, &face.camera],
            )?;
            let Some(id) = stranger_id(&mut tx, label)? else { return Err(Fail::Gallery(GalleryError::UnknownStranger(label.into()))) };
            let face_id = insert_face(&mut tx, id, face)?;
            // Every other node adds it to its book: a stranger one camera met is the same stranger at the others.
            changed(&mut tx, &["seen"], "stranger", &[face_id])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn stranger_add_face(&mut self, label: &str, face: &NewStrangerFace, keep: usize) -> Result<(), GalleryError> {
        use crate::matcher::strangers::{place, Place};
        self.with(|c| {
            let mut tx = c.transaction()?;
            let Some(id) = tx.query_opt("SELECT id FROM strangers WHERE label = $1 FOR UPDATE", &[&label])?.map(|r| r.get::<_, i64>(0))
            else {
                return Ok(());
            };
            let kept: Vec<(i64, Embedding, f32)> = tx
                .query("SELECT id, vector, quality FROM stranger_faces WHERE stranger_id = $1 ORDER BY quality DESC, id", &[&id])?
                .iter()
                .map(|r| (r.get(0), Embedding::from_unit(embedding_from_blob(r.get::<_, &[u8]>(1))), r.get::<_, f64>(2) as f32))
                .collect();
            match place(kept.iter().map(|(_, e, q)| (e, *q)), &face.embedding, face.quality, keep) {
                Place::Skip => return Ok(()),
                Place::Replace(i) => {
                    tx.execute("DELETE FROM stranger_faces WHERE id = $1", &[&kept[i].0])?;
                }
                Place::Insert => {}
            }
            let face_id = insert_face(&mut tx, id, face)?;
            tx.execute(
                "DELETE FROM stranger_faces WHERE stranger_id = $1 AND id NOT IN
                 (SELECT id FROM stranger_faces WHERE stranger_id = $1 ORDER BY quality DESC, id LIMIT $2)",
                &[&id, &(keep.max(1) as i64)],
            )?;
            changed(&mut tx, &["seen"], "stranger-face", &[face_id])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn stranger_seen(&mut self, label: &str, camera: &str, at: i64) -> Result<(), GalleryError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let Some(row) = tx.query_opt("SELECT cameras FROM strangers WHERE label = $1 FOR UPDATE", &[&label])? else { return Ok(()) };
            let cameras: String = row.get(0);
            let mut list: Vec<&str> = cameras.split(',').filter(|c| !c.is_empty()).collect();
            if !list.contains(&camera) {
                list.push(camera);
            }
            tx.execute(
                "UPDATE strangers SET last_seen = GREATEST(last_seen, $2), sightings = sightings + 1, cameras = $3 WHERE label = $1",
                &[&label, &at, &list.join(",")],
            )?;
            tx.commit()?;
            Ok(())
        })
    }

    fn stranger_name(&mut self, label: &str, person: &str) -> Result<usize, GalleryError> {
        check_name(person)?;
        if is_label(person) {
            return Err(GalleryError::BadName(person.into()));
        }
        let (model, dim) = (self.model.clone(), self.dim as i32);
        self.with(|c| {
            let mut tx = c.transaction()?;
            let Some(id) = tx.query_opt("SELECT id FROM strangers WHERE label = $1 FOR UPDATE", &[&label])?.map(|r| r.get::<_, i64>(0)) else {
                return Err(Fail::Gallery(GalleryError::UnknownStranger(label.into())));
            };
            let person_id = person_id(&mut tx, person)?;
            let ids: Vec<i64> = tx
                .query(
                    "INSERT INTO embeddings (person_id, model, dim, vector, source_path, file_sha256, det_score, created_at, crop)
                     SELECT $1, $2, $3, vector, $4 || ':' || camera || ':' || seen_at::text, 'stranger-face:' || $4 || ':' || id::text, quality, $5, crop
                     FROM stranger_faces WHERE stranger_id = $6
                     ON CONFLICT (person_id, file_sha256) DO NOTHING RETURNING id",
                    &[&person_id, &model, &dim, &label, &now(), &id],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            tx.execute("DELETE FROM strangers WHERE id = $1", &[&id])?;
            changed(&mut tx, &["persons", "strangers"], "stranger-name", &ids)?;
            tx.commit()?;
            Ok(ids.len())
        })
    }

    fn stranger_merge(&mut self, into: &str, from: &str) -> Result<usize, GalleryError> {
        if into == from {
            return Err(GalleryError::SelfMerge(from.to_string()));
        }
        self.with(|c| {
            let mut tx = c.transaction()?;
            let a = stranger_id(&mut tx, into)?.ok_or_else(|| GalleryError::UnknownStranger(into.into()))?;
            let b = stranger_id(&mut tx, from)?.ok_or_else(|| GalleryError::UnknownStranger(from.into()))?;
            let rows = tx.query("SELECT id, cameras FROM strangers WHERE id = ANY($1) FOR UPDATE", &[&vec![a, b]])?;
            let mut cameras: Vec<String> = rows
                .iter()
                .flat_map(|r| r.get::<_, String>(1).split(',').filter(|c| !c.is_empty()).map(String::from).collect::<Vec<_>>())
                .collect();
            cameras.sort_unstable();
            cameras.dedup();
            tx.execute(
                "UPDATE strangers SET
                   first_seen = LEAST(first_seen, (SELECT first_seen FROM strangers WHERE id = $2)),
                   last_seen = GREATEST(last_seen, (SELECT last_seen FROM strangers WHERE id = $2)),
                   sightings = sightings + (SELECT sightings FROM strangers WHERE id = $2),
                   cameras = $3
                 WHERE id = $1",
                &[&a, &b, &cameras.join(",")],
            )?;
            let moved = tx.execute("UPDATE stranger_faces SET stranger_id = $1 WHERE stranger_id = $2", &[&a, &b])?;
            tx.execute("DELETE FROM strangers WHERE id = $1", &[&b])?;
            changed(&mut tx, &["strangers"], "stranger-merge", &[a, b])?;
            tx.commit()?;
            Ok(moved as usize)
        })
    }

    fn stranger_forget(&mut self, label: &str) -> Result<usize, GalleryError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let id = stranger_id(&mut tx, label)?.ok_or_else(|| GalleryError::UnknownStranger(label.into()))?;
            let faces = tx.execute("DELETE FROM stranger_faces WHERE stranger_id = $1", &[&id])?;
            tx.execute("DELETE FROM strangers WHERE id = $1", &[&id])?;
            changed(&mut tx, &["strangers"], "stranger-forget", &[id])?;
            tx.commit()?;
            Ok(faces as usize)
        })
    }

    fn strangers_prune(&mut self, before: i64, max: usize) -> Result<usize, GalleryError> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let old = tx.execute("DELETE FROM strangers WHERE last_seen < $1", &[&before])?;
            let over = tx.execute(
                "DELETE FROM strangers WHERE id NOT IN (SELECT id FROM strangers ORDER BY last_seen DESC, id DESC LIMIT $1)",
                &[&(max as i64)],
            )?;
            if old + over > 0 {
                changed(&mut tx, &["strangers"], "strangers-prune", &[])?;
            }
            tx.commit()?;
            Ok((old + over) as usize)
        })
    }

    fn stranger_face_image(&self, face: i64, context: bool) -> Result<Option<Vec<u8>>, GalleryError> {
        let q = if context { "SELECT context FROM stranger_faces WHERE id = $1" } else { "SELECT crop FROM stranger_faces WHERE id = $1" };
        self.with(|c| Ok(c.query_opt(q, &[&face])?.and_then(|r| r.get::<_, Option<Vec<u8>>>(0))))
    }

    fn dump(&self) -> Result<GalleryDump, GalleryError> {
        self.with(|c| {
            let mut tx = c.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).read_only(true).start()?;
            let mut persons: Vec<(i64, DumpPerson)> = tx
                .query("SELECT id, name, created_at FROM persons ORDER BY name", &[])?
                .iter()
                .map(|r| (r.get(0), DumpPerson { name: r.get(1), created_at: r.get(2), photos: Vec::new() }))
                .collect();
            let index: std::collections::HashMap<i64, usize> = persons.iter().enumerate().map(|(i, p)| (p.0, i)).collect();
            for r in tx.query(
                "SELECT person_id, vector, source_path, file_sha256, det_score, created_at, crop FROM embeddings WHERE model = $1 ORDER BY id",
                &[&self.model],
            )? {
                if let Some(&i) = index.get(&r.get::<_, i64>(0)) {
                    persons[i].1.photos.push(DumpPhoto {
                        vector: r.get(1),
                        source_path: r.get(2),
                        file_sha256: r.get(3),
                        det_score: r.get(4),
                        created_at: r.get(5),
                        crop: r.get(6),
                    });
                }
            }
            let mut strangers: Vec<(i64, DumpStranger)> = tx
                .query("SELECT id, label, first_seen, last_seen, sightings, cameras FROM strangers WHERE model = $1 ORDER BY label", &[&self.model])?
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        DumpStranger {
                            label: r.get(1),
                            first_seen: r.get(2),
                            last_seen: r.get(3),
                            sightings: r.get(4),
                            cameras: r.get(5),
                            faces: Vec::new(),
                        },
                    )
                })
                .collect();
            let index: std::collections::HashMap<i64, usize> = strangers.iter().enumerate().map(|(i, s)| (s.0, i)).collect();
            for r in tx.query("SELECT stranger_id, vector, quality, crop, context, camera, seen_at FROM stranger_faces ORDER BY id", &[])? {
                if let Some(&i) = index.get(&r.get::<_, i64>(0)) {
                    strangers[i].1.faces.push(DumpStrangerFace {
                        vector: r.get(1),
                        quality: r.get(2),
                        crop: r.get(3),
                        context: r.get(4),
                        camera: r.get(5),
                        seen_at: r.get(6),
                    });
                }
            }
            tx.commit()?;
            Ok(GalleryDump { persons: persons.into_iter().map(|p| p.1).collect(), strangers: strangers.into_iter().map(|s| s.1).collect() })
        })
    }

    fn load(&mut self, dump: &GalleryDump) -> Result<(), GalleryError> {
        let (model, dim, shown) = (self.model.clone(), self.dim as i32, self.target.shown.clone());
        self.with(|c| {
            let mut tx = c.transaction()?;
            tx.execute("LOCK TABLE persons, strangers IN EXCLUSIVE MODE", &[])?;
            let persons: i64 = tx.query_one("SELECT COUNT(*) FROM persons", &[])?.get(0);
            let strangers: i64 = tx.query_one("SELECT COUNT(*) FROM strangers", &[])?.get(0);
            if persons + strangers > 0 {
                return Err(Fail::Gallery(GalleryError::NotEmpty { path: shown.clone(), persons, strangers }));
            }
            for p in &dump.persons {
                let id: i64 = tx.query_one("INSERT INTO persons (name, created_at) VALUES ($1, $2) RETURNING id", &[&p.name, &p.created_at])?.get(0);
                for f in &p.photos {
                    tx.execute(
                        "INSERT INTO embeddings (person_id, model, dim, vector, source_path, file_sha256, det_score, created_at, crop)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[&id, &model, &dim, &f.vector, &f.source_path, &f.file_sha256, &f.det_score, &f.created_at, &f.crop],
                    )?;
                }
            }
            for s in &dump.strangers {
                let id: i64 = tx
                    .query_one(
                        "INSERT INTO strangers (label, model, first_seen, last_seen, sightings, cameras) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                        &[&s.label, &model, &s.first_seen, &s.last_seen, &s.sightings, &s.cameras],
                    )?
                    .get(0);
                for f in &s.faces {
                    tx.execute(
                        "INSERT INTO stranger_faces (stranger_id, vector, quality, crop, context, camera, seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[&id, &f.vector, &f.quality, &f.crop, &f.context, &f.camera, &f.seen_at],
                    )?;
                }
            }
            changed(&mut tx, &["persons", "strangers"], "copy", &[])?;
            tx.commit()?;
            Ok(())
        })
    }
}
