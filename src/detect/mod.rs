//! Detect: find faces in a [`Frame`](crate::base::Frame) — a box, five landmarks (eyes, nose tip, mouth corners) and a score each.
//!
//! In: a BGR frame of any size. The image is scaled so that its long side is `detect.input_size` (640; 0 keeps
//! the frame's size), in its own aspect, and padded bottom/right up to multiples of 32: a 640×480 camera is seen
//! at 640×480 and a 640×360 clip at 640×384, where a square input would have spent 25–40 % of the work on padding.
//! The raw outputs are decoded per model format (`decode`), mapped back to frame pixels, filtered by score and
//! minimum size, and merged by non-maximum suppression. Out: [`Detection`]s, best score first.

mod config;
mod decode;
mod regions;
mod stage;

use std::path::Path;

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, Size};
use opencv::imgproc;
use ort::value::TensorRef;

pub use regions::RegionDetector;
pub use stage::{DetectStage, Detections};

pub use crate::base::face::{BBox, Detection};
use crate::model::{DetectorSpec, ModelError, Runtime};
pub use config::DetectConfig;

/// Errors while detecting.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// Loading or running the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// OpenCV failed on the frame (empty or wrong pixel type).
    #[error("failed to prepare the frame for detection: {0}")]
    Image(#[from] opencv::Error),
}

impl crate::exit::Exit for DetectError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Model(_) => crate::exit::MODEL,
            _ => crate::exit::INPUT,
        }
    }
}

/// A face detector; faked in tests, real ones are [`OnnxDetector`]s.
pub trait Detector: Send {
    /// Faces in `bgr` (8-bit, 3 channels), best score first, in `bgr`'s pixel coordinates.
    fn detect(&mut self, bgr: &Mat) -> Result<Vec<Detection>, DetectError>;
    /// Gets ready for `width`×`height` frames before the first one comes (the sessions for their input sizes made
    /// and run on a blank frame), so that the first faces a camera sees are not held back by set-up: without it the
    /// first frame of a 640×480 clip took 80–140 ms to its events instead of about 45.
    fn prepare(&mut self, width: u32, height: u32) -> Result<(), DetectError> {
        let _ = (width, height);
        Ok(())
    }
}

/// Sessions a detector keeps, one per input size it has met (a camera needs one; stills of different shapes a few).
const SESSIONS_KEPT: usize = 4;

/// A detector running an ONNX model (YuNet or SCRFD) with buffers allocated once.
///
/// The model's input height and width are freed in memory ([`free_input_size`](crate::model::repair::free_input_size))
/// and each input size gets its own session with those dimensions fixed, so that ONNX Runtime plans it with static
/// shapes (a session left with free dimensions detected 640×384 frames 40 % slower on the CPU provider).
pub struct OnnxDetector {
    runtime: Runtime,
    /// The model with its input size freed.
    graph: Vec<u8>,
    /// Sessions by input size, the last used first.
    sessions: Vec<(decode::Geometry, ort::session::Session)>,
    spec: DetectorSpec,
    model: std::path::PathBuf,
    score_threshold: f32,
    nms_threshold: f32,
    min_face_px: f32,
    /// Long side of the input (0: the frame's own).
    input_size: u32,
    /// Every image padded into one `input_size` square (stills: one session for photos of every shape), instead of
    /// the frame's own aspect (cameras: no padding to pay on every frame).
    square: bool,
    /// Size of the input tensor for the current frame.
    geometry: decode::Geometry,
    tensor: Vec<f32>,
    resized: Mat,
}

impl OnnxDetector {
    /// Loads the checked model file and checks its outputs against the manifest's format; each frame is detected
    /// in its own aspect (a camera's frames all have one, so one session serves them).
    pub fn build(runtime: &Runtime, spec: &DetectorSpec, model: &Path, cfg: &DetectConfig) -> Result<Self, DetectError> {
        Self::build_shaped(runtime, spec, model, cfg, false)
    }

    /// [`OnnxDetector::build`] for photos of every shape: each is scaled into one `detect.input_size` square
    /// (padded right or below), so one session serves them all instead of one per aspect; with `input_size = 0`
    /// each photo keeps its own size.
    pub fn build_for_stills(runtime: &Runtime, spec: &DetectorSpec, model: &Path, cfg: &DetectConfig) -> Result<Self, DetectError> {
        Self::build_shaped(runtime, spec, model, cfg, cfg.input_size != 0)
    }

    fn build_shaped(runtime: &Runtime, spec: &DetectorSpec, model: &Path, cfg: &DetectConfig, square: bool) -> Result<Self, DetectError> {
        let bytes = crate::model::read_model(model)?;
        let graph = crate::model::repair::free_input_size(&bytes)
            .map_err(|e| ModelError::Layout { model: model.to_path_buf(), source: crate::model::LayoutMismatch::Input(e.to_string()) })?;
        let mut detector = Self {
            runtime: runtime.clone(),
            graph,
            sessions: Vec::with_capacity(SESSIONS_KEPT),
            tensor: Vec::new(),
            spec: spec.clone(),
            model: model.to_path_buf(),
            score_threshold: cfg.score_threshold.get(),
            nms_threshold: cfg.nms_threshold.get(),
            min_face_px: cfg.min_face_px as f32,
            input_size: cfg.input_size,
            square,
            geometry: match square {
                true => decode::Geometry { width: cfg.input_size, height: cfg.input_size },
                false => decode::Geometry { width: spec.input.width, height: spec.input.height },
            },
            resized: Mat::default(),
        };
        detector.tensor = vec![spec.input.pad_value(); 3 * detector.geometry.width as usize * detector.geometry.height as usize];
        // One run on the blank (padded) input at the first input size: a GPU provider's lazy set-up (over two
        // seconds on CUDA on an H200, BENCHMARKS.md "GPU") happens at load rather than on the first frame, and a
        // model that cannot run, or whose outputs are not the manifest's format, fails here.
        detector.infer()?;
        Ok(detector)
    }

    /// The session for the current input size, made (and the least recently used one dropped) when new.
    fn select_session(&mut self) -> Result<(), ModelError> {
        let g = self.geometry;
        match self.sessions.iter().position(|(k, _)| (k.width, k.height) == (g.width, g.height)) {
            Some(0) => {}
            Some(i) => {
                let hit = self.sessions.remove(i);
                self.sessions.insert(0, hit);
            }
            None => {
                let dims = [("height", i64::from(g.height)), ("width", i64::from(g.width))];
                let loaded = self.runtime.session_from_bytes(&self.model, &self.graph, &dims)?;
                decode::check_outputs(self.spec.format, loaded.session.outputs().len())
                    .map_err(|source| ModelError::Layout { model: self.model.clone(), source })?;
                tracing::debug!(width = g.width, height = g.height, model = %self.model.display(), "Detector session for a new input size.");
                self.sessions.truncate(SESSIONS_KEPT - 1);
                self.sessions.insert(0, (g, loaded.session));
            }
        }
        Ok(())
    }

    /// Scales `bgr` so that its long side is the input size, into the top-left corner of an input tensor whose
    /// sides are those rounded up to multiples of 32 (padding bottom and right); returns the scale from frame pixels
    /// to input pixels.
    fn fill_input(&mut self, bgr: &Mat) -> Result<f32, DetectError> {
        let (fw, fh) = (bgr.cols() as f32, bgr.rows() as f32);
        let long = if self.input_size == 0 { fw.max(fh) } else { self.input_size as f32 };
        let scale = long / fw.max(fh);
        let size = Size::new(((fw * scale).round() as i32).max(1), ((fh * scale).round() as i32).max(1));
        let geometry = match self.square {
            true => decode::Geometry { width: self.input_size, height: self.input_size },
            false => input_geometry(size.width as u32, size.height as u32),
        };
        if (geometry.width, geometry.height) != (self.geometry.width, self.geometry.height) {
            self.geometry = geometry;
            self.tensor.resize(3 * geometry.width as usize * geometry.height as usize, 0.0);
        }
        let source = if size.width == bgr.cols() && size.height == bgr.rows() {
            bgr
        } else {
            let interpolation = if scale < 1.0 { imgproc::INTER_AREA } else { imgproc::INTER_LINEAR };
            imgproc::resize(bgr, &mut self.resized, size, 0.0, 0.0, interpolation)?;
            &self.resized
        };
        self.tensor.fill(self.spec.input.pad_value());
        let bytes = source.data_bytes()?;
        let (w, h) = (geometry.width as usize, geometry.height as usize);
        self.spec.input.write_nchw_sized(bytes, size.width as usize, size.height as usize, &mut self.tensor, w, h);
        Ok(scale)
    }

    /// Raw decoded candidates in input-tensor pixels, above the score threshold.
    fn infer(&mut self) -> Result<Vec<Detection>, ModelError> {
        self.select_session()?;
        let model = &self.model;
        let err = |source: ort::Error| ModelError::Inference { model: model.clone(), source };
        let geometry = self.geometry;
        let shape = [1usize, 3, geometry.height as usize, geometry.width as usize];
        let input = TensorRef::from_array_view((shape, &*self.tensor)).map_err(err)?;
        let outputs = self.sessions[0].1.run(ort::inputs![input]).map_err(err)?;
        let mut views = Vec::with_capacity(outputs.len());
        for i in 0..outputs.len() {
            let (_, data) = outputs[i].try_extract_tensor::<f32>().map_err(err)?;
            views.push(data);
        }
        decode::decode(self.spec.format, &views, geometry, self.score_threshold)
            .map_err(|source| ModelError::Layout { model: self.model.clone(), source })
    }
}

impl OnnxDetector {
    /// Detects with the long side at `input_size` this once (0: the image's own size), in the image's aspect.
    pub fn detect_at(&mut self, bgr: &Mat, input_size: u32) -> Result<Vec<Detection>, DetectError> {
        let kept = (std::mem::replace(&mut self.input_size, input_size), std::mem::replace(&mut self.square, false));
        let found = self.detect(bgr);
        (self.input_size, self.square) = kept;
        found
    }

    /// Input pixels per frame pixel for a `w`×`h` frame at the configured input size.
    pub fn scale_for(&self, w: f32, h: f32) -> f32 {
        if self.input_size == 0 {
            1.0
        } else {
            self.input_size as f32 / w.max(h)
        }
    }
}

/// A black `width`×`height` BGR frame to run a detector on once.
fn blank(width: u32, height: u32) -> Result<Mat, DetectError> {
    let side = |v: u32| i32::try_from(v.clamp(1, 16_384)).unwrap_or(16_384);
    Ok(Mat::new_rows_cols_with_default(side(height), side(width), opencv::core::CV_8UC3, opencv::core::Scalar::all(0.0))?)
}

impl OnnxDetector {
    /// The input sizes it has sessions for, the last used first (width, height of the input tensor).
    pub fn input_sizes(&self) -> Vec<(u32, u32)> {
        self.sessions.iter().map(|(g, _)| (g.width, g.height)).collect()
    }
}

impl Detector for OnnxDetector {
    fn prepare(&mut self, width: u32, height: u32) -> Result<(), DetectError> {
        // Twice: the first run after a session is made still pays its allocations.
        let frame = blank(width, height)?;
        self.detect(&frame)?;
        self.detect(&frame).map(drop)
    }

    fn detect(&mut self, bgr: &Mat) -> Result<Vec<Detection>, DetectError> {
        if bgr.empty() || bgr.typ() != opencv::core::CV_8UC3 {
            return Err(DetectError::Image(opencv::Error::new(
                opencv::core::StsBadArg,
                format!("expected a non-empty 8-bit BGR image, got type {} of {}x{}", bgr.typ(), bgr.cols(), bgr.rows()),
            )));
        }
        let scale = self.fill_input(bgr)?;
        let (fw, fh) = (bgr.cols() as f32, bgr.rows() as f32);
        let candidates: Vec<Detection> = self
            .infer()?
            .into_iter()
            .map(|d| clip(d.map_coords(|v| v / scale), fw, fh))
            .filter(|d| d.bbox.w.min(d.bbox.h) >= self.min_face_px)
            .collect();
        Ok(nms(candidates, self.nms_threshold))
    }
}

/// The input tensor's size for an image of `w`×`h` input pixels: each side rounded up to a multiple of 32, the
/// largest stride of both detectors.
fn input_geometry(w: u32, h: u32) -> decode::Geometry {
    decode::Geometry { width: w.div_ceil(32) * 32, height: h.div_ceil(32) * 32 }
}

/// Clips a box to the frame (landmarks are left as predicted: they may lie just outside).
fn clip(mut d: Detection, w: f32, h: f32) -> Detection {
    let x2 = (d.bbox.x + d.bbox.w).min(w);
    let y2 = (d.bbox.y + d.bbox.h).min(h);
    d.bbox.x = d.bbox.x.max(0.0);
    d.bbox.y = d.bbox.y.max(0.0);
    d.bbox.w = (x2 - d.bbox.x).max(0.0);
    d.bbox.h = (y2 - d.bbox.y).max(0.0);
    d
}

/// Greedy non-maximum suppression: keeps the best-scoring box of every group overlapping above `iou`.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if keep.iter().all(|k| k.bbox.iou(&d.bbox) <= iou) {
            keep.push(d);
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, s: f32, score: f32) -> Detection {
        Detection { bbox: BBox { x, y, w: s, h: s }, landmarks: [[0.0; 2]; 5], score }
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = det(0.0, 0.0, 10.0, 1.0).bbox;
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&det(20.0, 20.0, 10.0, 1.0).bbox), 0.0);
        let half = BBox { x: 5.0, y: 0.0, w: 10.0, h: 10.0 };
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn nms_keeps_best_of_overlapping_and_all_disjoint() {
        let out = nms(vec![det(0.0, 0.0, 10.0, 0.7), det(1.0, 1.0, 10.0, 0.9), det(50.0, 50.0, 10.0, 0.8)], 0.3);
        let scores: Vec<f32> = out.iter().map(|d| d.score).collect();
        assert_eq!(scores, vec![0.9, 0.8]);
    }

    #[test]
    fn clip_keeps_box_inside_frame() {
        let d = clip(det(-5.0, 90.0, 20.0, 1.0), 100.0, 100.0);
        assert_eq!(d.bbox, BBox { x: 0.0, y: 90.0, w: 15.0, h: 10.0 });
    }
}
