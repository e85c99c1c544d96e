//! Shared set-up for the benches: configuration pointing at the installed models, and a real 640×480 frame.

use std::path::PathBuf;

use facewatch::config::{resolve_path, Config, Sources};
use facewatch::model::{checked_model_path, Manifest, Runtime};
use facewatch::Frame;
use opencv::core::{Mat, Size};
use opencv::imgproc;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Default configuration with absolute model paths; one intra-op thread so figures compare across machines.
pub fn config() -> Config {
    let r = root();
    let overrides = vec![
        ("models.dir".to_string(), r.join("models").display().to_string()),
        ("models.manifest".to_string(), r.join("models/manifest.toml").display().to_string()),
        ("runtime.ort_library".to_string(), r.join("lib/libonnxruntime.so.1.32.0").display().to_string()),
        ("runtime.intra_threads".to_string(), "1".to_string()),
    ];
    Config::load(&Sources { overrides, ..Sources::default() }).expect("configuration")
}

pub fn manifest(cfg: &Config) -> Manifest {
    Manifest::load(&resolve_path(&cfg.models.manifest)).expect("manifest (run scripts/setup.sh)")
}

pub fn runtime(cfg: &Config) -> Runtime {
    Runtime::new(&cfg.runtime).expect("ONNX Runtime (run scripts/setup.sh)")
}

pub fn model_path(cfg: &Config, file: &str, sha256: &str) -> PathBuf {
    checked_model_path(&resolve_path(&cfg.models.dir), file, sha256).expect("model (run scripts/setup.sh)")
}

/// `groups/two_people_2.jpg` resized to 640×480: a camera-sized frame with two real faces.
pub fn frame_640x480() -> Frame {
    let faces = std::env::var_os("FACEWATCH_FACES").map(PathBuf::from).unwrap_or_else(|| root().join("../shared/faces"));
    let photo = facewatch::image::load(&faces.join("groups/two_people_2.jpg"), 40_000_000).expect("sample photo (../shared/faces)");
    let mut small = Mat::default();
    imgproc::resize(&photo.bgr, &mut small, Size::new(640, 480), 0.0, 0.0, imgproc::INTER_AREA).expect("resize");
    Frame::from_bgr(small, "two_people_2@640x480", 0)
}
