//! Embed: turn an aligned 112×112 face into an L2-normalised vector; faces of one person lie close together.
//!
//! In: an [`AlignedFace`](crate::align::AlignedFace). The crop is laid out as the manifest says (channel order,
//! `(x − mean) / std`, NCHW), run through the recognizer, and the output is scaled to unit length. Out: an
//! [`Embedding`]; the cosine similarity of two embeddings is their dot product.

use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual};
use ort::value::TensorRef;
use serde::Serialize;

use crate::model::{ModelError, RecognizerSpec, Runtime};

/// Errors while embedding.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Loading or running the model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The crop is not a 112×112 8-bit BGR image.
    #[error("failed to embed: expected an aligned {w}x{h} BGR face, got {got}")]
    BadCrop {
        /// Expected width.
        w: u32,
        /// Expected height.
        h: u32,
        /// What came instead.
        got: String,
    },
    /// The model returned a zero or non-finite vector.
    #[error("failed to embed: the recognizer returned a degenerate vector")]
    Degenerate,
    /// OpenCV failed to read the crop.
    #[error("failed to read the aligned face: {0}")]
    Image(#[from] opencv::Error),
}

/// A unit-length face embedding.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Normalises `v` to unit length; `None` when it is zero or not finite.
    pub fn from_raw(mut v: Vec<f32>) -> Option<Self> {
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        if !norm.is_finite() || norm <= f32::EPSILON {
            return None;
        }
        v.iter_mut().for_each(|x| *x /= norm);
        Some(Self(v))
    }

    /// Wraps a vector already known to be unit length (read back from the gallery).
    pub fn from_unit(v: Vec<f32>) -> Self {
        Self(v)
    }

    /// The components.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Number of components.
    pub fn dim(&self) -> usize {
        self.0.len()
    }

    /// Cosine similarity (dot product of unit vectors), −1..1.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        dot(&self.0, &other.0)
    }
}

/// Dot product of two equally long slices.
///
/// Eight independent partial sums let the compiler vectorise the loop (a single running sum cannot be reordered
/// under IEEE rules); gallery scans spend nearly all their time here.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A face recognizer: aligned 112×112 BGR crop in, unit-length embedding out. Faked in tests; the real one is
/// [`OnnxEmbedder`].
pub trait Embedder: Send {
    /// Embedding length.
    fn dim(&self) -> usize;
    /// Embeds one aligned face.
    fn embed(&mut self, aligned: &Mat) -> Result<Embedding, EmbedError>;
}

/// A recognizer running an ONNX model with its input buffer allocated once.
pub struct OnnxEmbedder {
    session: ort::session::Session,
    spec: RecognizerSpec,
    model: PathBuf,
    tensor: Vec<f32>,
}

impl OnnxEmbedder {
    /// Loads the checked model file.
    pub fn build(runtime: &Runtime, spec: &RecognizerSpec, model: &Path) -> Result<Self, EmbedError> {
        let loaded = runtime.session(model)?;
        Ok(Self { session: loaded.session, tensor: vec![0.0; spec.input.tensor_len()], spec: spec.clone(), model: model.to_path_buf() })
    }
}

impl Embedder for OnnxEmbedder {
    fn dim(&self) -> usize {
        self.spec.dim
    }

    fn embed(&mut self, aligned: &Mat) -> Result<Embedding, EmbedError> {
        let (w, h) = (self.spec.input.width, self.spec.input.height);
        if aligned.cols() != w as i32 || aligned.rows() != h as i32 || aligned.typ() != opencv::core::CV_8UC3 {
            return Err(EmbedError::BadCrop { w, h, got: format!("{}x{} type {}", aligned.cols(), aligned.rows(), aligned.typ()) });
        }
        self.spec.input.write_nchw(aligned.data_bytes()?, w as usize, h as usize, &mut self.tensor);
        let model = &self.model;
        let err = |e: ort::Error| ModelError::Inference { model: model.clone(), message: e.to_string() };
        let input = TensorRef::from_array_view(([1usize, 3, h as usize, w as usize], &*self.tensor)).map_err(err)?;
        let outputs = self.session.run(ort::inputs![input]).map_err(err)?;
        let (_, data) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        if data.len() != self.spec.dim {
            return Err(ModelError::Layout {
                model: self.model.clone(),
                message: format!("output has {} values, the manifest says {}", data.len(), self.spec.dim),
            }
            .into());
        }
        Embedding::from_raw(data.to_vec()).ok_or(EmbedError::Degenerate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_vectors_have_unit_length_and_cosine_of_self_is_one() {
        let e = Embedding::from_raw(vec![3.0, 4.0]).expect("non-zero");
        assert_eq!(e.as_slice(), &[0.6, 0.8]);
        assert!((e.cosine(&e) - 1.0).abs() < 1e-6);
        let o = Embedding::from_raw(vec![-4.0, 3.0]).expect("non-zero");
        assert!(e.cosine(&o).abs() < 1e-6);
    }

    #[test]
    fn lane_wise_dot_matches_the_plain_sum() {
        for n in [0usize, 1, 7, 8, 9, 128, 512, 515] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - plain).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn zero_and_nan_vectors_are_refused() {
        assert!(Embedding::from_raw(vec![0.0; 8]).is_none());
        assert!(Embedding::from_raw(vec![f32::NAN, 1.0]).is_none());
    }
}
