//! The web page in a real browser: Debian's chromium, driven by playwright-core (`tests/browser/ui.mjs`, pinned in
//! `tests/browser/package-lock.json`; `scripts/test.sh` installs both), against the real daemon on the sample clip.
//! A person logs in, sees the clip's stranger, names them, and the daemon says the name the next time they come;
//! then a fresh run of the clip names them from the first sighting.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::common::{arg, clip, face, gallery, root};

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
    let daemon = super::api::start_running(
        &g,
        dir.path(),
        &["--set", "publish.socket="],
        &["run", "--source", arg(&clip()), "--camera", "stage", "--loop"],
    );
    let base = daemon.base.clone();
    let shots = root().join("target/ui-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    let out = Command::new("node")
        .current_dir(&browser)
        .arg("ui.mjs")
        .env("FW_URL", &base)
        .env("FW_KEY", super::api::KEY)
        .env("FW_SHOTS", &shots)
        .env("FW_PHOTO", face("groups/two_people_2.jpg"))
        .env("FW_NAME", NAME)
        .env("CHROMIUM", chromium)
        .output()
        .expect("node runs tests/browser/ui.mjs (Node.js 20 and npm: scripts/test.sh)");
    let log = daemon.log.lock().expect("log").clone();
    drop(daemon);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = stdout.lines().last().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null);
    assert!(
        out.status.success() && report["ok"] == true,
        "the browser test failed: {report}\n{}\n--- daemon ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        log
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
