//! The stage loops between capture and publish. Each owns its model session and buffers, records its time per
//! frame, logs failures without flooding, and returns when its input closes (or its output has gone).

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use opencv::core::Mat;
use tracing::{info, warn};

use super::Stats;
use crate::detect::{Detection, Detector};
use crate::embed::{Embedder, Embedding};
use crate::eval::video::{SaidFace, SaidFrame};
use crate::frame::Frame;
use crate::gallery::Gallery;
use crate::preview::PreviewFrame;
use crate::publish::Event;
use crate::track::identity::FrameInfo;
use crate::track::{Associator, Identities, Observation, SceneCut, TrackId};

/// Detect → embed payload: the frame and its faces (frame pixels).
pub(super) struct Detections {
    frame: Frame,
    faces: Vec<Detection>,
}

/// Embed → matcher → track payload: the frame, its faces attached to tracks, and tracks that ended.
pub(super) struct Observations {
    frame: Frame,
    faces: Vec<Observation>,
    ended: Vec<TrackId>,
}

/// After a stop, how long detect waits for capture to close its queue before it stops on its own: a capture stuck
/// in a stalled stream's read or reconnect must not keep the live tracks from ending or the socket from closing.
const CAPTURE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Receives the next frame; `None` when capture closed the queue, or did not within [`CAPTURE_GRACE`] of a stop.
fn next_frame(rx: &Receiver<Frame>, stop: &super::Stop, stopped: &mut Option<Instant>) -> Option<Frame> {
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(50)) {
            Ok(frame) => return Some(frame),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return None,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) if stop.is_raised() => {
                if stopped.get_or_insert_with(Instant::now).elapsed() >= CAPTURE_GRACE {
                    warn!("Capture did not stop in time (a stalled stream?); ending the pipeline without it.");
                    return None;
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
        }
    }
}

pub(super) fn detect(rx: Receiver<Frame>, tx: Sender<Detections>, detector: &mut dyn Detector, stats: &Stats, stop: &super::Stop) {
    let mut stopped = None;
    while let Some(frame) = next_frame(&rx, stop, &mut stopped) {
        let started = Instant::now();
        let faces = match detector.detect(&frame.bgr) {
            Ok(f) => f,
            Err(e) => {
                if stats.detect.error() {
                    warn!(seq = frame.seq, error = %e, "Detection failed; frame skipped.");
                }
                Vec::new()
            }
        };
        stats.detect.record(started.elapsed());
        stats.faces.fetch_add(faces.len() as u64, Ordering::Relaxed);
        if tx.send(Detections { frame, faces }).is_err() {
            return;
        }
    }
}

pub(super) fn embed(
    rx: Receiver<Detections>,
    tx: Sender<Observations>,
    embedder: &mut dyn Embedder,
    mut assoc: Associator,
    mut cut: SceneCut,
    stats: &Stats,
) {
    let mut crop = Mat::default();
    for Detections { frame, faces } in rx {
        let started = Instant::now();
        if cut.is_cut(&frame.bgr) {
            tracing::debug!(seq = frame.seq, tracks = assoc.len(), "Shot cut: tracks let go of their positions.");
            stats.cuts.fetch_add(1, Ordering::Relaxed);
            assoc.scene_cut();
        }
        let plans = assoc.plan(&faces);
        let embeddings: Vec<Option<Embedding>> = faces
            .iter()
            .zip(&plans)
            .map(|(det, plan)| {
                if !plan.embed {
                    return None;
                }
                let t = Instant::now();
                let result = crate::align::align_into(&frame.bgr, &det.landmarks, &mut crop)
                    .map_err(|e| e.to_string())
                    .and_then(|_| embedder.embed(&crop).map_err(|e| e.to_string()));
                match result {
                    Ok(e) => {
                        stats.embed_face.record(t.elapsed());
                        stats.embedded.fetch_add(1, Ordering::Relaxed);
                        Some(e)
                    }
                    Err(e) => {
                        if stats.embed.error() {
                            warn!(seq = frame.seq, error = %e, "Embedding a face failed; it keeps its track's identity.");
                        }
                        None
                    }
                }
            })
            .collect();
        let (faces, ended) = assoc.commit(faces, &plans, embeddings, frame.captured_at);
        stats.embed.record(started.elapsed());
        if tx.send(Observations { frame, faces, ended }).is_err() {
            return;
        }
    }
}

/// How often the matcher looks for gallery changes made by other processes (`facewatch enroll` while running).
const GALLERY_POLL: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) fn matcher(rx: Receiver<Observations>, tx: Sender<Observations>, mut gallery: Gallery, top_k: usize, stats: &Stats) {
    let mut polled = Instant::now();
    for mut obs in rx {
        let started = Instant::now();
        if polled.elapsed() >= GALLERY_POLL {
            polled = started;
            match gallery.reload_if_changed() {
                Ok(true) => info!(
                    persons = gallery.persons().map_or(0, |p| p.len()),
                    embeddings = gallery.len(),
                    "Gallery changed on disk; reloaded."
                ),
                Ok(false) => {}
                Err(e) => warn!(error = %e, "Reading the changed gallery failed; matching against the previous one."),
            }
        }
        for face in &mut obs.faces {
            if let Some(e) = &face.embedding {
                face.candidates = Some(gallery.search(e, top_k));
            }
        }
        stats.matcher.record(started.elapsed());
        if tx.send(obs).is_err() {
            return;
        }
    }
}

/// Hands an event to publish without waiting; a full queue drops it (counted).
fn hand_over(tx: &Sender<Event>, e: Event, stats: &Stats) {
    if tx.try_send(e).is_err() {
        stats.publish.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

pub(super) fn track(
    rx: Receiver<Observations>,
    events: Sender<Event>,
    mut preview: Option<Sender<PreviewFrame>>,
    mut said: Option<Sender<SaidFrame>>,
    mut ids: Identities,
    stats: &Stats,
) {
    let mut last = FrameInfo { seq: 0, captured_at: SystemTime::now(), scale: 1.0 };
    for Observations { frame, faces, ended } in rx {
        let started = Instant::now();
        let info = FrameInfo { seq: frame.seq, captured_at: frame.captured_at, scale: frame.scale };
        for e in ids.update(info, &faces, &ended) {
            hand_over(&events, e, stats);
        }
        stats.track.record(started.elapsed());
        stats.latency.record(SystemTime::now().duration_since(frame.captured_at).unwrap_or_default());
        if let Some(tx) = &said {
            let faces = ids
                .labels(info)
                .into_iter()
                .map(|l| SaidFace { track: l.track, bbox: [l.bbox.x, l.bbox.y, l.bbox.w, l.bbox.h], name: l.name, known: l.known })
                .collect();
            if tx.send(SaidFrame { seq: frame.seq, faces }).is_err() {
                said = None;
            }
        }
        if let Some(tx) = &preview {
            if let Err(TrySendError::Disconnected(_)) = tx.try_send(PreviewFrame { labels: ids.labels(info), frame }) {
                preview = None;
            }
        }
        last = info;
    }
    *stats.frames_done.lock() = Some(Instant::now());
    for e in ids.end_all(last) {
        hand_over(&events, e, stats);
    }
    stats.track_finished.store(true, Ordering::SeqCst);
}
