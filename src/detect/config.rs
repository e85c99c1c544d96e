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
    /// Long side of the detector's input in pixels, a multiple of 32; 0: the frame's own size.
    pub input_size: u32,
    /// Detector sessions in the daemon, each on its own thread (0: by the source and the cores).
    pub workers: usize,
    /// Cameras: a detection at the frame's own resolution every this many frames, and in between regions around
    /// the small faces it found ([`super::RegionDetector`]); 0: off.
    #[serde(default)]
    pub full_scan_every: u32,
    /// Side of those regions in pixels, a multiple of 32.
    #[serde(default = "default_region")]
    pub region_size: u32,
}

fn default_region() -> u32 {
    256
}

impl DetectConfig {
    /// What is wrong with `[detect]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if self.min_face_px == 0 {
            out.push("detect.min_face_px: must be at least 1".into());
        }
        within(out, "detect.min_face_px", u64::from(self.min_face_px), 4096, "pixels");
        if self.input_size % 32 != 0 || (self.input_size != 0 && !(64..=4096).contains(&self.input_size)) {
            out.push(format!(
                "detect.input_size: {} is not a multiple of 32 from 64 to 4096 (640 is the default; 0 detects at the frame's own size)",
                self.input_size
            ));
        }
        within(out, "detect.workers", self.workers as u64, 16, "detector threads");
        within(out, "detect.full_scan_every", u64::from(self.full_scan_every), 100_000, "frames");
        if self.region_size % 32 != 0 || !(64..=1024).contains(&self.region_size) {
            out.push(format!("detect.region_size: {} is not a multiple of 32 from 64 to 1024 (256 is the default)", self.region_size));
        }
        within(out, "detect.max_image_pixels", self.max_image_pixels.get() as u64, 400_000_000, "a 20000×20000 photo");
    }
}
