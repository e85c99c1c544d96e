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
    /// Detector name in the manifest.
    pub detector: String,
    /// Recognizer name in the manifest.
    pub recognizer: String,
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
        serde_path_to_error::deserialize(merged)
            .map_err(|e| ConfigError::Invalid { path: e.path().to_string(), message: e.inner().to_string() })
    }

    /// Every problem that types cannot catch, all at once (empty when the configuration is usable).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.runtime.execution_providers.is_empty() {
            out.push("runtime.execution_providers: empty; list at least one of tensorrt, cuda, cpu".into());
        }
        if self.detect.min_face_px == 0 {
            out.push("detect.min_face_px: must be at least 1".into());
        }
        if self.gallery.path.trim().is_empty() {
            out.push("gallery.path: empty".into());
        }
        out
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
    fn bad_provider_is_refused() {
        let err = Config::load(&env(&[("FACEWATCH_RUNTIME__EXECUTION_PROVIDERS", "gpu")])).expect_err("bad ep");
        assert!(err.to_string().contains("runtime.execution_providers"), "{err}");
    }
}
