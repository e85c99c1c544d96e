//! The model sessions of a configuration: the manifest read, the model files hashed and the ONNX Runtime loaded
//! once ([`Models::check`]), then as many detector and recognizer sessions as asked ([`Models::sessions`]), and
//! what the models are ([`ModelInfo`]: names, licences, embedding size, threshold and where it came from). The
//! still-image engine ([`crate::stills`]) and the daemon's cameras ([`crate::pipeline`]) both make theirs here.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::{resolve_path, Config};
use crate::detect::{DetectError, Detector, OnnxDetector};
use crate::embed::{EmbedError, Embedder, OnnxEmbedder};
use crate::model::{DetectorSpec, Manifest, ModelError, RecognizerSpec, Runtime};

/// Why the models could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A model, the manifest or the runtime failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A detector session could not be made.
    #[error(transparent)]
    Detect(#[from] DetectError),
    /// A recognizer session could not be made.
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

impl crate::exit::Exit for SessionError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Model(e) => e.exit_code(),
            Self::Detect(e) => e.exit_code(),
            Self::Embed(e) => e.exit_code(),
        }
    }
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
pub fn threshold_for(cfg: &Config, recognizer: &RecognizerSpec) -> (f32, String) {
    match cfg.matcher.threshold {
        Some(t) => (t.get(), "configuration (matcher.threshold)".to_string()),
        None => (recognizer.threshold, format!("manifest: {}", recognizer.threshold_source)),
    }
}

/// The threshold in force, without loading any model.
pub fn configured_threshold(cfg: &Config) -> Result<f32, ModelError> {
    let manifest = Manifest::configured(&cfg.models.manifest)?;
    Ok(threshold_for(cfg, manifest.recognizer(&cfg.models.recognizer)?).0)
}

/// The configured models, checked once (manifest read, files hashed, runtime loaded): every session is made from
/// this.
pub struct Models {
    runtime: Runtime,
    det: (DetectorSpec, PathBuf),
    rec: (RecognizerSpec, PathBuf),
    info: ModelInfo,
}

/// Inference sessions for the real-time pipeline ([`Models::sessions`]).
pub struct Sessions {
    /// Detector sessions.
    pub detectors: Vec<Box<dyn Detector>>,
    /// Recognizer sessions.
    pub embedders: Vec<Box<dyn Embedder>>,
    /// Models and threshold in use.
    pub info: ModelInfo,
}

impl Models {
    /// Reads the manifest, checks the configured models' files by sha256 and loads the ONNX Runtime.
    pub fn check(cfg: &Config) -> Result<Self, SessionError> {
        let manifest = Manifest::configured(&cfg.models.manifest)?;
        let dir = resolve_path(&cfg.models.dir);
        let (det, det_path) = manifest.installed_detector(&cfg.models.detector, &dir)?;
        let (rec, rec_path) = manifest.installed_recognizer(&cfg.models.recognizer, &dir)?;
        let (threshold, threshold_source) = threshold_for(cfg, rec);
        tracing::info!(
            detector = %cfg.models.detector,
            detector_licence = %det.licence,
            recognizer = %cfg.models.recognizer,
            recognizer_licence = %rec.licence,
            threshold,
            "Models loaded."
        );
        let info = ModelInfo {
            detector: cfg.models.detector.clone(),
            recognizer: cfg.models.recognizer.clone(),
            dim: rec.dim,
            threshold,
            threshold_source,
            detector_licence: det.licence.clone(),
            recognizer_licence: rec.licence.clone(),
            face_levels: (rec.same_face_min, rec.reid_min),
        };
        Ok(Self { runtime: Runtime::new(&cfg.runtime)?, det: (det.clone(), det_path), rec: (rec.clone(), rec_path), info })
    }

    /// The ONNX Runtime environment the sessions come from.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// What the models are.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// A detector session sized for camera frames (each frame's aspect).
    pub fn detector(&self, cfg: &Config) -> Result<OnnxDetector, SessionError> {
        Ok(OnnxDetector::build(&self.runtime, &self.det.0, &self.det.1, &cfg.detect)?)
    }

    /// A camera's detector: with `detect.full_scan_every`, full scans and regions around small faces.
    pub fn camera_detector(&self, cfg: &Config) -> Result<Box<dyn Detector>, SessionError> {
        let d = self.detector(cfg)?;
        Ok(match cfg.detect.full_scan_every {
            0 => Box::new(d),
            every => Box::new(crate::detect::RegionDetector::new(d, every, cfg.detect.region_size)),
        })
    }

    /// A detector session for photos of every shape (one square input).
    pub fn stills_detector(&self, cfg: &Config) -> Result<OnnxDetector, SessionError> {
        Ok(OnnxDetector::build_for_stills(&self.runtime, &self.det.0, &self.det.1, &cfg.detect)?)
    }

    /// A recognizer session.
    pub fn embedder(&self) -> Result<OnnxEmbedder, SessionError> {
        Ok(OnnxEmbedder::build(&self.runtime, &self.rec.0, &self.rec.1)?)
    }

    /// `detectors` camera detector sessions and `embedders` recognizer sessions, from one check of the models.
    pub fn sessions(cfg: &Config, detectors: usize, embedders: usize) -> Result<Sessions, SessionError> {
        let models = Self::check(cfg)?;
        Ok(Sessions {
            detectors: (0..detectors).map(|_| models.camera_detector(cfg)).collect::<Result<_, _>>()?,
            embedders: (0..embedders)
                .map(|_| Ok(Box::new(models.embedder()?) as Box<dyn Embedder>))
                .collect::<Result<_, SessionError>>()?,
            info: models.info,
        })
    }
}
