//! [`Pipeline::build`]: every stage of one camera's pipeline from the configuration, checked before any thread
//! starts: models loaded, gallery read, source opened, socket bound.

use tracing::{info, warn};

use super::topology::{self, Outputs};
use super::{CameraStages, Pipeline, Plan, Queues};
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
use crate::strangers::{StrangerSettings, StrangerWatch, StrangerWriter};
use crate::track::{FaceThresholds, TrackPlan, TrackStage};

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

impl Pipeline {
    /// Builds every stage from `cfg`: models, gallery (created when missing), each camera's source, and, last, the
    /// socket, so that nothing is served by a daemon that cannot run. Every camera of `[[cameras]]` (or the one of
    /// `[capture]`) gets its own capture, detect workers and tracker, made from one check of the models.
    pub fn build(cfg: &Config, mut options: BuildOptions) -> Result<Built, BuildError> {
        // Every "0 = auto" decided once, here: workers, sessions, budgets, threads, thresholds per camera.
        let plan = Plan::for_this_machine(cfg).map_err(SessionError::from)?;
        let cameras = cfg.cameras();
        let workers: usize = plan.cameras.iter().map(|c| c.detect_workers.value).sum();
        let embedders: usize = plan.cameras.iter().map(|c| c.embed_sessions.value).sum();
        let runtime_cfg = plan.runtime_config(cfg);
        let sessions = crate::sessions::Models::sessions(&runtime_cfg, workers, embedders)?;
        let models = sessions.info;
        let (mut detectors, mut recognizers) = (sessions.detectors.into_iter(), sessions.embedders.into_iter());
        let levels = FaceThresholds { same_face_min: plan.same_face_min.value, reid_min: plan.reid_min.value };
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
        // Strangers: one book for every camera (the gallery follower reads it again when a person edits it).
        let strangers = (options.outputs.strangers && cfg.strangers.enabled).then(|| plan.strangers_threshold.clone()).flatten();
        let book = strangers.as_ref().and_then(|_| matchers.as_slice().first().map(LiveGallery::strangers));
        let pictures = options.outputs.sse.is_some() || (options.outputs.mqtt && cfg.mqtt.enabled());
        // Side by side; a source still opening after a moment joins later instead of holding the others back.
        let capture_cfgs: Vec<_> = cameras.iter().map(|(c, _)| c.clone()).collect();
        let mut captures = CaptureStage::build_all(&capture_cfgs, OPEN_WAIT)?.into_iter();
        for ((capture_cfg, _), planned) in cameras.iter().zip(&plan.cameras) {
            let camera = capture_cfg.camera.as_str();
            let capture = captures.next().expect("one source per camera").max_frames(options.max_frames);
            let (threshold, workers, embedders) = (planned.threshold.value, planned.detect_workers.value, planned.embed_sessions.value);
            info!(
                camera, source = %capture.source().describe(), persons = people.len(),
                threshold, detector = %models.detector, recognizer = %models.recognizer,
                detect_workers = workers, embed_sessions = embedders, intra_threads = runtime_cfg.runtime.intra_threads, "Camera built."
            );
            let mut embedder = recognizers.by_ref().take(embedders);
            let first = embedder.next().expect("one recognizer session per camera at least");
            let face_embedder = FaceEmbedder::new(first).with_helpers(embedder.collect());
            let matcher = matchers.next().expect("one matcher per camera");
            let track_plan = TrackPlan { levels, threshold, update_interval, embed_budget: planned.embed_budget.value, pictures };
            let mut track = TrackStage::build(&cfg.track, camera, face_embedder, matcher, track_plan);
            if let (Some(threshold), Some(book)) = (&strangers, &book) {
                let settings = StrangerSettings::new(&cfg.strangers, threshold.value);
                track = track.with_strangers(StrangerWatch::new(settings, book.clone(), camera));
            }
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
        // The strangers' faces are kept through a connection of their own, off the cameras' threads.
        let stranger_writer = match strangers.is_some() {
            true => Some(StrangerWriter::new(cfg.open_gallery_store(models.dim, true)?, &cfg.strangers)),
            false => None,
        };
        // Last: the socket is bound (and the broker told) only by a daemon that can run.
        let publish = PublishStage::new(topology::event_sinks(cfg, &mut options.outputs, &names, &people)?);
        let pipeline = Pipeline {
            cameras: stages,
            publish,
            preview: options.outputs.preview.take(),
            live: options.outputs.live.take(),
            snapshots: writer,
            strangers: stranger_writer,
            queues: Queues { frames: cfg.pipeline.frame_queue.get(), detections: cfg.pipeline.stage_queue.get() },
        };
        Ok(Built { pipeline, models })
    }
}
