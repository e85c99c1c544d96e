//! The still-image engine: detect → align → embed on one [`Frame`], built once from the configuration.
//!
//! `Engine::build` checks and loads everything (manifest, model files by sha256, ONNX Runtime, sessions) before
//! any image is touched, so a wrong model path fails at start-up with the path in the message.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::align::{self, AlignError, AlignedFace};
use crate::base::Frame;
use crate::config::{resolve_path, Config};
use crate::detect::{DetectError, Detection, Detector, OnnxDetector};
use crate::embed::{EmbedError, Embedder, Embedding, OnnxEmbedder};
use crate::gallery::{Gallery, GalleryError};
use crate::image::{self, ImageError};
use crate::model::{Manifest, ModelError, RecognizerSpec, Runtime};

/// Errors of the still-image path.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The image could not be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A model, the manifest or the runtime failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// Detection failed.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// Alignment failed.
    #[error(transparent)]
    Align(#[from] AlignError),
    /// Embedding failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The photo has no face.
    #[error("no face found in {0}")]
    NoFace(PathBuf),
    /// The photo has several faces where one was expected.
    #[error("{n} faces found in {path}, expected one")]
    SeveralFaces {
        /// The photo.
        path: PathBuf,
        /// How many faces.
        n: usize,
    },
}

impl crate::exit::Exit for EngineError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Image(e) => e.exit_code(),
            Self::Model(e) => e.exit_code(),
            Self::Detect(e) => e.exit_code(),
            Self::Embed(e) => e.exit_code(),
            Self::Align(_) | Self::NoFace(_) | Self::SeveralFaces { .. } => crate::exit::INPUT,
        }
    }
}

/// One face: where it is (original image coordinates), its aligned crop and its embedding.
#[derive(Debug)]
pub struct Face {
    /// Box, landmarks and score in the original image's pixels.
    pub detection: Detection,
    /// The 112×112 aligned crop.
    pub aligned: AlignedFace,
    /// The unit-length embedding.
    pub embedding: Embedding,
}

/// Names and thresholds of the models in use, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Detector manifest name.
    pub detector: String,
    /// Recognizer manifest name.
    pub recognizer: String,
    /// Embedding length.
    pub dim: usize,
    /// Cosine threshold in force.
    pub threshold: f32,
    /// Where that threshold comes from.
    pub threshold_source: String,
    /// The detector's licence (manifest).
    pub detector_licence: String,
    /// The recognizer's licence (manifest).
    pub recognizer_licence: String,
    /// The recognizer's tracking levels (manifest): same-face minimum and re-identification cosine.
    #[serde(skip)]
    pub face_levels: (f32, f32),
}

/// The threshold in force and where it comes from: `matcher.threshold`, else the recognizer's manifest value.
fn threshold_for(cfg: &Config, recognizer: &RecognizerSpec) -> (f32, String) {
    match cfg.matcher.threshold {
        Some(t) => (t.get(), "configuration (matcher.threshold)".to_string()),
        None => (recognizer.threshold, format!("manifest: {}", recognizer.threshold_source)),
    }
}

/// The threshold in force, without loading any model.
pub fn configured_threshold(cfg: &Config) -> Result<f32, ModelError> {
    let manifest = Manifest::load(&resolve_path(&cfg.models.manifest))?;
    Ok(threshold_for(cfg, manifest.recognizer(&cfg.models.recognizer)?).0)
}

/// The configured gallery (`gallery.path`, `matcher.exact_search_max`) for the configured recognizer, which
/// produces `dim`-d embeddings. With `create`, a missing gallery is created (enroll, the daemon); without, it is an
/// error naming the path ([`GalleryError::Missing`]).
pub fn open_gallery(cfg: &Config, dim: usize, create: bool) -> Result<Gallery, GalleryError> {
    let path = resolve_path(&cfg.gallery.path);
    let (model, max) = (&cfg.models.recognizer, cfg.matcher.exact_search_max);
    if create {
        Gallery::open(&path, model, dim, max)
    } else {
        Gallery::open_existing(&path, model, dim, max)
    }
}

/// Detector + recognizer, ready to run.
pub struct Engine {
    detector: Box<dyn Detector>,
    embedder: OnnxEmbedder,
    max_image_pixels: usize,
    info: ModelInfo,
}

/// The configured models, checked once (manifest read, files hashed, runtime loaded): every session is made
/// from this.
struct Checked<'m> {
    runtime: Runtime,
    det: (&'m crate::model::DetectorSpec, PathBuf),
    rec: (&'m RecognizerSpec, PathBuf),
}

impl<'m> Checked<'m> {
    fn new(cfg: &Config, manifest: &'m Manifest) -> Result<Self, EngineError> {
        let dir = resolve_path(&cfg.models.dir);
        let det = manifest.installed_detector(&cfg.models.detector, &dir)?;
        let rec = manifest.installed_recognizer(&cfg.models.recognizer, &dir)?;
        Ok(Self { runtime: Runtime::new(&cfg.runtime)?, det, rec })
    }

    fn detector(&self, cfg: &Config) -> Result<OnnxDetector, EngineError> {
        Ok(OnnxDetector::build(&self.runtime, self.det.0, &self.det.1, &cfg.detect)?)
    }

    /// A camera's detector: with `detect.full_scan_every`, full scans and regions around small faces.
    fn camera_detector(&self, cfg: &Config) -> Result<Box<dyn Detector>, EngineError> {
        let d = self.detector(cfg)?;
        Ok(match cfg.detect.full_scan_every {
            0 => Box::new(d),
            every => Box::new(crate::detect::RegionDetector::new(d, every, cfg.detect.region_size)),
        })
    }

    fn stills_detector(&self, cfg: &Config) -> Result<OnnxDetector, EngineError> {
        Ok(OnnxDetector::build_for_stills(&self.runtime, self.det.0, &self.det.1, &cfg.detect)?)
    }

    fn embedder(&self) -> Result<OnnxEmbedder, EngineError> {
        Ok(OnnxEmbedder::build(&self.runtime, self.rec.0, &self.rec.1)?)
    }

    fn info(&self, cfg: &Config) -> ModelInfo {
        let (det_spec, rec_spec) = (self.det.0, self.rec.0);
        let (threshold, threshold_source) = threshold_for(cfg, rec_spec);
        tracing::info!(
            detector = %cfg.models.detector,
            detector_licence = %det_spec.licence,
            recognizer = %cfg.models.recognizer,
            recognizer_licence = %rec_spec.licence,
            threshold,
            "Models loaded."
        );
        ModelInfo {
            detector: cfg.models.detector.clone(),
            recognizer: cfg.models.recognizer.clone(),
            dim: rec_spec.dim,
            threshold,
            threshold_source,
            detector_licence: det_spec.licence.clone(),
            recognizer_licence: rec_spec.licence.clone(),
            face_levels: (rec_spec.same_face_min, rec_spec.reid_min),
        }
    }
}

/// Inference sessions for the real-time pipeline ([`Engine::sessions`]).
pub struct Sessions {
    /// Detector sessions.
    pub detectors: Vec<Box<dyn Detector>>,
    /// Recognizer sessions.
    pub embedders: Vec<Box<dyn Embedder>>,
    /// Models and threshold in use.
    pub info: ModelInfo,
}

impl Engine {
    /// Loads the configured models; fails before any image is read if one is missing or wrong.
    pub fn build(cfg: &Config) -> Result<Self, EngineError> {
        Self::build_shaped(cfg, true)
    }

    /// [`Engine::build`] for the frames of one video (all of one size): detected in their own aspect, as the
    /// pipeline's detectors do (the bare-model baseline of `facewatch bench`).
    pub fn for_video(cfg: &Config) -> Result<Self, EngineError> {
        Self::build_shaped(cfg, false)
    }

    fn build_shaped(cfg: &Config, stills: bool) -> Result<Self, EngineError> {
        let manifest = Manifest::load(&resolve_path(&cfg.models.manifest))?;
        let checked = Checked::new(cfg, &manifest)?;
        // Photos come in every shape: one square input serves them all (one session, no build per aspect).
        let detector = if stills { checked.stills_detector(cfg)? } else { checked.detector(cfg)? };
        let embedder = checked.embedder()?;
        Ok(Self { detector: Box::new(detector), embedder, max_image_pixels: cfg.detect.max_image_pixels.get(), info: checked.info(cfg) })
    }

    /// `detectors` detector and `embedders` recognizer sessions of the configured models, checked and loaded once,
    /// for the daemon's stage threads (each camera's detect workers and side-by-side embedding sessions).
    pub fn sessions(cfg: &Config, detectors: usize, embedders: usize) -> Result<Sessions, EngineError> {
        let manifest = Manifest::load(&resolve_path(&cfg.models.manifest))?;
        let checked = Checked::new(cfg, &manifest)?;
        Ok(Sessions {
            detectors: (0..detectors).map(|_| checked.camera_detector(cfg)).collect::<Result<_, EngineError>>()?,
            embedders: (0..embedders)
                .map(|_| Ok(Box::new(checked.embedder()?) as Box<dyn Embedder>))
                .collect::<Result<_, EngineError>>()?,
            info: checked.info(cfg),
        })
    }

    /// The models and threshold in use.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Reads a photo within the configured pixel bound.
    pub fn load(&self, path: &Path) -> Result<Frame, ImageError> {
        image::load(path, self.max_image_pixels)
    }

    /// Faces in the frame (frame pixels), best score first.
    pub fn detect(&mut self, frame: &Frame) -> Result<Vec<Detection>, EngineError> {
        Ok(self.detector.detect(&frame.bgr)?)
    }

    /// Aligns and embeds one detection (frame pixels); the returned face is in original-image pixels.
    pub fn face(&mut self, frame: &Frame, det: &Detection) -> Result<Face, EngineError> {
        let aligned = align::align(&frame.bgr, &det.landmarks)?;
        let embedding = self.embedder.embed(&aligned.bgr)?;
        Ok(Face { detection: det.map_coords(|v| frame.to_original(v)), aligned, embedding })
    }

    /// Every face in the frame, detected, aligned and embedded.
    pub fn faces(&mut self, frame: &Frame) -> Result<Vec<Face>, EngineError> {
        let dets = self.detect(frame)?;
        dets.iter().map(|d| self.face(frame, d)).collect()
    }

    /// Decodes photo bytes read elsewhere (e.g. to hash them) within the configured pixel bound.
    pub fn decode(&self, bytes: &[u8], path: &Path) -> Result<Frame, ImageError> {
        image::decode(bytes, path, self.max_image_pixels)
    }

    /// The one face of a photo: an error when there is none or more than one.
    pub fn single_face(&mut self, path: &Path) -> Result<Face, EngineError> {
        let frame = self.load(path)?;
        self.one_face(&frame, path)
    }

    /// The one face of a decoded photo (`path` names it in errors).
    pub fn one_face(&mut self, frame: &Frame, path: &Path) -> Result<Face, EngineError> {
        let dets = self.detect(frame)?;
        match dets.len() {
            0 => Err(EngineError::NoFace(path.into())),
            1 => self.face(frame, &dets[0]),
            n => Err(EngineError::SeveralFaces { path: path.into(), n }),
        }
    }

    /// The largest face of a photo and how many faces it has; an error when there is none.
    pub fn largest_face(&mut self, path: &Path) -> Result<(Face, usize), EngineError> {
        let frame = self.load(path)?;
        self.largest_face_in(&frame, path)
    }

    /// The largest face of a decoded photo (`path` names it in errors) and how many faces it has.
    pub fn largest_face_in(&mut self, frame: &Frame, path: &Path) -> Result<(Face, usize), EngineError> {
        let dets = self.detect(frame)?;
        let largest = crate::base::face::largest(&dets).ok_or_else(|| EngineError::NoFace(path.into()))?;
        Ok((self.face(frame, largest)?, dets.len()))
    }
}
