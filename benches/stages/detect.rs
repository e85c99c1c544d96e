//! Detection of a 640×480 frame: facewatch's detector (letterbox, inference, decode, NMS) vs the bare model run.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use facewatch::detect::{Detector, OnnxDetector};

use crate::common::{bench_bare_model, config, frame_640x480, manifest, model_path, runtime};

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

        // The same frame, letterboxed as the detector does it (640×480 fits the 640×640 input at scale 1).
        bench_bare_model(&mut group, &rt, &path, &spec.input, &frame.bgr, name);
    }
    group.finish();
}

criterion_group!(benches, detect);
