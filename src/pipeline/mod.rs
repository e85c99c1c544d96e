//! The real-time pipeline: the stages on cameras, one named thread each, joined by the bounded edges that
//! [`topology`] declares (what each carries, its capacity, what it does when full); shut down by cascade.
//!
//! ```text
//! capture ─frames (drop oldest | block)─▶ detect ─detections (block)─▶ track ─events (drop newest)─▶ publish ─▶ event sinks
//!    └───────── status: source_lost / source_restored / input_truncated (drop newest) ─▶┘ ├─pictures─▶ preview
//!                                                                                        └─snapshots─▶ snapshot writer
//! ```
//!
//! A frame's path, one module per hop: [`capture`](crate::capture) reads it ([`CaptureStage`]) →
//! [`detect`](crate::detect) finds its faces ([`DetectStage`]) → [`track`](crate::track) ([`TrackStage`]) associates
//! them with tracks, embeds the ones its policy asks for ([`embed`](crate::embed), after [`align`](crate::align)),
//! searches the gallery's current view for them ([`matcher`](crate::matcher), through
//! [`LiveGallery`](crate::gallery::LiveGallery)) and votes their identities into events, handing on capture's
//! status events with its own → [`publish`](crate::publish) ([`PublishStage`]) stamps and serialises each event once
//! and hands it to every event sink ([`crate::sinks`]: the socket, MQTT, the API's stream, stdout, a record file);
//! the track stage also hands the first camera's annotated frames to the window and each identity decision's face
//! to the snapshot writer. Every stage has the shape of [`Stage`]: built before any thread starts, then
//! `run(self, input, output, ports, context)`, its side edges (`ports`) made by [`Pipeline::start`] from the
//! topology.
//!
//! Everything is built before any thread starts ([`Pipeline::build`]: models loaded, sources opened, gallery read,
//! outputs made; the socket bound last, so nothing is served by a daemon that cannot run).
//!
//! Shutdown: [`Stop::raise`] stops capture only. Its edges close, each stage drains its input, drops its outputs
//! and returns; the track stage ends the live tracks; publish and the snapshot writer finish when every camera's
//! track stage has closed its edge to them (the end of the stream travels with the channels). A capture stuck in
//! a stalled source is left behind after a second. [`Running::wait`] joins with a deadline. A stage that panics is
//! caught at its root, raises the stop and is reported, so a bug shuts the pipeline down instead of hanging it.

mod build;
pub mod plan;
pub mod systemd;
pub mod topology;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, info};

use crate::base::SaidFrame;
use crate::capture::CaptureStage;
use crate::detect::DetectStage;
pub use crate::metrics::{OutputStats, Report, StageReport, StageStats, Stats};
use crate::publish::PublishStage;
use crate::sinks::preview::Preview;
use crate::sinks::snapshots::{SnapshotWriter, Taker};
pub use crate::stage::{Context, Output, QueuePolicy, Stage, Stop};
use crate::strangers::StrangerWriter;
use crate::track::{TrackPorts, TrackStage};
pub use build::{BuildError, BuildOptions, Built};
pub use plan::Plan;
use topology::Edge;

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

impl crate::exit::Exit for PipelineError {
    fn exit_code(&self) -> u8 {
        crate::exit::INTERNAL
    }
}

/// Edge capacities (`[pipeline]`).
#[derive(Debug, Clone, Copy)]
pub struct Queues {
    /// Capture → detect.
    pub frames: usize,
    /// Detect → track.
    pub detections: usize,
}

/// One camera's stages: its own source, detector sessions and tracker (with its own threshold and gallery reader).
pub struct CameraStages {
    /// Reads the source.
    pub capture: CaptureStage,
    /// Finds faces.
    pub detect: DetectStage,
    /// Tracks, embeds, matches and names them.
    pub track: TrackStage,
    /// How its track stage takes snapshots, when `[snapshots]` is on.
    pub snapshots: Option<Taker>,
    /// Where what was said on each frame goes (`evaluate --video`).
    pub said: Option<Output<SaidFrame>>,
}

/// The stages of the daemon, built and ready to start: each camera's capture → detect → track, all feeding one
/// publish stage (one socket, one broker connection, one API feed), whose events say which camera they are about.
pub struct Pipeline {
    /// The cameras, in configuration order (the first one is the one shown in the preview).
    pub cameras: Vec<CameraStages>,
    /// Hands events to the sinks.
    pub publish: PublishStage,
    /// The window, when shown (the first camera's frames).
    pub preview: Option<Preview>,
    /// The snapshot writer, when `[snapshots]` is on.
    pub snapshots: Option<SnapshotWriter>,
    /// The strangers' writer, when `[strangers]` is on.
    pub strangers: Option<StrangerWriter>,
    /// The web page's live view, when the API is on.
    pub live: Option<Arc<crate::sinks::live::LiveFrames>>,
    /// Edge capacities (each camera's own edges).
    pub queues: Queues,
}

/// One running camera's name and counters.
#[derive(Clone)]
pub struct CameraStats {
    /// `capture.camera`.
    pub name: String,
    /// Its stages' counters (its events counted as the publish stage hands them out).
    pub stats: Arc<Stats>,
    /// The size of the gallery in memory that it searches (one for every camera).
    pub gallery: crate::gallery::GallerySize,
}

type StageResult = Result<(), String>;

/// A running pipeline.
pub struct Running {
    /// (camera, stage, thread).
    threads: Vec<(String, &'static str, JoinHandle<StageResult>)>,
    stop: Stop,
    cameras: Vec<CameraStats>,
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>().map(|s| (*s).to_string()).or_else(|| p.downcast_ref::<String>().cloned()).unwrap_or_else(|| "panic".into())
}

/// Spawns a named stage thread whose panic raises `stop` and becomes its result.
fn spawn(
    name: &'static str,
    camera: &str,
    thread: String,
    stop: &Stop,
    f: impl FnOnce() + Send + 'static,
) -> Result<(String, &'static str, JoinHandle<StageResult>), PipelineError> {
    let stop = stop.clone();
    let camera = camera.to_string();
    let span_camera = camera.clone();
    let handle = crate::stage::thread(thread, move || {
        let _span = tracing::info_span!("stage", name, camera = %span_camera).entered();
        std::panic::catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
            let message = panic_message(p);
            error!(stage = name, %message, "Stage panicked; shutting the pipeline down.");
            stop.raise();
            message
        })
    })
    .map_err(|source| PipelineError::Spawn { stage: name, source })?;
    Ok((camera, name, handle))
}

/// Spawns `stage` of `camera` on its own thread with its edges, named after the stage (and the camera, when the
/// daemon has several: `detect:door`).
fn spawn_stage<S: Stage>(
    stage: S,
    camera: &str,
    several: bool,
    input: crossbeam_channel::Receiver<S::In>,
    output: Output<S::Out>,
    ports: S::Ports,
    cx: &Context,
) -> Result<(String, &'static str, JoinHandle<StageResult>), PipelineError> {
    let cx = cx.clone();
    let thread = if several && !camera.is_empty() { format!("{}:{camera}", S::NAME) } else { S::NAME.to_string() };
    spawn(S::NAME, camera, thread, &cx.stop.clone(), move || stage.run(input, output, ports, &cx))
}

/// The end of an edge nothing is sent on (publish and the sinks give nothing; capture takes nothing).
fn closed<T>() -> Output<T> {
    crate::stage::edge(1, QueuePolicy::DropNewest).0
}

impl Pipeline {
    /// One camera's pipeline.
    pub fn single(
        capture: CaptureStage,
        detect: DetectStage,
        track: TrackStage,
        publish: PublishStage,
        preview: Option<Preview>,
        queues: Queues,
    ) -> Self {
        Self {
            cameras: vec![CameraStages { capture, detect, track, snapshots: None, said: None }],
            publish,
            preview,
            snapshots: None,
            strangers: None,
            live: None,
            queues,
        }
    }

    /// The first camera's stages.
    pub fn first(&self) -> &CameraStages {
        &self.cameras[0]
    }

    /// Also tells, for every frame of the first camera, what was said on it: the input of `facewatch evaluate
    /// --video`. The edge is unbounded and the track stage never drops from it; read it, or it grows.
    pub fn said(&mut self) -> crossbeam_channel::Receiver<SaidFrame> {
        let (out, rx) = topology::edge(Edge::Said, &self.queues, false);
        self.cameras[0].said = Some(out);
        rx
    }

    /// Starts every stage thread, downstream first, so that every receiver exists before anything is sent.
    /// `stop` is the handle that Ctrl-C, SIGTERM or the preview raise.
    pub fn start(self, stop: Stop) -> Result<Running, PipelineError> {
        let Self { cameras, publish, preview, snapshots, strangers, live, queues } = self;
        let outputs = Arc::new(OutputStats::default());
        let several = cameras.len() > 1;
        let counters: Vec<CameraStats> = cameras
            .iter()
            .map(|c| CameraStats {
                name: c.capture.camera().to_string(),
                stats: Arc::new(Stats::sharing(outputs.clone())),
                gallery: c.track.gallery_size(),
            })
            .collect();
        // The shared stages' own context: the outputs every camera shares, and the events of no camera.
        let hub = Context { stop: stop.clone(), stats: Arc::new(Stats::sharing(outputs)) };
        let (events_out, events_in) = topology::edge(Edge::Events, &queues, true);
        let mut threads = Vec::new();
        let cameras_counted = counters.iter().map(|c| (c.name.clone(), c.stats.clone())).collect();
        threads.push(spawn_stage(publish, "", several, events_in, closed(), cameras_counted, &hub)?);
        let snapshots_out = match snapshots {
            Some(writer) => {
                let (out, jobs) = topology::edge(Edge::Snapshots, &queues, true);
                threads.push(spawn_stage(writer, "", several, jobs, closed(), (), &hub)?);
                Some(out)
            }
            None => None,
        };
        let strangers_out = match strangers {
            Some(writer) => {
                let (out, writes) = topology::edge(Edge::Strangers, &queues, true);
                threads.push(spawn_stage(writer, "", several, writes, closed(), (), &hub)?);
                Some(out)
            }
            None => None,
        };
        let mut preview = preview;
        for (i, (stages, counters)) in cameras.into_iter().zip(&counters).enumerate() {
            let CameraStages { capture, detect, track, snapshots: taker, said } = stages;
            let cx = Context { stop: stop.clone(), stats: counters.stats.clone() };
            let name = counters.name.as_str();
            let live_source = capture.source().is_live();
            let (frames_out, frames_in) = topology::edge(Edge::Frames, &queues, live_source);
            let (status_out, status_in) = topology::edge(Edge::Status, &queues, live_source);
            let (detections_out, detections_in) = topology::edge(Edge::Detections, &queues, live_source);
            let pictures = match preview.take().filter(|_| i == 0) {
                Some(window) => {
                    let (out, pictures_in) = topology::edge(Edge::Pictures, &queues, live_source);
                    threads.push(spawn_stage(window, name, several, pictures_in, closed(), (), &cx)?);
                    Some(out)
                }
                None => None,
            };
            let snapshots = taker.zip(snapshots_out.clone());
            let live_view = match &live {
                Some(frames) => {
                    let (out, pictures_in) = topology::edge(Edge::Live, &queues, live_source);
                    threads.push(spawn_stage(
                        crate::sinks::live::LiveSink::new(name, frames.clone()),
                        name,
                        several,
                        pictures_in,
                        closed(),
                        (),
                        &cx,
                    )?);
                    Some((out, frames.clone()))
                }
                None => None,
            };
            let ports =
                TrackPorts { status: status_in, preview: pictures, snapshots, said, strangers: strangers_out.clone(), live: live_view };
            threads.push(spawn_stage(track, name, several, detections_in, events_out.clone(), ports, &cx)?);
            threads.push(spawn_stage(detect, name, several, frames_in, detections_out, (), &cx)?);
            threads.push(spawn_stage(capture, name, several, crossbeam_channel::never(), frames_out, status_out, &cx)?);
        }
        drop((events_out, snapshots_out, strangers_out));
        info!(stages = threads.len(), cameras = counters.len(), "Pipeline started.");
        Ok(Running { threads, stop, cameras: counters })
    }
}

impl Running {
    /// The first camera's live counters (with one camera, the pipeline's).
    pub fn stats(&self) -> Arc<Stats> {
        self.cameras[0].stats.clone()
    }

    /// Every camera's name and live counters, in configuration order.
    pub fn cameras(&self) -> Vec<CameraStats> {
        self.cameras.clone()
    }

    /// The stop handle.
    pub fn stop_handle(&self) -> Stop {
        self.stop.clone()
    }

    /// Waits for every stage to finish (input ended or stop raised); once the stop is raised, waits at most
    /// `drain` more. Returns the first camera's final figures, or the first stage failure.
    pub fn wait(self, drain: Duration) -> Result<Report, PipelineError> {
        let mut reports = self.wait_logging(drain, None, &mut systemd::Notifier::disabled())?;
        Ok(reports.swap_remove(0).1)
    }

    /// [`Running::wait`], logging one health line per camera every `every` meanwhile (fps and drops over the
    /// interval, latency percentiles over the last frames), and keeping systemd informed through `notifier`
    /// (watchdog fed while frames flow, `STOPPING=1` at shutdown): what a service needs when nobody is attached.
    /// Returns each camera's final figures.
    pub fn wait_logging(
        self,
        drain: Duration,
        every: Option<Duration>,
        notifier: &mut systemd::Notifier,
    ) -> Result<Vec<(String, Report)>, PipelineError> {
        let mut stopped_at: Option<Instant> = None;
        let mut last: Vec<(Instant, u64, u64)> = vec![(Instant::now(), 0, 0); self.cameras.len()];
        let mut abandoned = false;
        while !self.threads.iter().all(|(_, _, h)| h.is_finished()) {
            // Every stage but capture has drained after a stop: capture is stuck in a stalled source (a read or a
            // reconnect that has not timed out yet). Tracks have ended and the socket is closed; do not wait for it.
            let rest_done = self.threads.iter().filter(|(_, n, _)| *n != "capture").all(|(_, _, h)| h.is_finished());
            if self.stop.is_raised() && rest_done {
                let at = *stopped_at.get_or_insert_with(Instant::now);
                if at.elapsed() > drain.min(Duration::from_secs(2)) {
                    let stuck: Vec<&str> =
                        self.threads.iter().filter(|(_, n, h)| *n == "capture" && !h.is_finished()).map(|(c, _, _)| c.as_str()).collect();
                    tracing::warn!(cameras = ?stuck, "Capture is still blocked in its source; leaving it behind.");
                    abandoned = true;
                    break;
                }
            }
            // A camera retrying a lost source, or one whose track stage has finished, is not stuck.
            let track_done = |camera: &str| self.threads.iter().any(|(c, n, h)| c == camera && *n == "track" && h.is_finished());
            let progress: Vec<(u64, bool)> = self
                .cameras
                .iter()
                .map(|c| {
                    let s = &c.stats;
                    (s.track.frames.load(Ordering::Relaxed), s.capture.retrying.load(Ordering::Relaxed) || track_done(&c.name))
                })
                .collect();
            notifier.tick(&progress);
            if let Some(every) = every.filter(|e| last[0].0.elapsed() >= *e) {
                for (c, last) in self.cameras.iter().zip(&mut last) {
                    let r = c.stats.report();
                    let fps = (r.frames - last.1) as f64 / last.0.elapsed().as_secs_f64();
                    info!(
                        camera = %c.name,
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
                    *last = (Instant::now(), r.frames, r.frames_dropped);
                }
            }
            if self.stop.is_raised() {
                notifier.stopping();
                let at = *stopped_at.get_or_insert_with(Instant::now);
                if at.elapsed() > drain {
                    let stages = self.threads.iter().filter(|(_, _, h)| !h.is_finished()).map(|(_, n, _)| *n).collect();
                    return Err(PipelineError::DrainTimeout { seconds: drain.as_secs_f64(), stages });
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        notifier.stopping();
        let reports = self.cameras.iter().map(|c| (c.name.clone(), c.stats.report())).collect();
        let mut failure = None;
        for (_, stage, h) in self.threads {
            if abandoned && stage == "capture" && !h.is_finished() {
                continue;
            }
            let result = h.join().unwrap_or_else(|p| Err(panic_message(p)));
            if let (Err(message), None) = (result, &failure) {
                failure = Some(PipelineError::StagePanicked { stage, message });
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }
}
