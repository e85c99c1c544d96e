//! Identity per track: votes over the track's recent matches with hysteresis, turned into events.
//!
//! Each embedded face casts one vote: the best candidate's name when its score reaches the threshold, else
//! `unknown`. A vote weighs as much as its face's quality (detector score × size × frontality), so a profile, a
//! small or a blurred face counts less than a large frontal one. A track's first vote names it at once
//! (`track_started`, no waiting); after that another name must lead the current one by `switch_votes` (in
//! votes of average weight) within the last `vote_window` votes before `identity_changed` fires, so a single
//! doubtful frame cannot make the name flicker.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime};

use super::config::TrackConfig;
use super::{Observation, TrackId};
pub use crate::base::face::TrackLabel;
use crate::base::{BBox, Candidate, Event, EventBody, EventKind, TrackFace, UNKNOWN};

/// One vote: a name (`None` = unknown) and the score behind it.
#[derive(Debug, Clone)]
struct Vote {
    name: Option<String>,
    score: f32,
    /// The face's embedding, to cast the vote again when the gallery changes (a stranger named, a face moved).
    embedding: Option<crate::base::Embedding>,
    /// How much this vote counts: its face's quality, or 0 (see [`UNKNOWN_AGAINST_KNOWN`]).
    weight: f32,
    /// Its face's quality.
    quality: f32,
}

/// The least a vote weighs, so that a track of poor faces still decides.
const MIN_WEIGHT: f32 = 0.05;

/// A face that matches nobody speaks against a track's known name only if its quality reaches this share of the
/// best face that voted for the name: a profile or a blurred frame of a named person is "no evidence", not
/// "someone else" (another person is a new track: `track.same_face_min`, shot cuts). A wrong name given by a good
/// face is still undone by good faces.
const UNKNOWN_AGAINST_KNOWN: f32 = 0.8;

#[derive(Debug)]
struct TrackIdentity {
    started: bool,
    name: Option<String>,
    /// Quality of the best face that voted for `name` since it was given.
    name_quality: f32,
    votes: VecDeque<Vote>,
    first_seen: SystemTime,
    last_seen: SystemTime,
    last_seq: u64,
    frames: u64,
    bbox: BBox,
    quality: f32,
    candidates: Vec<Candidate>,
    last_update: Option<SystemTime>,
    /// The stranger an unnamed track was recognised as.
    stranger: Option<String>,
}

/// The frame an update is about.
#[derive(Debug, Clone, Copy)]
pub struct FrameInfo {
    /// Sequence number.
    pub seq: u64,
    /// Capture time.
    pub captured_at: SystemTime,
    /// Decoded ÷ original size (boxes are published in original pixels).
    pub scale: f32,
}

/// Identity voting for every live track of one camera.
#[derive(Debug)]
pub struct Identities {
    camera: String,
    threshold: f32,
    window: usize,
    switch_votes: usize,
    update_interval: Option<Duration>,
    tracks: HashMap<TrackId, TrackIdentity>,
}

impl Identities {
    /// Voting for `camera` with the matcher's `threshold`; `update_interval` paces `track_updated` (None: off).
    pub fn new(camera: &str, threshold: f32, cfg: &TrackConfig, update_interval: Option<Duration>) -> Self {
        Self {
            camera: camera.to_string(),
            threshold,
            window: cfg.vote_window.get(),
            switch_votes: cfg.switch_votes,
            update_interval,
            tracks: HashMap::new(),
        }
    }

    /// Applies one frame's observations and ended tracks; returns the events they cause.
    pub fn update(&mut self, frame: FrameInfo, observations: &[Observation], ended: &[TrackId]) -> Vec<Event> {
        let mut events = Vec::new();
        for obs in observations {
            let t = self.tracks.entry(obs.track).or_insert_with(|| TrackIdentity {
                started: false,
                name: None,
                name_quality: 0.0,
                votes: VecDeque::new(),
                first_seen: frame.captured_at,
                last_seen: frame.captured_at,
                last_seq: frame.seq,
                frames: 0,
                bbox: obs.detection.bbox,
                quality: obs.quality,
                candidates: Vec::new(),
                last_update: None,
                stranger: None,
            });
            t.frames += 1;
            t.last_seen = frame.captured_at;
            t.last_seq = frame.seq;
            t.bbox = obs.detection.bbox;
            t.quality = obs.quality;
            let mut kind = None;
            let mut previous = None;
            if let Some(cands) = &obs.candidates {
                let against_known = t.name.is_some() && cands.first().is_none_or(|c| c.score < self.threshold);
                let weight =
                    if against_known && obs.quality < UNKNOWN_AGAINST_KNOWN * t.name_quality { 0.0 } else { obs.quality.max(MIN_WEIGHT) };
                let vote = match cands.first() {
                    Some(best) if best.score >= self.threshold => Vote {
                        name: Some(best.name.clone()),
                        score: best.score,
                        embedding: obs.embedding.clone(),
                        weight,
                        quality: obs.quality,
                    },
                    best => Vote {
                        name: None,
                        score: best.map_or(0.0, |c| c.score),
                        embedding: obs.embedding.clone(),
                        weight,
                        quality: obs.quality,
                    },
                };
                t.candidates = cands.clone();
                t.votes.push_back(vote.clone());
                while t.votes.len() > self.window {
                    t.votes.pop_front();
                }
                if !t.started {
                    t.started = true;
                    t.name = vote.name;
                    t.name_quality = obs.quality;
                    kind = Some(EventKind::TrackStarted);
                } else if let Some(leader) = leader_to_switch_to(&t.votes, &t.name, self.switch_votes) {
                    previous = std::mem::replace(&mut t.name, leader);
                    t.name_quality = t.votes.iter().filter(|v| v.name == t.name).map(|v| v.quality).fold(0.0, f32::max);
                    kind = Some(EventKind::IdentityChanged);
                } else if vote.name.is_some() && vote.name == t.name {
                    t.name_quality = t.name_quality.max(obs.quality);
                }
            }
            if let (None, true, Some(every)) = (kind, t.started, self.update_interval) {
                let due = t.last_update.is_none_or(|last| frame.captured_at.duration_since(last).is_ok_and(|d| d >= every));
                if due {
                    kind = Some(EventKind::TrackUpdated);
                }
            }
            if let Some(kind) = kind {
                t.last_update = Some(frame.captured_at);
                let face = self.face(&self.tracks[&obs.track], obs.track, frame);
                let body = match kind {
                    EventKind::TrackStarted => EventBody::TrackStarted(face),
                    EventKind::IdentityChanged => {
                        EventBody::IdentityChanged { face, previous: previous.unwrap_or_else(|| UNKNOWN.to_string()) }
                    }
                    _ => EventBody::TrackUpdated(face),
                };
                events.push(Event::about_frame(&self.camera, body, frame.seq, frame.captured_at));
            }
        }
        for id in ended {
            events.extend(self.end(*id, frame, "absent"));
        }
        events
    }

    /// Whether track `id` is live and has no name (its faces may be a stranger's).
    pub fn is_unnamed(&self, id: TrackId) -> bool {
        self.tracks.get(&id).is_some_and(|t| t.started && t.name.is_none())
    }

    /// The stranger track `id` was recognised as, if any.
    pub fn stranger(&self, id: TrackId) -> Option<&str> {
        self.tracks.get(&id).and_then(|t| t.stranger.as_deref())
    }

    /// Track `id` (unnamed) is stranger `label` (or no known stranger, `None`): `identity_changed` when that changes
    /// what the track is (`previous` is the stranger it was, or `unknown`). An event of this frame about the track
    /// (in `events`) takes the label instead of a second event.
    pub fn set_stranger(&mut self, id: TrackId, label: Option<String>, frame: FrameInfo, events: &mut Vec<Event>) {
        let Some(t) = self.tracks.get_mut(&id) else { return };
        if t.name.is_some() || t.stranger == label {
            return;
        }
        let previous = std::mem::replace(&mut t.stranger, label.clone()).unwrap_or_else(|| UNKNOWN.to_string());
        let pending = events.iter_mut().filter_map(|e| match &mut e.body {
            EventBody::TrackStarted(f) | EventBody::IdentityChanged { face: f, .. } | EventBody::TrackUpdated(f) if f.track_id == id => {
                Some(f)
            }
            _ => None,
        });
        let mut patched = false;
        for face in pending {
            face.stranger = label.clone();
            patched = true;
        }
        if !patched {
            let face = self.face(&self.tracks[&id], id, frame);
            let body = EventBody::IdentityChanged { face, previous };
            events.push(Event::about_frame(&self.camera, body, frame.seq, frame.captured_at));
        }
    }

    /// Casts every live track's votes again with `search` (the gallery changed: a stranger was named, a face moved,
    /// someone enrolled or removed): a track whose votes now lead to another name changes its identity at once.
    pub fn recast(&mut self, frame: FrameInfo, search: impl Fn(&crate::base::Embedding) -> Vec<Candidate>) -> Vec<Event> {
        let mut events = Vec::new();
        let ids: Vec<TrackId> = self.tracks.keys().copied().collect();
        for id in ids {
            let threshold = self.threshold;
            let Some(t) = self.tracks.get_mut(&id) else { continue };
            for v in t.votes.iter_mut() {
                let Some(e) = &v.embedding else { continue };
                let best = search(e).into_iter().next();
                (v.name, v.score) = match best {
                    Some(b) if b.score >= threshold => (Some(b.name), b.score),
                    b => (None, b.map_or(0.0, |c| c.score)),
                };
            }
            let current_gone = t.name.as_ref().is_some_and(|n| !t.votes.iter().any(|v| v.name.as_ref() == Some(n)));
            let leader = leader_to_switch_to(&t.votes, &t.name, 1).or_else(|| current_gone.then_some(None));
            if let (true, Some(leader)) = (t.started, leader) {
                let previous = std::mem::replace(&mut t.name, leader);
                t.name_quality = t.votes.iter().filter(|v| v.name == t.name).map(|v| v.quality).fold(0.0, f32::max);
                if t.name.is_some() {
                    t.stranger = None;
                }
                let face = self.face(&self.tracks[&id], id, frame);
                let body = EventBody::IdentityChanged { face, previous: previous.unwrap_or_else(|| UNKNOWN.to_string()) };
                events.push(Event::about_frame(&self.camera, body, frame.seq, frame.captured_at));
            }
        }
        events
    }

    /// Ends every live track (input over or shutdown).
    pub fn end_all(&mut self, frame: FrameInfo) -> Vec<Event> {
        let ids: Vec<TrackId> = self.tracks.keys().copied().collect();
        ids.into_iter().filter_map(|id| self.end(id, frame, "input_ended")).collect()
    }

    /// What the preview draws: every live track seen in the latest frame.
    pub fn labels(&self, frame: FrameInfo) -> Vec<TrackLabel> {
        self.tracks
            .iter()
            .filter(|(_, t)| t.last_seen == frame.captured_at)
            .map(|(&id, t)| {
                let (score, _) = name_score(t);
                TrackLabel {
                    track: id,
                    bbox: t.bbox,
                    // An unnamed track shows the stranger it was recognised as.
                    name: t.started.then(|| t.name.clone().or_else(|| t.stranger.clone()).unwrap_or_else(|| UNKNOWN.to_string())),
                    known: t.name.is_some(),
                    score,
                }
            })
            .collect()
    }

    fn end(&mut self, id: TrackId, frame: FrameInfo, reason: &str) -> Option<Event> {
        let t = self.tracks.remove(&id)?;
        if !t.started {
            return None;
        }
        let face = self.face(&t, id, frame);
        let duration_s = t.last_seen.duration_since(t.first_seen).map_or(0.0, |d| d.as_secs_f64());
        let body = EventBody::TrackEnded { face, duration_s, frames: t.frames, reason: reason.to_string() };
        // Ended tracks report their last sighting, not the frame that noticed the absence.
        Some(Event::about_frame(&self.camera, body, t.last_seq, t.last_seen))
    }

    /// What the track events say about track `id`, boxes in source pixels.
    fn face(&self, t: &TrackIdentity, id: TrackId, frame: FrameInfo) -> TrackFace {
        let (score, votes_for) = name_score(t);
        let s = frame.scale.max(f32::EPSILON);
        TrackFace {
            track_id: id,
            name: t.name.clone().unwrap_or_else(|| UNKNOWN.to_string()),
            known: t.name.is_some(),
            score,
            threshold: self.threshold,
            bbox: [t.bbox.x / s, t.bbox.y / s, t.bbox.w / s, t.bbox.h / s],
            quality: t.quality,
            candidates: Vec::new(),
            margin: None,
            votes: [votes_for, t.votes.len()],
            snapshot: None,
            stranger: if t.name.is_none() { t.stranger.clone() } else { None },
        }
        .with_candidates(t.candidates.clone())
    }
}

/// The mean score of the votes for the current name, and how many there are.
fn name_score(t: &TrackIdentity) -> (f32, usize) {
    let same: Vec<f32> = t.votes.iter().filter(|v| v.name == t.name).map(|v| v.score).collect();
    if same.is_empty() {
        (0.0, 0)
    } else {
        (same.iter().sum::<f32>() / same.len() as f32, same.len())
    }
}

/// The name whose votes now outweigh `current`'s by at least `margin` votes of average weight, if any
/// (hysteresis). With equal weights this is a lead of `margin` votes.
fn leader_to_switch_to(votes: &VecDeque<Vote>, current: &Option<String>, margin: usize) -> Option<Option<String>> {
    let mut sums: Vec<(&Option<String>, f32)> = Vec::new();
    for v in votes {
        match sums.iter_mut().find(|(n, _)| *n == &v.name) {
            Some((_, w)) => *w += v.weight,
            None => sums.push((&v.name, v.weight)),
        }
    }
    let mean = votes.iter().map(|v| v.weight).sum::<f32>() / votes.len().max(1) as f32;
    let current_sum = sums.iter().find(|(n, _)| *n == current).map_or(0.0, |c| c.1);
    let (leader, sum) = sums.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    // The small slack keeps exact multiples of the mean (equal weights) on the right side of the comparison.
    // Votes that weigh nothing (faces that say nothing against the name) never switch it.
    let leads = sum > current_sum && sum - current_sum >= margin.max(1) as f32 * mean * (1.0 - 1e-4);
    (leader != current && leads).then(|| leader.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Detection;

    fn obs(track: TrackId, best: Option<(&str, f32)>) -> Observation {
        weighed(track, best, 0.5)
    }

    fn weighed(track: TrackId, best: Option<(&str, f32)>, quality: f32) -> Observation {
        Observation {
            track,
            detection: Detection { bbox: BBox { x: 10.0, y: 10.0, w: 50.0, h: 60.0 }, landmarks: [[0.0; 2]; 5], score: 0.9 },
            quality,
            embedding: None,
            candidates: best.map(|(n, s)| vec![Candidate { name: n.into(), score: s }, Candidate { name: "other".into(), score: 0.1 }]),
        }
    }

    fn frame(seq: u64) -> FrameInfo {
        FrameInfo { seq, captured_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1000 + seq * 40), scale: 1.0 }
    }

    fn kinds(e: &[Event]) -> Vec<EventKind> {
        e.iter().map(Event::kind).collect()
    }

    #[test]
    fn first_vote_names_the_track_and_one_odd_frame_does_not_flip_it() {
        let mut cfg = crate::config::Config::default_embedded().expect("defaults").track;
        cfg.switch_votes = 2;
        let mut ids = Identities::new("cam", 0.4, &cfg, None);
        let e = ids.update(frame(0), &[obs(1, Some(("ann", 0.8)))], &[]);
        assert_eq!(kinds(&e), vec![EventKind::TrackStarted]);
        assert_eq!(e[0].name(), Some("ann"));
        assert_eq!(e[0].margin().map(|m| (m * 10.0).round()), Some(7.0));
        // One frame below the threshold, then frames without an embedding: no change.
        assert!(ids.update(frame(1), &[obs(1, Some(("ann", 0.3)))], &[]).is_empty());
        assert!(ids.update(frame(2), &[obs(1, None)], &[]).is_empty());
        // Unknown keeps winning: after it leads by 2 votes the identity changes, once.
        let mut changes = Vec::new();
        for s in 3..8 {
            changes.extend(ids.update(frame(s), &[obs(1, Some(("ann", 0.2)))], &[]));
        }
        assert_eq!(kinds(&changes), vec![EventKind::IdentityChanged]);
        assert_eq!(changes[0].name(), Some(UNKNOWN));
        assert_eq!(changes[0].previous(), Some("ann"));
        assert_eq!(changes[0].body.track().map(|f| f.known), Some(false));
        let e = ids.update(frame(9), &[], &[1]);
        assert_eq!(kinds(&e), vec![EventKind::TrackEnded]);
        assert_eq!(e[0].frames(), Some(8));
        assert_eq!(e[0].frame_seq, Some(7), "the last sighting, not the frame that noticed the absence");
    }

    #[test]
    fn poor_faces_count_less_than_good_ones() {
        let cfg = crate::config::Config::default_embedded().expect("defaults").track;
        let mut ids = Identities::new("cam", 0.4, &cfg, None);
        ids.update(frame(0), &[weighed(1, Some(("ann", 0.8)), 0.9)], &[]);
        ids.update(frame(1), &[weighed(1, Some(("ann", 0.7)), 0.8)], &[]);
        // Three profile or blurred faces that look like someone else do not outweigh two good ones.
        let mut events = Vec::new();
        for s in 2..5 {
            events.extend(ids.update(frame(s), &[weighed(1, Some(("bob", 0.45)), 0.1)], &[]));
        }
        assert!(events.is_empty(), "{events:?}");
        // With equal weights, three votes against two would have switched.
        let mut ids = Identities::new("cam", 0.4, &cfg, None);
        ids.update(frame(0), &[weighed(1, Some(("ann", 0.8)), 0.5)], &[]);
        ids.update(frame(1), &[weighed(1, Some(("ann", 0.7)), 0.5)], &[]);
        let mut events = Vec::new();
        for s in 2..5 {
            events.extend(ids.update(frame(s), &[weighed(1, Some(("bob", 0.45)), 0.5)], &[]));
        }
        assert_eq!(kinds(&events), vec![EventKind::IdentityChanged]);
    }

    #[test]
    fn a_named_face_turning_away_keeps_its_name_until_a_good_face_says_otherwise() {
        let cfg = crate::config::Config::default_embedded().expect("defaults").track;
        let mut ids = Identities::new("cam", 0.4, &cfg, None);
        ids.update(frame(0), &[weighed(1, Some(("ann", 0.8)), 0.6)], &[]);
        // Profile frames match nobody: no evidence against the name.
        let mut events = Vec::new();
        for s in 1..12 {
            events.extend(ids.update(frame(s), &[weighed(1, Some(("ann", 0.2)), 0.15)], &[]));
        }
        assert!(events.is_empty(), "{events:?}");
        // Good frames that match nobody do undo it.
        for s in 12..20 {
            events.extend(ids.update(frame(s), &[weighed(1, Some(("ann", 0.2)), 0.6)], &[]));
        }
        assert_eq!(kinds(&events), vec![EventKind::IdentityChanged]);
        assert_eq!(events[0].name(), Some(UNKNOWN));
    }

    #[test]
    fn updates_are_paced_and_unstarted_tracks_end_silently() {
        let cfg = crate::config::Config::default_embedded().expect("defaults").track;
        let mut ids = Identities::new("cam", 0.4, &cfg, Some(Duration::from_millis(100)));
        ids.update(frame(0), &[obs(1, Some(("ann", 0.8)))], &[]);
        let mut updates = 0;
        for s in 1..=10 {
            updates += ids.update(frame(s), &[obs(1, None)], &[]).len();
        }
        // Frames every 40 ms, updates at least 100 ms apart: every third frame.
        assert_eq!(updates, 3);
        ids.update(frame(11), &[obs(2, None)], &[]);
        assert_eq!(kinds(&ids.end_all(frame(12))), vec![EventKind::TrackEnded]);
    }
}
