//! Configuration: one typed [`Config`], loaded once at start-up from layered sources and validated.
//!
//! Layers, later wins: the embedded `config/default.toml` → `/etc/facewatch/config.toml` (when present) →
//! `--config FILE` → `FACEWATCH_SECTION__KEY` environment variables → CLI overrides. Unknown keys are refused
//! with their key path; values are checked by their types ([`UnitInterval`], [`ExecutionProvider`], …) and
//! then by [`Config::problems`], which reports every remaining problem at once.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The embedded default configuration (`config/default.toml`).
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The system-wide configuration file, read when it exists.
pub const SYSTEM_FILE: &str = "/etc/facewatch/config.toml";

/// Errors while loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or parsed (bad TOML, unreadable file, bad environment value).
    #[error("failed to read configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A key is unknown or its value has the wrong type or range.
    #[error("invalid configuration at `{path}`: {message}")]
    Invalid {
        /// Dotted key path, e.g. `detect.score_threshold`.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// Values that parse but do not make sense together (listed all at once).
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Problems(Vec<String>),
}

impl crate::base::exit::Exit for ConfigError {
    fn exit_code(&self) -> u8 {
        crate::base::exit::CONFIG
    }
}

/// A number in `0..=1` (scores, IoU, probabilities).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct UnitInterval(f32);

impl UnitInterval {
    /// The value as `f32`.
    pub fn get(self) -> f32 {
        self.0
    }
}

impl TryFrom<f64> for UnitInterval {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if (0.0..=1.0).contains(&v) {
            Ok(Self(v as f32))
        } else {
            Err(format!("{v} is outside 0..=1"))
        }
    }
}

impl From<UnitInterval> for f64 {
    fn from(v: UnitInterval) -> f64 {
        f64::from(v.0)
    }
}

/// A cosine-similarity threshold in `-1..=1`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Threshold(f32);

impl Threshold {
    /// Checks that `v` is a cosine similarity.
    pub fn new(v: f32) -> Result<Self, String> {
        if (-1.0..=1.0).contains(&v) {
            Ok(Self(v))
        } else {
            Err(format!("{v} is outside -1..=1 (cosine similarity)"))
        }
    }
    /// The value as `f32`.
    pub fn get(self) -> f32 {
        self.0
    }
}

impl TryFrom<f64> for Threshold {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        Self::new(v as f32)
    }
}

impl From<Threshold> for f64 {
    fn from(v: Threshold) -> f64 {
        f64::from(v.0)
    }
}

/// An ONNX Runtime execution provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// NVIDIA TensorRT.
    Tensorrt,
    /// NVIDIA CUDA.
    Cuda,
    /// The default CPU provider.
    Cpu,
}

impl std::fmt::Display for ExecutionProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tensorrt => "tensorrt",
            Self::Cuda => "cuda",
            Self::Cpu => "cpu",
        })
    }
}

/// `[models]`: which models run and where their files are.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsConfig {
    /// Directory with the installed model files.
    pub dir: String,
    /// The model manifest (TOML).
    pub manifest: String,
    /// Model pack ([`PACKS`]): a detector and a recognizer chosen together.
    pub pack: String,
    /// Detector name in the manifest; empty: the pack's.
    pub detector: String,
    /// Recognizer name in the manifest; empty: the pack's.
    pub recognizer: String,
}

/// A model pack: a detector and a recognizer chosen together, by one key (`models.pack`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Pack {
    /// The pack's name.
    pub name: &'static str,
    /// Detector (manifest name).
    pub detector: &'static str,
    /// Recognizer (manifest name).
    pub recognizer: &'static str,
    /// What it is for.
    pub what: &'static str,
}

/// The packs, default first. The default is the most accurate on the sample clip's ground truth
/// (BENCHMARKS.md, "Naming people on video").
pub const PACKS: [Pack; 3] = [
    Pack {
        name: "accurate",
        detector: "yunet",
        recognizer: "w600k_mbf",
        what: "most accurate on video; the recognizer's weights are for non-commercial research only (InsightFace)",
    },
    Pack {
        name: "open",
        detector: "yunet",
        recognizer: "sface_int8",
        what: "licence-clean: MIT detector, Apache-2.0 recognizer; for any use",
    },
    Pack {
        name: "faceplugin",
        detector: "yunet",
        recognizer: "faceplugin",
        what: "the recognizer of facewatch 0.1 (MIT as declared, origin not stated); for galleries enrolled with it",
    },
];

/// The pack called `name`.
pub fn pack(name: &str) -> Option<&'static Pack> {
    PACKS.iter().find(|p| p.name == name)
}

impl ModelsConfig {
    /// Fills an empty detector or recognizer from the pack (an unknown pack leaves them empty: `validate` says so).
    fn apply_pack(&mut self) {
        if let Some(p) = pack(&self.pack) {
            if self.detector.trim().is_empty() {
                self.detector = p.detector.to_string();
            }
            if self.recognizer.trim().is_empty() {
                self.recognizer = p.recognizer.to_string();
            }
        }
    }
}

/// `[runtime]`: ONNX Runtime library and execution providers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Path of `libonnxruntime.so`.
    pub ort_library: String,
    /// Providers in order of preference.
    pub execution_providers: Vec<ExecutionProvider>,
    /// Intra-op threads per session; 0 lets ONNX Runtime choose.
    pub intra_threads: usize,
    /// Where TensorRT keeps its built engines.
    pub trt_cache_dir: String,
}

/// `[detect]`: face detection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    /// Minimum face score.
    pub score_threshold: UnitInterval,
    /// NMS IoU threshold.
    pub nms_threshold: UnitInterval,
    /// Minimum shorter box side in pixels.
    pub min_face_px: u32,
    /// Largest image decoded at full size.
    pub max_image_pixels: NonZeroUsize,
}

/// `[matcher]`: gallery matching.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatcherConfig {
    /// Similarity threshold; `None` uses the recognizer's manifest threshold.
    #[serde(default)]
    pub threshold: Option<Threshold>,
    /// Candidates per face.
    pub top_k: NonZeroUsize,
    /// Largest gallery searched exactly.
    pub exact_search_max: usize,
}

/// `[gallery]`: the enrolled-person store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GalleryConfig {
    /// SQLite file.
    pub path: String,
}

/// Which capture backend reads `capture.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A number or `/dev/video*` path is a camera, anything else a video.
    Auto,
    /// A V4L2 camera through nokhwa.
    Camera,
    /// A file, URL or image sequence through OpenCV.
    Video,
}

/// A V4L2 pixel format to request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PixelFormat {
    /// Motion JPEG.
    Mjpeg,
    /// Packed YUV 4:2:2.
    Yuyv,
    /// Planar Y + interleaved UV 4:2:0.
    Nv12,
    /// 8-bit grey.
    Gray,
    /// Packed 8-bit RGB.
    Rgb,
}

/// `[capture]`: where frames come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureConfig {
    /// Camera index or path, file, URL or image-sequence pattern.
    pub source: String,
    /// Camera name in events.
    pub camera: String,
    /// Backend choice.
    pub kind: SourceKind,
    /// Requested width (cameras).
    pub width: u32,
    /// Requested height (cameras).
    pub height: u32,
    /// Requested frame rate (cameras).
    pub fps: u32,
    /// Requested pixel format (cameras).
    pub pixel_format: PixelFormat,
    /// Restart files at their end.
    #[serde(rename = "loop")]
    pub looping: bool,
    /// Pace files at their native frame rate.
    pub realtime: bool,
    /// First reconnect delay.
    pub reconnect_initial_ms: u64,
    /// Longest reconnect delay.
    pub reconnect_max_ms: u64,
    /// File holding the stream's `user:password` (readable by its owner only); empty: none. The environment
    /// variable `FACEWATCH_CAPTURE_CREDENTIALS` wins over it.
    #[serde(default)]
    pub credentials_file: String,
}

/// `[pipeline]`: queues between stages and shutdown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Capture → detect queue (drops the oldest when full).
    pub frame_queue: NonZeroUsize,
    /// Queues between later stages (block when full).
    pub stage_queue: NonZeroUsize,
    /// Drain deadline on shutdown, seconds.
    pub shutdown_timeout_s: f64,
    /// Seconds between health lines in the log (0: none).
    pub stats_interval_s: u64,
}

/// `[track]`: association and identity voting.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackConfig {
    /// IoU to continue a track by position.
    pub iou_threshold: UnitInterval,
    /// Cosine below which a positional match is another person; `None`: the recognizer's own (manifest).
    #[serde(default)]
    pub same_face_min: Option<Threshold>,
    /// Cosine to re-join a recently lost track or a track across a cut; `None`: the recognizer's own (manifest).
    #[serde(default)]
    pub reid_min: Option<Threshold>,
    /// Frame difference (0..1) that counts as a shot cut; 0: no cut detection.
    pub scene_cut: UnitInterval,
    /// Re-embed every this many frames.
    pub embed_every: NonZeroUsize,
    /// Quality factor that counts as a better face.
    pub better_quality: f32,
    /// Votes kept per track.
    pub vote_window: NonZeroUsize,
    /// Vote lead needed to change identity.
    pub switch_votes: usize,
    /// Absence that ends a track, seconds.
    pub max_absence_s: f64,
}

/// `[publish]`: the event socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// Socket path; empty for none.
    pub socket: String,
    /// Queue per subscriber.
    pub subscriber_queue: NonZeroUsize,
    /// Subscribers served at once; connections beyond are closed.
    pub max_subscribers: NonZeroUsize,
    /// `track_updated` interval, ms (0: none).
    pub update_interval_ms: u64,
}

/// `[preview]`: the annotated window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewConfig {
    /// Show the window.
    pub enabled: bool,
    /// Closing the window stops the daemon.
    pub close_exits: bool,
}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[models]`.
    pub models: ModelsConfig,
    /// `[runtime]`.
    pub runtime: RuntimeConfig,
    /// `[detect]`.
    pub detect: DetectConfig,
    /// `[matcher]`.
    pub matcher: MatcherConfig,
    /// `[gallery]`.
    pub gallery: GalleryConfig,
    /// `[capture]`.
    pub capture: CaptureConfig,
    /// `[pipeline]`.
    pub pipeline: PipelineConfig,
    /// `[track]`.
    pub track: TrackConfig,
    /// `[publish]`.
    pub publish: PublishConfig,
    /// `[preview]`.
    pub preview: PreviewConfig,
}

/// Where to load configuration from, beyond the embedded defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// The system file; `None` skips it (tests), default [`SYSTEM_FILE`] in the CLI.
    pub system_file: Option<PathBuf>,
    /// `--config FILE`: must exist.
    pub file: Option<PathBuf>,
    /// Environment variables to consider (only `FACEWATCH_SECTION__KEY` ones are used).
    pub env: HashMap<String, String>,
    /// `key.path = value` overrides from CLI flags, applied last.
    pub overrides: Vec<(String, String)>,
}

impl Sources {
    /// The CLI's sources: system file, `--config`, this process's environment, and flag overrides.
    pub fn from_process(file: Option<PathBuf>, overrides: Vec<(String, String)>) -> Self {
        Self { system_file: Some(PathBuf::from(SYSTEM_FILE)), file, env: std::env::vars().collect(), overrides }
    }
}

impl Config {
    /// The embedded defaults alone.
    pub fn default_embedded() -> Result<Self, ConfigError> {
        Self::load(&Sources::default())
    }

    /// Loads and type-checks every layer; see the module docs for the order.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        use config::{Environment, File, FileFormat};
        let mut b = config::Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(sys) = &sources.system_file {
            b = b.add_source(File::from(sys.as_path()).format(FileFormat::Toml).required(false));
        }
        if let Some(file) = &sources.file {
            b = b.add_source(File::from(file.as_path()).format(FileFormat::Toml).required(true));
        }
        // Only SECTION__KEY variables are configuration; FACEWATCH_FACES and friends are for scripts.
        let env: config::Map<String, String> = sources
            .env
            .iter()
            .filter(|(k, _)| k.starts_with("FACEWATCH_") && k.contains("__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        b = b.add_source(
            Environment::with_prefix("FACEWATCH")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("runtime.execution_providers")
                .source(Some(env)),
        );
        for (key, value) in &sources.overrides {
            b = b.set_override(key.as_str(), parse_scalar(value))?;
        }
        let merged = b.build()?;
        let err = match serde_path_to_error::deserialize::<_, Config>(merged.clone()) {
            Ok(mut c) => {
                c.models.apply_pack();
                return Ok(c);
            }
            Err(e) => ConfigError::Invalid { path: e.path().to_string(), message: e.inner().to_string() },
        };
        // Report a problem in every section at once, not only the first one serde met.
        let problems = section_problems(&merged);
        Err(if problems.len() > 1 { ConfigError::Problems(problems) } else { err })
    }

    /// Every problem that types cannot catch, all at once (empty when the configuration is usable).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if pack(&self.models.pack).is_none() {
            let names: Vec<&str> = PACKS.iter().map(|p| p.name).collect();
            out.push(format!("models.pack: unknown pack `{}`; one of {}", self.models.pack, names.join(", ")));
        }
        if self.runtime.execution_providers.is_empty() {
            out.push("runtime.execution_providers: empty; list at least one of tensorrt, cuda, cpu".into());
        }
        if self.detect.min_face_px == 0 {
            out.push("detect.min_face_px: must be at least 1".into());
        }
        if self.gallery.path.trim().is_empty() {
            out.push("gallery.path: empty".into());
        }
        let c = &self.capture;
        if c.source.trim().is_empty() {
            out.push("capture.source: empty; give a camera index or path, a file, a URL or an image pattern".into());
        }
        if c.camera.trim().is_empty() || c.camera.chars().any(char::is_control) {
            out.push("capture.camera: must be a printable, non-empty name".into());
        }
        if c.reconnect_initial_ms == 0 || c.reconnect_initial_ms > c.reconnect_max_ms {
            out.push(format!(
                "capture.reconnect_initial_ms: {} must be at least 1 and at most capture.reconnect_max_ms ({})",
                c.reconnect_initial_ms, c.reconnect_max_ms
            ));
        }
        if !(self.pipeline.shutdown_timeout_s > 0.0 && self.pipeline.shutdown_timeout_s <= 600.0) {
            out.push(format!("pipeline.shutdown_timeout_s: {} must be in (0, 600]", self.pipeline.shutdown_timeout_s));
        }
        let t = &self.track;
        if !(t.max_absence_s > 0.0 && t.max_absence_s <= 3600.0) {
            out.push(format!("track.max_absence_s: {} must be in (0, 3600]", t.max_absence_s));
        }
        if !(t.better_quality >= 1.0 && t.better_quality.is_finite()) {
            out.push(format!("track.better_quality: {} must be at least 1", t.better_quality));
        }
        if t.switch_votes >= t.vote_window.get() {
            out.push(format!(
                "track.switch_votes: {} must be below track.vote_window ({}), or the identity could never change",
                t.switch_votes, t.vote_window
            ));
        }
        self.bound_problems(&mut out);
        if self.publish.socket.len() > 100 {
            out.push(format!("publish.socket: {} bytes; Unix socket paths must be under 108", self.publish.socket.len()));
        }
        out
    }

    /// Numbers that type-check but would exhaust the machine (threads, queues, allocations) or make no sense.
    fn bound_problems(&self, out: &mut Vec<String>) {
        let mut within = |key: &str, value: u64, max: u64, why: &str| {
            if value > max {
                out.push(format!("{key}: {value} is above the limit {max} ({why})"));
            }
        };
        within("runtime.intra_threads", self.runtime.intra_threads as u64, 256, "threads per inference session");
        within("detect.min_face_px", u64::from(self.detect.min_face_px), 4096, "pixels");
        within("detect.max_image_pixels", self.detect.max_image_pixels.get() as u64, 400_000_000, "a 20000×20000 photo");
        within("matcher.top_k", self.matcher.top_k.get() as u64, 100, "candidates per face");
        within("matcher.exact_search_max", self.matcher.exact_search_max as u64, 10_000_000, "embeddings");
        within("capture.width", u64::from(self.capture.width), 7680, "8K");
        within("capture.height", u64::from(self.capture.height), 4320, "8K");
        within("capture.fps", u64::from(self.capture.fps), 1000, "frames per second");
        within("capture.reconnect_max_ms", self.capture.reconnect_max_ms, 3_600_000, "one hour");
        within("pipeline.frame_queue", self.pipeline.frame_queue.get() as u64, 64, "frames held between capture and detect");
        within("pipeline.stage_queue", self.pipeline.stage_queue.get() as u64, 256, "items held between stages");
        within("pipeline.stats_interval_s", self.pipeline.stats_interval_s, 86_400, "one day");
        within("track.embed_every", self.track.embed_every.get() as u64, 10_000, "frames");
        within("track.vote_window", self.track.vote_window.get() as u64, 1000, "votes per track");
        within("publish.subscriber_queue", self.publish.subscriber_queue.get() as u64, 65_536, "events per subscriber");
        within("publish.max_subscribers", self.publish.max_subscribers.get() as u64, 4096, "file descriptors");
        within("publish.update_interval_ms", self.publish.update_interval_ms, 86_400_000, "one day");
    }

    /// [`Config::problems`] as an error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = self.problems();
        if p.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Problems(p))
        }
    }
}

/// The first type or key error of each section, with its key path (for reporting them all at once).
fn section_problems(merged: &config::Config) -> Vec<String> {
    fn check<T: serde::de::DeserializeOwned>(merged: &config::Config, section: &str, out: &mut Vec<String>) {
        match merged.get::<config::Value>(section) {
            Ok(v) => {
                if let Err(e) = serde_path_to_error::deserialize::<_, T>(v) {
                    let path = e.path().to_string();
                    let path = if path == "." { section.to_string() } else { format!("{section}.{path}") };
                    out.push(format!("invalid configuration at `{path}`: {}", e.inner()));
                }
            }
            Err(e) => out.push(format!("invalid configuration at `{section}`: {e}")),
        }
    }
    let mut out = Vec::new();
    check::<ModelsConfig>(merged, "models", &mut out);
    check::<RuntimeConfig>(merged, "runtime", &mut out);
    check::<DetectConfig>(merged, "detect", &mut out);
    check::<MatcherConfig>(merged, "matcher", &mut out);
    check::<GalleryConfig>(merged, "gallery", &mut out);
    check::<CaptureConfig>(merged, "capture", &mut out);
    check::<PipelineConfig>(merged, "pipeline", &mut out);
    check::<TrackConfig>(merged, "track", &mut out);
    check::<PublishConfig>(merged, "publish", &mut out);
    check::<PreviewConfig>(merged, "preview", &mut out);
    const SECTIONS: [&str; 10] =
        ["models", "runtime", "detect", "matcher", "gallery", "capture", "pipeline", "track", "publish", "preview"];
    if let Ok(all) = merged.clone().try_deserialize::<HashMap<String, config::Value>>() {
        let mut unknown: Vec<&String> = all.keys().filter(|k| !SECTIONS.contains(&k.as_str())).collect();
        unknown.sort();
        out.extend(
            unknown
                .into_iter()
                .map(|k| format!("invalid configuration at `{k}`: unknown section, expected one of {}", SECTIONS.join(", "))),
        );
    }
    out
}

/// CLI override values arrive as text: keep numbers and booleans typed so `0.5` is a float, not a string.
fn parse_scalar(v: &str) -> config::Value {
    if let Ok(i) = v.parse::<i64>() {
        return i.into();
    }
    if let Ok(f) = v.parse::<f64>() {
        return f.into();
    }
    if let Ok(b) = v.parse::<bool>() {
        return b.into();
    }
    v.into()
}

/// Expands a leading `~/` with `$HOME`; other paths are returned as they are.
pub fn resolve_path(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Sources {
        Sources { env: pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(), ..Sources::default() }
    }

    #[test]
    fn defaults_load_and_validate() {
        let c = Config::default_embedded().expect("embedded defaults");
        assert_eq!(c.models.detector, "yunet");
        assert_eq!(c.runtime.execution_providers, vec![ExecutionProvider::Cpu]);
        assert!(c.matcher.threshold.is_none());
        assert!(c.problems().is_empty());
    }

    #[test]
    fn numbers_that_would_exhaust_the_machine_are_all_reported_at_once() {
        let c = Config::load(&Sources {
            overrides: vec![
                ("runtime.intra_threads".into(), "100000".into()),
                ("pipeline.frame_queue".into(), "1000000000".into()),
                ("matcher.top_k".into(), "1000000000".into()),
                ("publish.max_subscribers".into(), "100000".into()),
            ],
            ..Sources::default()
        })
        .expect("types are fine");
        let p = c.problems();
        for key in ["runtime.intra_threads", "pipeline.frame_queue", "matcher.top_k", "publish.max_subscribers"] {
            assert!(p.iter().any(|m| m.starts_with(key) && m.contains("above the limit")), "{key} not reported: {p:#?}");
        }
    }

    #[test]
    fn packs_fill_the_models_and_an_explicit_model_wins() {
        let c = Config::load(&Sources { overrides: vec![("models.pack".into(), "open".into())], ..Sources::default() }).expect("load");
        assert_eq!((c.models.detector.as_str(), c.models.recognizer.as_str()), ("yunet", "sface_int8"));
        let c = Config::load(&Sources {
            overrides: vec![("models.pack".into(), "open".into()), ("models.recognizer".into(), "faceplugin".into())],
            ..Sources::default()
        })
        .expect("load");
        assert_eq!(c.models.recognizer, "faceplugin");
        let c = Config::load(&Sources { overrides: vec![("models.pack".into(), "best".into())], ..Sources::default() }).expect("load");
        assert!(c.problems().iter().any(|m| m.contains("models.pack") && m.contains("accurate")), "{:?}", c.problems());
    }

    #[test]
    fn env_overrides_defaults_and_ignores_script_variables() {
        let c = Config::load(&env(&[
            ("FACEWATCH_DETECT__SCORE_THRESHOLD", "0.75"),
            ("FACEWATCH_RUNTIME__EXECUTION_PROVIDERS", "cuda,cpu"),
            ("FACEWATCH_FACES", "/somewhere"),
        ]))
        .expect("load");
        assert!((c.detect.score_threshold.get() - 0.75).abs() < 1e-6);
        assert_eq!(c.runtime.execution_providers, vec![ExecutionProvider::Cuda, ExecutionProvider::Cpu]);
    }

    #[test]
    fn bad_value_names_its_key_path() {
        let err = Config::load(&env(&[("FACEWATCH_DETECT__SCORE_THRESHOLD", "1.5")])).expect_err("out of range");
        let msg = err.to_string();
        assert!(msg.contains("detect.score_threshold"), "{msg}");
        assert!(msg.contains("outside 0..=1"), "{msg}");
    }

    #[test]
    fn unknown_key_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[detect]\nscore_treshold = 0.5\n").expect("write");
        let err = Config::load(&Sources { file: Some(f), ..Sources::default() }).expect_err("typo");
        let msg = err.to_string();
        assert!(msg.contains("score_treshold"), "{msg}");
        assert!(msg.contains("detect"), "{msg}");
    }

    #[test]
    fn cli_override_wins_and_is_typed() {
        let mut s = env(&[("FACEWATCH_MATCHER__TOP_K", "7")]);
        s.overrides.push(("matcher.top_k".into(), "2".into()));
        s.overrides.push(("matcher.threshold".into(), "0.5".into()));
        let c = Config::load(&s).expect("load");
        assert_eq!(c.matcher.top_k.get(), 2);
        assert_eq!(c.matcher.threshold.map(Threshold::get), Some(0.5));
    }

    #[test]
    fn every_bad_section_is_reported_at_once() {
        let err = Config::load(&env(&[
            ("FACEWATCH_DETECT__SCORE_THRESHOLD", "1.5"),
            ("FACEWATCH_TRACK__EMBED_EVERY", "0"),
            ("FACEWATCH_CAPTURE__PIXEL_FORMAT", "h264"),
        ]))
        .expect_err("three bad values");
        let msg = err.to_string();
        for key in ["detect.score_threshold", "track.embed_every", "capture.pixel_format"] {
            assert!(msg.contains(key), "{key} missing from: {msg}");
        }
    }

    #[test]
    fn daemon_sections_load_from_env_and_are_checked() {
        let c = Config::load(&env(&[("FACEWATCH_CAPTURE__SOURCE", "2"), ("FACEWATCH_CAPTURE__LOOP", "true")])).expect("load");
        assert_eq!(c.capture.source, "2");
        assert!(c.capture.looping);
        let mut s = env(&[]);
        s.overrides.push(("track.switch_votes".into(), "20".into()));
        s.overrides.push(("capture.reconnect_initial_ms".into(), "0".into()));
        let p = Config::load(&s).expect("types are fine").problems();
        assert!(p.iter().any(|m| m.starts_with("track.switch_votes")), "{p:?}");
        assert!(p.iter().any(|m| m.starts_with("capture.reconnect_initial_ms")), "{p:?}");
    }

    #[test]
    fn bad_provider_is_refused() {
        let err = Config::load(&env(&[("FACEWATCH_RUNTIME__EXECUTION_PROVIDERS", "gpu")])).expect_err("bad ep");
        assert!(err.to_string().contains("runtime.execution_providers"), "{err}");
    }
}
