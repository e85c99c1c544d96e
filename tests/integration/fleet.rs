//! Several nodes on one gallery in PostgreSQL (issue 25): the store keeps what the SQLite one keeps, a change on
//! one node reaches the others through LISTEN/NOTIFY, a node keeps naming from memory while the server is down and
//! refuses writes cleanly, and a node killed mid-enrol leaves nothing half-written. The server is a real
//! PostgreSQL 15 started by the test ([`super::pg::Postgres`]).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use facewatch::base::Embedding;
use facewatch::gallery::strangers::{FaceTarget, NewStrangerFace};
use facewatch::gallery::{DbUrl, Gallery, GalleryConfig, GalleryError, GalleryStore, NewEmbedding, PgStore, PgTarget, SqliteStore};
use serde_json::Value;

use super::api::{answer, http, start_running, Daemon, KEY};
use super::common::{arg, clip, face, root};
use super::pg::{Postgres, PASSWORD};

fn unit(seed: u32, dim: usize) -> Embedding {
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

fn item(seed: u32, file: &str) -> NewEmbedding {
    NewEmbedding { embedding: unit(seed, 16), source_path: file.into(), file_sha256: file.into(), det_score: 0.9, crop: Some(vec![0xff, 0xd8, seed as u8]) }
}

fn stranger_face(seed: u32, quality: f32, at: i64) -> NewStrangerFace {
    NewStrangerFace { embedding: unit(seed, 16), quality, crop: vec![0xff, 0xd8, 1], context: Some(vec![0xff, 0xd8, 2]), camera: "door".into(), seen_at: at }
}

fn pg_config(pg: &Postgres, dir: &Path) -> GalleryConfig {
    GalleryConfig {
        path: String::new(),
        url: DbUrl::new(&pg.url()),
        password_file: pg.password_file(dir).to_string_lossy().into_owned(),
        ca_file: String::new(),
    }
}

fn pg_store(pg: &Postgres, dir: &Path) -> PgStore {
    PgStore::open(PgTarget::from_config(&pg_config(pg, dir)).expect("target"), "m", 16).expect("open the PostgreSQL gallery")
}

/// Every kind of change a person or the daemon makes, on `store`; what each step gave, as lines to compare.
fn scenario(store: Box<dyn GalleryStore>) -> Vec<String> {
    let mut log = Vec::new();
    let mut g = Gallery::over(store, 1000).expect("gallery");
    let v0 = g.store().versions().expect("versions");
    log.push(format!("enroll alice {}", g.enroll("alice", &[item(1, "a1"), item(2, "a2")]).expect("enroll")));
    log.push(format!("enroll bob {}", g.enroll("bob", &[item(3, "b1")]).expect("enroll")));
    log.push(format!("enroll bob again {}", g.enroll("bob", &[item(3, "b1")]).expect("enroll")));
    assert!(matches!(g.enroll("unknown", &[item(4, "x")]), Err(GalleryError::BadName(_))));
    log.push(format!("owners of a1 {:?}", g.owners_of("a1").expect("owners")));
    log.push(format!("search {}", g.search(&unit(2, 16), 1)[0].name));
    g.rename("bob", "robert").expect("rename");
    assert!(matches!(g.rename("alice", "robert"), Err(GalleryError::NameTaken(_))));
    assert!(matches!(g.rename("ghost", "x"), Err(GalleryError::UnknownPerson(_))));
    let v1 = g.store().versions().expect("versions");
    assert!(v1.persons > v0.persons, "persons' counter moved: {v0:?} {v1:?}");
    // Strangers, as the daemon writes them and as a person edits them.
    let store = |g: &Gallery| g.store().strangers().expect("strangers");
    let mut writer = g;
    {
        let s = writer_store(&mut writer);
        s.stranger_add("stranger-00000a", &stranger_face(10, 0.6, 1_000)).expect("add");
        s.stranger_add_face("stranger-00000a", &stranger_face(11, 0.8, 1_010), 3).expect("add face");
        s.stranger_seen("stranger-00000a", "hall", 1_020).expect("seen");
        s.stranger_add("stranger-00000b", &stranger_face(20, 0.7, 1_030)).expect("add");
        s.stranger_add_face("stranger-gone", &stranger_face(21, 0.9, 1_031), 3).expect("a gone stranger takes nothing");
    }
    let g = writer;
    let strangers = store(&g);
    log.push(format!(
        "strangers {:?}",
        strangers.iter().map(|s| (s.label.clone(), s.faces.len(), s.sightings, s.cameras.clone(), s.first_seen, s.last_seen)).collect::<Vec<_>>()
    ));
    let face_id = strangers.iter().find(|s| s.label == "stranger-00000b").expect("b").faces[0].id;
    let picture = g.store().stranger_face_image(face_id, true).expect("picture");
    log.push(format!("context picture {:?}", picture));
    let mut g = g;
    log.push(format!("merge {}", g.stranger_merge("stranger-00000a", "stranger-00000b").expect("merge")));
    assert!(matches!(g.stranger_merge("stranger-00000a", "stranger-00000a"), Err(GalleryError::SelfMerge(_))));
    log.push(format!("name {}", g.stranger_name("stranger-00000a", "carol").expect("name")));
    assert!(matches!(g.stranger_name("stranger-00000a", "carol"), Err(GalleryError::UnknownStranger(_))));
    let carol = g.photos("carol").expect("photos");
    log.push(format!("carol {:?}", carol.iter().map(|p| (p.path.clone(), p.sha256.starts_with("stranger-face:"))).collect::<Vec<_>>()));
    log.push(format!("carol crop {:?}", g.store().photo_crop(carol[0].id).expect("crop").map(|c| c.len())));
    let moved = g.move_face(carol[0].id, &FaceTarget::Stranger).expect("move back");
    log.push(format!("moved to a stranger {} removed {}", moved.to.starts_with("stranger-"), moved.person_removed));
    let alice = g.photos("alice").expect("photos");
    let moved = g.move_face(alice[1].id, &FaceTarget::Person("robert".into())).expect("move");
    log.push(format!("moved {} -> {} removed {}", moved.from, moved.to, moved.person_removed));
    let removed = g.remove_photo(alice[0].id).expect("remove photo");
    log.push(format!("removed photo of {} person removed {}", removed.name, removed.person_removed));
    log.push(format!("forget {}", g.stranger_forget(&moved_label(&g)).expect("forget")));
    log.push(format!("remove robert {}", g.remove("robert").expect("remove")));
    log.push(format!(
        "persons {:?}",
        g.persons().expect("persons").into_iter().map(|p| (p.name, p.embeddings)).collect::<Vec<_>>()
    ));
    log.push(format!("in memory {} stored {}", g.len(), g.stored().expect("stored")));
    log
}

/// The label of the one stranger left.
fn moved_label(g: &Gallery) -> String {
    g.store().strangers().expect("strangers").first().expect("one stranger").label.clone()
}

/// The gallery's store, writable (the daemon's stranger writes go to a store of their own; here the same one).
fn writer_store(g: &mut Gallery) -> &mut dyn GalleryStore {
    g.store_mut()
}

#[test]
fn a_postgres_gallery_keeps_what_a_sqlite_one_keeps_and_tells_other_nodes_at_once() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = scenario(Box::new(SqliteStore::open(&dir.path().join("g.db"), "m", 16).expect("sqlite")));
    let postgres = scenario(Box::new(pg_store(&pg, dir.path())));
    assert_eq!(sqlite, postgres, "the two stores disagree");
    assert!(sqlite.contains(&"name 3".to_string()) && sqlite.contains(&"merge 1".to_string()), "{sqlite:?}");

    // Two nodes: one listens, the other enrols; the notification arrives at once, with the version and the ids.
    let mut listener = Gallery::over(Box::new(pg_store(&pg, dir.path())), 1000).expect("node 1");
    let mut writer = Gallery::over(Box::new(pg_store(&pg, dir.path())), 1000).expect("node 2");
    assert!(!listener.wait_change(Duration::from_millis(200)), "nothing changed yet");
    let started = Instant::now();
    writer.enroll("dora", &[item(30, "d1")]).expect("enroll");
    assert!(listener.wait_change(Duration::from_secs(5)), "no notification");
    let took = started.elapsed();
    assert!(listener.poll().expect("poll").persons);
    assert_eq!(listener.search(&unit(30, 16), 1)[0].name, "dora");
    eprintln!("notification and reload: {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    let mut raw = pg.client();
    let n: i64 = raw.query_one("SELECT COUNT(*) FROM schema_migrations", &[]).expect("migrations").get(0);
    assert_eq!(n as usize, facewatch::gallery::MIGRATIONS.len(), "every migration recorded once");

    // Another recognizer is refused; so is a schema newer than this binary knows.
    let target = PgTarget::from_config(&pg_config(&pg, dir.path())).expect("target");
    assert!(matches!(PgStore::open(target.clone(), "other", 128), Err(GalleryError::ModelMismatch { .. })));
    raw.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)", &[]).expect("insert");
    let err = PgStore::open(target.clone(), "m", 16).err().expect("newer schema");
    assert!(err.to_string().contains("newer than this facewatch knows"), "{err}");
    raw.execute("DELETE FROM schema_migrations WHERE version = 999", &[]).expect("delete");

    // The server away: a clear error, no password in it, and nothing written; back: the same handle works again.
    let mut node = Gallery::over(Box::new(pg_store(&pg, dir.path())), 1000).expect("node");
    drop(raw);
    let mut pg = pg;
    pg.stop(true);
    let err = node.enroll("eve", &[item(40, "e1")]).expect_err("the server is down");
    assert!(matches!(err, GalleryError::Unavailable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("unreachable") && msg.contains("nothing was changed") && !msg.contains(PASSWORD), "{msg}");
    assert_eq!(node.search(&unit(30, 16), 1)[0].name, "dora", "matching goes on from memory");
    pg.resume();
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(node.enroll("eve", &[item(40, "e1")]).expect("the server is back"), 1);
    assert!(listener.wait_change(Duration::from_secs(5)) || listener.poll().expect("poll").persons, "the listener listens again");
    let names: Vec<String> = node.persons().expect("persons").into_iter().map(|p| p.name).collect();
    assert!(names.contains(&"eve".to_string()) && names.contains(&"dora".to_string()), "{names:?}");

    // A wrong password is refused, and never shown.
    let mut wrong = pg_config(&pg, dir.path());
    wrong.url = DbUrl::new(&format!("postgres://facewatch:not-{PASSWORD}@127.0.0.1:{}/postgres?sslmode=disable", pg.port));
    wrong.password_file = String::new();
    let err = PgStore::open(PgTarget::from_config(&wrong).expect("target"), "m", 16).err().expect("wrong password");
    assert!(!err.to_string().contains(PASSWORD) && err.to_string().contains("***"), "{err}");
}
