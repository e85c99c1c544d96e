//! [`Pipeline::build`]: every stage of one camera's pipeline from the configuration, checked before any thread
//! starts: models loaded, gallery read, source opened, socket bound.

use tracing::{info, warn};

use super::{Pipeline, Queues};
use crate::capture::{CaptureError, CaptureStage};
use crate::config::{resolve_path, Config};
use crate::detect::DetectStage;
use crate::embed::FaceEmbedder;
use crate::engine::{Engine, EngineError, ModelInfo};
use crate::gallery::{Gallery, GalleryError};
use crate::matcher::Matcher;
use crate::preview::Preview;
use crate::publish::mqtt::{MqttError, MqttSink};
use crate::publish::{EventSink, PublishError, PublishStage};
use crate::snapshot::{SnapshotError, Snapshots};
use crate::track::{FaceThresholds, TrackStage};

/// Why a pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A model is missing or wrong, or the ONNX Runtime failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The gallery could not be opened.
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    /// The source could not be opened.
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// The event socket could not be served.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The MQTT client could not be set up.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// The snapshot directory could not be made.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

impl crate::base::exit::Exit for BuildError {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Engine(e) => e.exit_code(),
            Self::Gallery(e) => e.exit_code(),
            Self::Capture(e) => e.exit_code(),
            Self::Publish(e) => e.exit_code(),
            Self::Mqtt(e) => e.exit_code(),
            Self::Snapshot(e) => e.exit_code(),
        }
    }
}

/// What the caller adds to the configuration.
#[derive(Default)]
pub struct BuildOptions {
    /// Sinks besides the event socket (stdout, a record file, a channel).
    pub sinks: Vec<Box<dyn EventSink>>,
    /// Serve `publish.socket` (the daemon); off for jobs that only read the events themselves.
    pub serve_socket: bool,
    /// Publish to the broker of `[mqtt]`, when one is configured (the daemon; `bench --mqtt`).
    pub mqtt: bool,
    /// Save `[snapshots]`, when enabled (the daemon).
    pub snapshots: bool,
    /// The window (`preview.enabled`, when a display is there).
    pub preview: Option<Preview>,
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

/// The daemon runs several inference sessions at once (`detect.workers` detectors and track's embedding): with
/// `runtime.intra_threads = 0` the cores are shared among them, not each given all of them. Letting every session
/// take every core oversubscribes the CPU: on 2 cores the sample clip ran at 57–65 fps that way and 75–77 fps
/// with one thread each (BENCHMARKS.md).
pub fn daemon_runtime(cfg: &Config) -> Config {
    let mut cfg = cfg.clone();
    if cfg.runtime.intra_threads == 0 {
        let cores = available_cores();
        cfg.runtime.intra_threads = (cores / (cfg.detect.worker_count(cores) + 1)).max(1);
    }
    cfg
}

fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

impl Pipeline {
    /// Builds every stage from `cfg`: models, gallery (created when missing), source, and, last, the socket, so
    /// that nothing is served by a daemon that cannot run.
    pub fn build(cfg: &Config, options: BuildOptions) -> Result<Built, BuildError> {
        let runtime_cfg = daemon_runtime(cfg);
        let engine = Engine::build(&runtime_cfg)?;
        let (detector, embedder, models) = engine.into_parts();
        let mut detectors = vec![detector];
        detectors.extend(Engine::more_detectors(&runtime_cfg, cfg.detect.worker_count(available_cores()) - 1)?);
        let helpers = Engine::more_embedders(&runtime_cfg, cfg.track.embed_session_count(available_cores()) - 1)?;
        let gallery = Gallery::open(&resolve_path(&cfg.gallery.path), &cfg.models.recognizer, models.dim, cfg.matcher.exact_search_max)?;
        if gallery.is_empty() {
            warn!(gallery = %gallery.path().display(), "The gallery is empty: every face will be unknown. Enroll people with `facewatch enroll`.");
        }
        let capture = CaptureStage::build(&cfg.capture)?.max_frames(options.max_frames);
        let (same_face_min, reid_min) = models.face_levels;
        let levels = FaceThresholds::resolve(&cfg.track, same_face_min, reid_min);
        info!(
            camera = %cfg.capture.camera, source = %capture.source().describe(), persons = gallery.persons()?.len(),
            threshold = models.threshold, detector = %models.detector, recognizer = %models.recognizer,
            detect_workers = detectors.len(), intra_threads = runtime_cfg.runtime.intra_threads, "Pipeline built."
        );
        let mqtt = match options.mqtt && cfg.mqtt.enabled() {
            true => {
                let people: Vec<String> = gallery.persons()?.into_iter().map(|p| p.name).collect();
                Some(MqttSink::start(&cfg.mqtt, std::slice::from_ref(&cfg.capture.camera), &people)?)
            }
            false => None,
        };
        let p = &cfg.publish;
        let update_interval = (!p.update_interval.is_zero()).then_some(p.update_interval);
        let track = TrackStage::build(
            &cfg.track,
            &cfg.capture.camera,
            FaceEmbedder::new(Box::new(embedder)).with_helpers(helpers),
            Matcher::new(gallery, cfg.matcher.top_k.get()),
            levels,
            models.threshold,
            update_interval,
        );
        let mut track = track;
        if options.snapshots && cfg.snapshots.enabled {
            track.snapshots_to(Snapshots::start(&cfg.snapshots, &cfg.capture.camera)?);
        }
        let mut publish = PublishStage::build(p, &cfg.capture.camera, options.sinks, options.serve_socket)?;
        if let Some(mqtt) = mqtt {
            publish.add(Box::new(mqtt));
        }
        let pipeline = Pipeline {
            capture,
            detect: DetectStage::with_workers(detectors),
            track,
            publish,
            preview: options.preview,
            queues: Queues { frames: cfg.pipeline.frame_queue.get(), detections: cfg.pipeline.stage_queue.get() },
        };
        Ok(Built { pipeline, models })
    }
}
