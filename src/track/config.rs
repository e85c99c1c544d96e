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
    /// Recognizer sessions that embed a frame's faces side by side (0: see [`TrackConfig::embed_session_count`]).
    pub embed_sessions: usize,
    /// Faces embedded per frame at most, the most urgent first (0: one per recognizer session).
    #[serde(default)]
    pub embed_budget: usize,
}

impl TrackConfig {
    /// Recognizer sessions a camera runs: `embed_sessions`, or when 0 one per core its `detect_workers` leave free
    /// for a `live` source (at most two, at least one), two for a file read as fast as possible (one on a single
    /// core). A live camera alone on the machine then runs no more inference threads than there are cores, so its
    /// embeddings do not slow the next frame's detection: on 2 cores, two sessions beside the detect worker put a
    /// frame's events at 1.2–1.7× (detect + embed) at p99, one at 1.0–1.4× (BENCHMARKS.md "Tail latency"). Counted
    /// per camera: several cameras share the cores (`runtime.intra_threads` is divided among all sessions).
    pub fn embed_session_count(&self, cores: usize, detect_workers: usize, live: bool) -> usize {
        match self.embed_sessions {
            0 if live => cores.saturating_sub(detect_workers).clamp(1, 2),
            0 => cores.clamp(1, 2),
            n => n,
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_sessions(n: usize) -> TrackConfig {
        let mut cfg = crate::config::Config::default_embedded().expect("the embedded defaults load").track;
        cfg.embed_sessions = n;
        cfg
    }

    #[test]
    fn a_live_camera_gets_the_embedding_sessions_its_detect_workers_leave_cores_for() {
        let auto = with_sessions(0);
        // Live: the cores left beside the detect workers, at most two, at least one.
        assert_eq!(auto.embed_session_count(2, 1, true), 1);
        assert_eq!(auto.embed_session_count(4, 1, true), 2);
        assert_eq!(auto.embed_session_count(16, 4, true), 2);
        assert_eq!(auto.embed_session_count(1, 1, true), 1);
        // A file read as fast as possible: two (one on one core), whatever the detect workers.
        assert_eq!(auto.embed_session_count(2, 2, false), 2);
        assert_eq!(auto.embed_session_count(1, 1, false), 1);
        // Set by hand: as set.
        assert_eq!(with_sessions(3).embed_session_count(2, 1, true), 3);
    }
}
