//! Strangers in the store: faces that matched no enrolled person, kept under a stable `stranger-…` label with
//! their best few faces (embedding, aligned crop, a picture of the scene), when and where they were seen; and what
//! a person does with them: name one (its faces become that person's photos, crops kept), merge two, forget one,
//! or take a face back from a person it was wrongly given to.
//!
//! The daemon adds strangers and faces as it sees them; those writes leave the change counters alone. Every edit a
//! person makes (naming, merging, forgetting, moving a face, enrolling) bumps `strangers_version` or
//! `persons_version`, which is how a running daemon knows to read them again ([`super::LiveGallery`]).

use rusqlite::{params, OptionalExtension, Transaction};
use serde::Serialize;

use super::sqlite::{blob_from_embedding, embedding_from_blob, now, SqliteStore};
use super::{check_name, GalleryError};
use crate::base::Embedding;

/// The tables and counters of schema 2 (applied to older galleries on open).
pub(super) const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS strangers (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    sightings INTEGER NOT NULL DEFAULT 1,
    cameras TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS stranger_faces (
    id INTEGER PRIMARY KEY,
    stranger_id INTEGER NOT NULL REFERENCES strangers(id) ON DELETE CASCADE,
    vector BLOB NOT NULL,
    quality REAL NOT NULL,
    crop BLOB NOT NULL,
    context BLOB,
    camera TEXT NOT NULL,
    seen_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS stranger_faces_by_stranger ON stranger_faces (stranger_id);
INSERT OR IGNORE INTO meta (key, value) VALUES ('persons_version', '0');
INSERT OR IGNORE INTO meta (key, value) VALUES ('strangers_version', '0');
";

/// A stranger as stored (faces without their pictures).
#[derive(Debug, Clone, Serialize)]
pub struct StoredStranger {
    /// `stranger-…`.
    pub label: String,
    /// First sighting, seconds since the Unix epoch.
    pub first_seen: i64,
    /// Last sighting.
    pub last_seen: i64,
    /// Tracks that were this stranger.
    pub sightings: u64,
    /// Cameras that saw them.
    pub cameras: Vec<String>,
    /// Their best faces, best first.
    pub faces: Vec<StrangerFace>,
}

/// One stored face of a stranger.
#[derive(Debug, Clone, Serialize)]
pub struct StrangerFace {
    /// Its id (its pictures are served by it).
    pub id: i64,
    /// The embedding.
    #[serde(skip)]
    pub vector: Vec<f32>,
    /// Face quality, 0..1.
    pub quality: f32,
    /// The camera that saw it.
    pub camera: String,
    /// When.
    pub seen_at: i64,
}

/// A face to keep for a stranger.
#[derive(Debug, Clone)]
pub struct NewStrangerFace {
    /// The embedding.
    pub embedding: Embedding,
    /// Face quality, 0..1.
    pub quality: f32,
    /// The aligned 112×112 crop, JPEG.
    pub crop: Vec<u8>,
    /// The face with the scene around it, JPEG.
    pub context: Option<Vec<u8>>,
    /// The camera.
    pub camera: String,
    /// When, seconds since the Unix epoch.
    pub seen_at: i64,
}

/// Where a face goes when it was given to the wrong person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaceTarget {
    /// To this person (created when new).
    Person(String),
    /// Back among the strangers, as a stranger of its own.
    Stranger,
}

/// What moving a face did.
#[derive(Debug, Clone, Serialize)]
pub struct MovedFace {
    /// The face (gallery photo id).
    pub id: i64,
    /// Whose it was.
    pub from: String,
    /// Whose it is now (a person, or a new stranger's label).
    pub to: String,
    /// The person it left has no photo left and was removed.
    pub person_removed: bool,
}

/// The change counters: a running daemon reads persons or strangers again when theirs moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Versions {
    /// Persons and their photos.
    pub persons: i64,
    /// Strangers, as people edit them.
    pub strangers: i64,
    /// Strangers as the daemons meet them (a shared gallery only: another node's new strangers; a SQLite gallery
    /// keeps no such counter).
    pub seen: i64,
    /// Whether the gallery keeps counters at all (a read-only gallery of schema 1 does not: any change is then
    /// taken for a change of persons).
    pub counted: bool,
}

/// A fresh stranger label: `stranger-` and six hex digits.
pub fn new_label() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.write_u32(std::process::id());
    format!("stranger-{:06x}", h.finish() & 0xff_ffff)
}

/// Whether `label` is a stranger label.
pub fn is_label(label: &str) -> bool {
    label.strip_prefix("stranger-").is_some_and(|h| !h.is_empty() && h.len() <= 16 && h.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn bump(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<()> {
    tx.execute("UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = ?1", [key]).map(drop)
}

impl SqliteStore {
    /// Whether the strangers' tables are there (a read-only gallery of schema 1 has none).
    fn has_strangers(&self) -> bool {
        self.conn()
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'strangers'", [], |_| Ok(()))
            .optional()
            .ok()
            .flatten()
            .is_some()
    }

    /// The change counters (zero for a gallery of schema 1).
    pub fn versions(&self) -> Result<Versions, GalleryError> {
        let read = |key: &str| -> Result<Option<i64>, GalleryError> {
            let v: Option<String> =
                self.conn().query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(|e| self.sql(e))?;
            Ok(v.and_then(|v| v.parse().ok()))
        };
        let (persons, strangers) = (read("persons_version")?, read("strangers_version")?);
        Ok(Versions { persons: persons.unwrap_or(0), strangers: strangers.unwrap_or(0), seen: 0, counted: persons.is_some() })
    }

    /// Every stranger of this gallery's recognizer with their faces, most recently seen first.
    pub fn strangers(&self) -> Result<Vec<StoredStranger>, GalleryError> {
        if !self.has_strangers() {
            return Ok(Vec::new());
        }
        let sql = |e| self.sql(e);
        let mut stmt = self
            .conn()
            .prepare(
                "SELECT id, label, first_seen, last_seen, sightings, cameras FROM strangers WHERE model = ?1 ORDER BY last_seen DESC, id",
            )
            .map_err(sql)?;
        let rows: Vec<(i64, StoredStranger)> = stmt
            .query_map([self.model_name()], |r| {
                let cameras: String = r.get(5)?;
                Ok((
                    r.get(0)?,
                    StoredStranger {
                        label: r.get(1)?,
                        first_seen: r.get(2)?,
                        last_seen: r.get(3)?,
                        sightings: r.get::<_, i64>(4)?.max(0) as u64,
                        cameras: cameras.split(',').filter(|c| !c.is_empty()).map(String::from).collect(),
                        faces: Vec::new(),
                    },
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(sql)?;
        drop(stmt);
        let mut faces = self
            .conn()
            .prepare("SELECT id, vector, quality, camera, seen_at FROM stranger_faces WHERE stranger_id = ?1 ORDER BY quality DESC, id")
            .map_err(sql)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, mut s) in rows {
            s.faces = faces
                .query_map([id], |r| {
                    Ok(StrangerFace {
                        id: r.get(0)?,
                        vector: embedding_from_blob(&r.get::<_, Vec<u8>>(1)?),
                        quality: r.get::<_, f64>(2)? as f32,
                        camera: r.get(3)?,
                        seen_at: r.get(4)?,
                    })
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(sql)?;
            out.push(s);
        }
        Ok(out)
    }

    fn stranger_id(tx: &Transaction<'_>, label: &str) -> rusqlite::Result<Option<i64>> {
        tx.query_row("SELECT id FROM strangers WHERE label = ?1", [label], |r| r.get(0)).optional()
    }

    fn insert_face(tx: &Transaction<'_>, stranger: i64, f: &NewStrangerFace) -> rusqlite::Result<()> {
        tx.execute(
            "INSERT INTO stranger_faces (stranger_id, vector, quality, crop, context, camera, seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![stranger, blob_from_embedding(&f.embedding), f64::from(f.quality), f.crop, f.context, f.camera, f.seen_at],
        )
        .map(drop)
    }

    /// A new stranger `label` with its first face (the daemon's write: no counter moves).
    pub fn stranger_add(&mut self, label: &str, face: &NewStrangerFace) -> Result<(), GalleryError> {
        let path = self.path().to_path_buf();
        let model = self.model_name().to_string();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        tx.execute(
            "INSERT OR IGNORE INTO strangers (label, model, first_seen, last_seen, sightings, cameras) VALUES (?1, ?2, ?3, ?3, 1, ?4)",
            params![label, model, face.seen_at, face.camera],
        )
        .map_err(sql)?;
        let id = Self::stranger_id(&tx, label).map_err(sql)?.ok_or_else(|| GalleryError::UnknownStranger(label.into()))?;
        Self::insert_face(&tx, id, face).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// One more face of stranger `label`, keeping their `keep` best different views (the daemon's write, placed
    /// as the daemon's book places it: [`crate::matcher::strangers::place`]). A stranger that is gone (named or
    /// forgotten meanwhile) takes nothing.
    pub fn stranger_add_face(&mut self, label: &str, face: &NewStrangerFace, keep: usize) -> Result<(), GalleryError> {
        use crate::matcher::strangers::{place, Place};
        let path = self.path().to_path_buf();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        let Some(id) = Self::stranger_id(&tx, label).map_err(sql)? else { return Ok(()) };
        let kept: Vec<(i64, Embedding, f32)> = {
            let mut stmt = tx
                .prepare("SELECT id, vector, quality FROM stranger_faces WHERE stranger_id = ?1 ORDER BY quality DESC, id")
                .map_err(sql)?;
            let rows = stmt.query_map([id], |r| {
                Ok((r.get::<_, i64>(0)?, Embedding::from_unit(embedding_from_blob(&r.get::<_, Vec<u8>>(1)?)), r.get::<_, f64>(2)? as f32))
            });
            rows.and_then(Iterator::collect).map_err(sql)?
        };
        match place(kept.iter().map(|(_, e, q)| (e, *q)), &face.embedding, face.quality, keep) {
            Place::Skip => return Ok(()),
            Place::Replace(i) => {
                tx.execute("DELETE FROM stranger_faces WHERE id = ?1", [kept[i].0]).map_err(sql)?;
            }
            Place::Insert => {}
        }
        Self::insert_face(&tx, id, face).map_err(sql)?;
        tx.execute(
            "DELETE FROM stranger_faces WHERE stranger_id = ?1 AND id NOT IN
             (SELECT id FROM stranger_faces WHERE stranger_id = ?1 ORDER BY quality DESC, id LIMIT ?2)",
            params![id, keep.max(1) as i64],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Stranger `label` seen again by `camera` at `at` (a new track): one more sighting (the daemon's write).
    pub fn stranger_seen(&mut self, label: &str, camera: &str, at: i64) -> Result<(), GalleryError> {
        let path = self.path().to_path_buf();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        let cameras: Option<String> =
            tx.query_row("SELECT cameras FROM strangers WHERE label = ?1", [label], |r| r.get(0)).optional().map_err(sql)?;
        let Some(cameras) = cameras else { return Ok(()) };
        let mut list: Vec<&str> = cameras.split(',').filter(|c| !c.is_empty()).collect();
        if !list.contains(&camera) {
            list.push(camera);
        }
        tx.execute(
            "UPDATE strangers SET last_seen = MAX(last_seen, ?2), sightings = sightings + 1, cameras = ?3 WHERE label = ?1",
            params![label, at, list.join(",")],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Names stranger `label` `person` (new, or one already enrolled): their faces become the person's photos,
    /// crops kept, and the stranger is gone; one transaction. Returns how many faces moved.
    pub fn stranger_name(&mut self, label: &str, person: &str) -> Result<usize, GalleryError> {
        check_name(person)?;
        if is_label(person) {
            return Err(GalleryError::BadName(person.into()));
        }
        let (path, model, dim) = (self.path().to_path_buf(), self.model_name().to_string(), self.dim_of());
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        let id = Self::stranger_id(&tx, label).map_err(sql)?.ok_or_else(|| GalleryError::UnknownStranger(label.into()))?;
        tx.execute("INSERT OR IGNORE INTO persons (name, created_at) VALUES (?1, ?2)", params![person, now()]).map_err(sql)?;
        let person_id: i64 = tx.query_row("SELECT id FROM persons WHERE name = ?1", [person], |r| r.get(0)).map_err(sql)?;
        let moved = tx
            .execute(
                "INSERT OR IGNORE INTO embeddings (person_id, model, dim, vector, source_path, file_sha256, det_score, created_at, crop)
                 SELECT ?1, ?2, ?3, vector, ?4 || ':' || camera || ':' || seen_at, 'stranger-face:' || ?4 || ':' || id, quality, ?5, crop
                 FROM stranger_faces WHERE stranger_id = ?6",
                params![person_id, model, dim as i64, label, now(), id],
            )
            .map_err(sql)?;
        tx.execute("DELETE FROM strangers WHERE id = ?1", [id]).map_err(sql)?;
        bump(&tx, "persons_version").and_then(|()| bump(&tx, "strangers_version")).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(moved)
    }

    /// Merges stranger `from` into `into` (the same person seen twice): faces, sightings, cameras and times go to
    /// `into`, `from` is gone. Returns how many faces moved.
    pub fn stranger_merge(&mut self, into: &str, from: &str) -> Result<usize, GalleryError> {
        if into == from {
            return Err(GalleryError::SelfMerge(from.to_string()));
        }
        let path = self.path().to_path_buf();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        let a = Self::stranger_id(&tx, into).map_err(sql)?.ok_or_else(|| GalleryError::UnknownStranger(into.into()))?;
        let b = Self::stranger_id(&tx, from).map_err(sql)?.ok_or_else(|| GalleryError::UnknownStranger(from.into()))?;
        let (cams_a, cams_b): (String, String) = tx
            .query_row("SELECT (SELECT cameras FROM strangers WHERE id = ?1), (SELECT cameras FROM strangers WHERE id = ?2)", [a, b], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(sql)?;
        let mut cameras: Vec<&str> = cams_a.split(',').chain(cams_b.split(',')).filter(|c| !c.is_empty()).collect();
        cameras.sort_unstable();
        cameras.dedup();
        tx.execute(
            "UPDATE strangers SET
               first_seen = MIN(first_seen, (SELECT first_seen FROM strangers WHERE id = ?2)),
               last_seen = MAX(last_seen, (SELECT last_seen FROM strangers WHERE id = ?2)),
               sightings = sightings + (SELECT sightings FROM strangers WHERE id = ?2),
               cameras = ?3
             WHERE id = ?1",
            params![a, b, cameras.join(",")],
        )
        .map_err(sql)?;
        let moved = tx.execute("UPDATE stranger_faces SET stranger_id = ?1 WHERE stranger_id = ?2", [a, b]).map_err(sql)?;
        tx.execute("DELETE FROM strangers WHERE id = ?1", [b]).map_err(sql)?;
        bump(&tx, "strangers_version").map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(moved)
    }

    /// Forgets stranger `label` and their faces. Returns how many faces went.
    pub fn stranger_forget(&mut self, label: &str) -> Result<usize, GalleryError> {
        let path = self.path().to_path_buf();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        let id = Self::stranger_id(&tx, label).map_err(sql)?.ok_or_else(|| GalleryError::UnknownStranger(label.into()))?;
        let faces = tx.execute("DELETE FROM stranger_faces WHERE stranger_id = ?1", [id]).map_err(sql)?;
        tx.execute("DELETE FROM strangers WHERE id = ?1", [id]).map_err(sql)?;
        bump(&tx, "strangers_version").map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(faces)
    }

    /// Forgets strangers last seen before `before` (seconds since the epoch), then the least recently seen beyond
    /// `max` (the daemon's retention: no counter moves). Returns how many went.
    pub fn strangers_prune(&mut self, before: i64, max: usize) -> Result<usize, GalleryError> {
        if !self.has_strangers() {
            return Ok(0);
        }
        let path = self.path().to_path_buf();
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        let old = tx.execute("DELETE FROM strangers WHERE last_seen < ?1", [before]).map_err(sql)?;
        let over = tx
            .execute(
                "DELETE FROM strangers WHERE id NOT IN (SELECT id FROM strangers ORDER BY last_seen DESC, id DESC LIMIT ?1)",
                [max as i64],
            )
            .map_err(sql)?;
        tx.execute("DELETE FROM stranger_faces WHERE stranger_id NOT IN (SELECT id FROM strangers)", []).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(old + over)
    }

    /// A stranger face's picture: its aligned crop, or with `context` the scene around it.
    pub fn stranger_face_image(&self, face: i64, context: bool) -> Result<Option<Vec<u8>>, GalleryError> {
        if !self.has_strangers() {
            return Ok(None);
        }
        let column = if context { "context" } else { "crop" };
        let q = format!("SELECT {column} FROM stranger_faces WHERE id = ?1");
        let got: Option<Option<Vec<u8>>> = self.conn().query_row(&q, [face], |r| r.get(0)).optional().map_err(|e| self.sql(e))?;
        Ok(got.flatten())
    }

    /// The aligned crop kept with a gallery photo (photos named from strangers, or enrolled since crops are kept).
    pub fn photo_crop(&self, id: i64) -> Result<Option<Vec<u8>>, GalleryError> {
        let got: Option<Option<Vec<u8>>> =
            self.conn().query_row("SELECT crop FROM embeddings WHERE id = ?1", [id], |r| r.get(0)).optional().map_err(|e| self.sql(e))?;
        Ok(got.flatten())
    }

    /// Moves gallery photo `id` to where it belongs: to another person, or back among the strangers (as a new
    /// stranger, which needs the photo's crop: a photo enrolled from a file is removed instead). Its evidence
    /// leaves the person it was wrongly given to; a person left without a photo is removed.
    pub fn move_face(&mut self, id: i64, to: &FaceTarget) -> Result<MovedFace, GalleryError> {
        if let FaceTarget::Person(name) = to {
            check_name(name)?;
            if is_label(name) {
                return Err(GalleryError::BadName(name.clone()));
            }
        }
        let (path, model) = (self.path().to_path_buf(), self.model_name().to_string());
        let sql = |source| GalleryError::Sqlite { path: path.clone(), source };
        let tx = self.conn_mut().transaction().map_err(sql)?;
        type Row = (i64, String, Vec<u8>, f64, Option<Vec<u8>>, i64);
        let row: Option<Row> = tx
            .query_row(
                "SELECT p.id, p.name, e.vector, e.det_score, e.crop, e.created_at FROM embeddings e JOIN persons p ON p.id = e.person_id WHERE e.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .optional()
            .map_err(sql)?;
        let (from_id, from, vector, quality, crop, created) = row.ok_or(GalleryError::UnknownPhoto(id))?;
        let to_name = match to {
            FaceTarget::Person(name) => {
                tx.execute("INSERT OR IGNORE INTO persons (name, created_at) VALUES (?1, ?2)", params![name, now()]).map_err(sql)?;
                let person: i64 = tx.query_row("SELECT id FROM persons WHERE name = ?1", [name], |r| r.get(0)).map_err(sql)?;
                if person == from_id {
                    return Err(GalleryError::NameTaken(format!("{name} (the photo is already theirs)")));
                }
                tx.execute("UPDATE OR REPLACE embeddings SET person_id = ?2 WHERE id = ?1", params![id, person]).map_err(sql)?;
                name.clone()
            }
            FaceTarget::Stranger => {
                let crop = crop.ok_or(GalleryError::NoCrop(id))?;
                let label = new_label();
                tx.execute(
                    "INSERT INTO strangers (label, model, first_seen, last_seen, sightings, cameras) VALUES (?1, ?2, ?3, ?3, 1, '')",
                    params![label, model, created],
                )
                .map_err(sql)?;
                let stranger: i64 = tx.last_insert_rowid();
                tx.execute(
                    "INSERT INTO stranger_faces (stranger_id, vector, quality, crop, context, camera, seen_at) VALUES (?1, ?2, ?3, ?4, NULL, '', ?5)",
                    params![stranger, vector, quality, crop, created],
                )
                .map_err(sql)?;
                tx.execute("DELETE FROM embeddings WHERE id = ?1", [id]).map_err(sql)?;
                bump(&tx, "strangers_version").map_err(sql)?;
                label
            }
        };
        let left: i64 = tx.query_row("SELECT COUNT(*) FROM embeddings WHERE person_id = ?1", [from_id], |r| r.get(0)).map_err(sql)?;
        if left == 0 {
            tx.execute("DELETE FROM persons WHERE id = ?1", [from_id]).map_err(sql)?;
        }
        bump(&tx, "persons_version").map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(MovedFace { id, from, to: to_name, person_removed: left == 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(seed: f32, quality: f32) -> NewStrangerFace {
        let v: Vec<f32> = (0..8).map(|i| ((i as f32 + 1.0) * seed).sin()).collect();
        NewStrangerFace {
            embedding: Embedding::from_raw(v).expect("non-zero"),
            quality,
            crop: vec![0xff, 0xd8, seed as u8],
            context: None,
            camera: "door".into(),
            seen_at: 1_000,
        }
    }

    #[test]
    fn strangers_are_kept_named_merged_forgotten_and_faces_move_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = SqliteStore::open(&dir.path().join("g.db"), "m", 8).expect("open");
        let v0 = s.versions().expect("versions");
        s.stranger_add("stranger-aaaaaa", &face(1.0, 0.5)).expect("add");
        for (seed, q) in [(1.4, 0.9), (1.7, 0.2), (2.3, 0.7)] {
            s.stranger_add_face("stranger-aaaaaa", &face(seed, q), 2).expect("face");
        }
        // The same view as the 0.9 face (cosine 1.00): clearly better, it takes that face's place; worse, it is not kept.
        s.stranger_add_face("stranger-aaaaaa", &face(1.402, 1.0), 2).expect("face");
        s.stranger_add_face("stranger-aaaaaa", &face(1.401, 0.8), 2).expect("face");
        s.stranger_seen("stranger-aaaaaa", "hall", 2_000).expect("seen");
        s.stranger_add("stranger-bbbbbb", &face(2.0, 0.6)).expect("add");
        assert_eq!(s.versions().expect("versions"), v0, "the daemon's own writes move no counter");
        let all = s.strangers().expect("strangers");
        let a = all.iter().find(|x| x.label == "stranger-aaaaaa").expect("a");
        assert_eq!(a.faces.iter().map(|f| f.quality).collect::<Vec<_>>(), [1.0, 0.7], "the best two views kept, best first");
        assert_eq!((a.sightings, a.cameras.clone(), a.last_seen), (2, vec!["door".to_string(), "hall".to_string()], 2_000));
        // Merge b into a, then name a: two faces become Ann's photos, with their crops.
        assert_eq!(s.stranger_merge("stranger-aaaaaa", "stranger-bbbbbb").expect("merge"), 1);
        assert_eq!(s.stranger_name("stranger-aaaaaa", "Ann").expect("name"), 3);
        assert!(s.strangers().expect("strangers").is_empty());
        let v1 = s.versions().expect("versions");
        assert!(v1.persons > v0.persons && v1.strangers > v0.strangers);
        use super::super::GalleryStore;
        let photos = s.photos("Ann").expect("photos");
        assert_eq!(photos.len(), 3);
        assert!(s.photo_crop(photos[0].id).expect("crop").is_some(), "crops kept");
        // One of them was not Ann: back to the strangers, as a stranger of its own; another goes to Bob.
        let back = s.move_face(photos[0].id, &FaceTarget::Stranger).expect("move");
        assert!(is_label(&back.to) && back.from == "Ann" && !back.person_removed, "{back:?}");
        let bob = s.move_face(photos[1].id, &FaceTarget::Person("Bob".into())).expect("move");
        assert_eq!((bob.from.as_str(), bob.to.as_str()), ("Ann", "Bob"));
        assert_eq!(s.photos("Ann").expect("photos").len(), 1);
        assert_eq!(s.strangers().expect("strangers").len(), 1);
        // Forgotten, and pruned by age and by count.
        assert_eq!(s.stranger_forget(&back.to).expect("forget"), 1);
        assert!(matches!(s.stranger_forget(&back.to), Err(GalleryError::UnknownStranger(_))));
        for (i, t) in [10, 20, 30].iter().enumerate() {
            let mut f = face(3.0 + i as f32, 0.5);
            f.seen_at = *t;
            s.stranger_add(&format!("stranger-00000{i}"), &f).expect("add");
        }
        assert_eq!(s.strangers_prune(15, 1).expect("prune"), 2, "one too old, one beyond the cap");
        assert_eq!(s.strangers().expect("strangers")[0].label, "stranger-000002");
        assert!(matches!(s.stranger_name("stranger-000002", "stranger-x1"), Err(GalleryError::BadName(_))), "a label is no name");
    }
}
