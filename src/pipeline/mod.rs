//! The real-time pipeline: one named thread per stage, joined by bounded channels, shut down by cascade.
//!
//! ```text
//! capture ─frame_queue (drop oldest)─▶ detect ─stage_queue (block)─▶ embed ─▶ matcher ─▶ track ─try_send─▶ publish ─▶ sinks
//!    └──────────────── source_lost / source_restored (try_send) ───────────────────────────────┘        └─try_send─▶ preview
//! ```
//!
//! Everything is built before any thread starts ([`Parts`]: models loaded, source opened, socket bound). Edge
//! policies: capture → detect evicts the oldest frame for live sources, so latency stays bounded while a slow stage
//! drops stale frames (counted); the middle edges block, which pushes backpressure back to that one dropping edge;
//! the edges to publish and preview never wait (full: the event or picture is dropped and counted).
//!
//! Shutdown: [`Stop::raise`] stops capture only. Its sender drops, each stage drains its input, drops its own
//! sender and returns; the track stage ends the live tracks. [`Running::wait`] joins with a deadline. A stage that
//! panics is caught at its root, raises the stop and is reported, so a bug shuts the pipeline down instead of
//! hanging it.

mod stages;
mod stats;
pub mod systemd;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;
use tracing::{error, info};

pub use stats::{Report, StageReport, StageStats, Stats};

use crate::capture::{CaptureSettings, FrameQueue, FrameSource};
use crate::config::TrackConfig;
use crate::detect::Detector;
use crate::embed::Embedder;
use crate::gallery::Gallery;
use crate::preview::Preview;
use crate::publish::EventSink;

/// Errors of the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A thread could not be created.
    #[error("failed to start the {stage} thread: {source}")]
    Spawn {
        /// Stage.
        stage: &'static str,
        /// OS error.
        source: std::io::Error,
    },
    /// A stage panicked (a bug); the pipeline was shut down.
    #[error("the {stage} stage failed: {message}")]
    StagePanicked {
        /// Stage.
        stage: &'static str,
        /// Panic message.
        message: String,
    },
    /// Stages still running when the shutdown deadline passed.
    #[error("stages still running {seconds:.1} s after the stop: {}", .stages.join(", "))]
    DrainTimeout {
        /// The deadline.
        seconds: f64,
        /// Stages that did not finish.
        stages: Vec<&'static str>,
    },
}

/// The stop signal: raised once (Ctrl-C, SIGTERM, preview closed, a stage failed); capture polls it.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// A stop that is not raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the pipeline to drain and finish.
    pub fn raise(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the stop was raised.
    pub fn is_raised(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Sleeps up to `d`, waking early when the stop is raised; returns whether it was.
    pub fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while !self.is_raised() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
        true
    }
}

/// Everything a pipeline needs, built and checked before any thread starts.
pub struct Parts {
    /// Opened frame source.
    pub source: Box<dyn FrameSource>,
    /// Capture settings.
    pub capture: CaptureSettings,
    /// Loaded detector.
    pub detector: Box<dyn Detector>,
    /// Loaded recognizer.
    pub embedder: Box<dyn Embedder>,
    /// Opened gallery.
    pub gallery: Gallery,
    /// Cosine threshold for a known person.
    pub threshold: f32,
    /// Candidates per face.
    pub top_k: usize,
    /// Association and voting.
    pub track: TrackConfig,
    /// The recognizer's tracking levels, after `[track]` overrides.
    pub levels: crate::track::FaceThresholds,
    /// What was said on every frame, for evaluation (`facewatch evaluate --video`); `None` in the daemon.
    /// The track stage waits on this channel: give it room (unbounded) or read it.
    pub said: Option<crossbeam_channel::Sender<crate::eval::video::SaidFrame>>,
    /// `track_updated` interval (None: off).
    pub update_interval: Option<Duration>,
    /// Where events go (socket, stdout, channel).
    pub sinks: Vec<Box<dyn EventSink>>,
    /// The window, when shown.
    pub preview: Option<Preview>,
    /// Capture → detect capacity.
    pub frame_queue: usize,
    /// Capacity of the other edges.
    pub stage_queue: usize,
}

type StageResult = Result<(), String>;

/// A running pipeline.
pub struct Running {
    threads: Vec<(&'static str, JoinHandle<StageResult>)>,
    stop: Stop,
    stats: Arc<Stats>,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>().map(|s| (*s).to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "panic".into())
}

/// Spawns a named stage thread whose panic raises `stop` and becomes its result.
fn spawn(
    name: &'static str,
    stop: &Stop,
    f: impl FnOnce() + Send + 'static,
) -> Result<(&'static str, JoinHandle<StageResult>), PipelineError> {
    let stop = stop.clone();
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _span = tracing::info_span!("stage", name).entered();
            std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
                let message = panic_message(p);
                error!(stage = name, %message, "Stage panicked; shutting the pipeline down.");
                stop.raise();
                message
            })
        })
        .map_err(|source| PipelineError::Spawn { stage: name, source })?;
    Ok((name, handle))
}

/// Starts every stage thread. `stop` is the handle that Ctrl-C, SIGTERM or the preview raise.
pub fn start(parts: Parts, stop: Stop) -> Result<Running, PipelineError> {
    let stats = Arc::new(Stats::default());
    let (frame_tx, frame_rx) = bounded(parts.frame_queue.max(1));
    let (det_tx, det_rx) = bounded(parts.stage_queue.max(1));
    let (obs_tx, obs_rx) = bounded(parts.stage_queue.max(1));
    let (match_tx, match_rx) = bounded(parts.stage_queue.max(1));
    let (event_tx, event_rx) = bounded(1024);
    let (preview_tx, preview_rx) = bounded(1);
    let mut threads = Vec::new();

    // Downstream first, so that every receiver exists before anything is sent.
    let s = stats.clone();
    let sinks = parts.sinks;
    threads.push(spawn("publish", &stop, move || {
        let done = || s.track_finished.load(Ordering::SeqCst);
        crate::publish::run(event_rx, sinks, &s.publish, &done)
    })?);
    let preview_tx = match parts.preview {
        Some(preview) => {
            let (s, st) = (stats.clone(), stop.clone());
            threads.push(spawn("preview", &stop, move || preview.run(preview_rx, st, &s))?);
            Some(preview_tx)
        }
        None => None,
    };
    let s = stats.clone();
    let (camera, threshold, track) = (parts.capture.camera.clone(), parts.threshold, parts.track.clone());
    let (ev, interval, said) = (event_tx.clone(), parts.update_interval, parts.said);
    threads.push(spawn("track", &stop, move || {
        let ids = crate::track::Identities::new(&camera, threshold, &track, interval);
        stages::track(match_rx, ev, preview_tx, said, ids, &s)
    })?);
    let (s, gallery, top_k) = (stats.clone(), parts.gallery, parts.top_k);
    threads.push(spawn("matcher", &stop, move || stages::matcher(obs_rx, match_tx, gallery, top_k, &s))?);
    let (s, mut embedder) = (stats.clone(), parts.embedder);
    let assoc = crate::track::Associator::new(&parts.track, parts.levels);
    let cut = crate::track::SceneCut::new(parts.track.scene_cut.get());
    threads.push(spawn("embed", &stop, move || stages::embed(det_rx, obs_tx, embedder.as_mut(), assoc, cut, &s))?);
    // Capture keeps a receiver clone of its own edge to evict the oldest frame when the queue is full.
    let queue = FrameQueue { tx: frame_tx, evict: frame_rx.clone() };
    let (s, mut detector, st) = (stats.clone(), parts.detector, stop.clone());
    threads.push(spawn("detect", &stop, move || stages::detect(frame_rx, det_tx, detector.as_mut(), &s, &st))?);
    let (s, st, source, settings) = (stats.clone(), stop.clone(), parts.source, parts.capture);
    threads.push(spawn("capture", &stop, move || crate::capture::run(source, settings, queue, event_tx, st, &s.capture))?);
    info!(stages = threads.len(), "Pipeline started.");
    Ok(Running { threads, stop, stats })
}

impl Running {
    /// The live counters.
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// The stop handle.
    pub fn stop_handle(&self) -> Stop {
        self.stop.clone()
    }

    /// Waits for every stage to finish (input ended or stop raised); once the stop is raised, waits at most
    /// `drain` more. Returns the final figures, or the first stage failure.
    pub fn wait(self, drain: Duration) -> Result<Report, PipelineError> {
        self.wait_logging(drain, None, &mut systemd::Notifier::disabled())
    }

    /// [`Running::wait`], logging one health line every `every` meanwhile (fps and drops over the interval,
    /// latency percentiles over the last frames), and keeping systemd informed through `notifier` (watchdog fed
    /// while frames flow, `STOPPING=1` at shutdown): what a service needs when nobody is attached.
    pub fn wait_logging(self, drain: Duration, every: Option<Duration>, notifier: &mut systemd::Notifier) -> Result<Report, PipelineError> {
        let mut stopped_at: Option<Instant> = None;
        let mut last = (Instant::now(), 0u64, 0u64);
        let mut abandoned = None;
        while !self.threads.iter().all(|(_, h)| h.is_finished()) {
            // Every stage but capture has drained after a stop: capture is stuck in a stalled source (a read or a
            // reconnect that has not timed out yet). Tracks have ended and the socket is closed; do not wait for it.
            let rest_done = self.threads.iter().filter(|(n, _)| *n != "capture").all(|(_, h)| h.is_finished());
            if self.stop.is_raised() && rest_done {
                let at = *stopped_at.get_or_insert_with(Instant::now);
                if at.elapsed() > drain.min(Duration::from_secs(2)) {
                    tracing::warn!("Capture is still blocked in its source; leaving it behind.");
                    abandoned = Some("capture");
                    break;
                }
            }
            notifier.tick(self.stats.track.frames.load(Ordering::Relaxed), self.stats.capture.retrying.load(Ordering::Relaxed));
            if let Some(every) = every.filter(|e| last.0.elapsed() >= *e) {
                let r = self.stats.report();
                let fps = (r.frames - last.1) as f64 / last.0.elapsed().as_secs_f64();
                info!(
                    fps = format!("{fps:.1}"),
                    frames = r.frames,
                    dropped = r.frames_dropped - last.2,
                    faces = r.faces,
                    embedded = r.embedded,
                    events = r.events,
                    latency_p50_ms = format!("{:.1}", r.latency.p50_ms),
                    latency_p99_ms = format!("{:.1}", r.latency.p99_ms),
                    interval_s = every.as_secs(),
                    "Pipeline running."
                );
                last = (Instant::now(), r.frames, r.frames_dropped);
            }
            if self.stop.is_raised() {
                notifier.stopping();
                let at = *stopped_at.get_or_insert_with(Instant::now);
                if at.elapsed() > drain {
                    let stages = self.threads.iter().filter(|(_, h)| !h.is_finished()).map(|(n, _)| *n).collect();
                    return Err(PipelineError::DrainTimeout { seconds: drain.as_secs_f64(), stages });
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        notifier.stopping();
        let report = self.stats.report();
        let mut failure = None;
        for (stage, h) in self.threads {
            if abandoned == Some(stage) && !h.is_finished() {
                continue;
            }
            let result = h.join().unwrap_or_else(|p| Err(panic_message(p)));
            if let (Err(message), None) = (result, &failure) {
                failure = Some(PipelineError::StagePanicked { stage, message });
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }
}
