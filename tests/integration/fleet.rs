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
    NewEmbedding {
        embedding: unit(seed, 16),
        source_path: file.into(),
        file_sha256: file.into(),
        det_score: 0.9,
        crop: Some(vec![0xff, 0xd8, seed as u8]),
    }
}

fn stranger_face(seed: u32, quality: f32, at: i64) -> NewStrangerFace {
    NewStrangerFace {
        embedding: unit(seed, 16),
        quality,
        crop: vec![0xff, 0xd8, 1],
        context: Some(vec![0xff, 0xd8, 2]),
        camera: "door".into(),
        seen_at: at,
    }
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
        strangers
            .iter()
            .map(|s| (s.label.clone(), s.faces.len(), s.sightings, s.cameras.clone(), s.first_seen, s.last_seen))
            .collect::<Vec<_>>()
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
    log.push(format!("persons {:?}", g.persons().expect("persons").into_iter().map(|p| (p.name, p.embeddings)).collect::<Vec<_>>()));
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

/// A node: a daemon on the sample clip (looping, camera `camera`) over the gallery at `url`, with its API.
fn node(url: &str, dir: &Path, camera: &str, password_file: &Path) -> Daemon {
    std::fs::create_dir_all(dir).expect("mkdir");
    let pw = format!("gallery.password_file={}", password_file.display());
    let source = clip();
    start_running(Path::new(url), dir, &["--set", &pw], &["run", "--source", arg(&source), "--camera", camera, "--socket", "", "--loop"])
}

/// Events of a node's stream (`/api/events`), each with when it arrived.
fn collect(daemon: &Daemon) -> Arc<Mutex<Vec<(Instant, Value)>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let stream = http().get(&format!("{}/api/events", daemon.base)).set("X-Api-Key", KEY).call().expect("events");
    std::thread::spawn(move || {
        for line in BufReader::new(stream.into_reader()).lines().map_while(Result::ok) {
            if let Some(data) = line.strip_prefix("data:") {
                if let Ok(v) = serde_json::from_str::<Value>(data.trim()) {
                    sink.lock().expect("events").push((Instant::now(), v));
                }
            }
        }
    });
    got
}

/// Waits until `f` holds (checked every 10 ms), up to `limit`; when it held.
fn until(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Instant> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

/// Whether a node's stream named `name` after `since`.
fn named(events: &Mutex<Vec<(Instant, Value)>>, name: &str, since: Instant) -> bool {
    events.lock().expect("events").iter().any(|(at, e)| *at >= since && e["known"] == true && e["name"] == name)
}

/// A node's frames per second now (its metrics).
fn fps(daemon: &Daemon, camera: &str) -> f64 {
    let text =
        http().get(&format!("{}/api/metrics", daemon.base)).set("X-Api-Key", KEY).call().expect("metrics").into_string().expect("text");
    let key = format!("facewatch_fps{{camera=\"{camera}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&key)).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("no {key} in\n{text}"))
}

fn enrol(daemon: &Daemon, name: &str, photo: &str) -> (u16, Value) {
    let bytes = std::fs::read(face(photo)).expect("photo");
    answer(http().post(&format!("{}/api/faces/{name}", daemon.base)).set("X-Api-Key", KEY).set("X-File-Name", photo).send_bytes(&bytes))
}

fn log_of(daemon: &Daemon) -> String {
    daemon.log.lock().expect("log").clone()
}

#[test]
fn three_nodes_on_one_gallery_name_who_another_enrolled_and_keep_naming_while_postgres_is_down() {
    let mut pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = pg.password_file(dir.path());
    let url = pg.url();
    let mut a = node(&url, &dir.path().join("a"), "a", &pw);
    let mut b = node(&url, &dir.path().join("b"), "b", &pw);
    let mut c = node(&url, &dir.path().join("c"), "c", &pw);
    let events = collect(&c);

    // Enrolled through node A's API: node C reads it within 2 s (LISTEN/NOTIFY), and names lin on its camera.
    let before = log_of(&c).matches("Gallery re-indexed").count();
    let sent = Instant::now();
    let (status, r) = enrol(&a, "lin", "video/lin-manuel-miranda.png");
    assert_eq!(status, 201, "{r}");
    let committed = Instant::now();
    let reached = until(Duration::from_secs(10), || log_of(&c).matches("Gallery re-indexed").count() > before)
        .expect("node C never re-read the gallery");
    // From the request sent to node A (C may have it before A's answer is back: the notification comes at commit).
    let propagation = reached.duration_since(sent);
    eprintln!("fleet: enrol on A answered in {:?}; C had it in memory {:?} after the request", committed - sent, propagation);
    assert!(propagation < Duration::from_secs(2), "A -> C took {propagation:?}\n{}", log_of(&c));
    until(Duration::from_secs(10), || log_of(&b).contains("Gallery re-indexed")).expect("node B never re-read the gallery");
    let named_at =
        until(Duration::from_secs(90), || named(&events, "lin", sent)).unwrap_or_else(|| panic!("node C never named lin\n{}", log_of(&c)));
    eprintln!("fleet: C named lin {:?} after the enrol", named_at - sent);
    let fps_up = fps(&c, "c");

    // PostgreSQL stops: node C goes on naming from memory at its pace, node A refuses an enrol cleanly (503).
    pg.stop(true);
    let stopped = Instant::now();
    let (status, r) = enrol(&a, "alex", "video/alex-lacamoire.png");
    assert_eq!(status, 503, "{r}");
    assert!(r["error"].as_str().is_some_and(|e| e.contains("unreachable") && e.contains("nothing was changed")), "{r}");
    let (status, _) = answer(http().get(&format!("{}/api/health", a.base)).call());
    assert_eq!(status, 200, "node A stays up");
    until(Duration::from_secs(60), || named(&events, "lin", stopped + Duration::from_secs(3)))
        .unwrap_or_else(|| panic!("node C stopped naming lin with the server down\n{}", log_of(&c)));
    let fps_down = fps(&c, "c");
    eprintln!("fleet: node C at {fps_up:.1} fps with PostgreSQL up, {fps_down:.1} fps with it down");
    assert!(fps_down > fps_up * 0.5, "fps fell from {fps_up} to {fps_down} with the server down");
    assert!(log_of(&c).contains("Reading the gallery failed"), "the outage is logged\n{}", log_of(&c));
    assert_eq!(log_of(&c).matches("Reading the gallery failed").count(), 1, "once, not every poll");

    // Back: writes go through again, on any node, and every node resyncs (alex is named by node C).
    pg.resume();
    let back = Instant::now();
    let (status, r) = loop {
        let got = enrol(&b, "alex", "video/alex-lacamoire.png");
        if got.0 != 503 || back.elapsed() > Duration::from_secs(10) {
            break got;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status, 201, "{r}");
    until(Duration::from_secs(10), || log_of(&c).contains("The gallery can be read again")).expect("node C never came back");
    until(Duration::from_secs(90), || named(&events, "alex", back))
        .unwrap_or_else(|| panic!("node C never named alex after the resync\n{}", log_of(&c)));
    let (_, faces) = answer(http().get(&format!("{}/api/faces", c.base)).set("X-Api-Key", KEY).call());
    assert_eq!(faces["persons"].as_array().map(Vec::len), Some(2), "{faces}");

    for d in [&mut a, &mut b, &mut c] {
        let _ = d.child.kill();
        let _ = d.child.wait();
    }
    for d in [&a, &b, &c] {
        assert!(!log_of(d).contains(PASSWORD), "the password was logged:\n{}", log_of(d));
    }
}

#[test]
fn a_node_killed_mid_enrol_leaves_nothing_half_written() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = pg.password_file(dir.path());
    let people = dir.path().join("people");
    for id in ["id00", "id01", "id02", "id03", "id04", "id05"] {
        std::fs::create_dir_all(people.join(id)).expect("mkdir");
        for photo in std::fs::read_dir(face(&format!("people/{id}"))).expect("person").flatten() {
            std::fs::copy(photo.path(), people.join(id).join(photo.file_name())).expect("copy");
        }
    }
    let enroll = || {
        Command::new(env!("CARGO_BIN_EXE_facewatch"))
            .current_dir(root())
            .args(["--gallery", &pg.url(), "--set", "runtime.intra_threads=1", "--set"])
            .arg(format!("gallery.password_file={}", pw.display()))
            .args(["enroll", arg(&people)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start enroll")
    };
    let mut client = pg.client();
    let persons = |c: &mut postgres::Client| -> Vec<(String, i64)> {
        c.query(
            "SELECT p.name, COUNT(e.id) FROM persons p LEFT JOIN embeddings e ON e.person_id = p.id GROUP BY p.name ORDER BY p.name",
            &[],
        )
        .map(|rows| rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        .unwrap_or_default()
    };
    let mut child = enroll();
    until(Duration::from_secs(120), || !persons(&mut client).is_empty()).expect("the enrol never wrote anybody");
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let cut = persons(&mut client);
    assert!(cut.len() < 6, "killed too late to show anything: {cut:?}");
    assert!(cut.iter().all(|(_, n)| *n > 0), "a person without photos was left: {cut:?}");
    let orphans: i64 = client
        .query_one("SELECT COUNT(*) FROM embeddings e LEFT JOIN persons p ON p.id = e.person_id WHERE p.id IS NULL", &[])
        .expect("q")
        .get(0);
    assert_eq!(orphans, 0);

    // The enrol done again completes it; the people it had written were whole (nothing added to them).
    let mut child = enroll();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).expect("read");
    assert!(child.wait().expect("wait").success(), "{err}");
    let whole = persons(&mut client);
    assert_eq!(whole.len(), 6, "{whole:?}");
    for (name, n) in &cut {
        assert_eq!(whole.iter().find(|(w, _)| w == name).map(|w| w.1), Some(*n), "{name} was half-written before the kill");
    }
}

#[test]
fn a_gallery_copied_to_postgres_and_back_is_the_same_and_a_used_destination_is_refused() {
    let pg = Postgres::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pw = pg.password_file(dir.path());
    let pw_set = format!("gallery.password_file={}", pw.display());
    let obama: Vec<std::path::PathBuf> = ["obama.jpg", "obama2.jpg"].iter().map(|f| face(&format!("people/obama/{f}"))).collect();
    let db = super::common::gallery(dir.path(), &[("obama", &obama), ("lin", &[face("video/lin-manuel-miranda.png")])]);
    {
        // A stranger too, with its pictures.
        let model = "w600k_mbf";
        let mut s = SqliteStore::open(&db, model, 512).expect("open");
        let mut f = stranger_face(7, 0.7, 1_234);
        f.embedding = Embedding::from_raw((0..512).map(|i| (i as f32 * 0.37).sin()).collect()).expect("non-zero");
        s.stranger_add("stranger-0c0ffe", &f).expect("stranger");
    }
    let url = pg.url();
    let copy = |from: &str, to: &str| super::common::run_json(&["--gallery", from, "--set", &pw_set, "gallery", "copy", "--to", to]);
    let out = copy(arg(&db), &url);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let there: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (there["persons"].as_u64(), there["embeddings"].as_u64(), there["strangers"].as_u64()),
        (Some(2), Some(3), Some(1)),
        "{there}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains(PASSWORD));

    // Back to a new file: the same content hash.
    let back = dir.path().join("back.db");
    let out = copy(&url, arg(&back));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(again["sha256"], there["sha256"], "{there} {again}");
    let list = super::common::run_json(&["--gallery", arg(&back), "gallery", "list"]);
    let list: Value = serde_json::from_slice(&list.stdout).expect("json");
    assert_eq!(list["embeddings"], 3, "{list}");

    // A destination already holding a gallery is refused (exit 5), and left as it was.
    let out = copy(arg(&db), &url);
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"), "{}", String::from_utf8_lossy(&out.stderr));
    let mut client = pg.client();
    let n: i64 = client.query_one("SELECT COUNT(*) FROM embeddings", &[]).expect("count").get(0);
    assert_eq!(n, 3);
}

#[test]
fn tls_to_the_server_is_verified_against_the_configured_ca() {
    let pg = Postgres::start_tls();
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = pg.ca.clone().expect("a CA");
    let mut cfg = pg_config(&pg, dir.path());
    cfg.url = DbUrl::new(&format!("postgres://facewatch@127.0.0.1:{}/postgres?sslmode=require", pg.port));
    cfg.ca_file = ca.to_string_lossy().into_owned();
    // Tried up to three times: on a loaded machine (the other tests' daemons) one handshake was seen to fail once;
    // each failure is printed.
    let mut store = None;
    for _ in 0..3 {
        match PgStore::open(PgTarget::from_config(&cfg).expect("target"), "m", 16) {
            Ok(s) => {
                store = Some(s);
                break;
            }
            Err(e) => {
                eprintln!("TLS connection with the server's CA failed: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    let mut store = store.expect("TLS with the server's CA");
    assert_eq!(store.enroll("ann", &[item(1, "a1")]).expect("enroll").len(), 1);
    let mut raw = pg.client();
    let tls: i64 = raw
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid WHERE s.ssl AND a.application_name = 'facewatch'",
            &[],
        )
        .expect("query")
        .get(0);
    assert!(tls >= 1, "facewatch's connection is not encrypted");
    // Without the CA (the system's roots do not know it), the certificate is refused: no silent fallback.
    cfg.ca_file = String::new();
    let err = PgStore::open(PgTarget::from_config(&cfg).expect("target"), "m", 16).err().expect("an unknown CA is refused");
    assert!(matches!(err, GalleryError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("certificate") || err.to_string().contains("tls"), "{err}");
}
