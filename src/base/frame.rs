//! [`Frame`]: the one image type that flows through every stage, from a still photo or (later) a camera.

use std::sync::Arc;
use std::time::SystemTime;

use opencv::core::{Mat, MatTraitConst};

/// One decoded image: 8-bit BGR pixels plus where they came from.
///
/// A huge photo may be decoded at a reduced scale ([`Frame::scale`] < 1); stages work in the decoded pixels
/// and results are mapped back to the original image's coordinates with [`Frame::to_original`].
#[derive(Debug)]
pub struct Frame {
    /// 8-bit, 3-channel BGR pixels (OpenCV's layout).
    pub bgr: Mat,
    /// Width of the source image before any reduction.
    pub original_width: u32,
    /// Height of the source image before any reduction.
    pub original_height: u32,
    /// Decoded size ÷ original size (1 unless a huge image was decoded reduced).
    pub scale: f32,
    /// File path, camera name or URL.
    pub source: Arc<str>,
    /// Sequence number within its source (0 for a still photo).
    pub seq: u64,
    /// When the pixels were captured or read.
    pub captured_at: SystemTime,
}

impl Frame {
    /// Wraps decoded pixels at full scale.
    pub fn from_bgr(bgr: Mat, source: impl Into<Arc<str>>, seq: u64) -> Self {
        let (w, h) = (bgr.cols().max(0) as u32, bgr.rows().max(0) as u32);
        Self { bgr, original_width: w, original_height: h, scale: 1.0, source: source.into(), seq, captured_at: SystemTime::now() }
    }

    /// Decoded width in pixels.
    pub fn width(&self) -> u32 {
        self.bgr.cols().max(0) as u32
    }

    /// Decoded height in pixels.
    pub fn height(&self) -> u32 {
        self.bgr.rows().max(0) as u32
    }

    /// Maps a coordinate in decoded pixels to the original image.
    pub fn to_original(&self, v: f32) -> f32 {
        v / self.scale
    }
}
