//! The photo jobs: `detect` (faces and their crops), `verify` (a pair, or a photo against anchors) and `identify`
//! (every face against the gallery).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::JobError;
use crate::base::{face, BBox, Candidate, Detection, UNKNOWN};
use crate::gallery::Gallery;
use crate::stills::{Engine, EngineError, Face, ModelInfo};

/// One face found in a photo (original pixels), and where its crop was written.
#[derive(Debug, Serialize)]
pub struct FaceOut {
    /// Face box, original pixels.
    pub bbox: BBox,
    /// Eyes, nose tip, mouth corners (ArcFace order), original pixels.
    pub landmarks: [[f32; 2]; 5],
    /// Detector confidence, 0..1 (`det_score` in every report; `score` is always a cosine).
    pub det_score: f32,
    /// Where the aligned crop was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop: Option<PathBuf>,
    /// Estimated age, gender and expression (`detect --attributes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<crate::attributes::Attributes>,
}

/// The faces of one photo, or why it could not be read.
#[derive(Debug, Serialize)]
pub struct PhotoOut {
    /// The photo.
    pub path: PathBuf,
    /// Original width, pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Original height, pixels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Its faces.
    pub faces: Vec<FaceOut>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

fn face_out(d: &Detection, crop: Option<PathBuf>) -> FaceOut {
    FaceOut { bbox: d.bbox, landmarks: d.landmarks, det_score: d.score, crop, attributes: None }
}

/// Every face of every photo; with `crop_dir`, each face's aligned 112×112 crop written there (the folder created
/// 0700, each crop 0600: crops are faces); with `attributes`, each face's estimated age and gender (the models
/// missing is an error before any photo). A photo that cannot be read is reported with its error, not fatal.
pub fn detect(engine: &mut Engine, images: &[PathBuf], crop_dir: Option<&Path>, attributes: bool) -> Result<Vec<PhotoOut>, JobError> {
    if attributes {
        engine.attribute_models()?;
    }
    // Checked and held open: a link planted in it (or at it) is never followed.
    let crops =
        crop_dir.map(|dir| crate::private::PrivateDir::create(dir).map_err(JobError::file("use the crop folder", dir))).transpose()?;
    Ok(images
        .iter()
        .map(|path| {
            detect_one(engine, path, crops.as_ref(), attributes).unwrap_or_else(|e| PhotoOut {
                path: path.clone(),
                width: None,
                height: None,
                faces: vec![],
                error: Some(e.to_string()),
            })
        })
        .collect())
}

fn detect_one(engine: &mut Engine, path: &Path, crop: Option<&crate::private::PrivateDir>, attributes: bool) -> Result<PhotoOut, JobError> {
    let frame = engine.load(path)?;
    let dets = engine.detect(&frame)?;
    let mut faces = Vec::with_capacity(dets.len());
    for (i, d) in dets.iter().enumerate() {
        let original = d.map_coords(|v| frame.to_original(v));
        let crop_path = match crop {
            Some(dir) => {
                let aligned = crate::align::align(&frame.bgr, &d.landmarks).map_err(EngineError::from)?;
                let stem = path.file_stem().map_or_else(|| "photo".into(), |s| s.to_string_lossy().into_owned());
                Some(crate::image::write_png_private(dir, &format!("{stem}_face{i}.png"), &aligned.bgr).map_err(EngineError::from)?)
            }
            None => None,
        };
        let mut face = face_out(&original, crop_path);
        if attributes {
            let mut a = engine.attributes(&frame, d)?;
            a.expression = Some(engine.expression(&frame, d)?);
            face.attributes = Some(a);
        }
        faces.push(face);
    }
    Ok(PhotoOut { path: path.into(), width: Some(frame.original_width), height: Some(frame.original_height), faces, error: None })
}

/// One photo of a verification: its largest face, and how many it has.
#[derive(Debug, Serialize)]
pub struct VerifySide {
    /// The photo.
    pub path: PathBuf,
    /// Faces found in the photo (the largest is used).
    pub faces_found: usize,
    /// Face box, original pixels.
    pub bbox: BBox,
}

/// The score of an anchor photo against the input, and its vote.
#[derive(Debug, Serialize)]
pub struct AnchorScore {
    /// The anchor photo.
    #[serde(flatten)]
    pub side: VerifySide,
    /// Cosine similarity (for a detection: detector confidence).
    pub score: f32,
    /// Whether the score reaches the threshold (for the verdict: the decision).
    pub same: bool,
}

/// The verdict of `verify`.
#[derive(Debug, Serialize)]
pub struct VerifyOut {
    /// Whether the score reaches the threshold (for the verdict: the decision).
    pub same: bool,
    /// Cosine similarity (for a detection: detector confidence).
    pub score: f32,
    /// Threshold in force.
    pub threshold: f32,
    /// How the verdict was reached.
    pub decision: &'static str,
    /// The photo checked.
    pub input: VerifySide,
    /// Each anchor and its vote.
    pub anchors: Vec<AnchorScore>,
    /// Models in use.
    pub models: ModelInfo,
}

/// A photo to verify: read from its path, or already decoded (an upload), named by `path`.
pub enum Photo<'a> {
    /// A file.
    File(&'a Path),
    /// Decoded bytes and the name they go by.
    Decoded(&'a Path, &'a crate::base::Frame),
}

fn side(engine: &mut Engine, photo: &Photo<'_>) -> Result<(Face, VerifySide), JobError> {
    let (path, (face, n)) = match photo {
        Photo::File(path) => (*path, engine.largest_face(path)?),
        Photo::Decoded(path, frame) => (*path, engine.largest_face_in(frame, path)?),
    };
    let s = VerifySide { path: path.into(), faces_found: n, bbox: face.detection.bbox };
    Ok((face, s))
}

/// Is `input` the person of `anchors` (one anchor: a pair)? Each photo contributes its largest face (the count
/// found is reported). Each anchor votes "same" when its score reaches the threshold; the majority decides and a
/// tie goes to the mean score.
pub fn verify(engine: &mut Engine, input: &Path, anchors: &[&Path]) -> Result<VerifyOut, JobError> {
    let anchors: Vec<Photo<'_>> = anchors.iter().map(|a| Photo::File(a)).collect();
    verify_photos(engine, &Photo::File(input), &anchors)
}

/// [`verify`] on photos read or decoded already.
pub fn verify_photos(engine: &mut Engine, input: &Photo<'_>, anchors: &[Photo<'_>]) -> Result<VerifyOut, JobError> {
    if anchors.is_empty() {
        return Err(JobError::Input("verify needs at least one anchor photo".into()));
    }
    let threshold = engine.info().threshold;
    let (probe, input_side) = side(engine, input)?;
    let mut scores = Vec::with_capacity(anchors.len());
    for a in anchors {
        let (face, s) = side(engine, a)?;
        let score = face.embedding.cosine(&probe.embedding);
        scores.push(AnchorScore { side: s, score, same: score >= threshold });
    }
    let votes = scores.iter().filter(|s| s.same).count();
    let mean = scores.iter().map(|s| s.score).sum::<f32>() / scores.len() as f32;
    let (same, decision) = match (votes * 2).cmp(&scores.len()) {
        std::cmp::Ordering::Greater => (true, "majority of anchors"),
        std::cmp::Ordering::Less => (false, "majority of anchors"),
        std::cmp::Ordering::Equal => (mean >= threshold, "tie broken by mean score"),
    };
    let decision = if scores.len() == 1 { "score vs threshold" } else { decision };
    Ok(VerifyOut { same, score: mean, threshold, decision, input: input_side, anchors: scores, models: engine.info().clone() })
}

/// One face of `identify`: the name said, and why.
#[derive(Debug, Serialize)]
pub struct IdentifiedFace {
    /// Face box, original pixels.
    pub bbox: BBox,
    /// Detector confidence.
    pub det_score: f32,
    /// The person, or "unknown".
    pub name: String,
    /// Whether `name` is enrolled.
    pub known: bool,
    /// Cosine similarity (for a detection: detector confidence).
    pub score: Option<f32>,
    /// Top-1 minus top-2 score: how clearly the best candidate wins.
    pub margin: Option<f32>,
    /// Why the face is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Gallery candidates, best first.
    pub candidates: Vec<Candidate>,
}

/// The identified faces of one photo, or why it could not be read.
#[derive(Debug, Serialize)]
pub struct IdentifyOut {
    /// The photo.
    pub path: PathBuf,
    /// Its faces.
    pub faces: Vec<IdentifiedFace>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Names a face from its candidates ([`face::decide`]): the best one when it reaches the threshold, else
/// `unknown` and why.
pub fn decide(face: &Face, candidates: Vec<Candidate>, threshold: f32, gallery_empty: bool) -> IdentifiedFace {
    let best = candidates.first().cloned();
    let (name, known, reason) = match (face::decide(&candidates, threshold), &best) {
        (Some(c), _) => (c.name.clone(), true, None),
        (None, Some(c)) => {
            (UNKNOWN.into(), false, Some(format!("best match {} scored {:.3}, below the threshold {threshold:.3}", c.name, c.score)))
        }
        (None, None) if gallery_empty => (UNKNOWN.into(), false, Some("the gallery is empty: enroll people first".into())),
        (None, None) => (UNKNOWN.into(), false, Some("no candidates".into())),
    };
    IdentifiedFace {
        bbox: face.detection.bbox,
        det_score: face.detection.score,
        name,
        known,
        score: best.map(|c| c.score),
        margin: face::margin(&candidates),
        reason,
        candidates,
    }
}

/// The faces of one decoded photo against `gallery`, `k` candidates each.
pub fn identify_frame(
    engine: &mut Engine,
    gallery: &Gallery,
    frame: &crate::base::Frame,
    k: usize,
) -> Result<Vec<IdentifiedFace>, JobError> {
    let threshold = engine.info().threshold;
    let faces = engine.faces(frame)?;
    Ok(faces.iter().map(|f| decide(f, gallery.search(&f.embedding, k.max(1)), threshold, gallery.is_empty())).collect())
}

/// Every face of every photo against `gallery`, `k` candidates each. A photo that cannot be read is reported with
/// its error; a photo with no face has no faces.
pub fn identify(engine: &mut Engine, gallery: &Gallery, images: &[PathBuf], k: usize) -> Vec<IdentifyOut> {
    let threshold = engine.info().threshold;
    images
        .iter()
        .map(|path| match engine.load(path).map_err(EngineError::from).and_then(|f| engine.faces(&f)) {
            Ok(faces) => IdentifyOut {
                path: path.clone(),
                faces: faces.iter().map(|f| decide(f, gallery.search(&f.embedding, k.max(1)), threshold, gallery.is_empty())).collect(),
                error: None,
            },
            Err(e) => IdentifyOut { path: path.clone(), faces: vec![], error: Some(e.to_string()) },
        })
        .collect()
}
