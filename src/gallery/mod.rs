//! Gallery: the enrolled people. A store keeps them ([`GalleryStore`]: a SQLite file for one node, [`SqliteStore`];
//! a PostgreSQL server shared by several, [`PgStore`]); [`Gallery`] holds every embedding in memory over it, searched through a [`SearchView`] (built on the
//! first search after a change); [`LiveGallery`] follows its changes for the daemon's cameras.

pub mod check;
mod config;
pub mod copy;
mod pg;
mod sqlite;
mod store;
pub mod strangers;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

use crate::base::{Candidate, Embedding};
use crate::matcher::SearchView;
pub use config::{is_postgres_url, redact_url, DbUrl, GalleryConfig};
pub use pg::{PgStore, PgTarget, CHANNEL, MIGRATIONS, PASSWORD_ENV};
pub use sqlite::{copy_gallery, count_embeddings, make_private, SqliteStore};
pub use store::{GalleryStore, StoredEmbedding};
pub use watch::{GalleryFigures, GallerySize, LiveGallery, GALLERY_POLL};

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
    /// PostgreSQL refused or failed a statement.
    #[error("gallery {server}: {source}")]
    Postgres {
        /// The server (no password).
        server: String,
        /// PostgreSQL's error.
        source: postgres::Error,
    },
    /// The PostgreSQL server cannot be reached: nothing was changed.
    #[error("gallery {server} is unreachable ({message}): nothing was changed; a running daemon goes on matching from memory, and changes can be made once the server is back")]
    Unavailable {
        /// The server (no password).
        server: String,
        /// Why.
        message: String,
    },
    /// The connection to the PostgreSQL server was lost while a change was being made: it may or may not have been
    /// committed.
    #[error("the connection to gallery {server} was lost during the change ({message}): it may or may not have been made; look (`facewatch gallery list`) before trying again")]
    ConnectionLost {
        /// The server (no password).
        server: String,
        /// Why.
        message: String,
    },
    /// The PostgreSQL gallery is configured wrongly (URL, password file, CA file).
    #[error("gallery {server}: {message}")]
    Config {
        /// The server (no password).
        server: String,
        /// What is wrong.
        message: String,
    },
    /// A copy's destination already holds a gallery.
    #[error("gallery {path} is not empty ({persons} person(s), {strangers} stranger(s)): copy into a new gallery, or remove those first")]
    NotEmpty {
        /// The destination.
        path: String,
        /// Persons there.
        persons: i64,
        /// Strangers there.
        strangers: i64,
    },
    /// A copy read back differs from what was written.
    #[error("the copy in {path} differs from the gallery it was made from ({detail})")]
    CopyDiffers {
        /// The destination.
        path: String,
        /// What differs.
        detail: String,
    },
    /// The server's schema was made by a newer facewatch.
    #[error("the gallery's schema is version {found}, newer than this facewatch knows ({known}): upgrade facewatch on this node")]
    NewerSchema {
        /// The server's schema version.
        found: i32,
        /// The newest this binary knows.
        known: i32,
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
    #[error("invalid person name `{0}`: names must be non-empty, without control characters, at most 200 bytes, not `.` or `..`, not `unknown` (the name events give strangers) and not a stranger's id (`stranger-…`)")]
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
    /// No stranger has that label.
    #[error("no stranger `{0}` in the gallery (`facewatch strangers list` lists them)")]
    UnknownStranger(String),
    /// A stranger merged into themselves.
    #[error("cannot merge `{0}` into itself: name two different strangers")]
    SelfMerge(String),
    /// A photo enrolled from a file has no crop to make a stranger of.
    #[error("photo {0} was enrolled from a file and kept no face crop: it cannot become a stranger; remove it instead (`facewatch gallery remove-photo {0}`)")]
    NoCrop(i64),
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
        match self {
            GalleryError::Config { .. } => crate::exit::CONFIG,
            _ => crate::exit::GALLERY,
        }
    }
}

/// The store `[gallery]` names, for recognizer `model` producing `dim`-d embeddings: the PostgreSQL server of
/// `gallery.url`, else the SQLite file of `gallery.path` (with `create`, made when missing; without, a missing file
/// is an error naming it, and one this process may not change is read only).
pub fn open_store(cfg: &GalleryConfig, model: &str, dim: usize, create: bool) -> Result<Box<dyn GalleryStore>, GalleryError> {
    open_store_with(cfg, model, dim, create, true)
}

/// [`open_store`]; without `ambient`, a PostgreSQL server is sent only the password its URL holds
/// ([`PgTarget::from_config_with`]).
pub fn open_store_with(
    cfg: &GalleryConfig,
    model: &str,
    dim: usize,
    create: bool,
    ambient: bool,
) -> Result<Box<dyn GalleryStore>, GalleryError> {
    if cfg.url.is_set() {
        return Ok(Box::new(PgStore::open(PgTarget::from_config_with(cfg, ambient)?, model, dim)?));
    }
    let path = crate::paths::resolve_path(&cfg.path);
    Ok(match create {
        true => Box::new(SqliteStore::open(&path, model, dim)?),
        false => Box::new(SqliteStore::open_existing(&path, model, dim)?),
    })
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
    /// The aligned 112×112 crop, JPEG, kept with the photo (shown by the web page; lets a wrongly named face go
    /// back among the strangers).
    pub crop: Option<Vec<u8>>,
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

/// The gallery: a store plus every embedding in memory, searched through a view built on the first search after
/// a change, not at each change: enrolling a folder of people is one transaction per person, and rebuilding after
/// each would be quadratic (a large gallery's codes take about 2 s per million embeddings).
pub struct Gallery {
    store: Box<dyn GalleryStore>,
    persons: Vec<String>,
    entries: Vec<Entry>,
    /// The search view of the entries, built on the first search after a change.
    view: OnceLock<SearchView>,
    exact_search_max: usize,
    /// The store's version when the entries were last read: it changes when anyone commits.
    seen_version: i64,
    /// The change counters when last looked at.
    seen_versions: strangers::Versions,
}

/// What changed since a gallery last looked ([`Gallery::poll`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// Persons or photos (read again).
    pub persons: bool,
    /// Strangers, as a person edited them (named, merged, forgotten).
    pub strangers: bool,
    /// New strangers another node met (a shared gallery).
    pub seen: bool,
}

/// Checks a person name.
pub fn check_name(name: &str) -> Result<(), GalleryError> {
    // `unknown` is what events call a face that matches nobody.
    if name.trim().is_empty()
        || name.len() > 200
        || name.chars().any(char::is_control)
        || name.trim().eq_ignore_ascii_case(crate::base::UNKNOWN)
        || matches!(name.trim(), "." | "..")
        || strangers::is_label(name.trim())
    {
        Err(GalleryError::BadName(name.into()))
    } else {
        Ok(())
    }
}

impl Gallery {
    /// Opens (creating when absent) the SQLite gallery at `path` for recognizer `model` producing `dim`-d
    /// embeddings. `exact_search_max`: galleries up to this many embeddings are searched exactly, larger ones by
    /// sign codes ([`crate::matcher`]).
    pub fn open(path: &Path, model: &str, dim: usize, exact_search_max: usize) -> Result<Self, GalleryError> {
        Self::over(Box::new(SqliteStore::open(path, model, dim)?), exact_search_max)
    }

    /// Opens an existing SQLite gallery for reading and matching (identify, gallery list, check): a missing file
    /// is an error naming the path, never silently created empty; one this process may not change is read only.
    pub fn open_existing(path: &Path, model: &str, dim: usize, exact_search_max: usize) -> Result<Self, GalleryError> {
        Self::over(Box::new(SqliteStore::open_existing(path, model, dim)?), exact_search_max)
    }

    /// A gallery that lives in memory only (evaluation runs): nothing touches the disk.
    pub fn in_memory(model: &str, dim: usize, exact_search_max: usize) -> Result<Self, GalleryError> {
        Self::over(Box::new(SqliteStore::in_memory(model, dim)?), exact_search_max)
    }

    /// The gallery kept in `store`, read now.
    pub fn over(store: Box<dyn GalleryStore>, exact_search_max: usize) -> Result<Self, GalleryError> {
        let mut g = Self {
            store,
            persons: Vec::new(),
            entries: Vec::new(),
            view: OnceLock::new(),
            exact_search_max,
            seen_version: 0,
            seen_versions: strangers::Versions::default(),
        };
        g.seen_version = g.store.version()?;
        g.seen_versions = g.store.versions()?;
        g.reload()?;
        Ok(g)
    }

    /// Re-reads every embedding; the view is rebuilt on the next search.
    fn reload(&mut self) -> Result<(), GalleryError> {
        let rows = self.store.embeddings()?;
        let dim = self.store.dim();
        let mut persons: Vec<String> = Vec::new();
        let mut by_name: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut entries = Vec::with_capacity(rows.len());
        for row in rows {
            if row.vector.len() != dim {
                return Err(GalleryError::Damaged {
                    path: self.store.location().to_path_buf(),
                    id: row.id,
                    got: row.vector.len(),
                    want: dim,
                });
            }
            let person = *by_name.entry(row.name.clone()).or_insert_with(|| {
                persons.push(row.name);
                persons.len() - 1
            });
            entries.push(Entry { person, embedding: Embedding::from_unit(row.vector), source_path: row.source_path });
        }
        self.persons = persons;
        self.entries = entries;
        self.view = OnceLock::new();
        Ok(())
    }

    /// Waits up to `timeout` for a change another process or node announces ([`GalleryStore::wait_change`]).
    pub fn wait_change(&mut self, timeout: std::time::Duration) -> bool {
        self.store.wait_change(timeout)
    }

    /// Who already has the photo with content hash `file_sha256` (for this gallery's recognizer).
    pub fn owners_of(&self, file_sha256: &str) -> Result<Vec<String>, GalleryError> {
        self.store.owners_of(file_sha256)
    }

    /// Embeddings stored now, as the store says (other processes' enrolments included).
    pub fn stored(&self) -> Result<usize, GalleryError> {
        self.store.stored()
    }

    /// Re-reads the gallery when another process (`facewatch enroll`, `gallery remove`) changed it since it was
    /// last read; returns whether it did. Cheap when nothing changed (one pragma), so the daemon polls it.
    pub fn reload_if_changed(&mut self) -> Result<bool, GalleryError> {
        Ok(self.poll()?.persons)
    }

    /// What changed since the last look (cheap when nothing did: one pragma); persons are read again when they
    /// changed. The daemon's own stranger writes change nothing here; a person's edits do.
    pub fn poll(&mut self) -> Result<Changes, GalleryError> {
        let v = self.store.version()?;
        if v == self.seen_version {
            return Ok(Changes::default());
        }
        let versions = self.store.versions()?;
        let changes = Changes {
            persons: !versions.counted || versions.persons != self.seen_versions.persons,
            strangers: versions.strangers != self.seen_versions.strangers,
            seen: versions.seen != self.seen_versions.seen,
        };
        if changes.persons {
            self.reload()?;
        }
        self.seen_version = v;
        self.seen_versions = versions;
        Ok(changes)
    }

    /// Takes the strangers for changed at the next [`Gallery::poll`] (reading them failed: try again then).
    pub fn look_again_at_strangers(&mut self) {
        self.seen_version = i64::MIN;
        self.seen_versions.strangers = i64::MIN;
        self.seen_versions.seen = i64::MIN;
    }

    /// The store, for what is not mirrored in memory (strangers, photo crops).
    pub fn store(&self) -> &dyn GalleryStore {
        self.store.as_ref()
    }

    /// The store, writable, for what is not mirrored in memory (the daemon's stranger writes).
    pub fn store_mut(&mut self) -> &mut dyn GalleryStore {
        self.store.as_mut()
    }

    /// Names stranger `label` `person`; their faces become the person's photos.
    pub fn stranger_name(&mut self, label: &str, person: &str) -> Result<usize, GalleryError> {
        let n = self.store.stranger_name(label, person)?;
        self.reload()?;
        Ok(n)
    }

    /// Merges stranger `from` into `into`.
    pub fn stranger_merge(&mut self, into: &str, from: &str) -> Result<usize, GalleryError> {
        self.store.stranger_merge(into, from)
    }

    /// Forgets stranger `label`.
    pub fn stranger_forget(&mut self, label: &str) -> Result<usize, GalleryError> {
        self.store.stranger_forget(label)
    }

    /// Moves photo `id` to where it belongs ([`strangers::FaceTarget`]).
    pub fn move_face(&mut self, id: i64, to: &strangers::FaceTarget) -> Result<strangers::MovedFace, GalleryError> {
        let moved = self.store.move_face(id, to)?;
        self.reload()?;
        Ok(moved)
    }

    /// Every stranger, in a book for matching.
    pub fn stranger_book(&self) -> Result<crate::matcher::strangers::StrangerBook, GalleryError> {
        let strangers = self.store.strangers()?;
        Ok(crate::matcher::strangers::StrangerBook::from_faces(strangers.into_iter().map(|s| {
            let faces = s.faces.into_iter().map(|f| (Embedding::from_unit(f.vector), f.quality)).collect();
            (s.label, faces)
        })))
    }

    /// Where the gallery is kept (its file).
    pub fn path(&self) -> &Path {
        self.store.location()
    }

    /// Recognizer that made the embeddings.
    pub fn model(&self) -> &str {
        self.store.model()
    }

    /// Number of embeddings.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nobody is enrolled.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// "exact" or "codes": how searches run at this size.
    pub fn search_kind(&self) -> &'static str {
        crate::matcher::kind_for(self.entries.len(), self.exact_search_max)
    }

    /// Adds embeddings for `name` (creating the person) in one transaction; photos already enrolled for this
    /// person (same file hash) are skipped. Returns how many were added.
    pub fn enroll(&mut self, name: &str, items: &[NewEmbedding]) -> Result<usize, GalleryError> {
        let added = self.store.enroll(name, items)?;
        // Committed: mirror exactly the inserted rows in memory instead of re-reading the whole gallery.
        if !added.is_empty() {
            let person = match self.persons.iter().position(|p| p == name) {
                Some(i) => i,
                None => {
                    self.persons.push(name.to_string());
                    self.persons.len() - 1
                }
            };
            self.entries.extend(added.iter().map(|&(i, _)| Entry {
                person,
                embedding: items[i].embedding.clone(),
                source_path: items[i].source_path.clone(),
            }));
            self.view = OnceLock::new();
        }
        Ok(added.len())
    }

    /// Every person, by name.
    pub fn persons(&self) -> Result<Vec<PersonSummary>, GalleryError> {
        self.store.persons()
    }

    /// A person's photos (one embedding each), oldest first.
    pub fn photos(&self, name: &str) -> Result<Vec<PhotoSummary>, GalleryError> {
        self.store.photos(name)
    }

    /// Removes one photo (its embedding) by id; a person left with no photo is removed too. Returns whose it was
    /// and whether the person went with it.
    pub fn remove_photo(&mut self, id: i64) -> Result<RemovedPhoto, GalleryError> {
        let removed = self.store.remove_photo(id)?;
        self.reload()?;
        Ok(removed)
    }

    /// Removes a person and their embeddings.
    pub fn remove(&mut self, name: &str) -> Result<usize, GalleryError> {
        let n = self.store.remove(name)?;
        self.reload()?;
        Ok(n)
    }

    /// Renames a person.
    pub fn rename(&mut self, old: &str, new: &str) -> Result<(), GalleryError> {
        self.store.rename(old, new)?;
        self.reload()
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
        self.view.get_or_init(|| self.search_view()).search(query, k)
    }

    /// A read-only copy of what searching needs, its index built now: what the daemon searches while this
    /// gallery reads the next change (a million embeddings' codes take about 2 s).
    pub fn search_view(&self) -> SearchView {
        let vectors: Vec<&[f32]> = self.entries.iter().map(|e| e.embedding.as_slice()).collect();
        let owners = self.entries.iter().map(|e| e.person).collect();
        SearchView::new(self.persons.clone(), owners, &vectors, self.exact_search_max)
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
        NewEmbedding { embedding: e, source_path: file.into(), file_sha256: file.into(), det_score: 0.9, crop: None }
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
    fn names_a_page_or_an_event_would_misread_are_refused() {
        for bad in ["", "  ", "unknown", "Unknown", ".", "..", "stranger-3fa2c1", "a\u{7}b"] {
            assert!(matches!(check_name(bad), Err(GalleryError::BadName(_))), "`{bad}` was accepted");
        }
        for good in ["Ann", "Ann B", "lin-manuel-miranda", "...", "stranger", "strangers-club", "Zoë"] {
            assert!(check_name(good).is_ok(), "`{good}` was refused");
        }
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
    fn codes_and_exact_agree_on_the_nearest_person() {
        let dir = tempfile::tempdir().expect("tempdir");
        let items: Vec<NewEmbedding> = (0..300).map(|i| item(unit(i + 10, 32), &format!("f{i}"))).collect();
        let mut exact = Gallery::open(&dir.path().join("e.db"), "m", 32, 10_000).expect("open");
        let mut coded = Gallery::open(&dir.path().join("h.db"), "m", 32, 10).expect("open");
        for (i, chunk) in items.chunks(3).enumerate() {
            exact.enroll(&format!("p{i}"), chunk).expect("enroll");
            coded.enroll(&format!("p{i}"), chunk).expect("enroll");
        }
        assert_eq!(exact.search_kind(), "exact");
        assert_eq!(coded.search_kind(), "codes");
        for probe in [15u32, 120, 301] {
            let q = unit(probe, 32);
            assert_eq!(exact.search(&q, 1)[0].name, coded.search(&q, 1)[0].name, "probe {probe}");
        }
    }
}
