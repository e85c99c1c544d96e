//! CompreFace's REST API (`/api/v1/…`), for clients written for it: Double Take's CompreFace detector, Home
//! Assistant automations, CompreFace's SDKs. Same paths, parameters, bodies (a multipart `file` part, or JSON
//! `{"file": "<base64>"}`) and answer shapes (`box {probability, x_max, y_max, x_min, y_min}`,
//! `subjects [{subject, similarity}]`, `execution_time`, `plugins_versions`); errors are `{"message", "code"}` with
//! CompreFace's codes (28 no face, 31 several faces, 42 no such subject, 44 no such image, …).
//!
//! Face plugins: `landmarks`, `calculator` (the embedding; `embedding` is another name for it), `age` and `gender`
//! (dlib's CC0 models, loaded at their first use), `expression` (fer's MIT model, compiled in; CompreFace has no
//! such plugin). Every parameter is honoured or refused with 400, never ignored: an unknown parameter, a face plugin
//! this server does not have (`pose`, `mask`), a `det_prob_threshold` below the detector's own floor (`detect.score_threshold`: faces less
//! certain than that are never found) or `detect_faces=false` (faces are aligned from their detected landmarks) are
//! refused with the reason. Differences from CompreFace, each for a reason: a subject exists while it has a face
//! (`POST /subjects` of a new name is refused: add a face instead); `similarity` is the recognizer's cosine
//! clamped to 0..1 (compare with the recognizer's threshold, `GET /api/health` … `facewatch models`); image ids are
//! the gallery's photo ids; an image download is the stored aligned face crop (photos themselves are not kept); a
//! missing or wrong key is 401 (CompreFace: 400 code 20 / 404 code 10, same bodies).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::{read_body, Failure, Shared};
use crate::base::{Detection, Frame};
use crate::gallery::{Gallery, GalleryError};
use crate::stills::{Engine, EngineError, Face};

/// The routes, under `/api/v1`.
pub(super) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/recognition/recognize", post(recognize))
        .route("/api/v1/detection/detect", post(detect))
        .route("/api/v1/verification/verify", post(verify_images))
        .route("/api/v1/recognition/faces", post(add_face).get(list_faces).delete(delete_subject_faces))
        .route("/api/v1/recognition/faces/delete", post(delete_faces))
        .route("/api/v1/recognition/faces/{image_id}", delete(delete_face))
        .route("/api/v1/recognition/faces/{image_id}/img", get(download))
        .route("/api/v1/recognition/faces/{image_id}/verify", post(verify_face))
        .route("/api/v1/recognition/subjects", get(list_subjects).post(add_subject).delete(delete_all_subjects))
        // CompreFace's documented list command ends in a slash (its Spring server matches both).
        .route("/api/v1/recognition/subjects/", get(list_subjects))
        .route("/api/v1/recognition/subjects/{subject}", axum::routing::put(rename_subject).delete(delete_subject))
}

/// The routes as [`super::ROUTES`] lists them.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/recognition/recognize"),
    ("post", "/api/v1/detection/detect"),
    ("post", "/api/v1/verification/verify"),
    ("post", "/api/v1/recognition/faces"),
    ("get", "/api/v1/recognition/faces"),
    ("delete", "/api/v1/recognition/faces"),
    ("post", "/api/v1/recognition/faces/delete"),
    ("delete", "/api/v1/recognition/faces/{image_id}"),
    ("get", "/api/v1/recognition/faces/{image_id}/img"),
    ("post", "/api/v1/recognition/faces/{image_id}/verify"),
    ("get", "/api/v1/recognition/subjects"),
    ("post", "/api/v1/recognition/subjects"),
    ("delete", "/api/v1/recognition/subjects"),
    ("put", "/api/v1/recognition/subjects/{subject}"),
    ("delete", "/api/v1/recognition/subjects/{subject}"),
];

/// CompreFace's error codes used here.
mod code {
    pub const UNDEFINED: u32 = 0;
    pub const NOT_FOUND_KEY: u32 = 10;
    pub const MISSING_HEADER: u32 = 20;
    pub const BAD_FILE: u32 = 21;
    pub const VALIDATION: u32 = 26;
    pub const NO_FACE: u32 = 28;
    pub const TOO_MANY_FACES: u32 = 31;
    pub const MISSING_PARAMETER: u32 = 33;
    pub const MISSING_PART: u32 = 34;
    pub const INCORRECT_ARGUMENT: u32 = 36;
    pub const SERVICE: u32 = 41;
    pub const SUBJECT_NOT_FOUND: u32 = 42;
    pub const SUBJECT_EXISTS: u32 = 43;
    pub const IMAGE_NOT_FOUND: u32 = 44;
}

/// An error answer in CompreFace's shape: `{"message": …, "code": …}`.
pub(super) struct CfError(StatusCode, u32, String);

impl CfError {
    fn bad(code: u32, message: impl Into<String>) -> Self {
        Self(StatusCode::BAD_REQUEST, code, message.into())
    }

    fn no_face() -> Self {
        Self::bad(code::NO_FACE, "No face is found in the given image")
    }
}

impl IntoResponse for CfError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"message": self.2, "code": self.1}))).into_response()
    }
}

impl From<Failure> for CfError {
    fn from(Failure(status, message): Failure) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => code::VALIDATION,
            StatusCode::NOT_FOUND if message.contains("photo") => code::IMAGE_NOT_FOUND,
            StatusCode::NOT_FOUND if message.contains("person") => code::SUBJECT_NOT_FOUND,
            StatusCode::UNAUTHORIZED if message.contains("required") => code::MISSING_HEADER,
            StatusCode::UNAUTHORIZED => code::NOT_FOUND_KEY,
            StatusCode::SERVICE_UNAVAILABLE => code::SERVICE,
            _ => code::UNDEFINED,
        };
        Self(status, code, message)
    }
}

impl From<GalleryError> for CfError {
    fn from(e: GalleryError) -> Self {
        match e {
            GalleryError::UnknownPerson(name) => Self(StatusCode::NOT_FOUND, code::SUBJECT_NOT_FOUND, format!("Subject {name} not found")),
            GalleryError::UnknownPhoto(id) => Self(StatusCode::NOT_FOUND, code::IMAGE_NOT_FOUND, format!("Image {id} not found")),
            GalleryError::BadName(m) => Self::bad(code::INCORRECT_ARGUMENT, m),
            other => Failure::from(other).into(),
        }
    }
}

impl From<EngineError> for CfError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::NoFace(_) => Self::no_face(),
            EngineError::SeveralFaces { .. } => Self::bad(code::TOO_MANY_FACES, "More than one face in the source image"),
            other => Failure::from(other).into(),
        }
    }
}

/// Rewrites the error answers made outside this module (the key check, the size limit, no such route) for a
/// CompreFace path into CompreFace's shape, so a client of it always reads `message` and `code`.
pub(super) async fn errors_in_its_shape(request: Request, next: axum::middleware::Next) -> Response {
    if !request.uri().path().starts_with("/api/v1/") {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    let status = response.status();
    let is_ours =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| t.starts_with("application/json"));
    if status.is_success() || !is_ours {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 10).await else {
        return CfError(status, code::UNDEFINED, "the error could not be read".into()).into_response();
    };
    match serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| v.get("error").and_then(Value::as_str).map(String::from)) {
        Some(message) => {
            let mut out = CfError::from(Failure(status, message)).into_response();
            for (name, value) in parts.headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE && *n != header::CONTENT_LENGTH) {
                out.headers_mut().insert(name.clone(), value.clone());
            }
            out
        }
        None => Response::from_parts(parts, axum::body::Body::from(bytes)),
    }
}

/// The face plugins asked for (`face_plugins`).
#[derive(Debug, Default, Clone, Copy)]
struct Plugins {
    landmarks: bool,
    calculator: bool,
    age: bool,
    gender: bool,
    expression: bool,
}

/// A route's query parameters; one given twice is refused (which of the two would count?).
struct Q(HashMap<String, String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Q {
    type Rejection = CfError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, CfError> {
        let mut out = HashMap::new();
        for (k, v) in form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            if out.insert(k.to_string(), v.to_string()).is_some() {
                return Err(CfError::bad(code::VALIDATION, format!("parameter `{k}` is given twice")));
            }
        }
        Ok(Self(out))
    }
}

/// The face plugins this server has.
const PLUGINS: &str = "landmarks, calculator (or embedding), age, gender, expression";

/// A route's query, checked: each parameter the route takes, parsed and within range.
#[derive(Debug, Clone)]
struct Params {
    limit: usize,
    prediction_count: usize,
    det_prob_threshold: Option<f32>,
    plugins: Plugins,
    status: bool,
    subject: Option<String>,
    page: usize,
    size: usize,
}

/// Parses `q`: a parameter not in `takes` is refused, as is a value out of range.
fn params(q: &HashMap<String, String>, takes: &[&str], floor: f32) -> Result<Params, CfError> {
    if let Some(unknown) = q.keys().find(|k| !takes.contains(&k.as_str())) {
        return Err(CfError::bad(code::VALIDATION, format!("unknown parameter `{unknown}`: this route takes {}", takes.join(", "))));
    }
    let int = |name: &str, default: usize, min: usize, max: usize| -> Result<usize, CfError> {
        match q.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| CfError::bad(code::VALIDATION, format!("{name} `{v}`: an integer from {min} to {max}"))),
        }
    };
    let flag = |name: &str, default: bool| -> Result<bool, CfError> {
        match q.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if v == "true" => Ok(true),
            Some(v) if v == "false" => Ok(false),
            Some(v) => Err(CfError::bad(code::VALIDATION, format!("{name} `{v}`: true or false"))),
        }
    };
    let det_prob_threshold = match q.get("det_prob_threshold") {
        None => None,
        Some(v) => {
            let t = v
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|t| (0.0..=1.0).contains(t))
                .ok_or_else(|| CfError::bad(code::VALIDATION, format!("det_prob_threshold `{v}`: a number from 0 to 1")))?;
            if t + 1e-6 < floor {
                return Err(CfError::bad(
                    code::VALIDATION,
                    format!(
                        "det_prob_threshold {t} is below this server's detector floor {floor} (detect.score_threshold): faces less \
                         certain than that are never found; ask for {floor} or more, or lower detect.score_threshold"
                    ),
                ));
            }
            Some(t)
        }
    };
    let mut plugins = Plugins::default();
    for slug in q.get("face_plugins").map(String::as_str).unwrap_or("").split(',').map(str::trim) {
        match slug {
            // Empty, and what Double Take sends when it has no plugins configured.
            "" | "undefined" | "null" => {}
            "landmarks" => plugins.landmarks = true,
            "calculator" | "embedding" => plugins.calculator = true,
            "age" => plugins.age = true,
            "gender" => plugins.gender = true,
            "expression" => plugins.expression = true,
            "pose" | "mask" | "landmarks2d106" => {
                return Err(CfError::bad(
                    code::VALIDATION,
                    format!("face plugin `{slug}` is not available on this server; it has: {PLUGINS}"),
                ))
            }
            other => return Err(CfError::bad(code::VALIDATION, format!("unknown face plugin `{other}`; this server has: {PLUGINS}"))),
        }
    }
    if !flag("detect_faces", true)? {
        return Err(CfError::bad(
            code::VALIDATION,
            "detect_faces=false is not supported: faces are aligned from the landmarks their detection finds",
        ));
    }
    let subject = q.get("subject").map(|s| s.trim().to_string());
    Ok(Params {
        limit: int("limit", 0, 0, 1000)?,
        prediction_count: int("prediction_count", 1, 1, 100)?,
        det_prob_threshold,
        plugins,
        status: flag("status", false)?,
        subject,
        page: int("page", 0, 0, 1_000_000)?,
        size: int("size", 20, 1, 1000)?,
    })
}

/// The images of a request, by part name: a multipart body's parts, or a JSON body's base64 strings.
async fn images<const N: usize>(shared: &Shared, request: Request, names: [&str; N]) -> Result<[Bytes; N], CfError> {
    let (parts, body) = read_body(request, shared.max_upload, shared.body_timeout).await?;
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let mut found: HashMap<String, Bytes> = if content_type.starts_with("application/json") {
        use base64::Engine as _;
        let doc: Value = serde_json::from_slice(&body).map_err(|e| CfError::bad(code::VALIDATION, format!("the JSON body: {e}")))?;
        let mut out = HashMap::new();
        for name in names {
            if let Some(v) = doc.get(name) {
                let text = v.as_str().ok_or_else(|| CfError::bad(code::BAD_FILE, format!("`{name}` is not a base64 string")))?;
                // A data URL's header is not part of the image.
                let text = text.split_once(";base64,").map_or(text, |(_, b)| b);
                // Padded or not, as Java's decoder (CompreFace's) takes either.
                let engine = base64::engine::GeneralPurpose::new(
                    &base64::alphabet::STANDARD,
                    base64::engine::GeneralPurposeConfig::new().with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
                );
                let bytes = engine.decode(text.trim()).map_err(|_| CfError::bad(code::BAD_FILE, "Provided value is not Base64"))?;
                out.insert(name.to_string(), Bytes::from(bytes));
            }
        }
        out
    } else if content_type.starts_with("multipart/form-data") {
        super::multipart_fields(Request::from_parts(parts, axum::body::Body::from(body))).await?
    } else {
        return Err(CfError::bad(
            code::MISSING_PART,
            "send the image as a multipart/form-data part `file` or as JSON {\"file\": \"<base64>\"}",
        ));
    };
    let mut out: [Bytes; N] = std::array::from_fn(|_| Bytes::new());
    for (slot, name) in out.iter_mut().zip(names) {
        *slot = found.remove(name).ok_or_else(|| CfError::bad(code::MISSING_PART, format!("Required part {name} is missing")))?;
    }
    Ok(out)
}

/// Runs `f` on the models and gallery off the server's thread (`super::on_models`), answering in CompreFace's
/// error shape.
async fn work<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&mut Engine, &mut Gallery) -> Result<T, CfError> + Send + 'static,
) -> Result<T, CfError> {
    super::on_models(shared, f).await
}

/// Rounded as CompreFace rounds similarities and probabilities: 5 decimals.
fn round5(v: f32) -> f64 {
    (f64::from(v) * 1e5).round() / 1e5
}

/// Milliseconds since `t`, one decimal.
fn ms(t: Instant) -> f64 {
    (t.elapsed().as_secs_f64() * 1e4).round() / 10.0
}

/// A detection's box in whole pixels inside the image, as CompreFace gives it.
fn box_of(d: &Detection, frame: &Frame) -> Value {
    let (w, h) = (frame.original_width as f32, frame.original_height as f32);
    let clamp = |v: f32, max: f32| v.clamp(0.0, max).round() as i64;
    json!({
        "probability": round5(d.score),
        "x_max": clamp(d.bbox.x + d.bbox.w, w),
        "y_max": clamp(d.bbox.y + d.bbox.h, h),
        "x_min": clamp(d.bbox.x, w),
        "y_min": clamp(d.bbox.y, h),
    })
}

/// The faces of a photo the parameters ask for: detected (at or above `det_prob_threshold`), the `limit` largest,
/// each aligned and embedded; the detector's and the recognizer's time.
struct Found {
    frame: Frame,
    faces: Vec<Face>,
    /// Each face's age and gender, when a plugin asked for them.
    attributes: Vec<Option<crate::attributes::Attributes>>,
    /// Each face's expression, when the plugin asked for it.
    expressions: Vec<Option<crate::attributes::expression::Expression>>,
    detector_ms: f64,
    calculator_ms: f64,
    attributes_ms: f64,
    expression_ms: f64,
}

fn find_faces(engine: &mut Engine, bytes: &[u8], p: &Params, name: &str) -> Result<Found, CfError> {
    let frame = engine.decode(bytes, std::path::Path::new(name)).map_err(|e| CfError::bad(code::BAD_FILE, e.to_string()))?;
    let t = Instant::now();
    let mut detections = engine.detect(&frame)?;
    let detector_ms = ms(t);
    detections.retain(|d| p.det_prob_threshold.is_none_or(|min| d.score >= min));
    detections.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
    if p.limit > 0 {
        detections.truncate(p.limit);
    }
    if detections.is_empty() {
        return Err(CfError::no_face());
    }
    let t = Instant::now();
    let faces = detections.iter().map(|d| engine.face(&frame, d)).collect::<Result<Vec<_>, _>>()?;
    let calculator_ms = ms(t);
    let t = Instant::now();
    let attributes = match p.plugins.age || p.plugins.gender {
        false => vec![None; faces.len()],
        true => {
            engine.attribute_models().map_err(|e| match e {
                EngineError::Model(crate::model::ModelError::Missing { .. } | crate::model::ModelError::Unknown { .. }) => CfError::bad(
                    code::VALIDATION,
                    "the age and gender plugins need their models, which are not installed on this server (facewatch models install age gender)",
                ),
                other => other.into(),
            })?;
            each_face(engine, &frame, &detections, Engine::attributes)?
        }
    };
    let attributes_ms = ms(t);
    let t = Instant::now();
    let expressions = match p.plugins.expression {
        false => vec![None; faces.len()],
        true => each_face(engine, &frame, &detections, Engine::expression)?,
    };
    Ok(Found { frame, faces, attributes, expressions, detector_ms, calculator_ms, attributes_ms, expression_ms: ms(t) })
}

/// A face plugin's estimate for each detection: a face whose crop cannot be cut keeps its box without one; a model
/// that does not load or run fails the request.
fn each_face<T>(
    engine: &mut Engine,
    frame: &Frame,
    detections: &[Detection],
    estimate: impl Fn(&mut Engine, &Frame, &Detection) -> Result<T, EngineError>,
) -> Result<Vec<Option<T>>, CfError> {
    let mut out = Vec::with_capacity(detections.len());
    for d in detections {
        out.push(match estimate(engine, frame, d) {
            Ok(a) => Some(a),
            Err(EngineError::Attribute(crate::attributes::AttributeError::Model(e)) | EngineError::Model(e)) => {
                return Err(EngineError::Model(e).into())
            }
            Err(_) => None,
        });
    }
    Ok(out)
}

/// One face as CompreFace describes it: its box, the plugins asked for, and (with `status`) the time taken.
fn face_json(i: usize, found: &Found, p: &Params) -> Map<String, Value> {
    let face = &found.faces[i];
    let mut out = Map::new();
    out.insert("box".into(), box_of(&face.detection, &found.frame));
    if let Some(Some(a)) = found.attributes.get(i) {
        if p.plugins.age {
            out.insert(
                "age".into(),
                json!({"probability": round5(a.age.probability), "high": a.age.high, "low": a.age.low, "value": a.age.value}),
            );
        }
        if p.plugins.gender {
            out.insert("gender".into(), json!({"probability": round5(a.gender.probability), "value": a.gender.value}));
        }
    }
    if let Some(Some(e)) = found.expressions.get(i) {
        out.insert("expression".into(), json!({"probability": round5(e.probability), "value": e.value}));
    }
    if p.plugins.landmarks {
        let points: Vec<[i64; 2]> = face.detection.landmarks.iter().map(|[x, y]| [x.round() as i64, y.round() as i64]).collect();
        out.insert("landmarks".into(), json!(points));
    }
    if p.plugins.calculator {
        out.insert("embedding".into(), json!(face.embedding.as_slice()));
    }
    if p.status {
        let n = found.faces.len().max(1) as f64;
        let mut times = json!({"detector": found.detector_ms, "calculator": (found.calculator_ms / n * 10.0).round() / 10.0});
        if p.plugins.age || p.plugins.gender {
            // Both models run for either plugin: their time together, per face.
            times["age_gender"] = json!((found.attributes_ms / n * 10.0).round() / 10.0);
        }
        if p.plugins.expression {
            times["expression"] = json!((found.expression_ms / n * 10.0).round() / 10.0);
        }
        out.insert("execution_time".into(), times);
    }
    out
}

fn versions(engine: &Engine, p: &Params) -> Value {
    let info = engine.info();
    let mut out = json!({"detector": format!("facewatch.{}", info.detector), "calculator": format!("facewatch.{}", info.recognizer)});
    if p.plugins.age {
        out["age"] = json!("facewatch.dlib_age_v1");
    }
    if p.plugins.gender {
        out["gender"] = json!("facewatch.dlib_gender_v1");
    }
    if p.plugins.expression {
        out["expression"] = json!("facewatch.fer_mini_xception");
    }
    out
}

/// `{"result": [...]}`, with `plugins_versions` when `status` is asked for.
fn result(faces: Vec<Map<String, Value>>, p: &Params, engine: &Engine) -> Value {
    let mut out = json!({"result": faces});
    if p.status {
        out["plugins_versions"] = versions(engine, p);
    }
    out
}

const RECOGNIZE: &[&str] = &["limit", "prediction_count", "det_prob_threshold", "face_plugins", "status", "detect_faces"];
const DETECT: &[&str] = &["limit", "det_prob_threshold", "face_plugins", "status"];

fn floor(shared: &Shared) -> f32 {
    shared.det_floor
}

async fn recognize(State(shared): State<Arc<Shared>>, Q(q): Q, request: Request) -> Result<Json<Value>, CfError> {
    let [file] = images(&shared, request, ["file"]).await?;
    let p = params(&q, RECOGNIZE, floor(&shared))?;
    let out = work(&shared, move |engine, gallery| {
        let found = find_faces(engine, &file, &p, "file")?;
        let faces = found
            .faces
            .iter()
            .enumerate()
            .map(|(i, face)| {
                let mut f = face_json(i, &found, &p);
                let subjects: Vec<Value> = gallery
                    .search(&face.embedding, p.prediction_count)
                    .into_iter()
                    .map(|c| json!({"subject": c.name, "similarity": round5(c.score.clamp(0.0, 1.0))}))
                    .collect();
                f.insert("subjects".into(), json!(subjects));
                f
            })
            .collect();
        Ok(result(faces, &p, engine))
    })
    .await?;
    Ok(Json(out))
}

async fn detect(State(shared): State<Arc<Shared>>, Q(q): Q, request: Request) -> Result<Json<Value>, CfError> {
    let [file] = images(&shared, request, ["file"]).await?;
    let p = params(&q, DETECT, floor(&shared))?;
    let out = work(&shared, move |engine, _| {
        let found = find_faces(engine, &file, &p, "file")?;
        let faces = (0..found.faces.len()).map(|i| face_json(i, &found, &p)).collect();
        Ok(result(faces, &p, engine))
    })
    .await?;
    Ok(Json(out))
}

/// `POST /verification/verify`: the one face of `source_image` against every face of `target_image`.
async fn verify_images(State(shared): State<Arc<Shared>>, Q(q): Q, request: Request) -> Result<Json<Value>, CfError> {
    let [source, target] = images(&shared, request, ["source_image", "target_image"]).await?;
    let p = params(&q, DETECT, floor(&shared))?;
    let out = work(&shared, move |engine, _| {
        // The source must hold exactly one face (the limit does not apply to it).
        let one = Params { limit: 0, subject: None, ..p.clone() };
        let src = find_faces(engine, &source, &one, "source_image")?;
        if src.faces.len() > 1 {
            return Err(CfError::bad(code::TOO_MANY_FACES, "More than one face in the source image"));
        }
        let tgt = find_faces(engine, &target, &p, "target_image")?;
        let reference = &src.faces[0];
        let matches: Vec<Value> = tgt
            .faces
            .iter()
            .enumerate()
            .map(|(i, face)| {
                let mut f = face_json(i, &tgt, &p);
                f.insert("similarity".into(), json!(round5(reference.embedding.cosine(&face.embedding).clamp(0.0, 1.0))));
                Value::Object(f)
            })
            .collect();
        let mut element = json!({"source_image_face": face_json(0, &src, &p), "face_matches": matches});
        if p.status {
            element["plugins_versions"] = versions(engine, &p);
        }
        Ok(json!({"result": [element]}))
    })
    .await?;
    Ok(Json(out))
}

/// A subject as the gallery spells it: the person of exactly that name, else one whose name matches
/// case-insensitively (CompreFace's lookup), else the name as given.
fn spelled(gallery: &Gallery, subject: &str) -> Result<String, CfError> {
    let names: Vec<String> = gallery.persons()?.into_iter().map(|p| p.name).collect();
    if names.iter().any(|n| n == subject) {
        return Ok(subject.to_string());
    }
    Ok(names.into_iter().find(|n| n.eq_ignore_ascii_case(subject)).unwrap_or_else(|| subject.to_string()))
}

/// The most image ids `POST /recognition/faces/delete` takes at once.
const MAX_IDS: usize = 1000;

/// `POST /recognition/faces?subject=`: a photo with exactly one face becomes an example of the subject (made when
/// new); 201 `{"image_id", "subject"}`.
async fn add_face(State(shared): State<Arc<Shared>>, Q(q): Q, request: Request) -> Result<(StatusCode, Json<Value>), CfError> {
    // The body first: answering before reading it would break the client's upload.
    let [file] = images(&shared, request, ["file"]).await?;
    let p = params(&q, &["subject", "det_prob_threshold"], floor(&shared))?;
    let subject = p.subject.clone().ok_or_else(|| CfError::bad(code::MISSING_PARAMETER, "Required parameter subject is missing"))?;
    if subject.is_empty() {
        return Err(CfError::bad(code::VALIDATION, "Subject name is empty"));
    }
    crate::gallery::check_name(&subject)?;
    let out = work(&shared, move |engine, gallery| {
        use sha2::Digest;
        let name = spelled(gallery, &subject)?;
        let hash = crate::model::hex(&sha2::Sha256::digest(&file));
        let owners: Vec<String> = gallery.owners_of(&hash)?.into_iter().filter(|o| *o != name).collect();
        if !owners.is_empty() {
            return Err(CfError::bad(code::VALIDATION, format!("the same photo is already an example of {}", owners.join(", "))));
        }
        let found = find_faces(engine, &file, &Params { limit: 0, ..p.clone() }, "file")?;
        if found.faces.len() > 1 {
            return Err(CfError::bad(code::TOO_MANY_FACES, "More than one face in the source image"));
        }
        let face = &found.faces[0];
        let item = crate::gallery::NewEmbedding {
            embedding: face.embedding.clone(),
            source_path: "api:compreface".into(),
            file_sha256: hash.clone(),
            det_score: face.detection.score,
            crop: crate::image::encode_jpeg(&face.aligned.bgr, 90).ok(),
        };
        gallery.enroll(&name, &[item])?;
        let id =
            gallery.photos(&name)?.into_iter().find(|ph| ph.sha256 == hash).map(|ph| ph.id).ok_or_else(|| {
                CfError(StatusCode::INTERNAL_SERVER_ERROR, code::UNDEFINED, "the example was added but is not listed".into())
            })?;
        Ok(json!({"image_id": id.to_string(), "subject": name}))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Every example: (image id, subject), in subject then id order.
fn examples(gallery: &Gallery) -> Result<Vec<(i64, String)>, CfError> {
    let mut out = Vec::new();
    for person in gallery.persons()? {
        for photo in gallery.photos(&person.name)? {
            out.push((photo.id, person.name.clone()));
        }
    }
    Ok(out)
}

/// An image id of a path, as the gallery numbers photos.
fn image_id(id: &str) -> Result<i64, CfError> {
    id.trim().parse().map_err(|_| CfError(StatusCode::NOT_FOUND, code::IMAGE_NOT_FOUND, format!("Image {id} not found")))
}

/// `GET /recognition/faces?page=&size=&subject=`: the examples, a page at a time (pages count from 0).
async fn list_faces(State(shared): State<Arc<Shared>>, Q(q): Q) -> Result<Json<Value>, CfError> {
    let p = params(&q, &["page", "size", "subject"], 0.0)?;
    let out = work(&shared, move |_, gallery| {
        let subject = p.subject.as_deref().filter(|s| !s.is_empty()).map(|s| spelled(gallery, s)).transpose()?;
        let all: Vec<(i64, String)> =
            examples(gallery)?.into_iter().filter(|(_, s)| subject.as_ref().is_none_or(|want| s == want)).collect();
        let total = all.len();
        let faces: Vec<Value> =
            all.into_iter().skip(p.page * p.size).take(p.size).map(|(id, s)| json!({"image_id": id.to_string(), "subject": s})).collect();
        Ok(json!({
            "faces": faces,
            "page_number": p.page,
            "page_size": p.size,
            "total_pages": total.div_ceil(p.size),
            "total_elements": total,
        }))
    })
    .await?;
    Ok(Json(out))
}

/// `DELETE /recognition/faces?subject=`: every example of the subject; `{"deleted": n}` (0 for an unknown one).
async fn delete_subject_faces(State(shared): State<Arc<Shared>>, Q(q): Q) -> Result<Json<Value>, CfError> {
    let p = params(&q, &["subject"], 0.0)?;
    let subject = p.subject.filter(|s| !s.is_empty()).ok_or_else(|| CfError::bad(code::VALIDATION, "Subject name is empty"))?;
    let deleted = work(&shared, move |_, gallery| {
        let name = spelled(gallery, &subject)?;
        match gallery.remove(&name) {
            Ok(n) => Ok(n),
            Err(GalleryError::UnknownPerson(_)) => Ok(0),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    Ok(Json(json!({"deleted": deleted})))
}

/// Removes one example; `{"image_id", "subject"}`.
fn remove_example(gallery: &mut Gallery, id: i64) -> Result<Value, CfError> {
    let removed = gallery.remove_photo(id)?;
    Ok(json!({"image_id": id.to_string(), "subject": removed.name}))
}

async fn delete_face(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, Q(q): Q) -> Result<Json<Value>, CfError> {
    params(&q, &[], 0.0)?;
    let id = image_id(&id)?;
    Ok(Json(work(&shared, move |_, gallery| remove_example(gallery, id)).await?))
}

/// `POST /recognition/faces/delete` with `["id", …]`: those examples (unknown ids are skipped); an array.
async fn delete_faces(State(shared): State<Arc<Shared>>, Q(q): Q, request: Request) -> Result<Json<Value>, CfError> {
    let (_, body) = read_body(request, shared.max_upload, shared.body_timeout).await?;
    params(&q, &[], 0.0)?;
    let ids: Vec<Value> =
        serde_json::from_slice(&body).map_err(|e| CfError::bad(code::VALIDATION, format!("the body is a JSON array of image ids: {e}")))?;
    let ids: Vec<i64> = ids
        .iter()
        .map(|v| match v {
            Value::String(s) => s.trim().parse().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| CfError::bad(code::VALIDATION, "the body is a JSON array of image ids"))?;
    if ids.len() > MAX_IDS {
        return Err(CfError::bad(code::VALIDATION, format!("at most {MAX_IDS} image ids at once")));
    }
    let out = work(&shared, move |_, gallery| {
        let mut removed = Vec::new();
        for id in ids {
            match remove_example(gallery, id) {
                Ok(v) => removed.push(v),
                Err(CfError(StatusCode::NOT_FOUND, ..)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Value::Array(removed))
    })
    .await?;
    Ok(Json(out))
}

/// `GET /recognition/faces/{image_id}/img`: the example's stored face (the aligned crop, JPEG).
async fn download(State(shared): State<Arc<Shared>>, UrlPath(id): UrlPath<String>, Q(q): Q) -> Result<Response, CfError> {
    params(&q, &[], 0.0)?;
    let id = image_id(&id)?;
    let jpeg = work(&shared, move |_, gallery| {
        if !examples(gallery)?.iter().any(|(i, _)| *i == id) {
            return Err(GalleryError::UnknownPhoto(id).into());
        }
        Ok(gallery.store().photo_crop(id)?)
    })
    .await?
    .ok_or_else(|| {
        CfError(StatusCode::NOT_FOUND, code::IMAGE_NOT_FOUND, format!("Image {id} kept no face (enrolled before crops were kept)"))
    })?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "private, max-age=86400")], jpeg).into_response())
}

/// `POST /recognition/faces/{image_id}/verify`: every face of the upload against that example.
async fn verify_face(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    Q(q): Q,
    request: Request,
) -> Result<Json<Value>, CfError> {
    let [file] = images(&shared, request, ["file"]).await?;
    let p = params(&q, DETECT, floor(&shared))?;
    let id = image_id(&id)?;
    let out = work(&shared, move |engine, gallery| {
        let stored = gallery.store().embeddings()?.into_iter().find(|e| e.id == id).ok_or(GalleryError::UnknownPhoto(id))?;
        let reference = crate::base::Embedding::from_unit(stored.vector);
        let found = find_faces(engine, &file, &p, "file")?;
        let faces: Vec<Map<String, Value>> = found
            .faces
            .iter()
            .enumerate()
            .map(|(i, face)| {
                let mut f = face_json(i, &found, &p);
                f.insert("subject".into(), json!(stored.name));
                f.insert("similarity".into(), json!(round5(reference.cosine(&face.embedding).clamp(0.0, 1.0))));
                f
            })
            .collect();
        Ok(result(faces, &p, engine))
    })
    .await?;
    Ok(Json(out))
}

/// The `subject` of a JSON body `{"subject": "…"}`.
async fn subject_of(shared: &Shared, request: Request) -> Result<String, CfError> {
    let (_, body) = read_body(request, shared.max_upload, shared.body_timeout).await?;
    let doc: Value =
        serde_json::from_slice(&body).map_err(|e| CfError::bad(code::VALIDATION, format!("the body is {{\"subject\": \"…\"}}: {e}")))?;
    let s = doc.get("subject").and_then(Value::as_str).map(str::trim).unwrap_or("");
    if s.is_empty() {
        return Err(CfError::bad(code::VALIDATION, "Subject name cannot be empty"));
    }
    crate::gallery::check_name(s)?;
    Ok(s.to_string())
}

async fn list_subjects(State(shared): State<Arc<Shared>>, Q(q): Q) -> Result<Json<Value>, CfError> {
    params(&q, &[], 0.0)?;
    let names = work(&shared, |_, gallery| Ok(gallery.persons()?.into_iter().map(|p| p.name).collect::<Vec<_>>())).await?;
    Ok(Json(json!({"subjects": names})))
}

/// `POST /recognition/subjects`: an existing subject is 400 code 43; a new one is refused, since a subject here
/// is the person of its examples: add a face with `POST /recognition/faces?subject=NAME`, which makes it.
async fn add_subject(State(shared): State<Arc<Shared>>, Q(q): Q, request: Request) -> Result<(StatusCode, Json<Value>), CfError> {
    let subject = subject_of(&shared, request).await?;
    params(&q, &[], 0.0)?;
    let exists = work(&shared, move |_, gallery| Ok(gallery.persons()?.iter().any(|p| p.name.eq_ignore_ascii_case(&subject)))).await?;
    Err(match exists {
        true => CfError::bad(code::SUBJECT_EXISTS, "Subject already exists"),
        false => CfError::bad(
            code::VALIDATION,
            "a subject is kept with its faces: add its first face with POST /api/v1/recognition/faces?subject=NAME, which creates it",
        ),
    })
}

/// `PUT /recognition/subjects/{subject}` with `{"subject": new}`: renamed (`{"updated": true}`); into an existing
/// subject, the examples are merged into it, as CompreFace does.
async fn rename_subject(
    State(shared): State<Arc<Shared>>,
    UrlPath(old): UrlPath<String>,
    Q(q): Q,
    request: Request,
) -> Result<Json<Value>, CfError> {
    let new = subject_of(&shared, request).await?;
    params(&q, &[], 0.0)?;
    let updated = work(&shared, move |_, gallery| {
        let old = spelled(gallery, &old)?;
        if !gallery.persons()?.iter().any(|p| p.name == old) {
            return Err(GalleryError::UnknownPerson(old).into());
        }
        if new == old {
            return Ok(false);
        }
        let target = spelled(gallery, &new)?;
        // A new spelling of the same name (`alice` for `Alice`) is a rename, not a merge into itself.
        if target != old && gallery.persons()?.iter().any(|p| p.name == target) {
            // Merge: every example of `old` moves to `target`.
            for photo in gallery.photos(&old)? {
                gallery.move_face(photo.id, &crate::gallery::strangers::FaceTarget::Person(target.clone()))?;
            }
        } else {
            gallery.rename(&old, &new)?;
        }
        Ok(true)
    })
    .await?;
    Ok(Json(json!({"updated": updated})))
}

async fn delete_subject(State(shared): State<Arc<Shared>>, UrlPath(subject): UrlPath<String>, Q(q): Q) -> Result<Json<Value>, CfError> {
    params(&q, &[], 0.0)?;
    let name = work(&shared, move |_, gallery| {
        let name = spelled(gallery, &subject)?;
        gallery.remove(&name)?;
        Ok(name)
    })
    .await?;
    Ok(Json(json!({"subject": name})))
}

async fn delete_all_subjects(State(shared): State<Arc<Shared>>, Q(q): Q) -> Result<Json<Value>, CfError> {
    // `?subject=bob` here would delete everyone, not bob: refused like any parameter this route does not take.
    params(&q, &[], 0.0)?;
    let deleted = work(&shared, |_, gallery| {
        let names: Vec<String> = gallery.persons()?.into_iter().map(|p| p.name).collect();
        for n in &names {
            gallery.remove(n)?;
        }
        Ok(names.len())
    })
    .await?;
    Ok(Json(json!({"deleted": deleted})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_parameter_is_honoured_or_refused() {
        let p = params(
            &q(&[
                ("limit", "2"),
                ("prediction_count", "3"),
                ("det_prob_threshold", "0.9"),
                ("face_plugins", "landmarks,calculator"),
                ("status", "true"),
            ]),
            RECOGNIZE,
            0.6,
        )
        .unwrap_or_else(|e| panic!("{}", e.2));
        assert_eq!((p.limit, p.prediction_count, p.det_prob_threshold, p.status), (2, 3, Some(0.9), true));
        assert!(p.plugins.landmarks && p.plugins.calculator);
        // What Double Take sends when it has no plugins configured.
        assert!(params(&q(&[("face_plugins", "undefined"), ("det_prob_threshold", "0.8")]), RECOGNIZE, 0.6).is_ok());
        for (bad, why) in [
            (("unknown", "1"), "unknown parameter"),
            (("limit", "-1"), "limit"),
            (("prediction_count", "0"), "prediction_count"),
            (("det_prob_threshold", "1.5"), "det_prob_threshold"),
            (("det_prob_threshold", "0.3"), "below this server's detector floor"),
            (("face_plugins", "mask"), "not available"),
            (("face_plugins", "bogus"), "unknown face plugin"),
            (("status", "maybe"), "true or false"),
            (("detect_faces", "false"), "not supported"),
        ] {
            let e = params(&q(&[bad]), RECOGNIZE, 0.6).expect_err(why);
            assert_eq!((e.0, e.1), (StatusCode::BAD_REQUEST, code::VALIDATION), "{}", e.2);
            assert!(e.2.contains(why), "{} does not say {why}", e.2);
        }
        assert!(params(&q(&[("prediction_count", "2")]), DETECT, 0.6).is_err(), "detect takes no prediction_count");
    }
}
