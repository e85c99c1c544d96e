//! Naming people on real video: `facewatch evaluate --video` on the sample clip against its committed ground
//! truth (`tests/data/hamilton_truth.csv`, annotated by looking at the frames), through the binary and the real
//! pipeline. The floors hold the measured figures of the default pack with a small allowance (BENCHMARKS.md,
//! "Naming people on video"); the costliest error, a known name on someone else, must not happen at all.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::common::{arg, clip, clip_frames, face, faces, gallery_with, root, run_json};

fn truth() -> PathBuf {
    root().join("tests/data/hamilton_truth.csv")
}

/// Everyone the tests know: the two people of the clip's reference photos, Obama, and the 14 other sample people
/// as distractors (17 in all).
fn everyone(dir: &Path, flags: &[&str]) -> PathBuf {
    let mut people: Vec<(String, Vec<PathBuf>)> = vec![
        ("lin-manuel-miranda".into(), vec![face("video/lin-manuel-miranda.png")]),
        ("alex-lacamoire".into(), vec![face("video/alex-lacamoire.png")]),
    ];
    let mut dirs: Vec<PathBuf> =
        std::fs::read_dir(faces().join("people")).expect("people").filter_map(Result::ok).map(|e| e.path()).collect();
    dirs.sort();
    for d in dirs.into_iter().filter(|d| d.is_dir()) {
        let mut photos: Vec<PathBuf> = std::fs::read_dir(&d).expect("person").filter_map(Result::ok).map(|e| e.path()).collect();
        photos.sort();
        people.push((d.file_name().expect("name").to_string_lossy().into(), photos));
    }
    let refs: Vec<(&str, &[PathBuf])> = people.iter().map(|(n, p)| (n.as_str(), p.as_slice())).collect();
    gallery_with(dir, &refs, flags)
}

/// `facewatch --json [flags] --gallery DB evaluate --video CLIP --truth FILE [extra]`.
fn evaluate(db: &Path, flags: &[&str], extra: &[&str]) -> Value {
    let clip = clip();
    let truth = truth();
    let mut args = vec!["--gallery", arg(db)];
    args.extend_from_slice(flags);
    args.extend(["evaluate", "--video", arg(&clip), "--truth", arg(&truth)]);
    args.extend_from_slice(extra);
    let out = run_json(&args);
    assert!(out.status.success(), "evaluate --video failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// The segments of `name` (empty: strangers).
fn segments<'a>(report: &'a Value, name: &str) -> Vec<&'a Value> {
    report["segments"].as_array().expect("segments").iter().filter(|s| s["name"] == name).collect()
}

/// Named frames over scored frames, pooled over a person's segments.
fn named_share(report: &Value, name: &str) -> f64 {
    let segs = segments(report, name);
    assert!(!segs.is_empty(), "no truth segment for {name}");
    let sum = |k: &str| segs.iter().map(|s| s[k].as_u64().expect("count")).sum::<u64>();
    let (named, scored) = (sum("named_frames"), sum("scored_frames"));
    assert!(scored > 0, "{name}: no scored frames: {segs:?}");
    named as f64 / scored as f64
}

#[test]
fn the_default_pack_names_everyone_on_the_sample_clip_and_never_the_wrong_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = everyone(dir.path(), &[]);
    let plots = dir.path().join("plots");
    let report = evaluate(&db, &[], &["--plots", arg(&plots)]);
    eprintln!("{}", serde_json::to_string_pretty(&report["segments"]).unwrap_or_default());
    assert_eq!(report["overall"]["wrong_name_frames"], 0, "a known name on someone else: {report:#}");
    let (lin, alex, obama) =
        (named_share(&report, "lin-manuel-miranda"), named_share(&report, "alex-lacamoire"), named_share(&report, "obama"));
    eprintln!("named share: miranda {lin:.3}, lacamoire {alex:.3}, obama {obama:.3}");
    assert!(lin >= FLOOR_MIRANDA, "Miranda named on {lin:.3} of his frames, floor {FLOOR_MIRANDA}");
    assert!(alex >= FLOOR_PIANIST, "the pianist named on {alex:.3} of his frames, floor {FLOOR_PIANIST}");
    assert!(obama >= FLOOR_OBAMA, "Obama named on {obama:.3} of the frames where his face is detected, floor {FLOOR_OBAMA}");
    let png = plots.join("timeline.png");
    assert!(std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000), "timeline written: {}", png.display());
}

/// Floors: the default pack's measured shares less an allowance (BENCHMARKS.md): Miranda 119/119, Obama 49/49
/// where his face is detected, the pianist 18/36 (a profile for most of his close-up).
const FLOOR_MIRANDA: f64 = 0.95;
const FLOOR_PIANIST: f64 = 0.4;
const FLOOR_OBAMA: f64 = 0.95;

#[test]
fn the_committed_baseline_report_shows_no_segment_got_worse() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = everyone(dir.path(), &[]);
    let base = root().join("tests/data/hamilton_baseline.json");
    let report = evaluate(&db, &[], &["--baseline", arg(&base)]);
    let diff = report["baseline"].as_array().expect("baseline comparison");
    assert_eq!(diff.len(), report["segments"].as_array().expect("segments").len(), "every segment compared: {diff:?}");
    let worse: Vec<&Value> = diff.iter().filter(|d| d["verdict"] == "worse" || d["verdict"] == "changed").collect();
    assert!(worse.is_empty(), "segments that got worse than tests/data/hamilton_baseline.json: {worse:#?}");
}

#[test]
fn with_only_the_pianist_enrolled_his_name_stays_on_him() {
    // The old premise ("Lacamoire is not in the clip") was wrong: he plays the piano in frames 20-81. With only him
    // enrolled, his name must appear on his frames and nowhere else.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery_with(dir.path(), &[("alex-lacamoire", &[face("video/alex-lacamoire.png")])], &[]);
    let report = evaluate(&db, &[], &[]);
    assert_eq!(report["overall"]["wrong_name_frames"], 0, "his name on someone else: {report:#}");
    let alex = named_share(&report, "alex-lacamoire");
    assert!(alex >= FLOOR_PIANIST, "the pianist named on {alex:.3} of his frames, floor {FLOOR_PIANIST}");
}

#[test]
fn the_licence_clean_pack_never_names_the_wrong_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flags = ["--set", "models.pack=open"];
    let db = everyone(dir.path(), &flags);
    let report = evaluate(&db, &flags, &[]);
    assert!(report["models"].as_str().is_some_and(|m| m.contains("sface_int8")), "{}", report["models"]);
    assert_eq!(report["overall"]["wrong_name_frames"], 0, "a known name on someone else: {report:#}");
    let lin = named_share(&report, "lin-manuel-miranda");
    assert!(lin >= FLOOR_OPEN_MIRANDA, "Miranda named on {lin:.3} of his frames, floor {FLOOR_OPEN_MIRANDA}");
}

/// Measured 119/119 with the `open` pack.
const FLOOR_OPEN_MIRANDA: f64 = 0.95;

#[test]
fn hard_cuts_between_two_enrolled_men_never_carry_a_name_across() {
    // Miranda's close-up and the audience with Obama, cut together twice: A B A B, 30 frames each, no transition.
    let dir = tempfile::tempdir().expect("tempdir");
    let (pattern, n) = clip_frames(&dir.path().join("frames"), "png", &[(120, 149), (215, 244), (150, 179), (245, 274)]);
    assert_eq!(n, 120);
    let truth = dir.path().join("truth.csv");
    std::fs::write(&truth, "first,last,name\n0,29,lin-manuel-miranda\n30,59,obama\n60,89,lin-manuel-miranda\n90,119,obama\n")
        .expect("truth");
    let db = everyone(dir.path(), &[]);
    let out = run_json(&["--gallery", arg(&db), "evaluate", "--video", arg(&pattern), "--truth", arg(&truth)]);
    assert!(out.status.success(), "evaluate failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["frames"], 120);
    // Each man's name appears on his own shots only, from its first frames.
    assert_eq!(report["overall"]["wrong_name_frames"], 0, "a name survived a cut onto the other man: {report:#}");
    for s in report["segments"].as_array().expect("segments") {
        let first = s["first_named_s"].as_f64().unwrap_or(f64::INFINITY);
        assert!(first <= 0.2, "{} named {first} s after the cut at frame {}", s["name"], s["first"]);
        assert!(s["named_share"].as_f64().is_some_and(|v| v >= 0.95), "{s}");
    }
}
