//! [`Pipeline::build`]: every stage of one camera's pipeline from the configuration, checked before any thread
//! starts: models loaded, gallery read, source opened, socket bound.

use tracing::{info, warn};

use super::topology::{self, Outputs};
use super::{CameraStages, Pipeline, Queues};
use crate::capture::{CaptureError, CaptureStage};
use crate::config::Config;
use crate::detect::DetectStage;
use crate::embed::FaceEmbedder;
use crate::gallery::{GalleryError, LiveGallery};
use crate::publish::PublishStage;
use crate::sessions::{ModelInfo, SessionError};
use crate::sinks::mqtt::MqttError;
use crate::sinks::snapshots::{SnapshotError, SnapshotWriter, Taker};
use crate::sinks::SocketError;
use crate::track::{FaceThresholds, TrackStage};

/// Why a pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A model is missing or wrong, or the ONNX Runtime failed.
    #[error(transparent)]
    Models(#[from] SessionError),
    /// The gallery could not be opened.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// The source could not be opened.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The event socket could not be served.
    #[error(transparent)]
    Socket(#[from] SocketError),
    /// The MQTT client could not be set up.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The snapshot directory could not be made.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// `run --record FILE` cannot be written.
    #[error("cannot record events to {}: {source}", .path.display())]
    Record {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// An output's thread could not be started.
    #[error("failed to start an event output: {0}")]
    Output(#[source] std::io::Error),
}

impl crate::exit::Exit for BuildError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Models(e) => e.exit_code(),
            Self::Gallery(e) => e.exit_code(),
            Self::Capture(e) => e.exit_code(),
            Self::Socket(e) => e.exit_code(),
            Self::Mqtt(e) => e.exit_code(),
            Self::Snapshot(e) => e.exit_code(),
            Self::Record { .. } => crate::exit::INPUT,
            Self::Output(_) => crate::exit::INTERNAL,
        }
    }
}

/// How long the start waits for a camera's source to open before starting without it (it joins when it opens).
const OPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// What the caller adds to the configuration.
#[derive(Default)]
pub struct BuildOptions {
    /// The outputs the command asks for ([`topology::event_sinks`] makes the event ones).
    pub outputs: Outputs,
    /// Stop after this many frames.
    pub max_frames: Option<u64>,
}

/// A built pipeline and the models it runs.
pub struct Built {
    /// Ready to start.
    pub pipeline: Pipeline,
    /// Models and threshold in use.
    pub models: ModelInfo,
}

/// `cfg` for a daemon that runs `sessions` inference sessions at once (per camera, `detect.workers` detectors and
/// `track.embed_sessions` recognizers): with `runtime.intra_threads = 0` the cores are shared among them, not each
/// given all of them. Letting every session take every core oversubscribes the CPU: on 2 cores the sample clip ran
/// at 57–65 fps that way and 75–77 fps with one thread each (BENCHMARKS.md).
pub fn daemon_runtime(cfg: &Config, sessions: usize) -> Config {
    let mut cfg = cfg.clone();
    if cfg.runtime.intra_threads == 0 {
        cfg.runtime.intra_threads = (available_cores() / sessions.max(1)).max(1);
    }
    cfg
}

/// Inference sessions one camera's pipeline makes: its detect workers (by whether its source is `live`) and its
/// embedding sessions.
pub fn camera_sessions(cfg: &Config, live: bool) -> (usize, usize) {
    let cores = available_cores();
    // Full scans and regions follow the faces from frame to frame: one detector must see every frame.
    let workers = if cfg.detect.full_scan_every > 0 { 1 } else { cfg.detect.worker_count(cores, live) };
    (workers, cfg.track.embed_session_count(cores, workers, live))
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

impl Pipeline {
    /// Builds every stage from `cfg`: models, gallery (created when missing), each camera's source, and, last, the
    /// socket, so that nothing is served by a daemon that cannot run. Every camera of `[[cameras]]` (or the one of
    /// `[capture]`) gets its own capture, detect workers and tracker, made from one check of the models.
    pub fn build(cfg: &Config, mut options: BuildOptions) -> Result<Built, BuildError> {
        let cameras = cfg.cameras();
        // How many detect workers a camera gets depends on whether its source is live.
        let splits: Vec<(usize, usize)> = cameras.iter().map(|(c, _)| camera_sessions(cfg, crate::capture::is_live(c))).collect();
        let (workers, embedders) = splits.iter().fold((0, 0), |(w, e), (cw, ce)| (w + cw, e + ce));
        let runtime_cfg = daemon_runtime(cfg, workers + embedders);
        let sessions = crate::sessions::Models::sessions(&runtime_cfg, workers, embedders)?;
        let models = sessions.info;
        let (mut detectors, mut recognizers) = (sessions.detectors.into_iter(), sessions.embedders.into_iter());
        let (same_face_min, reid_min) = models.face_levels;
        let levels = FaceThresholds::resolve(&cfg.track, same_face_min, reid_min);
        let p = &cfg.publish;
        let update_interval = (!p.update_interval.is_zero()).then_some(p.update_interval);
        let mut names = Vec::new();
        let mut stages = Vec::new();
        // One gallery in memory for every camera, one watcher following its changes.
        let gallery = cfg.open_gallery(models.dim, true)?;
        if gallery.is_empty() {
            warn!(gallery = %gallery.path().display(), "The gallery is empty: every face will be unknown. Enroll people with `facewatch enroll`.");
        }
        let people: Vec<String> = gallery.persons()?.into_iter().map(|p| p.name).collect();
        let mut matchers = LiveGallery::shared(gallery, cfg.matcher.top_k.get(), cameras.len()).into_iter();
        // Side by side; a source still opening after a moment joins later instead of holding the others back.
        let capture_cfgs: Vec<_> = cameras.iter().map(|(c, _)| c.clone()).collect();
        let mut captures = CaptureStage::build_all(&capture_cfgs, OPEN_WAIT)?.into_iter();
        for ((capture_cfg, threshold), (workers, embedders)) in cameras.iter().zip(splits) {
            let camera = capture_cfg.camera.as_str();
            let capture = captures.next().expect("one source per camera").max_frames(options.max_frames);
            let threshold = threshold.map_or(models.threshold, |t| t.get());
            info!(
                camera, source = %capture.source().describe(), persons = people.len(),
                threshold, detector = %models.detector, recognizer = %models.recognizer,
                detect_workers = workers, embed_sessions = embedders, intra_threads = runtime_cfg.runtime.intra_threads, "Camera built."
            );
            let mut embedder = recognizers.by_ref().take(embedders);
            let first = embedder.next().expect("one recognizer session per camera at least");
            let face_embedder = FaceEmbedder::new(first).with_helpers(embedder.collect());
            let matcher = matchers.next().expect("one matcher per camera");
            let track = TrackStage::build(&cfg.track, camera, face_embedder, matcher, levels, threshold, update_interval);
            let snapshots = (options.outputs.snapshots && cfg.snapshots.enabled).then(|| Taker::new(&cfg.snapshots, camera));
            let mut camera_detectors: Vec<_> = detectors.by_ref().take(workers).collect();
            // Sessions for this camera's frame size now, so its first faces are not held back by their set-up. Only
            // a head start: a detector that cannot get ready here tries again on the first frame, as it always did.
            if let Some((w, h)) = capture.source().frame_size().filter(|&(w, h)| w > 0 && h > 0) {
                let started = std::time::Instant::now();
                match camera_detectors.iter_mut().try_for_each(|d| d.prepare(w, h)) {
                    Ok(()) => {
                        let took_ms = started.elapsed().as_millis() as u64;
                        tracing::debug!(camera, width = w, height = h, took_ms, "Detectors ready for the frame size.");
                    }
                    Err(e) => {
                        warn!(camera, width = w, height = h, error = %e, "Could not prepare the detectors for this frame size; they will on the first frame.");
                    }
                }
            }
            let detect = DetectStage::with_workers(camera_detectors);
            names.push(camera.to_string());
            stages.push(CameraStages { capture, detect, track, snapshots, said: None });
        }
        let writer = (options.outputs.snapshots && cfg.snapshots.enabled).then(|| SnapshotWriter::build(&cfg.snapshots)).transpose()?;
        // Last: the socket is bound (and the broker told) only by a daemon that can run.
        let publish = PublishStage::new(topology::event_sinks(cfg, &mut options.outputs, &names, &people)?);
        let pipeline = Pipeline {
            cameras: stages,
            publish,
            preview: options.outputs.preview.take(),
            snapshots: writer,
            queues: Queues { frames: cfg.pipeline.frame_queue.get(), detections: cfg.pipeline.stage_queue.get() },
        };
        Ok(Built { pipeline, models })
    }
}
