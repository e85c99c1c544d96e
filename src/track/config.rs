//! `[track]`: association and identity voting.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::units::{seconds, within, Threshold, UnitInterval};

/// `[track]`: association and identity voting.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackConfig {
    /// IoU to continue a track by position.
    pub iou_threshold: UnitInterval,
    /// Cosine below which a positional match is another person; `None`: the recognizer's own (manifest).
    #[serde(default)]
    pub same_face_min: Option<Threshold>,
    /// Cosine to re-join a recently lost track or a track across a cut; `None`: the recognizer's own (manifest).
    #[serde(default)]
    pub reid_min: Option<Threshold>,
    /// Frame difference (0..1) that counts as a shot cut; 0: no cut detection.
    pub scene_cut: UnitInterval,
    /// Re-embed every this many frames.
    pub embed_every: NonZeroUsize,
    /// Quality factor that counts as a better face.
    pub better_quality: f32,
    /// Votes kept per track.
    pub vote_window: NonZeroUsize,
    /// Vote lead needed to change identity.
    pub switch_votes: usize,
    /// Absence that ends a track (`max_absence_s`).
    #[serde(rename = "max_absence_s", with = "seconds")]
    pub max_absence: Duration,
    /// Recognizer sessions that embed a frame's faces side by side (0: decided by the plan, `crate::pipeline::plan::embed_sessions`).
    pub embed_sessions: usize,
    /// Faces embedded per frame at most, the most urgent first (0: one per recognizer session).
    #[serde(default)]
    pub embed_budget: usize,
}

impl TrackConfig {
    /// What is wrong with `[track]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if self.max_absence.is_zero() || self.max_absence > Duration::from_secs(3600) {
            out.push(format!("track.max_absence_s: {} must be in (0, 3600]", self.max_absence.as_secs_f64()));
        }
        if !(self.better_quality >= 1.0 && self.better_quality.is_finite()) {
            out.push(format!("track.better_quality: {} must be at least 1", self.better_quality));
        }
        if self.switch_votes >= self.vote_window.get() {
            out.push(format!(
                "track.switch_votes: {} must be below track.vote_window ({}), or the identity could never change",
                self.switch_votes, self.vote_window
            ));
        }
        within(out, "track.embed_sessions", self.embed_sessions as u64, 16, "recognizer sessions");
        within(out, "track.embed_budget", self.embed_budget as u64, 1000, "faces embedded per frame");
        within(out, "track.embed_every", self.embed_every.get() as u64, 10_000, "frames");
        within(out, "track.vote_window", self.vote_window.get() as u64, 1000, "votes per track");
    }
}
