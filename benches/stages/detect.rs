//! Detection of a 640×480 frame: facewatch's detector (letterbox, inference, decode, NMS) vs the bare model run.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use facewatch::detect::{Detector, OnnxDetector};
use opencv::core::MatTraitConstManual;
use ort::value::TensorRef;

use crate::common::{config, frame_640x480, manifest, model_path, runtime};

fn detect(c: &mut Criterion) {
    let cfg = config();
    let manifest = manifest(&cfg);
    let rt = runtime(&cfg);
    let frame = frame_640x480();
    let mut group = c.benchmark_group("detect");
    group.throughput(Throughput::Elements(1));
    for name in ["yunet", "scrfd_500m"] {
        let spec = manifest.detector(name).expect("detector");
        let path = model_path(&cfg, &spec.file, &spec.sha256);
        let mut det = OnnxDetector::build(&rt, spec, &path, &cfg.detect).expect("detector");
        assert_eq!(det.detect(&frame.bgr).expect("detect").len(), 2, "{name} must find both faces");
        group.bench_function(BenchmarkId::new("facewatch_640x480", name), |b| b.iter(|| det.detect(&frame.bgr).expect("detect")));

        let mut bare = rt.session(&path).expect("session").session;
        // The same frame, letterboxed as the detector does it (640×480 fits the 640×640 input at scale 1).
        let mut input = vec![spec.input.pad_value(); spec.input.tensor_len()];
        spec.input.write_nchw(frame.bgr.data_bytes().expect("frame bytes"), 640, 480, &mut input);
        let shape = [1usize, 3, spec.input.height as usize, spec.input.width as usize];
        group.bench_function(BenchmarkId::new("bare_onnxruntime", name), |b| {
            b.iter(|| {
                let t = TensorRef::from_array_view((shape, &*input)).expect("tensor");
                bare.run(ort::inputs![t]).expect("run").len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, detect);
