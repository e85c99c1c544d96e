//! Private and safe, through the binary: nothing phones home, nothing private is left readable, read-only commands
//! create nothing, and a reader that does not read or a flood of connections cannot stop the daemon.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{arg, clip, clip_frames, face, gallery, root};

fn facewatch() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_facewatch"));
    c.current_dir(root()).env_remove("RUST_LOG").env_remove("ORT_DISABLE_TELEMETRY");
    c
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).permissions().mode() & 0o777
}

#[test]
fn onnx_runtime_leaves_no_telemetry_store_in_home() {
    let home = tempfile::tempdir().expect("home");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("obama", &[face("people/obama/obama.jpg")])]);
    let out = facewatch()
        .env("HOME", home.path())
        .args(["--json", "--gallery", arg(&db), "identify", arg(&face("people/obama/obama2.jpg"))])
        .output()
        .expect("identify");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = facewatch()
        .env("HOME", home.path())
        .args(["--gallery", arg(&db), "run", "--source", arg(&clip()), "--fast", "--max-frames", "30", "--socket", ""])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let store = home.path().join(".cache/Microsoft");
    assert!(!store.exists(), "ONNX Runtime wrote its telemetry store at {}", store.display());
}

#[test]
fn read_only_commands_create_no_gallery_and_name_the_missing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let typo = dir.path().join("galery/g.db");
    let photo = face("people/obama/obama2.jpg");
    for args in [vec!["identify", arg(&photo)], vec!["gallery", "list"]] {
        let out = facewatch().args(["--gallery", arg(&typo)]).args(&args).output().expect("run");
        assert_eq!(out.status.code(), Some(5), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no gallery at") && err.contains("galery/g.db"), "{err}");
        assert!(!typo.exists() && !typo.parent().expect("dir").exists(), "{args:?} created the gallery");
    }
    let out = facewatch().args(["--json", "--gallery", arg(&typo), "check-config"]).output().expect("check-config");
    let report: Value = serde_json::from_slice(&out.stdout).expect("json");
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("no gallery at"), "{warnings}");
    assert!(!typo.exists());
}

/// A gallery another user owns, in a directory the reader may not write (an installed service's state, a
/// read-only mount): `gallery list` and `identify` read it; changing it is refused with SQLite's reason. Run as
/// `nobody`, because root may write anywhere.
#[test]
fn a_gallery_in_a_read_only_directory_can_still_be_read() {
    use std::os::unix::fs::chown;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("obama", &[face("people/obama/obama.jpg")])]);
    // The enrol closed the gallery cleanly: no -wal/-shm beside it, which a reader in a read-only directory
    // cannot create.
    for companion in ["gallery.db-wal", "gallery.db-shm"] {
        assert!(!dir.path().join(companion).exists(), "{companion} left behind");
    }
    let nobody = 65534;
    chown(&db, Some(nobody), Some(nobody)).expect("chown gallery");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let as_nobody = |args: &[&str]| {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(env!("CARGO_BIN_EXE_facewatch"));
        c.current_dir(root()).env("HOME", dir.path()).env_remove("RUST_LOG");
        c.args(["--json", "--gallery", arg(&db)]).args(args).output().expect("setpriv (util-linux)")
    };
    let out = as_nobody(&["gallery", "list"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gallery list in a read-only directory: {stderr}");
    let list: Value = serde_json::from_slice(&out.stdout).expect("gallery list JSON");
    assert_eq!(list["persons"][0]["name"], "obama", "{list}");
    let out = as_nobody(&["identify", arg(&face("people/obama/obama2.jpg"))]);
    assert!(out.status.success(), "identify: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"obama\""), "{}", String::from_utf8_lossy(&out.stdout));
    let out = as_nobody(&["gallery", "remove", "obama"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "removing from a read-only gallery: {stderr}");
    assert!(stderr.contains("readonly") || stderr.contains("read-only"), "{stderr}");
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).expect("ls").map(|e| e.expect("entry").file_name().to_string_lossy().into()).collect();
    assert!(!names.iter().any(|n| n.ends_with("-wal") || n.ends_with("-shm")), "reading left {names:?}");
}

#[test]
fn face_crops_are_private() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crops = dir.path().join("crops");
    let out =
        facewatch().args(["--json", "detect", "--crop", arg(&crops), arg(&face("groups/two_people_2.jpg"))]).output().expect("detect");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(mode(&crops), 0o700);
    let files: Vec<_> = std::fs::read_dir(&crops).expect("crops").filter_map(Result::ok).map(|e| e.path()).collect();
    assert_eq!(files.len(), 2);
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    // Written again over files someone made world-readable: private again.
    std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out =
        facewatch().args(["--json", "detect", "--crop", arg(&crops), arg(&face("groups/two_people_2.jpg"))]).output().expect("detect");
    assert!(out.status.success());
    assert_eq!(mode(&files[0]), 0o600);
}

/// Reads the socket's lines until it closes.
fn subscribe(socket: &Path) -> std::thread::JoinHandle<Vec<Value>> {
    let socket = socket.to_path_buf();
    std::thread::spawn(move || {
        let started = Instant::now();
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(_) if started.elapsed() < Duration::from_secs(120) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => panic!("socket never served: {e}"),
            }
        };
        BufReader::new(stream).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect()
    })
}

#[test]
fn a_stdout_nobody_reads_does_not_starve_the_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let socket = dir.path().join("events.sock");
    // An update per track and frame: far more lines than a pipe holds (64 KiB) when nobody reads it.
    let mut child = facewatch()
        .args(["--gallery", arg(&db), "--set", "publish.update_interval_ms=1", "run", "--print", "--fast"])
        .args(["--source", arg(&clip()), "--socket", arg(&socket)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    let sub = subscribe(&socket);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            panic!("the daemon hung on its unread stdout");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let events = sub.join().expect("subscriber");
    let updates = events.iter().filter(|e| e["type"] == "track_updated").count();
    assert!(updates > 400, "the socket subscriber got {updates} updates");
    assert!(events.iter().any(|e| e["type"] == "track_ended"), "the socket saw the end of the input");
    assert!(!socket.exists(), "socket removed at exit");
    drop(child.stdout.take());
}

#[test]
fn a_flood_of_connections_is_capped_and_the_pipeline_keeps_running() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let socket = dir.path().join("events.sock");
    // 64 file descriptors in all, 8 subscribers at most, and 150 clients that connect and never read.
    let mut child = Command::new("prlimit")
        .args(["--nofile=64:64", "--", env!("CARGO_BIN_EXE_facewatch")])
        .current_dir(root())
        .args(["--gallery", arg(&db), "--set", "publish.max_subscribers=8", "run", "--fast", "--loop", "--max-frames", "600"])
        .args(["--source", arg(&clip()), "--socket", arg(&socket)])
        .env("RUST_LOG", "warn,facewatch=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux) runs facewatch");
    let stderr = child.stderr.take().expect("stderr");
    let log = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let started = Instant::now();
    while !socket.exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "socket never appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    let clients: Vec<UnixStream> = (0..150).filter_map(|_| UnixStream::connect(&socket).ok()).collect();
    assert!(!clients.is_empty());
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(240), "the daemon did not finish its 600 frames");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(clients);
    let log = log.join().expect("log");
    assert!(status.success(), "{status:?}\n{log}");
    let limit_lines = log.lines().filter(|l| l.contains("Subscriber limit reached")).count();
    assert!((1..=30).contains(&limit_lines), "{limit_lines} limit warnings: the log is rate-limited\n{log}");
    assert!(log.lines().count() < 100, "{} log lines:\n{log}", log.lines().count());
    assert!(log.contains("frames=600"), "all 600 frames went through:\n{log}");
}

#[test]
fn a_stream_password_never_reaches_logs_errors_or_the_printed_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    // Nothing listens on the discard port: opening fails at once, and says so.
    let url = "rtsp://admin:s3cr3t-pa55@127.0.0.1:9/stream1";
    let out = facewatch()
        .args(["--gallery", arg(&db), "-v", "run", "--source", url, "--socket", ""])
        .env("RUST_LOG", "debug")
        .output()
        .expect("run");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("s3cr3t") && !stdout.contains("s3cr3t"), "the password leaked:\n{stderr}");
    assert!(stderr.contains("rtsp://admin:***@127.0.0.1:9/stream1"), "the source is still named:\n{stderr}");
    let out = facewatch().args(["--json", "--set", &format!("capture.source={url}"), "check-config"]).output().expect("check-config");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("s3cr3t"), "check-config printed the password:\n{all}");
    assert!(all.contains("admin:***@"), "{all}");
    // The password can live in a private file instead: it is put into the URL, and still never shown.
    let creds = dir.path().join("rtsp.secret");
    std::fs::write(&creds, "admin:s3cr3t-pa55\n").expect("write");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = facewatch()
        .args(["--gallery", arg(&db), "--set", &format!("capture.credentials_file={}", arg(&creds))])
        .args(["run", "--source", "rtsp://127.0.0.1:9/stream1", "--socket", ""])
        .env("RUST_LOG", "debug")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(!stderr.contains("s3cr3t") && stderr.contains("rtsp://admin:***@127.0.0.1:9/stream1"), "{stderr}");
    // A credentials file others can read is refused.
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = facewatch()
        .args(["--gallery", arg(&db), "--set", &format!("capture.credentials_file={}", arg(&creds))])
        .args(["run", "--source", "rtsp://127.0.0.1:9/stream1", "--socket", ""])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by other users"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_bad_image_in_a_sequence_is_skipped_counted_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let (pattern, n) = clip_frames(&dir.path().join("frames"), "png", &[(0, 19)]);
    assert_eq!(n, 20);
    std::fs::write(dir.path().join("frames/f_010.png"), b"not a picture").expect("spoil one frame");
    let out = facewatch()
        .args(["--gallery", arg(&db), "run", "--fast", "--print", "--socket", "", "--source", arg(&pattern)])
        .env("RUST_LOG", "warn,facewatch=info")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("frames=19"), "the 19 good frames went through, the sequence did not stop at the bad one:\n{stderr}");
    assert!(stderr.contains("f_010.png") && stderr.contains("skipped"), "{stderr}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let truncated: Vec<&Value> = events.iter().filter(|e| e["type"] == "input_truncated").collect();
    assert_eq!(truncated.len(), 1, "{events:?}");
    assert!(truncated[0]["reason"].as_str().is_some_and(|r| r.contains("1 of the image sequence")), "{}", truncated[0]);
}

/// 4 KiB of garbage in the middle of the sample clip: the frames it spoils are skipped and counted, the rest of the
/// file is read (it used to end the read at frame 136 of 275).
#[test]
fn a_damaged_region_in_the_middle_of_a_video_is_skipped_and_the_rest_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    let mut bytes = std::fs::read(clip()).expect("clip");
    let middle = bytes.len() / 2;
    let mut x = 0x2545_f491_u32;
    for b in &mut bytes[middle..middle + 4096] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let damaged = dir.path().join("damaged.mp4");
    std::fs::write(&damaged, &bytes).expect("write");
    let out = facewatch()
        .args(["--gallery", arg(&db), "run", "--fast", "--print", "--socket", "", "--source", arg(&damaged)])
        .env("RUST_LOG", "warn,facewatch=info")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Damaged frames skipped"), "{stderr}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let report: Vec<&Value> = events.iter().filter(|e| e["type"] == "input_truncated").collect();
    assert_eq!(report.len(), 1, "the skipped frames are reported once: {events:?}");
    let frames = report[0]["frames"].as_u64().expect("frames");
    assert!(frames >= 265, "the frames after the damage were read too: {}", report[0]);
    assert!(report[0]["reason"].as_str().is_some_and(|r| r.contains("damaged frame")), "{}", report[0]);
    assert!(events.iter().any(|e| e["frame_seq"].as_u64().is_some_and(|f| f > 200)), "events after the damage");
}

#[test]
fn a_video_cut_in_the_middle_ends_with_a_warning_and_an_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("lin", &[face("video/lin-manuel-miranda.png")])]);
    // The sample clip as a streaming encoder writes it, cut at half its size: a download that stopped.
    let whole = crate::common::faststart(&std::fs::read(clip()).expect("clip"));
    let cut = dir.path().join("cut.mp4");
    std::fs::write(&cut, &whole[..whole.len() / 2]).expect("write");
    let out = facewatch()
        .args(["--gallery", arg(&db), "run", "--fast", "--print", "--socket", "", "--source", arg(&cut)])
        .env("RUST_LOG", "warn,facewatch=info")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Input ended early"), "{stderr}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let truncated: Vec<&Value> = events.iter().filter(|e| e["type"] == "input_truncated").collect();
    assert_eq!(truncated.len(), 1, "{events:?}");
    let frames = truncated[0]["frames"].as_u64().expect("frames");
    assert!((50..270).contains(&frames), "the frames before the cut were read: {}", truncated[0]);
    assert!(truncated[0]["reason"].as_str().is_some_and(|r| r.contains("of the 275 frames")), "{}", truncated[0]);
}
