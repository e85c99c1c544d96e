//! `pairs`, `evaluate` and `calibrate` through the binary, on the real photos.

use std::process::Output;

use serde_json::Value;

use crate::common::{arg, face, faces, run_json};

fn ok_json(out: &Output) -> Value {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn deepface_pairs_evaluate_above_the_floor_with_cross_validation_and_roc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roc = dir.path().join("roc.csv");
    let plots = dir.path().join("plots");
    let r = ok_json(&run_json(&[
        "evaluate",
        "--pairs",
        arg(&face("people/deepface_master.csv")),
        "--roc-csv",
        arg(&roc),
        "--plots",
        arg(&plots),
    ]));
    assert_eq!(r["pairs"], 300);
    assert_eq!((r["same"].as_u64(), r["different"].as_u64()), (Some(38), Some(262)));
    // Floors, measured 100 % / 99.67 % / AUC 1.0 (BENCHMARKS.md).
    assert!(r["accuracy_at_threshold"].as_f64().expect("acc") >= 0.97, "{r}");
    assert!(r["kfold_accuracy_mean"].as_f64().expect("kfold") >= 0.97, "{r}");
    assert_eq!(r["folds"], 10);
    assert!(r["auc"].as_f64().expect("auc") >= 0.99, "{r}");
    assert!(r["eer"].as_f64().expect("eer") <= 0.03, "{r}");
    // 262 different pairs can measure 1e-2 but not 1e-3.
    assert_eq!(r["tar_at_far"][0]["measurable"], true);
    assert_eq!(r["tar_at_far"][1]["measurable"], false);
    let curve = std::fs::read_to_string(&roc).expect("roc csv");
    assert!(curve.starts_with("threshold,far,tar\n") && curve.lines().count() > 100);
    // The plots are real images with their curves and bars drawn: blue ROC line, green and red bars.
    assert!(coloured_pixels(&plots.join("roc.png"), |[b, g, r]| b > 200 && g < 60 && r < 60) > 500);
    assert!(coloured_pixels(&plots.join("scores.png"), |[b, g, r]| g > 200 && r < 200 && b < 200) > 500);
    assert!(coloured_pixels(&plots.join("scores.png"), |[b, g, r]| r > 200 && g < 200 && b < 200) > 500);
}

/// Pixels of a PNG for which `keep` holds (BGR), after checking it decodes to a plausible plot size.
fn coloured_pixels(path: &std::path::Path, keep: impl Fn([u8; 3]) -> bool) -> usize {
    use opencv::core::{MatTraitConst, MatTraitConstManual};
    let img = opencv::imgcodecs::imread(arg(path), opencv::imgcodecs::IMREAD_COLOR).expect("read plot");
    assert!(img.cols() >= 320 && img.rows() >= 240, "{}: {}x{}", path.display(), img.cols(), img.rows());
    img.data_bytes().expect("pixels").chunks_exact(3).filter(|p| keep([p[0], p[1], p[2]])).count()
}

#[test]
fn generated_pairs_are_reproducible_and_evaluate_from_both_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let people = faces().join("people");
    let (lfw, csv, lfw2) = (dir.path().join("pairs.txt"), dir.path().join("pairs.csv"), dir.path().join("again.txt"));
    let r = ok_json(&run_json(&[
        "pairs",
        arg(&people),
        "--sets",
        "10",
        "--per-set",
        "5",
        "--seed",
        "3",
        "--lfw",
        arg(&lfw),
        "--csv",
        arg(&csv),
    ]));
    assert_eq!((r["same"].as_u64(), r["different"].as_u64()), (Some(50), Some(50)));
    ok_json(&run_json(&["pairs", arg(&people), "--sets", "10", "--per-set", "5", "--seed", "3", "--lfw", arg(&lfw2)]));
    assert_eq!(std::fs::read(&lfw).expect("lfw"), std::fs::read(&lfw2).expect("lfw again"), "same seed, same file");
    let a = ok_json(&run_json(&["evaluate", "--pairs", arg(&lfw), "--dir", arg(&people)]));
    let b = ok_json(&run_json(&["evaluate", "--pairs", arg(&csv), "--dir", arg(&people)]));
    assert_eq!(a["pairs"], 100);
    assert_eq!(a["auc"], b["auc"], "the two formats hold the same pairs");
    assert!(a["kfold_accuracy_mean"].as_f64().expect("kfold") >= 0.95, "{a}");
}

#[test]
fn calibrate_meets_the_target_and_writes_the_threshold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("calibrated.toml");
    std::fs::write(&cfg, "# the door camera\n[detect]\nscore_threshold = 0.7 # dim hall\n").expect("write");
    // A service's configuration: 0640 so its group can read it. Rewriting must keep that, and the comments.
    std::fs::set_permissions(&cfg, std::os::unix::fs::PermissionsExt::from_mode(0o640)).expect("chmod");
    let r = ok_json(&run_json(&["calibrate", "--pairs", arg(&face("people/deepface_master.csv")), "--far", "0.01", "--write", arg(&cfg)]));
    assert!(r["far_measured"].as_f64().expect("far") <= 0.01, "{r}");
    assert!(r["in_words"].as_str().is_some_and(|w| w.contains("impostor pairs")), "{r}");
    let t = r["threshold"].as_f64().expect("threshold");
    let written: toml::Table = toml::from_str(&std::fs::read_to_string(&cfg).expect("read")).expect("toml");
    assert!((written["matcher"]["threshold"].as_float().expect("float") - t).abs() < 1e-3);
    assert_eq!(written["detect"]["score_threshold"].as_float(), Some(0.7), "other keys kept");
    let text = std::fs::read_to_string(&cfg).expect("read");
    assert!(text.contains("# the door camera") && text.contains("# dim hall"), "comments kept:\n{text}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&cfg).expect("meta").permissions()) & 0o777;
    assert_eq!(mode, 0o640, "the file keeps its mode");
    assert!(!dir.path().read_dir().expect("dir").any(|e| e.expect("entry").file_name().to_string_lossy().contains("partial")));
    // The written file is a valid configuration layer.
    let check = run_json(&["--config", arg(&cfg), "check-config"]);
    assert_eq!(check.status.code(), Some(0), "{}", String::from_utf8_lossy(&check.stdout));
}

/// A writable folder holding `dedupe/*` and `people/obama/*` side by side.
fn obama_copies() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let into = dir.path().join("photos/obama");
    std::fs::create_dir_all(&into).expect("dir");
    for src in ["dedupe", "people/obama"] {
        for f in std::fs::read_dir(faces().join(src)).expect("folder") {
            let f = f.expect("entry").path();
            std::fs::copy(&f, into.join(f.file_name().expect("name"))).expect("copy");
        }
    }
    dir
}

fn copy_names(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| {
            g["copies"]
                .as_array()
                .expect("copies")
                .iter()
                .map(|c| c[0].as_str().expect("path").rsplit('/').next().expect("name").to_string())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn dedupe_finds_the_resized_obama_copies_and_with_faces_the_reframed_ones() {
    let dir = obama_copies();
    let photos = dir.path().join("photos");
    let r = ok_json(&run_json(&["dedupe", arg(&photos)]));
    assert_eq!(r["groups"].as_array().map(Vec::len), Some(1));
    assert!(r["groups"][0]["keep"].as_str().is_some_and(|k| k.ends_with("obama-1080p.jpg")), "largest resolution kept: {r}");
    assert_eq!(copy_names(&r), ["obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg"]);

    let r = ok_json(&run_json(&["dedupe", "--faces", arg(&photos)]));
    assert_eq!(copy_names(&r), ["obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg", "obama.jpg", "obama_small.jpg"]);
    // obama2 and obama3 are other photos of the same man: not copies.
    assert_eq!(r["photos"], 8);
}

#[test]
fn dedupe_finds_no_false_groups_among_different_photos() {
    let r = ok_json(&run_json(&["dedupe", "--faces", arg(&faces().join("people"))]));
    assert_eq!(r["photos"], 65);
    assert_eq!(r["groups"].as_array().map(Vec::len), Some(0), "{r}");
}

#[test]
fn dedupe_move_moves_copies_out_and_deletes_nothing() {
    let dir = obama_copies();
    let (photos, out) = (dir.path().join("photos"), dir.path().join("copies"));
    let before = facewatch::folders::photos_under(&photos).expect("list").len();
    let r = ok_json(&run_json(&["dedupe", "--move", arg(&out), arg(&photos)]));
    assert_eq!(r["moved"].as_array().map(Vec::len), Some(3));
    assert!(out.join("obama/obama-240p.jpg").is_file(), "relative path kept");
    assert!(photos.join("obama/obama-1080p.jpg").is_file(), "best copy stays");
    let left = facewatch::folders::photos_under(&photos).expect("list").len();
    let moved = facewatch::folders::photos_under(&out).expect("list").len();
    assert_eq!((left, moved), (before - 3, 3));
    // Running again finds nothing left to move.
    let again = ok_json(&run_json(&["dedupe", "--move", arg(&out), arg(&photos)]));
    assert_eq!(again["copies"], 0);
}

#[test]
fn gallery_check_flags_a_photo_filed_under_the_wrong_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let people = dir.path().join("people");
    for person in facewatch::folders::person_dirs(&faces().join("people")).expect("people") {
        let to = people.join(person.file_name().expect("name"));
        std::fs::create_dir_all(&to).expect("dir");
        for p in facewatch::folders::photos_in(&person).expect("photos") {
            std::fs::copy(&p, to.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    // Obama's second photo, filed by mistake under id05 as well.
    std::fs::copy(face("people/obama/obama2.jpg"), people.join("id05/misfiled.jpg")).expect("copy");
    let g = dir.path().join("g.db");
    ok_json(&run_json(&["--gallery", arg(&g), "enroll", arg(&people)]));
    let r = ok_json(&run_json(&["--gallery", arg(&g), "gallery", "check"]));
    let mislabels = r["mislabels"].as_array().expect("mislabels");
    assert_eq!(mislabels.len(), 1, "{r}");
    let m = &mislabels[0];
    assert!(m["photo"].as_str().is_some_and(|p| p.ends_with("id05/misfiled.jpg")), "{m}");
    assert_eq!((m["enrolled_as"].as_str(), m["looks_like"].as_str()), (Some("id05"), Some("obama")));
    assert!(m["score"].as_f64().expect("score") > m["own_score"].as_f64().expect("own"), "{m}");
}

#[test]
fn identification_on_held_out_photos_and_open_set_false_accepts() {
    let strangers = tempfile::tempdir().expect("tempdir");
    // The CompreFace group photos: 37 faces of people who are not in people/.
    for f in std::fs::read_dir(faces().join("groups")).expect("groups") {
        let f = f.expect("entry").path();
        if f.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("compreface_")) {
            std::fs::copy(&f, strangers.path().join(f.file_name().expect("name"))).expect("copy");
        }
    }
    let plots = strangers.path().join("plots");
    let r = ok_json(&run_json(&[
        "evaluate",
        "--people",
        arg(&faces().join("people")),
        "--strangers",
        arg(strangers.path()),
        "--plots",
        arg(&plots),
    ]));
    // One filled (blue) cell per correctly identified person on the diagonal.
    assert!(coloured_pixels(&plots.join("confusion.png"), |[b, g, r]| b > 200 && g < 80 && r < 80) > 14 * 100);
    assert_eq!(r["probes"], 14, "one held-out photo per person with two usable photos");
    // Floors; measured 100 % top-1 and top-5, 0 of 37 strangers accepted.
    assert!(r["top1"].as_f64().expect("top1") >= 0.92, "{r}");
    assert_eq!(r["top5"].as_f64(), Some(1.0), "{r}");
    let labels = r["labels"].as_array().expect("labels");
    assert_eq!(labels.last().and_then(Value::as_str), Some("unknown"));
    let confusion = r["confusion"].as_array().expect("confusion");
    assert_eq!(confusion.len(), labels.len() - 1);
    let diagonal: u64 = confusion.iter().enumerate().map(|(i, row)| row[i].as_u64().expect("count")).sum();
    assert_eq!(diagonal as f64 / 14.0, r["identified_at_threshold"].as_f64().expect("rate"));
    let open = &r["open_set"];
    assert_eq!(open["faces"], 37);
    assert!(open["false_accept_rate"].as_f64().expect("far") <= 0.03, "{open}");

    // The same strangers against an enrolled gallery file.
    let g = strangers.path().join("g.db");
    ok_json(&run_json(&["--gallery", arg(&g), "enroll", arg(&faces().join("people"))]));
    let r = ok_json(&run_json(&["--gallery", arg(&g), "evaluate", "--strangers", arg(strangers.path())]));
    assert_eq!(r["faces"], 37, "{r}");
    assert!(r["false_accept_rate"].as_f64().expect("far") <= 0.03, "{r}");
}
