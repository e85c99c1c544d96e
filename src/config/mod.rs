//! Configuration: one typed [`Config`], loaded once at start-up from layered sources and validated.
//!
//! Layers, later wins: the embedded `config/default.toml` → `/etc/facewatch/config.toml` (when present) →
//! `--config FILE` → `FACEWATCH_SECTION__KEY` environment variables → `--set key=value` → the command's flags, which
//! set typed fields. Each section's type is defined beside its stage (`capture::CaptureConfig`, …) with its own
//! checks; [`check`] adds the environment (models, runtime library, camera). Unknown keys are refused
//! with their key path; values are checked by their types ([`UnitInterval`], [`ExecutionProvider`], …) and
//! then by [`Config::problems`], which reports every remaining problem at once.

mod api;
pub mod check;
pub mod fds;

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::units::{seconds, within};
pub use crate::base::units::{OutOfRange, Threshold, UnitInterval};
pub use crate::capture::{CameraConfig, Cameras, CaptureConfig, PixelFormat, SourceKind};
pub use crate::detect::DetectConfig;
pub use crate::gallery::GalleryConfig;
pub use crate::matcher::MatcherConfig;
pub use crate::model::config::{pack, ExecutionProvider, ModelsConfig, Pack, RuntimeConfig, PACKS};
pub use crate::paths::resolve_path;
pub use crate::sinks::mqtt::MqttConfig;
pub use crate::sinks::preview::PreviewConfig;
pub use crate::sinks::snapshots::SnapshotConfig;
pub use crate::sinks::PublishConfig;
pub use crate::strangers::StrangerConfig;
pub use crate::track::TrackConfig;
pub use api::ApiConfig;

/// The embedded default configuration (`config/default.toml`).
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");

/// The system-wide configuration file, read when it exists.
pub const SYSTEM_FILE: &str = "/etc/facewatch/config.toml";

/// Errors while loading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source could not be read or parsed (bad TOML, unreadable file, bad environment value). The message is
    /// the loader's with every quoted source line taken out (`without_values`): a line of a configuration file
    /// may hold a secret, so the loader's own error (which quotes it) is not kept as the source.
    #[error("failed to read configuration: {0}")]
    Load(String),
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

impl crate::exit::Exit for ConfigError {
    fn exit_code(&self) -> u8 {
        crate::exit::CONFIG
    }
}

/// `[pipeline]`: queues between stages and shutdown.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Capture → detect queue (drops the oldest when full).
    pub frame_queue: NonZeroUsize,
    /// Queues between later stages (block when full).
    pub stage_queue: NonZeroUsize,
    /// Drain deadline on shutdown (`shutdown_timeout_s`).
    #[serde(rename = "shutdown_timeout_s", with = "seconds")]
    pub shutdown_timeout: Duration,
    /// Between health lines in the log (`stats_interval_s`; 0: none).
    #[serde(rename = "stats_interval_s", with = "seconds")]
    pub stats_interval: Duration,
}

impl PipelineConfig {
    /// What is wrong with `[pipeline]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if self.shutdown_timeout.is_zero() || self.shutdown_timeout > Duration::from_secs(600) {
            out.push(format!("pipeline.shutdown_timeout_s: {} must be in (0, 600]", self.shutdown_timeout.as_secs_f64()));
        }
        within(out, "pipeline.frame_queue", self.frame_queue.get() as u64, 64, "frames held between capture and detect");
        within(out, "pipeline.stage_queue", self.stage_queue.get() as u64, 256, "items held between stages");
        within(out, "pipeline.stats_interval_s", self.stats_interval.as_secs(), 86_400, "one day");
    }
}

/// The sections, named once: the [`Config`] struct, the per-section type check that reports a problem in every
/// section at once, the list of known sections and the per-section validation all come from this list.
macro_rules! sections {
    ($($name:ident: $ty:ty),* $(,)?) => {
        /// The whole configuration: one section per stage, each type defined beside its stage.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Config {
            $(
                #[doc = concat!("`[", stringify!($name), "]`.")]
                pub $name: $ty,
            )*
        }

        /// The section names.
        pub const SECTIONS: &[&str] = &[$(stringify!($name)),*];

        /// The first type or key error of each section, with its key path.
        fn check_sections(merged: &config::Config, out: &mut Vec<String>) {
            $(check_section::<$ty>(merged, stringify!($name), out);)*
        }

        impl Config {
            /// Every section's own problems.
            fn section_problems(&self, out: &mut Vec<String>) {
                $(self.$name.problems(out);)*
            }
        }
    };
}

sections! {
    models: ModelsConfig,
    runtime: RuntimeConfig,
    detect: DetectConfig,
    matcher: MatcherConfig,
    gallery: GalleryConfig,
    capture: CaptureConfig,
    cameras: Cameras,
    pipeline: PipelineConfig,
    track: TrackConfig,
    strangers: StrangerConfig,
    publish: PublishConfig,
    mqtt: MqttConfig,
    api: ApiConfig,
    snapshots: SnapshotConfig,
    preview: PreviewConfig,
}

/// Where to load configuration from, beyond the embedded defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// The system file; `None` skips it (tests), default [`SYSTEM_FILE`] in the CLI.
    pub system_file: Option<PathBuf>,
    /// `--config FILE`: must exist.
    pub file: Option<PathBuf>,
    /// A configuration file's text, read as `--config` would read the file (the fuzz target of the loader).
    pub text: Option<String>,
    /// Environment variables to consider (only `FACEWATCH_SECTION__KEY` ones are used).
    pub env: HashMap<String, String>,
    /// `key.path = value` overrides from CLI flags, applied last.
    pub overrides: Vec<(String, String)>,
}

impl Sources {
    /// The CLI's sources: system file, `--config`, this process's environment, and flag overrides.
    pub fn from_process(file: Option<PathBuf>, overrides: Vec<(String, String)>) -> Self {
        Self { system_file: Some(PathBuf::from(SYSTEM_FILE)), file, text: None, env: std::env::vars().collect(), overrides }
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
        if let Some(text) = &sources.text {
            b = b.add_source(File::from_str(text, FileFormat::Toml));
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
                .with_list_parse_key("api.keys")
                .source(Some(env)),
        );
        for (key, value) in &sources.overrides {
            b = b.set_override(key.as_str(), parse_scalar(value)).map_err(|e| ConfigError::Load(without_values(&e)))?;
        }
        let merged = b.build().map_err(|e| ConfigError::Load(without_values(&e)))?;
        let err = match serde_path_to_error::deserialize::<_, Config>(merged.clone()) {
            Ok(mut c) => {
                c.models.apply_pack();
                use crate::paths::locate_with_origin as locate;
                let ((dir, d), (manifest, m), (library, l)) =
                    (locate(&c.models.dir), locate(&c.models.manifest), locate(&c.runtime.ort_library));
                c.models.dir_as_configured = std::mem::replace(&mut c.models.dir, dir);
                c.models.dir_found = Some(d);
                (c.models.manifest, c.models.manifest_found) = (manifest, Some(m));
                (c.runtime.ort_library, c.runtime.library_found) = (library, Some(l));
                return Ok(c);
            }
            Err(e) => {
                let path = e.path().to_string();
                ConfigError::Invalid { message: secret_safe(&path, &e.inner().to_string()), path }
            }
        };
        // Report a problem in every section at once, not only the first one serde met.
        let problems = section_problems(&merged);
        Err(if problems.len() > 1 { ConfigError::Problems(problems) } else { err })
    }

    /// The cameras to watch, each as its full `[capture]` with its own threshold (unset: the configured one):
    /// the `[[cameras]]` entries over `[capture]`, or, without any, `[capture]` itself.
    pub fn cameras(&self) -> Vec<(CaptureConfig, Option<Threshold>)> {
        match self.cameras.0.is_empty() {
            true => vec![(self.capture.clone(), None)],
            false => self.cameras.0.iter().map(|c| (c.capture(&self.capture), c.threshold)).collect(),
        }
    }

    /// The configured gallery (`gallery.url` or `gallery.path`, `matcher.exact_search_max`) for the configured
    /// recognizer, which produces `dim`-d embeddings. With `create`, a missing SQLite gallery is created (enroll, the
    /// daemon); without, it is an error naming the path ([`crate::gallery::GalleryError::Missing`]).
    pub fn open_gallery(&self, dim: usize, create: bool) -> Result<crate::gallery::Gallery, crate::gallery::GalleryError> {
        let store = self.open_gallery_store(dim, create)?;
        if let Some(warning) = self.matcher.obsolete() {
            tracing::warn!("{warning}");
        }
        // Where earlier versions kept a large gallery's HNSW graph by default (about 2 GB per million embeddings).
        let mut old_index = resolve_path(&self.gallery.path).into_os_string();
        old_index.push(format!(".index-{}", self.models.recognizer));
        let old_index = std::path::PathBuf::from(old_index);
        if !self.gallery.url.is_set() && old_index.is_dir() {
            tracing::warn!(dir = %old_index.display(), "An HNSW graph an earlier version kept is no longer used; remove the directory.");
        }
        crate::gallery::Gallery::over(store, self.matcher.exact_search_max)
    }

    /// The configured gallery's store alone (a second connection: the strangers' writer).
    pub fn open_gallery_store(
        &self,
        dim: usize,
        create: bool,
    ) -> Result<Box<dyn crate::gallery::GalleryStore>, crate::gallery::GalleryError> {
        crate::gallery::open_store(&self.gallery, &self.models.recognizer, dim, create)
    }

    /// Every problem that types cannot catch, all at once (empty when the configuration is usable). Each section
    /// checks itself beside its stage.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.section_problems(&mut out);
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

/// The type and key errors of one section, each with its key path: serde stops at a section's first error, so a
/// failing section is checked again key by key, each key alone over the defaults.
fn check_section<T: serde::de::DeserializeOwned>(merged: &config::Config, section: &str, out: &mut Vec<String>) {
    let at = |e: &serde_path_to_error::Error<config::ConfigError>| {
        let path = e.path().to_string();
        let path = if path == "." { section.to_string() } else { format!("{section}.{path}") };
        format!("invalid configuration at `{path}`: {}", secret_safe(&path, &e.inner().to_string()))
    };
    let value = match merged.get::<config::Value>(section) {
        Ok(v) => v,
        Err(e) => return out.push(format!("invalid configuration at `{section}`: {e}")),
    };
    let Err(first) = serde_path_to_error::deserialize::<_, T>(value.clone()) else { return };
    let defaults = config::Config::builder()
        .add_source(config::File::from_str(DEFAULT_TOML, config::FileFormat::Toml))
        .build()
        .and_then(|d| d.get::<config::Value>(section))
        .and_then(config::Value::into_table);
    let (Ok(defaults), Ok(given)) = (defaults, value.into_table()) else { return out.push(at(&first)) };
    let before = out.len();
    let mut keys: Vec<_> = given.into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, v) in keys {
        let mut one = defaults.clone();
        one.insert(key, v);
        if let Err(e) = serde_path_to_error::deserialize::<_, T>(config::Value::new(None, one)) {
            out.push(at(&e));
        }
    }
    if out.len() == before {
        out.push(at(&first));
    }
}

/// The first type or key error of each section, and unknown sections (for reporting them all at once).
fn section_problems(merged: &config::Config) -> Vec<String> {
    let mut out = Vec::new();
    check_sections(merged, &mut out);
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

/// Keys whose values are secrets: API keys, passwords, credentials.
fn is_secret(path: &str) -> bool {
    let last = path.rsplit('.').next().unwrap_or(path);
    let last = last.split('[').next().unwrap_or(last);
    ["keys", "password", "credentials", "token", "secret"].iter().any(|s| last.contains(s))
}

/// A type or value error of the key at `path`, without the value when the key holds a secret: the message
/// names the key and what was expected, never what was given (it would reach the terminal and, through
/// `check-config` as the unit's `ExecStartPre`, the journal).
fn secret_safe(path: &str, message: &str) -> String {
    if !is_secret(path) {
        return message.to_string();
    }
    let expected = message.find(", expected").or_else(|| message.find("expected")).map_or("", |i| &message[i..]);
    let expected = expected.trim_start_matches(", ");
    match expected.is_empty() {
        true => "invalid value (not shown: the key holds a secret)".into(),
        false => format!("invalid value (not shown: the key holds a secret); {expected}"),
    }
}

/// The loader's message with the source lines it quotes taken out (`3 | password = S3cret` and its caret line),
/// and the key of the line it points at named instead, so that a syntax error in a secret's line does not print
/// the secret: `TOML parse error at line 3, column 12 (key `password`)`.
fn without_values(e: &config::ConfigError) -> String {
    let text = e.to_string();
    let quoted = |l: &str| {
        let t = l.trim_start();
        t.starts_with('|') || t.split_once('|').is_some_and(|(n, _)| !n.trim().is_empty() && n.trim().chars().all(|c| c.is_ascii_digit()))
    };
    let mut out: Vec<String> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if quoted(line) {
            // The key of a quoted `N | key = value` line, without its value.
            // Named only when it has a key's shape: text before an `=` may be a value typed without one.
            let bare = |k: &str| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
            if let Some((_, code)) = line.split_once('|').filter(|(n, _)| !n.trim().is_empty()) {
                if let Some(key) = code.split_once('=').map(|(k, _)| k.trim()).filter(|k| bare(k)) {
                    out.push(format!("(key `{key}`)"));
                }
            }
            continue;
        }
        if i == 0 || !line.trim().is_empty() {
            out.push(line.trim().to_string());
        }
    }
    out.join(" ")
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
    fn every_bad_key_of_one_section_is_reported() {
        let err = Config::load(&env(&[
            ("FACEWATCH_CAPTURE__PIXEL_FORMAT", "h264"),
            ("FACEWATCH_CAPTURE__KIND", "tape"),
            ("FACEWATCH_CAPTURE__WIDTH", "-5"),
        ]))
        .expect_err("three bad values in [capture]");
        let msg = err.to_string();
        for key in ["capture.pixel_format", "capture.kind", "capture.width"] {
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
    fn cameras_take_their_keys_over_capture_and_are_checked_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.toml");
        let two = "[capture]\nwidth = 1280\nloop = true\ncredentials_file = \"/etc/cam.secret\"\n\n[[cameras]]\nname = \"door\"\nsource = \"rtsp://door.lan/s\"\n\
                   threshold = 0.45\n\n[[cameras]]\nname = \"hall\"\nsource = \"1\"\nwidth = 640\nloop = false\n";
        std::fs::write(&f, two).expect("write");
        let c = Config::load(&Sources { file: Some(f.clone()), ..Sources::default() }).expect("load");
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        let cams = c.cameras();
        assert_eq!(cams.len(), 2);
        let (door, hall) = (&cams[0], &cams[1]);
        assert_eq!(
            (door.0.camera.as_str(), door.0.source.as_str(), door.0.width, door.0.looping),
            ("door", "rtsp://door.lan/s", 1280, true)
        );
        assert_eq!(door.1.map(Threshold::get), Some(0.45));
        assert_eq!((hall.0.camera.as_str(), hall.0.width, hall.0.looping, hall.1), ("hall", 640, false, None));
        assert_eq!(hall.0.reconnect_max, c.capture.reconnect_max, "keys no entry names come from [capture]");
        assert!(door.0.credentials_file.is_empty() && door.0.credentials_own_only, "a camera's password is its own, never [capture]'s");
        // Without entries, the one camera of [capture].
        let one = Config::default_embedded().expect("defaults");
        assert_eq!(one.cameras().len(), 1);
        assert_eq!(one.cameras()[0].0.camera, one.capture.camera);
        // Duplicate and empty names, an empty source and a bad key are all reported with their entry.
        std::fs::write(&f, "[[cameras]]\nname = \"a\"\nsource = \"0\"\n[[cameras]]\nname = \"a\"\nsource = \"\"\nfps = 5000\n[[cameras]]\nname = \"\"\nsource = \"1\"\n")
            .expect("write");
        let p = Config::load(&Sources { file: Some(f.clone()), ..Sources::default() }).expect("types are fine").problems();
        for want in
            ["cameras[1].name: \"a\" is used", "cameras[1].source: empty", "cameras[1].fps: 5000 is above", "cameras[2].name: must be"]
        {
            assert!(p.iter().any(|m| m.starts_with(want)), "{want} not reported: {p:#?}");
        }
        std::fs::write(&f, "[[cameras]]\nname = \"a\"\nsource = \"0\"\nzoom = 2\n").expect("write");
        let err = Config::load(&Sources { file: Some(f), ..Sources::default() }).expect_err("unknown key");
        assert!(err.to_string().contains("zoom") && err.to_string().contains("cameras"), "{err}");
    }

    #[test]
    fn a_secret_given_wrongly_is_named_by_its_key_never_shown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.toml");
        // (configuration text, other sources, whether the key can be named).
        let cases: [(&str, Sources, bool); 4] = [
            ("[api]\nkeys = \"S3cret-k\"\n", Sources::default(), true),
            ("[mqtt]\nhost = \"b\"\npassword = S3cret-k\n", Sources::default(), true),
            ("", Sources { overrides: vec![("api.keys".into(), "S3cret-k".into())], ..Sources::default() }, true),
            // Found by the fuzz target: the text before the `=` holds the secret, so no key is named at all.
            ("[mqtt]\npassword S3cret-k = x\n", Sources::default(), false),
        ];
        for (text, mut sources, named) in cases {
            std::fs::write(&f, text).expect("write");
            sources.file = Some(f.clone());
            let msg = Config::load(&sources).expect_err(text).to_string();
            assert!(!msg.contains("S3cret"), "the secret shows: {msg}");
            assert!(!named || msg.contains("keys") || msg.contains("password"), "the key is not named: {msg}");
        }
        // Given as the environment list they are meant to be, keys load.
        let c = Config::load(&env(&[("FACEWATCH_API__KEYS", "S3cret-a,S3cret-b")])).expect("a list from the environment");
        assert_eq!(c.api.keys.iter().map(|k| k.expose()).collect::<Vec<_>>(), ["S3cret-a", "S3cret-b"]);
        assert!(!format!("{c:?}").contains("S3cret"));
    }

    #[test]
    fn bad_provider_is_refused() {
        let err = Config::load(&env(&[("FACEWATCH_RUNTIME__EXECUTION_PROVIDERS", "gpu")])).expect_err("bad ep");
        assert!(err.to_string().contains("runtime.execution_providers"), "{err}");
    }
}
