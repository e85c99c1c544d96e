//! `[detect]`: face detection.

use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use crate::base::units::{within, UnitInterval};

/// `[detect]`: face detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    /// Minimum face score.
    pub score_threshold: UnitInterval,
    /// NMS IoU threshold.
    pub nms_threshold: UnitInterval,
    /// Minimum shorter box side in pixels.
    pub min_face_px: u32,
    /// Largest image decoded at full size.
    pub max_image_pixels: NonZeroUsize,
}

impl DetectConfig {
    /// What is wrong with `[detect]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if self.min_face_px == 0 {
            out.push("detect.min_face_px: must be at least 1".into());
        }
        within(out, "detect.min_face_px", u64::from(self.min_face_px), 4096, "pixels");
        within(out, "detect.max_image_pixels", self.max_image_pixels.get() as u64, 400_000_000, "a 20000×20000 photo");
    }
}
