//! Embed: turn an aligned 112×112 face into an L2-normalised vector; faces of one person lie close together.
//!
//! In: an [`AlignedFace`](crate::align::AlignedFace). The crop is laid out as the manifest says (channel order,
//! `(x − mean) / std`, NCHW), run through the recognizer, and the output is scaled to unit length. Out: an
//! [`Embedding`]; the cosine similarity of two embeddings is their dot product.

use std::path::{Path, PathBuf};

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual};
use ort::value::TensorRef;

pub use crate::base::face::{dot, Embedding};
use crate::base::Detection;
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

impl crate::exit::Exit for EmbedError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Model(_) => crate::exit::MODEL,
            _ => crate::exit::INPUT,
        }
    }
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
        let mut embedder =
            Self { session: loaded.session, tensor: vec![0.0; spec.input.tensor_len()], spec: spec.clone(), model: model.to_path_buf() };
        embedder.warm_up()?;
        Ok(embedder)
    }

    /// Runs the model twice on a blank input: a GPU provider's lazy set-up (its first run on CUDA took over two
    /// seconds on an H200, BENCHMARKS.md "GPU") and the CPU provider's first-run allocations happen here rather
    /// than on the first face, and a model whose output does not match the manifest fails at load rather than at
    /// the first face.
    fn warm_up(&mut self) -> Result<(), ModelError> {
        self.run()?;
        self.run().map(drop)
    }

    /// Runs the model on `self.tensor`; the raw output, checked to be `dim` long.
    fn run(&mut self) -> Result<Vec<f32>, ModelError> {
        let (w, h) = (self.spec.input.width as usize, self.spec.input.height as usize);
        let model = &self.model;
        let err = |source: ort::Error| ModelError::Inference { model: model.clone(), source };
        let input = TensorRef::from_array_view(([1usize, 3, h, w], &*self.tensor)).map_err(err)?;
        let outputs = self.session.run(ort::inputs![input]).map_err(err)?;
        let (_, data) = outputs[0].try_extract_tensor::<f32>().map_err(err)?;
        if data.len() != self.spec.dim {
            return Err(ModelError::Layout {
                model: self.model.clone(),
                source: crate::model::LayoutMismatch::Dim { got: data.len(), want: self.spec.dim },
            });
        }
        Ok(data.to_vec())
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
        let data = self.run()?;
        Embedding::from_raw(data).ok_or(EmbedError::Degenerate)
    }
}

/// Why a detected face could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum FaceEmbedError {
    /// Its landmarks give no alignment.
    #[error(transparent)]
    Align(#[from] crate::align::AlignError),
    /// The recognizer failed on the crop.
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// Align + embed: a detected face in a frame to its embedding, the crop buffer kept between faces. The track
/// stage's embedding step. With helper sessions ([`with_helpers`](Self::with_helpers)) the faces of one frame are
/// embedded side by side, one thread per session, so that a group of new faces costs the time of its share and
/// not of the whole group.
pub struct FaceEmbedder {
    embedder: Box<dyn Embedder>,
    crop: Mat,
    helpers: Vec<(Box<dyn Embedder>, Mat)>,
}

/// One face's embedding (or why not) and the time its align + embed took.
pub type Embedded = (Result<Embedding, FaceEmbedError>, std::time::Duration);

impl FaceEmbedder {
    /// Around a loaded recognizer ([`OnnxEmbedder::build`] loads one from the model manifest).
    pub fn new(embedder: Box<dyn Embedder>) -> Self {
        Self { embedder, crop: Mat::default(), helpers: Vec::new() }
    }

    /// Adds sessions of the same recognizer that embed a frame's faces beside the first.
    pub fn with_helpers(mut self, helpers: Vec<Box<dyn Embedder>>) -> Self {
        self.helpers.extend(helpers.into_iter().map(|e| (e, Mat::default())));
        self
    }

    /// Sessions that embed side by side.
    pub fn sessions(&self) -> usize {
        1 + self.helpers.len()
    }

    /// Aligns and embeds every face of `dets` in `bgr`, results in `dets`' order: the faces are dealt out to the
    /// sessions in turn (face i to session i mod n), each session on its own thread.
    pub fn embed_all(&mut self, bgr: &Mat, dets: &[&Detection]) -> Vec<Embedded> {
        let one = |embedder: &mut dyn Embedder, crop: &mut Mat, det: &Detection| -> Embedded {
            let t = std::time::Instant::now();
            (align_and_embed(embedder, crop, bgr, det), t.elapsed())
        };
        if self.helpers.is_empty() || dets.len() < 2 {
            return dets.iter().map(|d| one(self.embedder.as_mut(), &mut self.crop, d)).collect();
        }
        let n = (1 + self.helpers.len()).min(dets.len());
        let mut out: Vec<Option<Embedded>> = (0..dets.len()).map(|_| None).collect();
        std::thread::scope(|s| {
            let one = &one;
            let handles: Vec<_> = self.helpers[..n - 1]
                .iter_mut()
                .enumerate()
                .map(|(k, (embedder, crop))| {
                    s.spawn(move || (k + 1..dets.len()).step_by(n).map(|i| (i, one(embedder.as_mut(), crop, dets[i]))).collect::<Vec<_>>())
                })
                .collect();
            for i in (0..dets.len()).step_by(n) {
                out[i] = Some(one(self.embedder.as_mut(), &mut self.crop, dets[i]));
            }
            for h in handles {
                for (i, r) in h.join().expect("an embedding thread panicked") {
                    out[i] = Some(r);
                }
            }
        });
        out.into_iter().map(|r| r.expect("every face was dealt to a session")).collect()
    }

    /// Embedding length.
    pub fn dim(&self) -> usize {
        self.embedder.dim()
    }

    /// Aligns the face `det` of `bgr` to the ArcFace template and embeds it.
    pub fn embed(&mut self, bgr: &Mat, det: &Detection) -> Result<Embedding, FaceEmbedError> {
        align_and_embed(self.embedder.as_mut(), &mut self.crop, bgr, det)
    }
}

/// Aligns the face `det` of `bgr` into `crop` and embeds it with `embedder`.
fn align_and_embed(embedder: &mut dyn Embedder, crop: &mut Mat, bgr: &Mat, det: &Detection) -> Result<Embedding, FaceEmbedError> {
    crate::align::align_into(bgr, &det.landmarks, crop)?;
    Ok(embedder.embed(crop)?)
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

    /// Embeds a crop as (mean blue, mean green, mean red), counting its calls.
    struct MeanColour(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Embedder for MeanColour {
        fn dim(&self) -> usize {
            3
        }

        fn embed(&mut self, aligned: &Mat) -> Result<Embedding, EmbedError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let m = opencv::core::mean_def(aligned)?;
            Embedding::from_raw(vec![m[0] as f32 + 1.0, m[1] as f32, m[2] as f32]).ok_or(EmbedError::Degenerate)
        }
    }

    #[test]
    fn helper_sessions_embed_a_group_side_by_side_with_the_results_in_face_order() {
        use opencv::core::{MatTrait, Rect, Scalar, CV_8UC3};
        // Eight faces: squares of different colours, each with the template's landmarks moved onto it.
        let mut bgr = Mat::new_rows_cols_with_default(112, 8 * 112, CV_8UC3, Scalar::all(0.0)).expect("mat");
        let dets: Vec<Detection> = (0..8)
            .map(|i| {
                let colour = Scalar::new(30.0 * i as f64, 255.0 - 30.0 * i as f64, (70 * i % 256) as f64, 0.0);
                let mut cell = Mat::roi_mut(&mut bgr, Rect::new(112 * i, 0, 112, 112)).expect("roi");
                cell.set_to_def(&colour).expect("fill");
                let landmarks = crate::align::ARCFACE_TEMPLATE.map(|[x, y]| [x + 112.0 * i as f32, y]);
                Detection { bbox: crate::base::face::BBox { x: 112.0 * i as f32, y: 0.0, w: 112.0, h: 112.0 }, landmarks, score: 0.9 }
            })
            .collect();
        let refs: Vec<&Detection> = dets.iter().collect();
        let calls: Vec<_> = (0..3).map(|_| std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0))).collect();
        let mut alone = FaceEmbedder::new(Box::new(MeanColour(calls[0].clone())));
        let mut three = FaceEmbedder::new(Box::new(MeanColour(calls[0].clone())))
            .with_helpers(vec![Box::new(MeanColour(calls[1].clone())), Box::new(MeanColour(calls[2].clone()))]);
        assert_eq!(three.sessions(), 3);
        let one_by_one: Vec<Vec<f32>> =
            alone.embed_all(&bgr, &refs).into_iter().map(|(r, _)| r.expect("embedded").as_slice().to_vec()).collect();
        calls[0].store(0, std::sync::atomic::Ordering::Relaxed);
        let side_by_side: Vec<Vec<f32>> =
            three.embed_all(&bgr, &refs).into_iter().map(|(r, _)| r.expect("embedded").as_slice().to_vec()).collect();
        assert_eq!(side_by_side, one_by_one, "same embeddings, same order");
        let shares: Vec<usize> = calls.iter().map(|c| c.load(std::sync::atomic::Ordering::Relaxed)).collect();
        assert_eq!(shares, [3, 3, 2], "faces dealt out in turn");
        let distinct: std::collections::HashSet<String> = one_by_one.iter().map(|v| format!("{v:?}")).collect();
        assert_eq!(distinct.len(), 8, "each face its own crop");
    }

    #[test]
    fn zero_and_nan_vectors_are_refused() {
        assert!(Embedding::from_raw(vec![0.0; 8]).is_none());
        assert!(Embedding::from_raw(vec![f32::NAN, 1.0]).is_none());
    }
}
