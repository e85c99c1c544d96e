//! Decoding raw detector outputs into [`Detection`]s in input-tensor pixels.
//!
//! Both supported models predict on three feature maps (strides 8, 16, 32), one row per grid cell (YuNet) or
//! per cell and anchor (SCRFD, two anchors), row-major over the grid.

use super::{BBox, Detection};
use crate::model::{DetectorFormat, LayoutMismatch};

const STRIDES: [u32; 3] = [8, 16, 32];
const SCRFD_ANCHORS: usize = 2;

/// The input tensor's size, which fixes each stride's grid.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub width: u32,
    pub height: u32,
}

impl Geometry {
    fn grid(&self, stride: u32) -> (usize, usize) {
        (self.width.div_ceil(stride) as usize, self.height.div_ceil(stride) as usize)
    }
}

/// Checks the number of outputs a format needs (12 for YuNet, 9 for SCRFD with keypoints).
pub(super) fn check_outputs(format: DetectorFormat, n: usize) -> Result<(), LayoutMismatch> {
    let want = match format {
        DetectorFormat::Yunet => 12,
        DetectorFormat::Scrfd => 9,
    };
    if n == want {
        Ok(())
    } else {
        Err(LayoutMismatch::Outputs { format, want, got: n })
    }
}

/// Decodes the outputs, in the model's output order, keeping candidates scoring at least `threshold`.
pub(super) fn decode(format: DetectorFormat, outputs: &[&[f32]], geo: Geometry, threshold: f32) -> Result<Vec<Detection>, LayoutMismatch> {
    match format {
        DetectorFormat::Yunet => yunet(outputs, geo, threshold),
        DetectorFormat::Scrfd => scrfd(outputs, geo, threshold),
    }
}

fn expect_len(what: &'static str, stride: u32, got: usize, want: usize) -> Result<(), LayoutMismatch> {
    if got == want {
        Ok(())
    } else {
        Err(LayoutMismatch::Values { what, stride, got, want })
    }
}

/// YuNet 2023mar: outputs `cls_{8,16,32}`, `obj_*`, `bbox_*`, `kps_*` in that order. Score is
/// `sqrt(cls · obj)`; box centre and landmarks are offsets in cells, size is `exp` of a log-size in cells.
fn yunet(out: &[&[f32]], geo: Geometry, threshold: f32) -> Result<Vec<Detection>, LayoutMismatch> {
    let mut dets = Vec::new();
    for (i, &stride) in STRIDES.iter().enumerate() {
        let (cols, rows) = geo.grid(stride);
        let n = cols * rows;
        let (cls, obj, bbox, kps) = (out[i], out[3 + i], out[6 + i], out[9 + i]);
        expect_len("cls", stride, cls.len(), n)?;
        expect_len("obj", stride, obj.len(), n)?;
        expect_len("bbox", stride, bbox.len(), n * 4)?;
        expect_len("kps", stride, kps.len(), n * 10)?;
        let s = stride as f32;
        for idx in 0..n {
            let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
            if score < threshold {
                continue;
            }
            let (c, r) = ((idx % cols) as f32, (idx / cols) as f32);
            let b = &bbox[idx * 4..idx * 4 + 4];
            let (cx, cy) = ((c + b[0]) * s, (r + b[1]) * s);
            let (w, h) = (b[2].exp() * s, b[3].exp() * s);
            let k = &kps[idx * 10..idx * 10 + 10];
            let landmarks = std::array::from_fn(|j| [(k[2 * j] + c) * s, (k[2 * j + 1] + r) * s]);
            dets.push(Detection { bbox: BBox { x: cx - w / 2.0, y: cy - h / 2.0, w, h }, landmarks, score });
        }
    }
    Ok(dets)
}

/// SCRFD with keypoints: outputs scores ×3, boxes ×3, keypoints ×3 (strides 8, 16, 32). Two anchors share each
/// cell centre; boxes are distances (left, top, right, bottom) from it and keypoints offsets, both in strides.
fn scrfd(out: &[&[f32]], geo: Geometry, threshold: f32) -> Result<Vec<Detection>, LayoutMismatch> {
    let mut dets = Vec::new();
    for (i, &stride) in STRIDES.iter().enumerate() {
        let (cols, rows) = geo.grid(stride);
        let n = cols * rows * SCRFD_ANCHORS;
        let (scores, bbox, kps) = (out[i], out[3 + i], out[6 + i]);
        expect_len("score", stride, scores.len(), n)?;
        expect_len("bbox", stride, bbox.len(), n * 4)?;
        expect_len("kps", stride, kps.len(), n * 10)?;
        let s = stride as f32;
        for (idx, &score) in scores.iter().enumerate() {
            if score < threshold {
                continue;
            }
            let cell = idx / SCRFD_ANCHORS;
            let (cx, cy) = ((cell % cols) as f32 * s, (cell / cols) as f32 * s);
            let d = &bbox[idx * 4..idx * 4 + 4];
            let (x1, y1, x2, y2) = (cx - d[0] * s, cy - d[1] * s, cx + d[2] * s, cy + d[3] * s);
            let k = &kps[idx * 10..idx * 10 + 10];
            let landmarks = std::array::from_fn(|j| [cx + k[2 * j] * s, cy + k[2 * j + 1] * s]);
            dets.push(Detection { bbox: BBox { x: x1, y: y1, w: x2 - x1, h: y2 - y1 }, landmarks, score });
        }
    }
    Ok(dets)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GEO: Geometry = Geometry { width: 64, height: 32 };

    fn zeros(len: usize) -> Vec<f32> {
        vec![0.0; len]
    }

    #[test]
    fn yunet_cell_offsets_become_pixels() {
        // Grids: stride 8 → 8×4, 16 → 4×2, 32 → 2×1.
        let sizes = [32usize, 8, 2];
        let mut bufs: Vec<Vec<f32>> = Vec::new();
        for per in [1usize, 1, 4, 10] {
            for n in sizes {
                bufs.push(zeros(n * per));
            }
        }
        // One face in the stride-16 grid at column 2, row 1 (index 1*4+2 = 6).
        let idx = 6;
        bufs[1][idx] = 0.81; // cls_16
        bufs[4][idx] = 1.0; // obj_16
        bufs[7][idx * 4..idx * 4 + 4].copy_from_slice(&[0.5, 0.5, 0.0, (2.0f32).ln()]);
        bufs[10][idx * 10] = 0.25;
        let views: Vec<&[f32]> = bufs.iter().map(Vec::as_slice).collect();
        let dets = decode(DetectorFormat::Yunet, &views, GEO, 0.5).expect("decode");
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        assert!((d.score - 0.9).abs() < 1e-5);
        // centre (2.5*16, 1.5*16) = (40, 24); size 16 × 32
        assert_eq!(d.bbox, BBox { x: 32.0, y: 8.0, w: 16.0, h: 32.0 });
        assert_eq!(d.landmarks[0], [(2.25) * 16.0, 16.0]);
    }

    #[test]
    fn scrfd_distances_and_second_anchor_share_the_cell() {
        let sizes = [32usize * 2, 8 * 2, 2 * 2];
        let mut bufs: Vec<Vec<f32>> = Vec::new();
        for per in [1usize, 4, 10] {
            for n in sizes {
                bufs.push(zeros(n * per));
            }
        }
        // Stride 8, cell (x=3, y=2) → cell index 2*8+3 = 19, second anchor → row 39.
        let idx = 19 * 2 + 1;
        bufs[0][idx] = 0.7;
        bufs[3][idx * 4..idx * 4 + 4].copy_from_slice(&[1.0, 2.0, 3.0, 4.0]);
        bufs[6][idx * 10 + 1] = -1.0;
        let views: Vec<&[f32]> = bufs.iter().map(Vec::as_slice).collect();
        let dets = decode(DetectorFormat::Scrfd, &views, GEO, 0.5).expect("decode");
        assert_eq!(dets.len(), 1);
        let d = &dets[0];
        // centre (24, 16); box from (24-8, 16-16) to (24+24, 16+32)
        assert_eq!(d.bbox, BBox { x: 16.0, y: 0.0, w: 32.0, h: 48.0 });
        assert_eq!(d.landmarks[0], [24.0, 8.0]);
    }

    #[test]
    fn wrong_output_sizes_are_reported() {
        let bufs: Vec<Vec<f32>> = (0..12).map(|_| zeros(3)).collect();
        let views: Vec<&[f32]> = bufs.iter().map(Vec::as_slice).collect();
        let err = decode(DetectorFormat::Yunet, &views, GEO, 0.5).expect_err("bad sizes");
        assert!(err.to_string().contains("stride 8"), "{err}");
    }
}
