//! The daemon's HTTP API through a real HTTP client, on the running daemon (the sample clip on a loop): every
//! route, bad uploads, missing and wrong keys, the event stream, the metrics.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{arg, clip, face, gallery, root};

pub(super) const KEY: &str = "test-key-5f2b9c0e8a";

pub(super) struct Daemon {
    pub(super) child: Child,
    pub(super) base: String,
    /// The daemon's log, read as it comes (a pipe nobody reads would stop the daemon once full).
    pub(super) log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(g: &Path, dir: &Path, extra: &[&str]) -> Daemon {
    start_running(g, dir, extra, &["run", "--source", arg(&clip()), "--camera", "stage", "--socket", "", "--loop"])
}

/// [`start`] with the given `run` command line.
pub(super) fn start_running(g: &Path, dir: &Path, extra: &[&str], run: &[&str]) -> Daemon {
    let keys = dir.join("api-keys");
    std::fs::write(&keys, format!("# facewatch API keys\n{KEY}\n")).expect("write keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--gallery", arg(g), "--set", "runtime.intra_threads=1", "--set"])
        .arg(format!("api.listen=127.0.0.1:{port}"))
        .arg("--set")
        .arg(format!("api.keys_file={}", keys.display()))
        .args(extra)
        .args(run)
        .env("RUST_LOG", "info,ort=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start facewatch run");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (stderr, sink) = (child.stderr.take().expect("stderr"), log.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().expect("log");
            log.push_str(&line);
            log.push('\n');
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    // The address is bound before the pipeline starts; the server answers once everything runs.
    let probe = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
    while probe.get(&format!("{base}/api/health")).call().is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "the API never answered:\n{}", log.lock().expect("log"));
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon { child, base, log }
}

/// An HTTP client that gives up after 60 s (a request must never hang a test).
pub(super) fn http() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build()
}

/// Status and JSON body, whatever the status.
pub(super) fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, Value) {
    let response = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    let text = response.into_string().expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

/// A multipart/form-data body of `fields` (name, file bytes).
fn multipart(fields: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "facewatch-test-boundary-7d1c";
    let mut body = Vec::new();
    for (name, bytes) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn every_route_answers_through_a_real_client_and_only_to_a_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("obama", &[face("people/obama/obama.jpg")]), ("lin", &[face("video/lin-manuel-miranda.png")])]);
    let snaps = dir.path().join("snaps");
    let snaps_dir = format!("snapshots.dir={}", snaps.display());
    let mut daemon =
        start(&g, dir.path(), &["--set", "api.max_upload_bytes=2000000", "--set", "snapshots.enabled=true", "--set", &snaps_dir]);
    let url = |p: &str| format!("{}{p}", daemon.base);
    let obama2 = std::fs::read(face("people/obama/obama2.jpg")).expect("photo");

    // Health needs no key; everything else does.
    let (status, health) = answer(http().get(&url("/api/health")).call());
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")), "{health}");
    assert_eq!(health["cameras"][0]["name"], "stage");
    for route in ["/api/metrics", "/api/faces", "/api/openapi.json"] {
        let (status, body) = answer(http().get(&url(route)).call());
        assert_eq!(status, 401, "{route} without a key: {body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("API key")), "{body}");
        assert_eq!(answer(http().get(&url(route)).set("X-Api-Key", "wrong").call()).0, 401, "{route} with a wrong key");
    }
    let (status, _) = answer(http().post(&url("/api/recognize")).send_bytes(&obama2));
    assert_eq!(status, 401, "an upload without a key is refused");

    // recognize: the body, or a multipart field; the answer is identify --json's.
    let with_key = |r: ureq::Request| r.set("X-Api-Key", KEY);
    let (status, r) = answer(with_key(http().post(&url("/api/recognize"))).set("Content-Type", "image/jpeg").send_bytes(&obama2));
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["v"], 1);
    assert_eq!((r["faces"][0]["name"].as_str(), r["faces"][0]["known"].as_bool()), (Some("obama"), Some(true)), "{r}");
    assert!(r["faces"][0]["bbox"].as_array().is_some_and(|b| b.len() == 4) && r["faces"][0]["candidates"].as_array().is_some());
    let (ctype, body) = multipart(&[("file", &obama2)]);
    let (status, r) = answer(
        http()
            .post(&url("/api/recognize?top_k=1"))
            .set("Authorization", &format!("Bearer {KEY}"))
            .set("Content-Type", &ctype)
            .send_bytes(&body),
    );
    assert_eq!((status, r["faces"][0]["candidates"].as_array().map(Vec::len)), (200, Some(1)), "{r}");

    // Bad uploads: the CLI's message, a 4xx.
    let (status, r) = answer(with_key(http().post(&url("/api/recognize"))).send_bytes(b"shopping list: eggs"));
    assert_eq!(status, 400, "{r}");
    assert!(r["error"].as_str().is_some_and(|e| e.contains("not an image")), "{r}");
    let cut = &obama2[..obama2.len() / 2];
    let (status, r) = answer(with_key(http().post(&url("/api/recognize"))).send_bytes(cut));
    assert!(status == 400 && r["error"].as_str().is_some_and(|e| e.contains("truncated")), "{status} {r}");
    // Over api.max_upload_bytes: refused from the declared length, before the body is read (a client that went
    // on sending would see its pipe closed, so this one sends only the head, as a client waiting for
    // `100 Continue` does).
    let address = daemon.base.trim_start_matches("http://").to_string();
    let mut tcp = std::net::TcpStream::connect(&address).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    use std::io::{Read, Write};
    write!(tcp, "POST /api/recognize HTTP/1.1\r\nHost: {address}\r\nX-Api-Key: {KEY}\r\nContent-Type: image/jpeg\r\nContent-Length: 2500000\r\nExpect: 100-continue\r\n\r\n").expect("write");
    let mut head = vec![0u8; 4096];
    let n = tcp.read(&mut head).expect("read");
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains("\"error\""), "a JSON error: {head}");
    let (ctype, body) = multipart(&[("wrong", &obama2)]);
    let (status, r) = answer(with_key(http().post(&url("/api/recognize"))).set("Content-Type", &ctype).send_bytes(&body));
    assert!(status == 400 && r["error"].as_str().is_some_and(|e| e.contains("`file`")), "{status} {r}");

    // verify: two photos.
    let obama = std::fs::read(face("people/obama/obama.jpg")).expect("photo");
    let biden = std::fs::read(face("people/biden/biden.jpg")).expect("photo");
    let (ctype, body) = multipart(&[("a", &obama), ("b", &obama2)]);
    let (status, r) = answer(with_key(http().post(&url("/api/verify"))).set("Content-Type", &ctype).send_bytes(&body));
    assert_eq!((status, r["same"].as_bool()), (200, Some(true)), "{r}");
    let (ctype, body) = multipart(&[("a", &obama), ("b", &biden)]);
    assert_eq!(answer(with_key(http().post(&url("/api/verify"))).set("Content-Type", &ctype).send_bytes(&body)).1["same"], false);

    // The gallery: list, add, list a person's photos, remove one, remove a person.
    let (_, faces) = answer(with_key(http().get(&url("/api/faces"))).call());
    assert_eq!(faces["persons"].as_array().map(Vec::len), Some(2), "{faces}");
    let (status, added) = answer(with_key(http().post(&url("/api/faces/Joe%20Biden"))).set("X-File-Name", "biden.jpg").send_bytes(&biden));
    assert_eq!((status, added["added"].as_u64()), (201, Some(1)), "{added}");
    let (status, again) = answer(with_key(http().post(&url("/api/faces/Joe%20Biden"))).send_bytes(&biden));
    assert_eq!((status, again["added"].as_u64()), (200, Some(0)), "the same photo twice is one");
    let (status, r) = answer(with_key(http().post(&url("/api/faces/not-biden"))).send_bytes(&biden));
    assert_eq!(status, 409, "the same photo under another name: {r}");
    assert!(r["error"].as_str().is_some_and(|e| e.contains("already enrolled as Joe Biden")), "{r}");
    assert_eq!(answer(with_key(http().get(&url("/api/faces/not-biden"))).call()).0, 404, "and nobody was created");
    let (_, photos) = answer(with_key(http().get(&url("/api/faces/Joe%20Biden"))).call());
    let id = photos["photos"][0]["id"].as_i64().expect("id");
    assert!(photos["photos"][0]["path"].as_str().is_some_and(|p| p.contains("biden.jpg")), "{photos}");
    let (status, r) = answer(with_key(http().delete(&url(&format!("/api/faces/obama/photos/{id}")))).call());
    assert_eq!(status, 404, "another person's photo id removes nothing: {r}");
    let (status, r) = answer(with_key(http().delete(&url(&format!("/api/faces/Joe%20Biden/photos/{id}")))).call());
    assert_eq!((status, r["person_removed"].as_bool()), (200, Some(true)), "{r}");
    assert_eq!(answer(with_key(http().get(&url("/api/faces/Joe%20Biden"))).call()).0, 404);
    assert_eq!(answer(with_key(http().delete(&url("/api/faces/ghost"))).call()).0, 404);
    let (status, r) = answer(with_key(http().post(&url("/api/faces/unknown"))).send_bytes(&biden));
    assert_eq!(status, 400, "`unknown` is no name: {r}");
    let (status, r) = answer(
        with_key(http().post(&url("/api/faces/crowd"))).send_bytes(&std::fs::read(face("groups/compreface_012_4.jpg")).expect("photo")),
    );
    assert_eq!(status, 422, "a photo of four faces enrolls nobody: {r}");
    let (status, r) = answer(with_key(http().delete(&url("/api/faces/lin"))).call());
    assert_eq!((status, r["embeddings"].as_u64()), (200, Some(1)));

    // Metrics: Prometheus text with the pipeline's counters and histograms.
    let metrics = with_key(http().get(&url("/api/metrics"))).call().expect("metrics");
    assert!(metrics.content_type().starts_with("text/plain"));
    let metrics = metrics.into_string().expect("text");
    for name in [
        "facewatch_up 1",
        "facewatch_frames_total{camera=\"stage\"}",
        "facewatch_fps{camera=\"stage\"}",
        "facewatch_stage_seconds_bucket{camera=\"stage\",stage=\"detect\",le=\"+Inf\"}",
        "facewatch_frame_to_result_seconds_count",
        "facewatch_frames_dropped_total{camera=\"stage\",stage=\"capture\"}",
        "facewatch_events_total",
        "facewatch_output_subscribers{output=\"sse\"} 0",
        "facewatch_output_events_dropped_total{output=\"sse\"} 0",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    let frames: u64 = metrics
        .lines()
        .find(|l| l.starts_with("facewatch_frames_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("frames");
    assert!(frames > 0);

    // The OpenAPI document served is the one the routes are checked against.
    let doc: Value =
        serde_json::from_str(&with_key(http().get(&url("/api/openapi.json"))).call().expect("doc").into_string().expect("text"))
            .expect("JSON");
    assert_eq!(doc["openapi"], "3.0.3");

    // The event stream: server-sent events carrying the socket's JSON lines.
    let stream = with_key(http().get(&url("/api/events"))).call().expect("events");
    assert!(stream.content_type().starts_with("text/event-stream"));
    let mut reader = BufReader::new(stream.into_reader());
    let started = Instant::now();
    let event: Value = loop {
        let mut line = String::new();
        assert!(reader.read_line(&mut line).expect("read") > 0, "the stream ended");
        if let Some(data) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
            break serde_json::from_str(data.trim()).expect("event JSON");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no event in 30 s");
    };
    assert_eq!(event["v"], 1);
    assert!(event["type"].is_string() && event["camera"] == "stage", "{event}");

    // Snapshots of the decisions, served by the URL their events give.
    let started = Instant::now();
    let first = loop {
        let mut found = Vec::new();
        for day in std::fs::read_dir(snaps.join("stage")).into_iter().flatten().flatten() {
            found.extend(std::fs::read_dir(day.path()).expect("day").flatten().map(|f| f.path()));
        }
        if let Some(f) = found.into_iter().next() {
            break f;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no snapshot written");
        std::thread::sleep(Duration::from_millis(100));
    };
    let rel = first.strip_prefix(&snaps).expect("inside").display().to_string();
    let picture = with_key(http().get(&url(&format!("/api/snapshots/{rel}")))).call().expect("snapshot");
    assert_eq!(picture.content_type(), "image/jpeg");
    let mut jpeg = Vec::new();
    std::io::Read::read_to_end(&mut picture.into_reader(), &mut jpeg).expect("read");
    assert_eq!(jpeg, std::fs::read(&first).expect("file"));
    assert_eq!(answer(with_key(http().get(&url("/api/snapshots/stage/..%2F..%2Fapi-keys"))).call()).0, 404);
    assert_eq!(answer(http().get(&url(&format!("/api/snapshots/{rel}"))).call()).0, 401, "snapshots need the key");

    // The key is never in the log.
    let _ = daemon.child.kill();
    let _ = daemon.child.wait();
    std::thread::sleep(Duration::from_millis(200));
    let log = daemon.log.lock().expect("log").clone();
    assert!(log.contains("HTTP API listening"), "{log}");
    assert!(!log.contains(KEY), "the key was logged: {log}");
}

/// One scrape, checked as Prometheus reads it: every family described once (`# HELP`, `# TYPE`) and its samples
/// right after, each sample a family's (a histogram's `_bucket`, `_sum`, `_count`) and none twice. Returns the
/// samples: name with labels → value.
fn check_exposition(text: &str) -> std::collections::BTreeMap<String, f64> {
    use std::collections::{BTreeMap, HashMap};
    let (mut helps, mut types): (HashMap<&str, usize>, HashMap<&str, &str>) = (HashMap::new(), HashMap::new());
    let mut samples = BTreeMap::new();
    let mut current: Option<&str> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("name");
            *helps.entry(name).or_default() += 1;
            assert_eq!(helps[name], 1, "# HELP {name} twice in\n{text}");
            assert!(!types.contains_key(name), "# HELP {name} after its # TYPE, or a family split in\n{text}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("name and type");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(types.insert(name, kind).is_none(), "# TYPE {name} twice in\n{text}");
            assert_eq!(helps.get(name), Some(&1), "# TYPE {name} without its # HELP before it");
            current = Some(name);
        } else if !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
            let name = series.split('{').next().expect("name");
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).filter(|f| types.get(f) == Some(&"histogram")))
                .unwrap_or(name);
            assert_eq!(current, Some(family), "{line}: a sample outside its family's block (undeclared, or the family split)");
            assert!(samples.insert(series.to_string(), value).is_none(), "{series} twice in\n{text}");
        }
    }
    samples
}

/// The metrics as a scraper sees them, twice back to back while the clip plays: a well-formed exposition (each
/// family once, no duplicate families such as the socket's drops under two names), the build and the process, the
/// gallery as enrolled, and a frame rate the pipeline measured, which a second scraper does not zero.
#[test]
fn metrics_are_well_formed_and_two_scrapes_in_a_row_both_see_the_frame_rate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(
        dir.path(),
        &[("obama", &[face("people/obama/obama.jpg"), face("people/obama/obama2.jpg")]), ("lin", &[face("video/lin-manuel-miranda.png")])],
    );
    let daemon = start(&g, dir.path(), &[]);
    let scrape = || {
        let text = http().get(&format!("{}/api/metrics", daemon.base)).set("X-Api-Key", KEY).call().expect("metrics");
        check_exposition(&text.into_string().expect("text"))
    };
    let started = Instant::now();
    while scrape().get("facewatch_frames_total{camera=\"stage\"}").copied().unwrap_or(0.0) < 30.0 {
        assert!(started.elapsed() < Duration::from_secs(60), "no frames:\n{}", daemon.log.lock().expect("log"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let (first, second) = (scrape(), scrape());
    for m in [&first, &second] {
        let fps = m["facewatch_fps{camera=\"stage\"}"];
        assert!(fps > 0.0, "facewatch_fps is {fps} while frames flow: {m:?}");
        let commit = env!("FACEWATCH_COMMIT");
        let build = m.keys().find(|k| k.starts_with("facewatch_build_info{")).expect("facewatch_build_info");
        assert!(
            build.contains(&format!("commit=\"{commit}\"")) && build.contains("version=\"") && build.contains("features=\"cpu"),
            "{build}"
        );
        assert_eq!(m[build.as_str()], 1.0);
        assert!(m["process_resident_memory_bytes"] > 0.0 && m["process_virtual_memory_bytes"] > 0.0, "{m:?}");
        assert!(m["process_cpu_seconds_total"] > 0.0 && m["process_threads"] > 1.0, "{m:?}");
        assert!(m["process_open_fds"] > 0.0 && m["process_max_fds"] >= m["process_open_fds"], "{m:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs_f64();
        assert!((now - 120.0..=now + 1.0).contains(&m["process_start_time_seconds"]), "started this test: {m:?}");
        assert_eq!((m["facewatch_gallery_persons"], m["facewatch_gallery_embeddings"]), (2.0, 3.0), "as enrolled");
        assert!(m.contains_key("facewatch_strangers"));
        for gone in ["facewatch_subscribers", "facewatch_subscriber_events_dropped_total", "facewatch_mqtt_messages_dropped_total"] {
            assert!(!m.keys().any(|k| k.split('{').next() == Some(gone)), "{gone} duplicates facewatch_output_*");
        }
    }
}

#[test]
fn two_cameras_each_have_their_health_and_metrics_and_a_stream_password_appears_nowhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = gallery(dir.path(), &[("obama", &[face("people/obama/obama.jpg")])]);
    // "garage" is an RTSP stream nobody serves (the discard port): away at start, retried alone; "stage" runs.
    let config = dir.path().join("cameras.toml");
    let secret = "s3cr3t-pa55";
    std::fs::write(
        &config,
        format!(
            "[capture]\nloop = true\nreconnect_initial_ms = 100\nreconnect_max_ms = 200\n\n[[cameras]]\nname = \"stage\"\nsource = \"{}\"\n\n\
             [[cameras]]\nname = \"garage\"\nsource = \"rtsp://admin:{secret}@127.0.0.1:9/stream1\"\n",
            clip().display()
        ),
    )
    .expect("write the configuration");
    let record = dir.path().join("events.jsonl");
    let daemon = start_running(&db, dir.path(), &["--config", arg(&config)], &["run", "--socket", "", "--record", arg(&record)]);
    let url = |p: &str| format!("{}{p}", daemon.base);
    let with_key = |r: ureq::Request| r.set("X-Api-Key", KEY);
    // Frames flow on stage while garage is retried.
    let started = Instant::now();
    let health = loop {
        let (status, health) = answer(http().get(&url("/api/health")).call());
        assert_eq!(status, 200);
        if health["cameras"][0]["frames"].as_u64() > Some(30) {
            break health;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "stage never ran: {health}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(health["status"], "degraded", "one camera is away: {health}");
    let cams: Vec<(&str, &str)> = health["cameras"]
        .as_array()
        .expect("cameras")
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or(""), c["source"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(cams, [("stage", "ok"), ("garage", "lost")], "{health}");
    let metrics = with_key(http().get(&url("/api/metrics"))).call().expect("metrics").into_string().expect("text");
    for want in [
        "facewatch_source_up{camera=\"stage\"} 1",
        "facewatch_source_up{camera=\"garage\"} 0",
        "facewatch_frames_total{camera=\"garage\"} 0",
    ] {
        assert!(metrics.contains(want), "{want} missing from\n{metrics}");
    }
    // Each metric family is described once, with a sample per camera.
    assert_eq!(metrics.matches("# TYPE facewatch_frames_total counter").count(), 1, "{metrics}");
    let _ = http().get(&url("/api/openapi.json")).call();
    std::thread::sleep(Duration::from_millis(500));
    let mut daemon = daemon;
    let _ = daemon.child.kill();
    let _ = daemon.child.wait();
    std::thread::sleep(Duration::from_millis(200));
    let log = daemon.log.lock().expect("log").clone();
    let events = std::fs::read_to_string(&record).expect("recorded events");
    let lost = events
        .lines()
        .find(|l| l.contains("\"source_lost\"") && l.contains("\"garage\""))
        .unwrap_or_else(|| panic!("no source_lost for garage:\n{events}\n{log}"));
    assert!(lost.contains("rtsp://admin:***@127.0.0.1:9/stream1"), "the event names the stream, redacted: {lost}");
    for (what, text) in [("log", &log), ("events", &events), ("metrics", &metrics), ("health", &health.to_string())] {
        assert!(!text.contains(secret), "the stream password reached the {what}:\n{text}");
    }
    assert!(log.contains("rtsp://admin:***@127.0.0.1:9/stream1"), "{log}");
}

#[test]
fn an_api_without_a_key_or_with_a_readable_key_file_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--set", "api.listen=127.0.0.1:0", "check-config"])
        .output()
        .expect("check-config");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("api.keys_file"), "{}", String::from_utf8_lossy(&out.stdout));
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "k\n").expect("write");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let g = gallery(dir.path(), &[("obama", &[face("people/obama/obama.jpg")])]);
    let out = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--gallery", arg(&g), "--set", "api.listen=127.0.0.1:0", "--set"])
        .arg(format!("api.keys_file={}", keys.display()))
        .args(["run", "--source", arg(&clip()), "--socket", ""])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("readable by other users"));
}

/// Schemathesis (PyPI, installed by scripts/test.sh into .facewatch/fuzz) generates requests from the OpenAPI
/// document, valid and invalid, for every route but the endless event stream, and checks every answer: no 5xx,
/// only documented status codes and content types, bodies matching their schemas, invalid data rejected, routes
/// refusing to answer without the key.
#[test]
fn a_schema_driven_fuzz_run_finds_no_answer_outside_the_openapi_document() {
    let st = root().join(".facewatch/fuzz/bin/st");
    assert!(st.exists(), "schemathesis is not installed: run scripts/test.sh (or python3 -m venv .facewatch/fuzz && .facewatch/fuzz/bin/pip install schemathesis==3.39.16 hypothesis==6.122.0)");
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("obama", &[face("people/obama/obama.jpg")])]);
    let daemon = start(&g, dir.path(), &[]);
    let out = Command::new(&st)
        .current_dir(dir.path())
        .args(["run", arg(&root().join("src/api/openapi.json")), "--base-url", &daemon.base])
        .args(["-H", &format!("X-Api-Key: {KEY}"), "-H", &format!("Authorization: Bearer {KEY}")])
        .args(["--checks", "all", "--hypothesis-max-examples", "40", "--hypothesis-seed", "1", "--hypothesis-derandomize"])
        .args(["--exclude-path", "/api/events"])
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("not_a_server_error") && report.contains("response_schema_conformance"), "{report}");
}
