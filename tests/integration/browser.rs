//! The web page in a real browser: Debian's chromium, driven by playwright-core (`tests/browser/ui.mjs`, pinned in
//! `tests/browser/package-lock.json`; `scripts/test.sh` installs both), against the real daemon on the sample clip.
//! A person logs in, sees the clip's stranger, names them, and the daemon says the name the next time they come;
//! then a fresh run of the clip names them from the first sighting.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{arg, clip, face, gallery, root};

const KEY: &str = "browser-test-key-0b7e41";
const NAME: &str = "the-man-on-stage";

fn chromium() -> &'static str {
    let path = "/usr/bin/chromium";
    assert!(Path::new(path).exists(), "Debian's chromium is not installed: run scripts/test.sh (apt install chromium)");
    path
}

#[test]
fn a_person_names_a_stranger_from_the_web_page_and_the_daemon_says_the_name() {
    let browser = root().join("tests/browser");
    assert!(
        browser.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed: run scripts/test.sh (npm ci in tests/browser)"
    );
    let chromium = chromium();
    let dir = tempfile::tempdir().expect("tempdir");
    // The sample people, not the man on stage: he is a stranger to this gallery.
    let g = gallery(dir.path(), &[("obama", &[face("people/obama/obama.jpg")]), ("biden", &[face("people/biden/biden.jpg")])]);
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("{KEY}\n")).expect("keys");
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--gallery", arg(&g), "--set", "runtime.intra_threads=1", "--set", "publish.socket=", "--set"])
        .arg(format!("api.listen=127.0.0.1:{port}"))
        .arg("--set")
        .arg(format!("api.keys_file={}", keys.display()))
        .args(["run", "--source", arg(&clip()), "--camera", "stage", "--loop"])
        .env("RUST_LOG", "info,ort=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start facewatch run");
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (stderr, sink) = (daemon.stderr.take().expect("stderr"), log.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut l = sink.lock().expect("log");
            l.push_str(&line);
            l.push('\n');
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let probe = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
    while probe.get(&format!("{base}/api/health")).call().is_err() {
        assert!(started.elapsed() < Duration::from_secs(90), "the API never answered:\n{}", log.lock().expect("log"));
        std::thread::sleep(Duration::from_millis(100));
    }
    let shots = root().join("target/ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let out = Command::new("node")
        .current_dir(&browser)
        .arg("ui.mjs")
        .env("FW_URL", &base)
        .env("FW_KEY", KEY)
        .env("FW_SHOTS", &shots)
        .env("FW_PHOTO", face("groups/two_people_2.jpg"))
        .env("FW_NAME", NAME)
        .env("CHROMIUM", chromium)
        .output()
        .expect("node runs tests/browser/ui.mjs (Node.js 20 and npm: scripts/test.sh)");
    let _ = daemon.kill();
    let _ = daemon.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null);
    assert!(
        out.status.success() && report["ok"] == true,
        "the browser test failed: {report}\n{}\n--- daemon ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        log.lock().expect("log")
    );
    assert_eq!(report["wrong_key"], 401);
    assert_eq!(report["csrf_refused"], serde_json::json!([403, 403]));
    assert!(report["stranger"].as_str().is_some_and(|l| l.starts_with("stranger-")), "{report}");
    for page in ["login", "live", "strangers", "stranger", "events", "people", "person", "check", "phone"] {
        let png = shots.join(format!("{page}.png"));
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "no screenshot of the {page} page ({} bytes at {})", size, png.display());
    }

    // The next run: the man on stage is named from the gallery alone, from his first sighting.
    let out = Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(root())
        .args(["--gallery", arg(&g), "--set", "publish.socket=", "run", "--source", arg(&clip()), "--fast", "--print"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let named: Vec<&Value> = events.iter().filter(|e| e["name"] == NAME && e["known"] == true).collect();
    assert!(!named.is_empty(), "the next run never said {NAME}: {:?}", events.iter().map(|e| (&e["type"], &e["name"])).collect::<Vec<_>>());
    // He is on stage in frames 0-19 (far) and 82-210 (tests/data/hamilton_truth.csv): never named anywhere else (the
    // pianist, the audience).
    for e in &named {
        let frame = e["frame_seq"].as_u64().unwrap_or(0);
        assert!((0..=19).contains(&frame) || (82..=215).contains(&frame), "{NAME} named at frame {frame}: {e}");
    }
}
