//! Align: warp a detected face onto the 112×112 ArcFace template so the recognizer sees every face the same way.
//!
//! In: a BGR image and a detection's five landmarks. The least-squares similarity transform (rotation, uniform
//! scale, translation; Umeyama 1991 without reflection) that maps the landmarks onto [`ARCFACE_TEMPLATE`] is
//! solved in closed form and applied with `warpAffine`. Out: an [`AlignedFace`].

use opencv::core::{Mat, Scalar, Size, BORDER_CONSTANT};
use opencv::imgproc;

/// Side of an aligned face in pixels.
pub const ALIGNED_SIZE: i32 = 112;

/// Landmark positions in a 112×112 ArcFace crop: right eye, left eye (image left to right), nose tip, right and
/// left mouth corners (InsightFace `arcface_dst`; OpenCV's `FaceRecognizerSF::alignCrop` uses the same points).
pub const ARCFACE_TEMPLATE: [[f32; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// Errors while aligning.
#[derive(Debug, thiserror::Error)]
pub enum AlignError {
    /// The landmarks are degenerate (all at one point), so no similarity maps them onto the template.
    #[error("failed to align a face: its landmarks are degenerate")]
    Degenerate,
    /// OpenCV failed to warp.
    #[error("failed to warp a face: {0}")]
    Warp(#[from] opencv::Error),
}

/// A 2×3 similarity `[[a, −b, tx], [b, a, ty]]`: scale·rotation plus translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    /// scale · cos θ
    pub a: f64,
    /// scale · sin θ
    pub b: f64,
    /// x translation
    pub tx: f64,
    /// y translation
    pub ty: f64,
}

impl Similarity {
    /// Applies the transform to a point.
    pub fn apply(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        [self.a * x - self.b * y + self.tx, self.b * x + self.a * y + self.ty]
    }

    /// Uniform scale factor.
    pub fn scale(&self) -> f64 {
        self.a.hypot(self.b)
    }

    /// Rotation in radians.
    pub fn angle(&self) -> f64 {
        self.b.atan2(self.a)
    }

    /// The 2×3 matrix rows.
    pub fn rows(&self) -> [[f64; 3]; 2] {
        [[self.a, -self.b, self.tx], [self.b, self.a, self.ty]]
    }
}

/// The similarity minimising Σ‖dst − T(src)‖² over rotation, uniform scale and translation.
///
/// With both point sets centred, the optimum is `a = Σ(p·q)/Σ‖p‖²`, `b = Σ(p×q)/Σ‖p‖²` — the 2-D case of
/// Umeyama's solution, where the rotation's SVD reduces to an angle.
pub fn similarity_from_points(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Similarity> {
    let n = src.len().min(dst.len());
    if n < 2 {
        return None;
    }
    let mean = |pts: &[[f32; 2]]| {
        let (sx, sy) = pts[..n].iter().fold((0.0f64, 0.0f64), |(x, y), p| (x + f64::from(p[0]), y + f64::from(p[1])));
        [sx / n as f64, sy / n as f64]
    };
    let (ms, md) = (mean(src), mean(dst));
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (p, q) in src[..n].iter().zip(&dst[..n]) {
        let (px, py) = (f64::from(p[0]) - ms[0], f64::from(p[1]) - ms[1]);
        let (qx, qy) = (f64::from(q[0]) - md[0], f64::from(q[1]) - md[1]);
        dot += px * qx + py * qy;
        cross += px * qy - py * qx;
        norm += px * px + py * py;
    }
    if norm < 1e-9 {
        return None;
    }
    let (a, b) = (dot / norm, cross / norm);
    Some(Similarity { a, b, tx: md[0] - (a * ms[0] - b * ms[1]), ty: md[1] - (b * ms[0] + a * ms[1]) })
}

/// A face warped onto the ArcFace template: 112×112 BGR.
#[derive(Debug)]
pub struct AlignedFace {
    /// The crop.
    pub bgr: Mat,
    /// The transform from image pixels to crop pixels.
    pub transform: Similarity,
}

/// Aligns the face with `landmarks` in `bgr`; pixels outside the image are black.
pub fn align(bgr: &Mat, landmarks: &[[f32; 2]; 5]) -> Result<AlignedFace, AlignError> {
    let mut out = Mat::default();
    let transform = align_into(bgr, landmarks, &mut out)?;
    Ok(AlignedFace { bgr: out, transform })
}

/// Like [`align`], writing into a reused buffer (the hot path allocates once).
pub fn align_into(bgr: &Mat, landmarks: &[[f32; 2]; 5], out: &mut Mat) -> Result<Similarity, AlignError> {
    let t = similarity_from_points(landmarks, &ARCFACE_TEMPLATE).ok_or(AlignError::Degenerate)?;
    let m = Mat::from_slice_2d(&t.rows())?;
    imgproc::warp_affine(bgr, out, &m, Size::new(ALIGNED_SIZE, ALIGNED_SIZE), imgproc::INTER_LINEAR, BORDER_CONSTANT, Scalar::all(0.0))?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::MatTraitConst;

    fn transformed(t: &Similarity, pts: &[[f32; 2]; 5]) -> [[f32; 2]; 5] {
        pts.map(|p| {
            let [x, y] = t.apply([f64::from(p[0]), f64::from(p[1])]);
            [x as f32, y as f32]
        })
    }

    #[test]
    fn known_transform_is_recovered_exactly() {
        let truth = Similarity { a: 0.8 * 0.3f64.cos(), b: 0.8 * 0.3f64.sin(), tx: -12.5, ty: 40.0 };
        let src = [[100.0, 120.0], [160.0, 118.0], [131.0, 150.0], [108.0, 185.0], [155.0, 183.0]];
        let dst = transformed(&truth, &src);
        let got = similarity_from_points(&src, &dst).expect("solvable");
        assert!((got.scale() - 0.8).abs() < 1e-5, "{got:?}");
        assert!((got.angle() - 0.3).abs() < 1e-5, "{got:?}");
        assert!((got.tx - truth.tx).abs() < 1e-3 && (got.ty - truth.ty).abs() < 1e-3, "{got:?}");
    }

    #[test]
    fn template_maps_to_itself() {
        let t = similarity_from_points(&ARCFACE_TEMPLATE, &ARCFACE_TEMPLATE).expect("solvable");
        assert!((t.a - 1.0).abs() < 1e-9 && t.b.abs() < 1e-9 && t.tx.abs() < 1e-9 && t.ty.abs() < 1e-9);
    }

    #[test]
    fn noisy_points_give_the_least_squares_fit() {
        // With noise there is no exact fit: the solution must be a minimum of the squared residual, so nudging
        // any of the four parameters either way must not lower it.
        let src = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0], [5.0, 5.0]];
        let mut dst = src.map(|[x, y]| [2.0 * x + 3.0, 2.0 * y - 1.0]);
        dst[0][0] -= 0.5;
        dst[3][0] += 0.5;
        dst[2][1] += 0.3;
        let residual = |t: &Similarity| -> f64 {
            src.iter()
                .zip(&dst)
                .map(|(p, q)| {
                    let r = t.apply([f64::from(p[0]), f64::from(p[1])]);
                    (r[0] - f64::from(q[0])).powi(2) + (r[1] - f64::from(q[1])).powi(2)
                })
                .sum()
        };
        let t = similarity_from_points(&src, &dst).expect("solvable");
        let best = residual(&t);
        assert!(best > 0.0 && (t.scale() - 2.0).abs() < 0.05, "{t:?}");
        for d in [1e-3, -1e-3] {
            for nudged in [
                Similarity { a: t.a + d, ..t },
                Similarity { b: t.b + d, ..t },
                Similarity { tx: t.tx + d, ..t },
                Similarity { ty: t.ty + d, ..t },
            ] {
                assert!(residual(&nudged) >= best, "{nudged:?} beats {t:?}");
            }
        }
    }

    #[test]
    fn degenerate_landmarks_are_refused() {
        assert!(similarity_from_points(&[[5.0, 5.0]; 5], &ARCFACE_TEMPLATE).is_none());
    }

    #[test]
    fn warp_puts_landmarks_on_the_template() {
        // Draw bright dots at the landmark positions of a rotated, scaled face and check they land on the template.
        let truth = Similarity { a: 2.0 * 0.2f64.cos(), b: 2.0 * 0.2f64.sin(), tx: 30.0, ty: 10.0 };
        let lm = transformed(&truth, &ARCFACE_TEMPLATE);
        let mut img = Mat::new_rows_cols_with_default(300, 300, opencv::core::CV_8UC3, Scalar::all(0.0)).expect("mat");
        for p in &lm {
            imgproc::circle(
                &mut img,
                opencv::core::Point::new(p[0].round() as i32, p[1].round() as i32),
                3,
                Scalar::all(255.0),
                -1,
                imgproc::LINE_8,
                0,
            )
            .expect("circle");
        }
        let face = align(&img, &lm).expect("align");
        for t in ARCFACE_TEMPLATE {
            let v = *face.bgr.at_2d::<opencv::core::Vec3b>(t[1].round() as i32, t[0].round() as i32).expect("px");
            assert!(v[0] > 200, "template point {t:?} is dark ({v:?})");
        }
    }
}
