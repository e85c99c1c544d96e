//! `[strangers]`: faces that match no enrolled person, kept as stable `stranger-…` ids.

use std::num::NonZeroUsize;

use serde::{Deserialize, Serialize};

use crate::base::units::{within, Threshold, UnitInterval};

/// `[strangers]` ([`super`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StrangerConfig {
    /// Keep strangers (the daemon).
    pub enabled: bool,
    /// Cosine a face needs to one of a stranger's faces to be them; unset: the recognizer's `stranger_min`.
    #[serde(default)]
    pub threshold: Option<Threshold>,
    /// Good faces one track shows before it starts a stranger.
    pub min_faces: NonZeroUsize,
    /// Faces kept per stranger (the best).
    pub keep_faces: NonZeroUsize,
    /// Smallest face side taking part, frame pixels.
    pub min_face_px: u32,
    /// Least face quality taking part (detector score × size × frontality).
    pub min_quality: UnitInterval,
    /// Least sharpness taking part (variance of the aligned crop's Laplacian).
    pub min_sharpness: f32,
    /// A face box closer than this to the frame's edge is cut, and does not take part (frame pixels).
    pub edge_margin_px: u32,
    /// Strangers not seen for this many days are forgotten; 0: kept.
    pub max_age_days: u32,
    /// At most this many strangers are kept, the least recently seen forgotten first.
    pub max_strangers: NonZeroUsize,
}

impl StrangerConfig {
    /// What is wrong with `[strangers]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        within(out, "strangers.min_faces", self.min_faces.get() as u64, 50, "faces");
        within(out, "strangers.keep_faces", self.keep_faces.get() as u64, 50, "faces");
        within(out, "strangers.min_face_px", u64::from(self.min_face_px), 4096, "pixels");
        within(out, "strangers.edge_margin_px", u64::from(self.edge_margin_px), 1024, "pixels");
        within(out, "strangers.max_age_days", u64::from(self.max_age_days), 36_500, "a century");
        within(out, "strangers.max_strangers", self.max_strangers.get() as u64, 1_000_000, "strangers");
        if !(self.min_sharpness >= 0.0 && self.min_sharpness <= 10_000.0) {
            out.push(format!("strangers.min_sharpness: {} is outside 0..=10000", self.min_sharpness));
        }
    }
}
