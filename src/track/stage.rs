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
use crate::base::{Embedding, Event, EventKind, SaidFace, SaidFrame};
use crate::detect::Detections;
use crate::embed::FaceEmbedder;
use crate::gallery::LiveGallery;
use crate::sinks::snapshots::{SnapshotJob, Taker};
use crate::stage::{Context, Output, Sent, Stage};
use crate::strangers::{StrangerWatch, StrangerWrite};

/// The track stage: tracks, their embeddings, identities and events.
pub struct TrackStage {
    embedder: FaceEmbedder,
    gallery: LiveGallery,
    assoc: Associator,
    cut: SceneCut,
    ids: Identities,
    /// Stranger matching, when `[strangers]` is on.
    strangers: Option<StrangerWatch>,
    /// Decision events carry a small picture of the face (for MQTT's image entity and the web page).
    pictures: bool,
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
    /// Strangers' faces to keep (never waited on).
    pub strangers: Option<Output<StrangerWrite>>,
    /// The web page's live view, and whether anyone watches it (a picture is sent only then).
    pub live: Option<(Output<PreviewFrame>, std::sync::Arc<crate::sinks::live::LiveFrames>)>,
}

impl TrackPorts {
    /// Only the status input: no window, no snapshots, no record of what was said.
    pub fn status(status: Receiver<Event>) -> Self {
        Self { status, preview: None, snapshots: None, said: None, strangers: None, live: None }
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
    /// Decision events carry a small picture of the face (an output shows them: MQTT, the web page).
    pub pictures: bool,
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
            strangers: None,
            pictures: plan.pictures,
        }
    }

    /// How large the gallery it searches is (the metrics' figures).
    pub fn gallery_size(&self) -> crate::gallery::GallerySize {
        self.gallery.size()
    }

    /// Matches the faces no enrolled person matches against the strangers seen before ([`StrangerWatch`]).
    pub fn with_strangers(mut self, watch: StrangerWatch) -> Self {
        self.strangers = Some(watch);
        self
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

/// A copy of `f` with pixels of its own (two outputs draw on one frame).
fn copy_frame(f: &crate::base::Frame) -> Option<crate::base::Frame> {
    let bgr = opencv::core::MatTraitConst::try_clone(&f.bgr).ok()?;
    Some(crate::base::Frame {
        bgr,
        original_width: f.original_width,
        original_height: f.original_height,
        scale: f.scale,
        source: f.source.clone(),
        seq: f.seq,
        captured_at: f.captured_at,
    })
}

/// The face of a decision event as a small JPEG (at most 128 px wide, with a little of the head around it).
fn picture(frame: &crate::base::Frame, event: &Event) -> Option<std::sync::Arc<[u8]>> {
    use opencv::core::{Mat, MatTraitConst, Rect, Size};
    let face = event.body.track()?;
    let s = frame.scale;
    let [x, y, w, h] = face.bbox;
    let (fw, fh) = (frame.bgr.cols(), frame.bgr.rows());
    let x0 = ((x - 0.2 * w) * s).floor().max(0.0) as i32;
    let y0 = ((y - 0.2 * h) * s).floor().max(0.0) as i32;
    let x1 = (((x + 1.2 * w) * s).ceil() as i32).min(fw);
    let y1 = (((y + 1.2 * h) * s).ceil() as i32).min(fh);
    if x1 - x0 < 4 || y1 - y0 < 4 {
        return None;
    }
    let roi = Mat::roi(&frame.bgr, Rect::new(x0, y0, x1 - x0, y1 - y0)).ok()?;
    let scale = (128.0 / f64::from(x1 - x0)).min(1.0);
    let mut small = Mat::default();
    opencv::imgproc::resize(&roi, &mut small, Size::new(0, 0), scale, scale, opencv::imgproc::INTER_AREA).ok()?;
    crate::image::encode_jpeg(&small, 80).ok().map(std::sync::Arc::from)
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
        let TrackPorts { status, mut preview, snapshots, mut said, strangers: strangers_out, live } = ports;
        let mut strangers_dropped = 0u64;
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
            let info = FrameInfo { seq: frame.seq, captured_at: frame.captured_at, scale: frame.scale };
            let mut events = Vec::new();
            if self.gallery.refresh() {
                // A stranger named, a face moved, someone enrolled: every live track's votes are cast again.
                let gallery = &self.gallery;
                events.extend(self.ids.recast(info, |e| gallery.search(e)));
            }
            for face in &mut faces {
                if let Some(e) = &face.embedding {
                    face.candidates = Some(self.gallery.search(e));
                }
            }
            stats.matcher.record(searched.elapsed());

            let voted = Instant::now();
            events.extend(self.ids.update(info, &faces, &ended));
            stats.track.record(voted.elapsed());
            stats.sample_fps();
            if let Some(watch) = &mut self.strangers {
                let started = Instant::now();
                let mut writes = Vec::new();
                for face in &faces {
                    match &face.embedding {
                        Some(e) if self.ids.is_unnamed(face.track) => {
                            let label = watch.unnamed_face(face.track, e, face.quality, &frame, &face.detection, &mut writes);
                            self.ids.set_stranger(face.track, label, info, &mut events);
                        }
                        _ if !self.ids.is_unnamed(face.track) => watch.forget_track(face.track),
                        _ => {}
                    }
                }
                for id in &ended {
                    watch.forget_track(*id);
                }
                if let Some(out) = &strangers_out {
                    strangers_dropped += crate::strangers::hand_over(out, writes);
                }
                stats.strangers.record(started.elapsed());
            }
            for mut e in events {
                if let Some((taker, out)) = &snapshots {
                    snapshots_dropped += u64::from(!snapshot(taker, out, &frame, &mut e));
                }
                if self.pictures && matches!(e.kind(), EventKind::TrackStarted | EventKind::IdentityChanged) {
                    e.picture = picture(&frame, &e);
                }
                hand_over(e);
            }
            stats.latency.record(SystemTime::now().duration_since(frame.captured_at).unwrap_or_default());
            // What was said on the frame, once, for whoever watches (evaluation, the window).
            let watched = live.as_ref().filter(|(_, frames)| frames.watched());
            let labels = if said.is_some() || preview.is_some() || watched.is_some() { self.ids.labels(info) } else { Vec::new() };
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
            let mut frame = Some(frame);
            if let Some((out, _)) = watched {
                // The window draws on its own copy when it shows this camera too.
                let picture = match preview.is_some() {
                    true => frame.as_ref().and_then(copy_frame),
                    false => frame.take(),
                };
                if let Some(picture) = picture {
                    let _ = out.send(PreviewFrame { labels: labels.clone(), frame: picture });
                }
            }
            if let (Some(out), Some(frame)) = (&preview, frame) {
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
        if strangers_dropped > 0 {
            warn!(dropped = strangers_dropped, "Strangers' faces not kept: the disk did not keep up.");
        }
    }
}
