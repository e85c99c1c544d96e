//! Strangers on the sample clip, through the binary: a face nobody enrolled keeps one `stranger-…` id across
//! tracks, restarts and cameras, never on anyone else (the clip's ground truth, `tests/data/hamilton_truth.csv`);
//! it is named, merged, forgotten and a photo moved back from the CLI and the HTTP API, and the next run names
//! the person.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::api::{answer, http, start_running, KEY};
use super::common::{arg, clip, clip_frames, face, gallery, root, run_json};

/// The boxes (frame range, x, y, w, h) the truth gives `name`'s face.
fn boxes(name: &str) -> Vec<(u64, u64, [f32; 4])> {
    let text = std::fs::read_to_string(root().join("tests/data/hamilton_truth.csv")).expect("truth");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("first"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| f.get(i).and_then(|v| v.trim().parse::<f32>().ok());
            (f.get(2) == Some(&name)).then_some(())?;
            Some((n(0)? as u64, n(1)? as u64, [n(3)?, n(4)?, n(5)?, n(6)?]))
        })
        .collect()
}

/// Whether the event's face is inside one of `boxes` on its frame.
fn on(boxes: &[(u64, u64, [f32; 4])], e: &Value) -> bool {
    let frame = e["frame_seq"].as_u64().unwrap_or(u64::MAX);
    let b: Vec<f32> = e["bbox"].as_array().map(|a| a.iter().filter_map(Value::as_f64).map(|v| v as f32).collect()).unwrap_or_default();
    let (cx, cy) = (b[0] + b[2] / 2.0, b[1] + b[3] / 2.0);
    boxes.iter().any(|(first, last, [x, y, w, h])| (*first..=*last).contains(&frame) && cx >= *x && cx <= x + w && cy >= *y && cy <= y + h)
}

/// `facewatch [flags] run …` on the sample clip as fast as it goes; the printed events.
fn run_clip(g: &Path, flags: &[&str]) -> Vec<Value> {
    run_source(g, &clip(), flags)
}

/// [`run_clip`] on `source`.
fn run_source(g: &Path, source: &Path, flags: &[&str]) -> Vec<Value> {
    let mut args = vec!["--gallery", arg(g), "--set", "runtime.intra_threads=1"];
    args.extend_from_slice(flags);
    args.extend(["run", "--source", arg(source), "--camera", "stage", "--socket", "", "--fast", "--print"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch")).current_dir(root()).args(&args).output().expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("event")).collect()
}

/// `facewatch --json --gallery G args…`, which must succeed.
fn cli(g: &Path, args: &[&str]) -> Value {
    let mut all = vec!["--gallery", arg(g)];
    all.extend_from_slice(args);
    let out = run_json(&all);
    assert!(out.status.success(), "facewatch {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn labels(g: &Path) -> Vec<String> {
    cli(g, &["strangers", "list"])["strangers"]
        .as_array()
        .expect("strangers")
        .iter()
        .map(|s| s["label"].as_str().expect("label").into())
        .collect()
}

fn stranger_ids(events: &[Value]) -> BTreeSet<String> {
    events.iter().filter_map(|e| e["stranger"].as_str()).map(String::from).collect()
}

/// Lin-Manuel Miranda is on stage and nobody enrolled him: one id, on him only, the same after a restart and on a
/// second camera; named from the CLI, the next run says his name; a photo moved back makes a stranger again.
#[test]
fn the_man_on_stage_keeps_one_stranger_id_across_restarts_and_cameras_and_is_named_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("alex", &[face("video/alex-lacamoire.png")])]);
    let lin = boxes("lin-manuel-miranda");
    assert!(!lin.is_empty(), "the truth has boxes for Miranda");

    let first = run_clip(&g, &[]);
    let ids = stranger_ids(&first);
    assert_eq!(ids.len(), 1, "one stranger on the clip: {ids:?}");
    let id = ids.first().expect("id").clone();
    for e in first.iter().filter(|e| e["stranger"].is_string()) {
        assert!(on(&lin, e), "{id} on a face that is not Miranda's: {e}");
        assert_eq!(e["known"], false, "{e}");
    }
    let listed = cli(&g, &["strangers", "list"]);
    let s = &listed["strangers"][0];
    assert_eq!(s["label"], id.as_str());
    assert_eq!(s["cameras"], serde_json::json!(["stage"]));
    let faces = s["faces"].as_array().expect("faces").len();
    assert!((1..=5).contains(&faces), "{faces} faces kept (keep_faces 5)");
    assert!(s["faces"][0].get("vector").is_none(), "embeddings are not printed");

    // Restarted, with two cameras on the clip: the same id on both.
    let config = dir.path().join("two.toml");
    std::fs::write(
        &config,
        format!(
            "[[cameras]]\nname = \"door\"\nsource = \"{0}\"\nrealtime = false\n\n[[cameras]]\nname = \"hall\"\nsource = \"{0}\"\nrealtime = false\n",
            clip().display()
        ),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--gallery", arg(&g), "--config", arg(&config), "--set", "runtime.intra_threads=1", "run", "--socket", "", "--print"])
        .output()
        .expect("run two cameras");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let both: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("event")).collect();
    for camera in ["door", "hall"] {
        let seen = stranger_ids(&both.iter().filter(|e| e["camera"] == camera).cloned().collect::<Vec<_>>());
        assert_eq!(seen, ids, "{camera} after a restart");
    }
    assert_eq!(labels(&g), vec![id.clone()], "no new stranger");
    let shown = cli(&g, &["strangers", "show", &id]);
    let cameras: BTreeSet<&str> = shown["cameras"].as_array().expect("cameras").iter().filter_map(Value::as_str).collect();
    assert_eq!(cameras, BTreeSet::from(["door", "hall", "stage"]));
    assert!(shown["sightings"].as_u64().is_some_and(|n| n >= 3), "{shown}");

    // Named: his kept faces are his photos, and the next run says his name, on him only.
    let named = cli(&g, &["strangers", "name", &id, "lin"]);
    let photos = named["photos"].as_u64().expect("photos");
    assert!(photos >= 1, "{named}");
    let his = cli(&g, &["gallery", "photos", "lin"]);
    assert_eq!(his["photos"].as_array().expect("photos").len() as u64, photos);
    assert!(labels(&g).is_empty(), "named strangers are strangers no more");
    let next = run_clip(&g, &[]);
    let said: Vec<&Value> = next.iter().filter(|e| e["name"] == "lin" && e["known"] == true).collect();
    assert!(!said.is_empty(), "the next run never said lin");
    for e in said {
        assert!(on(&lin, e), "lin said on someone else: {e}");
    }

    // "This face was not lin": back among the strangers, its evidence gone from lin.
    let photo = his["photos"][0]["id"].as_i64().expect("photo id");
    let moved = cli(&g, &["gallery", "move-photo", &photo.to_string(), "--stranger"]);
    assert_eq!(moved["from"], "lin");
    assert!(moved["to"].as_str().is_some_and(|t| t.starts_with("stranger-")), "{moved}");
    assert_eq!(moved["person_removed"], photos == 1);
    assert_eq!(labels(&g), vec![moved["to"].as_str().expect("to").to_string()]);
    if photos > 1 {
        assert_eq!(cli(&g, &["gallery", "photos", "lin"])["photos"].as_array().expect("photos").len() as u64, photos - 1);
    }
    // Named again from there, as someone already enrolled: their photo now.
    let to = moved["to"].as_str().expect("to").to_string();
    assert_eq!(cli(&g, &["strangers", "name", &to, "alex"])["photos"], 1);
    assert_eq!(cli(&g, &["gallery", "photos", "alex"])["photos"].as_array().expect("photos").len(), 2);
}

/// At a stranger level nobody reaches every track starts a stranger of its own; merged, their faces and
/// sightings are one stranger's; forgotten, they are gone. Mistakes are refused with a message and change nothing.
#[test]
fn strangers_are_merged_and_forgotten_from_the_cli_and_mistakes_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("alex", &[face("video/alex-lacamoire.png")])]);
    // Two runs on different frames of Miranda's close-up: the faces of the second match nobody at 0.99 and start
    // a stranger again.
    let mut events = Vec::new();
    for (i, range) in [(82, 140), (150, 210)].into_iter().enumerate() {
        let (pattern, _) = clip_frames(&dir.path().join(format!("part{i}")), "jpg", &[range]);
        events.extend(run_source(&g, &pattern, &["--set", "strangers.threshold=0.99"]));
    }
    let ids: Vec<String> = stranger_ids(&events).into_iter().collect();
    assert!(ids.len() >= 2, "Miranda's tracks strangers of their own at 0.99: {ids:?}");
    let before = labels(&g);
    assert_eq!(before.iter().cloned().collect::<BTreeSet<_>>(), ids.iter().cloned().collect::<BTreeSet<_>>());

    let refuse = |args: &[&str], says: &str| {
        let mut all = vec!["--gallery", arg(&g)];
        all.extend_from_slice(args);
        let out = run_json(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?} not refused with `{says}`: {stderr}");
    };
    refuse(&["strangers", "merge", &ids[0], &ids[0]], "itself");
    refuse(&["strangers", "name", "stranger-000000", "someone"], "stranger-000000");
    refuse(&["strangers", "forget", "alex"], "alex");
    assert_eq!(labels(&g), before, "a refused command changes nothing");

    let faces = |label: &str| cli(&g, &["strangers", "show", label])["faces"].as_array().expect("faces").len();
    let (a, b) = (faces(&ids[0]), faces(&ids[1]));
    let merged = cli(&g, &["strangers", "merge", &ids[0], &ids[1]]);
    assert_eq!(merged["into"], ids[0].as_str());
    // Both looks are kept (the daemon trims to keep_faces when it next keeps a better face).
    assert_eq!(faces(&ids[0]), a + b, "the faces of both");
    assert!(!labels(&g).contains(&ids[1]), "the merged stranger is gone");
    let forgotten = cli(&g, &["strangers", "forget", &ids[0]]);
    assert_eq!(forgotten["faces"].as_u64(), Some((a + b) as u64));
    assert_eq!(labels(&g).len(), before.len() - 2);
}

/// The same over HTTP, on the running daemon: the stranger it keeps is listed with their faces' pictures, named
/// with a POST, their photo's crop served, moved back; bad requests are refused with the status they deserve.
#[test]
fn strangers_are_listed_named_and_moved_over_the_api_of_the_running_daemon() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("alex", &[face("video/alex-lacamoire.png")])]);
    let clip = clip();
    let daemon = start_running(&g, dir.path(), &[], &["run", "--source", arg(&clip), "--camera", "stage", "--socket", "", "--loop"]);
    let api = http();
    let get = |path: &str| answer(api.get(&format!("{}{path}", daemon.base)).set("X-Api-Key", KEY).call());
    let post = |path: &str, body: &str| {
        answer(api.post(&format!("{}{path}", daemon.base)).set("X-Api-Key", KEY).set("Content-Type", "application/json").send_string(body))
    };
    let started = Instant::now();
    let label = loop {
        let (status, list) = get("/api/strangers");
        assert_eq!(status, 200, "{list}");
        if let Some(l) = list["strangers"][0]["label"].as_str() {
            break l.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(90), "no stranger within 90 s:\n{}", daemon.log.lock().expect("log"));
        std::thread::sleep(Duration::from_millis(500));
    };
    let (status, shown) = get(&format!("/api/strangers/{label}"));
    assert_eq!(status, 200);
    let face = shown["faces"][0]["id"].as_i64().expect("face id");
    for q in ["", "?scene=true"] {
        let r = api.get(&format!("{}/api/strangers/{label}/faces/{face}{q}", daemon.base)).set("X-Api-Key", KEY).call().expect("face");
        assert_eq!((r.content_type(), r.header("cache-control")), ("image/jpeg", Some("no-store")));
        let mut jpeg = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut jpeg).expect("read");
        assert!(jpeg.starts_with(&[0xFF, 0xD8]) && jpeg.len() > 500, "{q}: {} bytes", jpeg.len());
    }

    // Refused: an unknown or malformed label, a body that is not the route's, a merge into itself.
    assert_eq!(get("/api/strangers/stranger-000000").0, 404);
    assert_eq!(get("/api/strangers/alex").0, 404);
    assert_eq!(post(&format!("/api/strangers/{label}/name"), "{\"nom\": \"lin\"}").0, 400);
    assert_eq!(post(&format!("/api/strangers/{label}/name"), "not json").0, 400);
    assert_eq!(post(&format!("/api/strangers/{label}/merge"), &format!("{{\"from\": \"{label}\"}}")).0, 409);

    let (status, named) = post(&format!("/api/strangers/{label}/name"), "{\"name\": \"lin\"}");
    assert_eq!(status, 200, "{named}");
    assert!(named["photos"].as_u64().is_some_and(|n| n >= 1), "{named}");
    assert_eq!(get(&format!("/api/strangers/{label}")).0, 404, "named: no stranger any more");
    let (_, photos) = get("/api/faces/lin");
    let photo = photos["photos"][0]["id"].as_i64().unwrap_or_else(|| panic!("lin's photos: {photos}"));
    let crop = api.get(&format!("{}/api/faces/lin/photos/{photo}/crop", daemon.base)).set("X-Api-Key", KEY).call().expect("crop");
    assert_eq!(crop.content_type(), "image/jpeg");
    assert_eq!(get(&format!("/api/faces/alex/photos/{photo}/crop")).0, 404, "lin's photo is not alex's");
    assert_eq!(post(&format!("/api/faces/lin/photos/{photo}/move"), "{}").0, 400, "a move says where");
    let (status, moved) = post(&format!("/api/faces/lin/photos/{photo}/move"), "{\"stranger\": true}");
    assert_eq!(status, 200, "{moved}");
    let back = moved["to"].as_str().expect("to").to_string();
    assert!(back.starts_with("stranger-"), "{moved}");
    let (status, forgotten) = answer(api.delete(&format!("{}/api/strangers/{back}", daemon.base)).set("X-Api-Key", KEY).call());
    assert_eq!((status, forgotten["faces"].as_u64()), (200, Some(1)), "{forgotten}");
    assert_eq!(answer(api.delete(&format!("{}/api/strangers/{back}", daemon.base)).set("X-Api-Key", KEY).call()).0, 404);
}
