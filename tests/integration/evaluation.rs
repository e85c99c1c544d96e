//! The measuring jobs (`pairs`, `evaluate`, `calibrate`, `dedupe`, `gallery check`) called as library functions on
//! the real photos. Each report is checked as the JSON that `--json` prints (the same struct, serialised), so the
//! assertions read the fields users read; `cli.rs` runs the binary for its exit codes.

use std::path::Path;

use facewatch::dedupe::Thresholds;
use facewatch::eval::{pairs, read_pairs, LabelledPair};
use facewatch::gallery::Gallery;
use facewatch::jobs::dedupe::{dedupe, DedupeOptions};
use facewatch::jobs::enroll;
use facewatch::jobs::evaluate::identification;
use facewatch::jobs::evaluate::{self, PairOutputs};
use serde_json::Value;

use crate::common::{arg, config, engine, face, faces};

/// A report as the JSON `--json` prints.
fn json(report: impl serde::Serialize) -> Value {
    serde_json::to_value(report).expect("the report serialises")
}

/// A pair list, its photos relative to `dir` (the list's own folder unless given).
fn pair_list(file: &Path, dir: Option<&Path>) -> Vec<LabelledPair> {
    read_pairs(file, dir.unwrap_or_else(|| file.parent().expect("folder"))).unwrap_or_else(|e| panic!("{e}"))
}

/// `evaluate --pairs FILE [--roc-csv F] [--plots D]` with 10 folds.
fn evaluate_pairs(list: &[LabelledPair], roc_csv: Option<&Path>, plots: Option<&Path>) -> Value {
    let outputs = PairOutputs { folds: 10, roc_csv, plots };
    json(evaluate::pairs(&mut engine(), list, &outputs, &mut |_| {}).unwrap_or_else(|e| panic!("{e}")))
}

/// `dedupe DIR [--faces] [--move DEST]` with the default thresholds.
fn dedupe_json(dir: &Path, faces: bool, move_to: Option<&Path>) -> Value {
    let mut engine = faces.then(engine);
    let options = DedupeOptions { engine: engine.as_mut(), max_pixels: 40_000_000, thresholds: Thresholds::default(), move_to };
    json(dedupe(dir, options, &mut |_| {}).unwrap_or_else(|e| panic!("{e}")))
}

/// Enrolls `people` (a folder per person) into a new gallery at `path`.
fn enrolled(path: &Path, people: &Path) -> Gallery {
    let mut engine = engine();
    let info = engine.info().clone();
    let mut gallery = Gallery::open(path, &info.recognizer, info.dim, config().matcher.exact_search_max).expect("gallery");
    let listed = enroll::people(people).unwrap_or_else(|e| panic!("{e}"));
    let out = enroll::enroll(&mut engine, &mut gallery, listed, &mut |_| {}).unwrap_or_else(|e| panic!("{e}"));
    assert!(out.added > 0, "{out:?}");
    gallery
}

#[test]
fn deepface_pairs_evaluate_above_the_floor_with_cross_validation_and_roc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let roc = dir.path().join("roc.csv");
    let plots = dir.path().join("plots");
    let r = evaluate_pairs(&pair_list(&face("people/deepface_master.csv"), None), Some(&roc), Some(&plots));
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
    let generated = pairs::generate(&people, 10, 5, 3).unwrap_or_else(|e| panic!("{e}"));
    let same = generated.pairs.iter().filter(|p| p.same).count();
    assert_eq!((same, generated.pairs.len() - same), (50, 50));
    std::fs::write(&lfw, generated.to_lfw()).expect("write");
    std::fs::write(&csv, generated.to_csv(&people)).expect("write");
    std::fs::write(&lfw2, pairs::generate(&people, 10, 5, 3).expect("again").to_lfw()).expect("write");
    assert_eq!(std::fs::read(&lfw).expect("lfw"), std::fs::read(&lfw2).expect("lfw again"), "same seed, same file");
    let a = evaluate_pairs(&pair_list(&lfw, Some(&people)), None, None);
    let b = evaluate_pairs(&pair_list(&csv, Some(&people)), None, None);
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
    let list = pair_list(&face("people/deepface_master.csv"), None);
    let mut engine = engine();
    let (scored, failures) = evaluate::score_pairs(&mut engine, &list, &mut |_| {});
    assert!(failures.is_empty(), "{failures:?}");
    let from = (scored, "pairs deepface_master.csv".to_string(), engine.info().recognizer.clone());
    let r = json(evaluate::calibrate(from, 0.01, Some(&cfg)).unwrap_or_else(|e| panic!("{e}")));
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
    let loaded = facewatch::Config::load(&facewatch::config::Sources { file: Some(cfg.clone()), ..Default::default() });
    let loaded = loaded.unwrap_or_else(|e| panic!("{e}"));
    assert!(loaded.problems().is_empty(), "{:?}", loaded.problems());
    assert_eq!(loaded.matcher.threshold.map(|t| (f64::from(t.get()) - t_written(&cfg)).abs() < 1e-6), Some(true));
}

/// The threshold a calibrated file holds.
fn t_written(cfg: &Path) -> f64 {
    let written: toml::Table = toml::from_str(&std::fs::read_to_string(cfg).expect("read")).expect("toml");
    written["matcher"]["threshold"].as_float().expect("float")
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
                .map(|c| c["path"].as_str().expect("path").rsplit('/').next().expect("name").to_string())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn dedupe_finds_the_resized_obama_copies_and_with_faces_the_reframed_ones() {
    let dir = obama_copies();
    let photos = dir.path().join("photos");
    let r = dedupe_json(&photos, false, None);
    assert_eq!(r["groups"].as_array().map(Vec::len), Some(1));
    assert!(r["groups"][0]["keep"].as_str().is_some_and(|k| k.ends_with("obama-1080p.jpg")), "largest resolution kept: {r}");
    assert_eq!(copy_names(&r), ["obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg"]);

    let r = dedupe_json(&photos, true, None);
    assert_eq!(copy_names(&r), ["obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg", "obama.jpg", "obama_small.jpg"]);
    // obama2 and obama3 are other photos of the same man: not copies.
    assert_eq!(r["photos"], 8);
}

#[test]
fn dedupe_finds_no_false_groups_among_different_photos() {
    let r = dedupe_json(&faces().join("people"), true, None);
    assert_eq!(r["photos"], 65);
    assert_eq!(r["groups"].as_array().map(Vec::len), Some(0), "{r}");
}

#[test]
fn dedupe_move_moves_copies_out_and_deletes_nothing() {
    let dir = obama_copies();
    let (photos, out) = (dir.path().join("photos"), dir.path().join("copies"));
    let before = facewatch::folders::photos_under(&photos).expect("list").len();
    let r = dedupe_json(&photos, false, Some(&out));
    assert_eq!(r["moved"].as_array().map(Vec::len), Some(3));
    assert!(out.join("obama/obama-240p.jpg").is_file(), "relative path kept");
    assert!(photos.join("obama/obama-1080p.jpg").is_file(), "best copy stays");
    let left = facewatch::folders::photos_under(&photos).expect("list").len();
    let moved = facewatch::folders::photos_under(&out).expect("list").len();
    assert_eq!((left, moved), (before - 3, 3));
    // Running again finds nothing left to move.
    let again = dedupe_json(&photos, false, Some(&out));
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
    let gallery = enrolled(&dir.path().join("g.db"), &people);
    let threshold = engine().info().threshold;
    let r = json(gallery.check(threshold, threshold));
    let mislabels = r["mislabels"].as_array().expect("mislabels");
    assert_eq!(mislabels.len(), 1, "{r}");
    let m = &mislabels[0];
    assert!(m["path"].as_str().is_some_and(|p| p.ends_with("id05/misfiled.jpg")), "{m}");
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
    let (people, exact) = (faces().join("people"), config().matcher.exact_search_max);
    let report = identification::identification(&mut engine(), exact, &people, 1, Some(strangers.path()), Some(&plots), &mut |_| {});
    let r = json(report.unwrap_or_else(|e| panic!("{e}")));
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
    let gallery = enrolled(&strangers.path().join("g.db"), &people);
    let mut engine = engine();
    let threshold = engine.info().threshold;
    let r = json(identification::open_set(&mut engine, &gallery, strangers.path(), threshold).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(r["faces"], 37, "{r}");
    assert!(r["false_accept_rate"].as_f64().expect("far") <= 0.03, "{r}");
}

#[test]
fn enroll_checks_every_folder_first_and_reports_all_it_skips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let people = dir.path().join("people");
    for (person, files) in [("ann", &["obama.jpg", "notes.txt"][..]), ("unknown", &["obama2.jpg"][..])] {
        std::fs::create_dir_all(people.join(person)).expect("dir");
        for f in files {
            let from = face(&format!("people/obama/{f}"));
            let to = people.join(person).join(f);
            if from.is_file() {
                std::fs::copy(&from, &to).expect("copy");
            } else {
                std::fs::write(&to, "a note, not a photo").expect("write");
            }
        }
    }
    // A folder that cannot be a person's name stops the run before anything is written, naming it.
    let err = enroll::people(&people).expect_err("`unknown` is not a name");
    assert!(err.to_string().contains("unknown") && err.to_string().contains("nothing enrolled"), "{err}");
    std::fs::remove_dir_all(people.join("unknown")).expect("rm");
    // The same photo filed under a second person is reported, not enrolled twice; a text file is reported too.
    std::fs::create_dir_all(people.join("bob")).expect("dir");
    std::fs::copy(face("people/obama/obama.jpg"), people.join("bob/copy.jpg")).expect("copy");
    let mut engine = engine();
    let info = engine.info().clone();
    let path = dir.path().join("g.db");
    let mut gallery = Gallery::open(&path, &info.recognizer, info.dim, 1000).expect("gallery");
    let out = enroll::enroll(&mut engine, &mut gallery, enroll::people(&people).expect("people"), &mut |_| {}).expect("enroll");
    let r = json(&out);
    assert_eq!(r["added"], 1, "{r}");
    let skipped: Vec<String> = out.persons.iter().flat_map(|p| p.skipped.iter().map(|s| s.reason.clone())).collect();
    assert!(skipped.iter().any(|s| s.contains("not a photo")), "{skipped:?}");
    assert!(skipped.iter().any(|s| s.contains("already enrolled as ann")), "{skipped:?}");
    // Another process enrols meanwhile: a second run counts what the file holds, and skips ann's photo by its hash.
    let mut other = Gallery::open(&path, &info.recognizer, info.dim, 1000).expect("second connection");
    let carl = facewatch::jobs::enroll::embed_photo(
        &mut engine,
        &face("people/biden/biden.jpg"),
        &std::fs::read(face("people/biden/biden.jpg")).expect("read"),
        "carl-hash".into(),
    )
    .expect("embed");
    other.enroll("carl", &[carl]).expect("enroll carl");
    let again = enroll::enroll(&mut engine, &mut gallery, enroll::people(&people).expect("people"), &mut |_| {}).expect("again");
    assert_eq!((again.added, again.gallery_embeddings), (0, 2), "{again:?}");
    assert_eq!(again.persons.iter().find(|p| p.name == "ann").map(|p| p.already_enrolled), Some(1));
}
