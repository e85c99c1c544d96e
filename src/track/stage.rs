//! The track stage: everything that needs a face's history, on one thread.
//!
//! Per frame, in order: shot-cut check ([`SceneCut`]) → association of the faces to live tracks and the
//! embedding policy ([`Associator::plan`]) → align + embed the faces the policy asks for ([`FaceEmbedder`]) →
//! commit to the tracks (re-identification, splits, ended tracks) → gallery candidates of the new embeddings
//! ([`LiveGallery`], searched through [`crate::matcher`]) → identity votes and events ([`Identities`]). The steps are timed separately (`embed`, `matcher`,
//! `track` in the statistics).
//!
//! Why one thread: which faces are embedded depends on the tracks as the previous frame left them, and the tracks
//! depend on the embeddings; splitting them over threads meant sending each frame's track state back and forth.
//! Detection, the other heavy model, runs in parallel on its own thread.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use crossbeam_channel::Receiver;
use tracing::warn;

use super::config::TrackConfig;
use super::identity::FrameInfo;
use super::{Associator, FaceThresholds, Identities, SceneCut};
use crate::base::event::{EventBody, SnapshotRef, SNAPSHOT_ROUTE};
use crate::base::face::PreviewFrame;
use crate::base::{Embedding, Event, SaidFace, SaidFrame};
use crate::detect::Detections;
use crate::embed::FaceEmbedder;
use crate::gallery::LiveGallery;
use crate::sinks::snapshots::{SnapshotJob, Taker};
use crate::stage::{Context, Output, Sent, Stage};

/// The track stage: tracks, their embeddings, identities and events.
pub struct TrackStage {
    embedder: FaceEmbedder,
    gallery: LiveGallery,
    assoc: Associator,
    cut: SceneCut,
    ids: Identities,
}

/// The track stage's other edges, beside detections in and events out; the topology makes them
/// ([`crate::pipeline::topology`]).
pub struct TrackPorts {
    /// Capture's status events (`source_lost`, …), handed on with the stage's own in the order they come.
    pub status: Receiver<Event>,
    /// Each frame with its labels, for the window (never waited on).
    pub preview: Option<Output<PreviewFrame>>,
    /// How to take a snapshot of each identity decision, and where it goes (never waited on).
    pub snapshots: Option<(Taker, Output<SnapshotJob>)>,
    /// What was said on every frame (`evaluate --video`; an edge that loses nothing).
    pub said: Option<Output<SaidFrame>>,
}

impl TrackPorts {
    /// Only the status input: no window, no snapshots, no record of what was said.
    pub fn status(status: Receiver<Event>) -> Self {
        Self { status, preview: None, snapshots: None, said: None }
    }
}

/// What the plan decided for one camera's track stage ([`crate::pipeline::plan`]).
#[derive(Debug, Clone, Copy)]
pub struct TrackPlan {
    /// The recognizer's face levels, after `[track]`'s overrides.
    pub levels: FaceThresholds,
    /// The cosine threshold the camera names people at.
    pub threshold: f32,
    /// A `track_updated` event per track at most this often (`None`: none).
    pub update_interval: Option<std::time::Duration>,
    /// Faces embedded per frame at most (one embedding round per frame by default: a group of new faces is spread
    /// over frames, not one frame held).
    pub embed_budget: usize,
}

impl TrackStage {
    /// From `[track]` for `camera`: the recognizer, the gallery search and what the plan decided.
    pub fn build(cfg: &TrackConfig, camera: &str, embedder: FaceEmbedder, gallery: LiveGallery, plan: TrackPlan) -> Self {
        Self {
            embedder,
            gallery,
            assoc: Associator::new(cfg, plan.levels).with_budget(plan.embed_budget.max(1)),
            cut: SceneCut::new(cfg.scene_cut.get()),
            ids: Identities::new(camera, plan.threshold, cfg, plan.update_interval),
        }
    }

    /// Embeds the faces the plan asks for (side by side when the embedder has helper sessions); a face that
    /// fails keeps its track's identity (logged, counted).
    fn embed(&mut self, d: &Detections, plans: &[super::Plan], cx: &Context) -> Vec<Option<Embedding>> {
        let stats = &cx.stats;
        let wanted: Vec<usize> = plans.iter().enumerate().filter(|(_, p)| p.embed).map(|(i, _)| i).collect();
        let dets: Vec<&crate::base::Detection> = wanted.iter().map(|&i| &d.faces[i]).collect();
        let mut out: Vec<Option<Embedding>> = (0..d.faces.len()).map(|_| None).collect();
        for (i, (result, took)) in wanted.into_iter().zip(self.embedder.embed_all(&d.frame.bgr, &dets)) {
            match result {
                Ok(e) => {
                    stats.embed_face.record(took);
                    stats.embedded.fetch_add(1, Ordering::Relaxed);
                    out[i] = Some(e);
                }
                Err(e) => {
                    if stats.embed.error() {
                        warn!(seq = d.frame.seq, error = %e, "Embedding a face failed; it keeps its track's identity.");
                    }
                }
            }
        }
        out
    }
}

/// Takes the snapshot of a decision event and puts its reference in the event; false when the writer's queue was
/// full (the event then has none).
fn snapshot(taker: &Taker, out: &Output<SnapshotJob>, frame: &crate::base::Frame, event: &mut Event) -> bool {
    let face = match &mut event.body {
        EventBody::TrackStarted(face) | EventBody::IdentityChanged { face, .. } => face,
        _ => return true,
    };
    let [x, y, w, h] = face.bbox;
    let bbox = crate::base::face::BBox { x, y, w, h };
    let Some(job) = taker.job(frame, bbox, face.track_id, &face.name, frame.captured_at) else { return true };
    let rel = job.rel().to_path_buf();
    if out.send(job) != Sent::Queued {
        return false;
    }
    let url = format!("{SNAPSHOT_ROUTE}/{}", rel.display());
    face.snapshot = Some(SnapshotRef { path: taker.dir().join(&rel).display().to_string(), url });
    true
}

impl Stage for TrackStage {
    const NAME: &'static str = "track";
    type In = Detections;
    type Out = Event;
    type Ports = TrackPorts;

    /// Tracks every frame until detect finishes, handing capture's status events on as they come, then ends the
    /// live tracks (their `track_ended` events go out last) and returns, which closes its outputs.
    fn run(mut self, input: Receiver<Detections>, output: Output<Event>, ports: TrackPorts, cx: &Context) {
        let TrackPorts { status, mut preview, snapshots, mut said } = ports;
        let stats = &cx.stats;
        let hand_over = |e: Event| {
            if output.send(e) == Sent::Dropped {
                stats.publish.dropped.fetch_add(1, Ordering::Relaxed);
            }
        };
        let mut status = Some(status);
        let mut snapshots_dropped = 0u64;
        let mut last = FrameInfo { seq: 0, captured_at: SystemTime::now(), scale: 1.0 };
        loop {
            let never = crossbeam_channel::never();
            let d = crossbeam_channel::select! {
                recv(input) -> d => match d {
                    Ok(d) => d,
                    Err(_) => break,
                },
                recv(status.as_ref().unwrap_or(&never)) -> e => {
                    match e {
                        Ok(e) => hand_over(e),
                        // Capture has finished: nothing more will come that way.
                        Err(_) => status = None,
                    }
                    continue;
                }
            };
            let started = Instant::now();
            if self.cut.is_cut(&d.frame.bgr) {
                tracing::debug!(seq = d.frame.seq, tracks = self.assoc.len(), "Shot cut: tracks let go of their positions.");
                stats.cuts.fetch_add(1, Ordering::Relaxed);
                self.assoc.scene_cut();
            }
            let plans = self.assoc.plan(&d.faces);
            let embeddings = self.embed(&d, &plans, cx);
            let Detections { frame, faces } = d;
            let (mut faces, ended) = self.assoc.commit(faces, &plans, embeddings, frame.captured_at);
            stats.embed.record(started.elapsed());

            let searched = Instant::now();
            self.gallery.refresh();
            for face in &mut faces {
                if let Some(e) = &face.embedding {
                    face.candidates = Some(self.gallery.search(e));
                }
            }
            stats.matcher.record(searched.elapsed());

            let voted = Instant::now();
            let info = FrameInfo { seq: frame.seq, captured_at: frame.captured_at, scale: frame.scale };
            for mut e in self.ids.update(info, &faces, &ended) {
                if let Some((taker, out)) = &snapshots {
                    snapshots_dropped += u64::from(!snapshot(taker, out, &frame, &mut e));
                }
                hand_over(e);
            }
            stats.track.record(voted.elapsed());
            stats.latency.record(SystemTime::now().duration_since(frame.captured_at).unwrap_or_default());
            // What was said on the frame, once, for whoever watches (evaluation, the window).
            let labels = if said.is_some() || preview.is_some() { self.ids.labels(info) } else { Vec::new() };
            if let Some(out) = &said {
                let faces = labels
                    .iter()
                    .map(|l| SaidFace {
                        track: l.track,
                        bbox: [l.bbox.x, l.bbox.y, l.bbox.w, l.bbox.h],
                        name: l.name.clone(),
                        known: l.known,
                    })
                    .collect();
                if out.send(SaidFrame { seq: frame.seq, faces }) == Sent::Closed {
                    said = None;
                }
            }
            if let Some(out) = &preview {
                if out.send(PreviewFrame { labels, frame }) == Sent::Closed {
                    preview = None;
                }
            }
            last = info;
        }
        *stats.frames_done.lock() = Some(Instant::now());
        // Status events still queued (a loss reported as the input ended) go out before the tracks end.
        for e in status.iter().flat_map(|s| s.try_iter()) {
            hand_over(e);
        }
        for e in self.ids.end_all(last) {
            hand_over(e);
        }
        if snapshots_dropped > 0 {
            warn!(dropped = snapshots_dropped, "Snapshots skipped: the disk did not keep up.");
        }
    }
}
