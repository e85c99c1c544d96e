//! CompreFace's REST API on the running daemon (issue 27): CompreFace's documented curl examples (recognize, add,
//! verify, detect, subjects) run unchanged but for the host and the placeholders filled (`-F file=@photo`, the form
//! that sends a file), answered in CompreFace's shapes; every parameter honoured or refused.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::api::{start_running, Daemon, KEY};
use crate::common::{arg, clip, face, gallery};

fn start(g: &Path, dir: &Path) -> Daemon {
    start_running(g, dir, &[], &["run", "--source", arg(&clip()), "--camera", "stage", "--socket", "", "--loop"])
}

/// Runs curl with `args` after the URL; (HTTP status, JSON body or the raw body as a string).
fn curl(method: &str, url: &str, args: &[&str]) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["-s", "-S", "-w", "\n%{http_code}", "-X", method, url])
        .args(args)
        .output()
        .expect("curl (apt install curl)");
    assert!(out.status.success(), "curl failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    let status: u16 = status.trim().parse().expect("status");
    (status, serde_json::from_str(body).unwrap_or(Value::String(body.to_string())))
}

fn key() -> String {
    format!("x-api-key: {KEY}")
}

#[test]
fn compreface_s_documented_requests_work_against_facewatch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = gallery(dir.path(), &[("biden", &[face("people/biden/biden.jpg")])]);
    let daemon = start(&g, dir.path());
    let b = &daemon.base;
    let key = key();
    let obama = format!("file=@{}", face("people/obama/obama.jpg").display());
    let obama2 = format!("file=@{}", face("people/obama/obama2.jpg").display());
    let held_out = format!("file=@{}", face("people/obama/obama3.jpg").display());
    let group = format!("file=@{}", face("groups/compreface_011_3.jpg").display());
    let noface = std::fs::read_dir(face("noface")).expect("noface").next().expect("a photo").expect("entry").path();
    let noface = format!("file=@{}", noface.display());
    let mp = ["-H", "Content-Type: multipart/form-data", "-H", key.as_str()];

    // Add an example (the documented command): 201 {image_id, subject}; a new subject is made.
    let url = format!("{b}/api/v1/recognition/faces?subject=Obama&det_prob_threshold=0.8");
    let (status, added) = curl("POST", &url, &[&mp[..], &["-F", &obama]].concat());
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["subject"], "Obama");
    let image_id = added["image_id"].as_str().expect("image_id").to_string();
    let (status, second) = curl("POST", &url.replace("Obama", "obama"), &[&mp[..], &["-F", &obama2]].concat());
    assert_eq!((status, &second["subject"]), (201, &Value::from("Obama")), "the subject is looked up without case: {second}");
    // Several faces in an example: code 31; no face: code 28.
    let (status, e) = curl("POST", &url, &[&mp[..], &["-F", &group]].concat());
    assert_eq!((status, e["code"].as_u64()), (400, Some(31)), "{e}");
    let (status, e) = curl("POST", &url, &[&mp[..], &["-F", &noface]].concat());
    assert_eq!((status, e["code"].as_u64(), e["message"].as_str()), (400, Some(28), Some("No face is found in the given image")), "{e}");

    // Recognize (documented parameters): the held-out photo is Obama's.
    let rec = format!("{b}/api/v1/recognition/recognize?limit=0&prediction_count=2&det_prob_threshold=0.8&face_plugins=landmarks&status=true&detect_faces=true");
    let (status, r) = curl("POST", &rec, &[&mp[..], &["-F", &held_out]].concat());
    assert_eq!(status, 200, "{r}");
    let first = &r["result"][0];
    assert_eq!(first["subjects"][0]["subject"], "Obama", "{r}");
    assert!(first["subjects"][0]["similarity"].as_f64().is_some_and(|s| s > 0.4 && s <= 1.0), "{r}");
    assert_eq!(first["subjects"].as_array().map(Vec::len), Some(2), "prediction_count=2: {r}");
    for k in ["probability", "x_max", "y_max", "x_min", "y_min"] {
        assert!(first["box"][k].is_number(), "box.{k}: {r}");
    }
    assert_eq!(first["landmarks"].as_array().map(Vec::len), Some(5), "{r}");
    assert!(first["execution_time"]["detector"].is_number() && r["plugins_versions"]["calculator"].is_string(), "{r}");
    assert!(first.get("embedding").is_none(), "no calculator plugin asked: {r}");
    // Age and gender on request (dlib's CC0 models), in CompreFace's shapes.
    let (status, r) = curl(
        "POST",
        &format!("{b}/api/v1/recognition/recognize?face_plugins=age,gender,expression,embedding&status=true"),
        &[&mp[..], &["-F", &held_out]].concat(),
    );
    assert_eq!(status, 200, "{r}");
    let f = &r["result"][0];
    assert_eq!(f["gender"]["value"], "male", "{r}");
    assert!(f["gender"]["probability"].as_f64().is_some_and(|p| p > 0.5 && p <= 1.0), "{r}");
    let (low, high) = (f["age"]["low"].as_u64().unwrap_or(0), f["age"]["high"].as_u64().unwrap_or(0));
    assert!(low <= high && (20..=90).contains(&high) && f["age"]["probability"].as_f64().is_some_and(|p| p >= 0.5), "{r}");
    assert!(f["execution_time"]["age_gender"].is_number() && r["plugins_versions"]["age"].is_string(), "{r}");
    // The expression (an extension: CompreFace has no such plugin), and `embedding` as another name of calculator.
    let expression = f["expression"]["value"].as_str().unwrap_or("");
    assert!(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"].contains(&expression), "{r}");
    assert!(f["expression"]["probability"].as_f64().is_some_and(|p| p > 0.0 && p <= 1.0), "{r}");
    assert!(f["execution_time"]["expression"].is_number() && r["plugins_versions"]["expression"].is_string(), "{r}");
    assert_eq!(f["embedding"].as_array().map(Vec::len), Some(512), "{r}");
    // The issue's case: limit=1&det_prob_threshold=0.99 on a group photo answers one face, not all of them.
    let (_, all) = curl("POST", &format!("{b}/api/v1/recognition/recognize"), &[&mp[..], &["-F", &group]].concat());
    let n = all["result"].as_array().map_or(0, Vec::len);
    assert!(n >= 2, "{all}");
    let (status, one) =
        curl("POST", &format!("{b}/api/v1/recognition/recognize?limit=1&det_prob_threshold=0.6"), &[&mp[..], &["-F", &group]].concat());
    assert_eq!((status, one["result"].as_array().map(Vec::len)), (200, Some(1)), "{one}");
    let largest = |r: &Value| {
        r["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| f["box"]["x_max"].as_i64().unwrap_or(0) - f["box"]["x_min"].as_i64().unwrap_or(0))
            .max()
    };
    assert_eq!(largest(&one), largest(&all), "limit keeps the largest face");
    // No face: 400 code 28, as Double Take expects.
    let (status, e) = curl("POST", &format!("{b}/api/v1/recognition/recognize"), &[&mp[..], &["-F", &noface]].concat());
    assert_eq!((status, e["code"].as_u64()), (400, Some(28)), "{e}");
    // Base64 in JSON.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(std::fs::read(face("people/obama/obama3.jpg")).expect("read"));
    let body = format!("{{\"file\": \"{b64}\"}}");
    let body_file = dir.path().join("b64.json");
    std::fs::write(&body_file, body).expect("write");
    let data = format!("@{}", body_file.display());
    let (status, r) =
        curl("POST", &format!("{b}/api/v1/recognition/recognize"), &["-H", "Content-Type: application/json", "-H", &key, "-d", &data]);
    assert_eq!((status, &r["result"][0]["subjects"][0]["subject"]), (200, &Value::from("Obama")), "{r}");

    // Verify against an enrolled example, and the verification service.
    let (status, v) = curl(
        "POST",
        &format!("{b}/api/v1/recognition/faces/{image_id}/verify?limit=0&det_prob_threshold=0.8&face_plugins=calculator&status=false"),
        &[&mp[..], &["-F", &held_out]].concat(),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["result"][0]["subject"], "Obama");
    assert!(v["result"][0]["similarity"].as_f64().is_some_and(|s| s > 0.4), "{v}");
    assert!(v["result"][0]["embedding"].as_array().is_some_and(|e| e.len() >= 128), "calculator gives the embedding");
    let src = format!("source_image=@{}", face("people/obama/obama.jpg").display());
    let tgt = format!("target_image=@{}", face("groups/compreface_011_3.jpg").display());
    let (status, v) = curl(
        "POST",
        &format!("{b}/api/v1/verification/verify?limit=0&det_prob_threshold=0.8&status=true"),
        &[&mp[..], &["-F", &src, "-F", &tgt]].concat(),
    );
    assert_eq!(status, 200, "{v}");
    assert!(
        v["result"][0]["source_image_face"]["box"].is_object() && v["result"][0]["face_matches"].as_array().is_some_and(|m| m.len() >= 2),
        "{v}"
    );

    // Detect: boxes, no subjects.
    let (status, d) = curl(
        "POST",
        &format!("{b}/api/v1/detection/detect?limit=0&det_prob_threshold=0.8&face_plugins=landmarks&status=true"),
        &[&mp[..], &["-F", &group]].concat(),
    );
    assert_eq!(status, 200, "{d}");
    assert!(d["result"][0]["box"].is_object() && d["result"][0].get("subjects").is_none(), "{d}");

    // The examples, a page at a time; the stored face; subjects.
    let (status, list) = curl("GET", &format!("{b}/api/v1/recognition/faces?page=0&size=1&subject=Obama"), &["-H", &key]);
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        (list["total_elements"].as_u64(), list["total_pages"].as_u64(), list["faces"].as_array().map(Vec::len)),
        (Some(2), Some(2), Some(1)),
        "{list}"
    );
    let img =
        Command::new("curl").args(["-s", "-H", &key, &format!("{b}/api/v1/recognition/faces/{image_id}/img")]).output().expect("curl");
    assert!(img.stdout.starts_with(&[0xFF, 0xD8]), "a JPEG");
    let (status, s) = curl("GET", &format!("{b}/api/v1/recognition/subjects/"), &["-H", &key]);
    assert_eq!((status, s["subjects"].clone()), (200, serde_json::json!(["Obama", "biden"])), "{s}");
    let (status, e) = curl(
        "POST",
        &format!("{b}/api/v1/recognition/subjects"),
        &["-H", "Content-Type: application/json", "-H", &key, "-d", r#"{"subject": "obama"}"#],
    );
    assert_eq!((status, e["code"].as_u64()), (400, Some(43)), "{e}");
    let (status, u) = curl(
        "PUT",
        &format!("{b}/api/v1/recognition/subjects/Obama"),
        &["-H", "Content-Type: application/json", "-H", &key, "-d", r#"{"subject": "barack"}"#],
    );
    assert_eq!((status, &u["updated"]), (200, &Value::Bool(true)), "{u}");
    let (status, e) = curl("DELETE", &format!("{b}/api/v1/recognition/subjects/nobody"), &["-H", &key]);
    assert_eq!((status, e["code"].as_u64()), (404, Some(42)), "{e}");
    let (status, gone) = curl("DELETE", &format!("{b}/api/v1/recognition/faces/{image_id}"), &["-H", &key]);
    assert_eq!((status, &gone["subject"]), (200, &Value::from("barack")), "{gone}");
    let (status, e) = curl("DELETE", &format!("{b}/api/v1/recognition/faces/{image_id}"), &["-H", &key]);
    assert_eq!((status, e["code"].as_u64()), (404, Some(44)), "{e}");
    let (status, del) = curl("DELETE", &format!("{b}/api/v1/recognition/faces?subject=barack"), &["-H", &key]);
    assert_eq!((status, &del["deleted"]), (200, &Value::from(1)), "{del}");

    // Every parameter honoured or refused: unknown ones, plugins this server lacks, a threshold below the
    // detector's floor; errors in CompreFace's shape, the key's too.
    for q in ["foo=1", "face_plugins=mask", "det_prob_threshold=0.1", "limit=-1", "detect_faces=false"] {
        let (status, e) = curl("POST", &format!("{b}/api/v1/recognition/recognize?{q}"), &[&mp[..], &["-F", &held_out]].concat());
        assert_eq!((status, e["code"].as_u64()), (400, Some(26)), "{q}: {e}");
        assert!(e["message"].is_string(), "{e}");
    }
    // A parameter a route does not take is refused there too: `?subject=` on delete-all deletes nothing.
    let (status, e) = curl("DELETE", &format!("{b}/api/v1/recognition/subjects?subject=biden"), &["-H", &key]);
    assert_eq!((status, e["code"].as_u64()), (400, Some(26)), "{e}");
    let (_, s) = curl("GET", &format!("{b}/api/v1/recognition/subjects"), &["-H", &key]);
    assert_eq!(s["subjects"], serde_json::json!(["biden"]), "{s}");
    let (status, e) = curl("POST", &format!("{b}/api/v1/recognition/recognize?limit=1&limit=2"), &[&mp[..], &["-F", &held_out]].concat());
    assert_eq!((status, e["code"].as_u64()), (400, Some(26)), "a parameter given twice: {e}");
    // A new spelling of a name is a rename, not a merge into itself.
    let (status, u) = curl(
        "PUT",
        &format!("{b}/api/v1/recognition/subjects/biden"),
        &["-H", "Content-Type: application/json", "-H", &key, "-d", r#"{"subject": "Biden"}"#],
    );
    assert_eq!((status, &u["updated"]), (200, &Value::Bool(true)), "{u}");
    let (status, e) = curl("GET", &format!("{b}/api/v1/recognition/subjects"), &[]);
    assert_eq!((status, e["code"].as_u64()), (401, Some(20)), "{e}");
    let (status, e) = curl("GET", &format!("{b}/api/v1/recognition/subjects"), &["-H", "x-api-key: wrong"]);
    assert_eq!((status, e["code"].as_u64()), (401, Some(10)), "{e}");
    // The native API is as honest now: `/api/recognize?limit=1` used to be answered as if `limit` was not there.
    let (status, e) = curl("POST", &format!("{b}/api/recognize?limit=1"), &["-H", &key, "-F", &held_out]);
    assert_eq!(status, 400, "{e}");
    assert!(e["error"].as_str().is_some_and(|m| m.contains("unknown parameter `limit`")), "{e}");
}
