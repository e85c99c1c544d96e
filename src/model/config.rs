//! `[models]` (which models run, model packs) and `[runtime]` (ONNX Runtime and its execution providers).

use serde::{Deserialize, Serialize};

use crate::base::units::within;

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
    /// Where `dir` was found ([`crate::paths::locate_with_origin`]); set when the configuration is loaded.
    #[serde(skip)]
    pub dir_found: Option<crate::paths::Origin>,
    /// `dir` as configured, before it was looked for (to look for a file one place lacks in the others).
    #[serde(skip)]
    pub dir_as_configured: String,
    /// Where `manifest` was found.
    #[serde(skip)]
    pub manifest_found: Option<crate::paths::Origin>,
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
    pub fn apply_pack(&mut self) {
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
    /// Where `ort_library` was found ([`crate::paths::locate_with_origin`]); set when the configuration is loaded.
    #[serde(skip)]
    pub library_found: Option<crate::paths::Origin>,
}

impl ModelsConfig {
    /// What is wrong with `[models]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if pack(&self.pack).is_none() {
            let names: Vec<&str> = PACKS.iter().map(|p| p.name).collect();
            out.push(format!("models.pack: unknown pack `{}`; one of {}", self.pack, names.join(", ")));
        }
    }
}

impl RuntimeConfig {
    /// What is wrong with `[runtime]`.
    pub fn problems(&self, out: &mut Vec<String>) {
        if self.execution_providers.is_empty() {
            out.push("runtime.execution_providers: empty; list at least one of tensorrt, cuda, cpu".into());
        }
        within(out, "runtime.intra_threads", self.intra_threads as u64, 256, "threads per inference session");
    }
}
