//! The still-image engine: detect → align → embed on one [`Frame`], built once from the configuration.
//!
//! `Engine::build` checks and loads everything (manifest, model files by sha256, ONNX Runtime, sessions) before
//! any image is touched, so a wrong model path fails at start-up with the path in the message.

use std::path::{Path, PathBuf};

use crate::align::{self, AlignError, AlignedFace};
use crate::base::Frame;
use crate::config::Config;
use crate::detect::{DetectError, Detection, Detector};
use crate::embed::{EmbedError, Embedder, Embedding, OnnxEmbedder};
use crate::image::{self, ImageError};
use crate::model::ModelError;
pub use crate::sessions::ModelInfo;
use crate::sessions::{Models, SessionError};

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
    /// Age or gender could not be estimated.
    #[error(transparent)]
    Attribute(#[from] crate::attributes::AttributeError),
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

impl From<SessionError> for EngineError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Model(e) => Self::Model(e),
            SessionError::Detect(e) => Self::Detect(e),
            SessionError::Embed(e) => Self::Embed(e),
        }
    }
}

impl crate::exit::Exit for EngineError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Image(e) => e.exit_code(),
            Self::Model(e) => e.exit_code(),
            Self::Detect(e) => e.exit_code(),
            Self::Embed(e) => e.exit_code(),
            Self::Attribute(crate::attributes::AttributeError::Model(e)) => e.exit_code(),
            Self::Attribute(_) | Self::Align(_) | Self::NoFace(_) | Self::SeveralFaces { .. } => crate::exit::INPUT,
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

/// Detector + recognizer, ready to run.
pub struct Engine {
    detector: Box<dyn Detector>,
    embedder: OnnxEmbedder,
    max_image_pixels: usize,
    info: ModelInfo,
    /// The age and gender models, loaded at their first use ([`Engine::attributes`]).
    attributes: Option<crate::attributes::AttributeModels>,
    /// The expression model (compiled in), loaded at its first use ([`Engine::expression`]).
    expression: Option<crate::attributes::expression::ExpressionModel>,
    /// Where they are loaded from: the runtime, the manifest, `models.dir` as configured and as found.
    attribute_source: (crate::model::Runtime, String, String, PathBuf),
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
        let models = Models::check(cfg)?;
        // Photos come in every shape: one square input serves them all (one session, no build per aspect).
        let detector = if stills { models.stills_detector(cfg)? } else { models.detector(cfg)? };
        let embedder = models.embedder()?;
        Ok(Self {
            detector: Box::new(detector),
            embedder,
            max_image_pixels: cfg.detect.max_image_pixels.get(),
            info: models.info().clone(),
            attributes: None,
            expression: None,
            attribute_source: (
                models.runtime().clone(),
                cfg.models.manifest.clone(),
                cfg.models.dir_as_configured.clone(),
                crate::paths::resolve_path(&cfg.models.dir),
            ),
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

    /// Loads the age and gender models if they are not yet: an error naming `facewatch models install age gender`
    /// when they are not installed.
    pub fn attribute_models(&mut self) -> Result<&mut crate::attributes::AttributeModels, EngineError> {
        let models = match self.attributes.take() {
            Some(models) => models,
            None => {
                // Every models directory, in lookup order: they may be in another than the recognizer's (root's
                // install beside the models package's).
                let (runtime, manifest, configured, located) = &self.attribute_source;
                let mut dirs = if configured.is_empty() { Vec::new() } else { crate::paths::every_place(configured) };
                if !dirs.contains(located) {
                    dirs.insert(0, located.clone());
                }
                crate::attributes::AttributeModels::load_from(runtime, &crate::model::Manifest::configured(manifest)?, &dirs)?
            }
        };
        Ok(self.attributes.insert(models))
    }

    /// Age and gender of one detection (frame pixels); the models are loaded at the first call.
    pub fn attributes(&mut self, frame: &Frame, det: &Detection) -> Result<crate::attributes::Attributes, EngineError> {
        Ok(self.attribute_models()?.estimate(&frame.bgr, det)?)
    }

    /// The expression of one detection (frame pixels); the model (compiled in) is loaded at the first call.
    pub fn expression(&mut self, frame: &Frame, det: &Detection) -> Result<crate::attributes::expression::Expression, EngineError> {
        let model = match self.expression.take() {
            Some(model) => model,
            None => {
                let (runtime, manifest, _, located) = &self.attribute_source;
                crate::attributes::expression::ExpressionModel::load(runtime, &crate::model::Manifest::configured(manifest)?, located)?
            }
        };
        Ok(self.expression.insert(model).estimate(&frame.bgr, det)?)
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
