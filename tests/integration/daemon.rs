//! The daemon end to end, through the binary: a real video, real models, a real gallery and a real Unix socket.
//!
//! The clip (`video/short_hamilton_clip.mp4`, 275 frames at 29.97 fps) shows Lin-Manuel Miranda on stage, Alex
//! Lacamoire at the piano, Miranda again, then the audience (ground truth: `tests/data/hamilton_truth.csv`; the
//! naming is scored in `video.rs`). His reference photo is `video/lin-manuel-miranda.png`.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{arg, clip, clip_frames, face, gallery, root, run_json};

/// Starts `facewatch run` with events on stdout (`--print`) and on `socket`.
fn daemon(gallery: &Path, socket: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--gallery", arg(gallery), "--set", "runtime.intra_threads=1", "run", "--print", "--socket", arg(socket)])
        .args(args)
        .env("RUST_LOG", "info,ort=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start facewatch run")
}

/// Waits for the daemon to exit (killing it after `limit`); returns its exit code, events and log.
fn finish(mut child: Child, limit: Duration) -> (Option<i32>, Vec<Value>, String) {
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let events: Vec<Value> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("event is not JSON ({e}): {l}")))
        .collect();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("facewatch run did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), events, err.join().unwrap_or_default())
}

/// Waits until the daemon has bound its socket (everything is built by then).
fn wait_for_socket(socket: &Path) {
    let start = Instant::now();
    while !socket.exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "the daemon never opened its socket at {}", socket.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM to the daemon, as systemd's stop does.
fn sigterm(pid: u32) {
    // SAFETY: signalling our own child process, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0, "kill -TERM {pid}");
}

/// Connects to the socket as soon as it exists and reads every line until the daemon closes it.
fn subscriber(socket: &Path) -> std::thread::JoinHandle<Vec<Value>> {
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        let start = Instant::now();
        let stream = loop {
            if let Ok(s) = UnixStream::connect(&socket) {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "the daemon never opened its socket");
            std::thread::sleep(Duration::from_millis(10));
        };
        BufReader::new(stream).lines().map_while(Result::ok).map(|l| serde_json::from_str(&l).expect("JSON line")).collect()
    })
}

fn of_type<'a>(events: &'a [Value], t: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == t).collect()
}

#[test]
fn the_daemon_names_the_enrolled_face_in_the_video_and_serves_it_on_the_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let obama: Vec<PathBuf> = ["obama.jpg", "obama2.jpg"].iter().map(|f| face(&format!("people/obama/{f}"))).collect();
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")]), ("obama", &obama)]);
    let socket = dir.path().join("run/events.sock");
    let child = daemon(&db, &socket, &["--source", arg(&clip()), "--fast", "--camera", "stage"]);
    let sub = subscriber(&socket);
    let (code, events, log) = finish(child, Duration::from_secs(240));
    assert_eq!(code, Some(0), "{log}");
    let named: Vec<&Value> = events.iter().filter(|e| e["known"] == true).collect();
    let lin = named.iter().find(|e| e["name"] == "lin" && matches!(e["type"].as_str(), Some("track_started" | "identity_changed")));
    let lin = lin.unwrap_or_else(|| panic!("no event named lin; known events: {named:?}\n{log}"));
    assert!(lin["frame_seq"].as_u64().expect("seq") < 211, "lin is on stage in the first 210 frames: {lin}");
    assert!(lin["score"].as_f64().expect("score") >= lin["threshold"].as_f64().expect("threshold"), "{lin}");
    assert_eq!(lin["camera"], "stage");
    assert_eq!(lin["v"], 1);
    assert!(lin["candidates"][0]["name"] == "lin" && lin["bbox"].as_array().is_some_and(|b| b.len() == 4), "{lin}");
    assert!(lin["emit_ts"].as_f64() >= lin["frame_ts"].as_f64(), "emitted after the frame was captured: {lin}");
    // Every track that started also ends (input over), and no name other than the enrolled ones appears.
    assert_eq!(of_type(&events, "track_started").len(), of_type(&events, "track_ended").len());
    assert!(named.iter().all(|e| e["name"] == "lin" || e["name"] == "obama"), "{named:?}");
    // The socket served the same stream: hello first, then events, closed cleanly at the end.
    let lines = sub.join().expect("subscriber");
    assert_eq!(lines.first().map(|e| e["type"].clone()), Some(Value::from("hello")), "{lines:?}");
    assert!(lines.iter().any(|e| e["type"] == "track_ended"), "socket subscriber saw the tracks end");
    assert!(!socket.exists(), "the socket is removed at exit");
}

#[test]
fn sigterm_mid_stream_drains_and_exits_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let socket = dir.path().join("events.sock");
    // Real-time pacing and looping: the clip would play forever.
    let child = daemon(&db, &socket, &["--source", arg(&clip()), "--loop"]);
    let pid = child.id();
    wait_for_socket(&socket);
    std::thread::sleep(Duration::from_millis(1500));
    sigterm(pid);
    let signalled = Instant::now();
    let (code, events, log) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    assert!(signalled.elapsed() < Duration::from_secs(6), "drained within the 5 s deadline: {:?}", signalled.elapsed());
    assert!(log.contains("Signal received"), "{log}");
    let ended = of_type(&events, "track_ended");
    assert!(ended.iter().any(|e| e["reason"] == "input_ended"), "live tracks end at shutdown: {events:?}");
    assert!(!socket.exists());
}

#[test]
fn sigquit_is_a_stop_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let socket = dir.path().join("events.sock");
    let child = daemon(&db, &socket, &["--source", arg(&clip()), "--loop"]);
    wait_for_socket(&socket);
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child process, which has not been waited for yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGQUIT) }, 0);
    let (code, events, log) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "{log}");
    assert!(of_type(&events, "track_ended").iter().any(|e| e["reason"] == "input_ended"), "{events:?}");
    assert!(!socket.exists(), "the socket is removed");
}

#[test]
fn a_source_that_disappears_is_reported_retried_and_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    // An image sequence (20 frames of the clip) that the test can take away and bring back.
    let frames = dir.path().join("frames");
    let (pattern, _) = clip_frames(&frames, "jpg", &[(0, 19)]);
    let hidden = dir.path().join("hidden");
    let socket = dir.path().join("events.sock");
    let child = daemon(
        &db,
        &socket,
        &[
            "--source",
            arg(&pattern),
            "--loop",
            "--fast",
            "--set",
            "capture.reconnect_initial_ms=100",
            "--set",
            "capture.reconnect_max_ms=400",
        ],
    );
    let sub = subscriber(&socket);
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(300));
    wait_for_socket(&socket);
    // Give the subscriber time to connect on a loaded machine before the loss it must be told about.
    std::thread::sleep(Duration::from_millis(1000));
    std::fs::rename(&frames, &hidden).expect("take the frames away");
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::rename(&hidden, &frames).expect("bring them back");
    std::thread::sleep(Duration::from_millis(1500));
    sigterm(pid);
    let (code, events, log) = finish(child, Duration::from_secs(30));
    assert_eq!(code, Some(0), "the daemon stayed up through the loss: {log}");
    let lost = events.iter().position(|e| e["type"] == "source_lost").unwrap_or_else(|| panic!("no source_lost: {log}"));
    let restored = events.iter().position(|e| e["type"] == "source_restored").unwrap_or_else(|| panic!("no source_restored: {log}"));
    assert!(lost < restored);
    // Retries back off while the frames are away (how long depends on when capture noticed).
    assert!(events[restored]["attempts"].as_u64() >= Some(1), "{}", events[restored]);
    assert!(events[restored]["down_s"].as_f64() > Some(0.05), "{}", events[restored]);
    assert!(events[restored + 1..].iter().any(|e| e["type"] == "track_started" || e["type"] == "track_ended"), "frames flowed again");
    let on_socket = sub.join().expect("subscriber");
    assert!(on_socket.iter().any(|e| e["type"] == "source_lost"), "subscribers are told too: {on_socket:?}");
}

#[test]
fn two_cameras_share_the_outputs_and_a_camera_away_at_start_or_lost_is_retried_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    // "door": an image sequence that is away when the daemon starts, comes, goes and comes back; "stage": the clip,
    // looping at its own rate, with a threshold of its own that nobody reaches.
    let frames = dir.path().join("frames");
    let (pattern, _) = clip_frames(&frames, "jpg", &[(0, 19)]);
    let hidden = dir.path().join("hidden");
    std::fs::rename(&frames, &hidden).expect("door is away at start");
    let config = dir.path().join("cameras.toml");
    std::fs::write(
        &config,
        format!(
            "[capture]\nreconnect_initial_ms = 100\nreconnect_max_ms = 400\nloop = true\n\n\
             [[cameras]]\nname = \"door\"\nsource = \"{}\"\nrealtime = false\n\n\
             [[cameras]]\nname = \"stage\"\nsource = \"{}\"\nthreshold = 0.99\n",
            pattern.display(),
            clip().display()
        ),
    )
    .expect("write the configuration");
    let socket = dir.path().join("events.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--gallery", arg(&db), "--config", arg(&config), "--set", "runtime.intra_threads=1"])
        .args(["--set", "publish.update_interval_ms=200", "run", "--print", "--socket", arg(&socket)])
        .env("RUST_LOG", "info,ort=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start facewatch run");
    let sub = subscriber(&socket);
    let pid = child.id();
    wait_for_socket(&socket);
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::rename(&hidden, &frames).expect("door comes");
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::rename(&frames, &hidden).expect("door goes");
    std::thread::sleep(Duration::from_millis(2500));
    std::fs::rename(&hidden, &frames).expect("door comes back");
    std::thread::sleep(Duration::from_millis(2500));
    sigterm(pid);
    let (code, events, log) = finish(child, Duration::from_secs(60));
    assert_eq!(code, Some(0), "the daemon stayed up through the loss: {log}");
    let of = |camera: &str| events.iter().filter(|e| e["camera"] == camera).collect::<Vec<_>>();
    let (door, stage) = (of("door"), of("stage"));
    assert_eq!(door.len() + stage.len(), events.len(), "every event names one of the two cameras");
    // Door could not be opened at start, came, was lost and came back: told twice each way. Stage never was lost,
    // and kept publishing while door was away.
    let at = |t: &str| door.iter().filter(|e| e["type"] == t).filter_map(|e| e["emit_ts"].as_f64()).collect::<Vec<_>>();
    let (lost, restored) = (at("source_lost"), at("source_restored"));
    assert_eq!((lost.len(), restored.len()), (2, 2), "door: {door:?}\n{log}");
    assert!(lost[0] < restored[0] && restored[0] < lost[1] && lost[1] < restored[1], "{door:?}");
    assert!(!stage.iter().any(|e| e["type"] == "source_lost"), "stage was never lost");
    for (from, to) in lost.iter().zip(&restored) {
        let meanwhile = stage.iter().filter(|e| e["emit_ts"].as_f64().is_some_and(|t| t > *from && t < *to)).count();
        assert!(meanwhile > 0, "stage kept running while door was retried ({from}..{to}): {stage:?}");
    }
    assert!(door.iter().any(|e| e["type"] == "track_started" && e["emit_ts"].as_f64() > Some(restored[1])), "door's frames flowed again");
    // Each camera decides with its own threshold: lin is named on door, never on stage.
    let decisions = |evs: &[&Value]| {
        evs.iter().filter(|e| e["type"] == "track_started").map(|e| (e["threshold"].as_f64(), e["known"] == true)).collect::<Vec<_>>()
    };
    assert!(decisions(&door).iter().any(|(_, known)| *known), "lin is named on door: {door:?}");
    assert!(decisions(&stage).iter().all(|(t, known)| !known && t.is_some_and(|t| (t - 0.99).abs() < 1e-6)), "{stage:?}");
    assert!(!decisions(&stage).is_empty(), "stage saw faces");
    // One socket carries both cameras; each camera's stages ran on their own threads.
    let on_socket = sub.join().expect("subscriber");
    assert!(on_socket.iter().any(|e| e["camera"] == "door") && on_socket.iter().any(|e| e["camera"] == "stage"));
    assert_eq!(log.matches("Camera built.").count(), 2, "{log}");
    assert!(log.contains("Cannot open this camera now"), "{log}");
}

#[test]
fn a_stalled_subscriber_loses_its_own_events_and_does_not_slow_the_pipeline() {
    let bench = |stalled: &str| -> Value {
        let out = run_json(&[
            "--set",
            "publish.update_interval_ms=1",
            "--set",
            "publish.subscriber_queue=64",
            "--set",
            "runtime.intra_threads=1",
            "bench",
            arg(&clip()),
            "--no-baseline",
            "--stalled-subscribers",
            stalled,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("bench JSON")
    };
    let base = bench("0");
    let stalled = bench("3");
    let fps = |r: &Value| r["pipeline"]["fps"].as_f64().expect("fps");
    let events = stalled["pipeline"]["events"].as_u64().expect("events");
    eprintln!(
        "slow subscriber: {:.1} fps without, {:.1} fps with 3 stalled subscribers; {} events, {} dropped for the stalled ones",
        fps(&base),
        fps(&stalled),
        events,
        stalled["subscribers"]["dropped_for_stalled"]
    );
    assert_eq!(base["pipeline"]["frames"], 275);
    assert_eq!(stalled["pipeline"]["frames"], 275, "every frame went through");
    assert!(stalled["subscribers"]["dropped_for_stalled"].as_u64() > Some(0), "the stalled subscribers really fell behind: {stalled}");
    assert_eq!(stalled["subscribers"]["reader_told_dropped"], 0, "the subscriber that reads lost nothing");
    assert!(stalled["subscribers"]["reader_lines"].as_u64() > Some(events), "the reader got hello and every event");
    assert!(fps(&stalled) > 0.6 * fps(&base), "throughput held: {:.1} vs {:.1} fps", fps(&stalled), fps(&base));
}

#[test]
fn bad_daemon_configuration_is_refused_with_every_key_path_before_anything_starts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--json", "--set", "capture.pixel_format=h264", "--set", "track.iou_threshold=1.5", "check-config"])
        .env("FACEWATCH_PUBLISH__SUBSCRIBER_QUEUE", "0")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    for key in ["capture.pixel_format", "track.iou_threshold", "publish.subscriber_queue"] {
        assert!(text.contains(key), "{key} not reported: {text}");
    }
    // A source that cannot be opened: exit 3 naming it, and no socket left behind.
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("events.sock");
    let missing = dir.path().join("nope.mp4");
    let out = run_json(&["--gallery", arg(&dir.path().join("g.db")), "run", "--source", arg(&missing), "--socket", arg(&socket)]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.mp4"));
    assert!(!socket.exists());
    // A V4L2 camera that is not there (nokhwa's open runs and fails): the same, naming the device.
    let out = run_json(&["--gallery", arg(&dir.path().join("g.db")), "run", "--source", "7", "--socket", arg(&socket)]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed to open /dev/video7"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!socket.exists());
    // A socket another process serves: exit 6 (not a configuration error), and that socket left alone.
    let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    let out = run_json(&["--gallery", arg(&dir.path().join("g.db")), "run", "--source", arg(&clip()), "--socket", arg(&socket)]);
    assert_eq!(out.status.code(), Some(6), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already serving"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(socket.exists());
    drop(listener);
    // Enroll given a file instead of a folder: an input error, not an internal one.
    let out = run_json(&["--gallery", arg(&dir.path().join("g.db")), "enroll", arg(&clip())]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn under_the_journal_log_lines_carry_their_priority_and_no_timestamp_of_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--gallery", arg(&dir.path().join("g.db")), "run", "--source", arg(&dir.path().join("gone.mp4")), "--socket", ""])
        .env("JOURNAL_STREAM", "8:12345")
        .env_remove("RUST_LOG")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.iter().any(|l| l.starts_with("<6>")), "info lines at priority 6:\n{stderr}");
    assert!(lines.last().is_some_and(|l| l.starts_with("<3>error: ") && l.contains("gone.mp4")), "the error at priority 3:\n{stderr}");
    // OpenCV's own lines are not ours; every line facewatch writes has a priority and starts without a date.
    for l in lines.iter().filter(|l| l.starts_with('<')) {
        assert!(!l[3..].starts_with("20"), "a timestamp of our own: {l}");
    }
}

#[test]
fn the_systemd_unit_checks_the_configuration_it_runs() {
    let unit = std::fs::read_to_string(root().join("systemd/facewatch.service")).expect("unit file");
    let value = |key: &str| unit.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("{key} missing from the unit"));
    let (pre, start) = (value("ExecStartPre="), value("ExecStart="));
    assert!(pre.ends_with("check-config") && start.ends_with(" run"), "{pre} / {start}");
    assert_eq!(pre.trim_end_matches("check-config"), start.trim_end_matches("run"), "both use the same configuration");
    for directive in [
        "Type=notify",
        "WatchdogSec=30s",
        "User=facewatch",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/facewatch /run/facewatch",
        "DeviceAllow=char-video4linux rw",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "LimitNOFILE=65536",
        "ProtectProc=invisible",
        "ProcSubset=pid",
        "SystemCallFilter=@system-service",
        "SystemCallErrorNumber=EPERM",
    ] {
        assert!(unit.lines().any(|l| l == directive), "{directive} missing");
    }
    // The example /etc/facewatch/config.toml parses, chooses the licence-clean pack and passes check-config; on
    // this machine (no camera) it warns that its camera is not present.
    let out = run_json(&["--config", "systemd/config.toml", "check-config"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["config"]["models"]["pack"], "open", "{report}");
    assert_eq!(report["problems"].as_array().map(Vec::len), Some(0), "{report}");
    assert!(report["warnings"].to_string().contains("/dev/video0"), "{report}");
    assert_eq!(report["config"]["publish"]["socket"], "/run/facewatch/events.sock");
    let cameras: Vec<&str> = report["config"]["cameras"].as_array().expect("cameras").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(cameras, ["front-door"], "one camera; a second is shown commented out");
    let example = std::fs::read_to_string(root().join("systemd/config.toml")).expect("example");
    assert!(example.contains("# [[cameras]]\n# name = \"garage\""), "the second camera's example is there");
}

/// Issue 26: systemd rates the unit's exposure at most 2.0 (it was 3.3: no system-call filter, ProtectProc,
/// ProcSubset, RemoveIPC, MemoryDenyWriteExecute, PrivateMounts), and the unit verifies.
#[test]
fn the_systemd_unit_is_hardened_to_an_exposure_of_at_most_two() {
    let unit = root().join("systemd/facewatch.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze is missing ({e}): scripts/setup.sh installs the `systemd` package"));
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("no exposure figure: {text}"));
    let exposure: f64 = line
        .split(':')
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable figure: {line}"));
    assert!(exposure <= 2.0, "exposure {exposure} > 2.0:\n{text}");
}

#[test]
fn the_preview_draws_offscreen_and_a_missing_display_only_disables_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let run = |env: (&str, &str)| {
        let out = Command::new(env!("CARGO_BIN_EXE_facewatch"))
            .current_dir(root())
            .args(["--gallery", arg(&db), "run", "--source", arg(&clip()), "--preview", "--max-frames", "20", "--socket", ""])
            .env_remove("QT_QPA_PLATFORM")
            .env_remove("WAYLAND_DISPLAY")
            .env(env.0, env.1)
            .env("RUST_LOG", "info,ort=warn")
            .output()
            .expect("run");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (code, log) = run(("QT_QPA_PLATFORM", "offscreen"));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("Preview window open"), "{log}");
    // A DISPLAY with no X server behind it would abort inside Qt: the daemon checks first and runs without.
    let (code, log) = run(("DISPLAY", ":97"));
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("No display: running without the preview"), "{log}");
}

#[test]
fn a_person_enrolled_while_the_daemon_runs_is_recognised_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("alex", &[face("video/alex-lacamoire.png")])]);
    let socket = dir.path().join("events.sock");
    let mut child = daemon(&db, &socket, &["--source", arg(&clip()), "--fast", "--loop"]);
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    // Wait for the first events: the daemon runs, nobody is known.
    let first = rx.recv_timeout(Duration::from_secs(60)).expect("first event");
    assert_eq!(first["known"], false, "{first}");
    let people = dir.path().join("late");
    std::fs::create_dir_all(people.join("lin")).expect("mkdir");
    std::fs::copy(face("video/lin-manuel-miranda.png"), people.join("lin/lin.png")).expect("copy");
    let out = run_json(&["--gallery", arg(&db), "enroll", arg(&people)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen_lin = None;
    while let Ok(e) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if e["name"] == "lin" {
            seen_lin = Some(e);
            break;
        }
    }
    sigterm(pid);
    let status = child.wait().expect("wait");
    let _ = reader.join();
    let log = child.stderr.take().map(|e| std::io::read_to_string(e).unwrap_or_default()).unwrap_or_default();
    let lin = seen_lin.unwrap_or_else(|| panic!("lin was never named after being enrolled:\n{log}"));
    assert_eq!(lin["known"], true);
    assert!(log.contains("Gallery changed on disk; reloaded."), "{log}");
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn execution_providers_fall_back_in_order_and_the_log_names_the_one_in_use() {
    // The installed library is the CPU build of ONNX Runtime (PyPI `onnxruntime`): TensorRT and CUDA cannot
    // register here, whatever the hardware, so the fallback path is what runs.
    let photo = face("people/obama/obama.jpg");
    let run = |providers: &str| {
        Command::new(env!("CARGO_BIN_EXE_facewatch"))
            .current_dir(root())
            .args(["--json", "detect", arg(&photo)])
            .env("FACEWATCH_RUNTIME__EXECUTION_PROVIDERS", providers)
            .env("RUST_LOG", "info,ort=warn")
            .output()
            .expect("run")
    };
    let out = run("tensorrt,cuda,cpu");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("provider=tensorrt") && log.contains("provider=cuda"), "each failed provider is logged: {log}");
    assert!(log.contains("Inference session ready. provider=cpu"), "{log}");
    let out = run("cuda");
    assert_eq!(out.status.code(), Some(4), "no provider left: a model/runtime error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cuda"), "the error names what was tried: {err}");
}

#[test]
fn under_systemd_the_daemon_says_ready_feeds_the_watchdog_and_says_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let notify = dir.path().join("notify.sock");
    let systemd = std::os::unix::net::UnixDatagram::bind(&notify).expect("bind the notify socket");
    systemd.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    // Read as systemd does, while the daemon runs.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listener = {
        let done = done.clone();
        std::thread::spawn(move || {
            let (mut messages, mut buf) = (Vec::new(), [0u8; 128]);
            loop {
                match systemd.recv(&mut buf) {
                    Ok(n) => messages.push(String::from_utf8_lossy(&buf[..n]).to_string()),
                    Err(_) if done.load(std::sync::atomic::Ordering::SeqCst) => return messages,
                    Err(_) => {}
                }
            }
        })
    };
    let out = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        // 45 frames at the clip's rate: 1.5 s, with a 200 ms watchdog.
        .args(["--gallery", arg(&db), "run", "--source", arg(&clip()), "--max-frames", "45", "--socket", ""])
        .env("NOTIFY_SOCKET", &notify)
        .env("WATCHDOG_USEC", "200000")
        .output()
        .expect("run");
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let messages = listener.join().expect("listener");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(messages.first().map(String::as_str), Some("READY=1"), "{messages:?}");
    assert_eq!(messages.last().map(String::as_str), Some("STOPPING=1"), "{messages:?}");
    let feeds = messages.iter().filter(|m| *m == "WATCHDOG=1").count();
    assert!(feeds >= 5, "fed every 100 ms while frames flowed for 1.5 s: {messages:?}");
}

/// With `[snapshots]` on, every decision event (a track named, or renamed) points at a JPEG of that face, 0600 in
/// 0700 directories; other events carry none; the frame is saved beside it on request.
#[test]
fn decision_events_point_at_private_snapshots_of_the_face() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let snaps = dir.path().join("snaps");
    let out = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--gallery", arg(&g), "--set", "snapshots.enabled=true", "--set", "snapshots.frame=true", "--set"])
        .arg(format!("snapshots.dir={}", snaps.display()))
        .args(["run", "--source", arg(&clip()), "--camera", "stage", "--fast", "--socket", "", "--print"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("event")).collect();
    let decisions: Vec<&Value> = events.iter().filter(|e| e["type"] == "track_started" || e["type"] == "identity_changed").collect();
    assert!(!decisions.is_empty());
    assert!(events.iter().filter(|e| e["type"] == "track_ended").all(|e| e.get("snapshot").is_none()), "only decisions have snapshots");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&snaps), 0o700);
    for e in &decisions {
        let path = PathBuf::from(e["snapshot"]["path"].as_str().unwrap_or_else(|| panic!("no snapshot: {e}")));
        let url = e["snapshot"]["url"].as_str().expect("url");
        assert!(path.starts_with(&snaps) && url.starts_with("/api/snapshots/stage/"), "{e}");
        assert!(path.to_string_lossy().ends_with(&format!("_t{}_{}.jpg", e["track_id"], e["name"].as_str().expect("name"))), "{e}");
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        assert_eq!(mode(path.parent().expect("day")), 0o700);
        let img = opencv::imgcodecs::imread(arg(&path), opencv::imgcodecs::IMREAD_COLOR).expect("read");
        use opencv::core::MatTraitConst;
        let w = e["bbox"][2].as_f64().expect("w");
        assert!(f64::from(img.cols()) >= w && f64::from(img.cols()) <= w * 1.6 + 2.0, "face {w} px wide, snapshot {} px", img.cols());
        let frame =
            opencv::imgcodecs::imread(path.to_string_lossy().replace(".jpg", ".frame.jpg").as_str(), opencv::imgcodecs::IMREAD_COLOR)
                .expect("frame");
        assert_eq!((frame.cols(), frame.rows()), (640, 360), "the whole frame beside it");
    }
}
