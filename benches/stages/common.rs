//! Shared set-up for the benches: configuration pointing at the installed models, and a real 640×480 frame.

use std::path::PathBuf;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId};
use facewatch::config::{resolve_path, Config, Sources};
use facewatch::model::{checked_model_path, InputSpec, Manifest, Runtime};
use facewatch::Frame;
use opencv::core::{Mat, MatTraitConst, MatTraitConstManual, Size};
use opencv::imgproc;
use ort::value::TensorRef;

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

/// Benchmarks the bare model run on `pixels` (tightly packed BGR, `cols`×`rows`) laid out exactly as facewatch
/// lays it out, so the facewatch-vs-bare gap is facewatch's own code, not different data.
pub fn bench_bare_model(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    model: &std::path::Path,
    input: &InputSpec,
    pixels: &Mat,
    name: &str,
) {
    let mut bare = rt.session(model).expect("session").session;
    let mut tensor = vec![input.pad_value(); input.tensor_len()];
    let (cols, rows) = (pixels.cols() as usize, pixels.rows() as usize);
    input.write_nchw(pixels.data_bytes().expect("continuous pixels"), cols, rows, &mut tensor);
    let shape = [1usize, 3, input.height as usize, input.width as usize];
    group.bench_function(BenchmarkId::new("bare_onnxruntime", name), |b| {
        b.iter(|| {
            let t = TensorRef::from_array_view((shape, &*tensor)).expect("tensor");
            bare.run(ort::inputs![t]).expect("run").len()
        })
    });
}
