//! The peer baseline (`benches/peers.py`) and the benchmark clips (`benches/clips.py`) run from a fresh clone, with
//! the pinned Python packages set-up installs in `.facewatch/peers`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::common::{arg, clip, root};

fn peers_python() -> PathBuf {
    let python = root().join(".facewatch/peers/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/setup.sh (it installs the peer baseline's pinned OpenCV and ONNX Runtime)",
        python.display()
    );
    python
}

#[test]
fn the_peer_baseline_runs_facewatch_and_both_peer_loops_on_the_same_frames() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("peers.json");
    let gallery = dir.path().join("gallery.db");
    let out = Command::new(peers_python())
        .current_dir(root())
        .args(["benches/peers.py", "--facewatch", env!("CARGO_BIN_EXE_facewatch"), "--frames", "30"])
        .args(["--set", &format!("gallery.path={}", gallery.display()), "--json", arg(&json), arg(&clip())])
        .output()
        .expect("run benches/peers.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("short_hamilton_clip.mp4") && stdout.contains('×'), "a table row with ratios:\n{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    let r = &report["results"][0];
    for contender in ["facewatch", "opencv", "python_ort"] {
        assert_eq!(r[contender]["frames"], 30, "{contender} ran the 30 frames: {r}");
        assert!(r[contender]["fps"].as_f64() > Some(0.0), "{contender}: {r}");
    }
    // The same clip and detector: facewatch and OpenCV's loop find about the same faces (the first 30 frames hold
    // about 80), and both peers embed every face they find.
    let (fw, cv) = (r["facewatch"]["faces"].as_f64().unwrap_or(0.0), r["opencv"]["faces"].as_f64().unwrap_or(0.0));
    assert!(cv > 40.0 && (fw - cv).abs() <= 0.15 * cv, "faces: facewatch {fw}, opencv {cv}");
    assert_eq!(r["opencv"]["faces"], r["python_ort"]["faces"], "{r}");
    assert!(r["facewatch"]["bare_fps"].as_f64() > Some(0.0), "the bare-model baseline ran: {r}");
    let every = &r["facewatch_every_face"];
    assert_eq!(every["embedded"], every["faces"], "track.embed_every = 1 embeds every face, the peers' work: {r}");
    assert!(r["facewatch"]["embedded"].as_f64() < every["embedded"].as_f64(), "the tracker skips most embeddings: {r}");
}

#[test]
fn the_benchmark_clips_are_composed_from_the_pinned_footage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(peers_python())
        .current_dir(root())
        .args(["benches/clips.py", "--out", arg(dir.path())])
        .output()
        .expect("run benches/clips.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let probe = "import cv2, sys\nfor p in sys.argv[1:]:\n    c = cv2.VideoCapture(p)\n    \
                 print(int(c.get(3)), int(c.get(4)), int(c.get(7)))";
    let names = ["webcam_640x480_1face", "webcam_640x480_4faces", "webcam_640x480_8faces", "mosaic_1920x1080"];
    let paths: Vec<String> = names.iter().map(|n| dir.path().join(format!("{n}.avi")).display().to_string()).collect();
    let sizes = Command::new(peers_python()).args(["-c", probe]).args(&paths).output().expect("probe");
    let sizes = String::from_utf8_lossy(&sizes.stdout).to_string();
    assert_eq!(sizes, "640 480 300\n640 480 300\n640 480 300\n1920 1080 300\n", "sizes and frame counts");
    // Faces: the detector finds one per cell (allowing a few missed frames), and on the 1080p crowd detection at
    // the frame's own size finds the small faces that a 640-wide input loses.
    let gallery = dir.path().join("gallery.db");
    let faces = |clip: &str, setting: &str| -> f64 {
        let setting = if setting.contains('=') { setting.to_string() } else { format!("detect.input_size={setting}") };
        let out = crate::common::run_json(&[
            "--gallery",
            arg(&gallery),
            "--set",
            &setting,
            "bench",
            &dir.path().join(format!("{clip}.avi")).display().to_string(),
            "--frames",
            "10",
            "--no-baseline",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).expect("bench json");
        v["pipeline"]["faces"].as_f64().unwrap_or(0.0) / 10.0
    };
    let four = faces("webcam_640x480_4faces", "640");
    assert!((3.5..=4.0).contains(&four), "4 faces per frame, found {four}");
    let (scaled, native) = (faces("mosaic_1920x1080", "640"), faces("mosaic_1920x1080", "0"));
    assert!((24.0..=26.0).contains(&native), "26 faces per 1080p frame at native size, found {native}");
    assert!(scaled < native - 4.0, "640 wide loses the smallest faces: {scaled} vs {native}");
    // Full scans every 5 frames with regions around the small faces in between find them again (10 frames: two
    // full scans, eight frames of regions), without counting a face twice.
    let regions = faces("mosaic_1920x1080", "detect.full_scan_every=5");
    assert!(regions >= 0.95 * native && regions <= 26.0, "regions around small faces: {regions} per frame vs {native} native");
}

#[test]
fn a_cameras_detector_is_ready_for_its_frame_size_before_the_first_frame() {
    use facewatch::capture::{FrameSource, VideoSource};
    use facewatch::detect::{Detector, OnnxDetector};
    use facewatch::model::{Manifest, Runtime};
    use facewatch::paths::resolve_path;

    let cfg = crate::common::config();
    let manifest = Manifest::load(&resolve_path(&cfg.models.manifest)).unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh)"));
    let (spec, model) = manifest.installed_detector(&cfg.models.detector, &resolve_path(&cfg.models.dir)).unwrap_or_else(|e| panic!("{e}"));
    let runtime = Runtime::new(&cfg.runtime).unwrap_or_else(|e| panic!("{e}"));
    let mut detector = OnnxDetector::build(&runtime, spec, &model, &cfg.detect).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(detector.input_sizes(), vec![(640, 640)], "loaded with the model's own input size");

    let mut capture = cfg.capture.clone();
    capture.source = clip().display().to_string();
    capture.realtime = false;
    let mut source = VideoSource::open(&capture).unwrap_or_else(|e| panic!("{e}"));
    // The sample clip is 640×360: its frames are detected at 640×384 (the aspect kept, rounded up to 32).
    let (w, h) = source.frame_size().expect("an opened file says its frame size");
    assert_eq!((w, h), (640, 360));
    detector.prepare(w, h).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(detector.input_sizes(), vec![(640, 384), (640, 640)], "prepared: the frame size's session made before any frame");

    let frame = source.read().unwrap_or_else(|e| panic!("{e}")).expect("the clip has a first frame");
    assert!(!detector.detect(&frame).unwrap_or_else(|e| panic!("{e}")).is_empty(), "the clip's first frame has faces");
    assert_eq!(detector.input_sizes(), vec![(640, 384), (640, 640)], "the first frame made no session of its own");
}

#[test]
fn a_file_paced_at_its_frame_rate_starts_its_clock_at_the_first_frame_not_at_the_open() {
    use facewatch::capture::{FrameSource, VideoSource};

    let mut capture = crate::common::config().capture;
    capture.source = clip().display().to_string();
    capture.realtime = true;
    let mut source = VideoSource::open(&capture).unwrap_or_else(|e| panic!("{e}"));
    let period = 1.0 / source.fps();
    // The pipeline takes a while to start after the source is opened (models, warm-up): that time must not come
    // out as a burst of frames read at once, each late by the time they waited.
    std::thread::sleep(std::time::Duration::from_secs_f64(10.0 * period));
    // The clock starts inside the first read, so the sixth frame is due five periods after this instant at least.
    let first = std::time::Instant::now();
    for _ in 0..6 {
        source.read().unwrap_or_else(|e| panic!("{e}")).expect("six frames");
    }
    let took = first.elapsed().as_secs_f64();
    assert!(took >= 5.0 * period - 0.001, "six frames came in {took:.3} s, not at the clip's {:.1} fps", 1.0 / period);
}

#[test]
fn the_daemon_prepares_each_cameras_detectors_for_its_frame_size_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let gallery = dir.path().join("gallery.db");
    let out = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .env("RUST_LOG", "facewatch=debug,ort=warn")
        .args(["--gallery", arg(&gallery), "run", "--source", arg(&clip()), "--fast", "--socket", "", "--max-frames", "2"])
        .output()
        .expect("run facewatch");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let ready =
        log.lines().find(|l| l.contains("Detectors ready for the frame size")).unwrap_or_else(|| panic!("no warm-up logged:\n{log}"));
    assert!(ready.contains("width=640") && ready.contains("height=360"), "{ready}");
}
