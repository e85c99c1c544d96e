//! Track: one id per face over time, and one identity per track.
//!
//! The [`TrackStage`] runs both halves on one thread, with the embedding and the gallery search between them,
//! because deciding *whether to embed* needs to know which track a face continues:
//! - [`Associator`], before embedding, links each detection to a live track by box
//!   overlap (IoU, greedy best-first), plans which faces to embed (a new track and its first few frames, every
//!   `embed_every` frames, or a clearly better-quality face), then checks the fresh embeddings: a face continuing a track by position but not
//!   by appearance starts a new track, and a face overlapping no track re-joins a recently lost track whose face
//!   it matches (IoU + embedding distance). Tracks unseen for `max_absence_s` end (one already embedded is held up
//!   to five times longer, by its face only, while faces of the frame still wait for their first embedding: it may
//!   be one of them).
//! - [`identity::Identities`], after matching, votes over the track's recent matches and
//!   changes the name only when another one leads by `switch_votes` (hysteresis), and turns all this into events.

mod config;
pub mod cut;
pub mod identity;
mod stage;

use std::time::SystemTime;

pub use crate::base::TrackId;
use crate::base::{BBox, Candidate, Detection, Embedding};
pub use config::TrackConfig;

pub use cut::SceneCut;
pub use identity::Identities;
pub use stage::{TrackPlan, TrackPorts, TrackStage};

/// The recognizer's own cosine levels for tracking, from its impostor statistics (manifest), unless
/// `[track]` overrides them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceThresholds {
    /// Below this cosine to its track's face, a face is another person (`track.same_face_min`).
    pub same_face_min: f32,
    /// At least this cosine re-joins a lost track, or a track across a shot cut (`track.reid_min`).
    pub reid_min: f32,
}

impl FaceThresholds {
    /// `[track]`'s overrides over the recognizer's values.
    pub fn resolve(cfg: &TrackConfig, same_face_min: f32, reid_min: f32) -> Self {
        Self { same_face_min: cfg.same_face_min.map_or(same_face_min, |t| t.get()), reid_min: cfg.reid_min.map_or(reid_min, |t| t.get()) }
    }
}

/// A face seen in one frame, attached to a track.
#[derive(Debug, Clone)]
pub struct Observation {
    /// Its track.
    pub track: TrackId,
    /// Box and landmarks, frame pixels.
    pub detection: Detection,
    /// Face quality, 0..1 ([`face_quality`]).
    pub quality: f32,
    /// Set when this face was embedded in this frame.
    pub embedding: Option<Embedding>,
    /// Gallery candidates for that embedding, best first (filled by the matcher).
    pub candidates: Option<Vec<Candidate>>,
}

/// How good a face is for recognition, 0..1: detector score × size (full at 112 px, the crop size) × frontality
/// (the nose centred between the eyes; a profile keeps a fifth: recognizers trained on frontal faces say little
/// about a profile).
pub fn face_quality(det: &Detection) -> f32 {
    let size = (det.bbox.w.min(det.bbox.h) / 112.0).clamp(0.0, 1.0);
    let [right_eye, left_eye, nose, _, _] = det.landmarks;
    let eye_dx = left_eye[0] - right_eye[0];
    let frontal = if eye_dx > 1.0 {
        let mid = (right_eye[0] + left_eye[0]) / 2.0;
        (1.0 - (nose[0] - mid).abs() / (eye_dx * 0.5)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    (det.score.clamp(0.0, 1.0) * size * (0.2 + 0.8 * frontal)).clamp(0.0, 1.0)
}

/// A live track as the associator sees it.
#[derive(Debug)]
struct LiveTrack {
    id: TrackId,
    bbox: BBox,
    last_seen: SystemTime,
    /// The mean direction of the track's consistent embeddings: what the track "looks like".
    reference: Option<Embedding>,
    sum: Vec<f32>,
    /// Consecutive embeddings that did not look like `reference`.
    mismatches: usize,
    best_quality: f32,
    frames_since_embed: usize,
    /// Faces embedded so far: the first [`SETTLE_EMBEDDINGS`] are taken on consecutive frames.
    embeddings: usize,
    /// Embeddings planned for this track that failed (alignment or inference): such a face goes to the back of the
    /// budget's queue, so it cannot hold every new face back.
    failures: usize,
    seen_this_frame: bool,
}

/// A young track is embedded on each of its first frames, so its identity settles within a few frames.
const SETTLE_EMBEDDINGS: usize = 3;

/// How many times `max_absence_s` an embedded lost track is held while faces wait for their first embedding.
const HOLD_WHILE_WAITING: f64 = 5.0;

/// Consecutive embeddings unlike the track's face that split it: one blurred frame must not, a new person must.
const MISMATCHES_TO_SPLIT: usize = 2;

/// What the associator plans for one detection of the current frame.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Live track this detection continues by position (index into the associator's tracks).
    track: Option<usize>,
    /// Whether to embed the face now.
    pub embed: bool,
    /// Its quality.
    pub quality: f32,
}

/// Frame-to-frame association and the embedding policy (see the module docs).
#[derive(Debug)]
pub struct Associator {
    iou_threshold: f32,
    same_face_min: f32,
    reid_min: f32,
    embed_every: usize,
    better_quality: f32,
    max_absence: f64,
    tracks: Vec<LiveTrack>,
    next_id: TrackId,
    /// Faces embedded per frame at most (0: no limit).
    budget: usize,
}

fn seconds_between(earlier: SystemTime, later: SystemTime) -> f64 {
    later.duration_since(earlier).map_or(0.0, |d| d.as_secs_f64())
}

impl Associator {
    /// From `[track]` and the recognizer's levels.
    pub fn new(cfg: &TrackConfig, levels: FaceThresholds) -> Self {
        Self {
            iou_threshold: cfg.iou_threshold.get(),
            same_face_min: levels.same_face_min,
            reid_min: levels.reid_min,
            embed_every: cfg.embed_every.get(),
            better_quality: cfg.better_quality,
            max_absence: cfg.max_absence.as_secs_f64(),
            tracks: Vec::new(),
            next_id: 1,
            budget: 0,
        }
    }

    /// Embeds at most `n` faces per frame (0: no limit), the most urgent first; see [`Associator::plan`].
    pub fn with_budget(mut self, n: usize) -> Self {
        self.budget = n;
        self
    }

    /// How urgently a planned embedding is needed, most urgent lowest: a new face or a track never embedded (its
    /// events wait on it), a track whose face stopped matching (a person may have changed), a young track settling,
    /// then the periodic and better-quality ones, the longest unembedded first; a face whose embedding failed
    /// before comes last.
    fn urgency(&self, track: Option<usize>) -> (u8, std::cmp::Reverse<usize>) {
        match track.map(|t| &self.tracks[t]) {
            None => (0, std::cmp::Reverse(0)),
            Some(tr) if tr.failures > 0 => (4, std::cmp::Reverse(tr.frames_since_embed)),
            Some(tr) if tr.reference.is_none() => (0, std::cmp::Reverse(tr.frames_since_embed)),
            Some(tr) if tr.mismatches > 0 => (1, std::cmp::Reverse(tr.frames_since_embed)),
            Some(tr) if tr.embeddings < SETTLE_EMBEDDINGS => (2, std::cmp::Reverse(tr.frames_since_embed)),
            Some(tr) => (3, std::cmp::Reverse(tr.frames_since_embed)),
        }
    }

    /// Live tracks.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    /// Whether no track is live.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// A shot cut: positions no longer say anything, so every live track lets go of its box. Faces of the new
    /// shot are embedded as new faces and continue a track only by re-identification (cosine ≥ `reid_min`):
    /// a name never rides a box across a cut onto someone else.
    pub fn scene_cut(&mut self) {
        for t in &mut self.tracks {
            t.bbox = BBox { w: 0.0, h: 0.0, ..t.bbox };
            t.mismatches = 0;
        }
    }

    /// Links detections to live tracks by IoU (greedy, best overlap first) and decides which faces to embed.
    pub fn plan(&mut self, dets: &[Detection]) -> Vec<Plan> {
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (d, det) in dets.iter().enumerate() {
            for (t, tr) in self.tracks.iter().enumerate() {
                let iou = det.bbox.iou(&tr.bbox);
                if iou >= self.iou_threshold {
                    pairs.push((iou, d, t));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut det_track = vec![None; dets.len()];
        let mut taken = vec![false; self.tracks.len()];
        for (_, d, t) in pairs {
            if det_track[d].is_none() && !taken[t] {
                det_track[d] = Some(t);
                taken[t] = true;
            }
        }
        let mut plans = dets
            .iter()
            .zip(det_track)
            .map(|(det, track)| {
                let quality = face_quality(det);
                let embed = match track.map(|t| &self.tracks[t]) {
                    None => true,
                    Some(tr) => {
                        tr.reference.is_none()
                            || tr.embeddings < SETTLE_EMBEDDINGS
                            || tr.mismatches > 0
                            || tr.frames_since_embed + 1 >= self.embed_every
                            || quality > tr.best_quality * self.better_quality
                    }
                };
                Plan { track, embed, quality }
            })
            .collect::<Vec<Plan>>();
        self.within_budget(&mut plans);
        plans
    }

    /// Over budget, keeps the most urgent embeddings of the frame (the better face first among equals) and defers
    /// the rest: a deferred face keeps its track's identity and is planned again on the next frame.
    fn within_budget(&self, plans: &mut [Plan]) {
        let wanted: Vec<usize> = (0..plans.len()).filter(|&i| plans[i].embed).collect();
        if self.budget == 0 || wanted.len() <= self.budget {
            return;
        }
        // Each face's urgency once, then the most urgent first, the better face first among equals.
        let mut ranked: Vec<(_, f32, usize)> = wanted.into_iter().map(|i| (self.urgency(plans[i].track), plans[i].quality, i)).collect();
        ranked.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        for &(_, _, i) in &ranked[self.budget..] {
            plans[i].embed = false;
        }
    }

    /// Applies a frame: `dets[i]` planned as `plans[i]`, with `embeddings[i]` when it was embedded. Returns the
    /// frame's observations and the tracks that ended (unseen for longer than `max_absence_s` at `now`).
    pub fn commit(
        &mut self,
        dets: Vec<Detection>,
        plans: &[Plan],
        embeddings: Vec<Option<Embedding>>,
        now: SystemTime,
    ) -> (Vec<Observation>, Vec<TrackId>) {
        for t in &mut self.tracks {
            t.seen_this_frame = false;
        }
        let mut out = Vec::with_capacity(dets.len());
        // Positional matches first, so re-identification only considers tracks nobody continued.
        let mut order: Vec<usize> = (0..dets.len()).collect();
        order.sort_by_key(|&i| plans[i].track.is_none());
        let mut dets: Vec<Option<Detection>> = dets.into_iter().map(Some).collect();
        let mut embeddings = embeddings;
        // Tracks a detection of this frame continues by position: not for a placeholder to take over.
        let mut claimed = vec![false; self.tracks.len()];
        plans.iter().filter_map(|p| p.track).for_each(|t| claimed[t] = true);
        for i in order {
            let (Some(det), plan) = (dets[i].take(), plans[i]) else { continue };
            let emb = embeddings[i].take();
            let mut slot = plan.track;
            let mut consistent = true;
            // A track held by position while its first embedding waited for the budget: now that its face is known,
            // it may be someone whose track was lost a moment ago. Then that track continues, and the placeholder
            // (never started, so never announced) ends.
            if let (Some(t), Some(e)) = (slot, &emb) {
                if self.tracks[t].embeddings == 0 && self.tracks[t].reference.is_none() {
                    if let Some(old) = self.reidentify(e, &claimed) {
                        let placeholder = &mut self.tracks[t];
                        placeholder.last_seen = SystemTime::UNIX_EPOCH;
                        placeholder.seen_this_frame = false;
                        slot = Some(old);
                    }
                }
            }
            if let (Some(t), Some(e)) = (slot, &emb) {
                let tr = &mut self.tracks[t];
                let cosine = tr.reference.as_ref().map_or(1.0, |r| r.cosine(e));
                if cosine < self.same_face_min {
                    tr.mismatches += 1;
                    consistent = false;
                    tracing::debug!(track = tr.id, cosine, mismatches = tr.mismatches, "Face unlike its track.");
                    if tr.mismatches >= MISMATCHES_TO_SPLIT {
                        // The old track lets go of this position: only its face can bring it back (re-identification).
                        tr.mismatches = 0;
                        tr.bbox = BBox { w: 0.0, h: 0.0, ..tr.bbox };
                        slot = None;
                    }
                }
            }
            if slot.is_none() {
                slot = emb.as_ref().and_then(|e| self.reidentify(e, &[]));
            }
            let t = match slot {
                Some(t) => t,
                None => {
                    self.tracks.push(LiveTrack {
                        id: self.next_id,
                        bbox: det.bbox,
                        last_seen: now,
                        reference: None,
                        sum: Vec::new(),
                        mismatches: 0,
                        best_quality: 0.0,
                        frames_since_embed: 0,
                        embeddings: 0,
                        failures: 0,
                        seen_this_frame: false,
                    });
                    self.next_id += 1;
                    self.tracks.len() - 1
                }
            };
            let consistent = consistent || slot != plan.track;
            let tr = &mut self.tracks[t];
            tr.bbox = det.bbox;
            tr.last_seen = now;
            tr.seen_this_frame = true;
            if plan.embed && emb.is_none() {
                tr.failures += 1;
            }
            match &emb {
                Some(e) => {
                    tr.failures = 0;
                    tr.frames_since_embed = 0;
                    tr.embeddings += 1;
                    tr.best_quality = tr.best_quality.max(plan.quality);
                    if consistent {
                        tr.mismatches = 0;
                        tr.sum.resize(e.dim(), 0.0);
                        tr.sum.iter_mut().zip(e.as_slice()).for_each(|(s, v)| *s += v);
                        tr.reference = Embedding::from_raw(tr.sum.clone()).or_else(|| tr.reference.take());
                    }
                }
                None => tr.frames_since_embed += 1,
            }
            out.push(Observation { track: tr.id, detection: det, quality: plan.quality, embedding: emb, candidates: None });
        }
        let max_absence = self.max_absence;
        // While faces wait for their first embedding (a crowd after a cut, over budget), a track with a face of its
        // own, lost a moment ago, may be one of them: it is held until they are embedded, up to HOLD_WHILE_WAITING ×
        // `max_absence_s`, so that the backlog re-identifies people instead of ending and restarting their tracks.
        let waiting = self.tracks.iter().any(|t| t.seen_this_frame && t.embeddings == 0 && t.failures == 0);
        let hold = if waiting { max_absence * HOLD_WHILE_WAITING } else { max_absence };
        let mut ended = Vec::new();
        self.tracks.retain_mut(|t| {
            let absent = seconds_between(t.last_seen, now);
            if t.seen_this_frame || absent <= max_absence {
                return true;
            }
            if t.reference.is_some() && absent <= hold {
                // Held past the usual limit: back only by its face (re-identification), never by its old place,
                // where someone else may stand by now.
                t.bbox = BBox { w: 0.0, h: 0.0, ..t.bbox };
                return true;
            }
            ended.push(t.id);
            false
        });
        (out, ended)
    }

    /// The unseen-this-frame track whose face best matches `e`, if at least `reid_min`, leaving out the tracks
    /// marked in `except`.
    fn reidentify(&self, e: &Embedding, except: &[bool]) -> Option<usize> {
        self.tracks
            .iter()
            .enumerate()
            .filter(|(i, t)| !t.seen_this_frame && !except.get(*i).copied().unwrap_or(false))
            .filter_map(|(i, t)| t.reference.as_ref().map(|r| (i, r.cosine(e))))
            .filter(|&(_, s)| s >= self.reid_min)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// Ends every live track (input over): their ids.
    pub fn end_all(&mut self) -> Vec<TrackId> {
        self.tracks.drain(..).map(|t| t.id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn det(x: f32, y: f32) -> Detection {
        let (w, h) = (100.0, 120.0);
        Detection {
            bbox: BBox { x, y, w, h },
            landmarks: [[x + 30.0, y + 45.0], [x + 70.0, y + 45.0], [x + 50.0, y + 70.0], [x + 35.0, y + 95.0], [x + 65.0, y + 95.0]],
            score: 0.9,
        }
    }

    fn emb(angle: f32) -> Embedding {
        Embedding::from_raw(vec![angle.cos(), angle.sin(), 0.0]).expect("non-zero")
    }

    fn cfg() -> TrackConfig {
        crate::config::Config::default_embedded().expect("defaults").track
    }

    const LEVELS: FaceThresholds = FaceThresholds { same_face_min: 0.0, reid_min: 0.5 };

    fn step(a: &mut Associator, dets: Vec<Detection>, embs: &[f32], t: SystemTime) -> (Vec<Observation>, Vec<TrackId>) {
        let plans = a.plan(&dets);
        let mut k = 0;
        let embeddings = plans
            .iter()
            .map(|p| {
                p.embed.then(|| {
                    k += 1;
                    emb(embs[k - 1])
                })
            })
            .collect();
        a.commit(dets, &plans, embeddings, t)
    }

    #[test]
    fn a_moving_face_keeps_its_track_and_is_embedded_only_when_useful() {
        let mut a = Associator::new(&cfg(), LEVELS);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let (obs, _) = step(&mut a, vec![det(100.0, 100.0)], &[0.0], t0);
        assert!(obs[0].embedding.is_some(), "a new track is embedded at once");
        let id = obs[0].track;
        let mut embedded = 0;
        for i in 1..=20 {
            let plans = a.plan(&[det(100.0 + i as f32 * 3.0, 100.0)]);
            embedded += usize::from(plans[0].embed);
            let (obs, ended) = step(&mut a, vec![det(100.0 + i as f32 * 3.0, 100.0)], &[0.01; 4], t0 + Duration::from_millis(40 * i));
            assert_eq!(obs[0].track, id);
            assert!(ended.is_empty());
        }
        assert_eq!(embedded, 3, "20 more frames: the 2nd and 3rd settle the identity, then one at embed_every = 10");
    }

    #[test]
    fn another_person_in_the_same_place_gets_a_new_track_and_a_lost_face_rejoins() {
        let mut a = Associator::new(&cfg(), LEVELS);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let (obs, _) = step(&mut a, vec![det(100.0, 100.0)], &[0.0], t0);
        let first = obs[0].track;
        // A different face (cosine −0.42) at the same place: one odd embedding (a blurred frame) keeps the
        // track, two in a row split it.
        a.tracks[0].frames_since_embed = 100;
        let (obs, _) = step(&mut a, vec![det(102.0, 100.0)], &[2.0], t0 + Duration::from_millis(40));
        assert_eq!(obs[0].track, first, "one odd embedding does not split a track");
        let (obs, _) = step(&mut a, vec![det(103.0, 100.0)], &[2.0], t0 + Duration::from_millis(80));
        assert_ne!(obs[0].track, first, "two in a row: another person, new track");
        // The first face reappears far away (no overlap): it re-joins its old track by embedding.
        let (obs, _) = step(&mut a, vec![det(103.0, 100.0), det(400.0, 300.0)], &[2.0, 0.02], t0 + Duration::from_millis(120));
        assert!(obs.iter().any(|o| o.track == first), "{obs:?}");
    }

    #[test]
    fn after_a_cut_a_face_continues_a_track_only_by_its_embedding() {
        let mut a = Associator::new(&cfg(), LEVELS);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let (obs, _) = step(&mut a, vec![det(100.0, 100.0)], &[0.0], t0);
        let first = obs[0].track;
        a.scene_cut();
        // Another person in the same place: embedded at once, new track.
        let plans = a.plan(&[det(100.0, 100.0)]);
        assert!(plans[0].embed, "a face after a cut is embedded");
        let (obs, _) = step(&mut a, vec![det(100.0, 100.0)], &[2.0], t0 + Duration::from_millis(40));
        assert_ne!(obs[0].track, first, "no name rides a box across a cut");
        // Cut back: the first face anywhere re-joins its track by embedding.
        a.scene_cut();
        let (obs, _) = step(&mut a, vec![det(300.0, 100.0)], &[0.01], t0 + Duration::from_millis(80));
        assert_eq!(obs[0].track, first);
    }

    #[test]
    fn over_budget_new_faces_go_first_and_the_rest_follow_on_the_next_frames() {
        let mut a = Associator::new(&cfg(), LEVELS).with_budget(2);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let ms = |n: u64| t0 + Duration::from_millis(40 * n);
        // One known face, settled.
        let (obs, _) = step(&mut a, vec![det(100.0, 100.0)], &[0.0], t0);
        let known = obs[0].track;
        for i in 1..=3 {
            step(&mut a, vec![det(100.0, 100.0)], &[0.0; 4], ms(i));
        }
        // Five new faces arrive beside it: two embedded per frame, new faces first, each face once, the known one
        // (due for nothing) untouched; the frame never asks for more than the budget.
        let group: Vec<Detection> = (0..5).map(|k| det(300.0 + 150.0 * k as f32, 400.0)).collect();
        let angles = [1.0, 1.3, 1.6, 1.9, 2.2];
        let mut started = std::collections::HashMap::new();
        for frame in 4..=7 {
            let mut dets = vec![det(100.0, 100.0)];
            dets.extend(group.iter().cloned());
            let plans = a.plan(&dets);
            assert!(plans.iter().filter(|p| p.embed).count() <= 2, "frame {frame}: {plans:?}");
            assert!(!plans[0].embed || frame > 6, "the known face waits while new faces are pending");
            let embeddings: Vec<Option<Embedding>> =
                plans.iter().enumerate().map(|(i, p)| p.embed.then(|| emb(if i == 0 { 0.0 } else { angles[i - 1] }))).collect();
            let (obs, _) = a.commit(dets, &plans, embeddings, ms(frame));
            assert_eq!(obs[0].track, known);
            for o in &obs[1..] {
                if o.embedding.is_some() {
                    started.entry(o.track).or_insert(frame);
                }
            }
        }
        assert_eq!(started.len(), 5, "every new face embedded within three frames: {started:?}");
        assert_eq!(started.values().filter(|&&f| f == 4).count(), 2, "the first two at once");
    }

    #[test]
    fn a_face_waiting_for_its_first_embedding_rejoins_its_lost_track_when_embedded() {
        let mut a = Associator::new(&cfg(), LEVELS).with_budget(1);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let (obs, _) = step(&mut a, vec![det(100.0, 100.0)], &[0.0], t0);
        let first = obs[0].track;
        // Lost for a moment; it comes back elsewhere together with a stranger who takes the one embedding.
        let (_, ended) = step(&mut a, vec![], &[], t0 + Duration::from_millis(200));
        assert!(ended.is_empty());
        let stranger = det(600.0, 100.0);
        let back = det(300.0, 300.0);
        // Each face's own embedding, whenever the budget lets it be embedded.
        let angle = [2.5, 0.01];
        let embed = |plans: &[Plan]| -> Vec<Option<Embedding>> { plans.iter().zip(angle).map(|(p, a)| p.embed.then(|| emb(a))).collect() };
        let plans = a.plan(&[stranger.clone(), back.clone()]);
        assert_eq!(plans.iter().map(|p| p.embed).collect::<Vec<_>>(), [true, false], "one embedding: the first new face");
        let (obs, _) = a.commit(vec![stranger.clone(), back.clone()], &plans, embed(&plans), t0 + Duration::from_millis(240));
        let placeholder = obs[1].track;
        assert_ne!(placeholder, first, "without its embedding the returning face is held by position only");
        // Next frame it is embedded first (it waited longest), rejoins its own track, and the placeholder ends
        // (it was never announced: no event had its id).
        let plans = a.plan(&[stranger.clone(), back.clone()]);
        assert_eq!(plans.iter().map(|p| p.embed).collect::<Vec<_>>(), [false, true]);
        let (obs, ended) = a.commit(vec![stranger, back], &plans, embed(&plans), t0 + Duration::from_millis(280));
        assert_eq!(obs[1].track, first, "the returning face continues its old track");
        assert_eq!(ended, vec![placeholder]);
    }

    #[test]
    fn after_a_cut_a_backlog_longer_than_the_absence_limit_still_re_identifies_everyone() {
        // A slow camera (0.6 s a frame, max_absence_s = 1) and one embedding a frame: the third face of a group
        // seen again after a cut is embedded 1.8 s after its track was last seen.
        let mut a = Associator::new(&cfg(), LEVELS);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let at = |n: u64| t0 + Duration::from_millis(600 * n);
        let angles = [0.0, 1.5, 3.0];
        let group = |x: f32| (0..3).map(|k| det(x + 150.0 * k as f32, 100.0)).collect::<Vec<_>>();
        let (obs, _) = step(&mut a, group(100.0), &angles, at(0));
        let ids: Vec<TrackId> = obs.iter().map(|o| o.track).collect();
        a.budget = 1;
        a.scene_cut();
        let mut rejoined = std::collections::HashMap::new();
        for n in 1..=4 {
            let dets = group(600.0);
            let plans = a.plan(&dets);
            let embeddings = plans.iter().zip(angles).map(|(p, angle)| p.embed.then(|| emb(angle + 0.01))).collect();
            let (obs, ended) = a.commit(dets, &plans, embeddings, at(n));
            assert!(ended.iter().all(|t| !ids.contains(t)), "frame {n}: a known track ended while its face waited: {ended:?}");
            for (k, o) in obs.iter().enumerate() {
                if o.embedding.is_some() {
                    rejoined.insert(k, o.track);
                }
            }
        }
        assert_eq!((0..3).map(|k| rejoined.get(&k).copied()).collect::<Vec<_>>(), ids.iter().map(|&t| Some(t)).collect::<Vec<_>>());
        // With nobody waiting, a lost track ends at the usual limit.
        let (_, ended) = step(&mut a, vec![], &[], at(6));
        assert_eq!(ended.len(), 3, "{ended:?}");
    }

    #[test]
    fn a_track_held_past_the_absence_limit_comes_back_by_its_face_only_never_by_its_place() {
        let mut a = Associator::new(&cfg(), LEVELS).with_budget(1);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        step(&mut a, vec![det(100.0, 100.0)], &[0.0], t0);
        // 1.5 s later (past max_absence_s = 1) two new faces elsewhere, one of them waiting: the old track is held.
        let (_, ended) = step(&mut a, vec![det(600.0, 100.0), det(900.0, 100.0)], &[2.0], ms(1500));
        assert!(ended.is_empty(), "held while a face waits: {ended:?}");
        // Someone stands where the held track was last seen: not that track by position.
        let plans = a.plan(&[det(100.0, 100.0), det(600.0, 100.0), det(900.0, 100.0)]);
        assert!(plans[0].track.is_none(), "a held track is not continued by its old place: {plans:?}");
    }

    #[test]
    fn a_placeholder_never_takes_a_track_that_another_face_continues_by_position() {
        let mut a = Associator::new(&cfg(), LEVELS).with_budget(1);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let ms = |n: u64| t0 + Duration::from_millis(40 * n);
        let (x, y, t) = (det(350.0, 100.0), det(600.0, 100.0), det(100.0, 100.0));
        let (obs, _) = step(&mut a, vec![t.clone()], &[0.0], t0);
        let first = obs[0].track;
        // Two new faces beside it: x takes the one embedding, y waits as a placeholder.
        let frame = vec![x.clone(), y.clone(), t.clone()];
        let plans = a.plan(&frame);
        assert_eq!(plans.iter().map(|p| p.embed).collect::<Vec<_>>(), [true, false, false]);
        let embeddings = plans.iter().map(|p| p.embed.then(|| emb(1.5))).collect();
        let (obs, _) = a.commit(frame.clone(), &plans, embeddings, ms(1));
        assert_eq!(obs.iter().filter(|o| o.track == first).count(), 1);
        // Next frame y is embedded and looks like `first` (a poster of the same person, say), while `first`'s own
        // face, later in the frame, continues it by position: y must not take it.
        let plans = a.plan(&frame);
        assert_eq!(plans.iter().map(|p| p.embed).collect::<Vec<_>>(), [false, true, false], "the placeholder first");
        let embeddings = plans.iter().map(|p| p.embed.then(|| emb(0.0))).collect();
        let (obs, _) = a.commit(frame, &plans, embeddings, ms(2));
        let with_first: Vec<&Observation> = obs.iter().filter(|o| o.track == first).collect();
        assert_eq!(with_first.len(), 1, "one observation per track and frame: {obs:?}");
        assert_eq!(with_first[0].detection.bbox.x, 100.0, "and it is first's own face");
    }

    #[test]
    fn a_face_whose_embedding_failed_goes_behind_new_faces() {
        let mut a = Associator::new(&cfg(), LEVELS).with_budget(1);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        // One face whose embedding fails (no embedding returned though planned).
        let one = vec![det(100.0, 100.0)];
        let plans = a.plan(&one);
        let (obs, _) = a.commit(one, &plans, vec![None], t0);
        let failing = obs[0].track;
        // A new face arrives: it is embedded first, though the failing one has waited longer.
        let two = vec![det(100.0, 100.0), det(600.0, 100.0)];
        let plans = a.plan(&two);
        assert_eq!(plans.iter().map(|p| p.embed).collect::<Vec<_>>(), [false, true], "{failing}");
    }

    #[test]
    fn tracks_end_after_the_absence_limit() {
        let mut a = Associator::new(&cfg(), LEVELS);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let (obs, _) = step(&mut a, vec![det(100.0, 100.0)], &[0.0], t0);
        let (_, ended) = step(&mut a, vec![], &[], t0 + Duration::from_millis(900));
        assert!(ended.is_empty());
        let (_, ended) = step(&mut a, vec![], &[], t0 + Duration::from_millis(1100));
        assert_eq!(ended, vec![obs[0].track]);
        assert!(a.is_empty());
    }

    #[test]
    fn quality_prefers_large_frontal_faces() {
        let frontal = det(0.0, 0.0);
        let mut turned = frontal.clone();
        turned.landmarks[2][0] += 18.0;
        let mut small = frontal.map_coords(|v| v * 0.3);
        small.score = frontal.score;
        assert!(face_quality(&frontal) > face_quality(&turned));
        assert!(face_quality(&frontal) > face_quality(&small));
        assert!((0.0..=1.0).contains(&face_quality(&frontal)));
    }
}
