//! The nouns every stage speaks: a detected face, its embedding, a gallery candidate, a track id, and the name
//! said for a face that matches nobody.

use serde::{Deserialize, Serialize};

/// The name published for a face that matches nobody in the gallery.
pub const UNKNOWN: &str = "unknown";

/// A track's id, unique within one daemon run.
pub type TrackId = u64;

/// An axis-aligned box in pixels: top-left corner and size. In JSON `[x, y, w, h]`, as in the events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

impl Serialize for BBox {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        [self.x, self.y, self.w, self.h].serialize(s)
    }
}

impl BBox {
    /// Area in square pixels.
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    /// Intersection over union with `other`.
    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x + self.w).min(other.x + other.w) - self.x.max(other.x);
        let iy = (self.y + self.h).min(other.y + other.h) - self.y.max(other.y);
        let inter = ix.max(0.0) * iy.max(0.0);
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// One detected face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// Face box.
    pub bbox: BBox,
    /// Right eye, left eye (as seen in the image: the subject's right eye is on the image's left), nose tip,
    /// right and left mouth corners — the ArcFace landmark order.
    pub landmarks: [[f32; 2]; 5],
    /// Detector confidence, 0..1.
    pub score: f32,
}

impl Detection {
    /// Applies `f` to every coordinate (box and landmarks): used to map between pixel spaces.
    pub fn map_coords(&self, f: impl Fn(f32) -> f32) -> Detection {
        Detection {
            bbox: BBox { x: f(self.bbox.x), y: f(self.bbox.y), w: f(self.bbox.w), h: f(self.bbox.h) },
            landmarks: self.landmarks.map(|[x, y]| [f(x), f(y)]),
            score: self.score,
        }
    }
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

/// Dot product of two equally long slices; gallery scans and graph searches spend nearly all their time here.
///
/// On a CPU with AVX2 and FMA (checked at run time; the build targets baseline x86-64) four 8-lane fused
/// multiply-add accumulators; elsewhere eight independent partial sums, which the compiler vectorises (a single
/// running sum cannot be reordered under IEEE rules).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU has AVX2 and FMA, checked just above (std caches the answer).
        return unsafe { dot_avx2(a, b) };
    }
    dot_portable(a, b)
}

/// [`dot`] for any CPU.
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
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

/// [`dot`] with AVX2 and FMA: four 8-lane accumulators (the build targets baseline x86-64, which has neither).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [_mm256_setzero_ps(); 4];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: each chunk holds 32 floats, so 8 from 8*j (j < 4) are in bounds; loadu takes any alignment.
            let (vx, vy) = unsafe { (_mm256_loadu_ps(x.as_ptr().add(8 * j)), _mm256_loadu_ps(y.as_ptr().add(8 * j))) };
            *acc = _mm256_fmadd_ps(vx, vy, *acc);
        }
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds 8 floats; storeu takes any alignment.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum::<f32>() + dot_portable(ra, rb)
}

/// A gallery candidate for a query face: a person and their best similarity.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Candidate {
    /// Person name.
    pub name: String,
    /// Highest cosine similarity over that person's embeddings.
    #[serde(deserialize_with = "super::event::finite::f32")]
    pub score: f32,
}

/// What the pipeline said about one face on one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaidFace {
    /// Track id.
    pub track: u64,
    /// Box `[x, y, w, h]`, frame pixels.
    pub bbox: [f32; 4],
    /// The track's name (`unknown` for a stranger); `None` before the track's first vote.
    pub name: Option<String>,
    /// Whether `name` is an enrolled person.
    pub known: bool,
}

/// Every face the pipeline reported on one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaidFrame {
    /// Frame number.
    pub seq: u64,
    /// Faces on it.
    pub faces: Vec<SaidFace>,
}

/// What the preview shows for one live track.
#[derive(Debug, Clone)]
pub struct TrackLabel {
    /// Track id.
    pub track: TrackId,
    /// Box, frame pixels.
    pub bbox: BBox,
    /// Name or `unknown`; `None` before the first vote.
    pub name: Option<String>,
    /// Whether the name is enrolled.
    pub known: bool,
    /// Score behind the name.
    pub score: f32,
}

/// A frame and what to draw on it: the track stage → preview payload.
pub struct PreviewFrame {
    /// The frame (its pixels are drawn on).
    pub frame: super::Frame,
    /// Live tracks in it.
    pub labels: Vec<TrackLabel>,
}

/// A scored pair and whether it is truly the same person.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoredPair {
    /// Cosine similarity.
    pub score: f32,
    /// Ground truth.
    pub same: bool,
}

/// The largest face of a photo (by box area): the one a job that needs one face takes.
pub fn largest(dets: &[Detection]) -> Option<&Detection> {
    dets.iter().max_by(|a, b| a.bbox.area().total_cmp(&b.bbox.area()))
}

/// Best candidate's score minus the second's: how clear-cut a match is (`None` with fewer than two candidates).
pub fn margin(candidates: &[Candidate]) -> Option<f32> {
    match candidates {
        [a, b, ..] => Some(a.score - b.score),
        _ => None,
    }
}

/// The name a face gets from its candidates: the best one's when it reaches `threshold`, else `None` (unknown).
pub fn decide(candidates: &[Candidate], threshold: f32) -> Option<&Candidate> {
    candidates.first().filter(|c| c.score >= threshold)
}

#[cfg(test)]
mod dot_tests {
    use super::*;

    #[test]
    fn the_fast_dot_product_agrees_with_the_portable_one_at_every_length() {
        for n in [0usize, 1, 7, 8, 31, 32, 33, 128, 511, 512, 515] {
            let a: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.11).cos()).collect();
            let (fast, plain) = (dot(&a, &b), dot_portable(&a, &b));
            assert!((fast - plain).abs() <= 1e-4 * (1.0 + plain.abs()), "n {n}: {fast} vs {plain}");
        }
    }
}
