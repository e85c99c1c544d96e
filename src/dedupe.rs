//! Dedupe: find copies of the same photo in a collection, so a gallery is not enrolled from five re-encodes of
//! one picture.
//!
//! Photos are linked when any of these holds, and linked photos form a group (union–find):
//! - **identical**: the same bytes (sha256);
//! - **same image**: the difference hashes (dHash, 64 bits of "is the next pixel brighter" on a 9×8 grey
//!   thumbnail) are within a few bits — the same framing resized or re-encoded;
//! - **same face** (optional, needs the models): the largest faces' embeddings have a cosine of at least
//!   `min_face_cosine` *and* the perceptual hashes (pHash, the 8×8 low DCT frequencies of a 32×32 thumbnail) of
//!   the aligned face crops are within `max_face_distance` bits — the same photo cropped or reframed. The
//!   cosine alone would also link different photos of one person; the crop hash alone would link look-alike
//!   strangers.
//!
//! Measured on the project's sample photos: copies of one photo score cosine 0.942–0.973 and crop pHash ≤ 16,
//! different photos of one person ≤ 0.856, whole-image dHash 0–1 between resizes and ≥ 11 between distinct
//! photos. In each group the best copy (largest resolution, then largest file) is kept.

use std::path::PathBuf;

use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, Size, CV_32F};
use opencv::imgproc;
use serde::Serialize;

use crate::base::Embedding;

/// What is known of one photo.
#[derive(Debug, Clone)]
pub struct PhotoInfo {
    /// The file.
    pub path: PathBuf,
    /// sha256 of its bytes.
    pub sha256: String,
    /// Size in bytes.
    pub file_size: u64,
    /// Pixels (original width × height); 0 when it could not be decoded.
    pub pixels: u64,
    /// Whole-image dHash, when decoded.
    pub dhash: Option<u64>,
    /// Largest face: its embedding and its aligned crop's pHash, when faces were compared.
    pub face: Option<(Embedding, u64)>,
}

/// Linking thresholds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Thresholds {
    /// Largest whole-image dHash distance (bits of 64) for "same image".
    pub max_image_distance: u32,
    /// Smallest face cosine for "same face".
    pub min_face_cosine: f32,
    /// Largest aligned-crop pHash distance (bits of 63) for "same face".
    pub max_face_distance: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { max_image_distance: 4, min_face_cosine: 0.92, max_face_distance: 20 }
    }
}

/// Why a copy belongs to its group, measured against the kept photo.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Reason {
    /// Same bytes.
    Identical,
    /// Whole-image hashes this many bits apart.
    SameImage {
        /// dHash distance.
        distance: u32,
    },
    /// Same face, same crop.
    SameFace {
        /// Embedding cosine.
        cosine: f32,
        /// Crop pHash distance.
        distance: u32,
    },
    /// Linked to the kept photo only through another copy.
    ViaAnotherCopy,
}

/// A group of copies: the one to keep and the others with their reasons.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The best copy.
    pub keep: PathBuf,
    /// The other copies.
    pub copies: Vec<Copy>,
}

/// One copy of the kept photo, and why it is one.
#[derive(Debug, Clone, Serialize)]
pub struct Copy {
    /// The photo.
    pub path: PathBuf,
    /// How it matches.
    pub reason: Reason,
}

/// 64-bit difference hash of a BGR image.
pub fn dhash(bgr: &Mat) -> opencv::Result<u64> {
    let small = grey_thumbnail(bgr, Size::new(9, 8))?;
    let px = small.data_bytes()?;
    let mut h = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            h = (h << 1) | u64::from(px[y * 9 + x + 1] > px[y * 9 + x]);
        }
    }
    Ok(h)
}

/// 63-bit perceptual hash of a BGR image: the signs of its 8×8 lowest DCT frequencies (DC excluded) against
/// their median.
pub fn phash(bgr: &Mat) -> opencv::Result<u64> {
    let small = grey_thumbnail(bgr, Size::new(32, 32))?;
    let mut f = Mat::default();
    small.convert_to(&mut f, CV_32F, 1.0, 0.0)?;
    let mut freq = Mat::default();
    opencv::core::dct(&f, &mut freq, 0)?;
    let all = freq.data_typed::<f32>()?;
    let low: Vec<f32> = (0..8).flat_map(|y| (0..8).map(move |x| (y, x))).skip(1).map(|(y, x)| all[y * 32 + x]).collect();
    let mut sorted = low.clone();
    sorted.sort_by(f32::total_cmp);
    let median = sorted[sorted.len() / 2];
    Ok(low.iter().fold(0u64, |h, &v| (h << 1) | u64::from(v > median)))
}

fn grey_thumbnail(bgr: &Mat, size: Size) -> opencv::Result<Mat> {
    let mut grey = Mat::default();
    imgproc::cvt_color_def(bgr, &mut grey, imgproc::COLOR_BGR2GRAY)?;
    let mut small = Mat::default();
    imgproc::resize(&grey, &mut small, size, 0.0, 0.0, imgproc::INTER_AREA)?;
    Ok(small)
}

/// The direct link between two photos, if any.
fn link(a: &PhotoInfo, b: &PhotoInfo, t: &Thresholds) -> Option<Reason> {
    if a.sha256 == b.sha256 {
        return Some(Reason::Identical);
    }
    if let (Some(x), Some(y)) = (a.dhash, b.dhash) {
        let distance = (x ^ y).count_ones();
        if distance <= t.max_image_distance {
            return Some(Reason::SameImage { distance });
        }
    }
    if let (Some((ea, ha)), Some((eb, hb))) = (&a.face, &b.face) {
        let (cosine, distance) = (ea.cosine(eb), (ha ^ hb).count_ones());
        if cosine >= t.min_face_cosine && distance <= t.max_face_distance {
            return Some(Reason::SameFace { cosine, distance });
        }
    }
    None
}

fn find(parent: &mut [usize], mut i: usize) -> usize {
    while parent[i] != i {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    i
}

/// Groups of copies among `photos` (all pairs are compared), largest groups first.
pub fn groups(photos: &[PhotoInfo], t: &Thresholds) -> Vec<Group> {
    let mut parent: Vec<usize> = (0..photos.len()).collect();
    for i in 0..photos.len() {
        for j in i + 1..photos.len() {
            if link(&photos[i], &photos[j], t).is_some() {
                let (a, b) = (find(&mut parent, i), find(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut members: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for i in 0..photos.len() {
        let root = find(&mut parent, i);
        members.entry(root).or_default().push(i);
    }
    let mut out: Vec<Group> = members
        .into_values()
        .filter(|m| m.len() > 1)
        .map(|m| {
            let best = m
                .iter()
                .copied()
                .max_by(|&a, &b| {
                    let (pa, pb) = (&photos[a], &photos[b]);
                    (pa.pixels, pa.file_size).cmp(&(pb.pixels, pb.file_size)).then_with(|| pb.path.cmp(&pa.path))
                })
                .unwrap_or(m[0]);
            let copies = m
                .iter()
                .filter(|&&i| i != best)
                .map(|&i| Copy {
                    path: photos[i].path.clone(),
                    reason: link(&photos[best], &photos[i], t).unwrap_or(Reason::ViaAnotherCopy),
                })
                .collect();
            Group { keep: photos[best].path.clone(), copies }
        })
        .collect();
    out.sort_by(|a, b| b.copies.len().cmp(&a.copies.len()).then_with(|| a.keep.cmp(&b.keep)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn photo(name: &str, sha: &str, pixels: u64, dhash: u64) -> PhotoInfo {
        PhotoInfo { path: name.into(), sha256: sha.into(), file_size: pixels, pixels, dhash: Some(dhash), face: None }
    }

    #[test]
    fn identical_and_similar_images_group_and_the_largest_is_kept() {
        let photos = [
            photo("a.jpg", "1", 100, 0b1111),
            photo("b.jpg", "1", 100, 0xFFFF_0000),
            photo("big.jpg", "2", 400, 0b1110),
            photo("other.jpg", "3", 900, u64::MAX),
        ];
        let g = groups(&photos, &Thresholds::default());
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].keep, PathBuf::from("big.jpg"));
        let reasons: Vec<&Reason> = g[0].copies.iter().map(|c| &c.reason).collect();
        // a is one bit from big; b is linked to a by bytes but far from big by hash.
        assert!(reasons.contains(&&Reason::SameImage { distance: 1 }));
        assert!(reasons.contains(&&Reason::ViaAnotherCopy));
    }

    #[test]
    fn faces_need_both_a_high_cosine_and_a_close_crop() {
        let e = |v: Vec<f32>| Embedding::from_raw(v).expect("non-zero");
        let mut a = photo("a.jpg", "1", 10, 0);
        let mut b = photo("b.jpg", "2", 20, u64::MAX);
        a.face = Some((e(vec![1.0, 0.0]), 0));
        b.face = Some((e(vec![0.99, 0.05]), 0b111));
        let t = Thresholds::default();
        assert!(matches!(link(&a, &b, &t), Some(Reason::SameFace { distance: 3, .. })));
        b.face = Some((e(vec![0.99, 0.05]), u64::MAX));
        assert_eq!(link(&a, &b, &t), None, "same person, different crop");
        b.face = Some((e(vec![0.5, 0.8]), 0));
        assert_eq!(link(&a, &b, &t), None, "look-alike crop, different face");
    }

    #[test]
    fn hashes_survive_resizing_and_tell_images_apart() {
        let mut img = Mat::new_rows_cols_with_default(120, 160, opencv::core::CV_8UC3, opencv::core::Scalar::all(0.0)).expect("mat");
        imgproc::circle(&mut img, opencv::core::Point::new(50, 60), 30, opencv::core::Scalar::all(255.0), -1, imgproc::LINE_8, 0)
            .expect("draw");
        let mut half = Mat::default();
        imgproc::resize(&img, &mut half, Size::new(80, 60), 0.0, 0.0, imgproc::INTER_AREA).expect("resize");
        let mut flipped = Mat::default();
        opencv::core::flip(&img, &mut flipped, 1).expect("flip");
        assert!((dhash(&img).expect("h") ^ dhash(&half).expect("h")).count_ones() <= 2);
        assert!((phash(&img).expect("h") ^ phash(&half).expect("h")).count_ones() <= 4);
        assert!((dhash(&img).expect("h") ^ dhash(&flipped).expect("h")).count_ones() > 8);
    }
}
